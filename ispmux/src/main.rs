//! `ispmux`: the gateway daemon and its operator commands.

mod control;
mod run;
mod slowpath;
mod update_gen;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Run the gateway: start EAL, the ports and the workers, until SIGINT/SIGTERM.
    Run {
        /// Configuration file.
        #[arg(short, long)]
        config: PathBuf,
        /// Stop by itself after this many seconds (demos, tests).
        #[arg(long)]
        duration: Option<f64>,
    },
    /// Ask a running ispmux for its counters over its control socket.
    Ctl {
        /// The control socket (`control.socket` in the configuration).
        #[arg(short, long)]
        socket: PathBuf,
        /// `stats` or `version`.
        #[arg(default_value = "stats")]
        command: String,
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
        Cmd::Ctl { socket, command } => control::ctl(&socket, &command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ispmux: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = ispmux_conf::load(path)?;
    println!(
        "{}: ok ({} port(s), {} worker lcore(s))",
        path.display(),
        cfg.ports.len(),
        cfg.worker_lcores().len()
    );
    Ok(())
}
