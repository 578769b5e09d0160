//! `reload` (and SIGHUP): the file the gateway started from, read again and applied without
//! stopping forwarding.
//!
//! The control side reads and checks the file and plans the reload
//! ([`ispmux_conf::reload::plan`]): a file that fails validation, or that changes what
//! cannot change live, is refused as a whole and nothing changes. Otherwise the RADIUS
//! proxy takes its part first (on its own thread, [`ProxyHandle::reload`]), then the slow
//! path takes the rest in one turn ([`carry_out`]): the table steps through the one update
//! sender, next hops by address through the neighbour follower, LDP's FECs and their
//! meanings, and the logon proxy's ISPs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ispmux_conf::reload::{Reload, TableStep};
use ispmux_conf::{ConfError, Config, Loaded, Purpose};
use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::table::IspId;
use ispmux_dataplane::TableUpdate;
use ispmux_slowpath::dhcp::service::LogonService;
use ispmux_slowpath::ldp::FecState;
use ispmux_slowpath::radius::transport::ProxyHandle;
use ispmux_slowpath::registry::Isp;

use crate::command::Reloaded;
use crate::label_map::LabelMap;
use crate::ldp::Ldp;
use crate::neighbour::Neighbours;

/// How long the control side waits for the slow path to take a reload (it takes one at
/// its next turn, within a millisecond when idle).
const SLOW_PATH_WAIT: Duration = Duration::from_secs(5);

/// The file a gateway started from, what it loaded from it last, and as what.
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) loaded: Loaded,
    pub(crate) purpose: Purpose,
}

impl Source {
    /// Reads and checks the file again, as it was read at start.
    fn load(&self) -> Result<Loaded, ConfError> {
        match self.purpose {
            Purpose::Gateway => ispmux_conf::load_gateway(&self.path),
            Purpose::RadiusProxy => ispmux_conf::load_radius_proxy(&self.path),
        }
    }
}

/// What the slow path is handed: the new configuration and the table steps.
pub(crate) struct Job {
    pub(crate) cfg: Config,
    pub(crate) reload: Reload,
    pub(crate) isp_ids: HashMap<String, IspId>,
    pub(crate) reply: mpsc::Sender<Done>,
}

/// What the slow path did with a [`Job`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Done {
    pub(crate) table_updates: u64,
    pub(crate) refused: u64,
    pub(crate) bindings_released: u64,
}

/// The slow path's parts a reload changes.
pub(crate) struct Live<'a> {
    pub(crate) updates: Option<&'a mut UpdateSender>,
    pub(crate) neighbours: Option<&'a mut Neighbours>,
    pub(crate) label_map: Option<&'a mut LabelMap>,
    pub(crate) ldp: Option<&'a mut Ldp>,
    pub(crate) dhcp: Option<&'a mut LogonService>,
    pub(crate) isp_ids: &'a mut HashMap<String, IspId>,
}

/// Reads the file again and applies it; the answer, or why it was refused (nothing
/// changed then). `fwd` is the fast path's and slow path's side, `radius` the proxy's.
pub(crate) fn reload(
    src: &mut Source,
    fwd: Option<&mut crate::forwarding::Forwarding>,
    radius: Option<&ProxyHandle>,
) -> Result<Reloaded, String> {
    let path = src.path.display().to_string();
    let new = src.load().map_err(|e| format!("reload refused: {e}"))?;
    let plan = ispmux_conf::reload::plan(&src.loaded, &new).map_err(|keys| {
        format!(
            "reload refused: {path}: these cannot change while ispmux runs (restart it to \
             change them): {}",
            keys.join(", ")
        )
    })?;
    let follows = fwd.as_ref().is_some_and(|f| f.follows_neighbours());
    if !follows
        && plan
            .steps
            .iter()
            .any(|s| matches!(s, TableStep::Attach { .. }))
    {
        return Err(format!(
            "reload refused: {path}: a next hop given by address needs the neighbour follower, \
             which runs only when the file ispmux started from had one (or [ldp]): restart it"
        ));
    }
    // The proxy first: it may still refuse, and nothing else has changed yet.
    if plan.changes.radius() {
        let (Some(h), Some(r)) = (radius, new.config.radius.as_ref()) else {
            return Err("reload refused: no RADIUS proxy runs here".into());
        };
        h.reload(r).map_err(|e| format!("reload refused: {e}"))?;
    }
    let mut answer = Reloaded {
        path,
        changes: plan.changes.clone(),
        ..Reloaded::default()
    };
    if let Some(f) = fwd {
        let (reply, done) = mpsc::channel();
        let job = Job {
            cfg: new.config.clone(),
            isp_ids: new
                .preload
                .isps
                .iter()
                .map(|i| (i.name.clone(), i.id))
                .collect(),
            reload: plan,
            reply,
        };
        match f.reload(job, done, &new.preload, SLOW_PATH_WAIT)? {
            Some(done) => {
                answer.table_updates = done.table_updates;
                answer.table_updates_refused = done.refused;
                answer.bindings_released = done.bindings_released;
            }
            // Handed over: the file is the running one from now on, whenever it lands.
            None => tracing::warn!(
                "reload: the slow path has not carried it out within {SLOW_PATH_WAIT:?}; it will"
            ),
        }
    }
    tracing::info!(changes = ?answer.changes, updates = answer.table_updates, refused = answer.table_updates_refused, "reloaded {}", answer.path);
    src.loaded = new;
    Ok(answer)
}

/// The slow path's share of a reload, in one turn: the table steps, LDP's FECs and their
/// meanings, the logon proxy's ISPs.
pub(crate) fn carry_out(job: &Job, live: Live<'_>, now: Instant) -> Done {
    let Live {
        mut updates,
        mut neighbours,
        label_map,
        ldp,
        dhcp,
        isp_ids,
    } = live;
    let mut done = Done::default();
    let mut out = Vec::new();
    for step in &job.reload.steps {
        match *step {
            TableStep::Update(u) => out.push(u),
            TableStep::Attach { port, addr, entry } => match neighbours.as_deref_mut() {
                Some(nb) => nb.resolver_mut().attach(now, port, addr, entry, &mut out),
                // Checked before: never here.
                None => out.push(entry.update(ispmux_dataplane::wire::MacAddr::ZERO)),
            },
            TableStep::Detach(entry) => {
                if let Some(nb) = neighbours.as_deref_mut() {
                    nb.resolver_mut().detach(&entry);
                }
            }
        }
    }
    send(updates.as_deref_mut(), &out, &mut done);
    out.clear();
    // LDP: what its FECs mean now, then which it advertises.
    if let (Some(map), Some(nb)) = (label_map, neighbours) {
        map.reconfigure(now, &job.cfg, nb.resolver_mut(), &mut out);
        if let Some(ldp) = ldp {
            let mut fecs: Vec<FecState> = Vec::new();
            let (added, withdrawn) = ldp.reconfigure(now, &job.cfg, &mut fecs);
            tracing::info!(added, withdrawn, "ldp: egress FECs reloaded");
            map.apply(now, &fecs, nb.resolver_mut(), &mut out);
        }
        send(updates.as_deref_mut(), &out, &mut done);
    }
    *isp_ids = job.isp_ids.clone();
    if let (Some(svc), Some(d)) = (dhcp, job.cfg.dhcp.as_ref()) {
        let c = &job.reload.changes;
        // The store's ISP row carries the upstream label too (`GET /v1/isps`): an ISP whose
        // [[tables.isps]] entry changed is recorded again, not only one whose servers did.
        let relabelled = job
            .cfg
            .tables
            .isps
            .iter()
            .filter(|t| c.isps_changed.contains(&t.id))
            .map(|t| &t.name);
        let mut names: Vec<&String> = c
            .dhcp_isps_added
            .iter()
            .chain(&c.dhcp_isps_changed)
            .collect();
        for n in relabelled {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        for name in names {
            let Some(i) = d.isps.iter().find(|i| &i.name == name) else {
                continue;
            };
            let label = job
                .cfg
                .tables
                .isps
                .iter()
                .find(|t| &t.name == name)
                .and_then(|t| t.upstream.as_ref().map(|f| f.label));
            let isp = Isp {
                name: name.clone(),
                label,
                dhcp_servers: i.servers.clone(),
            };
            if let Err(e) = svc.registry().upsert_isp(&isp) {
                tracing::warn!(isp = %name, error = %e, "reload: ISP not recorded in the registry");
            }
        }
        // The releases leave with the logon proxy's next flush: store first, then tables.
        done.bindings_released = svc.set_isps(d) as u64;
    }
    if let Some(tx) = updates {
        tx.flush();
    }
    done
}

fn send(updates: Option<&mut UpdateSender>, out: &[TableUpdate], done: &mut Done) {
    let Some(tx) = updates else { return };
    for u in out {
        done.table_updates += 1;
        if let Err(e) = tx.send(*u) {
            done.refused += 1;
            tracing::warn!(update = ?u, error = %e, "reload: table update refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ispmux_dataplane::table::{updates, SubscriberKey};
    use ispmux_dataplane::wire::MacAddr;

    use super::*;

    const OLD: &str = r#"
[eal]
lcores = [0, 1]

[dataplane]
pipeline = "node"

[[port]]
name = "acc"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"

[tables.limits]
max_subscribers = 64
max_isps = 4
max_labels = 16
max_handoffs = 4

[[tables.isps]]
id = 1
name = "isp-a"
upstream = { label = 1001, port = "core", next_hop = "02:00:00:00:00:c1" }

[[tables.isps]]
id = 2
name = "isp-b"
upstream = { label = 1002, port = "core", next_hop = "02:00:00:00:00:c1" }

[[tables.ilm]]
label = 4002
action = { kind = "pop_deliver", isp = 2 }

[[tables.subscribers]]
port = "acc"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
"#;

    fn loaded(text: &str) -> Loaded {
        let config = ispmux_conf::parse(text, Path::new("t.toml")).expect("valid");
        let preload = config.preload_tables();
        Loaded { config, preload }
    }

    /// The slow path's share of removing ISP 2 and moving ISP 1's label, as a worker's
    /// replica sees it once it has replayed the writes.
    #[test]
    fn carried_out_the_workers_tables_follow_the_new_file() {
        let old = loaded(OLD);
        let text = OLD
            .replace("label = 1001", "label = 1011")
            .split("[[tables.isps]]\nid = 2")
            .next()
            .expect("head")
            .to_owned();
        let new = loaded(&text);
        let plan = ispmux_conf::reload::plan(&old, &new).expect("live");
        let master = old.preload.build().expect("tables");
        let mut replica = old.preload.build().expect("tables");
        let (mut tx, rx) = updates::channel(master, 1, 256);
        let mut isp_ids = HashMap::new();
        let job = Job {
            cfg: new.config.clone(),
            isp_ids: HashMap::from([("isp-a".to_owned(), 1)]),
            reload: plan,
            reply: mpsc::channel().0,
        };
        let live = Live {
            updates: Some(&mut tx),
            neighbours: None,
            label_map: None,
            ldp: None,
            dhcp: None,
            isp_ids: &mut isp_ids,
        };
        let done = carry_out(&job, live, Instant::now());
        assert_eq!(done.refused, 0);
        assert!(done.table_updates >= 4, "{done:?}");
        assert_eq!(isp_ids, job.isp_ids);
        rx[0].apply_pending(&mut replica, usize::MAX);
        let up = |t: &ispmux_dataplane::Tables, isp| {
            t.isps.get(isp).and_then(|e| e.upstream).map(|f| f.label)
        };
        assert_eq!(up(&replica, 1), Some(1011));
        assert_eq!(up(&replica, 2), None, "ISP 2's traffic is no_fec");
        assert!(replica.ilm.get(&4002).is_none());
        let key = SubscriberKey {
            port: 0,
            outer_vid: 0,
            inner_vid: 0,
            mac: MacAddr([2, 0, 0, 0xbb, 0, 1]),
        }
        .pack()
        .expect("key");
        assert!(replica.subscribers.get(&key).is_none(), "row removed");
    }
}
