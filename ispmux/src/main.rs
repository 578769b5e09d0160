//! `ispmux`: the gateway daemon and its operator commands.

mod ctl;
mod print;
mod registry_cli;
mod run;
mod token_cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Large blocks (the fast-path tables) on their own huge-page-aligned mappings.
#[global_allocator]
static ALLOC: ispmux_sys::HugeAlloc = ispmux_sys::HugeAlloc;

#[derive(Parser)]
#[command(
    name = "ispmux",
    version,
    about = "Open-access broadband gateway: one access network, many ISPs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway: start EAL, the ports and the workers, until SIGINT/SIGTERM; SIGHUP
    /// reloads the configuration file.
    Run {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Stop by itself after this many seconds (demos, tests).
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Ask a running ispmux (or `ispmux radius-proxy`) over its control socket.
    Ctl {
        /// The control socket (`control.socket` in the configuration).
        #[arg(short, long)]
        socket: PathBuf,
        /// Print the daemon's JSON answer instead of tables.
        #[arg(long)]
        json: bool,
        /// `trace N`: how long to wait for the N frames, in seconds.
        #[arg(long, default_value_t = 5.0)]
        wait: f64,
        /// `stats`, `version`, `revoke MAC` (withdraw a subscriber's binding), `suspend CSP` or
        /// `resume CSP` (a client SP of the RADIUS proxy; suspension disconnects its sessions),
        /// `trace N` (the path of the next N frames through the workers: port, link layer,
        /// lookups, verdict), `ldp`, `reload` (apply the changed configuration file without
        /// stopping forwarding, as SIGHUP does), `metrics` or `metrics prometheus` (the
        /// counters as Prometheus metrics: OpenMetrics text, or the text format 0.0.4).
        #[arg(default_value = "stats", num_args = 1.., trailing_var_arg = true)]
        command: Vec<String>,
    },
    /// The subscriber registry: ISPs register their subscribers here.
    Subscriber {
        /// Configuration file (for the store's path and the ISPs).
        #[arg(short, long)]
        config: PathBuf,
        #[command(subcommand)]
        cmd: registry_cli::SubscriberCmd,
    },
    /// The provisioning API's tokens: the operator's, and the ISPs'.
    Token {
        /// Configuration file (for the store's path; not needed by `operator`).
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        cmd: token_cli::TokenCmd,
    },
    /// Recent refused logons (unknown MAC, bad credential, ISP NAK or silence).
    Refusals {
        /// Configuration file (for the store's path).
        #[arg(short, long)]
        config: PathBuf,
        /// How many, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Run the capacity-sharing RADIUS proxy alone (the file's `[radius]` and `[store]`),
    /// until SIGINT/SIGTERM.
    RadiusProxy {
        /// Configuration file with a `[radius]` table.
        #[arg(short, long)]
        config: PathBuf,
        /// The store (SQLite) for usage records; default: `[store] path`.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Print the RADIUS usage records per client SP and period.
    Usage {
        /// Configuration file naming the store (`[store] path`).
        #[arg(short, long, required_unless_present = "db")]
        config: Option<PathBuf>,
        /// The store itself.
        #[arg(long)]
        db: Option<PathBuf>,
        /// CSV with a header line instead of a table.
        #[arg(long)]
        csv: bool,
    },
    /// Validate a configuration file and exit; errors name file, line, column and key.
    Check {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ISPMUX_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run { config, duration } => run::run(&config, duration),
        Cmd::Check { config } => check(&config),
        Cmd::Subscriber { config, cmd } => ispmux_conf::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| to_stdout(|out| registry_cli::subscriber(&c, cmd, out))),
        Cmd::Token { config, cmd } => config
            .as_deref()
            .map(ispmux_conf::load)
            .transpose()
            .map_err(anyhow::Error::from)
            .and_then(|c| to_stdout(|out| token_cli::token(c.as_ref(), cmd, out))),
        Cmd::Refusals { config, limit } => ispmux_conf::load(&config)
            .map_err(anyhow::Error::from)
            .and_then(|c| to_stdout(|out| registry_cli::refusals(&c, limit, out))),
        Cmd::Ctl {
            socket,
            json,
            wait,
            command,
        } => to_stdout(|out| {
            let wait = std::time::Duration::try_from_secs_f64(wait)?;
            ctl::ctl(&socket, &command.join(" "), json, wait, out)
        }),
        Cmd::RadiusProxy { config, db } => run::radius_proxy(&config, db.as_deref()),
        Cmd::Usage { config, db, csv } => {
            to_stdout(|out| print::usage(config.as_deref(), db.as_deref(), csv, out))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ispmux: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `f` writing to stdout; a reader that went away (`ispmux subscriber list | head`)
/// ends the output quietly, as it ends `cat`.
///
/// Why EPIPE and not SIGPIPE reset to its default: the same binary is the daemon, whose
/// control socket writes to clients that may have gone; there SIGPIPE must stay ignored
/// and EPIPE be an error of that one client. `println!` panics on EPIPE, hence the handle.
fn to_stdout(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let r = f(&mut out).and_then(|()| out.flush().map_err(anyhow::Error::from));
    match r {
        Err(e) if is_broken_pipe(&e) => Ok(()),
        r => r,
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    match ispmux_conf::check(path)? {
        ispmux_conf::Checked::Gateway(l) => {
            let cfg = &l.config;
            println!(
                "{}: ok, gateway ({} port(s), {} worker lcore(s), {} subscriber(s) preloaded{})",
                path.display(),
                cfg.ports.len(),
                cfg.worker_lcores().len(),
                l.preload.subscribers.len(),
                cfg.radius.as_ref().map_or(String::new(), |r| format!(
                    ", radius proxy with {} client SP(s)",
                    r.client_sp.len()
                ))
            );
        }
        ispmux_conf::Checked::RadiusProxy(cfg) => println!(
            "{}: ok, radius proxy alone (no [[port]]: for `ispmux radius-proxy`; {} client SP(s))",
            path.display(),
            cfg.radius.as_ref().map_or(0, |r| r.client_sp.len())
        ),
    }
    Ok(())
}
