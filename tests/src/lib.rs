//! Helpers shared by the integration tests in `tests/tests/`.

pub mod chain;
pub mod frr;
pub mod netns;
pub mod node;
pub mod radius_peers;

use std::path::{Path, PathBuf};

/// The `ispmux` binary built for this test run (debug or release, beside the test binary).
pub fn ispmux_bin() -> PathBuf {
    let mut p = std::env::current_exe().expect("current exe");
    p.pop();
    if p.ends_with("deps") {
        p.pop();
    }
    let bin = p.join("ispmux");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p ispmux, as scripts/test does)",
        bin.display()
    );
    bin
}

/// Sends SIGTERM to a child (ispmux stops cleanly on it) and collects its output.
pub fn terminate(child: std::process::Child) -> std::process::Output {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait_with_output().expect("wait for child")
}

/// A child process stopped with SIGTERM when dropped, so a failing test leaves no daemon
/// behind.
pub struct Daemon(Option<std::process::Child>);

impl Daemon {
    /// Guards `child`.
    pub fn new(child: std::process::Child) -> Self {
        Daemon(Some(child))
    }

    /// The process id (`ip netns exec` execs the program: the daemon's own).
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }

    /// Stops the daemon and returns what it printed.
    pub fn stop(mut self) -> std::process::Output {
        terminate(self.0.take().expect("running"))
    }

    /// Kills the daemon with SIGKILL, as a crash would: it says goodbye to no one.
    pub fn kill(mut self) -> std::process::Output {
        let mut c = self.0.take().expect("running");
        let _ = c.kill();
        c.wait_with_output().expect("wait for child")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            let out = terminate(c);
            eprintln!(
                "--- daemon stdout:\n{}\n--- stderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A fresh temporary directory for one test, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/ispmux-test-<name>-<pid>`.
    pub fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ispmux-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new operator token of the provisioning API from `bin token operator`: the token, and
/// the `[api]` line (`operator_token_sha256 = "…"`) that configures it.
pub fn operator_token(bin: &Path) -> Result<(String, String), String> {
    let out = std::process::Command::new(bin)
        .args(["token", "operator"])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("ispmux token operator: {out:?}"));
    }
    let token = said.lines().find_map(|l| l.strip_prefix("token: "));
    let line = said
        .lines()
        .find(|l| l.starts_with("operator_token_sha256"));
    match (token, line) {
        (Some(t), Some(l)) => Ok((t.to_owned(), l.to_owned())),
        _ => Err(format!("ispmux token operator printed: {said}")),
    }
}
