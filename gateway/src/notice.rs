//! Refusal notices (seed 001, claim 17: the ISP is told when a customer's logon is refused):
//! each ISP with a `refusal_webhook` is sent its subscribers' new refusals as JSON POSTs.
//!
//! The logon engine only appends to the refusal log in the store, as it always has; this
//! notifier runs on a thread of its own with its own store connection, so a slow or dead
//! webhook never holds up a logon. Delivery is at least once, in order, per ISP: the last
//! refusal id an ISP's webhook answered 2xx for is kept in the store
//! ([`Registry::notice_cursor`]), so a restart resumes there and a refusal is never lost
//! (the receiver deduplicates by `id`). A failed POST is retried with the same refusals after
//! a backoff that doubles from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`].
//!
//! The body: `{"isp": NAME, "refusals": [{"id", "at" (Unix seconds), "mac", "reason"}...]}`,
//! at most [`BATCH`] refusals; with `refusal_webhook_secret`, the header
//! `X-Ispmux-Signature: sha256=HEX` carries HMAC-SHA256 of the body under that key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use ispmux_conf::Config;
use ispmux_slowpath::registry::{Refusal, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{GatewayError, Step};

/// Refusals per POST at most.
pub const BATCH: u32 = 100;
/// How often the refusal log is read for new refusals.
pub const POLL_EVERY: Duration = Duration::from_millis(500);
/// The wait after a first failure; it doubles with each failure after.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one POST may take, connection included.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// One ISP's webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// The ISP, as the registry names it.
    pub isp: String,
    /// Where to POST.
    pub url: String,
    /// The HMAC-SHA256 key of the signature header.
    pub secret: Option<Vec<u8>>,
}

impl Webhook {
    /// The `[[dhcp.isps]]` with a `refusal_webhook`.
    pub fn configured(cfg: &Config) -> Vec<Webhook> {
        cfg.dhcp
            .iter()
            .flat_map(|d| &d.isps)
            .filter_map(|i| {
                Some(Webhook {
                    isp: i.name.clone(),
                    url: i.refusal_webhook.clone()?,
                    secret: i.refusal_webhook_secret.clone().map(String::into_bytes),
                })
            })
            .collect()
    }
}

/// One ISP's deliveries since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeCounters {
    /// Refusals its webhook took (answered 2xx).
    pub delivered: u64,
    /// POSTs that failed (no answer, not 2xx).
    pub failures: u64,
    /// Whether the last POST failed: its refusals wait for the next try.
    pub failing: bool,
}

/// The body of one POST.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct NoticeBody {
    /// The ISP whose subscribers were refused.
    pub isp: String,
    /// Oldest first.
    pub refusals: Vec<NoticeRefusal>,
}

/// One refusal in a [`NoticeBody`].
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct NoticeRefusal {
    /// The refusal log's id: increasing, for the receiver to deduplicate.
    pub id: i64,
    /// Unix seconds.
    pub at: u64,
    /// The subscriber's MAC.
    pub mac: String,
    /// Why, as `ispmux refusals` says it.
    pub reason: String,
}

/// The signature header's value for `body` under `key`: `sha256=` and the lowercase hex
/// HMAC-SHA256.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256=");
    for b in tag {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Why a POST did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// It was answered, but not with 2xx.
    #[error("answered {0}")]
    Status(u16),
    /// No answer: connection, TLS, timeout.
    #[error("{0}")]
    Transport(String),
}

/// How a body reaches a webhook: [`post`] in the daemon, a recording function in tests.
pub type Post<'a> = dyn FnMut(&Webhook, &[u8]) -> Result<(), PostError> + 'a;

struct Target {
    hook: Webhook,
    /// The last refusal id delivered (as the store says).
    cursor: i64,
    backoff: Duration,
    next_try: Instant,
    counters: NoticeCounters,
}

/// The notifier's state: a store connection and, per webhook, how far it got.
pub struct Notices {
    reg: Registry,
    targets: Vec<Target>,
}

impl Notices {
    /// Reads each webhook's cursor from `reg` (recording the newest refusal as the start of
    /// a webhook seen for the first time).
    pub fn new(
        mut reg: Registry,
        hooks: Vec<Webhook>,
        now: Instant,
    ) -> Result<Self, RegistryError> {
        let targets = hooks
            .into_iter()
            .map(|hook| {
                Ok(Target {
                    cursor: reg.notice_cursor(&hook.isp)?,
                    hook,
                    backoff: Duration::ZERO,
                    next_try: now,
                    counters: NoticeCounters::default(),
                })
            })
            .collect::<Result<_, RegistryError>>()?;
        Ok(Notices { reg, targets })
    }

    /// Sends each webhook due a try its next refusals, one POST each.
    pub fn turn(&mut self, now: Instant, post: &mut Post<'_>) {
        for t in &mut self.targets {
            if now < t.next_try {
                continue;
            }
            let batch = match self.reg.refusals_after(&t.hook.isp, t.cursor, BATCH) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(isp = %t.hook.isp, error = %e, "refusal notices: reading the refusal log");
                    t.next_try = now + POLL_EVERY;
                    continue;
                }
            };
            let Some(&(last, _)) = batch.last() else {
                t.next_try = now + POLL_EVERY;
                continue;
            };
            let body = body(&t.hook.isp, &batch);
            match post(&t.hook, &body) {
                Ok(()) => {
                    if let Err(e) = self.reg.set_notice_cursor(&t.hook.isp, last) {
                        // Delivered all the same: at worst sent again after a restart.
                        tracing::warn!(isp = %t.hook.isp, error = %e, "refusal notices: recording delivery");
                    }
                    t.cursor = last;
                    t.counters.delivered += batch.len() as u64;
                    t.counters.failing = false;
                    t.backoff = Duration::ZERO;
                    // A full batch: more may wait.
                    t.next_try = if batch.len() == BATCH as usize {
                        now
                    } else {
                        now + POLL_EVERY
                    };
                }
                Err(e) => {
                    t.counters.failures += 1;
                    t.counters.failing = true;
                    t.backoff = (t.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                    t.next_try = now + t.backoff;
                    tracing::warn!(isp = %t.hook.isp, url = %t.hook.url, error = %e, retry_in_s = t.backoff.as_secs(), "refusal notices: webhook failed");
                }
            }
        }
    }

    /// Each webhook's counters, by ISP.
    pub fn counters(&self) -> Vec<(String, NoticeCounters)> {
        self.targets
            .iter()
            .map(|t| (t.hook.isp.clone(), t.counters.clone()))
            .collect()
    }
}

fn body(isp: &str, batch: &[(i64, Refusal)]) -> Vec<u8> {
    let b = NoticeBody {
        isp: isp.to_owned(),
        refusals: batch
            .iter()
            .map(|(id, r)| NoticeRefusal {
                id: *id,
                at: r.at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                mac: r.mac.to_string(),
                reason: r.reason.clone(),
            })
            .collect(),
    };
    // Plain strings and numbers: serialising cannot fail.
    serde_json::to_vec(&b).unwrap_or_default()
}

/// POSTs `body` to `hook` over HTTP or HTTPS (the system's CA certificates).
pub fn post(agent: &ureq::Agent, hook: &Webhook, body: &[u8]) -> Result<(), PostError> {
    let mut req = agent
        .post(&hook.url)
        .set("Content-Type", "application/json");
    let sig;
    if let Some(key) = &hook.secret {
        sig = signature(key, body);
        req = req.set("X-Ispmux-Signature", &sig);
    }
    match req.send_bytes(body) {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(PostError::Status(r.status())),
        Err(ureq::Error::Status(code, _)) => Err(PostError::Status(code)),
        Err(e) => Err(PostError::Transport(e.to_string())),
    }
}

/// The notifier thread of a running gateway.
pub struct Notifier {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Mutex<Vec<(String, NoticeCounters)>>>,
}

impl Notifier {
    /// Starts the thread when some ISP has a webhook.
    pub fn start(cfg: &Config) -> Result<Option<Notifier>, GatewayError> {
        let hooks = Webhook::configured(cfg);
        if hooks.is_empty() {
            return Ok(None);
        }
        let reg = crate::logon::open_registry(cfg)?;
        let mut notices = Notices::new(reg, hooks, Instant::now())
            .step(|| "reading the refusal notices".into())?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Mutex::new(notices.counters()));
        let agent = ureq::AgentBuilder::new()
            .timeout(POST_TIMEOUT)
            .redirects(0)
            .build();
        let thread = std::thread::Builder::new()
            .name("refusal-notices".into())
            .spawn({
                let (stop, counters) = (stop.clone(), counters.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        notices.turn(Instant::now(), &mut |h, b| post(&agent, h, b));
                        if let Ok(mut c) = counters.lock() {
                            *c = notices.counters();
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
            .step(|| "starting the refusal notifier".into())?;
        Ok(Some(Notifier {
            stop,
            thread: Some(thread),
            counters,
        }))
    }

    /// Each webhook's counters, by ISP.
    pub fn counters(&self) -> Vec<(String, NoticeCounters)> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A POST under way ends within its timeout.
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_slowpath::dhcp::MacAddr;
    use ispmux_slowpath::registry::Isp;
    use std::time::SystemTime;

    fn reg_with(refusals: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let mut r = Registry::open(&path).expect("open");
        for isp in ["isp-a", "isp-b"] {
            r.upsert_isp(&Isp {
                name: isp.into(),
                label: None,
                dhcp_servers: vec![],
            })
            .expect("isp");
        }
        for (isp, reason) in refusals {
            refuse(&mut r, isp, reason);
        }
        (dir, path)
    }

    fn refuse(r: &mut Registry, isp: &str, reason: &str) {
        r.record_refusal(&Refusal {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            mac: MacAddr([2, 0, 0, 0xaa, 0, 1]),
            isp: Some(isp.into()),
            reason: reason.into(),
        })
        .expect("refusal");
    }

    fn hook(isp: &str) -> Webhook {
        Webhook {
            isp: isp.into(),
            url: format!("http://127.0.0.1:9/{isp}"),
            secret: None,
        }
    }

    fn reasons(body: &[u8]) -> Vec<String> {
        let b: NoticeBody = serde_json::from_slice(body).expect("json");
        b.refusals.into_iter().map(|r| r.reason).collect()
    }

    #[test]
    fn each_isp_hears_its_own_new_refusals_once_in_order() {
        let (_d, path) = reg_with(&[("isp-a", "old")]);
        let t0 = Instant::now();
        let mut n = Notices::new(
            Registry::open(&path).expect("open"),
            vec![hook("isp-a"), hook("isp-b")],
            t0,
        )
        .expect("notices");
        let mut w = Registry::open(&path).expect("writer");
        refuse(&mut w, "isp-a", "bad credential");
        refuse(&mut w, "isp-b", "suspended");
        refuse(&mut w, "isp-a", "ISP sent DHCPNAK");
        let mut sent = Vec::new();
        n.turn(t0, &mut |h, b| {
            sent.push((h.isp.clone(), reasons(b)));
            Ok(())
        });
        assert_eq!(
            sent,
            [
                (
                    "isp-a".into(),
                    vec!["bad credential".into(), "ISP sent DHCPNAK".into()]
                ),
                ("isp-b".into(), vec!["suspended".to_owned()]),
            ]
        );
        sent.clear();
        n.turn(t0 + POLL_EVERY, &mut |h, b| {
            sent.push((h.isp.clone(), reasons(b)));
            Ok(())
        });
        assert!(sent.is_empty(), "{sent:?}");
        // A restart resumes after what was delivered.
        drop(n);
        refuse(&mut w, "isp-a", "after the restart");
        let mut n = Notices::new(
            Registry::open(&path).expect("open"),
            vec![hook("isp-a")],
            t0,
        )
        .expect("notices");
        n.turn(t0, &mut |h, b| {
            sent.push((h.isp.clone(), reasons(b)));
            Ok(())
        });
        assert_eq!(sent, [("isp-a".into(), vec!["after the restart".into()])]);
    }

    #[test]
    fn a_failing_webhook_gets_the_same_refusals_again_after_a_growing_backoff() {
        let (_d, path) = reg_with(&[]);
        let t0 = Instant::now();
        let mut n = Notices::new(
            Registry::open(&path).expect("open"),
            vec![hook("isp-a")],
            t0,
        )
        .expect("notices");
        let mut w = Registry::open(&path).expect("writer");
        refuse(&mut w, "isp-a", "bad credential");
        let mut tries = Vec::new();
        let mut at = t0;
        for answer in [503, 0, 200] {
            // Nothing is sent before the backoff ends.
            n.turn(at, &mut |_, b| {
                tries.push((at - t0, reasons(b)));
                match answer {
                    200 => Ok(()),
                    0 => Err(PostError::Transport("refused".into())),
                    s => Err(PostError::Status(s)),
                }
            });
            let next = n.targets[0].next_try;
            n.turn(next - Duration::from_millis(1), &mut |_, _| {
                panic!("too early")
            });
            at = next;
        }
        let want = vec!["bad credential".to_owned()];
        assert_eq!(
            tries,
            [
                (Duration::ZERO, want.clone()),
                (FIRST_BACKOFF, want.clone()),
                (FIRST_BACKOFF * 3, want)
            ]
        );
        assert_eq!(
            n.counters(),
            [(
                "isp-a".into(),
                NoticeCounters {
                    delivered: 1,
                    failures: 2,
                    failing: false
                }
            )]
        );
    }

    #[test]
    fn a_backlog_goes_in_batches_back_to_back() {
        let (_d, path) = reg_with(&[]);
        let t0 = Instant::now();
        let mut n = Notices::new(
            Registry::open(&path).expect("open"),
            vec![hook("isp-a")],
            t0,
        )
        .expect("notices");
        let mut w = Registry::open(&path).expect("writer");
        for i in 0..(BATCH + 5) {
            refuse(&mut w, "isp-a", &format!("r{i}"));
        }
        let mut sizes = Vec::new();
        for _ in 0..3 {
            n.turn(t0, &mut |_, b| {
                sizes.push(reasons(b).len());
                Ok(())
            });
        }
        assert_eq!(sizes, [BATCH as usize, 5]);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
