//! `perf/run ldp-converge`: how long three ispmux nodes take from a cold start to forwarding
//! for 1,000 ISP FECs learned by LDP, against FRR's ldpd converging the same 1,000 prefixes
//! between two nodes; and how much forwarding a label churn of 1,000 mappings withdrawn and
//! re-advertised a second costs.
//!
//! **ispmux.** The chain of `tests/tests/ldp_chain.rs` (`ispmux_tests::chain`): a subscriber
//! namespace, headend, transit and tailend, and the ISPs' side of the tailend's hand-off,
//! joined by veth pairs, every ispmux port on net_af_packet, Hellos every second (held 3 s),
//! no label in any configuration. N ISPs (`--fecs`, 1,000): ISP `i` has a /32 FEC of its own
//! (`ldp.fec`; the first half in 100.64.0.0/16, the *steady* ones, the others in
//! 100.65.0.0/16, the *churned* ones), handed off by the tailend on VLAN `i` of one hand-off
//! port to one router MAC, and one bound subscriber at the headend. (1,000 ISPs fit the
//! tables: `max_isps` is a default of 64 raised in the generated `[tables.limits]`, up to
//! 4096; each ISP needs its own hand-off (port, VLAN), so N ≤ 4094 VLANs.) Routes: the
//! headend's 100.64.0.0/15 and the transit's two /16s toward the next node, and the
//! headend's route back to the transit's transport address, are the ports' static `routes`,
//! on the twins before LDP starts (added from outside once the twins existed, the route back
//! lost the race with the transit's first SYN, whose retransmission cost a second). The
//! transit's LSR ID and transport address is its address toward the tailend, the highest of
//! the three: it opens both sessions, each to an address on the link.
//!
//! *Converged* means forwarding for every FEC: from a generator started before the nodes,
//! each ISP's subscriber sends a 64-byte UDP probe every N / `--pps` seconds (100 ms at the
//! defaults, 10,000 probes a second round-robin over the ISPs), and the clock stops when the
//! tailend's per-ISP `tailend_up` counters (`ispmux ctl --json stats`, polled every 50 ms)
//! show a probe handed off for every one of the N ISPs: each has the headend's push entry of
//! the label learned from the transit, the transit's swap and the tailend's pop. The clock
//! starts when the three nodes are spawned (namespaces, veths and configurations are made
//! before). The figure is thus at most one probe interval late; the headend's LDP view
//! (`ctl ldp --json`, published every 200 ms) is printed beside it.
//!
//! **Anchor.** Two FRR 8.4 namespaces (`ispmux_tests::frr`: zebra and ldpd each) joined by
//! a veth, the same Hello timers, transport addresses on their loopbacks; the same N
//! prefixes as kernel routes: at A via a next hop on a dummy interface (A advertises a label
//! for each, as a tailend does), at B via A (B advertises its own upstream, as the transit
//! does). Routes are in the kernel before the daemons start, where zebra reads them. The
//! clock starts when zebra and ldpd are spawned on both and stops when both show, in
//! `show mpls ldp binding json` (polled every 100 ms), the other's label for all N prefixes.
//! This kernel has no MPLS, so FRR's figure is control plane only: it has no forwarding to
//! wait for.
//!
//! **Churn.** Once ispmux converged, the transit's route to the churned block is removed and
//! put back every 1 / (2 × `--flaps`) s, for `--churn-secs` s: each removal makes the
//! transit withdraw its N/2 labels (ordered control: no route, no label) and the headend drop
//! the churned ISPs' push entries; each return re-advertises them and they are pushed again.
//! With N = 1,000 and the default 2 flaps a second, 1,000 mappings are withdrawn and 1,000
//! re-advertised a second; the headend's label-map writes a second (pushes written and
//! removed) show what it kept up with. Meanwhile the probes flow to all ISPs: the loss of
//! the steady ISPs' probes is the figure (target < 2 %); the churned ISPs' delivery is shown
//! (about half is expected: they have no label half of the time). The route changes go
//! through one `ip -batch` reading them as they come (a process per change held only ~3.2
//! changes a second on a busy machine).
//!
//! Each ispmux run prints a timeline from the nodes' logs: LDP running, sessions
//! OPERATIONAL. On the quiet 2-core development machine, `--rounds 5`: ispmux 1.017 s
//! (0.97-1.06) against FRR's 1.195 s (1.17-1.21), ratio 1.18.
//! Where ispmux's time goes: ~0.5 s until the three processes run LDP (EAL, ports, twins
//! and their static routes); every session OPERATIONAL within ~50 ms of that; all 1,000
//! labels relayed hop by hop within ~0.1 s; the next hops' MACs are already known (the
//! kernel resolved them for the sessions); the rest is the probe interval and the 50 ms
//! polling of the counters. Churn: 4 route changes a second held, ~2,100 headend push
//! writes a second, 0.00 % loss on the steady ISPs. Before this stop's fixes it took
//! 5-6 s: next hops waited for neighbour events the kernel never sent, a session waited a
//! Hello interval for a neighbour that came up later, and a SYN-ACK waited a second for
//! its route.
//!
//! The result line compares convergence times (less is better): R = anchor / ispmux. Runs
//! interleave (ispmux, anchor; reversed every other round), medians over rounds. Options:
//! `--fecs N` (1000), `--pps P` (10000), `--churn-secs S` (5), `--flaps F` (2),
//! `--rounds R` (1), `--timeout S` (90); `--ispmux 0` or `--anchor 0` runs one side only
//! (no ratio). Needs root, ip, ethtool, FRR (`frr` package).
//! Namespaces are `cv-<role>-<pid>`; every namespace, process and file the run made goes at
//! its end, on an error, or on SIGINT/SIGTERM/SIGHUP.
//!
//! Last line: `ldp-converge ratio=R ispmux=X s anchor=Y s`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ispmux_perf::converge::{
    churned, counter, fec, handed_off, headend_tables, ldp, loss, probe, pushed_fecs, sent_to,
    tailend_tables, ALL_BLOCKS, CHURNED_BLOCK, HEAD_ACC0, ISP_ROUTER, MAX_FECS, STEADY_BLOCK,
};
use ispmux_perf::{ispmux_bin, median, opt, ordinary_scheduling, result_line_time};
use ispmux_tests::chain::{
    port, routed, veth_mac, HEAD_CORE0, TAIL_CORE0, TAIL_H0, TRANSIT_C0, TRANSIT_C1,
};
use ispmux_tests::frr::{Frr, FrrConfig};
use ispmux_tests::netns::Netns;

/// Namespaces made and not yet deleted: what a signal's cleanup deletes.
static NAMESPACES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SEQ: AtomicU32 = AtomicU32::new(0);

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

fn ip(ns: &Netns, args: &[&str]) -> Result<()> {
    let mut v = vec!["ip", "-n", &ns.name];
    v.extend_from_slice(args);
    sh(&v)
}

/// Kills what still runs in namespace `name` (and the crash-log directories FRR's killed
/// daemons leave), then deletes it.
fn clear_namespace(name: &str) {
    let pids = Command::new("ip")
        .args(["netns", "pids", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    for p in &pids {
        let _ = Command::new("kill").args(["-KILL", p]).status();
    }
    if !pids.is_empty() {
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(dirs) = std::fs::read_dir("/var/tmp/frr") {
            for d in dirs.flatten() {
                let n = d.file_name().to_string_lossy().into_owned();
                if pids.iter().any(|p| n.ends_with(&format!(".{p}"))) {
                    let _ = std::fs::remove_dir_all(d.path());
                }
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", name]).status();
    if let Ok(mut v) = NAMESPACES.lock() {
        v.retain(|n| n != name);
    }
}

/// A namespace of this run, cleared (processes killed) and deleted on drop (`Netns`'s own
/// drop then finds it gone).
struct Space(Netns);

impl Space {
    fn new(role: &str) -> Result<Space> {
        let name = format!("cv-{role}-{}", std::process::id());
        if let Ok(mut v) = NAMESPACES.lock() {
            v.push(name.clone());
        }
        sh(&["ip", "netns", "add", &name])?;
        let s = Space(Netns { name });
        ip(s.ns(), &["link", "set", "lo", "up"])?;
        Ok(s)
    }

    fn ns(&self) -> &Netns {
        &self.0
    }

    fn exec(&self, program: &str) -> Command {
        self.0.command(program)
    }
}

impl Drop for Space {
    fn drop(&mut self) {
        clear_namespace(&self.0.name);
    }
}

/// A veth pair from `a` (named `a_dev`, MAC `a_mac`) to `b`, up, offloads off.
fn veth(a: &Space, a_dev: &str, a_mac: &str, b: &Space, b_dev: &str, b_mac: &str) -> Result<()> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let id = std::process::id() % 100_000;
    let (ta, tb) = (format!("cv{id}x{n}a"), format!("cv{id}x{n}b"));
    sh(&[
        "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
    ])?;
    for (t, s, dev, mac) in [(&ta, a, a_dev, a_mac), (&tb, b, b_dev, b_mac)] {
        sh(&["ip", "link", "set", t, "netns", &s.ns().name])?;
        ip(s.ns(), &["link", "set", t, "name", dev])?;
        ip(s.ns(), &["link", "set", dev, "address", mac, "up"])?;
        let _ = s
            .exec("ethtool")
            .args([
                "-K", dev, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
            ])
            .args(["gro", "off"])
            .output();
    }
    Ok(())
}

fn sysctl(s: &Space, kv: &str) -> Result<()> {
    let out = s.exec("sysctl").args(["-qw", kv]).output()?;
    if !out.status.success() {
        bail!("sysctl {kv} in {}: {out:?}", s.ns().name);
    }
    Ok(())
}

/// An ispmux node: stopped with SIGTERM (SIGKILL 5 s later) on drop.
struct Node {
    name: &'static str,
    child: Option<Child>,
    log: PathBuf,
    sock: PathBuf,
}

impl Node {
    fn spawn(s: &Space, dir: &Path, name: &'static str, config: &Path) -> Result<Node> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = s.exec(&ispmux_bin()?.to_string_lossy());
        cmd.args(["run", "-c"]).arg(config);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Node {
            name,
            child: Some(child),
            log,
            sock: dir.join(format!("{name}.sock")),
        })
    }

    /// `ispmux ctl --json CMD` on this node.
    fn ctl(&self, cmd: &str) -> Result<serde_json::Value> {
        let out = Command::new(ispmux_bin()?)
            .args(["ctl", "--json", "-s"])
            .arg(&self.sock)
            .arg(cmd)
            .output()?;
        if !out.status.success() {
            bail!(
                "{} ctl {cmd}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Fails when the node has exited, with its log.
    fn check(&mut self) -> Result<()> {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!("{} exited ({st}):\n{log}", self.name);
            }
        }
        Ok(())
    }

    /// Stops the node and returns what it printed (its exit report last).
    fn stop(&mut self) -> String {
        if let Some(c) = self.child.take() {
            terminate(c, Duration::from_secs(5));
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGTERM, `grace` to exit, then SIGKILL; reaped either way.
fn terminate(mut c: Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// The probe generator (this binary with `--generate`) in the subscriber namespace.
struct Generator(Option<Child>);

impl Generator {
    fn start(sub: &Space, n: u32, pps: f64, secs: f64) -> Result<Generator> {
        let me = std::env::current_exe()?;
        let mut cmd = sub.exec(&me.to_string_lossy());
        cmd.args(["--generate", "1", "--fecs", &n.to_string()])
            .args(["--pps", &pps.to_string(), "--secs", &secs.to_string()]);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the probe generator")?;
        Ok(Generator(Some(child)))
    }

    /// Waits for the generator's end: the probes it sent.
    fn finish(mut self) -> Result<u64> {
        let c = self.0.take().context("generator already stopped")?;
        let out = c.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("sent "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow!("generator: {text}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            terminate(c, Duration::from_secs(1));
        }
    }
}

/// `--generate`: sends the N ISPs' probes round-robin at `--pps` out of `eth0` for `--secs`,
/// then prints `sent TOTAL`.
fn generate() -> Result<()> {
    use pnet_datalink::Channel;
    let n = opt("--fecs", 1000.0) as u32;
    let pps = opt("--pps", 10_000.0).max(1.0);
    let secs = opt("--secs", 10.0);
    let iface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == "eth0")
        .context("no eth0 here")?;
    let Channel::Ethernet(mut tx, _rx) = pnet_datalink::channel(&iface, Default::default())? else {
        bail!("eth0: not an Ethernet channel");
    };
    let frames: Vec<Vec<u8>> = (1..=n).map(probe).collect();
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut sent: u64 = 0;
    loop {
        let t = start.elapsed();
        if t >= end {
            break;
        }
        let due = (t.as_secs_f64() * pps) as u64;
        while sent < due {
            let f = &frames[(sent % u64::from(n)) as usize];
            match tx.send_to(f, None) {
                Some(Ok(())) => sent += 1,
                // A full socket buffer: try again on the next tick.
                _ => break,
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    println!("sent {sent}");
    Ok(())
}

const EAL: &str = "[eal]\nlcores = [0, 1]\nmemory_mb = 256\nhugepages = \"off\"\n";
const DATAPLANE: &str = "\n[dataplane]\npipeline = \"node\"\nidle_sleep = \"on\"\n\n";

/// The chain's namespaces and links; the nodes' configurations in `dir`.
struct Chain {
    dir: PathBuf,
    sub: Space,
    head: Space,
    transit: Space,
    tail: Space,
    isp: Space,
}

impl Chain {
    fn new(n: u32) -> Result<Chain> {
        let dir = std::env::temp_dir().join(format!("cv-ldp-converge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let c = Chain {
            dir,
            sub: Space::new("sub")?,
            head: Space::new("head")?,
            transit: Space::new("transit")?,
            tail: Space::new("tail")?,
            isp: Space::new("isp")?,
        };
        veth(
            &c.sub,
            "eth0",
            "02:00:00:cc:ff:ff",
            &c.head,
            "acc0",
            HEAD_ACC0,
        )?;
        let m = [HEAD_CORE0, TRANSIT_C0, TRANSIT_C1, TAIL_CORE0, TAIL_H0].map(veth_mac);
        veth(&c.head, "core0", &m[0], &c.transit, "c0", &m[1])?;
        veth(&c.transit, "c1", &m[2], &c.tail, "core0", &m[3])?;
        veth(&c.tail, "h0", &m[4], &c.isp, "eth0", ISP_ROUTER)?;
        // Only the twins answer ARP for the routed ports' addresses; core links carry labels.
        for (s, dev) in [
            (&c.head, "core0"),
            (&c.transit, "c0"),
            (&c.transit, "c1"),
            (&c.tail, "core0"),
            (&c.tail, "h0"),
        ] {
            sysctl(s, &format!("net.ipv4.conf.{dev}.arp_ignore=1"))?;
            if dev != "h0" {
                ip(s.ns(), &["link", "set", dev, "mtu", "1600"])?;
            }
        }
        c.write("headend", |eal| {
            format!(
                "{eal}{}{}{}{}",
                port("acc0", 0, "access", 1500),
                with_routes(
                    routed("core0", 1, "core", 1600, HEAD_CORE0, "10.0.12.1/30"),
                    &[ALL_BLOCKS, "10.0.23.0/30"],
                    "10.0.12.2"
                ),
                headend_tables(n),
                ldp("10.0.12.1"),
            )
        })?;
        c.write("transit", |eal| {
            format!(
                "{eal}{}{}{}",
                routed("c0", 0, "core", 1600, TRANSIT_C0, "10.0.12.2/30"),
                with_routes(
                    routed("c1", 1, "core", 1600, TRANSIT_C1, "10.0.23.2/30"),
                    &[STEADY_BLOCK, CHURNED_BLOCK],
                    "10.0.23.1"
                ),
                ldp("10.0.23.2"),
            )
        })?;
        c.write("tailend", |eal| {
            format!(
                "{eal}{}{}{}{}",
                routed("core0", 0, "core", 1600, TAIL_CORE0, "10.0.23.1/30"),
                routed("h0", 1, "handoff", 1500, TAIL_H0, "198.18.200.1/24"),
                tailend_tables(n),
                ldp("10.0.23.1"),
            )
        })?;
        Ok(c)
    }

    /// Writes `NAME.toml` (its own EAL file prefix and control socket) and checks it.
    fn write(&self, name: &str, body: impl Fn(&str) -> String) -> Result<()> {
        let eal = format!(
            "{EAL}file_prefix = \"cv-{name}-{}\"\n{DATAPLANE}",
            std::process::id()
        );
        let text = format!(
            "{}\n[control]\nsocket = \"{}\"\n",
            body(&eal),
            self.dir.join(format!("{name}.sock")).display()
        );
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text)?;
        let out = Command::new(ispmux_bin()?)
            .args(["check", "-c"])
            .arg(&path)
            .output()?;
        if !out.status.success() {
            bail!("{name}: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    fn spawn(&self, s: &Space, name: &'static str) -> Result<Node> {
        let _ = std::fs::remove_file(self.dir.join(format!("{name}.sock")));
        Node::spawn(s, &self.dir, name, &self.dir.join(format!("{name}.toml")))
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port's text (`routed`) with static routes to `to` via `via` on its twin, there before
/// LDP starts (`[[port]] routes`).
fn with_routes(port: String, to: &[&str], via: &str) -> String {
    let routes: Vec<String> = to
        .iter()
        .map(|t| format!("{{ to = \"{t}\", via = \"{via}\" }}"))
        .collect();
    format!("{}\nroutes = [{}]\n\n", port.trim_end(), routes.join(", "))
}

/// The time of day (UTC), as the nodes' logs print it.
fn wall_clock() -> String {
    Command::new("date")
        .args(["-u", "+%H:%M:%S.%6N"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// What one ispmux run measured.
struct IspmuxRun {
    converge_s: f64,
    steady_loss: f64,
    churned_delivery: f64,
    /// The headend's label-map push writes (written or removed) a second during the churn.
    push_writes_per_s: f64,
    /// Route flaps (removals and returns) done a second.
    flaps_per_s: f64,
}

fn run_ispmux(n: u32, pps: f64, churn_secs: f64, flaps: f64, timeout: f64) -> Result<IspmuxRun> {
    let chain = Chain::new(n)?;
    let deadline = |s: f64| Instant::now() + Duration::from_secs_f64(s);
    // Probes from before the start: each ISP's first one after its path is complete counts.
    let gen = Generator::start(&chain.sub, n, pps, timeout + 10.0)?;
    let wall = wall_clock();
    let t0 = Instant::now();
    println!("  start: {wall}");
    let mut head = chain.spawn(&chain.head, "headend")?;
    let mut transit = chain.spawn(&chain.transit, "transit")?;
    let mut tail = chain.spawn(&chain.tail, "tailend")?;
    let until = deadline(timeout);
    // The tailend's counters every 50 ms until every ISP's probe is handed off.
    let converge_s = loop {
        let now = Instant::now();
        if let Ok(s) = tail.ctl("stats") {
            let got = handed_off(&s);
            if (1..=n).all(|i| got.get(&i).is_some_and(|p| *p > 0)) {
                break Ok(now.duration_since(t0).as_secs_f64());
            }
            if now > until {
                let missing = (1..=n)
                    .filter(|i| got.get(i).is_none_or(|p| *p == 0))
                    .count();
                break Err(anyhow!(
                    "ispmux: {missing} of {n} ISPs not forwarding after {timeout} s"
                ));
            }
        } else if now > until {
            break Err(anyhow!("ispmux: the tailend never answered ctl"));
        }
        if let Err(e) = [&mut head, &mut transit, &mut tail]
            .into_iter()
            .try_for_each(|node| node.check())
        {
            break Err(e);
        }
        std::thread::sleep(Duration::from_millis(50));
    }?;
    drop(gen);
    // Where the time went: each node's start and its sessions, as its log has them.
    for node in [&head, &transit, &tail] {
        let log = std::fs::read_to_string(&node.log).unwrap_or_default();
        for l in log.lines().filter(|l| {
            l.contains("starting EAL")
                || l.contains("EAL up")
                || l.contains("tables built")
                || l.contains("kernel twin up")
                || l.contains("ldp: running")
                || l.contains("forwarding workers")
                || l.contains("session OPERATIONAL")
                || l.contains("MAC changed")
        }) {
            println!("  {}: {l}", node.name);
        }
    }
    let fecs: BTreeSet<String> = (1..=n).map(|i| format!("{}/32", fec(i, n))).collect();
    let pushed = head
        .ctl("ldp")
        .map(|v| pushed_fecs(&v).intersection(&fecs).count())
        .unwrap_or(0);
    println!("  ispmux: forwarding for all {n} ISP FECs after {converge_s:.3} s (headend's LDP view: {pushed} pushed)");

    // Churn: the transit's route to the churned block flapped while every ISP's probes flow.
    let before_tail = handed_off(&tail.ctl("stats")?);
    let before_head = head.ctl("stats")?;
    let gen = Generator::start(&chain.sub, n, pps, churn_secs)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flapper = {
        let stop = Arc::clone(&stop);
        let every = Duration::from_secs_f64(1.0 / (2.0 * flaps.max(0.1)));
        // One `ip` reading commands as they come: a process per flap would bound the rate on
        // a busy machine.
        let mut ipb = chain
            .transit
            .exec("ip")
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("ip -batch")?;
        let mut input = ipb.stdin.take().context("ip -batch stdin")?;
        std::thread::spawn(move || -> Result<(u64, f64)> {
            use std::io::Write;
            let add = format!("route add {CHURNED_BLOCK} via 10.0.23.1 dev ispmux-c1\n");
            let del = format!("route del {CHURNED_BLOCK}\n");
            let t = Instant::now();
            let mut done = 0u64;
            let mut next = t;
            while !stop.load(Ordering::Relaxed) {
                let line = if done.is_multiple_of(2) { &del } else { &add };
                input.write_all(line.as_bytes())?;
                input.flush()?;
                done += 1;
                next += every;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let secs = t.elapsed().as_secs_f64();
            if done % 2 == 1 {
                input.write_all(add.as_bytes())?;
            }
            drop(input);
            ipb.wait()?;
            Ok((done, secs))
        })
    };
    let sent = gen.finish();
    stop.store(true, Ordering::Relaxed);
    let flapped = flapper
        .join()
        .map_err(|_| anyhow!("the route flapper panicked"))?;
    let sent = sent?;
    let (flap_count, flap_secs) = flapped?;
    // What was sent last is through the chain well within this.
    std::thread::sleep(Duration::from_millis(500));
    let after_tail = handed_off(&tail.ctl("stats")?);
    let after_head = head.ctl("stats")?;
    let (mut steady, mut churn) = ((0u64, 0u64), (0u64, 0u64));
    for i in 1..=n {
        let got =
            after_tail.get(&i).copied().unwrap_or(0) - before_tail.get(&i).copied().unwrap_or(0);
        let want = sent_to(i, n, sent);
        let acc = if churned(i, n) {
            &mut churn
        } else {
            &mut steady
        };
        acc.0 += want;
        acc.1 += got;
    }
    let push = "/slowpath/label_map/push_written";
    let push_writes = counter(&after_head, push).saturating_sub(counter(&before_head, push));
    let no_fec = counter(&after_head, "/drops/no_fec") - counter(&before_head, "/drops/no_fec");
    let run = IspmuxRun {
        converge_s,
        steady_loss: loss(steady.0, steady.1),
        churned_delivery: 1.0 - loss(churn.0, churn.1),
        push_writes_per_s: push_writes as f64 / flap_secs.max(1e-3),
        flaps_per_s: flap_count as f64 / flap_secs.max(1e-3),
    };
    println!(
        "  ispmux churn: {:.1} route changes/s ({:.0} mappings withdrawn and as many re-advertised a second by design), \
         headend push writes {:.0}/s; steady ISPs {}/{} probes ({:.2} % loss), churned ISPs {}/{} ({:.1} % delivered), headend no_fec drops {no_fec}",
        run.flaps_per_s,
        run.flaps_per_s / 2.0 * f64::from(n - n / 2),
        run.push_writes_per_s,
        steady.1,
        steady.0,
        run.steady_loss * 100.0,
        churn.1,
        churn.0,
        run.churned_delivery * 100.0
    );
    for node in [&mut head, &mut transit, &mut tail] {
        node.check()?;
    }
    for node in [&mut head, &mut transit, &mut tail] {
        let out = node.stop();
        for l in out
            .lines()
            .filter(|l| l.starts_with("ldp ") || l.contains("table writes"))
        {
            println!("  {} {l}", node.name);
        }
    }
    Ok(run)
}

/// FRR's two nodes: A owns the prefixes (as the tailend), B learns them (as the transit).
fn run_frr(n: u32, timeout: f64) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("cv-frr-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let res = frr_converge(n, timeout, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn frr_converge(n: u32, timeout: f64, dir: &Path) -> Result<f64> {
    let (a_id, b_id) = (Ipv4Addr::new(10, 255, 0, 1), Ipv4Addr::new(10, 255, 0, 2));
    let a = Space::new("frra")?;
    let b = Space::new("frrb")?;
    veth(
        &a,
        "fa0",
        "02:00:00:78:00:01",
        &b,
        "fb0",
        "02:00:00:78:00:02",
    )?;
    ip(a.ns(), &["addr", "add", "10.0.77.1/30", "dev", "fa0"])?;
    ip(b.ns(), &["addr", "add", "10.0.77.2/30", "dev", "fb0"])?;
    ip(a.ns(), &["addr", "add", &format!("{a_id}/32"), "dev", "lo"])?;
    ip(b.ns(), &["addr", "add", &format!("{b_id}/32"), "dev", "lo"])?;
    ip(
        a.ns(),
        &["route", "add", &format!("{b_id}/32"), "via", "10.0.77.2"],
    )?;
    ip(
        b.ns(),
        &["route", "add", &format!("{a_id}/32"), "via", "10.0.77.1"],
    )?;
    // A's prefixes lie beyond a link of their own (a veth pair within A: this kernel has no
    // dummy interfaces).
    ip(
        a.ns(),
        &[
            "link", "add", "cvd0", "type", "veth", "peer", "name", "cvd1",
        ],
    )?;
    ip(a.ns(), &["link", "set", "cvd0", "up"])?;
    ip(a.ns(), &["link", "set", "cvd1", "up"])?;
    ip(a.ns(), &["addr", "add", "198.18.201.1/24", "dev", "cvd0"])?;
    let (mut ra, mut rb) = (String::new(), String::new());
    for i in 1..=n {
        let p = fec(i, n);
        ra += &format!("route add {p}/32 via 198.18.201.2 dev cvd0\n");
        rb += &format!("route add {p}/32 via 10.0.77.1 dev fb0\n");
    }
    for (s, text, f) in [(&a, ra, "a.batch"), (&b, rb, "b.batch")] {
        let path = dir.join(f);
        std::fs::write(&path, text)?;
        ip(s.ns(), &["-batch", &path.to_string_lossy()])?;
    }
    let conf = |host: &str, id: Ipv4Addr, iface: &str| {
        let mut c = FrrConfig::new(host, id, &[iface]);
        c.extra_af_lines = vec![
            "discovery hello interval 1".into(),
            "discovery hello holdtime 3".into(),
        ];
        c
    };
    let (ca, cb) = (conf("cv-frra", a_id, "fa0"), conf("cv-frrb", b_id, "fb0"));
    let prefixes: BTreeSet<String> = (1..=n).map(|i| format!("{}/32", fec(i, n))).collect();
    let t0 = Instant::now();
    let fa = Frr::start(a.ns(), &ca).map_err(|e| anyhow!("FRR A: {e}"))?;
    let fb = Frr::start(b.ns(), &cb).map_err(|e| anyhow!("FRR B: {e}"))?;
    let learned = |f: &Frr, from: Ipv4Addr| -> usize {
        f.bindings()
            .map(|bs| {
                bs.iter()
                    .filter(|b| {
                        b.neighbor == Some(from)
                            && b.remote.is_some()
                            && prefixes.contains(&b.prefix)
                    })
                    .map(|b| b.prefix.as_str())
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs_f64(timeout);
    loop {
        let now = Instant::now();
        let (at_b, at_a) = (learned(&fb, a_id), learned(&fa, b_id));
        if at_a == n as usize && at_b == n as usize {
            let s = now.duration_since(t0).as_secs_f64();
            println!(
                "  FRR: both nodes hold the other's label for all {n} prefixes after {s:.3} s"
            );
            return Ok(s);
        }
        if now > until {
            let sample = |f: &Frr| f.bindings().map(|b| format!("{:?}", &b[..b.len().min(4)]));
            bail!(
                "FRR: after {timeout} s B has A's label for {at_b}, A has B's for {at_a} of {n}\n\
                 A's first bindings: {:?}\nB's: {:?}\nA's ldpd:\n{}",
                sample(&fa),
                sample(&fb),
                fa.log("ldpd")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// On SIGINT, SIGTERM or SIGHUP: every namespace of the run cleared and deleted, then exit.
fn clean_up_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            let names = NAMESPACES.lock().map(|v| v.clone()).unwrap_or_default();
            for n in names {
                clear_namespace(&n);
            }
            let id = std::process::id();
            for d in [
                format!("cv-ldp-converge-{id}"),
                format!("cv-frr-routes-{id}"),
            ] {
                let _ = std::fs::remove_dir_all(std::env::temp_dir().join(d));
            }
            if let Ok(dirs) = std::fs::read_dir(std::env::temp_dir()) {
                for d in dirs.flatten() {
                    let name = d.file_name().to_string_lossy().into_owned();
                    if name.starts_with("ispmux-frr-cv-") && name.contains(&format!("-{id}x")) {
                        let _ = std::fs::remove_dir_all(d.path());
                    }
                }
            }
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

fn main() -> Result<()> {
    // Three nodes, the generator and FRR share the 2 cores: no real-time class for any
    // (ISPMUX_PERF_RT=1 made a cold start take 23-77 s, each node's start waiting for
    // its lcore thread behind another node's spinning thread at the same priority).
    ordinary_scheduling();
    if std::env::args().any(|a| a == "--generate") {
        return generate();
    }
    let n = opt("--fecs", 1000.0) as u32;
    if !(2..=MAX_FECS).contains(&n) {
        bail!("--fecs must be within 2..={MAX_FECS} (one hand-off VLAN per ISP)");
    }
    let pps = opt("--pps", 10_000.0);
    let churn_secs = opt("--churn-secs", 5.0);
    let flaps = opt("--flaps", 2.0);
    let rounds = opt("--rounds", 1.0).max(1.0) as usize;
    let timeout = opt("--timeout", 90.0);
    clean_up_on_signals()?;
    let (mut x, mut y, mut losses) = (Vec::new(), Vec::new(), Vec::new());
    // `--ispmux 0` or `--anchor 0` leave a side out (to look at the other; no ratio then).
    let (with_ispmux, with_anchor) = (opt("--ispmux", 1.0) != 0.0, opt("--anchor", 1.0) != 0.0);
    for round in 0..rounds {
        for leg in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if (leg == 0 && !with_ispmux) || (leg == 1 && !with_anchor) {
                continue;
            }
            if leg == 0 {
                println!("round {round} ispmux:");
                let r = run_ispmux(n, pps, churn_secs, flaps, timeout)?;
                x.push(r.converge_s);
                losses.push(r.steady_loss);
            } else {
                println!("round {round} FRR anchor:");
                y.push(run_frr(n, timeout)?);
            }
        }
    }
    println!(
        "forwarding loss of the steady ISPs during the churn: {:.2} % (median; target < 2 %)",
        median(&losses) * 100.0
    );
    println!(
        "{}",
        result_line_time("ldp-converge", median(&x), median(&y), "s")
    );
    Ok(())
}
