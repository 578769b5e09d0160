//! `ispmux ctl`: one command to a running daemon, its answer printed as tables (or the
//! daemon's JSON with `--json`). A refusal is an error: printed on stderr, exit status 1.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use ispmux_gateway::command::Traced;
use ispmux_gateway::{ControlAnswer, ControlCommand};
use ispmux_slowpath::dhcp::MacAddr;

/// Sends `line` (checked here first) to the daemon at `socket` and prints its answer.
/// `trace N` arms the trace, collects records until N came or `wait` passed, disarms and
/// prints them.
pub fn ctl(
    socket: &Path,
    line: &str,
    json: bool,
    wait: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let cmd: ControlCommand = line.parse()?;
    let answer = match cmd {
        ControlCommand::Trace(n) if n > 0 => ControlAnswer::Traced(trace(socket, n, wait)?),
        _ => ask(socket, &cmd)?,
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer.to_json())?)?;
    } else {
        write!(out, "{}", crate::print::answer(&answer))?;
    }
    Ok(())
}

/// Withdraws `mac`'s binding from the daemon at `socket`.
pub fn revoke(socket: &Path, mac: MacAddr) -> Result<()> {
    ask(socket, &ControlCommand::Revoke(mac)).map(drop)
}

/// The next `n` frames' records, or what came within `wait`.
fn trace(socket: &Path, n: u32, wait: Duration) -> Result<Traced> {
    ask(socket, &ControlCommand::Trace(n))?;
    let deadline = Instant::now() + wait;
    let mut got = Traced::default();
    while got.records.len() < n as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        if let ControlAnswer::Traced(t) = ask(socket, &ControlCommand::TraceShow)? {
            got.records.extend(t.records);
            got.remaining = t.remaining;
        }
    }
    // Disarm: the workers trace each up to N, together more than asked.
    ask(socket, &ControlCommand::Trace(0))?;
    got.records.truncate(n as usize);
    Ok(got)
}

fn ask(socket: &Path, cmd: &ControlCommand) -> Result<ControlAnswer> {
    match ispmux_gateway::request(socket, cmd)? {
        ControlAnswer::Refused(r) => bail!("{}", r.error),
        a => Ok(a),
    }
}
