//! `ispmux run` and `ispmux radius-proxy`: the gateway started from a file, run until
//! SIGINT/SIGTERM (or `--duration`), reloading the file on SIGHUP, its report printed.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ispmux_conf::Purpose;
use ispmux_gateway::{Event, Gateway, Report};

/// `ispmux run -c FILE [--duration S]`.
pub fn run(path: &Path, duration: Option<f64>) -> Result<()> {
    let stop = stop_on_signals()?;
    let mut gw = Gateway::start_file(path)?;
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")?;
    gw.reload_on(hup);
    let deadline = duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    gw.run_until(&stop, deadline, &mut |e| match e {
        Event::Rates(r) => crate::print::rates(&r),
    });
    finish(gw.shutdown())
}

/// `ispmux radius-proxy -c FILE [--db PATH]`: the proxy alone until SIGINT/SIGTERM.
pub fn radius_proxy(config: &Path, db: Option<&Path>) -> Result<()> {
    let cfg = ispmux_conf::load_for(config, Purpose::RadiusProxy)?;
    let stop = stop_on_signals()?;
    let mut gw = Gateway::start_radius_proxy(cfg, db)?;
    gw.run_until(&stop, None, &mut |_| {});
    tracing::info!("radius proxy stopping");
    finish(gw.shutdown())
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
