//! Per-worker counters: plain integers written by one worker, summed by the control side.

/// Why a frame was dropped. The discriminant indexes the per-worker drop counter array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// The frame is shorter than its headers claim.
    Truncated = 0,
    /// No output port for the frame.
    NoRoute = 1,
    /// The transmit queue did not accept the frame.
    TxFull = 2,
    /// The punt ring to the slow path was full.
    PuntRingFull = 3,
}

impl DropReason {
    /// Every reason, in discriminant order.
    pub const ALL: [DropReason; 4] = [
        DropReason::Truncated,
        DropReason::NoRoute,
        DropReason::TxFull,
        DropReason::PuntRingFull,
    ];
    /// Number of reasons (length of a drop counter array).
    pub const COUNT: usize = Self::ALL.len();

    /// Name as shown in counters output.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NoRoute => "no_route",
            DropReason::TxFull => "tx_full",
            DropReason::PuntRingFull => "punt_ring_full",
        }
    }
}
