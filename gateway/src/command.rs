//! The control commands: one typed set, parsed once from the control socket's line, answered
//! by one dispatcher ([`crate::Gateway::command`]), and one typed answer per command.
//!
//! The line form is the command's words as an operator types them after `ispmux ctl`
//! (`stats`, `revoke 02:00:00:00:00:01`, ...); [`ControlCommand`]'s `Display` writes it and
//! `FromStr` reads it, so the client checks a command before it connects and the server
//! reads it with the same parser.

use std::fmt;
use std::str::FromStr;

use ispmux_slowpath::dhcp::MacAddr;
use serde::{Deserialize, Serialize};

use crate::metrics::Exposition;
use crate::report::Stats;

/// What an operator asks a running gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCommand {
    /// Counters: ports, workers, drops, ISPs, slow path, RADIUS proxy.
    Stats,
    /// Versions of ispmux and DPDK.
    Version,
    /// Withdraw a subscriber's binding (sent by `ispmux subscriber remove`).
    Revoke(MacAddr),
    /// Suspend a client SP of the RADIUS proxy (its sessions are disconnected).
    Suspend(String),
    /// Resume a suspended client SP.
    Resume(String),
    /// Trace the next N frames each worker receives (0 disarms); earlier records go.
    Trace(u32),
    /// The trace records taken so far (they leave the workers' buffers).
    TraceShow,
    /// LDP's neighbours and label bindings.
    Ldp,
    /// Apply the configuration file the gateway was started from, as it is now, without
    /// stopping forwarding (also on SIGHUP); refused as a whole when it is invalid or
    /// changes what cannot change while running.
    Reload,
    /// The counters as Prometheus metrics: `metrics` in OpenMetrics text, `metrics
    /// prometheus` in the Prometheus text format 0.0.4.
    Metrics(Exposition),
}

/// Why a command line is not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No words.
    #[error("empty command; try {HELP}")]
    Empty,
    /// A first word that names no command.
    #[error("unknown command {0:?}; try {HELP}")]
    Unknown(String),
    /// The right command with the wrong arguments.
    #[error("{command}: {reason}")]
    Arguments {
        /// The command's word.
        command: &'static str,
        /// What is wrong.
        reason: String,
    },
}

const HELP: &str =
    "stats, version, revoke MAC, suspend CSP, resume CSP, trace N or trace, ldp, reload, metrics [prometheus]";

impl FromStr for ControlCommand {
    type Err = CommandError;

    fn from_str(line: &str) -> Result<Self, CommandError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let args = |command: &'static str, n: usize, what: &str| {
            if words.len() == n + 1 {
                Ok(())
            } else {
                Err(CommandError::Arguments {
                    command,
                    reason: format!("give {what}"),
                })
            }
        };
        match words.first().copied() {
            None => Err(CommandError::Empty),
            Some("stats") => args("stats", 0, "no arguments").map(|()| ControlCommand::Stats),
            Some("version") => args("version", 0, "no arguments").map(|()| ControlCommand::Version),
            Some("ldp") => args("ldp", 0, "no arguments").map(|()| ControlCommand::Ldp),
            Some("reload") => args("reload", 0, "no arguments").map(|()| ControlCommand::Reload),
            Some("revoke") => {
                args("revoke", 1, "one subscriber MAC")?;
                words[1]
                    .parse()
                    .map(ControlCommand::Revoke)
                    .map_err(|e| CommandError::Arguments {
                        command: "revoke",
                        reason: format!("{e}"),
                    })
            }
            Some("suspend") => {
                args("suspend", 1, "one client SP name")?;
                Ok(ControlCommand::Suspend(words[1].to_owned()))
            }
            Some("resume") => {
                args("resume", 1, "one client SP name")?;
                Ok(ControlCommand::Resume(words[1].to_owned()))
            }
            Some("trace") if words.len() == 1 => Ok(ControlCommand::TraceShow),
            Some("trace") => {
                args(
                    "trace",
                    1,
                    "a number of frames, or nothing to show the records",
                )?;
                words[1]
                    .parse()
                    .map(ControlCommand::Trace)
                    .map_err(|e| CommandError::Arguments {
                        command: "trace",
                        reason: format!("{:?}: {e}", words[1]),
                    })
            }
            Some("metrics") => match words.get(1..) {
                Some([]) | Some(["openmetrics"]) => {
                    Ok(ControlCommand::Metrics(Exposition::OpenMetrics))
                }
                Some(["prometheus"]) => Ok(ControlCommand::Metrics(Exposition::Prometheus)),
                _ => Err(CommandError::Arguments {
                    command: "metrics",
                    reason: "give nothing, openmetrics or prometheus".into(),
                }),
            },
            Some(w) => Err(CommandError::Unknown(w.to_owned())),
        }
    }
}

impl fmt::Display for ControlCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlCommand::Stats => f.write_str("stats"),
            ControlCommand::Version => f.write_str("version"),
            ControlCommand::Revoke(mac) => write!(f, "revoke {mac}"),
            ControlCommand::Suspend(csp) => write!(f, "suspend {csp}"),
            ControlCommand::Resume(csp) => write!(f, "resume {csp}"),
            ControlCommand::Trace(n) => write!(f, "trace {n}"),
            ControlCommand::TraceShow => f.write_str("trace"),
            ControlCommand::Ldp => f.write_str("ldp"),
            ControlCommand::Reload => f.write_str("reload"),
            ControlCommand::Metrics(Exposition::OpenMetrics) => f.write_str("metrics"),
            ControlCommand::Metrics(Exposition::Prometheus) => f.write_str("metrics prometheus"),
        }
    }
}

/// Versions of the running daemon.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions {
    /// ispmux's own.
    pub ispmux: String,
    /// DPDK's, when the daemon runs EAL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpdk: Option<String>,
}

/// A revocation handed to the logon engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The subscriber.
    pub revoked: String,
    /// Whether the logon engine took it (false: it has stopped).
    pub queued: bool,
}

/// A client SP's suspension as set by the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspended {
    /// The client SP.
    pub csp: String,
    /// Its state now.
    pub suspended: bool,
    /// Its state before.
    pub was_suspended: bool,
    /// Disconnect-Requests sent to the NASes of its sessions.
    pub disconnect_requests: u64,
}

/// One traced frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceLine {
    /// The worker that received it.
    pub worker: u16,
    /// The port it arrived on, by name.
    pub port: String,
    /// Its path as one line: link layer, lookups, verdict.
    pub line: String,
}

/// A trace armed, or its records taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traced {
    /// Frames the workers are still to trace, together.
    pub remaining: u64,
    /// Records taken now, per worker in the order received.
    pub records: Vec<TraceLine>,
}

/// A reload carried out: what changed, and what the parts running it said.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reloaded {
    /// The file read.
    pub path: String,
    /// What changed.
    pub changes: ispmux_conf::reload::Changes,
    /// Table updates sent to the workers.
    pub table_updates: u64,
    /// Of those, refused by the tables (full, out of range): logged, counted here.
    pub table_updates_refused: u64,
    /// DHCP bindings released because their ISP left `[[dhcp.isps]]`.
    #[serde(default)]
    pub bindings_released: u64,
}

/// A refused command, with the reason the operator reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// Why.
    pub error: String,
}

/// The answer to one command. On the socket, the JSON of the variant's content; the client
/// knows which command it sent ([`ControlAnswer::from_json`]).
#[derive(Clone, Debug, PartialEq)]
pub enum ControlAnswer {
    /// To `stats`.
    Stats(Box<Stats>),
    /// To `version`.
    Version(Versions),
    /// To `revoke`.
    Revoked(Revoked),
    /// To `suspend` and `resume`.
    Suspended(Suspended),
    /// To `trace N` and `trace`.
    Traced(Traced),
    /// To `ldp`.
    Ldp(Box<crate::ldp::LdpView>),
    /// To any command the daemon could not carry out.
    Refused(Refused),
    /// To `reload`.
    Reloaded(Box<Reloaded>),
    /// To `metrics`: the text, in the format asked for.
    Metrics(String),
}

impl ControlAnswer {
    /// A refusal saying `why`.
    pub fn refused(why: impl fmt::Display) -> Self {
        ControlAnswer::Refused(Refused {
            error: why.to_string(),
        })
    }

    /// The answer as the socket carries it.
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            ControlAnswer::Stats(s) => serde_json::to_value(s),
            ControlAnswer::Version(v) => serde_json::to_value(v),
            ControlAnswer::Revoked(r) => serde_json::to_value(r),
            ControlAnswer::Suspended(s) => serde_json::to_value(s),
            ControlAnswer::Traced(t) => serde_json::to_value(t),
            ControlAnswer::Ldp(l) => serde_json::to_value(l),
            ControlAnswer::Refused(r) => serde_json::to_value(r),
            ControlAnswer::Reloaded(r) => serde_json::to_value(r),
            ControlAnswer::Metrics(m) => serde_json::to_value(m),
        };
        v.unwrap_or_else(|e| serde_json::json!({ "error": format!("encoding the answer: {e}") }))
    }

    /// Reads the answer to `cmd` from the socket's JSON: a refusal when it has `error`.
    pub fn from_json(cmd: &ControlCommand, v: serde_json::Value) -> serde_json::Result<Self> {
        if v.get("error").is_some() {
            return serde_json::from_value(v).map(ControlAnswer::Refused);
        }
        Ok(match cmd {
            ControlCommand::Stats => ControlAnswer::Stats(Box::new(serde_json::from_value(v)?)),
            ControlCommand::Version => ControlAnswer::Version(serde_json::from_value(v)?),
            ControlCommand::Revoke(_) => ControlAnswer::Revoked(serde_json::from_value(v)?),
            ControlCommand::Suspend(_) | ControlCommand::Resume(_) => {
                ControlAnswer::Suspended(serde_json::from_value(v)?)
            }
            ControlCommand::Trace(_) | ControlCommand::TraceShow => {
                ControlAnswer::Traced(serde_json::from_value(v)?)
            }
            ControlCommand::Ldp => ControlAnswer::Ldp(Box::new(serde_json::from_value(v)?)),
            ControlCommand::Reload => ControlAnswer::Reloaded(Box::new(serde_json::from_value(v)?)),
            ControlCommand::Metrics(_) => ControlAnswer::Metrics(serde_json::from_value(v)?),
        })
    }
}

/// Whether `line`, if it is a command, reads back from that command's own line form: the
/// property the fuzz target and the proptest check on any input.
pub fn round_trips(line: &str) -> bool {
    match line.parse::<ControlCommand>() {
        Ok(c) => c.to_string().parse::<ControlCommand>().as_ref() == Ok(&c),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_reads_back_from_its_line() {
        let mac: MacAddr = "02:00:00:00:00:01".parse().expect("mac");
        for c in [
            ControlCommand::Stats,
            ControlCommand::Version,
            ControlCommand::Revoke(mac),
            ControlCommand::Suspend("csp1".into()),
            ControlCommand::Resume("csp1".into()),
            ControlCommand::Trace(16),
            ControlCommand::TraceShow,
            ControlCommand::Ldp,
            ControlCommand::Reload,
            ControlCommand::Metrics(Exposition::OpenMetrics),
            ControlCommand::Metrics(Exposition::Prometheus),
        ] {
            assert_eq!(c.to_string().parse::<ControlCommand>(), Ok(c));
        }
        assert_eq!(
            "  revoke   02-00-00-00-00-01 ".parse(),
            Ok(ControlCommand::Revoke(mac)),
            "spaces and the dash form"
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!("".parse::<ControlCommand>(), Err(CommandError::Empty));
        assert_eq!(
            "reboot".parse::<ControlCommand>(),
            Err(CommandError::Unknown("reboot".into()))
        );
        for bad in [
            "stats now",
            "revoke",
            "revoke 02:00:00:00:00",
            "revoke 02:00:00:00:00:01 x",
            "suspend",
            "resume a b",
            "trace -1",
            "trace many",
            "trace 1 2",
            "ldp now",
            "reload now",
            "metrics json",
            "metrics prometheus now",
        ] {
            let e = bad.parse::<ControlCommand>();
            assert!(
                matches!(e, Err(CommandError::Arguments { .. })),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn answers_read_back_from_their_json() {
        let cmd = ControlCommand::Suspend("csp1".into());
        let a = ControlAnswer::Suspended(Suspended {
            csp: "csp1".into(),
            suspended: true,
            was_suspended: false,
            disconnect_requests: 2,
        });
        assert_eq!(ControlAnswer::from_json(&cmd, a.to_json()).ok(), Some(a));
        let r = ControlAnswer::refused("no [radius] proxy runs here");
        assert_eq!(r.to_json()["error"], "no [radius] proxy runs here");
        assert_eq!(ControlAnswer::from_json(&cmd, r.to_json()).ok(), Some(r));
        let cmd = ControlCommand::Metrics(Exposition::OpenMetrics);
        let m = ControlAnswer::Metrics("# HELP x An x.\n# TYPE x gauge\nx 1\n# EOF\n".into());
        assert_eq!(ControlAnswer::from_json(&cmd, m.to_json()).ok(), Some(m));
        assert_eq!(
            "metrics openmetrics".parse(),
            Ok(ControlCommand::Metrics(Exposition::OpenMetrics))
        );
    }

    proptest::proptest! {
        /// Any line: a command that round-trips, or a refusal; never a panic.
        #[test]
        fn any_line_parses_or_is_refused(
            words in proptest::collection::vec(
                proptest::string::string_regex("(stats|version|revoke|suspend|resume|trace|ldp|reload|metrics|prometheus|[ -~]{0,20})")
                    .expect("regex"),
                0..4,
            )
        ) {
            proptest::prop_assert!(round_trips(&words.join(" ")));
        }
    }
}
