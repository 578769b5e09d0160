//! The gateway's counters as Prometheus metrics: every family is read from a [`Stats`] (and
//! LDP's [`LdpView`]) the control thread already holds, encoded with `prometheus-client` in
//! OpenMetrics text or the Prometheus text format 0.0.4 ([`Exposition`]).
//!
//! Nothing is registered ahead or kept per series beyond the counter floor: each encoding
//! builds a one-collector registry over a copy of the snapshot, so a scrape costs what its
//! text costs. For a mid-size gateway (64 ISPs, 4 ports, 2 workers, 20 client SPs and 22
//! RADIUS home servers with their two latency histograms: 122 KB of text)
//! `cargo run --release -p ispmux-gateway --example metrics_encode` measured 0.18-0.20 ms on
//! the core per encoding in either format (4 ms in a debug build): 10 scrapes a second cost
//! the control thread about 0.2 % of a core.
//!
//! Counters never go backwards across encodings ([`Metrics`] keeps a floor per series):
//! a source that restarts from zero (the RADIUS proxy or the logon engine rebuilt by a
//! reload, a port's statistics reset) is carried on from the value it had reached, as
//! Prometheus itself would read a reset. A series whose source goes away (an ISP removed)
//! is no longer written; its floor is kept, so it resumes where it was if it comes back.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use ispmux_slowpath::radius::stats::{
    CspStats, HomeServerStats, Latency, RadiusStats, LATENCY_BOUNDS_S,
};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::ldp::LdpView;
use crate::report::Stats;

/// The text format of an encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exposition {
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`): what
    /// Prometheus asks for first.
    #[default]
    OpenMetrics,
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`): what older scrapers and
    /// `promtool check metrics` read.
    Prometheus,
}

impl Exposition {
    /// The HTTP `Content-Type` of the text.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// The encoder with its counter floor: one per gateway, used by the control thread.
#[derive(Debug, Default)]
pub struct Metrics {
    floor: Arc<Mutex<Floor>>,
}

impl Metrics {
    /// The metrics of `stats` and `ldp` as text.
    pub fn encode(&mut self, stats: &Stats, ldp: Option<&LdpView>, format: Exposition) -> String {
        let c = Snapshot {
            stats: stats.clone(),
            ldp: ldp.cloned(),
            floor: self.floor.clone(),
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(c));
        let mut out = String::with_capacity(64 * 1024);
        // Writing into a String does not fail, nor does the collector.
        let _ = match format {
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &registry)
            }
            Exposition::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            }
        };
        out
    }
}

/// The value each counter series last showed and what it carries over from earlier
/// restarts of its source, by a hash of its name and labels.
#[derive(Debug, Default)]
struct Floor {
    ints: HashMap<u64, (u64, u64)>,
    floats: HashMap<u64, (f64, f64)>,
    latencies: HashMap<u64, (Latency, Latency)>,
}

impl Floor {
    fn int(&mut self, key: u64, raw: u64) -> u64 {
        let (last, carried) = self.ints.entry(key).or_insert((raw, 0));
        if raw < *last {
            // Restarted from zero: what it had reached stays counted.
            *carried = carried.saturating_add(*last);
        }
        *last = raw;
        raw.saturating_add(*carried)
    }

    /// A histogram restarts as a whole: when any of its counts went down, every bucket
    /// carries what it had reached (bucket by bucket, a restarted one that has already
    /// caught up would look unchanged and the buckets would disagree with the count).
    fn latency(&mut self, key: u64, raw: &Latency) -> Latency {
        let (last, carried) = self
            .latencies
            .entry(key)
            .or_insert_with(|| (raw.clone(), Latency::default()));
        let went_down = raw.count < last.count
            || raw.sum_ns < last.sum_ns
            || raw.buckets.iter().zip(&last.buckets).any(|(r, l)| r < l);
        if went_down {
            carried.merge(last);
        }
        *last = raw.clone();
        let mut v = raw.clone();
        v.merge(carried);
        v
    }

    fn float(&mut self, key: u64, raw: f64) -> f64 {
        let (last, carried) = self.floats.entry(key).or_insert((raw, 0.0));
        if raw < *last {
            *carried += *last;
        }
        *last = raw;
        raw + *carried
    }
}

/// What one encoding reads.
#[derive(Debug)]
struct Snapshot {
    stats: Stats,
    ldp: Option<LdpView>,
    floor: Arc<Mutex<Floor>>,
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

/// Writes families into one encoder, counters through the floor.
struct Out<'e, 'f> {
    enc: DescriptorEncoder<'e>,
    floor: &'f mut Floor,
}

fn key<L: Hash>(name: &str, labels: &L) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    labels.hash(&mut h);
    h.finish()
}

impl Out<'_, '_> {
    /// A counter family of integer series; `name` without `_total` (and without the unit's
    /// suffix when `unit` is given).
    fn counter<'a, const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        series: impl IntoIterator<Item = (Labels<'a, N>, u64)>,
    ) -> std::fmt::Result {
        let mut m = self
            .enc
            .encode_descriptor(name, help, unit.as_ref(), MetricType::Counter)?;
        for (labels, raw) in series {
            let v = self.floor.int(key(name, &labels), raw);
            encode_one(&mut m, &labels, ConstCounter::new(v))?;
        }
        Ok(())
    }

    /// A counter family of seconds.
    fn seconds<'a, const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels<'a, N>, f64)>,
    ) -> std::fmt::Result {
        let mut m =
            self.enc
                .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Counter)?;
        for (labels, raw) in series {
            let v = self.floor.float(key(name, &labels), raw);
            encode_one(&mut m, &labels, ConstCounter::new(v))?;
        }
        Ok(())
    }

    /// A histogram family of seconds with the RADIUS proxy's latency buckets; `name`
    /// without `_seconds`. Each series goes through the floor as a whole.
    fn histogram<'a, const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (Labels<'a, N>, &'a Latency)>,
    ) -> std::fmt::Result {
        let mut m =
            self.enc
                .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
        for (labels, raw) in series {
            let l = self.floor.latency(key(name, &labels), raw);
            let bounds = LATENCY_BOUNDS_S.iter().copied().chain([f64::INFINITY]);
            let h = ConstHistogram {
                sum: l.sum_seconds(),
                count: l.count,
                buckets: bounds.zip(l.buckets).collect(),
            };
            encode_one(&mut m, &labels, h)?;
        }
        Ok(())
    }

    /// A gauge family.
    fn gauge<'a, const N: usize, V: EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        unit: Option<Unit>,
        series: impl IntoIterator<Item = (Labels<'a, N>, V)>,
    ) -> std::fmt::Result {
        let mut m = self
            .enc
            .encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
        for (labels, v) in series {
            encode_one(&mut m, &labels, ConstGauge::new(v))?;
        }
        Ok(())
    }
}

/// A histogram's values as read: per-bucket counts (not cumulative), the last bucket +Inf.
struct ConstHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut e: MetricEncoder<'_>) -> std::fmt::Result {
        e.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One series (an empty label set writes no braces).
fn encode_one<L: EncodeLabelSet>(
    m: &mut prometheus_client::encoding::MetricEncoder<'_>,
    labels: &L,
    metric: impl EncodeMetric,
) -> std::fmt::Result {
    metric.encode(m.encode_family(labels)?)
}

/// A count as a gauge value (counts never reach `i64::MAX`).
fn g(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for Snapshot {
    fn encode(&self, enc: DescriptorEncoder) -> std::fmt::Result {
        let mut floor = self.floor.lock().unwrap_or_else(|p| p.into_inner());
        let mut o = Out {
            enc,
            floor: &mut floor,
        };
        let s = &self.stats;
        fastpath(&mut o, s)?;
        ports(&mut o, s)?;
        workers(&mut o, s)?;
        slowpath(&mut o, s)?;
        if let Some(d) = &s.dhcp {
            dhcp(&mut o, d)?;
        }
        if let Some(r) = &s.radius {
            radius(&mut o, r)?;
        }
        if let Some(l) = &self.ldp {
            ldp(&mut o, l)?;
        }
        o.gauge(
            "ispmux_uptime",
            "Time since the gateway started.",
            Some(Unit::Seconds),
            [([], s.seconds)],
        )
    }
}

/// The ISP's label: its name, else its table id.
fn isp_label(i: &crate::report::IspStats) -> String {
    if i.name.is_empty() {
        i.id.to_string()
    } else {
        i.name.clone()
    }
}

fn fastpath(o: &mut Out<'_, '_>, s: &Stats) -> std::fmt::Result {
    let isps: Vec<(String, &crate::report::IspStats)> =
        s.pipeline.isps.iter().map(|i| (isp_label(i), i)).collect();
    let each = || {
        isps.iter().flat_map(|(n, i)| {
            [
                ("headend", "up", i.headend_up),
                ("headend", "down", i.headend_down),
                ("tailend", "up", i.tailend_up),
                ("tailend", "down", i.tailend_down),
            ]
            .map(move |(role, dir, pb)| ([("isp", n.as_str()), ("role", role), ("dir", dir)], pb))
        })
    };
    o.counter(
        "ispmux_isp_packets",
        "IPv4 packets of an ISP's subscribers through this node, by role (headend: subscriber side, tailend: ISP side) and direction (up: toward the ISP).",
        None,
        each().map(|(l, pb)| (l, pb.packets)),
    )?;
    o.counter(
        "ispmux_isp",
        "IPv4 bytes (total length) of an ISP's subscribers through this node, by role and direction.",
        Some(Unit::Bytes),
        each().map(|(l, pb)| (l, pb.bytes)),
    )?;
    o.counter(
        "ispmux_transit_packets",
        "Labelled frames swapped here (transit, every ISP).",
        None,
        [([], s.pipeline.transit.packets)],
    )?;
    o.counter(
        "ispmux_transit",
        "Frame bytes of the labelled frames swapped here.",
        Some(Unit::Bytes),
        [([], s.pipeline.transit.bytes)],
    )?;
    o.counter(
        "ispmux_drops",
        "Frames the fast path dropped, by reason; each dropped frame counted once.",
        None,
        s.drops.iter().map(|(r, n)| ([("reason", r.as_str())], *n)),
    )?;
    o.counter(
        "ispmux_punts",
        "Frames the workers' pipelines handed to the slow path.",
        None,
        [([], s.pipeline.punts)],
    )?;
    let p = &s.pipeline;
    o.counter(
        "ispmux_punts_for",
        "Of the punted frames, those punted for one of these causes (the rest: DHCP, ARP, to the gateway).",
        None,
        [
            ([("cause", "ttl_expired")], p.punts_ttl_expired),
            ([("cause", "frag_needed")], p.punts_frag_needed),
            ([("cause", "unregistered")], p.punts_unregistered),
        ],
    )?;
    o.counter(
        "ispmux_punt_ring_enqueued",
        "Frames the punt ring accepted (those it refused are ispmux_drops_total{reason=\"punt_ring_full\"}).",
        None,
        [([], s.punted)],
    )?;
    o.counter(
        "ispmux_fastpath_arp_replies",
        "ARP requests answered in the fast path.",
        None,
        [([], p.arp_replies)],
    )?;
    o.counter(
        "ispmux_table_writes",
        "Table writes the workers replayed from the slow path's master copy, by result (refused: did not fit a worker's layout).",
        None,
        [
            ([("result", "applied")], p.updates_applied),
            ([("result", "refused")], p.updates_refused),
        ],
    )
}

fn ports(o: &mut Out<'_, '_>, s: &Stats) -> std::fmt::Result {
    type Field = fn(&crate::report::PortStats) -> u64;
    let families: [(&str, &str, Option<Unit>, Field); 8] = [
        (
            "ispmux_port_receive_packets",
            "Frames the port received (DPDK ipackets).",
            None,
            |p| p.rx_packets,
        ),
        (
            "ispmux_port_transmit_packets",
            "Frames the port sent (DPDK opackets).",
            None,
            |p| p.tx_packets,
        ),
        (
            "ispmux_port_receive",
            "Bytes the port received (DPDK ibytes).",
            Some(Unit::Bytes),
            |p| p.rx_bytes,
        ),
        (
            "ispmux_port_transmit",
            "Bytes the port sent (DPDK obytes).",
            Some(Unit::Bytes),
            |p| p.tx_bytes,
        ),
        (
            "ispmux_port_receive_missed",
            "Frames the NIC dropped for want of receive descriptors (DPDK imissed).",
            None,
            |p| p.rx_missed,
        ),
        (
            "ispmux_port_receive_nombuf",
            "Receives that found no mbuf (DPDK rx_nombuf).",
            None,
            |p| p.rx_nombuf,
        ),
        (
            "ispmux_port_receive_errors",
            "Frames received with errors (DPDK ierrors).",
            None,
            |p| p.rx_errors,
        ),
        (
            "ispmux_port_transmit_errors",
            "Frames the NIC failed to send (DPDK oerrors).",
            None,
            |p| p.tx_errors,
        ),
    ];
    for (name, help, unit, f) in families {
        o.counter(
            name,
            help,
            unit,
            s.ports.iter().map(|p| ([("port", p.name.as_str())], f(p))),
        )?;
    }
    Ok(())
}

fn workers(o: &mut Out<'_, '_>, s: &Stats) -> std::fmt::Result {
    let lcores: Vec<String> = s.workers.iter().map(|w| w.lcore.to_string()).collect();
    let each = || s.workers.iter().zip(&lcores);
    o.seconds(
        "ispmux_worker_busy",
        "Time a worker spent in loop rounds that received frames (TSC); its rate is the worker's busy ratio.",
        each().map(|(w, l)| ([("lcore", l.as_str())], w.busy_s)),
    )?;
    // Two families, not one with a `result` label: empty polls would be a difference of
    // two words published apart, which may step back between reads.
    o.counter(
        "ispmux_worker_polls",
        "Rounds of a worker's loop (each polls every receive queue once).",
        None,
        each().map(|(w, l)| ([("lcore", l.as_str())], w.polls)),
    )?;
    o.counter(
        "ispmux_worker_busy_polls",
        "Rounds of a worker's loop that received frames.",
        None,
        each().map(|(w, l)| ([("lcore", l.as_str())], w.busy_polls)),
    )?;
    o.counter(
        "ispmux_worker_receive_packets",
        "Frames a worker received.",
        None,
        each().map(|(w, l)| ([("lcore", l.as_str())], w.rx)),
    )?;
    o.counter(
        "ispmux_worker_transmit_packets",
        "Frames a worker's transmit queues accepted.",
        None,
        each().map(|(w, l)| ([("lcore", l.as_str())], w.tx)),
    )?;
    o.counter(
        "ispmux_worker_idle_sleeps",
        "Times a worker slept for lack of traffic.",
        None,
        each().map(|(w, l)| ([("lcore", l.as_str())], w.idle_sleeps)),
    )
}

fn slowpath(o: &mut Out<'_, '_>, s: &Stats) -> std::fmt::Result {
    let sp = &s.slowpath;
    o.counter(
        "ispmux_slowpath_taken",
        "Frames the slow path took from the punt ring, by kind.",
        None,
        [
            ([("kind", "arp")], sp.arp),
            ([("kind", "dhcp")], sp.dhcp),
            ([("kind", "twin")], sp.to_twin),
            ([("kind", "other")], sp.other),
        ],
    )?;
    o.counter(
        "ispmux_slowpath_arp_replies",
        "ARP requests the slow path answered (hand-off and core ports).",
        None,
        [([], sp.arp_replies)],
    )?;
    o.counter(
        "ispmux_twin_frames",
        "Frames moved between routed ports and their kernel twins, by direction (to_kernel, from_kernel).",
        None,
        [
            ([("dir", "to_kernel")], sp.to_twin),
            ([("dir", "from_kernel")], sp.from_twin),
        ],
    )?;
    o.counter(
        "ispmux_twin_drops",
        "Frames for or from a kernel twin that were not moved, by direction.",
        None,
        [
            ([("dir", "to_kernel")], sp.to_twin_drops),
            ([("dir", "from_kernel")], sp.from_twin_drops),
        ],
    )?;
    o.counter(
        "ispmux_inject_enqueued",
        "Frames the slow path handed to the inject ring.",
        None,
        [([], sp.injected)],
    )?;
    o.counter(
        "ispmux_inject_drops",
        "Frames to inject dropped because the backlog in front of the inject ring was full.",
        None,
        [([], sp.inject_drops)],
    )?;
    o.gauge(
        "ispmux_inject_backlog_frames",
        "Frames waiting for room in the inject ring or for the workers to apply the bindings they follow.",
        None,
        [([], g(sp.inject_backlog))],
    )?;
    o.counter(
        "ispmux_bindings_changed",
        "Subscriber bindings written to the fast path, by change (install: logon, renewal or restore; remove).",
        None,
        [
            ([("change", "install")], sp.bindings_installed),
            ([("change", "remove")], sp.bindings_removed),
        ],
    )?;
    o.counter(
        "ispmux_table_update_errors",
        "Table updates the slow path's master tables refused (full, unknown ISP).",
        None,
        [([], sp.update_errors)],
    )?;
    o.counter(
        "ispmux_icmp_errors",
        "Frames punted for an ICMP error, by outcome (sent, limited: rate limit spent, refused: nothing to say).",
        None,
        [
            ([("outcome", "sent")], sp.icmp.sent),
            ([("outcome", "limited")], sp.icmp.limited),
            ([("outcome", "refused")], sp.icmp.refused),
        ],
    )?;
    o.gauge(
        "ispmux_next_hops",
        "Next hops given by address, by whether the kernel's neighbour table resolves them now.",
        None,
        [
            ([("state", "resolved")], g(sp.next_hops_resolved)),
            (
                [("state", "unresolved")],
                g(sp.next_hops.saturating_sub(sp.next_hops_resolved)),
            ),
        ],
    )?;
    o.counter(
        "ispmux_neighbour_updates",
        "Table updates made for next hops' MACs.",
        None,
        [([], sp.neighbour_updates)],
    )?;
    o.gauge(
        "ispmux_registered_macs",
        "MACs of the subscriber registry in the workers' filter.",
        None,
        [([], g(sp.registered))],
    )?;
    if let Some(t) = &sp.tables {
        let tables = [
            ("subscribers", t.subscribers, t.subscribers_capacity),
            ("bindings", t.bindings, t.bindings_capacity),
            ("labels", t.labels, t.labels_capacity),
            ("fecs", t.fecs, t.fecs_capacity),
            ("handoffs", t.handoffs, t.handoffs_capacity),
        ];
        o.gauge(
            "ispmux_table_entries",
            "Entries in a fast-path table (bindings: bound subscribers).",
            None,
            tables.map(|(n, v, _)| ([("table", n)], g(v))),
        )?;
        o.gauge(
            "ispmux_table_capacity_entries",
            "The most entries a fast-path table takes.",
            None,
            tables.map(|(n, _, c)| ([("table", n)], g(c))),
        )?;
    }
    if let Some(m) = &sp.label_map {
        o.counter(
            "ispmux_label_map_writes",
            "Fast-path entries LDP's FEC states wrote or removed, by kind (ilm: pop or swap, push: an ISP's FEC).",
            None,
            [
                ([("kind", "ilm")], m.ilm_written),
                ([("kind", "push")], m.push_written),
            ],
        )?;
    }
    Ok(())
}

/// The logon proxy's named counters ([`ispmux_slowpath::dhcp::service::LogonService::counter_values`]).
fn dhcp(o: &mut Out<'_, '_>, d: &std::collections::BTreeMap<String, u64>) -> std::fmt::Result {
    let get = |n: &str| d.get(n).copied().unwrap_or(0);
    o.counter(
        "ispmux_dhcp_logons",
        "Bindings the logon proxy installed (ACKs of logons and renewals).",
        None,
        [([], get("installs"))],
    )?;
    o.counter(
        "ispmux_dhcp_releases",
        "Bindings the logon proxy removed (release, decline, expiry, revocation).",
        None,
        [([], get("removals"))],
    )?;
    o.counter(
        "ispmux_dhcp_refusals",
        "Logons refused, by reason.",
        None,
        d.iter()
            .filter_map(|(n, v)| Some(([("reason", n.strip_prefix("refused_")?)], *v))),
    )?;
    o.counter(
        "ispmux_dhcp_drops",
        "DHCP messages the logon engine dropped without a refusal, by reason.",
        None,
        d.iter()
            .filter_map(|(n, v)| Some(([("reason", n.strip_prefix("drop_")?)], *v))),
    )?;
    o.counter(
        "ispmux_dhcp_messages",
        "DHCP messages the logon proxy handled, by source and direction.",
        None,
        [
            ([("kind", "from_subscribers")], get("from_subscribers")),
            ([("kind", "from_servers")], get("from_servers")),
            ([("kind", "relayed")], get("relayed")),
            ([("kind", "replies")], get("replies")),
            ([("kind", "failovers")], get("failovers")),
        ],
    )?;
    o.counter(
        "ispmux_dhcp_credential_checks",
        "Passwords checked, by how (verified: a full Argon2 verification, cached: the same credential verified before).",
        None,
        [
            ([("how", "verified")], get("credential_verifications")),
            ([("how", "cached")], get("credential_cache_hits")),
        ],
    )?;
    o.counter(
        "ispmux_dhcp_errors",
        "Failures around the logon engine, by kind.",
        None,
        [
            "bad_frames",
            "relay_info_from_client",
            "store_errors",
            "send_errors",
            "credential_queue_full",
            "unframed_replies",
        ]
        .map(|k| ([("kind", k)], get(k))),
    )?;
    o.counter(
        "ispmux_dhcp_store_commits",
        "Store commits the logon proxy made.",
        None,
        [([], get("commits"))],
    )
}

/// The RADIUS proxy's counters, named `group.name` (groups `drop`, `reject`, `event`), and
/// its client SPs' ports in use (`ports_in_use.CSP`).
fn radius(o: &mut Out<'_, '_>, stats: &RadiusStats) -> std::fmt::Result {
    let r = &stats.counters;
    let group = |g: &'static str| {
        r.iter().filter_map(move |(k, v)| {
            let (kg, n) = k.split_once('.')?;
            (kg == g).then_some((n, *v))
        })
    };
    o.counter(
        "ispmux_radius_events",
        "RADIUS proxy events (answers, retransmissions, failovers, Disconnect-Requests...), by event.",
        None,
        group("event").map(|(n, v)| ([("event", n)], v)),
    )?;
    o.counter(
        "ispmux_radius_rejects",
        "Access-Rejects the RADIUS proxy sent itself, by reason.",
        None,
        group("reject").map(|(n, v)| ([("reason", n)], v)),
    )?;
    o.counter(
        "ispmux_radius_drops",
        "Datagrams the RADIUS proxy dropped, by reason.",
        None,
        group("drop").map(|(n, v)| ([("reason", n)], v)),
    )?;
    o.gauge(
        "ispmux_radius_csp_ports_in_use",
        "Ports a client SP of the RADIUS proxy uses now (open sessions and pending logons).",
        None,
        group("ports_in_use").map(|(n, v)| ([("csp", n)], g(v))),
    )?;
    radius_home_servers(o, &stats.home_servers)?;
    radius_csps(o, &stats.client_sps)
}

fn radius_home_servers(o: &mut Out<'_, '_>, hs: &[HomeServerStats]) -> std::fmt::Result {
    type Field = fn(&HomeServerStats) -> u64;
    let families: [(&str, &str, Field); 4] = [
        (
            "ispmux_radius_home_requests",
            "Requests the RADIUS proxy sent to a home server (each hop of a NAS's request once, retransmissions apart; Status-Server probes apart).",
            |h| h.requests,
        ),
        (
            "ispmux_radius_home_retransmits",
            "Retransmissions of requests to a home server that had not answered in time.",
            |h| h.retransmits,
        ),
        (
            "ispmux_radius_home_answers",
            "Authenticated answers of a home server to the proxy's requests.",
            |h| h.answers,
        ),
        (
            "ispmux_radius_home_timeouts",
            "Requests a home server left unanswered after every retransmission (the proxy failed over).",
            |h| h.timeouts,
        ),
    ];
    for (name, help, f) in families {
        o.counter(
            name,
            help,
            None,
            hs.iter().map(|h| ([("server", h.server.as_str())], f(h))),
        )?;
    }
    o.histogram(
        "ispmux_radius_home_response",
        "A home server's round trip: from a request's first sending to its answer.",
        hs.iter()
            .map(|h| ([("server", h.server.as_str())], &h.response)),
    )?;
    o.histogram(
        "ispmux_radius_added_latency",
        "The time the proxy held a NAS's request, from the request in to the answer out (every hop and failover included), by the home server whose answer ended it.",
        hs.iter().map(|h| ([("server", h.server.as_str())], &h.added)),
    )
}

fn radius_csps(o: &mut Out<'_, '_>, cs: &[CspStats]) -> std::fmt::Result {
    o.counter(
        "ispmux_radius_csp_requests",
        "Requests of a client SP's subscribers the RADIUS proxy took on (duplicates apart), by code.",
        None,
        cs.iter().flat_map(|c| {
            [
                ("access_request", c.access_requests),
                ("accounting_request", c.accounting_requests),
            ]
            .map(|(code, v)| ([("csp", c.csp.as_str()), ("code", code)], v))
        }),
    )?;
    o.counter(
        "ispmux_radius_csp_answers",
        "Answers the NASes got for a client SP's subscribers, by code (access_reject includes the proxy's own capacity refusals).",
        None,
        cs.iter().flat_map(|c| {
            [
                ("access_accept", c.accepts),
                ("access_reject", c.rejects),
                ("access_challenge", c.challenges),
                ("accounting_response", c.accounting_responses),
            ]
            .map(|(code, v)| ([("csp", c.csp.as_str()), ("code", code)], v))
        }),
    )
}

/// RFC 5036 §2.5.4's session states as label values.
const LDP_STATES: [(&str, &str); 5] = [
    ("NON EXISTENT", "non_existent"),
    ("INITIALIZED", "initialized"),
    ("OPENREC", "openrec"),
    ("OPENSENT", "opensent"),
    ("OPERATIONAL", "operational"),
];

fn ldp(o: &mut Out<'_, '_>, l: &LdpView) -> std::fmt::Result {
    let in_state = |s: &str| {
        l.neighbours
            .iter()
            .filter(|n| n.state.as_deref() == Some(s))
            .count() as i64
    };
    o.gauge(
        "ispmux_ldp_neighbours",
        "LDP neighbours heard (Hello adjacencies), with or without a session.",
        None,
        [([], l.neighbours.len() as i64)],
    )?;
    o.gauge(
        "ispmux_ldp_sessions",
        "LDP sessions by RFC 5036 state.",
        None,
        LDP_STATES.map(|(s, label)| ([("state", label)], in_state(s))),
    )?;
    o.gauge(
        "ispmux_ldp_fecs",
        "FECs LDP holds bindings for.",
        None,
        [([], l.bindings.len() as i64)],
    )?;
    o.gauge(
        "ispmux_ldp_bindings",
        "LDP label bindings, by side (local: advertised by this node, remote: learned from peers, in_use: remote ones forwarding uses).",
        None,
        [
            (
                [("side", "local")],
                l.bindings.iter().filter(|b| b.local.is_some()).count() as i64,
            ),
            (
                [("side", "remote")],
                l.bindings.iter().map(|b| b.remote.len()).sum::<usize>() as i64,
            ),
            (
                [("side", "in_use")],
                l.bindings
                    .iter()
                    .flat_map(|b| &b.remote)
                    .filter(|r| r.in_use)
                    .count() as i64,
            ),
        ],
    )?;
    let st = &l.stats;
    o.counter(
        "ispmux_ldp_sessions_changed",
        "LDP sessions that reached OPERATIONAL (established) or left it (lost).",
        None,
        [
            ([("change", "established")], st.sessions_established),
            ([("change", "lost")], st.sessions_lost),
        ],
    )?;
    o.counter(
        "ispmux_ldp_hellos",
        "LDP Hello datagrams, by direction.",
        None,
        [
            ([("dir", "in")], st.hellos_in),
            ([("dir", "out")], st.hellos_out),
        ],
    )?;
    o.counter(
        "ispmux_ldp_pdus",
        "LDP PDUs, by direction.",
        None,
        [
            ([("dir", "in")], st.pdus_in),
            ([("dir", "out")], st.pdus_out),
        ],
    )?;
    o.counter(
        "ispmux_ldp_errors",
        "LDP failures, by kind (hello: a Hello not sent, connection: a TCP connection failed, slow_reader: a session closed because the peer did not read).",
        None,
        [
            ([("kind", "hello")], st.hello_errors),
            ([("kind", "connection")], st.connection_errors),
            ([("kind", "slow_reader")], st.slow_readers_closed),
        ],
    )?;
    o.counter(
        "ispmux_ldp_md5",
        "TCP MD5 signature failures on LDP sessions (refused: a connection from a keyed neighbour's address before its key was installed; the kernel's: segments dropped for a missing, unexpected or wrong signature, a wrong key shows as failure).",
        None,
        [
            ([("kind", "refused")], st.md5_refused),
            ([("kind", "kernel_not_found")], st.md5_kernel_not_found),
            ([("kind", "kernel_unexpected")], st.md5_kernel_unexpected),
            ([("kind", "kernel_failure")], st.md5_kernel_failure),
        ],
    )?;
    o.counter(
        "ispmux_ldp_fec_changes",
        "FEC state changes LDP handed to the fast-path mapping.",
        None,
        [([], st.fec_changes)],
    )
}

/// A [`Stats`] shaped like a mid-size gateway's, every counter non-zero: `isps` named ISPs,
/// `ports` ports, `workers` workers, a RADIUS proxy serving `csps` client SPs, the logon
/// proxy and the tables. For the encoder's tests and its encode-time example
/// (`cargo run --release -p ispmux-gateway --example metrics_encode`).
pub fn example_stats(isps: u16, ports: usize, workers: u32, csps: usize) -> Stats {
    use crate::report::{IspStats, PacketBytes, PortStats, TableOccupancy, WorkerStats};
    let pb = |n: u64| PacketBytes {
        packets: n,
        bytes: n * 700,
    };
    let mut s = Stats {
        seconds: 3600.5,
        ..Stats::default()
    };
    s.pipeline.isps = (1..=isps)
        .map(|id| IspStats {
            id,
            name: format!("isp{id}"),
            headend_up: pb(u64::from(id) * 1_000),
            headend_down: pb(u64::from(id) * 3_000),
            tailend_up: pb(u64::from(id) * 900),
            tailend_down: pb(u64::from(id) * 2_900),
        })
        .collect();
    s.ports = (0..ports)
        .map(|i| PortStats {
            name: format!("port{i}"),
            device: format!("0000:00:0{i}.0"),
            rx_packets: 1_000_000 + i as u64,
            tx_packets: 999_000,
            rx_bytes: 700_000_000,
            tx_bytes: 690_000_000,
            rx_missed: 12,
            rx_nombuf: 1,
            tx_errors: 2,
            rx_errors: 3,
            ..PortStats::default()
        })
        .collect();
    s.workers = (0..workers)
        .map(|i| WorkerStats {
            lcore: i + 1,
            rx: 2_000_000,
            tx: 1_990_000,
            polls: 50_000_000,
            busy_polls: 1_000_000,
            busy_s: 123.25,
            idle_sleeps: 40,
        })
        .collect();
    s.drops = ispmux_dataplane::DropReason::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name().to_owned(), i as u64 + 1))
        .collect();
    s.punted = 5_000;
    s.pipeline.punts = 5_100;
    s.pipeline.punts_unregistered = 100;
    s.pipeline.transit = pb(77);
    s.slowpath.punted = 5_000;
    s.slowpath.dhcp = 4_000;
    s.slowpath.arp = 900;
    s.slowpath.bindings_installed = 2_000;
    s.slowpath.tables = Some(TableOccupancy {
        subscribers: 2_000,
        subscribers_capacity: 65_536,
        bindings: 1_900,
        bindings_capacity: 65_537,
        labels: 2 * u64::from(isps),
        labels_capacity: 4_096,
        fecs: 2 * u64::from(isps),
        fecs_capacity: 512,
        handoffs: u64::from(isps),
        handoffs_capacity: 1_024,
    });
    let mut dhcp: std::collections::BTreeMap<String, u64> = [
        "installs",
        "removals",
        "from_subscribers",
        "from_servers",
        "relayed",
        "replies",
        "commits",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), 1_000))
    .collect();
    for r in ispmux_slowpath::dhcp::engine::RefusalReason::NAMES {
        dhcp.insert(format!("refused_{r}"), 7);
    }
    dhcp.insert("drop_malformed".into(), 3);
    s.dhcp = Some(dhcp);
    let mut radius: std::collections::BTreeMap<String, u64> = [
        "event.answered",
        "event.access_accept",
        "event.retransmit",
        "event.failover",
        "reject.capacity",
        "reject.csp_suspended",
        "drop.bad_authenticator",
        "drop.unknown_nas",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), 500))
    .collect();
    for c in 0..csps {
        radius.insert(format!("ports_in_use.csp{c}"), 10 + c as u64);
    }
    // The master SP's two servers and one per CSP, each with answers spread over buckets.
    let home_servers = (0..2 + csps)
        .map(|i| {
            let mut h = HomeServerStats {
                server: format!("192.0.2.{}:1812", i + 1),
                requests: 1_000,
                retransmits: 10,
                answers: 990,
                timeouts: 5,
                ..HomeServerStats::default()
            };
            for ms in [1, 2, 4, 30, 800] {
                h.response.observe(std::time::Duration::from_millis(ms));
                h.added.observe(std::time::Duration::from_millis(ms + 1));
            }
            h
        })
        .collect();
    let client_sps = (0..csps)
        .map(|c| CspStats {
            csp: format!("csp{c}"),
            access_requests: 300,
            accounting_requests: 600,
            accepts: 250,
            rejects: 50,
            challenges: 0,
            accounting_responses: 600,
        })
        .collect();
    s.radius = Some(RadiusStats {
        counters: radius,
        home_servers,
        client_sps,
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &mut Metrics, s: &Stats, f: Exposition) -> String {
        m.encode(s, None, f)
    }

    /// The value of the one sample line that starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> Option<f64> {
        let mut found = text
            .lines()
            .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse::<f64>().expect("a number"));
        let v = found.next();
        assert!(found.next().is_none(), "{series} written twice");
        v
    }

    /// A histogram bucket's value; OpenMetrics writes `le` first, the Prometheus format last.
    fn bucket(text: &str, f: Exposition, name: &str, labels: &str, le: &str) -> Option<f64> {
        let series = match f {
            Exposition::OpenMetrics => format!(r#"{name}_bucket{{le="{le}",{labels}}}"#),
            Exposition::Prometheus => format!(r#"{name}_bucket{{{labels},le="{le}"}}"#),
        };
        value(text, &series)
    }

    #[test]
    fn per_isp_counters_carry_role_and_direction() {
        let s = example_stats(3, 2, 2, 4);
        let t = text(&mut Metrics::default(), &s, Exposition::OpenMetrics);
        assert!(t.contains("# TYPE ispmux_isp_bytes counter\n"), "{t}");
        assert!(t.contains("# UNIT ispmux_isp_bytes bytes\n"));
        assert_eq!(
            value(
                &t,
                r#"ispmux_isp_bytes_total{isp="isp2",role="headend",dir="up"}"#
            ),
            Some(2.0 * 1_000.0 * 700.0)
        );
        assert_eq!(
            value(
                &t,
                r#"ispmux_isp_packets_total{isp="isp3",role="tailend",dir="down"}"#
            ),
            Some(3.0 * 2_900.0)
        );
        assert_eq!(
            value(
                &t,
                r#"ispmux_isp_packets_total{isp="isp4",role="headend",dir="up"}"#
            ),
            None,
            "no ISP 4"
        );
        assert!(t.ends_with("# EOF\n"));
    }

    #[test]
    fn every_family_is_described_and_named_by_convention() {
        let s = example_stats(2, 2, 2, 2);
        for f in [Exposition::OpenMetrics, Exposition::Prometheus] {
            let t = text(&mut Metrics::default(), &s, f);
            let mut types = HashMap::new();
            for l in t.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
                let (name, ty) = l.split_once(' ').expect("name and type");
                assert!(name.starts_with("ispmux_"), "{name}");
                assert!(
                    types.insert(name.to_owned(), ty.to_owned()).is_none(),
                    "{name} twice"
                );
                assert!(t.contains(&format!("# HELP {name} ")), "{name} has no help");
            }
            assert!(types.len() > 40, "{} families", types.len());
            for (name, ty) in &types {
                let family = name.trim_end_matches("_total");
                match ty.as_str() {
                    "counter" => assert!(
                        f == Exposition::OpenMetrics || name.ends_with("_total"),
                        "{name}"
                    ),
                    "gauge" => assert!(!name.ends_with("_total"), "{name}"),
                    "histogram" => {
                        assert!(name.ends_with("_seconds"), "{name}");
                        for part in ["_bucket{", "_sum{", "_count{"] {
                            let p = format!("{name}{part}");
                            assert!(t.lines().any(|l| l.starts_with(&p)), "no {p}");
                        }
                    }
                    other => panic!("{name}: {other}"),
                }
                let samples = t
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter(|l| l.starts_with(family))
                    .count();
                assert!(samples > 0 || name.contains("ldp"), "{name} has no sample");
            }
            for l in t.lines().filter(|l| !l.starts_with('#')) {
                assert!(!l.contains("{}"), "an empty label set: {l}");
                let v = l.rsplit_once(' ').expect("a value").1;
                assert!(v.parse::<f64>().is_ok(), "{l}");
            }
        }
    }

    #[test]
    fn the_prometheus_format_names_counters_with_total() {
        let s = example_stats(1, 1, 1, 1);
        let t = text(&mut Metrics::default(), &s, Exposition::Prometheus);
        assert!(t.contains("# TYPE ispmux_drops_total counter\n"), "{t}");
        assert_eq!(
            value(&t, r#"ispmux_drops_total{reason="unknown_mac"}"#),
            Some((ispmux_dataplane::DropReason::UnknownMac as usize + 1) as f64)
        );
        assert_eq!(value(&t, "ispmux_transit_packets_total"), Some(77.0));
        assert_eq!(value(&t, "ispmux_uptime_seconds"), Some(3600.5));
        assert_eq!(
            value(&t, r#"ispmux_worker_busy_seconds_total{lcore="1"}"#),
            Some(123.25)
        );
        assert_eq!(
            value(&t, r#"ispmux_worker_busy_polls_total{lcore="1"}"#),
            Some(1_000_000.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_table_capacity_entries{table="subscribers"}"#),
            Some(65_536.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_dhcp_refusals_total{reason="bad_credential"}"#),
            Some(7.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_radius_rejects_total{reason="capacity"}"#),
            Some(500.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_port_receive_errors_total{port="port0"}"#),
            Some(3.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_radius_csp_ports_in_use{csp="csp0"}"#),
            Some(10.0)
        );
        assert!(!t.contains("# EOF"));
    }

    #[test]
    fn radius_latency_is_a_histogram_with_cumulative_buckets() {
        let s = example_stats(1, 1, 1, 1);
        for f in [Exposition::OpenMetrics, Exposition::Prometheus] {
            let t = text(&mut Metrics::default(), &s, f);
            assert!(
                t.contains("# TYPE ispmux_radius_added_latency_seconds histogram\n"),
                "{t}"
            );
            let srv = r#"server="192.0.2.3:1812""#;
            let b = |le: &str| bucket(&t, f, "ispmux_radius_home_response_seconds", srv, le);
            // Answers in 1, 2, 4, 30 and 800 ms.
            assert_eq!(b("0.001"), Some(1.0));
            assert_eq!(b("0.005"), Some(3.0));
            assert_eq!(b("0.05"), Some(4.0));
            assert_eq!(b("0.5"), Some(4.0));
            assert_eq!(b("1.0").or(b("1")), Some(5.0));
            assert_eq!(b("+Inf"), Some(5.0));
            let count = format!("ispmux_radius_home_response_seconds_count{{{srv}}}");
            assert_eq!(value(&t, &count), Some(5.0));
            let sum = format!("ispmux_radius_home_response_seconds_sum{{{srv}}}");
            assert!((value(&t, &sum).unwrap_or(0.0) - 0.837).abs() < 1e-9);
            assert_eq!(
                value(&t, &format!("ispmux_radius_home_timeouts_total{{{srv}}}")),
                Some(5.0)
            );
            assert_eq!(
                value(
                    &t,
                    r#"ispmux_radius_csp_answers_total{csp="csp0",code="access_reject"}"#
                ),
                Some(50.0)
            );
            assert_eq!(
                value(
                    &t,
                    r#"ispmux_radius_csp_requests_total{csp="csp0",code="accounting_request"}"#
                ),
                Some(600.0)
            );
        }
    }

    /// A restarted proxy's histograms go on from where they were, bucket by bucket.
    #[test]
    fn histograms_never_go_backwards() {
        let mut m = Metrics::default();
        let mut s = example_stats(1, 1, 1, 0);
        let f = Exposition::OpenMetrics;
        let (name, srv) = (
            "ispmux_radius_added_latency_seconds",
            r#"server="192.0.2.1:1812""#,
        );
        let b = |t: &str| {
            (
                bucket(t, f, name, srv, "+Inf"),
                bucket(t, f, name, srv, "0.0025"),
            )
        };
        let t = text(&mut m, &s, f);
        assert_eq!(b(&t), (Some(5.0), Some(1.0)), "2, 3, 5, 31 and 801 ms");
        let r = s.radius.as_mut().expect("radius");
        r.home_servers[0].added = Latency::default();
        r.home_servers[0]
            .added
            .observe(std::time::Duration::from_millis(2));
        let t = text(&mut m, &s, f);
        assert_eq!(b(&t), (Some(6.0), Some(2.0)));
    }

    /// A source that restarts from zero (the RADIUS proxy rebuilt, a port's statistics
    /// reset) does not take its counters back: they go on from what they had reached.
    #[test]
    fn counters_never_go_backwards() {
        let mut m = Metrics::default();
        let mut s = example_stats(1, 1, 1, 0);
        let answered = r#"ispmux_radius_events_total{event="answered"}"#;
        let rx = r#"ispmux_port_receive_packets_total{port="port0"}"#;
        let busy = r#"ispmux_worker_busy_seconds_total{lcore="1"}"#;
        let t = text(&mut m, &s, Exposition::OpenMetrics);
        assert_eq!(value(&t, answered), Some(500.0));
        assert_eq!(value(&t, rx), Some(1_000_000.0));
        // Restarted: counting again from zero.
        let restarted = |n: u64| RadiusStats {
            counters: [("event.answered".to_owned(), n)].into(),
            ..RadiusStats::default()
        };
        s.radius = Some(restarted(20));
        s.ports[0].rx_packets = 10;
        s.workers[0].busy_s = 0.5;
        let t = text(&mut m, &s, Exposition::OpenMetrics);
        assert_eq!(value(&t, answered), Some(520.0));
        assert_eq!(value(&t, rx), Some(1_000_010.0));
        assert_eq!(value(&t, busy), Some(123.75));
        // Then growing as usual.
        s.radius = Some(restarted(25));
        let t = text(&mut m, &s, Exposition::OpenMetrics);
        assert_eq!(value(&t, answered), Some(525.0));
        // A fresh encoder (a restarted gateway) shows the raw values again.
        let t = text(&mut Metrics::default(), &s, Exposition::OpenMetrics);
        assert_eq!(value(&t, answered), Some(25.0));
    }

    proptest::proptest! {
        /// Whatever the raw values do between scrapes, no counter sample goes down.
        #[test]
        fn any_raw_sequence_encodes_monotonic(raw in proptest::collection::vec(0u64..1_000, 1..20)) {
            let mut m = Metrics::default();
            let mut s = example_stats(1, 1, 1, 0);
            let series = r#"ispmux_isp_packets_total{isp="isp1",role="headend",dir="up"}"#;
            let mut last = 0.0;
            for r in raw {
                s.pipeline.isps[0].headend_up.packets = r;
                let v = value(&text(&mut m, &s, Exposition::Prometheus), series).unwrap_or(-1.0);
                proptest::prop_assert!(v >= last, "{v} after {last}");
                last = v;
            }
        }
    }

    #[test]
    fn ldp_sessions_are_counted_by_state() {
        use crate::ldp::view::NeighbourRow;
        let n = |state: Option<&str>| NeighbourRow {
            ldp_id: "198.18.0.2:0".into(),
            lsr_id: std::net::Ipv4Addr::new(198, 18, 0, 2),
            transport: None,
            state: state.map(str::to_owned),
            role: "active".into(),
            uptime_s: None,
            interfaces: Vec::new(),
            addresses: Vec::new(),
            md5: false,
            gtsm: false,
        };
        let view = LdpView {
            neighbours: vec![n(Some("OPERATIONAL")), n(Some("OPERATIONAL")), n(None)],
            ..LdpView::default()
        };
        let t = Metrics::default().encode(&Stats::default(), Some(&view), Exposition::Prometheus);
        assert_eq!(
            value(&t, r#"ispmux_ldp_sessions{state="operational"}"#),
            Some(2.0)
        );
        assert_eq!(
            value(&t, r#"ispmux_ldp_sessions{state="opensent"}"#),
            Some(0.0)
        );
        assert_eq!(value(&t, "ispmux_ldp_neighbours"), Some(3.0));
    }
}
