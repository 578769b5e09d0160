//! The `[radius]` table: the capacity-sharing RADIUS proxy (NAS clients, the master SP and its
//! home servers, client SPs with their realms, virtual subscriber and capacity policy).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// The whole `[radius]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    /// Where NASes send Access-Requests (and Status-Server).
    pub listen_auth: SocketAddr,
    /// Where NASes send Accounting-Requests.
    pub listen_acct: SocketAddr,
    /// Source address of requests to home servers and of Disconnect-Requests; unspecified lets
    /// the kernel choose.
    #[serde(default)]
    pub source_address: Option<IpAddr>,
    /// Timers of the proxy.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// The RADIUS clients (NASes) allowed to use the proxy.
    pub nas: Vec<NasClient>,
    /// The master SP, owner of the POPs.
    pub master: MasterSp,
    /// The client SPs renting capacity.
    #[serde(default)]
    pub client_sp: Vec<ClientSp>,
}

/// Longest busy poll allowed: beyond a few milliseconds sleeping costs nothing measurable.
pub const MAX_BUSY_POLL_US: u64 = 10_000;

/// Timers and retry counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Wait for a home server's answer before retransmitting, in milliseconds.
    pub response_ms: u64,
    /// Retransmissions to one home server before it is marked dead and the pool fails over.
    pub retries: u32,
    /// Interval between Status-Server probes of a dead home server, in milliseconds.
    pub probe_interval_ms: u64,
    /// How long an answered request stays in the duplicate cache, in milliseconds.
    pub duplicate_cache_ms: u64,
    /// How long an accepted CSP logon holds a port while waiting for its Accounting Start.
    pub reservation_ms: u64,
    /// Wait for a NAS's Disconnect-ACK before retransmitting, in milliseconds.
    pub disconnect_ms: u64,
    /// After forwarding a request to a home server, poll the sockets without sleeping for up
    /// to this many microseconds while answers are awaited (0: never). A nearby home server
    /// answers within tens of microseconds, and a thread that went to sleep meanwhile is
    /// woken late by as much again (more on a virtual machine, whose idle CPU is halted); the
    /// cost is that much CPU per request, at most.
    pub busy_poll_us: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            response_ms: 1000,
            retries: 2,
            probe_interval_ms: 5000,
            duplicate_cache_ms: 5_000,
            reservation_ms: 60_000,
            disconnect_ms: 1000,
            busy_poll_us: 0,
        }
    }
}

/// A NAS (RADIUS client) or a prefix of them sharing a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NasClient {
    /// Name used in logs.
    pub name: String,
    /// `ADDR` or `ADDR/LEN`.
    pub address: String,
    /// Shared secret.
    pub secret: String,
    /// Drop Access-Requests from this NAS that lack a valid Message-Authenticator.
    #[serde(default)]
    pub require_message_authenticator: bool,
    /// The NAS's Dynamic Authorization port (RFC 5176), target of Disconnect-Requests.
    #[serde(default = "default_coa_port")]
    pub coa_port: u16,
}

fn default_coa_port() -> u16 {
    3799
}

/// A home server (RADIUS server) of the master SP or of a client SP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomeServer {
    /// Address of the server.
    pub address: IpAddr,
    /// Authentication port.
    #[serde(default = "default_auth_port")]
    pub auth_port: u16,
    /// Accounting port.
    #[serde(default = "default_acct_port")]
    pub acct_port: u16,
    /// Shared secret between the proxy and this server.
    pub secret: String,
    /// Drop Access-Accept/Reject/Challenge from this server without a Message-Authenticator.
    #[serde(default)]
    pub require_message_authenticator: bool,
}

fn default_auth_port() -> u16 {
    1812
}

fn default_acct_port() -> u16 {
    1813
}

/// The master SP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterSp {
    /// Name used in logs.
    pub name: String,
    /// Realms of the master SP's own subscribers.
    #[serde(default)]
    pub realms: Vec<String>,
    /// Whether a User-Name without realm (and matching no CSP) belongs to the master SP.
    #[serde(default = "yes")]
    pub unrealmed_is_master: bool,
    /// Home servers, tried in order (failover pool).
    pub home_servers: Vec<HomeServer>,
}

fn yes() -> bool {
    true
}

/// A client SP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSp {
    /// Name, also the key of its usage records.
    pub name: String,
    /// Realms identifying its subscribers (`user@realm` or `realm/user`).
    #[serde(default)]
    pub realms: Vec<String>,
    /// Called-Station-Id values dedicated to this CSP (identify it without realm).
    #[serde(default)]
    pub called_station_id: Vec<String>,
    /// NAS-Identifier values dedicated to this CSP.
    #[serde(default)]
    pub nas_identifier: Vec<String>,
    /// Send the User-Name to the CSP's servers without its realm.
    #[serde(default)]
    pub strip_realm: bool,
    /// Virtual subscriber representing this CSP at the master server.
    pub virtual_user: String,
    /// Password of the virtual subscriber.
    pub virtual_password: String,
    /// The CSP's home servers, tried in order (failover pool).
    pub home_servers: Vec<HomeServer>,
    /// Capacity rented by this CSP.
    pub capacity: Capacity,
}

/// Capacity policy of a client SP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Ports (simultaneous sessions) allocated.
    pub ports: u32,
    /// Connection time allowed per period, in seconds; none means unlimited.
    #[serde(default)]
    pub connection_time_s: Option<u64>,
    /// Billing period of the threshold and of the usage records.
    #[serde(default)]
    pub period: Period,
    /// Business suspended by the master SP: logons rejected, sessions disconnected.
    #[serde(default)]
    pub suspended: bool,
}

/// A billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    #[default]
    Month,
}

/// Parses `ADDR` or `ADDR/LEN` into an address and a prefix length.
pub fn parse_prefix(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.trim().parse::<u8>().ok()?,
        None => max,
    };
    (len <= max).then_some((addr, len))
}

impl RadiusConfig {
    /// Parses a standalone proxy file: a TOML document with a `[radius]` table.
    pub fn from_toml_file_text(text: &str) -> Result<RadiusConfig, toml::de::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            radius: RadiusConfig,
        }
        toml::from_str::<File>(text).map(|f| f.radius)
    }

    /// Every problem found, as (key path, message); empty when the table is usable.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |k: String, m: &str| errs.push((k, m.to_owned()));
        // Port 0 (any free port, as tests use) is the only way both may be equal.
        if self.listen_auth == self.listen_acct && self.listen_auth.port() != 0 {
            err("radius.listen_acct".into(), "must differ from listen_auth");
        }
        if self.timeouts.response_ms == 0 {
            err("radius.timeouts.response_ms".into(), "must be > 0");
        }
        if self.timeouts.probe_interval_ms == 0 {
            err("radius.timeouts.probe_interval_ms".into(), "must be > 0");
        }
        if self.timeouts.busy_poll_us > MAX_BUSY_POLL_US {
            err(
                "radius.timeouts.busy_poll_us".into(),
                "must be <= 10000 (a spin, not a sleep)",
            );
        }
        if self.nas.is_empty() {
            err("radius.nas".into(), "at least one NAS client is needed");
        }
        // The name is how logs and operators tell NASes apart: two of one name are one too many.
        let mut nas_names: HashMap<&str, usize> = HashMap::new();
        for (i, n) in self.nas.iter().enumerate() {
            if let Some(j) = nas_names.insert(n.name.as_str(), i) {
                err(
                    format!("radius.nas[{i}].name"),
                    &format!("NAS name {:?} is already used by radius.nas[{j}]", n.name),
                );
            }
            if parse_prefix(&n.address).is_none() {
                err(
                    format!("radius.nas[{i}].address"),
                    "not an address or ADDR/LEN prefix",
                );
            }
            if n.secret.is_empty() {
                err(format!("radius.nas[{i}].secret"), "must not be empty");
            }
        }
        if self.master.home_servers.is_empty() {
            err(
                "radius.master.home_servers".into(),
                "at least one home server is needed",
            );
        }
        check_servers(&self.master.home_servers, "radius.master", &mut err);
        let mut realms: HashSet<String> = HashSet::new();
        for (j, r) in self.master.realms.iter().enumerate() {
            if !valid_realm(r) {
                err(format!("radius.master.realms[{j}]"), "bad realm");
            } else if !realms.insert(r.to_ascii_lowercase()) {
                err(format!("radius.master.realms[{j}]"), "realm listed twice");
            }
        }
        let mut names = HashSet::new();
        for (i, c) in self.client_sp.iter().enumerate() {
            let k = format!("radius.client_sp[{i}]");
            if c.name.is_empty() || !names.insert(c.name.clone()) {
                err(format!("{k}.name"), "empty or duplicate name");
            }
            if c.realms.is_empty() && c.called_station_id.is_empty() && c.nas_identifier.is_empty()
            {
                err(
                    format!("{k}.realms"),
                    "a client SP needs realms, called_station_id or nas_identifier",
                );
            }
            for (j, r) in c.realms.iter().enumerate() {
                if !valid_realm(r) {
                    err(format!("{k}.realms[{j}]"), "bad realm");
                } else if !realms.insert(r.to_ascii_lowercase()) {
                    err(
                        format!("{k}.realms[{j}]"),
                        "realm already belongs to another SP",
                    );
                }
            }
            if c.virtual_user.is_empty() {
                err(format!("{k}.virtual_user"), "must not be empty");
            }
            if c.virtual_password.len() > 128 {
                err(format!("{k}.virtual_password"), "longer than 128 octets");
            }
            if c.home_servers.is_empty() {
                err(
                    format!("{k}.home_servers"),
                    "at least one home server is needed",
                );
            }
            check_servers(&c.home_servers, &k, &mut err);
            if c.capacity.connection_time_s == Some(0) {
                err(
                    format!("{k}.capacity.connection_time_s"),
                    "0 would refuse every logon; use suspended",
                );
            }
        }
        errs
    }
}

fn valid_realm(r: &str) -> bool {
    !r.is_empty() && !r.contains(['@', '/']) && !r.chars().any(char::is_whitespace)
}

fn check_servers(servers: &[HomeServer], key: &str, err: &mut impl FnMut(String, &str)) {
    for (i, s) in servers.iter().enumerate() {
        if s.secret.is_empty() {
            err(
                format!("{key}.home_servers[{i}].secret"),
                "must not be empty",
            );
        }
        if s.auth_port == 0 || s.acct_port == 0 {
            err(format!("{key}.home_servers[{i}]"), "ports must be non-zero");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[radius]
listen_auth = "127.0.0.1:11812"
listen_acct = "127.0.0.1:11813"

[[radius.nas]]
name = "pop1"
address = "127.0.0.0/8"
secret = "nas-secret"

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{ address = "127.0.0.1", auth_port = 21812, acct_port = 21813, secret = "m" }]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
strip_realm = true
virtual_user = "vs-csp1"
virtual_password = "vpw"
home_servers = [{ address = "127.0.0.1", secret = "c1" }]
capacity = { ports = 2, connection_time_s = 3600, period = "day" }
"#;

    #[test]
    fn sample_parses_and_validates() {
        let c = RadiusConfig::from_toml_file_text(SAMPLE).expect("parses");
        assert_eq!(c.validate(), Vec::<(String, String)>::new());
        assert_eq!(c.client_sp[0].capacity.period, Period::Day);
        assert_eq!(c.client_sp[0].home_servers[0].auth_port, 1812);
        assert!(c.master.unrealmed_is_master);
    }

    #[test]
    fn example_file_validates() {
        let c = RadiusConfig::from_toml_file_text(include_str!("../examples/radius-proxy.toml"))
            .expect("example parses");
        assert_eq!(c.validate(), Vec::<(String, String)>::new());
        assert_eq!(c.client_sp.len(), 2);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let bad = SAMPLE.replace("strip_realm = true", "strip_realms = true");
        assert!(RadiusConfig::from_toml_file_text(&bad).is_err());
    }

    #[test]
    fn busy_poll_is_bounded() {
        let mut c = RadiusConfig::from_toml_file_text(SAMPLE).expect("parses");
        assert_eq!(c.timeouts.busy_poll_us, 0, "off unless asked for");
        c.timeouts.busy_poll_us = MAX_BUSY_POLL_US;
        assert!(c.validate().is_empty());
        c.timeouts.busy_poll_us = MAX_BUSY_POLL_US + 1;
        assert_eq!(c.validate()[0].0, "radius.timeouts.busy_poll_us");
    }

    #[test]
    fn validate_names_the_key() {
        let mut c = RadiusConfig::from_toml_file_text(SAMPLE).expect("parses");
        c.client_sp[0].realms = vec!["msp.example".into()];
        c.nas[0].address = "300.1.1.1".into();
        let errs = c.validate();
        let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"radius.client_sp[0].realms[0]"), "{errs:?}");
        assert!(keys.contains(&"radius.nas[0].address"), "{errs:?}");
    }

    #[test]
    fn duplicate_nas_names_are_refused() {
        let mut c = RadiusConfig::from_toml_file_text(SAMPLE).expect("parses");
        let mut twin = c.nas[0].clone();
        twin.address = "192.0.2.1".into();
        c.nas.push(twin);
        let errs = c.validate();
        assert!(
            errs.iter()
                .any(|(k, m)| k == "radius.nas[1].name"
                    && m.contains("already used by radius.nas[0]")),
            "{errs:?}"
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("127.0.0.0/8"),
            Some(("127.0.0.0".parse().expect("ip"), 8))
        );
        assert_eq!(parse_prefix("::1"), Some(("::1".parse().expect("ip"), 128)));
        assert_eq!(parse_prefix("10.0.0.0/33"), None);
    }
}
