//! `perf/run twin-echo`: how many pings a second the gateway answers through a port's kernel
//! twin, against the kernel answering the same pings on a plain veth.
//!
//! Two namespaces joined by a veth pair: a peer (198.18.9.2/30) and the gateway. In the
//! ispmux runs, ispmux holds the gateway's end as a core port (net_af_packet) with address
//! 198.18.9.1/30: each echo request is punted by the worker, written to the TAP twin by the
//! slow path, answered by the gateway namespace's kernel, read back from the TAP and
//! injected on the port. In the anchor runs ispmux is stopped and the same address sits on
//! the gateway's veth itself, so the same kernel answers the same pings with no ispmux in
//! the way. The generator is `ping -f -l L` from the peer (flood with L echo requests kept
//! in flight): replies counted by ping, over its own elapsed time.
//!
//! The control traffic a twin carries (ARP, LDP keepalives, BFD) is small; what matters is
//! that a burst of it is not starved. The figure bounds the twin path's rate: each echo
//! crosses the worker (punt ring), the slow path's turn (up to 64 punts), a TAP write and
//! read, and the inject ring back through the worker. The slow path wakes at once on what
//! the kernel sends (ppoll on the TAPs); what a worker punts waits for its next turn: 50 µs
//! for 2 ms after frames last moved through a twin, else its 200 µs idle wait. On the
//! 2-core development machine (release build, ping -f -l 8, 20,000 pings, 3 rounds, quiet):
//! 36,969 replies/s through the twin against 70,671 from the kernel on the veth (ratio
//! 0.52), with the workers' and the slow path's timer slack at 1 µs (at the kernel's 50 µs
//! default the short waits ran up to twice as long: 0.42-0.50). Before the short waits:
//! 22,600 against 83,700 (0.27); spinning between turns
//! instead (yield, 5 µs waits) gave 0.41: on two cores the spin takes the core the
//! generator and the kernel share. The slow path's intake (32,768 punts a second) is not
//! what bounds it: at 65,536 the figure did not move.
//!
//! Runs interleave (ispmux, anchor; the order reversed every other round); medians over
//! rounds. Options: `--count N` pings per run (default 20000), `--preload L` (default 8),
//! `--rounds N` (default 3). Needs root, ping (iputils) and ip.
//!
//! Last line: `twin-echo ratio=R ispmux=X replies/s anchor=Y replies/s`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ispmux_perf::flood::report_counter;
use ispmux_perf::{ispmux_bin, measured, median, opt, result_line};

const GW_ADDR: &str = "198.18.9.1";
const PEER_ADDR: &str = "198.18.9.2";
/// The gateway's veth MAC; the port's (and its twin's) is another, so frames for the port
/// are not for the veth's own kernel interface.
const VETH_MAC: &str = "02:00:00:76:00:01";
const PORT_MAC: &str = "02:00:00:77:00:01";

struct Lab {
    gw: String,
    peer: String,
    dir: PathBuf,
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Lab {
    fn new() -> Result<Lab> {
        let id = std::process::id();
        let lab = Lab {
            gw: format!("twin-echo-gw-{id}"),
            peer: format!("twin-echo-peer-{id}"),
            dir: std::env::temp_dir().join(format!("twin-echo-{id}")),
        };
        std::fs::create_dir_all(&lab.dir)?;
        for ns in [&lab.gw, &lab.peer] {
            sh(&["ip", "netns", "add", ns])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let (ta, tb) = (format!("twe{id}a"), format!("twe{id}b"));
        sh(&[
            "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
        ])?;
        for (t, ns, name, mac) in [
            (&ta, &lab.gw, "core0", VETH_MAC),
            (&tb, &lab.peer, "eth0", "02:00:00:02:00:02"),
        ] {
            sh(&["ip", "link", "set", t, "netns", ns])?;
            sh(&["ip", "-n", ns, "link", "set", t, "name", name])?;
            sh(&["ip", "-n", ns, "link", "set", name, "address", mac, "up"])?;
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", name])
                .args(["tx", "off", "rx", "off", "tso", "off", "gso", "off"])
                .output();
        }
        sh(&[
            "ip",
            "-n",
            &lab.peer,
            "addr",
            "add",
            &format!("{PEER_ADDR}/30"),
            "dev",
            "eth0",
        ])?;
        // The veth answers no ARP for the twin's address while ispmux holds it.
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.gw,
            "sysctl",
            "-qw",
            "net.ipv4.conf.core0.arp_ignore=1",
        ])?;
        std::fs::write(lab.dir.join("gw.toml"), lab.config())?;
        Ok(lab)
    }

    fn config(&self) -> String {
        format!(
            r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "twin-echo-{id}"

[dataplane]
pipeline = "node"

[[port]]
name = "core0"
device = "net_af_packet0,iface=core0"
role = "core"
mac = "{PORT_MAC}"
address = "{GW_ADDR}/30"
"#,
            id = std::process::id()
        )
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// ispmux in the gateway namespace, once its twin is up.
    fn start_ispmux(&self) -> Result<Child> {
        let mut cmd = self.exec(&self.gw, &ispmux_bin()?.to_string_lossy());
        cmd.args(["run", "-c"]).arg(self.dir.join("gw.toml"));
        let child = measured(&cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ispmux")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("ip")
                .args(["-n", &self.gw, "addr", "show", "dev", "ispmux-core0"])
                .output()?;
            if String::from_utf8_lossy(&out.stdout).contains("inet ") {
                return Ok(child);
            }
            if Instant::now() > deadline {
                stop(child)?;
                bail!("the twin ispmux-core0 never came up");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Flood pings from the peer: replies a second (received over ping's elapsed time).
    fn flood(&self, count: u64, preload: u64) -> Result<(f64, u64)> {
        sh(&["ip", "-n", &self.peer, "neigh", "flush", "all"])?;
        // Warm up: ARP resolved both ways before the clock starts.
        let _ = self
            .exec(&self.peer, "ping")
            .args(["-c", "3", "-i", "0.05", "-W", "1", GW_ADDR])
            .output()?;
        let mut cmd = self.exec(&self.peer, "ping");
        cmd.args(["-f", "-q", "-W", "1"])
            .args(["-c", &count.to_string(), "-l", &preload.to_string()])
            .arg(GW_ADDR);
        let out = measured(&cmd).stdin(Stdio::null()).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_ping(&text).ok_or_else(|| anyhow!("no summary in ping's output:\n{text}"))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.gw, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops ispmux with SIGTERM and returns its exit report.
fn stop(child: Child) -> Result<String> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// From `ping -q`'s summary (`N packets transmitted, M received, …, time Tms`): replies a
/// second and replies.
fn parse_ping(text: &str) -> Option<(f64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let before = |w: &str| {
        let i = words.iter().position(|x| x.trim_end_matches(',') == w)?;
        words.get(i.checked_sub(1)?)?.parse::<u64>().ok()
    };
    let received = before("received")?;
    let ms: f64 = words
        .iter()
        .position(|w| *w == "time")
        .and_then(|i| words.get(i + 1))
        .and_then(|t| t.trim_end_matches("ms").parse().ok())?;
    Some((received as f64 / (ms / 1e3).max(1e-3), received))
}

fn main() -> Result<()> {
    let count = opt("--count", 20_000.0) as u64;
    let preload = opt("--preload", 8.0) as u64;
    let rounds = opt("--rounds", 3.0) as usize;
    let lab = Lab::new()?;
    let (mut twin, mut kernel) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for leg in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if leg == 0 {
                let child = lab.start_ispmux()?;
                let r = lab.flood(count, preload);
                let report = stop(child)?;
                let (rate, got) = r?;
                let c = |n| report_counter(&report, "slowpath", n).unwrap_or(0);
                println!(
                    "round {round} ispmux: {rate:.0} replies/s ({got}/{count}); to_twin {} from_twin {} to_twin_drops {} punt_ring_full {}",
                    c("to_twin"),
                    c("from_twin"),
                    c("to_twin_drops"),
                    report_counter(&report, "drops", "punt_ring_full").unwrap_or(0)
                );
                twin.push(rate);
            } else {
                let addr = format!("{GW_ADDR}/30");
                sh(&["ip", "-n", &lab.gw, "addr", "add", &addr, "dev", "core0"])?;
                let r = lab.flood(count, preload);
                sh(&["ip", "-n", &lab.gw, "addr", "del", &addr, "dev", "core0"])?;
                let (rate, got) = r?;
                println!("round {round} kernel on the veth: {rate:.0} replies/s ({got}/{count})");
                kernel.push(rate);
            }
        }
    }
    println!(
        "{}",
        result_line("twin-echo", median(&twin), median(&kernel), "replies/s")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pings_summary() {
        let text = "PING 198.18.9.1 (198.18.9.1) 56(84) bytes of data.\n\n\
                    --- 198.18.9.1 ping statistics ---\n\
                    20000 packets transmitted, 19990 received, 0.05% packet loss, time 2000ms\n\
                    rtt min/avg/max/mdev = 0.010/0.050/1.000/0.010 ms, pipe 8, ipg/ewma 0.1/0.05 ms\n";
        assert_eq!(parse_ping(text), Some((9995.0, 19990)));
        assert_eq!(parse_ping("nothing"), None);
    }
}
