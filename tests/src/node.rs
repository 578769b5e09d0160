//! Starting an ispmux node in a namespace and asking it how it is doing: what the chain
//! tests (`mpls_chain`, `icmp_errors`) share.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{ispmux_bin, Daemon, TempDir};

/// Writes `conf` as `NAME.toml` in `dir`, checks it with `ispmux check` (a failure names
/// the node), and runs it in `ns` with its output captured.
pub fn start(ns: &Netns, dir: &TempDir, name: &str, conf: String) -> Daemon {
    let f = dir.join(&format!("{name}.toml"));
    std::fs::write(&f, conf).expect("write config");
    let check = Command::new(ispmux_bin())
        .args(["check", "-c"])
        .arg(&f)
        .output()
        .expect("check");
    assert!(
        check.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    Daemon::new(
        ns.command(ispmux_bin().to_str().expect("path"))
            .args(["run", "-c"])
            .arg(&f)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ispmux"),
    )
}

/// A node's control socket, `NAME.sock` in `dir`, as a config table.
pub fn control(dir: &TempDir, name: &str) -> String {
    format!(
        "\n[control]\nsocket = \"{}\"\n",
        dir.join(&format!("{name}.sock")).display()
    )
}

/// Waits until the node behind `NAME.sock` has resolved all of its `n` next hops (slow path
/// `next_hops` and `next_hops_resolved` of `ispmux ctl --json stats`).
pub fn wait_resolved(dir: &TempDir, name: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new(ispmux_bin())
            .args(["ctl", "--json", "-s"])
            .arg(dir.join(&format!("{name}.sock")))
            .arg("stats")
            .output()
            .expect("ctl");
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let (hops, resolved) = (
            s.pointer("/slowpath/next_hops").and_then(|v| v.as_u64()),
            s.pointer("/slowpath/next_hops_resolved")
                .and_then(|v| v.as_u64()),
        );
        if hops == Some(n) && resolved == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: next_hops {hops:?} resolved {resolved:?}, want {n}: {out:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
