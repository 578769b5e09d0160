//! Who is asking: the operator, or one ISP, by the request's bearer token; and the limit on
//! failed logins per source address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};

use crate::error::ApiError;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator: every ISP's data, and the operator's routes.
    Operator,
    /// One ISP: its own data only.
    Isp(String),
}

impl Caller {
    /// The ISP a request may act on: `isp` itself for the operator (when it exists) and
    /// for the ISP's own token; for another ISP's, the same 404 as an ISP that does not
    /// exist, so a token learns nothing about other ISPs.
    pub fn scope(&self, isp: &str) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Isp(own) if own == isp => Ok(()),
            Caller::Isp(_) => Err(ApiError::no_isp(isp)),
        }
    }

    /// Refuses an ISP's token on an operator's route.
    pub fn operator(&self) -> Result<(), ApiError> {
        match self {
            Caller::Operator => Ok(()),
            Caller::Isp(_) => Err(ApiError::forbidden()),
        }
    }
}

/// The bearer token of `headers`, if they carry one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Failed logins per source address in fixed windows: a source that fails `max` times in a
/// window is refused (429) until the window ends, right token or not, so guessing costs a
/// window per `max` guesses. The table is bounded: when full, windows that ended go, and if
/// none has, new sources share one slot (they are limited together rather than not at all).
pub struct FailedLogins {
    max: u32,
    window: Duration,
    by_source: HashMap<IpAddr, (Instant, u32)>,
}

/// Sources tracked at once.
const MAX_SOURCES: usize = 65_536;

/// Where sources beyond [`MAX_SOURCES`] are counted together.
const OVERFLOW: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

impl FailedLogins {
    /// `max` failures per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        FailedLogins {
            max,
            window,
            by_source: HashMap::new(),
        }
    }

    fn key(&mut self, ip: IpAddr, now: Instant) -> IpAddr {
        if self.by_source.len() >= MAX_SOURCES && !self.by_source.contains_key(&ip) {
            let w = self.window;
            self.by_source.retain(|_, (start, _)| now < *start + w);
            if self.by_source.len() >= MAX_SOURCES {
                return OVERFLOW;
            }
        }
        ip
    }

    /// Refuses `ip` while it is over its limit.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let ip = self.key(ip, now);
        match self.by_source.get(&ip) {
            Some(&(start, n)) if n >= self.max && now < start + self.window => {
                let left = (start + self.window).saturating_duration_since(now);
                let mut e = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many failed logins",
                    "too many failed logins from this address; retry later",
                );
                e.retry_after = Some(left.as_secs().max(1));
                Err(e)
            }
            _ => Ok(()),
        }
    }

    /// Counts a failed login from `ip`.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) {
        let ip = self.key(ip, now);
        let w = self.window;
        let e = self.by_source.entry(ip).or_insert((now, 0));
        if now >= e.0 + w {
            *e = (now, 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

/// 401 for a missing or unknown token.
pub fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "give a valid token: Authorization: Bearer TOKEN",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_over_its_failures_waits_for_the_window() {
        let mut f = FailedLogins::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let a: IpAddr = "198.18.0.1".parse().expect("ip");
        let b: IpAddr = "198.18.0.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(f.check(a, t0).is_ok());
            f.fail(a, t0);
        }
        let e = f
            .check(a, t0 + Duration::from_secs(10))
            .expect_err("limited");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after, Some(50));
        assert!(f.check(b, t0).is_ok(), "another source is not");
        assert!(
            f.check(a, t0 + Duration::from_secs(60)).is_ok(),
            "window over"
        );
    }

    #[test]
    fn bearer_reads_the_scheme_in_any_case() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "bearer abc".parse().expect("hv"));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().expect("hv"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer ".parse().expect("hv"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn scope_hides_other_isps() {
        let a = Caller::Isp("a".into());
        assert!(a.scope("a").is_ok());
        assert_eq!(a.scope("b"), Err(ApiError::no_isp("b")));
        assert!(Caller::Operator.scope("b").is_ok());
        assert_eq!(a.operator(), Err(ApiError::forbidden()));
    }
}
