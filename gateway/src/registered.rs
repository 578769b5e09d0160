//! The registry's MACs in the workers' registered filter ([`ispmux_dataplane::table::
//! RegisteredFilter`]): loaded into every table copy before the workers start, then kept in
//! step with the registry's change log, whoever writes the registry (`ispmux subscriber`, an
//! import, a later API), so a worker can drop DHCP from MACs no ISP registered.
//!
//! The change log is read every [`POLL_EVERY`]: a subscriber registered while the gateway
//! runs may see its first DISCOVER dropped for that long (its client sends it again after
//! about 4 s, RFC 2131 §4.1). A MAC leaving the registry leaves the filter on the same turn.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ispmux_conf::dhcp::DhcpConfig;
use ispmux_conf::Config;
use ispmux_dataplane::table::updates::UpdateSender;
use ispmux_dataplane::{DhcpFilter, TableUpdate, Tables};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::Registry;

use crate::error::{GatewayError, Step};
use crate::slowpath::SlowPathStats;

/// How often the registry's change log is read.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often the change log is emptied of what was read (a write to the store).
const PRUNE_EVERY: Duration = Duration::from_secs(10);
/// Changes read per turn at most: a bulk import reaches the workers over several turns
/// rather than stalling the slow path on one.
const CHANGES_PER_TURN: usize = 20_000;

/// The filter's state on the slow path: the registry connection, how far its change log was
/// read, and the MACs the filter holds (a Bloom filter cannot say, and a MAC may leave it
/// only once it entered).
pub struct RegistrySync {
    reg: Registry,
    seq: i64,
    pruned_to: i64,
    known: HashSet<MacAddr>,
    next_poll: Instant,
    next_prune: Instant,
    filter: DhcpFilter,
}

impl RegistrySync {
    /// Reads every registered MAC from the store of `cfg`.
    pub fn open(cfg: &Config, d: &DhcpConfig, now: Instant) -> Result<Self, GatewayError> {
        let mut reg = crate::logon::open_registry(cfg)?;
        let (macs, seq) = reg
            .registered_macs()
            .step(|| "reading the registered MACs".into())?;
        Ok(Self {
            reg,
            seq,
            pruned_to: 0,
            known: macs.into_iter().collect(),
            next_poll: now + POLL_EVERY,
            next_prune: now,
            filter: DhcpFilter {
                complete: true,
                punts_per_s: d.unregistered_per_s,
            },
        })
    }

    /// MACs registered now.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Puts every registered MAC into `master` (the slow path's copy, before its journal
    /// starts: it counts them, so they can leave again) and turns the filter on.
    pub fn load(&self, master: &mut Tables) {
        master.registered.enable_counts();
        for &mac in &self.known {
            // Registering cannot fail: the filter has no capacity to run out of.
            let _ = master.apply(&TableUpdate::Register { mac });
        }
        let _ = master.apply(&TableUpdate::SetDhcpFilter(self.filter));
    }

    /// Reads what changed in the registry and sends the filter's updates.
    pub fn turn(&mut self, now: Instant, tx: &mut UpdateSender, st: &mut SlowPathStats) {
        st.registered = self.known.len() as u64;
        if now < self.next_poll {
            return;
        }
        self.next_poll = now + POLL_EVERY;
        let changes = match self.reg.changes_since(self.seq, CHANGES_PER_TURN) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "registry: reading its change log");
                return;
            }
        };
        for (seq, mac, registered) in changes {
            self.seq = seq;
            let update = match (registered, self.known.contains(&mac)) {
                (true, false) => {
                    self.known.insert(mac);
                    TableUpdate::Register { mac }
                }
                (false, true) => {
                    self.known.remove(&mac);
                    TableUpdate::Unregister { mac }
                }
                _ => continue,
            };
            match tx.send(update) {
                Ok(()) => st.registered_updates += 1,
                Err(e) => {
                    tracing::warn!(update = ?update, error = %e, "table update refused");
                    st.update_errors += 1;
                }
            }
        }
        st.registered = self.known.len() as u64;
        if now >= self.next_prune && self.seq > self.pruned_to {
            self.next_prune = now + PRUNE_EVERY;
            match self.reg.forget_changes_through(self.seq) {
                Ok(_) => self.pruned_to = self.seq,
                Err(e) => tracing::debug!(error = %e, "registry: pruning its change log"),
            }
        }
    }
}
