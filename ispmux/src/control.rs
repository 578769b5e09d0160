//! The control socket: a Unix stream socket on which `ispmux ctl` asks a running daemon for
//! its counters. One command line per connection, one JSON document back.
//!
//! Served from the main (control) lcore between its other duties, without threads: accepts
//! are non-blocking, and a client gets 200 ms to send its command.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// A bound control socket; the file is removed on drop.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    /// Binds `path`, replacing a stale socket file left by a previous run.
    pub fn bind(path: &Path) -> Result<Self> {
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "{}: another ispmux is serving this control socket",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("binding control socket {}", path.display()))?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
        })
    }

    /// Answers every pending connection with `answer(command)`.
    pub fn serve_pending(&self, answer: &mut dyn FnMut(&str) -> serde_json::Value) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Err(e) = serve_one(stream, answer) {
                tracing::debug!(error = %e, "control client");
            }
        }
    }
}

fn serve_one(
    stream: UnixStream,
    answer: &mut dyn FnMut(&str) -> serde_json::Value,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(Duration::from_millis(200)))?;
    let mut line = String::new();
    BufReader::new((&stream).take(4096)).read_line(&mut line)?;
    let reply = answer(line.trim());
    let mut w = &stream;
    serde_json::to_writer_pretty(&mut w, &reply)?;
    w.write_all(b"\n")
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `command` to the daemon at `path`; returns its answer, or its error as an error.
pub fn request(path: &Path, command: &str) -> Result<String> {
    let mut s = UnixStream::connect(path)
        .with_context(|| format!("connecting to {} (is ispmux running?)", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    writeln!(s, "{command}")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let v: serde_json::Value = serde_json::from_str(&out).context("reading the answer")?;
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        anyhow::bail!("{e}");
    }
    Ok(out)
}

/// `ispmux ctl`: sends `command` to the daemon at `path` and prints its answer.
pub fn ctl(path: &Path, command: &str) -> Result<()> {
    print!("{}", request(path, command)?);
    Ok(())
}
