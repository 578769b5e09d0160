//! The per-source rate limit of ICMP errors (RFC 1812 section 4.3.2.8): a token bucket per
//! destination of the errors (the offending packets' source), in a bounded map.
//!
//! A flood of offending packets from many (spoofed) sources must neither grow the map
//! without bound nor keep legitimate sources out: when the map is full, buckets that have
//! refilled (they behave exactly as a new one) are forgotten, at most once a second so that
//! a full map of busy sources does not cost a scan per packet; a new source that still
//! finds no room is limited.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::dhcp::ratelimit::RateLimiter;

/// How often a full map is swept at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Token buckets by source address.
#[derive(Debug)]
pub struct SourceLimiter {
    buckets: RateLimiter<Ipv4Addr>,
    max_sources: usize,
    swept: Option<Instant>,
}

impl SourceLimiter {
    /// `per_second` errors sustained and `burst` at once to each source, at most
    /// `max_sources` sources tracked.
    pub fn new(per_second: f64, burst: u32, max_sources: usize) -> Self {
        Self {
            buckets: RateLimiter::new(per_second, burst, max_sources),
            max_sources,
            swept: None,
        }
    }

    /// Takes a token for an error to `to`; false: limited (count it and send nothing).
    pub fn allow(&mut self, to: Ipv4Addr, now: Instant) -> bool {
        if self.buckets.len() >= self.max_sources
            && self
                .swept
                .is_none_or(|t| now.saturating_duration_since(t) >= SWEEP_EVERY)
        {
            self.buckets.prune(now);
            self.swept = Some(now);
        }
        self.buckets.allow(&to, now)
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);

    #[test]
    fn a_burst_then_the_rate_per_source() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(10.0, 3, 16);
        assert!((0..3).all(|_| l.allow(A, t0)));
        assert!(!l.allow(A, t0), "burst spent");
        assert!(l.allow(Ipv4Addr::new(198, 18, 1, 11), t0), "another source");
        assert!(
            l.allow(A, t0 + Duration::from_millis(100)),
            "one token a tenth of a second"
        );
        assert!(!l.allow(A, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_full_map_forgets_refilled_sources_not_busy_ones() {
        let t0 = Instant::now();
        let mut l = SourceLimiter::new(1.0, 2, 4);
        for i in 0..4 {
            assert!(l.allow(Ipv4Addr::new(10, 0, 0, i), t0));
        }
        assert!(
            !l.allow(Ipv4Addr::new(10, 0, 1, 0), t0),
            "full of busy sources"
        );
        assert_eq!(l.len(), 4);
        // Two seconds on, every bucket has refilled: a new source finds room.
        let t1 = t0 + Duration::from_secs(2);
        assert!(l.allow(Ipv4Addr::new(10, 0, 1, 0), t1));
        assert!(l.len() <= 4);
    }

    proptest::proptest! {
        /// However many sources, the map stays within its bound.
        #[test]
        fn bounded(srcs in proptest::collection::vec(proptest::num::u32::ANY, 0..200), ms in 0u64..5000) {
            let t0 = Instant::now();
            let mut l = SourceLimiter::new(5.0, 2, 32);
            for (i, s) in srcs.iter().enumerate() {
                let _ = l.allow(Ipv4Addr::from(*s), t0 + Duration::from_millis(ms * i as u64 / 200));
                proptest::prop_assert!(l.len() <= 32);
            }
        }
    }
}
