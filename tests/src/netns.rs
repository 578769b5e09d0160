//! Test topologies: network namespaces joined by veth pairs, removed when dropped.
//!
//! Names are unique per process and call, so tests run in parallel; interfaces are created
//! under unique names and renamed inside their namespace, so configurations can use stable
//! names (`acc0`, `core0`, ...).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its output if it fails (topology setup must not fail).
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted (with its interfaces) on drop.
pub struct Netns {
    /// The namespace's name (`ip netns`).
    pub name: String,
}

impl Netns {
    /// Sets a sysctl (`key=value`) in the namespace; a failure fails the test.
    pub fn sysctl(&self, kv: &str) {
        let out = self
            .command("sysctl")
            .args(["-qw", kv])
            .output()
            .expect("sysctl");
        assert!(out.status.success(), "{kv}: {out:?}");
    }

    /// Creates `ispmux-<tag>-<pid>x<n>` with its loopback up.
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "ispmux-{tag}-{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Adds an IPv4 address (CIDR) to `dev`.
    pub fn addr(&self, dev: &str, cidr: &str) {
        self.ip(&["addr", "add", cidr, "dev", dev]);
    }

    /// The MAC address of `dev`.
    pub fn mac(&self, dev: &str) -> String {
        let out = self.ip(&["-br", "link", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// One end of a veth pair: its namespace, its name there, and its MAC address.
pub struct End<'a> {
    /// Namespace.
    pub ns: &'a Netns,
    /// Interface name inside the namespace.
    pub dev: &'a str,
    /// MAC address to set.
    pub mac: &'a str,
}

/// Joins two namespaces with a veth pair, both ends up, offloads off (so frames seen by
/// af_packet carry real checksums and sizes).
pub fn veth(a: End<'_>, b: End<'_>) {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let (ta, tb) = (
        format!("va{}x{n}", std::process::id() % 100_000),
        format!("vb{}x{n}", std::process::id() % 100_000),
    );
    sh(&[
        "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
    ]);
    for (t, e) in [(&ta, &a), (&tb, &b)] {
        sh(&["ip", "link", "set", t, "netns", &e.ns.name]);
        e.ns.ip(&["link", "set", t, "name", e.dev]);
        e.ns.ip(&["link", "set", e.dev, "address", e.mac]);
        e.ns.ip(&["link", "set", e.dev, "up"]);
        let _ =
            e.ns.command("ethtool")
                .args([
                    "-K", e.dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off", "gro", "off",
                ])
                .output();
    }
}
