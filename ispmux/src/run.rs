//! `ispmux run` and `ispmux radius-proxy`: the gateway started from a file, run until
//! SIGINT/SIGTERM (or `--duration`), reloading the file on SIGHUP, its report printed.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ispmux_gateway::{Event, Gateway, Report};

/// `ispmux run -c FILE [--duration S]`.
pub fn run(path: &Path, duration: Option<f64>) -> Result<()> {
    let stop = stop_on_signals()?;
    let mut gw = Gateway::start_file(path)?;
    gw.reload_on(reload_on_sighup()?);
    // `[api]` is fixed while running: a reload that changes it is refused.
    let api_cfg = gw.config().api.clone();
    let store = gw.config().store.path.clone();
    let api = match start_api(api_cfg.as_ref(), &store, &mut gw, Some(path)) {
        Ok(a) => a,
        Err(e) => {
            crate::print::report(&gw.shutdown());
            return Err(e);
        }
    };
    let deadline = duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    gw.run_until(&stop, deadline, &mut |e| match e {
        Event::Rates(r) => crate::print::rates(&r),
    });
    stop_api(api);
    finish(gw.shutdown())
}

/// `ispmux radius-proxy -c FILE [--db PATH]`: the proxy alone until SIGINT/SIGTERM,
/// reloading the file on SIGHUP.
pub fn radius_proxy(config: &Path, db: Option<&Path>) -> Result<()> {
    let stop = stop_on_signals()?;
    let mut gw = Gateway::start_radius_proxy_file(config, db)?;
    gw.reload_on(reload_on_sighup()?);
    let api_cfg = gw.config().api.clone();
    let store = db.map_or_else(
        || gw.config().store.path.clone(),
        |p| p.display().to_string(),
    );
    let api = match start_api(api_cfg.as_ref(), &store, &mut gw, None) {
        Ok(a) => a,
        Err(e) => {
            crate::print::report(&gw.shutdown());
            return Err(e);
        }
    };
    gw.run_until(&stop, None, &mut |_| {});
    tracing::info!("radius proxy stopping");
    stop_api(api);
    finish(gw.shutdown())
}

/// Starts the provisioning API of `[api]`, if configured, on the store at `store` (the
/// gateway has recorded its ISPs there), asking `gw` over its command channel; the
/// operator's routes edit `config` (the file `gw` reloads; none for the proxy alone,
/// which does not reload).
fn start_api(
    cfg: Option<&ispmux_conf::api::ApiConfig>,
    store: &str,
    gw: &mut Gateway,
    config: Option<&Path>,
) -> Result<Option<ispmux_api::ApiServer>> {
    let Some(cfg) = cfg else { return Ok(None) };
    let server =
        ispmux_api::ApiServer::start(cfg, Path::new(store), Some(gw.command_sender()), config)?;
    tracing::info!(addr = %server.local_addr(), "provisioning API serving");
    Ok(Some(server))
}

fn stop_api(api: Option<ispmux_api::ApiServer>) {
    if let Some(a) = api {
        a.stop();
    }
}

/// A flag SIGHUP sets, for [`Gateway::reload_on`].
fn reload_on_sighup() -> Result<Arc<AtomicBool>> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")?;
    Ok(hup)
}

fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}

fn finish(report: Report) -> Result<()> {
    crate::print::report(&report);
    if !report.failures.is_empty() {
        bail!("{}", report.failures.join("; "));
    }
    Ok(())
}
