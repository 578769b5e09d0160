//! The capacity-sharing RADIUS proxy in the binary: `ispmux radius-proxy` (standalone),
//! `ispmux usage` (billing records), and its start and stop inside `ispmux run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ispmux_conf::{Config, Purpose};
use ispmux_slowpath::radius::transport::ProxyHandle;
use ispmux_slowpath::radius::usage::{self, UsageStore};

/// The database to use: `--db` when given, else `[store] path`, its directory created so a
/// fresh host needs no preparation.
fn store_path(cfg: &Config, db: Option<&Path>) -> Result<PathBuf> {
    let path = db.map_or_else(|| PathBuf::from(&cfg.store.path), Path::to_owned);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the store directory {}", dir.display()))?;
    }
    Ok(path)
}

/// Starts the proxy when the configuration has `[radius]` (`ispmux run`).
pub fn start(cfg: &Config, db: Option<&Path>) -> Result<Option<ProxyHandle>> {
    let Some(r) = &cfg.radius else {
        return Ok(None);
    };
    let path = store_path(cfg, db)?;
    let h = ProxyHandle::spawn(r, Some(&path)).context("starting the RADIUS proxy")?;
    tracing::info!(auth = %h.auth_addr, acct = %h.acct_addr, store = %path.display(), "radius proxy started");
    Ok(Some(h))
}

/// The proxy's counters, empty when it does not answer (it is then reported as stopped).
fn counters(h: &ProxyHandle) -> BTreeMap<String, u64> {
    h.counters().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "radius proxy counters");
        BTreeMap::new()
    })
}

/// Adds the proxy's counters to a `stats` answer as `"radius": {...}`.
pub fn with_counters(mut stats: serde_json::Value, h: Option<&ProxyHandle>) -> serde_json::Value {
    if let (Some(h), Some(obj)) = (h, stats.as_object_mut()) {
        obj.insert("radius".into(), serde_json::json!(counters(h)));
    }
    stats
}

/// `ispmux ctl suspend CSP` and `ispmux ctl resume CSP`: the master SP suspends (or resumes)
/// business with a client SP at run time; suspension sends Disconnect-Requests (RFC 5176) to
/// the NASes of the CSP's open sessions, and its next logons are refused (`csp_suspended`).
pub fn suspend_command(h: Option<&ProxyHandle>, suspend: bool, csp: &str) -> serde_json::Value {
    let Some(h) = h else {
        return serde_json::json!({ "error": "no [radius] proxy runs here" });
    };
    match h.suspend(csp, suspend) {
        Ok(s) => {
            tracing::info!(
                csp,
                suspended = suspend,
                disconnect_requests = s.disconnect_requests,
                "radius: client SP suspension set by the operator"
            );
            serde_json::json!({
                "csp": csp,
                "suspended": suspend,
                "was_suspended": s.was_suspended,
                "disconnect_requests": s.disconnect_requests,
            })
        }
        // An unknown name, or a proxy that stopped: `ispmux ctl` prints it and fails.
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    }
}

/// The proxy's own control commands, shared by `ispmux run` and `ispmux radius-proxy`;
/// `None` for a command that is not one of them.
pub fn control_command(h: Option<&ProxyHandle>, cmd: &str) -> Option<serde_json::Value> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words.as_slice() {
        ["suspend", csp] => Some(suspend_command(h, true, csp)),
        ["resume", csp] => Some(suspend_command(h, false, csp)),
        ["suspend" | "resume", ..] => Some(serde_json::json!({
            "error": format!("{cmd:?}: give one client SP name")
        })),
        _ => None,
    }
}

/// Prints the proxy's counters as the exit report's `radius` line and stops it.
pub fn finish(h: Option<ProxyHandle>) -> Result<()> {
    let Some(h) = h else {
        return Ok(());
    };
    let c = counters(&h);
    println!("radius {}", serde_json::to_string(&c).unwrap_or_default());
    h.stop().context("stopping the RADIUS proxy")
}

/// `ispmux radius-proxy -c FILE [--db PATH]`: the proxy alone until SIGINT/SIGTERM.
pub fn standalone(config: &Path, db: Option<&Path>) -> Result<()> {
    let cfg = ispmux_conf::load_for(config, Purpose::RadiusProxy)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let h = start(&cfg, db)?.context("no [radius] table")?;
    // `[control] socket`, when given, serves `ispmux ctl` as `ispmux run` does: stats,
    // version, suspend and resume.
    let control = match &cfg.control.socket {
        Some(p) => Some(crate::control::ControlServer::bind(Path::new(p))?),
        None => None,
    };
    while !stop.load(Ordering::Relaxed) {
        if !h.is_running() {
            // The thread's own error is returned by stop() below.
            break;
        }
        if let Some(c) = &control {
            c.serve_pending(&mut |cmd| standalone_command(&h, cmd));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(control);
    tracing::info!("radius proxy stopping");
    finish(Some(h))
}

/// What the standalone proxy's control socket answers.
fn standalone_command(h: &ProxyHandle, cmd: &str) -> serde_json::Value {
    if let Some(v) = control_command(Some(h), cmd) {
        return v;
    }
    match cmd.trim() {
        "stats" => with_counters(serde_json::json!({}), Some(h)),
        "version" => serde_json::json!({ "ispmux": env!("CARGO_PKG_VERSION") }),
        _ => serde_json::json!({
            "error": format!("unknown command {cmd:?}; try stats, version, suspend CSP or resume CSP")
        }),
    }
}

/// `ispmux usage`: the usage records per client SP, as a table or CSV.
pub fn print_usage(config: Option<&Path>, db: Option<&Path>, csv: bool) -> Result<()> {
    let path = match (config, db) {
        (_, Some(db)) => db.to_owned(),
        (Some(c), None) => {
            PathBuf::from(ispmux_conf::load_for(c, Purpose::RadiusProxy)?.store.path)
        }
        (None, None) => bail!("give -c FILE or --db PATH"),
    };
    // Opening would create an empty database: a wrong path must say so instead.
    if !path.exists() {
        bail!("{}: no such store", path.display());
    }
    let store =
        UsageStore::open(&path).with_context(|| format!("opening the store {}", path.display()))?;
    let records = store.records()?;
    if csv {
        print!("{}", usage::to_csv(&records));
    } else {
        print!("{}", usage::to_table(&records));
    }
    Ok(())
}
