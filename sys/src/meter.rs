//! DPDK's two-rate three-colour meter (`rte_meter` trTCM, RFC 2698), only as the reference
//! the ispmux meter is checked against: same colours frame by frame
//! (`dataplane/tests/meter_rte.rs`) and its cost (`perf/run meter-cost`).

use crate::eal::guard;
use crate::error::{check, Result};
use crate::ffi;

/// A frame's colour: DPDK's `enum rte_color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RteColor {
    Green = 0,
    Yellow = 1,
    Red = 2,
}

impl RteColor {
    fn from_raw(c: i32) -> RteColor {
        match c {
            0 => RteColor::Green,
            1 => RteColor::Yellow,
            _ => RteColor::Red,
        }
    }
}

/// An `rte_meter_trtcm_profile`: rates in bytes/s and bursts in bytes turned into TSC
/// periods at EAL's TSC frequency.
#[derive(Clone, Copy, Debug)]
pub struct RteTrtcmProfile(ffi::rte_meter_trtcm_profile);

impl RteTrtcmProfile {
    /// `rte_meter_trtcm_profile_config`; EAL must be initialised (it reads the TSC
    /// frequency). Refuses what DPDK refuses, and profiles whose period came out zero (the
    /// check would divide by it).
    pub fn new(cir: u64, pir: u64, cbs: u64, pbs: u64) -> Result<RteTrtcmProfile> {
        drop(guard()?);
        let mut params = ffi::rte_meter_trtcm_params { cir, pir, cbs, pbs };
        let mut p = ffi::rte_meter_trtcm_profile::default();
        // SAFETY: both pointers are to live, exclusively borrowed structs of the right type.
        let rc = unsafe { ffi::rte_meter_trtcm_profile_config(&mut p, &mut params) };
        check("rte_meter_trtcm_profile_config", rc)?;
        if p.cir_period == 0 || p.pir_period == 0 {
            return Err(crate::Error::from_errno(
                "rte_meter_trtcm_profile_config",
                22,
            ));
        }
        Ok(RteTrtcmProfile(p))
    }

    /// Committed bucket: (period in TSC cycles, bytes per period).
    pub fn committed_period(&self) -> (u64, u64) {
        (self.0.cir_period, self.0.cir_bytes_per_period)
    }

    /// Peak bucket: (period in TSC cycles, bytes per period).
    pub fn peak_period(&self) -> (u64, u64) {
        (self.0.pir_period, self.0.pir_bytes_per_period)
    }
}

/// One `rte_meter_trtcm` (32 bytes).
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub struct RteTrtcm(ffi::rte_meter_trtcm);

impl RteTrtcm {
    /// `rte_meter_trtcm_config` (both buckets full), with the start time set to `now`
    /// instead of the current TSC so a test can replay a recorded time series.
    pub fn new(profile: &RteTrtcmProfile, now: u64) -> RteTrtcm {
        let mut m = ffi::rte_meter_trtcm::default();
        let mut p = profile.0;
        // SAFETY: both pointers are to live, exclusively borrowed structs; with both non-null
        // the call cannot fail.
        unsafe { ffi::rte_meter_trtcm_config(&mut m, &mut p) };
        m.time_tc = now;
        m.time_tp = now;
        RteTrtcm(m)
    }

    /// Tokens in bytes: (committed, peak).
    pub fn tokens(&self) -> (u64, u64) {
        (self.0.tc, self.0.tp)
    }

    /// `rte_meter_trtcm_color_blind_check`.
    pub fn check(&mut self, profile: &RteTrtcmProfile, now: u64, len: u32) -> RteColor {
        let mut p = profile.0;
        // SAFETY: live structs; the profile's periods are non-zero (checked in `new`).
        RteColor::from_raw(unsafe { ffi::ispmux_meter_trtcm_blind(&mut self.0, &mut p, now, len) })
    }

    /// `rte_meter_trtcm_color_aware_check`.
    pub fn check_aware(
        &mut self,
        profile: &RteTrtcmProfile,
        now: u64,
        len: u32,
        pre: RteColor,
    ) -> RteColor {
        let mut p = profile.0;
        // SAFETY: as in `check`; `pre` is a valid rte_color.
        let c = unsafe { ffi::ispmux_meter_trtcm_aware(&mut self.0, &mut p, now, len, pre as i32) };
        RteColor::from_raw(c)
    }
}

/// Benchmark anchor: `idx.len()` colour-blind checks in a C loop with the check inlined;
/// check `i` on `meters[idx[i] % meters.len()]` with `lens[i]` bytes at `t0 + i * step`.
/// Returns the count of each colour. `meters.len()` must be a power of two and `lens` as
/// long as `idx`, else nothing is checked.
pub fn trtcm_run(
    meters: &mut [RteTrtcm],
    profile: &RteTrtcmProfile,
    idx: &[u32],
    lens: &[u32],
    t0: u64,
    step: u64,
) -> Option<[u64; 3]> {
    let n = meters.len();
    if !n.is_power_of_two() || n > 1 << 32 || idx.len() != lens.len() {
        return None;
    }
    let mut counts = [0u64; 3];
    let mut p = profile.0;
    // SAFETY: RteTrtcm is repr(transparent) over rte_meter_trtcm,
    // the loop reads idx[..n] and lens[..n] and masks every index below meters.len(); the
    // profile's periods are non-zero.
    unsafe {
        ffi::ispmux_meter_trtcm_run(
            meters.as_mut_ptr().cast(),
            (n - 1) as u32,
            &mut p,
            idx.as_ptr(),
            lens.as_ptr(),
            idx.len() as u64,
            t0,
            step,
            counts.as_mut_ptr(),
        )
    };
    Some(counts)
}
