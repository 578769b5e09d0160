//! The proxy's counters per home server and per client SP, and its latency histograms: kept
//! by the engine as it goes (a few additions per request, no allocation), copied out for the
//! gateway's `stats` and Prometheus metrics.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`); a last bucket holds
/// what is slower than 5 s.
pub const LATENCY_BOUNDS_S: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The same bounds in nanoseconds, for the comparisons of [`Latency::observe`].
const BOUNDS_NS: [u64; 13] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];

/// A latency histogram with the fixed buckets of [`LATENCY_BOUNDS_S`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// Observations per bucket, not cumulative: bucket `i` holds those at most
    /// `LATENCY_BOUNDS_S[i]` and above the bound before; the last, those above 5 s.
    pub buckets: [u64; 14],
    /// Sum of the observations, in nanoseconds.
    pub sum_ns: u64,
    /// Number of observations.
    pub count: u64,
}

impl Latency {
    /// Counts one observation.
    pub fn observe(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
    }

    /// Adds `other`'s observations to these.
    pub fn merge(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.count += other.count;
    }

    /// The sum of the observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }
}

/// One home server's counters. Status-Server probes are not counted here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeServerStats {
    /// The server as metrics name it: its authentication address (`IP:port`).
    pub server: String,
    /// Requests sent to it (each hop of a NAS's request once; retransmissions apart).
    pub requests: u64,
    /// Retransmissions of those requests.
    pub retransmits: u64,
    /// Authenticated answers to them.
    pub answers: u64,
    /// Requests it did not answer after every retransmission (the proxy then failed over).
    pub timeouts: u64,
    /// Its round trip: from a request's first sending to its answer.
    pub response: Latency,
    /// The time the proxy held the NAS's requests that this server's answer ended: from
    /// the request in to the answer out, every hop (and failover) included.
    pub added: Latency,
}

impl HomeServerStats {
    fn merge(&mut self, o: &HomeServerStats) {
        self.requests += o.requests;
        self.retransmits += o.retransmits;
        self.answers += o.answers;
        self.timeouts += o.timeouts;
        self.response.merge(&o.response);
        self.added.merge(&o.added);
    }
}

/// One client SP's counters: its subscribers' requests and the answers their NAS got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CspStats {
    pub csp: String,
    pub access_requests: u64,
    pub accounting_requests: u64,
    /// Access-Accepts sent to the NAS.
    pub accepts: u64,
    /// Access-Rejects sent to the NAS: the servers' and the proxy's own (capacity).
    pub rejects: u64,
    pub challenges: u64,
    pub accounting_responses: u64,
}

/// Everything the proxy counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RadiusStats {
    /// Events, drops and rejects by reason, and ports in use, as `group.name` -> count.
    #[serde(flatten)]
    pub counters: BTreeMap<String, u64>,
    /// Per home server, master SP's first, in configuration order; one entry per address.
    #[serde(default)]
    pub home_servers: Vec<HomeServerStats>,
    /// Per client SP, in configuration order.
    #[serde(default)]
    pub client_sps: Vec<CspStats>,
}

/// `servers` with those of the same name summed, in order of first appearance (a server
/// in two pools, or replaced by a reload, is one series).
pub fn merge_by_server<'a>(
    servers: impl IntoIterator<Item = &'a HomeServerStats>,
) -> Vec<HomeServerStats> {
    let mut out: Vec<HomeServerStats> = Vec::new();
    for s in servers {
        match out.iter_mut().find(|o| o.server == s.server) {
            Some(o) => o.merge(s),
            None => out.push(s.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_bucket_of_their_bound() {
        let mut l = Latency::default();
        for us in [0, 500, 501, 999_000, 5_000_000, 5_000_001, 60_000_000] {
            l.observe(Duration::from_micros(us));
        }
        // 0 and 0.5 ms in the first bucket (le is inclusive), 0.501 ms in the second.
        assert_eq!(l.buckets[0], 2);
        assert_eq!(l.buckets[1], 1);
        // 0.999 s under 1 s; 5 s exactly in the last bounded bucket; above it, +Inf.
        assert_eq!(l.buckets[10], 1);
        assert_eq!(l.buckets[12], 1);
        assert_eq!(l.buckets[13], 2);
        assert_eq!(l.count, 7);
        assert_eq!(l.buckets.iter().sum::<u64>(), l.count);
        let want = 0.0 + 0.0005 + 0.000501 + 0.999 + 5.0 + 5.000001 + 60.0;
        assert!((l.sum_seconds() - want).abs() < 1e-9, "{}", l.sum_seconds());
    }

    #[test]
    fn bounds_agree() {
        for (s, ns) in LATENCY_BOUNDS_S.iter().zip(BOUNDS_NS) {
            assert_eq!((s * 1e9).round() as u64, ns);
        }
    }

    #[test]
    fn servers_of_one_name_are_summed() {
        let mut a = HomeServerStats {
            server: "192.0.2.1:1812".into(),
            requests: 2,
            ..Default::default()
        };
        a.response.observe(Duration::from_millis(3));
        let b = HomeServerStats {
            server: "192.0.2.2:1812".into(),
            requests: 5,
            ..Default::default()
        };
        let mut c = a.clone();
        c.timeouts = 1;
        let m = merge_by_server([&a, &b, &c]);
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].requests, m[0].timeouts, m[0].response.count),
            (4, 1, 2)
        );
        assert_eq!(m[1].requests, 5);
    }

    #[test]
    fn json_keeps_the_counters_at_the_top() {
        let s = RadiusStats {
            counters: [("event.answered".to_owned(), 3)].into(),
            home_servers: vec![HomeServerStats::default()],
            client_sps: Vec::new(),
        };
        let j = serde_json::to_value(&s).expect("json");
        assert_eq!(j["event.answered"], 3);
        let back: RadiusStats = serde_json::from_value(j).expect("back");
        assert_eq!(back, s);
    }
}
