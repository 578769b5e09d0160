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

/// Expired entries removed per lookup. After a pause a whole TTL's worth of answers can be
/// due at once (hundreds of thousands after a burst), and removing them in one go held the
/// event loop for tens of milliseconds, long enough for NASes' requests to queue up; a few
/// per lookup keep up with any request rate. Expiry stays exact: an entry past its time is
/// ignored whether or not it has been removed yet.
const PRUNE_STEP: usize = 64;

/// Cache of requests seen recently.
pub struct DuplicateCache {
    /// State, generation, and (once answered) when it expires.
    entries: super::FastMap<RequestKey, (Seen, u64, Option<Instant>)>,
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
        self.prune(now, PRUNE_STEP);
        if let Some((s, _, expires)) = self.entries.get(key) {
            if expires.is_none_or(|e| e > now) {
                return Some(s.clone());
            }
        }
        // New, or expired and not yet pruned (its expiry item no longer matches).
        self.entries
            .insert(key.clone(), (Seen::InProgress, 0, None));
        None
    }

    /// Records the answer; it is kept for the cache's lifetime from now.
    pub fn answered(&mut self, now: Instant, key: RequestKey, bytes: Vec<u8>, u: Vec<UsageEvent>) {
        self.generation += 1;
        let expires = now + self.ttl;
        self.entries.insert(
            key.clone(),
            (Seen::Answered(bytes, u), self.generation, Some(expires)),
        );
        self.expiry.push_back((expires, key, self.generation));
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

    /// Removes up to `max` expired entries, oldest first.
    pub fn prune(&mut self, now: Instant, max: usize) {
        for _ in 0..max {
            let Some((t, _, _)) = self.expiry.front() else {
                break;
            };
            if *t > now {
                break;
            }
            if let Some((_, k, g)) = self.expiry.pop_front() {
                // A key answered again later carries a newer generation: keep it.
                if self.entries.get(&k).is_some_and(|(_, cur, _)| *cur == g) {
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

    fn key(i: u32) -> RequestKey {
        let mut authenticator = [0; 16];
        authenticator[..4].copy_from_slice(&i.to_be_bytes());
        RequestKey {
            from: "127.0.0.1:5000".parse().expect("addr"),
            acct: false,
            id: i as u8,
            authenticator,
        }
    }

    /// After a pause, expired answers go a few per lookup (no stall), yet none of them is
    /// taken for a duplicate meanwhile.
    #[test]
    fn expiry_is_exact_while_pruning_is_spread() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(5);
        let mut c = DuplicateCache::new(ttl);
        let n = 10 * PRUNE_STEP as u32;
        for i in 0..n {
            assert!(c.check(t0, &key(i)).is_none());
            c.answered(t0, key(i), vec![1], vec![]);
        }
        assert_eq!(c.len(), n as usize);
        let later = t0 + ttl + Duration::from_millis(1);
        // The last answered, looked up first: expired, so new, though still stored.
        assert!(c.check(later, &key(n - 1)).is_none());
        assert_eq!(c.len(), n as usize - PRUNE_STEP);
        // Answered again now, it outlives its first expiry item.
        c.answered(later, key(n - 1), vec![2], vec![]);
        for i in n..2 * n {
            assert!(c.check(later, &key(i)).is_none());
            c.forget(&key(i));
        }
        assert_eq!(c.len(), 1, "the old answers all pruned in steps");
        assert!(matches!(c.check(later, &key(n - 1)), Some(Seen::Answered(b, _)) if b == vec![2]));
    }
}
