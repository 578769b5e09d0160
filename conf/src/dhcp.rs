//! `[dhcp]`: the DHCP logon proxy: the gateway's addresses on both sides, the ISPs' DHCP
//! servers, timeouts and per-subscriber rate limits.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The DHCP logon proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpConfig {
    /// The gateway's ISP-side address: the ISP-side socket binds it (port 67) and it is the
    /// giaddr of every relayed request, so ISP servers answer here.
    pub relay_address: Ipv4Addr,
    /// The address subscribers see as their DHCP server (option 54 in replies, RFC 5107
    /// server identifier override towards the ISP).
    pub server_identifier: Ipv4Addr,
    /// Refuse logons that carry no credential (options 224/225); when false a credential is
    /// checked only if present.
    #[serde(default)]
    pub require_credential: bool,
    /// Access ports, by name, where a relay agent (a head end's) sits between subscribers
    /// and the gateway: requests with giaddr set are accepted there and answered to that
    /// relay. Elsewhere a request with giaddr or option 82 is dropped (RFC 3046 §2.1).
    #[serde(default)]
    pub trusted_relay_ports: Vec<String>,
    /// `trusted_relay_ports` as port indices, what the logon engine compares: worked out
    /// when the file is loaded (the ports' order in `[[port]]`).
    #[serde(skip)]
    pub trusted_relay_port_ids: Vec<u16>,
    /// How long to wait for an ISP server before trying its next one, in milliseconds.
    #[serde(default = "default_server_timeout_ms")]
    pub server_timeout_ms: u64,
    /// Per-subscriber rate limit.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// DHCP messages from MACs the registry does not hold that each worker still passes to
    /// the logon proxy per second, to be refused and recorded; the rest are dropped in the
    /// worker (`unregistered`), so a storm from unknown MACs never reaches the slow path.
    #[serde(default = "default_unregistered_per_s")]
    pub unregistered_per_s: u32,
    /// The ISPs and their DHCP servers.
    #[serde(default)]
    pub isps: Vec<IspDhcpConfig>,
}

/// Enough to record a modem not registered yet (it retries every few seconds); a storm's
/// refusals cost the store a write each, and on a small machine that showed in forwarding
/// (punt-flood: 0.96 at 50 a second, 1.0 at none).
fn default_unregistered_per_s() -> u32 {
    10
}

fn default_server_timeout_ms() -> u64 {
    2000
}

/// A token bucket per subscriber MAC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained DHCP messages per second per subscriber.
    #[serde(default = "default_per_second")]
    pub per_second: f64,
    /// Messages a subscriber may send at once.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Subscribers tracked at once (bounds memory under a MAC-randomising flood).
    #[serde(default = "default_max_tracked")]
    pub max_tracked: usize,
}

fn default_per_second() -> f64 {
    2.0
}
fn default_burst() -> u32 {
    8
}
fn default_max_tracked() -> usize {
    100_000
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_second: default_per_second(),
            burst: default_burst(),
            max_tracked: default_max_tracked(),
        }
    }
}

/// One ISP as the DHCP proxy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IspDhcpConfig {
    /// The ISP's name, as subscribers in the registry refer to it.
    pub name: String,
    /// DHCP servers in order of preference; the next is tried when one does not answer.
    pub servers: Vec<Ipv4Addr>,
    /// RFC 3527 link selection: the subnet the ISP assigns this gateway's subscribers from.
    #[serde(default)]
    pub link_selection: Option<Ipv4Addr>,
    /// Where the ISP is told of its subscribers' refused logons (seed 001, claim 17): each
    /// new refusal is POSTed there as JSON, `http://` or `https://`.
    #[serde(default)]
    pub refusal_webhook: Option<String>,
    /// The key the webhook's bodies are signed with (HMAC-SHA256 in the
    /// `X-Ispmux-Signature` header), so the ISP can tell them from forgeries.
    #[serde(default)]
    pub refusal_webhook_secret: Option<String>,
}

/// Whether `url` is one the refusal notifier can POST to: `http://` or `https://`, a host,
/// no whitespace.
fn webhook_url_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        None => Some("must start with http:// or https://"),
        Some(r) if r.split(['/', '?', '#']).next().is_none_or(str::is_empty) => Some("has no host"),
        Some(_) if url.chars().any(char::is_whitespace) => Some("must not contain whitespace"),
        Some(_) => None,
    }
}

impl DhcpConfig {
    /// Problems as (key path, message); empty when the section is usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut bad = |k: String, m: &str| errs.push((k, m.to_owned()));
        for (key, a) in [
            ("dhcp.relay_address", self.relay_address),
            ("dhcp.server_identifier", self.server_identifier),
        ] {
            if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                bad(key.into(), "must be a unicast address");
            }
        }
        if self.server_timeout_ms == 0 || self.server_timeout_ms > 60_000 {
            bad(
                "dhcp.server_timeout_ms".into(),
                "must be between 1 and 60000",
            );
        }
        let rl = &self.rate_limit;
        if !(rl.per_second.is_finite() && rl.per_second > 0.0) {
            bad("dhcp.rate_limit.per_second".into(), "must be positive");
        }
        if rl.burst == 0 {
            bad("dhcp.rate_limit.burst".into(), "must be at least 1");
        }
        if rl.max_tracked == 0 {
            bad("dhcp.rate_limit.max_tracked".into(), "must be at least 1");
        }
        let mut names = std::collections::HashSet::new();
        for (i, isp) in self.isps.iter().enumerate() {
            let k = format!("dhcp.isps[{i}]");
            if isp.name.trim().is_empty() {
                bad(format!("{k}.name"), "must not be empty");
            } else if !names.insert(isp.name.as_str()) {
                bad(format!("{k}.name"), "duplicate ISP name");
            }
            if isp.servers.is_empty() {
                bad(format!("{k}.servers"), "needs at least one DHCP server");
            }
            for (j, s) in isp.servers.iter().enumerate() {
                if s.is_unspecified() || s.is_broadcast() || s.is_multicast() {
                    bad(format!("{k}.servers[{j}]"), "must be a unicast address");
                }
                if *s == self.relay_address {
                    bad(
                        format!("{k}.servers[{j}]"),
                        "is the gateway's own relay address",
                    );
                }
            }
            if let Some(p) = isp.refusal_webhook.as_deref().and_then(webhook_url_problem) {
                bad(format!("{k}.refusal_webhook"), p);
            }
            match (&isp.refusal_webhook, &isp.refusal_webhook_secret) {
                (None, Some(_)) => bad(
                    format!("{k}.refusal_webhook_secret"),
                    "is set without refusal_webhook",
                ),
                (Some(_), Some(key)) if key.is_empty() => {
                    bad(format!("{k}.refusal_webhook_secret"), "must not be empty")
                }
                _ => {}
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        relay_address = "198.18.0.1"
        server_identifier = "198.18.64.1"
        server_timeout_ms = 500
        [rate_limit]
        per_second = 1.5
        burst = 4
        [[isps]]
        name = "isp-a"
        servers = ["198.18.1.2", "198.18.1.3"]
        link_selection = "198.18.100.0"
    "#;

    #[test]
    fn parses_defaults_and_validates() {
        let c: DhcpConfig = toml::from_str(GOOD).expect("parses");
        assert_eq!(c.isps[0].servers.len(), 2);
        assert_eq!(c.rate_limit.max_tracked, 100_000);
        assert!(!c.require_credential);
        assert_eq!(c.validate(), vec![]);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let bad = GOOD.replace("burst = 4", "burst = 4\nbrust = 5");
        assert!(toml::from_str::<DhcpConfig>(&bad).is_err());
    }

    #[test]
    fn validate_names_the_key() {
        let mut c: DhcpConfig = toml::from_str(GOOD).expect("parses");
        c.isps.push(c.isps[0].clone());
        c.isps[1].servers = vec![c.relay_address];
        c.server_timeout_ms = 0;
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                "dhcp.server_timeout_ms",
                "dhcp.isps[1].name",
                "dhcp.isps[1].servers[0]"
            ]
        );
    }

    #[test]
    fn a_refusal_webhook_is_an_http_url_and_its_key_needs_it() {
        let mut c: DhcpConfig = toml::from_str(GOOD).expect("parses");
        for (url, secret, problem) in [
            ("https://isp-a.example/refusals", Some("k"), None),
            ("http://198.18.1.2:8080/hook?x=1", None, None),
            (
                "ftp://isp-a.example/",
                None,
                Some("must start with http:// or https://"),
            ),
            ("https:///refusals", None, Some("has no host")),
            ("http://isp a/", None, Some("must not contain whitespace")),
            (
                "https://isp-a.example/",
                Some(""),
                Some("must not be empty"),
            ),
        ] {
            c.isps[0].refusal_webhook = Some(url.into());
            c.isps[0].refusal_webhook_secret = secret.map(Into::into);
            let errs = c.validate();
            assert_eq!(errs.first().map(|(_, m)| m.as_str()), problem, "{url}");
        }
        c.isps[0].refusal_webhook = None;
        c.isps[0].refusal_webhook_secret = Some("k".into());
        assert_eq!(
            c.validate(),
            vec![(
                "dhcp.isps[0].refusal_webhook_secret".to_owned(),
                "is set without refusal_webhook".to_owned()
            )]
        );
    }
}
