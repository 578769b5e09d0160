//! OVS-DPDK as a forwarding peer: an ovsdb-server and an `ovs-vswitchd-dpdk` of our own in a
//! private run directory, a netdev bridge with OpenFlow rules, DPDK ports given by devargs,
//! and the counters a benchmark reads from them.
//!
//! The daemons are this process's children and are stopped when [`Ovs`] is dropped, so an
//! error anywhere in a benchmark leaves none behind. Nothing here runs in unit tests: only
//! the text parsers are tested (on output captured from OVS 3.1).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ispmux_dataplane::table::preload::SubscriberPreload;
use ispmux_dataplane::wire::MacAddr;

use crate::{measured, median, run_to_end};

/// The DPDK build of vswitchd in Debian's `openvswitch-switch-dpdk`.
pub const VSWITCHD_DPDK: &str = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk";
/// The database schema shipped with `openvswitch-common`.
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
/// The bridge every benchmark uses.
const BRIDGE: &str = "br0";
/// Seconds any one OVS command may take; without a timeout a failed `add-port` hangs.
const CMD_TIMEOUT_S: u32 = 60;
/// Adding a few hundred thousand rules takes a while (about 60 s for a million here).
const ADD_FLOWS_TIMEOUT_S: u32 = 600;
/// How long a paused PMD sleeps per idle poll (µs, OVS's maximum): a paused OVS must not
/// take the forwarding core from the others' runs.
const PAUSED_PMD_SLEEP_US: u32 = 10_000;
/// The revalidators' period while paused (ms): no periodic dumps (see [`Ovs::pause`]).
const PAUSED_REVALIDATOR_MS: u32 = 3_600_000;
/// The OpenFlow port numbers the benchmark's rules use.
pub const IN_PORT: u16 = 1;
/// See [`IN_PORT`].
pub const OUT_PORT: u16 = 2;

/// Fails with what to install when OVS-DPDK is missing (it is not among the test
/// dependencies: only this benchmark needs it).
pub fn check_installed() -> Result<()> {
    let tools = [
        "ovsdb-tool",
        "ovsdb-server",
        "ovs-vsctl",
        "ovs-ofctl",
        "ovs-appctl",
    ];
    let missing: Vec<&str> = std::iter::once(VSWITCHD_DPDK)
        .filter(|p| !Path::new(p).exists())
        .chain(tools.into_iter().filter(|t| which(t).is_none()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "OVS-DPDK is not installed (missing {}): apt-get install -y openvswitch-switch-dpdk",
            missing.join(", ")
        );
    }
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.exists())
    })
}

/// How vswitchd is set up; the defaults are the settings that worked on these 2-core
/// machines.
pub struct OvsConfig {
    /// `other_config:dpdk-extra`: no PCI scan, hugepages without files.
    pub dpdk_extra: String,
    /// `other_config:dpdk-lcore-mask`: the non-PMD threads' DPDK lcore.
    pub lcore_mask: String,
    /// `other_config:pmd-cpu-mask`: the one forwarding core.
    pub pmd_cpu_mask: String,
    /// `other_config:flow-limit`: the ceiling of the datapath flow limit.
    pub flow_limit: u64,
    /// `other_config:max-idle` (ms): datapath flows idle longer are deleted. Raised so the
    /// flows survive while OVS is paused for the other forwarders' runs.
    pub max_idle_ms: u64,
}

impl OvsConfig {
    /// The settings for `flows` datapath flows.
    pub fn for_flows(flows: u64) -> Self {
        OvsConfig {
            dpdk_extra: "--no-pci --in-memory".into(),
            lcore_mask: "0x1".into(),
            pmd_cpu_mask: "0x2".into(),
            flow_limit: (2 * flows).max(2_000_000),
            max_idle_ms: 3_600_000,
        }
    }

    fn other_config(&self) -> Vec<String> {
        vec![
            "other_config:dpdk-init=true".into(),
            format!("other_config:dpdk-extra={}", self.dpdk_extra),
            format!("other_config:dpdk-lcore-mask={}", self.lcore_mask),
            format!("other_config:pmd-cpu-mask={}", self.pmd_cpu_mask),
            format!("other_config:flow-limit={}", self.flow_limit),
            format!("other_config:max-idle={}", self.max_idle_ms),
        ]
    }
}

/// A running ovsdb-server and ovs-vswitchd-dpdk, private to `dir`.
pub struct Ovs {
    dir: PathBuf,
    /// (unixctl target name, process), in start order; stopped in reverse.
    daemons: Vec<(&'static str, Child)>,
}

/// Packet counters of one OpenFlow port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// Received.
    pub rx: u64,
    /// Sent.
    pub tx: u64,
    /// Dropped on transmit.
    pub tx_drop: u64,
}

/// One measuring window.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Median of the per-second transmit rates on [`OUT_PORT`] (Mpps).
    pub mpps: f64,
    /// Packets received on [`IN_PORT`] over the window.
    pub rx: u64,
    /// Packets sent on [`OUT_PORT`] over the window.
    pub tx: u64,
    /// Packets dropped on transmit over the window.
    pub tx_drop: u64,
}

/// Datapath flow counts from `upcall/show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatapathFlows {
    /// Flows installed now.
    pub current: u64,
    /// The dynamic limit (it ramps up by 1,000 per revalidation round).
    pub limit: u64,
    /// The last revalidator dump's duration (ms); over 1,300 ms OVS cuts the limit.
    pub dump_ms: u64,
}

impl Ovs {
    /// Creates the database in `dir`, starts both daemons with `config`, and makes a netdev
    /// bridge that forwards only by its rules (`fail_mode=secure`).
    pub fn start(dir: &Path, config: &OvsConfig) -> Result<Ovs> {
        let mut ovs = Ovs {
            dir: dir.to_path_buf(),
            daemons: Vec::new(),
        };
        let db = dir.join("conf.db");
        run_to_end(
            Command::new("ovsdb-tool")
                .arg("create")
                .arg(&db)
                .arg(SCHEMA),
        )?;
        let sock = ovs.db_socket();
        let server = ovs
            .daemon("ovsdb-server", "ovsdb-server")
            .arg(&db)
            .arg(format!("--remote=punix:{}", sock.display()))
            .spawn()
            .context("starting ovsdb-server")?;
        ovs.daemons.push(("ovsdb-server", server));
        ovs.wait_for(&sock, "ovsdb-server")?;
        ovs.vsctl(&["--no-wait", "init"])?;
        let mut set = vec!["--no-wait", "set", "Open_vSwitch", "."];
        let other = config.other_config();
        set.extend(other.iter().map(String::as_str));
        ovs.vsctl(&set)?;
        let vswitchd = ovs
            .daemon(VSWITCHD_DPDK, "ovs-vswitchd")
            .arg(format!("unix:{}", sock.display()))
            .spawn()
            .context("starting ovs-vswitchd-dpdk")?;
        ovs.daemons.push(("ovs-vswitchd", vswitchd));
        ovs.wait_for(&dir.join("ovs-vswitchd.ctl"), "ovs-vswitchd")?;
        ovs.vsctl(&[
            "add-br",
            BRIDGE,
            "--",
            "set",
            "bridge",
            BRIDGE,
            "datapath_type=netdev",
            "fail_mode=secure",
        ])?;
        Ok(ovs)
    }

    /// The private directory (database, sockets, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn db_socket(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    /// A command that finds this instance's sockets (`br0.mgmt` for ovs-ofctl, pid files for
    /// ovs-appctl) in the private directory rather than the system's.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c.stdin(Stdio::null());
        c
    }

    /// A daemon: its messages go to its log file, not the benchmark's output; [`measured`],
    /// like testpmd and ispmux.
    fn daemon(&self, program: &str, name: &str) -> Command {
        let mut c = self.command(program);
        c.args(self.daemon_args(name));
        let mut c = measured(&c);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    }

    /// Daemons run as our children (not `--detach`ed), logging to files in the directory.
    fn daemon_args(&self, name: &str) -> Vec<String> {
        let d = self.dir.display();
        vec![
            format!("--pidfile={d}/{name}.pid"),
            format!("--unixctl={d}/{name}.ctl"),
            format!("--log-file={d}/{name}.log"),
            "-vconsole:off".into(),
        ]
    }

    /// Waits until `path` (a daemon's socket) exists; fails early if the daemon died.
    fn wait_for(&mut self, path: &Path, name: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(u64::from(CMD_TIMEOUT_S));
        while !path.exists() {
            let exited = match self.daemons.last_mut() {
                Some((_, child)) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                bail!("{name} exited ({status}): {}", self.log_tail(name));
            }
            if Instant::now() > deadline {
                bail!("{name} did not start: {}", self.log_tail(name));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// The last lines of a daemon's log, for error messages.
    pub fn log_tail(&self, name: &str) -> String {
        let log = self.dir.join(format!("{name}.log"));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        format!("{} says:\n{tail}", log.display())
    }

    /// `ovs-vsctl` against this instance's database.
    pub fn vsctl(&self, args: &[&str]) -> Result<String> {
        run_to_end(
            self.command("ovs-vsctl")
                .arg(format!("--db=unix:{}", self.db_socket().display()))
                .arg(format!("--timeout={CMD_TIMEOUT_S}"))
                .args(args),
        )
    }

    /// `ovs-ofctl` against this instance's bridge.
    pub fn ofctl(&self, args: &[&str]) -> Result<String> {
        run_to_end(
            self.command("ovs-ofctl")
                .arg(format!("--timeout={CMD_TIMEOUT_S}"))
                .args(args),
        )
    }

    /// `ovs-appctl` against this instance's vswitchd.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        run_to_end(self.appctl_command("ovs-vswitchd").args(args))
    }

    fn appctl_command(&self, target: &str) -> Command {
        let mut c = self.command("ovs-appctl");
        c.arg(format!("--timeout={CMD_TIMEOUT_S}"))
            .arg(format!("--target={}/{target}.ctl", self.dir.display()));
        c
    }

    /// Installs the rules in `file` (one `ovs-ofctl add-flows` line each).
    pub fn add_flows(&self, file: &Path) -> Result<()> {
        let file = file.to_string_lossy();
        run_to_end(
            self.command("ovs-ofctl")
                .arg(format!("--timeout={ADD_FLOWS_TIMEOUT_S}"))
                .args(["add-flows", BRIDGE, &file]),
        )?;
        Ok(())
    }

    /// Adds a DPDK port from `devargs` as OpenFlow port `ofport`; fails with OVS's reason if
    /// it cannot open it (e.g. a capture with more frames than its mbuf pool).
    pub fn add_dpdk_port(&self, name: &str, devargs: &str, ofport: u16) -> Result<()> {
        let added = self.vsctl(&[
            "add-port",
            BRIDGE,
            name,
            "--",
            "set",
            "interface",
            name,
            "type=dpdk",
            &format!("options:dpdk-devargs={devargs}"),
            &format!("ofport_request={ofport}"),
        ]);
        let error = self
            .vsctl(&["--if-exists", "get", "interface", name, "error"])
            .unwrap_or_default();
        let error = error.trim();
        if added.is_err() || (!error.is_empty() && error != "[]") {
            bail!(
                "OVS could not add port {name} ({devargs}): {error} {:?}\n{}",
                added.err(),
                self.log_tail("ovs-vswitchd")
            );
        }
        Ok(())
    }

    /// Datapath flow counts, from `upcall/show`.
    pub fn datapath_flows(&self) -> Result<DatapathFlows> {
        let out = self.appctl(&["upcall/show"])?;
        parse_upcall_show(&out).with_context(|| format!("unexpected upcall/show: {out}"))
    }

    /// Waits until at least `want` datapath flows are installed (OVS ramps its flow limit by
    /// about 2,000 flows/s; until then the rest of the traffic takes the slow upcall path),
    /// printing progress every 10 s; fails after `timeout`.
    pub fn warm_up(&self, want: u64, timeout: Duration) -> Result<DatapathFlows> {
        let start = Instant::now();
        let mut next_report = start;
        loop {
            let f = self.datapath_flows()?;
            if f.current >= want {
                return Ok(f);
            }
            let t = start.elapsed();
            if t > timeout {
                bail!(
                    "OVS warm-up: {} of {want} datapath flows after {:.0} s (limit {}, dump {} ms); \
                     raise --warmup-timeout or lower --subscribers. {}",
                    f.current,
                    t.as_secs_f64(),
                    f.limit,
                    f.dump_ms,
                    self.log_tail("ovs-vswitchd")
                );
            }
            if Instant::now() >= next_report {
                println!(
                    "  OVS warm-up {:>4.0} s: {} of {want} datapath flows (limit {}, dump {} ms)",
                    t.as_secs_f64(),
                    f.current,
                    f.limit,
                    f.dump_ms
                );
                next_report += Duration::from_secs(10);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Stops forwarding without losing the datapath flows, leaving both cores to the other
    /// runs: the input port goes down (its receive function then returns at once), the PMD
    /// sleeps between idle polls, and the revalidators stop their periodic dumps.
    ///
    /// The last matters most: a dump of a few hundred thousand flows that competes with a
    /// busy-polling forwarder takes over 2 s, OVS then divides its flow limit, and with more
    /// flows than the limit it expires every flow idle for 100 ms, i.e. all of them.
    pub fn pause(&self) -> Result<()> {
        self.ofctl(&["mod-port", BRIDGE, &IN_PORT.to_string(), "down"])?;
        self.vsctl(&[
            "set",
            "Open_vSwitch",
            ".",
            &format!("other_config:pmd-maxsleep={PAUSED_PMD_SLEEP_US}"),
            &format!("other_config:max-revalidator={PAUSED_REVALIDATOR_MS}"),
        ])?;
        // The revalidators take the new period after the dump they are in or about to start;
        // the port change may trigger one more right away.
        self.wait_for_revalidation();
        std::thread::sleep(Duration::from_secs(1));
        Ok(())
    }

    /// Undoes [`Ovs::pause`] and returns once OVS is back to its default behaviour: the input
    /// port up, the PMD busy-polling, the revalidators dumping every 500 ms.
    pub fn resume(&self) -> Result<()> {
        self.vsctl(&["set", "Open_vSwitch", ".", "other_config:pmd-maxsleep=0"])?;
        self.ofctl(&["mod-port", BRIDGE, &IN_PORT.to_string(), "up"])?;
        // Every flow sees traffic again before a dump can find it idle.
        std::thread::sleep(Duration::from_secs(1));
        self.vsctl(&[
            "remove",
            "Open_vSwitch",
            ".",
            "other_config",
            "max-revalidator",
        ])?;
        // The revalidators sleep out the long period they began while paused; any change to
        // the flow tables wakes them: a rule in a table no packet reaches.
        self.ofctl(&["add-flow", BRIDGE, "table=1,priority=0,actions=drop"])?;
        // The revalidation that triggers ends before anything is measured.
        self.wait_for_revalidation();
        Ok(())
    }

    /// Waits for the revalidators to finish a dump. Only for timing, so a dump that does not
    /// come is a note, not a failure.
    fn wait_for_revalidation(&self) {
        let waited = run_to_end(
            self.appctl_command("ovs-vswitchd")
                .arg("--timeout=10")
                .arg("revalidator/wait"),
        );
        if let Err(e) = waited {
            println!("  note: no OVS revalidation within 10 s ({e:#})");
        }
    }

    /// Packet counters of every OpenFlow port, in one reply (so rx and tx are read together).
    pub fn port_counters(&self) -> Result<BTreeMap<String, PortCounters>> {
        let out = self.ofctl(&["dump-ports", BRIDGE])?;
        Ok(parse_dump_ports(&out))
    }

    fn in_out(&self) -> Result<(PortCounters, PortCounters)> {
        let ports = self.port_counters()?;
        let get = |p: u16| {
            ports
                .get(&p.to_string())
                .copied()
                .with_context(|| format!("OpenFlow port {p} missing from dump-ports"))
        };
        Ok((get(IN_PORT)?, get(OUT_PORT)?))
    }

    /// Measures a window of `secs` seconds the way ispmux's rate is taken: per-second
    /// transmit rates on [`OUT_PORT`], the first (partial) second left out, median.
    pub fn measure(&self, secs: f64) -> Result<Window> {
        std::thread::sleep(Duration::from_secs(1));
        let (in0, out0) = self.in_out()?;
        let mut prev = (Instant::now(), out0.tx);
        let mut rates = Vec::new();
        let samples = (secs - 1.0).round().max(1.0) as u32;
        let (mut in1, mut out1) = (in0, out0);
        for _ in 0..samples {
            let due = prev.0 + Duration::from_secs(1);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            (in1, out1) = self.in_out()?;
            let now = Instant::now();
            rates.push((out1.tx - prev.1) as f64 / (now - prev.0).as_secs_f64() / 1e6);
            prev = (now, out1.tx);
        }
        Ok(Window {
            mpps: median(&rates),
            rx: in1.rx - in0.rx,
            tx: out1.tx - out0.tx,
            tx_drop: out1.tx_drop - out0.tx_drop,
        })
    }

    /// Clears the PMD statistics (cache hits, upcalls) before a window.
    pub fn clear_pmd_stats(&self) -> Result<()> {
        self.appctl(&["dpif-netdev/pmd-stats-clear"])?;
        Ok(())
    }

    /// The forwarding PMD's statistics since the last clear, as one line.
    pub fn pmd_stats(&self) -> Result<String> {
        let out = self.appctl(&["dpif-netdev/pmd-stats-show"])?;
        Ok(summarize_pmd_stats(&out))
    }

    /// Datapath flows per pushed MPLS label, and one flow as an example, streamed from
    /// `dpctl/dump-flows` (one line per flow: hundreds of thousands).
    pub fn datapath_labels(&self) -> Result<(BTreeMap<u32, u64>, String)> {
        let mut child = self
            .appctl_command("ovs-vswitchd")
            .arg("dpctl/dump-flows")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("ovs-appctl dpctl/dump-flows")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut labels = BTreeMap::new();
        let mut example = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(label) = pushed_label(&line) {
                *labels.entry(label).or_insert(0) += 1;
                if example.is_empty() {
                    example = line;
                }
            }
        }
        child.wait()?;
        Ok((labels, example))
    }

    /// Packets per label set by the OpenFlow rules (their `n_packets`, which the
    /// revalidators update from the datapath flows about twice a second).
    pub fn rule_packets_per_label(&self) -> Result<BTreeMap<u32, u64>> {
        let out = self.ofctl(&["dump-flows", BRIDGE])?;
        Ok(rule_packets_per_label(&out))
    }

    /// CPU time (user + system, seconds) vswitchd has used so far, from `/proc`: shows that a
    /// paused OVS leaves the cores to the other runs.
    pub fn vswitchd_cpu_seconds(&self) -> Result<f64> {
        let (_, child) = self
            .daemons
            .iter()
            .find(|(name, _)| *name == "ovs-vswitchd")
            .context("vswitchd is not running")?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id()))?;
        cpu_seconds(&stat).context("unexpected /proc/PID/stat")
    }

    /// Asks both daemons to exit, then kills whatever is left.
    fn stop(&mut self) {
        while let Some((name, mut child)) = self.daemons.pop() {
            let _ = self
                .appctl_command(name)
                .arg("exit")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The rule for one subscriber: traffic from its MAC on [`IN_PORT`] gets `label` pushed
/// (OVS copies the IPv4 TTL into the label, as ispmux does) and leaves on [`OUT_PORT`].
/// With `same_job` it also does what ispmux does besides: the source guard (the
/// subscriber's IPv4 source address) and the Ethernet rewrite toward the next hop.
pub fn subscriber_rule(
    s: &SubscriberPreload,
    label: u32,
    same_job: Option<(MacAddr, MacAddr)>,
) -> String {
    let push = format!("push_mpls:0x8847,set_field:{label}->mpls_label,output:{OUT_PORT}");
    match (same_job, s.ipv4) {
        (Some((src, next_hop)), Some(ip)) => format!(
            "ip,in_port={IN_PORT},dl_src={},nw_src={ip},\
             actions=mod_dl_src:{src},mod_dl_dst:{next_hop},{push}",
            s.mac
        ),
        _ => format!("in_port={IN_PORT},dl_src={},actions={push}", s.mac),
    }
}

/// utime + stime of a `/proc/PID/stat` line, in seconds. The fields after the command name
/// (which may hold spaces, hence the split at its closing parenthesis) start with the
/// state, field 3; utime and stime are fields 14 and 15, in USER_HZ ticks (100 per second on
/// Linux whatever the kernel's own tick).
pub fn cpu_seconds(stat: &str) -> Option<f64> {
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some((ticks(14)? + ticks(15)?) as f64 / 100.0)
}

/// `flows : (current N) (avg A) (max M) (limit L)` and `dump duration : Dms` of
/// `ovs-appctl upcall/show`.
pub fn parse_upcall_show(out: &str) -> Option<DatapathFlows> {
    let flows = out.lines().find(|l| l.trim_start().starts_with("flows"))?;
    let field = |name: &str| -> Option<u64> {
        let rest = flows.split(&format!("({name} ")).nth(1)?;
        rest.split(')').next()?.trim().parse().ok()
    };
    let dump_ms = out
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("dump duration"))
        .and_then(|v| {
            v.trim_start_matches([' ', ':'])
                .trim_end_matches("ms")
                .parse()
                .ok()
        })
        .unwrap_or(0);
    Some(DatapathFlows {
        current: field("current")?,
        limit: field("limit")?,
        dump_ms,
    })
}

/// Per-port packet counters of `ovs-ofctl dump-ports`: each port is a line
/// `port  N: rx pkts=…` followed by `tx pkts=…, bytes=…, drop=…`.
pub fn parse_dump_ports(out: &str) -> BTreeMap<String, PortCounters> {
    let mut ports = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("port") {
            let (name, counters) = rest.split_once(':').unwrap_or((rest, ""));
            let name = name.trim().to_string();
            let c: &mut PortCounters = ports.entry(name.clone()).or_default();
            c.rx = counter(counters, "rx pkts").unwrap_or(0);
            current = Some(name);
        } else if line.starts_with("tx pkts") {
            if let Some(c) = current.as_ref().and_then(|n| ports.get_mut(n)) {
                c.tx = counter(line, "tx pkts").unwrap_or(0);
                c.tx_drop = counter(line, "drop").unwrap_or(0);
            }
        }
    }
    ports
}

/// The number after `name=` in a comma-separated counter list.
fn counter(line: &str, name: &str) -> Option<u64> {
    line.split(',')
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.trim().parse().ok())
}

/// The label a datapath flow pushes: `push_mpls(label=1001,tc=0,…)` in its actions.
pub fn pushed_label(flow: &str) -> Option<u32> {
    flow.split("push_mpls(label=")
        .nth(1)?
        .split(',')
        .next()?
        .parse()
        .ok()
}

/// Sums the rules' `n_packets` by the label they set (`load:0x3e9->OXM_OF_MPLS_LABEL[]` or
/// `set_field:1001->mpls_label`, as ovs-ofctl prints it).
pub fn rule_packets_per_label(out: &str) -> BTreeMap<u32, u64> {
    let mut per_label = BTreeMap::new();
    for line in out.lines() {
        let Some(packets) = counter(line, "n_packets") else {
            continue;
        };
        if let Some(label) = rule_label(line) {
            *per_label.entry(label).or_insert(0) += packets;
        }
    }
    per_label
}

fn rule_label(rule: &str) -> Option<u32> {
    if let Some(rest) = rule.split("load:").nth(1) {
        let (value, field) = rest.split_once("->")?;
        if !field.starts_with("OXM_OF_MPLS_LABEL") {
            return None;
        }
        let hex = value.strip_prefix("0x")?;
        return u32::from_str_radix(hex, 16).ok();
    }
    let rest = rule.split("set_field:").nth(1)?;
    let (value, field) = rest.split_once("->")?;
    field
        .starts_with("mpls_label")
        .then(|| value.parse().ok())
        .flatten()
}

/// The lines of `pmd-stats-show` for the PMD threads (not the main thread) that say where
/// packets were classified, joined into one line.
pub fn summarize_pmd_stats(out: &str) -> String {
    let keep = [
        "packets received",
        "emc hits",
        "smc hits",
        "megaflow hits",
        "miss with success upcall",
        "miss with failed upcall",
        "avg processing cycles per packet",
    ];
    let mut parts = Vec::new();
    let mut in_pmd = false;
    for line in out.lines() {
        if !line.starts_with(' ') {
            in_pmd = line.starts_with("pmd thread");
            continue;
        }
        let line = line.trim();
        if in_pmd && keep.iter().any(|k| line.starts_with(k)) {
            // "avg processing cycles per packet: 497.17 (2050/41)": the ratio is enough.
            let short = line.split(" (").next().unwrap_or(line);
            parts.push(short.to_string());
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const UPCALL_SHOW: &str = "netdev@ovs-netdev:\n  flows         : (current 1000) (avg 984) (max 1000) (limit 16000)\n  dump duration : 1ms\n  ufid enabled : true\n\n  7: (keys 1000)\n";

    const DUMP_PORTS: &str = "OFPST_PORT reply (xid=0x2): 3 ports\n  port  1: rx pkts=15680352, bytes=940821120, drop=0, errs=0, frame=?, over=?, crc=?\n           tx pkts=0, bytes=0, drop=0, errs=0, coll=?\n  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0\n           tx pkts=0, bytes=0, drop=0, errs=0, coll=0\n  port  2: rx pkts=0, bytes=0, drop=0, errs=0, frame=?, over=?, crc=?\n           tx pkts=15680185, bytes=0, drop=7, errs=0, coll=?\n";

    #[test]
    fn reads_datapath_flows_and_dump_duration() {
        assert_eq!(
            parse_upcall_show(UPCALL_SHOW),
            Some(DatapathFlows {
                current: 1000,
                limit: 16000,
                dump_ms: 1
            })
        );
        assert_eq!(parse_upcall_show("netdev@ovs-netdev:\n"), None);
    }

    #[test]
    fn reads_cpu_time_from_proc_stat() {
        let stat = "4242 (ovs-vswitchd d) S 1 4242 4242 0 -1 4194560 9 0 0 0 1250 75 0 0 20 0 12";
        assert_eq!(cpu_seconds(stat), Some(13.25));
        assert_eq!(cpu_seconds("4242 (x) S 1"), None);
    }

    #[test]
    fn reads_port_counters() {
        let p = parse_dump_ports(DUMP_PORTS);
        assert_eq!(p["1"].rx, 15_680_352);
        assert_eq!(p["2"].tx, 15_680_185);
        assert_eq!(p["2"].tx_drop, 7);
        assert_eq!(p["LOCAL"], PortCounters::default());
    }

    #[test]
    fn reads_labels_of_datapath_flows_and_rules() {
        let flow = "recirc_id(0),in_port(3),packet_type(ns=0,id=0),eth(src=02:00:00:00:02:26,dst=02:00:00:00:00:a0),eth_type(0x0800),ipv4(src=10.0.2.38,tos=0/0xfc,ttl=64,frag=no), packets:24946, bytes:1496760, used:3.212s, actions:push_mpls(label=1007,tc=0,ttl=64,bos=1,eth_type=0x8847),2";
        assert_eq!(pushed_label(flow), Some(1007));
        assert_eq!(pushed_label("recirc_id(0), actions:2"), None);
        let rules = "NXST_FLOW reply (xid=0x4): flags=[more]\n cookie=0x0, duration=26.470s, table=0, n_packets=40904, n_bytes=2454240, idle_age=0, ip,in_port=1,dl_src=02:00:00:00:00:00,nw_src=10.0.0.0 actions=push_mpls:0x8847,load:0x3e9->OXM_OF_MPLS_LABEL[],output:2\n cookie=0x0, duration=26.469s, table=0, n_packets=6, n_bytes=2454300, idle_age=0, in_port=1,dl_src=02:00:00:00:00:01 actions=push_mpls:0x8847,set_field:1001->mpls_label,output:2\n cookie=0x0, n_packets=9, in_port=1 actions=output:2\n";
        assert_eq!(
            rule_packets_per_label(rules),
            BTreeMap::from([(1001, 40_910)])
        );
    }

    #[test]
    fn keeps_the_pmd_threads_classification_counters() {
        let out = "pmd thread numa_id 0 core_id 1:\n  packets received: 41236928\n  emc hits: 41056167\n  megaflow hits: 179274\n  miss with success upcall: 1000\n  avg processing cycles per packet: 497.17 (20501563991/41236928)\nmain thread:\n  packets received: 0\n  emc hits: 0\n";
        assert_eq!(
            summarize_pmd_stats(out),
            "packets received: 41236928, emc hits: 41056167, megaflow hits: 179274, \
             miss with success upcall: 1000, avg processing cycles per packet: 497.17"
        );
    }

    #[test]
    fn rules_push_the_label_with_or_without_the_rest_of_the_job() {
        let s = SubscriberPreload {
            port: 0,
            vlan: 0,
            inner_vlan: 0,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            isp: 1,
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
        };
        assert_eq!(
            subscriber_rule(&s, 1001, None),
            "in_port=1,dl_src=02:00:00:00:00:01,\
             actions=push_mpls:0x8847,set_field:1001->mpls_label,output:2"
        );
        let src = MacAddr([2, 0, 0, 0, 0, 0xc1]);
        let nh = MacAddr([2, 0, 0, 0, 1, 1]);
        assert_eq!(
            subscriber_rule(&s, 1001, Some((src, nh))),
            "ip,in_port=1,dl_src=02:00:00:00:00:01,nw_src=10.0.0.1,\
             actions=mod_dl_src:02:00:00:00:00:c1,mod_dl_dst:02:00:00:00:01:01,\
             push_mpls:0x8847,set_field:1001->mpls_label,output:2"
        );
    }
}
