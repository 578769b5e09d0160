//! Per-subscriber token buckets against DHCP floods: a client may burst a few messages
//! (DORA plus retransmissions) and then sustain a low rate; the excess is dropped before it
//! costs a registry lookup, a password hash or a datagram to the ISP.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by `K`, with a cap on how many keys are tracked.
#[derive(Debug)]
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `per_second` sustained, `burst` at once, at most `max_keys` keys tracked (beyond that,
    /// new keys are refused until [`RateLimiter::prune`] frees full buckets).
    pub fn new(per_second: f64, burst: u32, max_keys: usize) -> Self {
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            max_keys,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `key`; false means drop.
    pub fn allow(&mut self, key: &K, now: Instant) -> bool {
        let (per_second, burst) = (self.per_second, self.burst);
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.max_keys {
            return false;
        }
        let b = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let dt = now.saturating_duration_since(b.last);
        b.tokens = (b.tokens + dt.as_secs_f64() * per_second).min(burst);
        b.last = now.max(b.last);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets keys whose buckets have refilled: they behave as new keys anyway.
    pub fn prune(&mut self, now: Instant) {
        let (per_second, burst) = (self.per_second, self.burst);
        self.buckets.retain(|_, b| {
            let dt = now.saturating_duration_since(b.last);
            b.tokens + dt.as_secs_f64() * per_second < burst
        });
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(2.0, 3, 10);
        assert!((0..3).all(|_| rl.allow(&1, t0)));
        assert!(!rl.allow(&1, t0));
        assert!(rl.allow(&2, t0), "keys are independent");
        assert!(rl.allow(&1, t0 + Duration::from_millis(500)));
        assert!(!rl.allow(&1, t0 + Duration::from_millis(500)));
        rl.prune(t0 + Duration::from_secs(10));
        assert!(rl.is_empty());
    }

    #[test]
    fn key_table_is_capped() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(1.0, 1, 2);
        assert!(rl.allow(&1, t0) && rl.allow(&2, t0));
        assert!(!rl.allow(&3, t0));
        assert_eq!(rl.len(), 2);
    }
}
