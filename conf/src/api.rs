//! `[api]`: the provisioning API (HTTP/1.1 + JSON) on which ISPs register their subscribers
//! and the operator manages ISP tokens; absent: not served.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[api]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// The address and TCP port served.
    pub listen: SocketAddr,
    /// The server's certificate chain, PEM; with `tls_key`, the API speaks TLS only.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key: Option<String>,
    /// Serve plain HTTP on an address other than loopback (tokens and passwords then cross
    /// the network in clear: only behind a TLS-terminating proxy).
    #[serde(default)]
    pub allow_plain: bool,
    /// SHA-256 of the operator's bearer token, 64 hex digits (`ispmux token operator` makes
    /// a token and prints this); absent: no operator routes.
    #[serde(default)]
    pub operator_token_sha256: Option<String>,
    /// Threads of the API's runtime; password hashing runs on up to as many more.
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// CPUs the API's threads run on; absent: the control lcore's (inherited). Never a
    /// worker's lcore.
    #[serde(default)]
    pub cpus: Option<Vec<u32>>,
    /// The largest request body accepted, bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The most subscribers one bulk import may carry.
    #[serde(default = "default_max_import")]
    pub max_import_items: usize,
    /// A request not answered within this is answered 408/503 and dropped, seconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_s: u32,
    /// Failed logins from one source address within `login_window_s` before it is answered
    /// 429 until the window ends.
    #[serde(default = "default_login_failures")]
    pub login_failures: u32,
    /// The failed-login window, seconds.
    #[serde(default = "default_login_window")]
    pub login_window_s: u32,
    /// Argon2id memory cost (KiB) of passwords sent in clear; also the least a PHC string
    /// sent already hashed must have.
    #[serde(default = "default_m_kib")]
    pub argon2_m_kib: u32,
    /// Argon2id passes, likewise.
    #[serde(default = "default_t")]
    pub argon2_t: u32,
}

fn default_threads() -> usize {
    2
}
fn default_max_body() -> usize {
    64 << 20
}
fn default_max_import() -> usize {
    100_000
}
fn default_timeout() -> u32 {
    120
}
fn default_login_failures() -> u32 {
    10
}
fn default_login_window() -> u32 {
    60
}
/// The OWASP minimum for Argon2id (19 MiB, 2 passes), the registry's default.
fn default_m_kib() -> u32 {
    19_456
}
fn default_t() -> u32 {
    2
}

impl ApiConfig {
    /// Whether requests and answers are encrypted.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Problems as (key path, message); empty when usable. `lcores` are EAL's (main and
    /// workers): the API's CPUs must be other ones.
    pub fn validate(&self, lcores: &[u32]) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |k: &str, m: String| errs.push((format!("api.{k}"), m));
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => err("tls_cert", "needs tls_key too".into()),
            (None, Some(_)) => err("tls_key", "needs tls_cert too".into()),
            (None, None) if !self.listen.ip().is_loopback() && !self.allow_plain => err(
                "listen",
                format!(
                    "{} is not a loopback address: give tls_cert and tls_key, or allow_plain = true",
                    self.listen
                ),
            ),
            _ => {}
        }
        if let Some(h) = &self.operator_token_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                err(
                    "operator_token_sha256",
                    "must be 64 hex digits (`ispmux token operator` prints one)".into(),
                );
            }
        }
        if !(1..=64).contains(&self.threads) {
            err("threads", "must be 1 to 64".into());
        }
        if let Some(cpus) = &self.cpus {
            if cpus.is_empty() {
                err("cpus", "name at least one CPU, or leave it out".into());
            }
            for c in cpus {
                if lcores.contains(c) {
                    err(
                        "cpus",
                        format!("CPU {c} is an EAL lcore: the API never runs beside the workers or the slow path"),
                    );
                }
            }
        }
        if self.max_body_bytes < 1024 {
            err("max_body_bytes", "must be at least 1024".into());
        }
        if self.max_import_items == 0 {
            err("max_import_items", "must be at least 1".into());
        }
        if self.request_timeout_s == 0 {
            err("request_timeout_s", "must be at least 1".into());
        }
        if self.login_failures == 0 {
            err("login_failures", "must be at least 1".into());
        }
        if self.login_window_s == 0 {
            err("login_window_s", "must be at least 1".into());
        }
        // Argon2's own bounds: at least 8 KiB per lane (one lane here), one pass.
        if self.argon2_m_kib < 8 {
            err("argon2_m_kib", "must be at least 8".into());
        }
        if self.argon2_t == 0 {
            err("argon2_t", "must be at least 1".into());
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ApiConfig {
        toml::from_str(s).expect("parses")
    }

    #[test]
    fn loopback_may_be_plain_elsewhere_tls_or_allowed() {
        assert!(parse("listen = \"127.0.0.1:8080\"")
            .validate(&[])
            .is_empty());
        let keys = |c: ApiConfig| -> Vec<String> {
            c.validate(&[0, 1]).into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys(parse("listen = \"198.18.0.1:8080\"")), ["api.listen"]);
        assert!(keys(parse("listen = \"198.18.0.1:8080\"\nallow_plain = true")).is_empty());
        assert!(keys(parse(
            "listen = \"198.18.0.1:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\""
        ))
        .is_empty());
        assert_eq!(
            keys(parse("listen = \"198.18.0.1:8443\"\ntls_cert = \"c.pem\"")),
            ["api.tls_cert"]
        );
        assert_eq!(
            keys(parse(
                "listen = \"127.0.0.1:1\"\noperator_token_sha256 = \"abc\"\nthreads = 0\ncpus = [1]\nargon2_t = 0"
            )),
            ["api.operator_token_sha256", "api.threads", "api.cpus", "api.argon2_t"]
        );
        assert!(toml::from_str::<ApiConfig>("listen = \"127.0.0.1:1\"\nport = 1").is_err());
    }
}
