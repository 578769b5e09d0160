//! The time as the slow-path engines take it: a monotonic instant for their timers (a wall
//! clock stepped by NTP or an operator must neither fire a timer early nor stall one) and
//! the wall clock for what is recorded or billed (lease ends in the store, billing periods).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Both clocks, read once per turn of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time: what every deadline is measured on.
    pub mono: Instant,
    /// Wall-clock time, whole seconds since the Unix epoch: what is recorded.
    pub unix: u64,
}

impl Now {
    /// The current time from the system clocks.
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// The wall-clock time as a `SystemTime` (whole seconds).
    pub fn wall(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.unix)
    }
}

/// Both clocks `d` later (the wall clock by whole seconds of `d`).
impl std::ops::Add<Duration> for Now {
    type Output = Now;
    fn add(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            unix: self.unix + d.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_is_whole_unix_seconds() {
        let n = Now {
            mono: Instant::now(),
            unix: 1_700_000_000,
        };
        assert_eq!(
            n.wall().duration_since(UNIX_EPOCH).ok(),
            Some(Duration::from_secs(1_700_000_000))
        );
        let later = n + Duration::from_millis(2500);
        assert_eq!(later.unix, 1_700_000_002);
        assert_eq!(later.mono - n.mono, Duration::from_millis(2500));
    }
}
