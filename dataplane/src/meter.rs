//! A two-rate three-colour meter (RFC 2698 trTCM) for per-subscriber policing.
//!
//! Hand-written rather than called through DPDK's `rte_meter`: the check runs once per frame
//! per direction, and its state must sit inside the subscriber entry's cache line so a frame
//! costs no extra random cache line. `rte_meter_trtcm` is 32 bytes of `u64`s; [`Trtcm`] is
//! 24 bytes (two `u64` bucket times, two `u32` token counts), and the check inlines into
//! the pipeline without a call through the C shim.
//!
//! The arithmetic is `rte_meter`'s (DPDK 22.11), so colours are identical frame by frame:
//! - a rate becomes a bucket *period* in TSC cycles and *bytes per period*: a period of
//!   `hz / rate` cycles (as `f64`, truncated) adding one byte, or, when that is under
//!   100 cycles, `ceil(100 / period)` bytes every `hz * bytes / rate` cycles;
//! - each bucket keeps its own last-update time, advanced by whole periods only, so the
//!   remainder carries over to the next frame;
//! - colour-blind: red if the peak bucket lacks the frame's bytes, else yellow if the
//!   committed bucket lacks them (peak charged), else green (both charged).
//!
//! `dataplane/tests/meter_rte.rs` drives this meter and `rte_meter` with the same frames and
//! asserts the same colours and token counts; `perf/run meter-cost` compares their cost.
//! The fuzz target `meter` (`dataplane/fuzz/fuzz_targets/meter.rs`) feeds it any profile and
//! frame series.
//!
//! Where it differs from `rte_meter`, on inputs `rte_meter` does not define:
//! - time before a bucket's last update adds no tokens (`rte_meter` wraps and refills);
//! - refills saturate instead of wrapping after gaps of years at terabytes per second;
//! - bursts above `u32::MAX` bytes are refused ([`MeterError::BurstTooLarge`]), which is what
//!   keeps the state at 24 bytes;
//! - a profile whose period would be zero or overflow is refused instead of dividing by zero.

/// A frame's colour, numbered as DPDK's `enum rte_color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Color {
    Green = 0,
    Yellow = 1,
    Red = 2,
}

/// RFC 2698 parameters: rates in bytes per second, burst sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrtcmParams {
    /// Committed Information Rate.
    pub cir: u64,
    /// Peak Information Rate, at least `cir`.
    pub pir: u64,
    /// Committed Burst Size.
    pub cbs: u64,
    /// Peak Burst Size.
    pub pbs: u64,
}

/// Why a profile was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("CIR and PIR must be above zero")]
    ZeroRate,
    #[error("PIR is below CIR")]
    PeakBelowCommitted,
    #[error("CBS and PBS must be above zero")]
    ZeroBurst,
    #[error("CBS and PBS must be at most {} bytes", u32::MAX)]
    BurstTooLarge,
    #[error("TSC frequency is zero")]
    ZeroTscHz,
    #[error("rate too high for the TSC frequency (bucket period would be zero or overflow)")]
    RateTooHigh,
}

/// Periods below this many TSC cycles add several bytes at once (`RTE_METER_TB_PERIOD_MIN`).
const PERIOD_MIN: u64 = 100;

/// A profile precomputed for the per-frame check; shared by every meter of one plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrtcmProfile {
    cir: Bucket,
    pir: Bucket,
}

/// One token bucket's refill in TSC cycles, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    period: u64,
    bytes_per_period: u64,
    size: u32,
}

impl Bucket {
    /// `rte_meter_get_tb_params`: the same `f64` division, truncation and ceiling.
    fn new(tsc_hz: u64, rate: u64, size: u64) -> Result<Self, MeterError> {
        let size = u32::try_from(size).map_err(|_| MeterError::BurstTooLarge)?;
        let period = tsc_hz as f64 / rate as f64;
        let (period, bytes_per_period) = if period >= PERIOD_MIN as f64 {
            (period as u64, 1)
        } else {
            let bytes = (PERIOD_MIN as f64 / period).ceil() as u64;
            let cycles = tsc_hz.checked_mul(bytes).ok_or(MeterError::RateTooHigh)? / rate;
            (cycles, bytes)
        };
        if period == 0 {
            return Err(MeterError::RateTooHigh);
        }
        Ok(Bucket {
            period,
            bytes_per_period,
            size,
        })
    }

    /// Tokens after refilling from `*time` to `now`; `*time` advances by whole periods.
    #[inline(always)]
    fn refill(&self, time: &mut u64, tokens: u32, now: u64) -> u32 {
        let periods = now.saturating_sub(*time) / self.period;
        // periods * period ≤ now - *time: neither overflows.
        *time += periods * self.period;
        let tokens =
            u64::from(tokens).saturating_add(periods.saturating_mul(self.bytes_per_period));
        tokens.min(u64::from(self.size)) as u32
    }
}

impl TrtcmProfile {
    /// Precomputes `params` for a TSC running at `tsc_hz`; refuses what `rte_meter` refuses
    /// (zero rates or bursts, PIR below CIR) and what would not fit the 24-byte state.
    pub fn new(params: TrtcmParams, tsc_hz: u64) -> Result<Self, MeterError> {
        if params.cir == 0 || params.pir == 0 {
            return Err(MeterError::ZeroRate);
        }
        if params.pir < params.cir {
            return Err(MeterError::PeakBelowCommitted);
        }
        if params.cbs == 0 || params.pbs == 0 {
            return Err(MeterError::ZeroBurst);
        }
        if tsc_hz == 0 {
            return Err(MeterError::ZeroTscHz);
        }
        Ok(TrtcmProfile {
            cir: Bucket::new(tsc_hz, params.cir, params.cbs)?,
            pir: Bucket::new(tsc_hz, params.pir, params.pbs)?,
        })
    }

    /// Committed bucket: (period in TSC cycles, bytes per period), as `rte_meter` has them.
    pub fn committed_period(&self) -> (u64, u64) {
        (self.cir.period, self.cir.bytes_per_period)
    }

    /// Peak bucket: (period in TSC cycles, bytes per period), as `rte_meter` has them.
    pub fn peak_period(&self) -> (u64, u64) {
        (self.pir.period, self.pir.bytes_per_period)
    }
}

/// One meter's state: 24 bytes, meant to live in the subscriber entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Trtcm {
    time_tc: u64,
    time_tp: u64,
    tc: u32,
    tp: u32,
}

const _: () = assert!(std::mem::size_of::<Trtcm>() == 24);

impl Trtcm {
    /// A meter with both buckets full at TSC time `now`.
    pub fn new(profile: &TrtcmProfile, now: u64) -> Self {
        Trtcm {
            time_tc: now,
            time_tp: now,
            tc: profile.cir.size,
            tp: profile.pir.size,
        }
    }

    /// Tokens in bytes: (committed, peak), as of the last check.
    pub fn tokens(&self) -> (u32, u32) {
        (self.tc, self.tp)
    }

    /// Colour-blind check of a `len`-byte frame at TSC time `now` (RFC 2698 §3).
    #[inline]
    pub fn check(&mut self, profile: &TrtcmProfile, now: u64, len: u32) -> Color {
        self.check_aware(profile, now, len, Color::Green)
    }

    /// Colour-aware check: a frame pre-coloured yellow is never green, red is always red
    /// (RFC 2698 §3). Green pre-colour is the colour-blind check.
    #[inline]
    pub fn check_aware(&mut self, profile: &TrtcmProfile, now: u64, len: u32, pre: Color) -> Color {
        let tc = profile.cir.refill(&mut self.time_tc, self.tc, now);
        let tp = profile.pir.refill(&mut self.time_tp, self.tp, now);
        if pre == Color::Red || tp < len {
            self.tc = tc;
            self.tp = tp;
            return Color::Red;
        }
        self.tp = tp - len;
        if pre == Color::Yellow || tc < len {
            self.tc = tc;
            return Color::Yellow;
        }
        self.tc = tc - len;
        Color::Green
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HZ: u64 = 1_000_000;

    fn profile(cir: u64, pir: u64, cbs: u64, pbs: u64) -> TrtcmProfile {
        TrtcmProfile::new(TrtcmParams { cir, pir, cbs, pbs }, HZ).expect("valid profile")
    }

    #[test]
    fn known_series_colour_blind() {
        // 1,000 B/s committed, 2,000 B/s peak: one byte per 1,000 and per 500 cycles.
        let p = profile(1_000, 2_000, 1_500, 3_000);
        assert_eq!(p.committed_period(), (1_000, 1));
        assert_eq!(p.peak_period(), (500, 1));
        let mut m = Trtcm::new(&p, 0);
        // Full buckets (1,500 / 3,000): green charges both.
        assert_eq!(m.check(&p, 0, 1_000), Color::Green);
        assert_eq!(m.tokens(), (500, 2_000));
        // Committed short: yellow charges the peak bucket only.
        assert_eq!(m.check(&p, 0, 1_000), Color::Yellow);
        assert_eq!(m.check(&p, 0, 1_000), Color::Yellow);
        assert_eq!(m.tokens(), (500, 0));
        // Peak empty: red charges nothing.
        assert_eq!(m.check(&p, 0, 1), Color::Red);
        assert_eq!(m.tokens(), (500, 0));
        // Half a second: +500 committed, +1,000 peak.
        assert_eq!(m.check(&p, 500_000, 1_000), Color::Green);
        assert_eq!(m.tokens(), (0, 0));
        // Ten seconds: both buckets capped at their sizes.
        assert_eq!(m.check(&p, 10_500_000, 2_000), Color::Yellow);
        assert_eq!(m.tokens(), (1_500, 1_000));
        assert_eq!(m.check(&p, 10_500_000, 1_500), Color::Red);
        assert_eq!(m.tokens(), (1_500, 1_000));
    }

    #[test]
    fn known_series_colour_aware() {
        let p = profile(1_000, 2_000, 1_500, 3_000);
        let mut m = Trtcm::new(&p, 0);
        // Pre-coloured red stays red and costs nothing.
        assert_eq!(m.check_aware(&p, 0, 100, Color::Red), Color::Red);
        assert_eq!(m.tokens(), (1_500, 3_000));
        // Pre-coloured yellow is yellow even with committed tokens, and charges peak only.
        assert_eq!(m.check_aware(&p, 0, 1_000, Color::Yellow), Color::Yellow);
        assert_eq!(m.tokens(), (1_500, 2_000));
        assert_eq!(m.check_aware(&p, 0, 1_000, Color::Green), Color::Green);
        assert_eq!(m.tokens(), (500, 1_000));
        // Yellow without peak tokens is red.
        assert_eq!(m.check_aware(&p, 0, 1_001, Color::Yellow), Color::Red);
        assert_eq!(m.tokens(), (500, 1_000));
    }

    #[test]
    fn period_remainder_carries_over() {
        // 3 B/s at 1 MHz: 333,333.3 cycles per byte, truncated to 333,333.
        let p = profile(3, 3, 1, 1);
        assert_eq!(p.committed_period(), (333_333, 1));
        let mut m = Trtcm::new(&p, 0);
        assert_eq!(m.check(&p, 0, 1), Color::Green);
        assert_eq!(m.check(&p, 333_332, 1), Color::Red);
        assert_eq!(m.check(&p, 333_333, 1), Color::Green);
        // Time advanced by whole periods only (to 333,333), so 200,000 cycles later is no
        // byte yet and 333,333 cycles later is one.
        assert_eq!(m.check(&p, 533_333, 1), Color::Red);
        assert_eq!(m.check(&p, 666_666, 1), Color::Green);
    }

    #[test]
    fn fast_rates_add_several_bytes_per_period() {
        // 1 MB/s at 1 MHz is one cycle per byte, under the 100-cycle minimum: 100 bytes every
        // 100 cycles.
        let p = profile(1_000_000, 1_000_000, 1_000, 1_000);
        assert_eq!(p.committed_period(), (100, 100));
        // 3 MB/s: 0.33 cycles per byte, ceil(300) = 300 bytes per 100 cycles.
        let p = profile(3_000_000, 3_000_000, 1_000, 1_000);
        assert_eq!(p.committed_period(), (100, 300));
        let mut m = Trtcm::new(&p, 0);
        assert_eq!(m.check(&p, 0, 1_000), Color::Green);
        assert_eq!(m.check(&p, 99, 1), Color::Red);
        assert_eq!(m.check(&p, 100, 300), Color::Green);
        assert_eq!(m.check(&p, 100, 1), Color::Red);
    }

    #[test]
    fn refuses_what_rte_meter_refuses_and_what_does_not_fit() {
        let ok = TrtcmParams {
            cir: 1,
            pir: 2,
            cbs: 1,
            pbs: 1,
        };
        let bad = |f: fn(&mut TrtcmParams)| {
            let mut p = ok;
            f(&mut p);
            TrtcmProfile::new(p, HZ).unwrap_err()
        };
        assert!(TrtcmProfile::new(ok, HZ).is_ok());
        assert_eq!(bad(|p| p.cir = 0), MeterError::ZeroRate);
        assert_eq!(bad(|p| p.pir = 0), MeterError::ZeroRate);
        assert_eq!(bad(|p| p.cir = 3), MeterError::PeakBelowCommitted);
        assert_eq!(bad(|p| p.cbs = 0), MeterError::ZeroBurst);
        assert_eq!(bad(|p| p.pbs = 0), MeterError::ZeroBurst);
        assert_eq!(bad(|p| p.pbs = 1 << 32), MeterError::BurstTooLarge);
        assert_eq!(TrtcmProfile::new(ok, 0), Err(MeterError::ZeroTscHz));
        let huge = TrtcmParams {
            cir: u64::MAX,
            pir: u64::MAX,
            cbs: 1,
            pbs: 1,
        };
        assert_eq!(
            TrtcmProfile::new(huge, u64::MAX),
            Err(MeterError::RateTooHigh)
        );
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let p = profile(1_000, 2_000, 1_500, 3_000);
        let mut m = Trtcm::new(&p, 1_000_000);
        assert_eq!(m.check(&p, 1_000_000, 1_500), Color::Green);
        assert_eq!(m.check(&p, 0, 1), Color::Yellow);
        assert_eq!(m.tokens(), (0, 1_499));
        assert_eq!(m.check(&p, u64::MAX, u32::MAX), Color::Red);
        assert_eq!(m.tokens(), (1_500, 3_000));
    }

    fn params() -> impl Strategy<Value = TrtcmParams> {
        (
            1u64..10_000_000_000,
            0u64..10_000_000_000,
            1u64..=u64::from(u32::MAX),
            0u64..=1 << 31,
        )
            .prop_map(|(cir, extra, cbs, pbs_extra)| TrtcmParams {
                cir,
                pir: cir + extra,
                cbs,
                pbs: (cbs + pbs_extra).min(u64::from(u32::MAX)),
            })
    }

    fn frames() -> impl Strategy<Value = Vec<(u64, u32, u8)>> {
        prop::collection::vec((0u64..50_000_000, any::<u32>(), 0u8..3), 1..200)
    }

    fn colour(c: u8) -> Color {
        [Color::Green, Color::Yellow, Color::Red][usize::from(c % 3)]
    }

    proptest! {
        /// Buckets never exceed their sizes; within one instant green charges both buckets by
        /// the frame, yellow only the peak bucket, red neither; bytes passed never exceed
        /// burst plus refill (RFC 2698 §3).
        #[test]
        fn accounting(params in params(), hz in 1_000_000u64..5_000_000_000, frames in frames(),
                      small in any::<bool>()) {
            let p = TrtcmProfile::new(params, hz);
            let Ok(p) = p else { return Ok(()) };
            let mut m = Trtcm::new(&p, 0);
            let (mut now, mut green, mut yellow) = (0u64, 0u64, 0u64);
            for (gap, len, pre) in frames {
                now += gap;
                let len = if small { len % 2_000 } else { len };
                let mut refilled = m;
                // A zero-byte red pre-coloured check only refills.
                refilled.check_aware(&p, now, 0, Color::Red);
                let (tc, tp) = refilled.tokens();
                let c = m.check_aware(&p, now, len, colour(pre));
                let (tc2, tp2) = m.tokens();
                prop_assert!(tc2 <= p.cir.size && tp2 <= p.pir.size);
                match c {
                    Color::Green => {
                        prop_assert_eq!((tc2, tp2), (tc - len, tp - len));
                        green += u64::from(len);
                    }
                    Color::Yellow => {
                        prop_assert_eq!((tc2, tp2), (tc, tp - len));
                        yellow += u64::from(len);
                    }
                    Color::Red => prop_assert_eq!((tc2, tp2), (tc, tp)),
                }
                let (cp, cb) = p.committed_period();
                let (pp, pb) = p.peak_period();
                let c_in = u128::from(now / cp) * u128::from(cb) + u128::from(p.cir.size);
                let p_in = u128::from(now / pp) * u128::from(pb) + u128::from(p.pir.size);
                prop_assert!(u128::from(green) <= c_in);
                prop_assert!(u128::from(green + yellow) <= p_in);
            }
        }

        /// Green pre-colour is the colour-blind check; any time, even backwards, is accepted.
        #[test]
        fn green_aware_is_blind(params in params(), times in prop::collection::vec(any::<u64>(), 1..50),
                                lens in prop::collection::vec(any::<u32>(), 50)) {
            let Ok(p) = TrtcmProfile::new(params, 2_000_000_000) else { return Ok(()) };
            let (mut a, mut b) = (Trtcm::new(&p, 0), Trtcm::new(&p, 0));
            for (t, len) in times.iter().zip(&lens) {
                prop_assert_eq!(a.check(&p, *t, *len), b.check_aware(&p, *t, *len, Color::Green));
                prop_assert_eq!(a, b);
            }
        }
    }
}
