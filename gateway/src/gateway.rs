//! The gateway object: [`Gateway::start`] brings up EAL, the ports, the rings, the workers,
//! the slow path, the RADIUS proxy and the control socket; [`Gateway::run_until`] serves
//! the control socket until told to stop; [`Gateway::shutdown`] stops everything in order
//! and returns the [`Report`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ispmux_conf::{Config, Purpose};
use ispmux_dataplane::PreloadTables;
use ispmux_slowpath::radius::transport::ProxyHandle;

use crate::command::{ControlAnswer, ControlCommand, Revoked, Versions};
use crate::control::ControlServer;
use crate::error::{GatewayError, Step};
use crate::forwarding::Forwarding;
use crate::inbox::{CommandSender, Inbox};
use crate::metrics::Metrics;
use crate::notice::Notifier;
use crate::report::{Report, Stats};

/// How often the control side looks at its socket and the clock.
const CONTROL_TICK: Duration = Duration::from_millis(20);

/// One port's rates over the last interval (`[control] stats_interval_s`).
#[derive(Clone, Debug, PartialEq)]
pub struct PortRate {
    /// Configured name.
    pub name: String,
    /// Receive rate.
    pub rx_mpps: f64,
    /// Send rate.
    pub tx_mpps: f64,
}

/// What [`Gateway::run_until`] tells its caller as it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The ports' rates over the last `[control] stats_interval_s`.
    Rates(Vec<PortRate>),
}

/// A running gateway.
pub struct Gateway {
    cfg: Config,
    started: Instant,
    control: Option<ControlServer>,
    radius: Option<ProxyHandle>,
    fwd: Option<Forwarding>,
    notices: Option<Notifier>,
    /// Taken while it is served, as `control` is.
    inbox: Option<Inbox>,
    /// The file it started from, for `reload`; None when started from values.
    source: Option<crate::reload::Source>,
    /// Set by a signal (SIGHUP): reload at the next tick.
    reload_signal: Option<Arc<AtomicBool>>,
    /// The Prometheus encoder and its counter floor.
    metrics: Metrics,
}

impl Gateway {
    /// Starts the gateway of `cfg`, its fast-path tables loaded from `preload`.
    ///
    /// Bindings restored from the store are in every worker's tables before the first
    /// frame is polled: a subscriber's traffic after a restart never meets a table that
    /// does not know it yet.
    pub fn start(cfg: Config, preload: PreloadTables) -> Result<Gateway, GatewayError> {
        // Before EAL, so a bad [radius] or a busy port stops the start cleanly.
        let radius = crate::radius::start(&cfg, None)?;
        let control = bind_control(&cfg)?;
        // Before the first logon can be refused: a webhook seen for the first time starts
        // after the refusals already logged, and must not miss the next.
        let notices = Notifier::start(&cfg)?;
        let fwd = Forwarding::start(&cfg, preload)?;
        tracing::info!(workers = fwd.workers(), pipeline = ?cfg.dataplane.pipeline, "forwarding");
        Ok(Gateway {
            cfg,
            started: Instant::now(),
            control,
            radius,
            fwd: Some(fwd),
            notices,
            inbox: Some(Inbox::default()),
            source: None,
            reload_signal: None,
            metrics: Metrics::default(),
        })
    }

    /// Starts the gateway of the configuration file at `path` (with what it names, such as
    /// the subscribers CSV), as [`Gateway::start`]; `reload` reads the same file again.
    pub fn start_file(path: &Path) -> Result<Gateway, GatewayError> {
        let loaded = ispmux_conf::load_gateway(path)?;
        let mut gw = Gateway::start(loaded.config.clone(), loaded.preload.clone())?;
        gw.source = Some(crate::reload::Source {
            path: path.to_owned(),
            loaded,
            purpose: Purpose::Gateway,
        });
        Ok(gw)
    }

    /// Reloads whenever `signal` is set (by a SIGHUP handler), as `reload` does.
    pub fn reload_on(&mut self, signal: Arc<AtomicBool>) {
        self.reload_signal = Some(signal);
    }

    /// Starts the RADIUS proxy of the file at `path` alone (`ispmux radius-proxy`), as
    /// [`Gateway::start_radius_proxy`]; `reload` reads the same file again and applies its
    /// realms, client SPs and capacities.
    pub fn start_radius_proxy_file(
        path: &Path,
        db: Option<&Path>,
    ) -> Result<Gateway, GatewayError> {
        let loaded = ispmux_conf::load_radius_proxy(path)?;
        let mut gw = Gateway::start_radius_proxy(loaded.config.clone(), db)?;
        gw.source = Some(crate::reload::Source {
            path: path.to_owned(),
            loaded,
            purpose: Purpose::RadiusProxy,
        });
        Ok(gw)
    }

    /// Starts the RADIUS proxy of `cfg` alone, its store at `db` (default `[store] path`):
    /// no EAL, no ports.
    pub fn start_radius_proxy(cfg: Config, db: Option<&Path>) -> Result<Gateway, GatewayError> {
        let radius = crate::radius::start(&cfg, db)?;
        if radius.is_none() {
            return Err(GatewayError::Other("no [radius] table".into()));
        }
        let control = bind_control(&cfg)?;
        Ok(Gateway {
            cfg,
            started: Instant::now(),
            control,
            radius,
            fwd: None,
            notices: None,
            inbox: Some(Inbox::default()),
            source: None,
            reload_signal: None,
            metrics: Metrics::default(),
        })
    }

    /// Serves the control socket until `stop` is set, `deadline` passes, or a part that
    /// must run (the RADIUS proxy) stops; tells `observe` the ports' rates every
    /// `[control] stats_interval_s`.
    pub fn run_until(
        &mut self,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        observe: &mut dyn FnMut(Event),
    ) {
        let interval = (self.cfg.control.stats_interval_s > 0)
            .then(|| Duration::from_secs(u64::from(self.cfg.control.stats_interval_s)));
        let mut next_rates = interval.map(|i| Instant::now() + i);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(CONTROL_TICK);
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            if self.radius.as_ref().is_some_and(|h| !h.is_running()) {
                // Its own error is reported by shutdown.
                break;
            }
            if self
                .reload_signal
                .as_ref()
                .is_some_and(|r| r.swap(false, Ordering::Relaxed))
            {
                match self.command(ControlCommand::Reload) {
                    ControlAnswer::Refused(r) => tracing::warn!("SIGHUP: {}", r.error),
                    _ => tracing::info!("SIGHUP: reloaded"),
                }
            }
            if let Some(c) = self.control.take() {
                c.serve_pending(&mut |cmd| self.command(cmd));
                self.control = Some(c);
            }
            if let Some(i) = self.inbox.take() {
                i.serve_pending(&mut |cmd| self.command(cmd));
                self.inbox = Some(i);
            }
            if let (Some(at), Some(i), Some(f)) = (next_rates, interval, self.fwd.as_mut()) {
                if now >= at {
                    observe(Event::Rates(f.rates(&self.cfg, now)));
                    next_rates = Some(at + i);
                }
            }
        }
    }

    /// A handle on which other threads of the daemon (the provisioning API) send control
    /// commands; [`Gateway::run_until`] answers them with [`Gateway::command`] beside the
    /// control socket.
    pub fn command_sender(&mut self) -> CommandSender {
        // Only run_until takes it, and gives it back before returning.
        self.inbox.get_or_insert_default().sender()
    }

    /// Answers one control command: the one dispatcher of the socket and of tests.
    pub fn command(&mut self, cmd: ControlCommand) -> ControlAnswer {
        match cmd {
            ControlCommand::Stats => ControlAnswer::Stats(Box::new(self.stats())),
            ControlCommand::Version => ControlAnswer::Version(Versions {
                ispmux: env!("CARGO_PKG_VERSION").into(),
                dpdk: self.fwd.as_ref().map(|_| ispmux_sys::version()),
            }),
            ControlCommand::Revoke(mac) => match self.fwd.as_ref().and_then(|f| f.revoke(mac)) {
                Some(queued) => ControlAnswer::Revoked(Revoked {
                    revoked: mac.to_string(),
                    queued,
                }),
                None => ControlAnswer::refused("no [dhcp] logon proxy runs here"),
            },
            ControlCommand::Suspend(csp) => {
                crate::radius::suspend(self.radius.as_ref(), &csp, true)
            }
            ControlCommand::Resume(csp) => {
                crate::radius::suspend(self.radius.as_ref(), &csp, false)
            }
            ControlCommand::Trace(n) => match self.fwd.as_ref() {
                Some(f) => ControlAnswer::Traced(f.arm_trace(n)),
                None => ControlAnswer::refused("no fast path runs here"),
            },
            ControlCommand::TraceShow => match self.fwd.as_ref() {
                Some(f) => ControlAnswer::Traced(f.take_trace(&self.cfg)),
                None => ControlAnswer::refused("no fast path runs here"),
            },
            ControlCommand::Ldp => match self.fwd.as_ref().and_then(|f| f.ldp_view()) {
                Some(Some(v)) => ControlAnswer::Ldp(Box::new(v)),
                Some(None) => ControlAnswer::refused("ldp is starting"),
                None => ControlAnswer::refused("no [ldp] runs here (a node pipeline with [ldp])"),
            },
            ControlCommand::Reload => self.reload(),
            ControlCommand::Metrics(format) => {
                let stats = self.stats();
                let ldp = self.fwd.as_ref().and_then(|f| f.ldp_view()).flatten();
                ControlAnswer::Metrics(self.metrics.encode(&stats, ldp.as_ref(), format))
            }
        }
    }

    /// `reload`: the file read again and applied, or refused as a whole.
    fn reload(&mut self) -> ControlAnswer {
        let Some(src) = self.source.as_mut() else {
            return ControlAnswer::refused(
                "reload refused: this gateway was not started from a file",
            );
        };
        match crate::reload::reload(src, self.fwd.as_mut(), self.radius.as_ref()) {
            Ok(r) => {
                let hooks = crate::notice::Webhook::configured(&src.loaded.config);
                if hooks != crate::notice::Webhook::configured(&self.cfg) {
                    // A new notifier resumes each ISP where the store says it got to.
                    drop(self.notices.take());
                    self.notices = Notifier::start(&src.loaded.config).unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "reload: refusal notices stopped");
                        None
                    });
                }
                self.cfg = src.loaded.config.clone();
                ControlAnswer::Reloaded(Box::new(r))
            }
            Err(why) => {
                tracing::warn!("{why}");
                ControlAnswer::refused(why)
            }
        }
    }

    /// The configuration it runs (the last one reloaded).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let mut s = match &self.fwd {
            Some(f) => f.stats(&self.cfg, self.started.elapsed()),
            None => Stats {
                seconds: self.started.elapsed().as_secs_f64(),
                ..Stats::default()
            },
        };
        s.radius = self.radius.as_ref().map(crate::radius::counters);
        s.notices = self
            .notices
            .as_ref()
            .map(|n| n.counters().into_iter().collect());
        s
    }

    /// Stops the workers, the slow path (committing what it holds), the RADIUS proxy and
    /// the control socket, in that order, and reports the run.
    pub fn shutdown(mut self) -> Report {
        let mut report = Report::default();
        if let Some(mut f) = self.fwd.take() {
            f.stop_threads(&mut report);
            report.stats = f.stats(&self.cfg, self.started.elapsed());
            f.release();
        } else {
            report.stats.seconds = self.started.elapsed().as_secs_f64();
        }
        if let Some(h) = self.radius.take() {
            report.stats.radius = Some(crate::radius::counters(&h));
            if let Err(e) = h.stop() {
                report.failures.push(format!("radius proxy: {e}"));
            }
        }
        report.stats.notices = self
            .notices
            .take()
            .map(|n| n.counters().into_iter().collect());
        drop(self.control.take());
        report
    }
}

fn bind_control(cfg: &Config) -> Result<Option<ControlServer>, GatewayError> {
    cfg.control
        .socket
        .as_ref()
        .map(|p| ControlServer::bind(Path::new(p)))
        .transpose()
        .step(|| "the control socket".into())
}
