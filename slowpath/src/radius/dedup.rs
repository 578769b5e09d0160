//! Duplicate detection (RFC 5080 section 2.2.2): a NAS retransmission (same source, Identifier
//! and Request Authenticator) gets the cached answer, or is dropped while the original is still
//! being proxied, so nothing is proxied or counted twice.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::usage::UsageEvent;

/// Identity of a request from a NAS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub from: SocketAddr,
    pub acct: bool,
    pub id: u8,
    pub authenticator: [u8; 16],
}

/// State of a request seen before.
#[derive(Debug, Clone)]
pub enum Seen {
    InProgress,
    /// The answer sent, and the usage record committed with it (replayed idempotently).
    Answered(Vec<u8>, Vec<UsageEvent>),
}

/// Cache of requests seen recently.
pub struct DuplicateCache {
    entries: super::FastMap<RequestKey, (Seen, u64)>,
    expiry: VecDeque<(Instant, RequestKey, u64)>,
    ttl: Duration,
    generation: u64,
}

impl DuplicateCache {
    pub fn new(ttl: Duration) -> Self {
        DuplicateCache {
            entries: super::FastMap::default(),
            expiry: VecDeque::new(),
            ttl,
            generation: 0,
        }
    }

    /// The earlier state of `key`, or none (and `key` is now in progress).
    pub fn check(&mut self, now: Instant, key: &RequestKey) -> Option<Seen> {
        self.prune(now);
        if let Some((s, _)) = self.entries.get(key) {
            return Some(s.clone());
        }
        self.entries.insert(key.clone(), (Seen::InProgress, 0));
        None
    }

    /// Records the answer; it is kept for the cache's lifetime from now.
    pub fn answered(&mut self, now: Instant, key: RequestKey, bytes: Vec<u8>, u: Vec<UsageEvent>) {
        self.generation += 1;
        self.entries
            .insert(key.clone(), (Seen::Answered(bytes, u), self.generation));
        self.expiry
            .push_back((now + self.ttl, key, self.generation));
    }

    /// Forgets a request given up on, so a retransmission is proxied afresh.
    pub fn forget(&mut self, key: &RequestKey) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn prune(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.expiry.front() {
            if *t > now {
                break;
            }
            if let Some((_, k, g)) = self.expiry.pop_front() {
                // A key answered again later carries a newer generation: keep it.
                if self.entries.get(&k).is_some_and(|(_, cur)| *cur == g) {
                    self.entries.remove(&k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmission_gets_cached_answer_until_expiry() {
        let t0 = Instant::now();
        let mut c = DuplicateCache::new(Duration::from_secs(5));
        let k = RequestKey {
            from: "127.0.0.1:5000".parse().expect("addr"),
            acct: false,
            id: 9,
            authenticator: [1; 16],
        };
        assert!(c.check(t0, &k).is_none());
        assert!(matches!(c.check(t0, &k), Some(Seen::InProgress)));
        c.answered(t0, k.clone(), vec![2, 9], vec![]);
        assert!(
            matches!(c.check(t0 + Duration::from_secs(4), &k), Some(Seen::Answered(b, u)) if b == vec![2, 9] && u.is_empty())
        );
        assert!(c.check(t0 + Duration::from_secs(6), &k).is_none());
        c.forget(&k);
        assert!(c.is_empty());
    }
}
