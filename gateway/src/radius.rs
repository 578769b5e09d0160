//! The capacity-sharing RADIUS proxy inside the gateway: started beside the fast path
//! (`ispmux run` with `[radius]`) or alone (`ispmux radius-proxy`), its counters in `stats`,
//! and the operator's suspension of a client SP.

use std::path::{Path, PathBuf};

use ispmux_conf::Config;
use ispmux_slowpath::radius::stats::RadiusStats;
use ispmux_slowpath::radius::transport::ProxyHandle;

use crate::command::{ControlAnswer, Suspended};
use crate::error::{GatewayError, Step};

/// The database to use: `db` when given, else `[store] path`, its directory created so a
/// fresh host needs no preparation.
pub fn store_path(cfg: &Config, db: Option<&Path>) -> Result<PathBuf, GatewayError> {
    let path = db.map_or_else(|| PathBuf::from(&cfg.store.path), Path::to_owned);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .step(|| format!("creating the store directory {}", dir.display()))?;
    }
    Ok(path)
}

/// Starts the proxy when the configuration has `[radius]`.
pub fn start(cfg: &Config, db: Option<&Path>) -> Result<Option<ProxyHandle>, GatewayError> {
    let Some(r) = &cfg.radius else {
        return Ok(None);
    };
    let path = store_path(cfg, db)?;
    let h = ProxyHandle::spawn(r, Some(&path)).step(|| "starting the RADIUS proxy".into())?;
    tracing::info!(auth = %h.auth_addr, acct = %h.acct_addr, store = %path.display(), "radius proxy started");
    Ok(Some(h))
}

/// The proxy's counters, empty when it does not answer (it is then reported as stopped).
pub fn counters(h: &ProxyHandle) -> RadiusStats {
    h.stats().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "radius proxy counters");
        RadiusStats::default()
    })
}

/// `suspend CSP` and `resume CSP`: the master SP suspends (or resumes) business with a
/// client SP at run time; suspension sends Disconnect-Requests (RFC 5176) to the NASes of
/// the CSP's open sessions, and its next logons are refused (`csp_suspended`).
pub fn suspend(h: Option<&ProxyHandle>, csp: &str, suspend: bool) -> ControlAnswer {
    let Some(h) = h else {
        return ControlAnswer::refused("no [radius] proxy runs here");
    };
    match h.suspend(csp, suspend) {
        Ok(s) => {
            tracing::info!(
                csp,
                suspended = suspend,
                disconnect_requests = s.disconnect_requests,
                "radius: client SP suspension set by the operator"
            );
            ControlAnswer::Suspended(Suspended {
                csp: csp.to_owned(),
                suspended: suspend,
                was_suspended: s.was_suspended,
                disconnect_requests: s.disconnect_requests,
            })
        }
        // An unknown name, or a proxy that stopped: `ispmux ctl` prints it and fails.
        Err(e) => ControlAnswer::refused(e),
    }
}
