//! A worker's allowance of punts for DHCP from unregistered MACs: a token bucket whose
//! clock is read only when a frame asks for a token.
//!
//! Such a logon is always refused; the slow path records the first ones so an operator sees
//! the modem that is not registered yet, and a storm of them must not cost the worker more
//! than dropping a frame. So a granted token costs no clock read, and during a storm the
//! clock is read once per [`RECHECK`] refusals, not once a frame, and again after each
//! [`PuntBudget::recheck`] (the worker's maintenance between bursts).

/// Refusals in a row between clock reads while the bucket is empty.
pub const RECHECK: u32 = 32;

/// Nanoseconds from a monotonic clock (injected, so tests drive time).
pub type Clock = fn() -> u64;

/// Nanoseconds from the time stamp counter once EAL has measured its rate (a worker's case:
/// one instruction, never a system call, whatever clock source the kernel uses); before
/// that (tests without EAL), from the monotonic clock.
pub fn monotonic_ns() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    #[cfg(feature = "dpdk")]
    {
        static HZ: OnceLock<u64> = OnceLock::new();
        let hz = *HZ.get_or_init(ispmux_sys::tsc_hz);
        if hz > 0 {
            return u64::try_from(u128::from(ispmux_sys::tsc()) * 1_000_000_000 / u128::from(hz))
                .unwrap_or(u64::MAX);
        }
    }
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The bucket: up to one second's tokens, refilled at the rate asked for.
#[derive(Clone, Copy, Debug)]
pub struct PuntBudget {
    clock: Clock,
    /// When tokens were last added, ns.
    last: u64,
    tokens: u32,
    /// Refusals since the last clock read.
    refused: u32,
}

impl PuntBudget {
    /// A full bucket reading `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            last: clock(),
            tokens: u32::MAX,
            refused: 0,
        }
    }

    /// Takes a token at `per_s` tokens a second; `false` when there is none.
    #[inline]
    pub fn take(&mut self, per_s: u32) -> bool {
        if per_s == 0 {
            return false;
        }
        self.tokens = self.tokens.min(per_s);
        if self.tokens == 0 {
            if self.refused.is_multiple_of(RECHECK) {
                self.refill(per_s);
            }
            if self.tokens == 0 {
                self.refused = self.refused.wrapping_add(1);
                return false;
            }
        }
        self.refused = 0;
        self.tokens -= 1;
        true
    }

    /// Lets the next refusal read the clock: the worker calls this between bursts, so a
    /// lone logon after a storm is not refused on a stale bucket.
    pub fn recheck(&mut self) {
        self.refused = 0;
    }

    #[cold]
    fn refill(&mut self, per_s: u32) {
        let now = (self.clock)();
        let per_token = 1_000_000_000 / u64::from(per_s);
        let earned = now.saturating_sub(self.last) / per_token.max(1);
        if earned > 0 {
            self.tokens = u32::try_from(earned).unwrap_or(u32::MAX).min(per_s);
            self.last = if self.tokens == per_s {
                now
            } else {
                self.last + earned * per_token
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    static NOW: AtomicU64 = AtomicU64::new(0);
    fn fake() -> u64 {
        NOW.load(Ordering::Relaxed)
    }

    #[test]
    fn grants_a_second_of_tokens_then_the_rate() {
        NOW.store(5_000_000_000, Ordering::Relaxed);
        let mut b = PuntBudget::new(fake);
        let granted = (0..1000).filter(|_| b.take(10)).count();
        assert_eq!(granted, 10, "a full bucket holds one second's tokens");
        // Half a second later: five more, found within one clock re-read.
        NOW.fetch_add(500_000_000, Ordering::Relaxed);
        let granted = (0..1000).filter(|_| b.take(10)).count();
        assert_eq!(granted, 5);
        // A lone request after a quiet while, once the worker let the bucket recheck.
        NOW.fetch_add(3_000_000_000, Ordering::Relaxed);
        b.recheck();
        assert!(b.take(10));
        assert!(
            !PuntBudget::new(fake).take(0),
            "0 per second grants nothing"
        );
    }

    #[test]
    fn a_storm_reads_the_clock_once_per_recheck() {
        static READS: AtomicU64 = AtomicU64::new(0);
        fn counted() -> u64 {
            READS.fetch_add(1, Ordering::Relaxed);
            0
        }
        let mut b = PuntBudget::new(counted);
        let before = READS.load(Ordering::Relaxed);
        let granted = (0..32_000).filter(|_| b.take(100)).count();
        assert_eq!(granted, 100);
        let reads = READS.load(Ordering::Relaxed) - before;
        assert!(
            reads <= 32_000 / u64::from(RECHECK) + 1,
            "{reads} clock reads"
        );
    }
}
