//! `ispmux ctl`: one command to a running daemon, its answer printed as tables (or the
//! daemon's JSON with `--json`). A refusal is an error: printed on stderr, exit status 1.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use ispmux_gateway::{ControlAnswer, ControlCommand};
use ispmux_slowpath::dhcp::MacAddr;

/// Sends `line` (checked here first) to the daemon at `socket` and prints its answer.
pub fn ctl(socket: &Path, line: &str, json: bool, out: &mut dyn Write) -> Result<()> {
    let cmd: ControlCommand = line.parse()?;
    let answer = ask(socket, &cmd)?;
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

fn ask(socket: &Path, cmd: &ControlCommand) -> Result<ControlAnswer> {
    match ispmux_gateway::request(socket, cmd)? {
        ControlAnswer::Refused(r) => bail!("{}", r.error),
        a => Ok(a),
    }
}
