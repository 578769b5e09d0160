//! `[icmp]`: the ICMP errors the slow path sends for what the fast path cannot forward (TTL
//! expired, DF packet too big once labelled), and their per-source rate limit.

use serde::{Deserialize, Serialize};

/// The ICMP errors' settings; every key has a default, so the table may be absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpConfig {
    /// Send ICMP errors at all; off: the punted frames are counted and freed.
    pub enabled: bool,
    /// Errors per second sustained toward one source address (RFC 1812 section 4.3.2.8).
    pub rate_per_s: f64,
    /// Errors sent at once toward one source (a traceroute sends three probes per hop).
    pub burst: u32,
    /// Source addresses tracked at once (bounds memory under a spoofed flood; a new source
    /// beyond it is limited until older buckets refill).
    pub max_sources: usize,
}

impl Default for IcmpConfig {
    fn default() -> Self {
        IcmpConfig {
            enabled: true,
            rate_per_s: 10.0,
            burst: 10,
            max_sources: 65_536,
        }
    }
}

impl IcmpConfig {
    /// Problems as (key path, message); empty when usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if !(self.rate_per_s.is_finite() && self.rate_per_s > 0.0) {
            errs.push(("icmp.rate_per_s".into(), "must be positive".into()));
        }
        if self.burst == 0 {
            errs.push(("icmp.burst".into(), "must be at least 1".into()));
        }
        if self.max_sources == 0 {
            errs.push(("icmp.max_sources".into(), "must be at least 1".into()));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let c: IcmpConfig = toml::from_str("").expect("empty");
        assert_eq!(c, IcmpConfig::default());
        assert!(c.validate().is_empty());
        let c: IcmpConfig =
            toml::from_str("rate_per_s = 0.0\nburst = 0\nmax_sources = 0").expect("parses");
        let keys: Vec<_> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["icmp.rate_per_s", "icmp.burst", "icmp.max_sources"]);
        assert!(
            toml::from_str::<IcmpConfig>("rate = 1").is_err(),
            "unknown key"
        );
    }
}
