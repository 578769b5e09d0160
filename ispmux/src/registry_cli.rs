//! `ispmux subscriber ...` and `ispmux refusals`: the operator's (and ISPs') view of the
//! registry, on the store the daemon uses. The daemon reads the registry on every logon, so
//! additions take effect at the subscriber's next DHCP request.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use ispmux_conf::Config;
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{import, NewSubscriber, Registry, Status};

/// Registry commands.
#[derive(Subcommand)]
pub enum SubscriberCmd {
    /// Register a subscriber with its ISP (the ISP's customer id and password).
    Add {
        /// The subscriber's MAC address.
        #[arg(long)]
        mac: String,
        /// ISP name, as in `[[dhcp.isps]]`.
        #[arg(long)]
        isp: String,
        /// The customer id the ISP issued.
        #[arg(long)]
        customer_id: String,
        /// The password the ISP issued (stored as a salted Argon2id hash).
        #[arg(long)]
        password: Option<String>,
        /// Register as suspended (logons refused).
        #[arg(long)]
        suspended: bool,
    },
    /// List registered subscribers.
    List {
        /// Only this ISP's.
        #[arg(long)]
        isp: Option<String>,
    },
    /// Remove a subscriber (its binding is dropped from the store).
    Remove {
        /// The subscriber's MAC address.
        #[arg(long)]
        mac: String,
    },
    /// Suspend a subscriber: its logons are refused and its binding is withdrawn (from the
    /// store, and from a running gateway over the control socket).
    Suspend {
        /// The subscriber's MAC address.
        mac: String,
    },
    /// Resume a suspended subscriber: its next DHCP logon is accepted again.
    Resume {
        /// The subscriber's MAC address.
        mac: String,
    },
    /// Change a subscriber's password (stored as a salted Argon2id hash, as by `add`); the
    /// new password is read from the first line of stdin unless given with --password.
    Passwd {
        /// The subscriber's MAC address.
        mac: String,
        /// The new password (visible to other users in the process list: prefer stdin).
        #[arg(long)]
        password: Option<String>,
    },
    /// Import subscribers from CSV: `mac,isp,customer_id,password[,status]` with a header;
    /// all rows or none.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
    },
}

/// Opens the configured store and records the configured ISPs in it.
pub fn open(cfg: &Config) -> Result<Registry> {
    Ok(ispmux_gateway::open_registry(cfg)?)
}

fn mac(s: &str) -> Result<MacAddr> {
    s.parse().map_err(|e| anyhow::anyhow!("--mac {s:?}: {e}"))
}

/// Runs a subscriber command, writing what it says to `out`.
pub fn subscriber(cfg: &Config, cmd: SubscriberCmd, out: &mut dyn Write) -> Result<()> {
    let mut reg = open(cfg)?;
    match cmd {
        SubscriberCmd::Add {
            mac: m,
            isp,
            customer_id,
            password,
            suspended,
        } => {
            let mac = mac(&m)?;
            reg.add_subscriber(&NewSubscriber {
                mac,
                isp: isp.clone(),
                customer_id,
                password,
                status: if suspended {
                    Status::Suspended
                } else {
                    Status::Active
                },
            })
            .with_context(|| format!("adding {m} to {isp}"))?;
            writeln!(out, "added {mac} to {isp}")?;
        }
        SubscriberCmd::List { isp } => {
            writeln!(out, "mac,isp,customer_id,status,ipv4,expires")?;
            for s in reg.list_subscribers(isp.as_deref())? {
                let b = reg.binding(s.mac)?;
                let status = match s.status {
                    Status::Active => "active",
                    Status::Suspended => "suspended",
                };
                writeln!(
                    out,
                    "{},{},{},{},{},{}",
                    s.mac,
                    s.isp,
                    s.customer_id,
                    status,
                    b.as_ref().map(|b| b.ipv4.to_string()).unwrap_or_default(),
                    b.as_ref()
                        .and_then(|b| b.expires.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_secs().to_string())
                        .unwrap_or_default()
                )?;
            }
        }
        SubscriberCmd::Remove { mac: m } => {
            let mac = mac(&m)?;
            if reg.subscriber(mac)?.is_none() {
                bail!("{mac} is not registered");
            }
            let binding = reg.remove_subscriber(mac)?;
            writeln!(out, "removed {mac}")?;
            if let Some(b) = binding {
                withdraw(cfg, mac, b.ipv4, out)?;
            }
        }
        SubscriberCmd::Suspend { mac: m } => {
            let mac = mac(&m)?;
            let binding = reg
                .suspend_subscriber(mac)
                .with_context(|| format!("suspending {mac}"))?;
            writeln!(out, "suspended {mac}")?;
            if let Some(b) = binding {
                withdraw(cfg, mac, b.ipv4, out)?;
            }
        }
        SubscriberCmd::Resume { mac: m } => {
            let mac = mac(&m)?;
            reg.set_status(mac, Status::Active)
                .with_context(|| format!("resuming {mac}"))?;
            writeln!(out, "resumed {mac}")?;
        }
        SubscriberCmd::Passwd { mac: m, password } => {
            let mac = mac(&m)?;
            let password = match password {
                Some(p) => p,
                None => read_password_line(std::io::stdin().lock())?,
            };
            if password.is_empty() {
                bail!("the new password is empty");
            }
            // No word to a running gateway: it reads the hash on every logon, and its
            // credential cache keys on the hash, which the new salt changes.
            reg.set_password(mac, Some(&password))
                .with_context(|| format!("changing the password of {mac}"))?;
            writeln!(out, "password of {mac} changed")?;
        }
        SubscriberCmd::Import { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let n = import::import_csv(&mut reg, f)
                .with_context(|| format!("importing {}", file.display()))?;
            writeln!(out, "imported {n} subscribers from {}", file.display())?;
        }
    }
    Ok(())
}

/// The first line of `input` without its line ending.
fn read_password_line(mut input: impl std::io::BufRead) -> Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("reading the new password from stdin")?;
    let end = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(end);
    Ok(line)
}

/// Withdraws `mac`'s binding (already gone from the store) from the running daemon's fast
/// path at once, over the control socket; without one it goes at the daemon's next start.
fn withdraw(cfg: &Config, mac: MacAddr, ipv4: Ipv4Addr, out: &mut dyn Write) -> Result<()> {
    match &cfg.control.socket {
        Some(sock) => match crate::ctl::revoke(Path::new(sock), mac) {
            Ok(()) => writeln!(out, "binding {ipv4} withdrawn from the running gateway")?,
            Err(e) => writeln!(
                out,
                "binding {ipv4} not withdrawn now ({e:#}); it goes at the next start"
            )?,
        },
        None => writeln!(
            out,
            "binding {ipv4} goes at the daemon's next start (no [control] socket to tell it now)"
        )?,
    }
    Ok(())
}

/// `ispmux refusals`: the most recent refused logons, written to `out`.
pub fn refusals(cfg: &Config, limit: u32, out: &mut dyn Write) -> Result<()> {
    let reg = open(cfg)?;
    writeln!(out, "at,mac,isp,reason")?;
    for r in reg.refusals(limit)? {
        writeln!(
            out,
            "{},{},{},{}",
            r.at.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            r.mac,
            r.isp.unwrap_or_default(),
            r.reason
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::read_password_line;

    #[test]
    fn the_password_is_the_first_line_without_its_ending() {
        let pw = |s: &str| read_password_line(s.as_bytes()).expect("read");
        assert_eq!(pw("s3cret\r\nsecond line\n"), "s3cret");
        assert_eq!(pw(" spaced out \n"), " spaced out ");
        assert_eq!(pw("no newline"), "no newline");
        assert_eq!(pw(""), "");
    }
}
