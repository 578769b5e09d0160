//! The control socket: a Unix stream socket on which `ispmux ctl` asks a running daemon.
//! One command line per connection, one JSON document back.
//!
//! Served from the main (control) thread between its other duties, without threads of its
//! own: accepts are non-blocking, and a client gets 200 ms to send its command, so a stuck
//! client delays the next answers by at most that.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::{ControlAnswer, ControlCommand};

/// The longest command line read.
const MAX_LINE: u64 = 4096;

/// What went wrong on the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another daemon answers on this socket.
    #[error("{0}: another ispmux is serving this control socket")]
    InUse(PathBuf),
    /// Binding, connecting or talking failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The socket.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The daemon's answer is not the answer to the command.
    #[error("reading the answer from {path}: {source}")]
    Answer {
        /// The socket.
        path: PathBuf,
        /// Why it does not read.
        #[source]
        source: serde_json::Error,
    },
}

/// A bound control socket; the file is removed on drop.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `path`, replacing a stale socket file left by a previous run.
    pub fn bind(path: &Path) -> Result<Self, ControlError> {
        let io = |what| {
            move |source| ControlError::Io {
                what,
                path: path.to_owned(),
                source,
            }
        };
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(ControlError::InUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(io("removing the stale socket"))?;
        }
        let listener = UnixListener::bind(path).map_err(io("binding the control socket"))?;
        listener
            .set_nonblocking(true)
            .map_err(io("binding the control socket"))?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Answers every pending connection with `answer(command)`; a line that is not a
    /// command is answered with its parse error, without calling `answer`.
    pub fn serve_pending(&self, answer: &mut dyn FnMut(ControlCommand) -> ControlAnswer) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Err(e) = serve_one(stream, answer) {
                tracing::debug!(error = %e, "control client");
            }
        }
    }
}

fn serve_one(
    stream: UnixStream,
    answer: &mut dyn FnMut(ControlCommand) -> ControlAnswer,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line)?;
    let reply = match line.parse::<ControlCommand>() {
        Ok(cmd) => answer(cmd),
        Err(e) => ControlAnswer::refused(e),
    };
    let mut w = &stream;
    serde_json::to_writer_pretty(&mut w, &reply.to_json())?;
    w.write_all(b"\n")
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `cmd` to the daemon at `path` and reads its answer (a refusal is an answer too).
pub fn request(path: &Path, cmd: &ControlCommand) -> Result<ControlAnswer, ControlError> {
    let io = |what| {
        move |source| ControlError::Io {
            what,
            path: path.to_owned(),
            source,
        }
    };
    let mut s = UnixStream::connect(path).map_err(io("connecting to (is ispmux running?)"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io("talking to"))?;
    writeln!(s, "{cmd}").map_err(io("talking to"))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(io("talking to"))?;
    let answer = |source| ControlError::Answer {
        path: path.to_owned(),
        source,
    };
    let v: serde_json::Value = serde_json::from_str(&out).map_err(answer)?;
    ControlAnswer::from_json(cmd, v).map_err(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Versions;

    /// A real socket: a good command reaches the dispatcher; a bad line is refused with
    /// the parser's reason and never reaches it.
    #[test]
    fn serves_typed_commands_and_refuses_bad_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        let server = ControlServer::bind(&path).expect("bind");
        assert!(matches!(
            ControlServer::bind(&path),
            Err(ControlError::InUse(_))
        ));
        let client = |line: &'static str| {
            let p = path.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&p).expect("connect");
                writeln!(s, "{line}").expect("send");
                let mut out = String::new();
                s.read_to_string(&mut out).expect("read");
                serde_json::from_str::<serde_json::Value>(&out).expect("json")
            })
        };
        let mut seen = Vec::new();
        for (line, want) in [("version", "ispmux"), ("reboot now", "error")] {
            let c = client(line);
            let v = loop {
                server.serve_pending(&mut |cmd| {
                    seen.push(cmd);
                    ControlAnswer::Version(Versions {
                        ispmux: "test".into(),
                        dpdk: None,
                    })
                });
                if c.is_finished() {
                    break c.join().expect("client");
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            assert!(v.get(want).is_some(), "{line}: {v}");
        }
        assert_eq!(seen, vec![ControlCommand::Version]);
        drop(server);
        assert!(!path.exists(), "the socket file goes with the server");
    }
}
