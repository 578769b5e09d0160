//! What the gateway reports: [`Stats`] (the answer to `stats`, also the exit report's
//! counters) and the exit [`Report`]. Plain data with serde, so the control socket carries
//! it as JSON and `ispmux ctl` reads it back typed; printing is the binary's.

use std::collections::BTreeMap;

use ispmux_slowpath::radius::stats::RadiusStats;
use serde::{Deserialize, Serialize};

use crate::slowpath::SlowPathStats;

/// One port's counters since the gateway started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortStats {
    /// Configured name.
    pub name: String,
    /// Configured device.
    pub device: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Mean receive rate since start.
    pub rx_mpps: f64,
    /// Mean send rate since start.
    pub tx_mpps: f64,
    /// Frames the NIC dropped for want of descriptors.
    pub rx_missed: u64,
    /// Receives that found no mbuf.
    pub rx_nombuf: u64,
    /// Frames the NIC failed to send.
    pub tx_errors: u64,
    /// Frames received with errors (`ierrors`).
    #[serde(default)]
    pub rx_errors: u64,
}

/// A packet and byte count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketBytes {
    /// Packets.
    pub packets: u64,
    /// Bytes (IPv4 total length for per-ISP counters, frame length for transit).
    pub bytes: u64,
}

/// One ISP's traffic through this node (seed 003, claims 16-17).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IspStats {
    /// ISP id in the tables.
    pub id: u16,
    /// Its configured name (may be empty).
    pub name: String,
    /// Headend, subscriber to ISP (label pushed).
    pub headend_up: PacketBytes,
    /// Headend, ISP to subscriber (delivered).
    pub headend_down: PacketBytes,
    /// Tailend, handed to the ISP.
    pub tailend_up: PacketBytes,
    /// Tailend, from the ISP (label pushed).
    pub tailend_down: PacketBytes,
}

/// The pipelines' counters summed over the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// ISPs that are named or saw traffic, by id.
    pub isps: Vec<IspStats>,
    /// Frames handed to the slow path.
    pub punts: u64,
    /// Of those, for ICMP Time Exceeded (a TTL expired here).
    #[serde(default)]
    pub punts_ttl_expired: u64,
    /// Of those, for ICMP Fragmentation Needed (DF set, too big once labelled).
    #[serde(default)]
    pub punts_frag_needed: u64,
    /// Of those, DHCP from unregistered MACs within the workers' allowance.
    #[serde(default)]
    pub punts_unregistered: u64,
    /// ARP requests answered in the fast path.
    pub arp_replies: u64,
    /// Labels swapped (transit).
    pub transit: PacketBytes,
    /// Table writes replayed from the slow path's master copy.
    pub updates_applied: u64,
    /// Table writes that did not fit a worker's layout (configuration error).
    pub updates_refused: u64,
}

/// The gateway's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Seconds since start.
    pub seconds: f64,
    /// Per port.
    pub ports: Vec<PortStats>,
    /// Frames the workers received.
    pub rx: u64,
    /// Frames the workers sent.
    pub tx: u64,
    /// Frames the workers handed to the slow path.
    pub punted: u64,
    /// Times an idle worker slept.
    pub idle_sleeps: u64,
    /// Every drop reason by name, zeros included: each dropped frame counted once.
    pub drops: BTreeMap<String, u64>,
    /// The pipelines' counters summed over the workers (per ISP, transit, table writes).
    pub pipeline: PipelineStats,
    /// The slow path's.
    pub slowpath: SlowPathStats,
    /// The DHCP logon proxy's by name, when one runs (engine drops as `drop_<reason>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<BTreeMap<String, u64>>,
    /// The RADIUS proxy's, when one runs (its counters by name at the top of the JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<RadiusStats>,
    /// Refusal notices by ISP, when some ISP has a `refusal_webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<BTreeMap<String, crate::notice::NoticeCounters>>,
    /// Per worker lcore, in launch order: how it polls and how busy it is.
    #[serde(default)]
    pub workers: Vec<WorkerStats>,
}

/// One worker's loop counters since start.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Its lcore.
    pub lcore: u32,
    /// Frames it received.
    pub rx: u64,
    /// Frames it sent.
    pub tx: u64,
    /// Rounds of its loop (each polls every receive queue once).
    pub polls: u64,
    /// Of those, rounds that received frames.
    pub busy_polls: u64,
    /// Seconds spent in rounds that received frames (TSC cycles over the TSC rate).
    pub busy_s: f64,
    /// Times it slept for lack of traffic.
    pub idle_sleeps: u64,
}

/// How full the fast-path tables are, read from the slow path's master copy (every
/// worker's copy holds the same entries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableOccupancy {
    /// Subscribers (port, VLANs, MAC) and the most the table takes.
    pub subscribers: u64,
    /// See `subscribers`.
    pub subscribers_capacity: u64,
    /// Downstream bindings ((ISP, address) of a bound subscriber) and the most it takes.
    pub bindings: u64,
    /// See `bindings`.
    pub bindings_capacity: u64,
    /// Incoming labels (ILM entries) and the most it takes.
    pub labels: u64,
    /// See `labels`.
    pub labels_capacity: u64,
    /// ISP FECs set (upstream and downstream each count) and the most there can be.
    pub fecs: u64,
    /// See `fecs`.
    pub fecs_capacity: u64,
    /// Hand-off (port, VLAN) attachments and the most it takes.
    pub handoffs: u64,
    /// See `handoffs`.
    pub handoffs_capacity: u64,
}

impl TableOccupancy {
    /// The occupancy of `t`.
    pub fn of(t: &ispmux_dataplane::Tables) -> Self {
        let n = |v: usize| v as u64;
        let fecs = t
            .isps
            .entries()
            .iter()
            .map(|e| u64::from(e.upstream.is_some()) + u64::from(e.downstream.is_some()))
            .sum();
        TableOccupancy {
            subscribers: n(t.subscribers.len()),
            subscribers_capacity: n(t.subscribers.capacity()),
            bindings: n(t.downstream.len()),
            bindings_capacity: n(t.downstream.capacity()),
            labels: n(t.ilm.len()),
            labels_capacity: n(t.ilm.capacity()),
            fecs,
            fecs_capacity: 2 * n(t.isps.len()),
            handoffs: n(t.handoffs.len()),
            handoffs_capacity: n(t.handoffs.capacity()),
        }
    }
}

/// How one worker lcore ran, for the exit report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerExit {
    /// Its lcore.
    pub lcore: u32,
    /// Seconds on its core and seconds waiting for it (`/proc/thread-self/schedstat`):
    /// a busy-polling worker's rate follows the share of its core it got.
    pub on_cpu_s: Option<f64>,
    /// See `on_cpu_s`.
    pub waited_s: Option<f64>,
    /// Table writes it replayed from the slow path, and the time that took.
    pub replayed_writes: u64,
    /// See `replayed_writes`.
    pub replay_ms: f64,
}

/// What the benchmark's update generator achieved (`[dataplane] bench_updates_per_s`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateGenReport {
    /// Updates the tables took.
    pub sent: u64,
    /// Updates the tables refused.
    pub refused: u64,
    /// Writes still waiting for room in the workers' queues.
    pub backlog: usize,
    /// How long it ran.
    pub seconds: f64,
}

/// What the gateway did, from start to shutdown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Counters over the whole run.
    pub stats: Stats,
    /// Per worker lcore.
    pub workers: Vec<WorkerExit>,
    /// The update generator's, when it ran.
    pub update_generator: Option<UpdateGenReport>,
    /// What failed on the way (a worker's exit status, the RADIUS proxy's error): the run
    /// is a failure when this is not empty.
    pub failures: Vec<String>,
}
