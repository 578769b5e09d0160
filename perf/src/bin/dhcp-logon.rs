//! `perf/run dhcp-logon [--rate N] [--seconds S] [--clients C] [--rounds R]`: DHCP logons
//! (DORA) per second that perfdhcp completes through the `ispmux run` daemon, against the
//! anchor ISC `dhcrelay` (`-a`, option 82) in the same topology, relaying to the same Kea.
//!
//! Three namespaces: perfdhcp's (the subscribers, on `cli0`), the gateway's (`acc0` towards
//! the subscribers, `up0` the control link towards the ISP) and the ISP's (Kea on
//! 198.18.0.2). ispmux runs as the headend: `acc0` is its access port on `net_af_packet`,
//! so logons take the DPDK punt ring to the slow path and the replies the inject ring back;
//! the ISP side is its kernel UDP socket on `up0`; the subscribers are registered by
//! `ispmux subscriber import` (CSV) into a durable registry on disk, and every ACK is
//! committed (group commit) before it is answered and installed in the fast path. The
//! anchor is dhcrelay on the same two interfaces with kernel forwarding. perfdhcp is itself
//! a relay agent (it sets giaddr), so `acc0` is a trusted relay port for ispmux, and Kea's
//! answers reach perfdhcp through dhcrelay's namespace by kernel routing.
//!
//! Kea is restarted before every measurement (empty lease database) and ispmux starts from
//! a fresh registry. Each round measures both, back to back, alternating which goes first,
//! so drift in the machine's load hits both alike; the result line is the median round by
//! ratio (its ratio and its two rates; rounds defaults to 5, an odd count). The default
//! rate is above what Kea completes here, so Kea is saturated on both sides. Needs root,
//! `perfdhcp` (kea-admin), `dhcrelay` (isc-dhcp-relay), `kea-dhcp4` (kea-dhcp4-server).
//!
//! Last line: `dhcp-logon ratio=R ispmux=X logons/s anchor=Y logons/s`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ispmux_perf::{ispmux_bin, median, result_line};

const KEA: &str = "198.18.0.2";
const BASE_MAC: [u8; 4] = [0x02, 0x00, 0x5e, 0x00];

struct Args {
    rate: u32,
    seconds: u32,
    clients: u32,
    rounds: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        rate: 8000,
        seconds: 10,
        clients: 20_000,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v: u32 = it
            .next()
            .ok_or_else(|| anyhow!("{k} needs a value"))?
            .parse()
            .with_context(|| k.clone())?;
        match k.as_str() {
            "--rate" => a.rate = v,
            "--seconds" => a.seconds = v,
            "--clients" => a.clients = v.clamp(1, 65_536),
            "--rounds" => a.rounds = v.max(1),
            _ => bail!("usage: dhcp-logon [--rate N] [--seconds S] [--clients C] [--rounds R]"),
        }
    }
    Ok(a)
}

fn sh(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("{args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn stop(mut c: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
}

struct Lab {
    cli: String,
    gw: String,
    isp: String,
    dir: PathBuf,
    kea: Option<Child>,
}

impl Lab {
    fn new(clients: u32) -> Result<Lab> {
        let id = std::process::id();
        let lab = Lab {
            cli: format!("ispmux-pc-{id}"),
            gw: format!("ispmux-pg-{id}"),
            isp: format!("ispmux-pi-{id}"),
            dir: std::env::temp_dir().join(format!("ispmux-dhcp-logon-{id}")),
            kea: None,
        };
        std::fs::create_dir_all(&lab.dir)?;
        for ns in [&lab.cli, &lab.gw, &lab.isp] {
            sh(&["ip", "netns", "add", ns])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        lab.link(&format!("pc{id}"), &lab.cli, "cli0", &lab.gw, "acc0")?;
        lab.link(&format!("pu{id}"), &lab.gw, "up0", &lab.isp, "isp0")?;
        // perfdhcp binds its socket to an address of the interface it sends from.
        lab.ip(&lab.cli, &["addr", "add", "198.19.0.2/16", "dev", "cli0"])?;
        lab.ip(&lab.gw, &["addr", "add", "198.18.0.1/24", "dev", "up0"])?;
        lab.ip(&lab.isp, &["addr", "add", "198.18.0.2/24", "dev", "isp0"])?;
        // Kea answers the relay address perfdhcp put in giaddr: through the gateway.
        lab.ip(
            &lab.isp,
            &["route", "add", "198.19.0.0/16", "via", "198.18.0.1"],
        )?;
        let mut csv = String::from("mac,isp,customer_id\n");
        for i in 0..clients {
            let [_, _, hi, lo] = i.to_be_bytes();
            let [a, b, c, d] = BASE_MAC;
            csv.push_str(&format!(
                "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{hi:02x}:{lo:02x},isp-a,C{i}\n"
            ));
        }
        std::fs::write(lab.dir.join("subscribers.csv"), csv)?;
        Ok(lab)
    }

    fn ip(&self, ns: &str, args: &[&str]) -> Result<()> {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// A veth pair from `a_ns`/`a` to `b_ns`/`b`, up, offloads off (af_packet then sees
    /// frames with real checksums, as on a wire).
    fn link(&self, tmp: &str, a_ns: &str, a: &str, b_ns: &str, b: &str) -> Result<()> {
        let (ta, tb) = (format!("{tmp}a"), format!("{tmp}b"));
        sh(&[
            "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
        ])?;
        for (t, ns, n) in [(&ta, a_ns, a), (&tb, b_ns, b)] {
            sh(&["ip", "link", "set", t, "netns", ns])?;
            self.ip(ns, &["link", "set", t, "name", n])?;
            self.ip(ns, &["link", "set", n, "up"])?;
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "ethtool", "-K", n])
                .args(["tx", "off", "rx", "off", "tso", "off", "gso", "off"])
                .output();
        }
        Ok(())
    }

    fn exec(&self, ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    fn start_kea(&mut self) -> Result<()> {
        self.stop_kea();
        let cfg = serde_json::json!({ "Dhcp4": {
            "interfaces-config": { "interfaces": [format!("isp0/{KEA}")],
                                   "dhcp-socket-type": "udp" },
            "lease-database": { "type": "memfile", "persist": false },
            "valid-lifetime": 3600,
            "subnet4": [{ "id": 1, "subnet": "198.19.0.0/16",
                          "pools": [{ "pool": "198.19.1.0 - 198.19.255.254" }] }],
            "loggers": [{ "name": "kea-dhcp4", "severity": "WARN",
                          "output_options": [{ "output": self.dir.join("kea.log") }] }]
        }});
        let path = self.dir.join("kea.json");
        std::fs::write(&path, cfg.to_string())?;
        let child = self
            .exec(&self.isp, "kea-dhcp4")
            .arg("-c")
            .arg(&path)
            .env("KEA_LOCKFILE_DIR", &self.dir)
            .env("KEA_PIDFILE_DIR", &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("kea-dhcp4 (apt-get install kea-dhcp4-server)")?;
        self.kea = Some(child);
        self.wait_bound(&self.isp, &format!("{KEA}:67"))
    }

    fn stop_kea(&mut self) {
        if let Some(k) = self.kea.take() {
            stop(k);
        }
    }

    fn wait_bound(&self, ns: &str, addr: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let ss = self.exec(ns, "ss").arg("-Hlun").output()?;
            if String::from_utf8_lossy(&ss.stdout).contains(addr) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("nothing bound {addr} in {ns}")
    }

    fn perfdhcp(&self, a: &Args) -> Result<f64> {
        let out = self
            .exec(&self.cli, "perfdhcp")
            .args(["-4", "-l", "cli0"])
            .args(["-r", &a.rate.to_string(), "-p", &a.seconds.to_string()])
            .args(["-R", &a.clients.to_string()])
            .args(["-b", "mac=02:00:5e:00:00:00", "-W", "500000", "all"])
            .output()
            .context("perfdhcp (apt-get install kea-admin)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "Rate: 1998.3 4-way exchanges/second, expected rate: 2000"
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Rate: "))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                let err = String::from_utf8_lossy(&out.stderr);
                anyhow!("no rate in perfdhcp output:\n{text}\n{err}")
            })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_kea();
        for ns in [&self.cli, &self.gw, &self.isp] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn anchor(lab: &mut Lab, a: &Args) -> Result<f64> {
    lab.start_kea()?;
    lab.ip(&lab.gw, &["addr", "add", "198.19.0.1/16", "dev", "acc0"])?;
    let forwarding = |on: &str| {
        sh(&[
            "ip",
            "netns",
            "exec",
            &lab.gw,
            "sysctl",
            "-qw",
            &format!("net.ipv4.ip_forward={on}"),
        ])
    };
    forwarding("1")?;
    let relay = lab
        .exec(&lab.gw, "dhcrelay")
        .args(["-4", "-d", "-q", "-a", "-id", "acc0", "-iu", "up0", KEA])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("dhcrelay (apt-get install isc-dhcp-relay)")?;
    let rate = lab
        .wait_bound(&lab.gw, "0.0.0.0:67")
        .and_then(|()| lab.perfdhcp(a));
    stop(relay);
    forwarding("0")?;
    lab.ip(&lab.gw, &["addr", "del", "198.19.0.1/16", "dev", "acc0"])?;
    rate
}

fn gateway_config(dir: &Path, round: u32) -> String {
    format!(
        r#"[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"
file_prefix = "ispmux-dhcp-logon-{pid}-{round}"

[[port]]
name = "acc0"
device = "net_af_packet0,iface=acc0"
role = "access"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[control]
socket = "{dir}/gw.sock"

[store]
path = "{dir}/registry-{round}.db"

[dhcp]
relay_address = "198.18.0.1"
server_identifier = "198.19.0.1"
trusted_relay_ports = ["acc0"]   # perfdhcp is a relay agent

[[dhcp.isps]]
name = "isp-a"
servers = ["{KEA}"]
link_selection = "198.19.0.0"

[tables.limits]
max_subscribers = 65536
max_isps = 4

[[tables.isps]]
id = 1
name = "isp-a"
"#,
        pid = std::process::id(),
        dir = dir.display()
    )
}

/// What the daemon printed at exit that tells whether the run was clean.
fn slowpath_line(stdout: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with("slowpath "))
        .unwrap_or("(no slowpath line)")
        .to_owned()
}

fn ispmux(lab: &mut Lab, a: &Args, round: u32) -> Result<f64> {
    lab.start_kea()?;
    let bin = ispmux_bin()?;
    let conf = lab.dir.join(format!("gw-{round}.toml"));
    std::fs::write(&conf, gateway_config(&lab.dir, round))?;
    let import = Command::new(&bin)
        .args(["subscriber", "-c"])
        .arg(&conf)
        .arg("import")
        .arg(lab.dir.join("subscribers.csv"))
        .output()?;
    if !import.status.success() {
        bail!("import: {}", String::from_utf8_lossy(&import.stderr));
    }
    let out = std::fs::File::create(lab.dir.join("gw.out"))?;
    let err = std::fs::File::create(lab.dir.join("gw.err"))?;
    let daemon = lab
        .exec(&lab.gw, bin.to_str().context("path")?)
        .args(["run", "-c"])
        .arg(&conf)
        .stdout(out)
        .stderr(err)
        .spawn()
        .context("ispmux run")?;
    let sock = lab.dir.join("gw.sock");
    let ready = (|| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = Command::new(&bin)
                .args(["ctl", "--json", "-s"])
                .arg(&sock)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(lab.dir.join("gw.err")).unwrap_or_default();
        bail!("ispmux did not come up:\n{log}")
    })();
    let rate = ready.and_then(|()| lab.perfdhcp(a));
    stop(daemon);
    let stdout = std::fs::read_to_string(lab.dir.join("gw.out")).unwrap_or_default();
    eprintln!(
        "dhcp-logon: round {round}: ispmux {}",
        slowpath_line(&stdout)
    );
    rate
}

fn main() -> Result<()> {
    let a = args()?;
    let mut lab = Lab::new(a.clients)?;
    eprintln!(
        "dhcp-logon: {} rounds, perfdhcp -r {} for {} s over {} clients",
        a.rounds, a.rate, a.seconds, a.clients
    );
    let mut rounds = Vec::new();
    for round in 1..=a.rounds {
        // Alternate the order so a change in the machine's load hits both alike.
        let (o, y) = if round % 2 == 1 {
            let y = anchor(&mut lab, &a)?;
            (ispmux(&mut lab, &a, round)?, y)
        } else {
            let o = ispmux(&mut lab, &a, round)?;
            (o, anchor(&mut lab, &a)?)
        };
        eprintln!(
            "dhcp-logon: round {round}: ispmux {o:.0} logons/s, dhcrelay {y:.0} logons/s, ratio {:.3}",
            if y > 0.0 { o / y } else { 0.0 }
        );
        rounds.push((if y > 0.0 { o / y } else { 0.0 }, o, y));
    }
    lab.stop_kea();
    let ours: Vec<f64> = rounds.iter().map(|r| r.1).collect();
    let anchors: Vec<f64> = rounds.iter().map(|r| r.2).collect();
    eprintln!(
        "dhcp-logon: medians: ispmux {:.0} logons/s, dhcrelay {:.0} logons/s",
        median(&ours),
        median(&anchors)
    );
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (_, o, y) = rounds[(rounds.len() - 1) / 2];
    println!("{}", result_line("dhcp-logon", o, y, "logons/s"));
    Ok(())
}
