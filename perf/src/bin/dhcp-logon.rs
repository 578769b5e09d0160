//! `perf/run dhcp-logon [--rate N] [--seconds S] [--clients C]`: DHCP logons (DORA) per
//! second that perfdhcp completes through ispmux's logon service, against the anchor ISC
//! `dhcrelay` (`-a`, option 82), both relaying to the same Kea configuration in this run.
//!
//! Three namespaces: perfdhcp's (the subscribers, broadcast on `cli0`), the gateway's
//! (`acc0` towards the subscribers, `up0` towards the ISP) and the ISP's (Kea on
//! 198.18.0.2). ispmux runs its `LogonService` with a durable file registry (commits in its
//! writer thread, installs and replies released after them); its subscriber
//! side is an AF_PACKET socket on `acc0` standing in for DPDK's punt/inject rings (the
//! frames and the engine are the same). Kea is restarted between the runs so both start
//! from an empty lease database. Needs root, `perfdhcp` (kea-admin), `dhcrelay`
//! (isc-dhcp-relay), `kea-dhcp4` (kea-dhcp4-server).
//!
//! Last line: `dhcp-logon ratio=R ispmux=X logons/s anchor=Y logons/s`.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use ispmux_conf::dhcp::{DhcpConfig, IspDhcpConfig, RateLimitConfig};
use ispmux_slowpath::dhcp::service::LogonService;
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{import, Isp, Registry};
use pnet_datalink::Channel;

const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const KEA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The gateway's address on the access side: dhcrelay's giaddr, ispmux's server identifier.
const ACCESS: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
const BASE_MAC: [u8; 4] = [0x02, 0x00, 0x5e, 0x00];

struct Args {
    rate: u32,
    seconds: u32,
    clients: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        rate: 2000,
        seconds: 10,
        clients: 20_000,
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
            "--clients" => a.clients = v.min(65_536),
            _ => bail!("usage: dhcp-logon [--rate N] [--seconds S] [--clients C]"),
        }
    }
    Ok(a)
}

fn sh(args: &[&str]) -> Result<()> {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .with_context(|| format!("{args:?}"))?;
    if !st.success() {
        bail!("{args:?}: {st}");
    }
    Ok(())
}

struct Lab {
    cli: String,
    gw: String,
    isp: String,
    dir: PathBuf,
    kea: Option<Child>,
}

impl Lab {
    fn new() -> Result<Lab> {
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
        let link = |a: &str, ans: &str, an: &str, b: &str, bns: &str, bn: &str| -> Result<()> {
            sh(&["ip", "link", "add", a, "type", "veth", "peer", "name", b])?;
            sh(&["ip", "link", "set", a, "netns", ans])?;
            sh(&["ip", "link", "set", b, "netns", bns])?;
            sh(&["ip", "-n", ans, "link", "set", a, "name", an])?;
            sh(&["ip", "-n", bns, "link", "set", b, "name", bn])?;
            sh(&["ip", "-n", ans, "link", "set", an, "up"])?;
            sh(&["ip", "-n", bns, "link", "set", bn, "up"])
        };
        link(
            &format!("pc{id}"),
            &lab.cli,
            "cli0",
            &format!("pa{id}"),
            &lab.gw,
            "acc0",
        )?;
        link(
            &format!("pu{id}"),
            &lab.gw,
            "up0",
            &format!("pk{id}"),
            &lab.isp,
            "isp0",
        )?;
        sh(&[
            "ip",
            "-n",
            &lab.gw,
            "addr",
            "add",
            "198.19.0.1/16",
            "dev",
            "acc0",
        ])?;
        // perfdhcp binds its socket to an address of the interface it sends from.
        sh(&[
            "ip",
            "-n",
            &lab.cli,
            "addr",
            "add",
            "198.19.0.2/16",
            "dev",
            "cli0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &lab.gw,
            "addr",
            "add",
            "198.18.0.1/24",
            "dev",
            "up0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &lab.isp,
            "addr",
            "add",
            "198.18.0.2/24",
            "dev",
            "isp0",
        ])?;
        sh(&[
            "ip",
            "-n",
            &lab.isp,
            "route",
            "add",
            "198.19.0.0/16",
            "via",
            "198.18.0.1",
        ])?;
        Ok(lab)
    }

    fn start_kea(&mut self) -> Result<()> {
        if let Some(mut k) = self.kea.take() {
            k.kill().ok();
            k.wait().ok();
        }
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
        let child = Command::new("ip")
            .args(["netns", "exec", &self.isp, "kea-dhcp4", "-c"])
            .arg(&path)
            .env("KEA_LOCKFILE_DIR", &self.dir)
            .env("KEA_PIDFILE_DIR", &self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("kea-dhcp4")?;
        self.kea = Some(child);
        wait_bound(&self.isp, &format!("{KEA}:67"))
    }

    fn perfdhcp(&self, a: &Args) -> Result<f64> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.cli, "perfdhcp", "-4", "-l", "cli0"])
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
        if let Some(mut k) = self.kea.take() {
            k.kill().ok();
            k.wait().ok();
        }
        for ns in [&self.cli, &self.gw, &self.isp] {
            Command::new("ip").args(["netns", "del", ns]).status().ok();
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn wait_bound(ns: &str, addr: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let ss = Command::new("ip")
            .args(["netns", "exec", ns, "ss", "-Hlun"])
            .output()?;
        if String::from_utf8_lossy(&ss.stdout).contains(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("nothing bound {addr} in {ns}")
}

fn anchor(lab: &mut Lab, a: &Args) -> Result<f64> {
    lab.start_kea()?;
    // perfdhcp is itself a relay (giaddr = its address), so Kea answers it directly and
    // dhcrelay, a second relay, only carries requests; the gateway namespace routes the
    // answers. That makes the anchor's path lighter than ispmux's, which answers as server.
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.gw,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ])?;
    let mut relay = Command::new("ip")
        .args(["netns", "exec", &lab.gw, "dhcrelay", "-4", "-d", "-q", "-a"])
        .args(["-id", "acc0", "-iu", "up0", &KEA.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("dhcrelay (apt-get install isc-dhcp-relay)")?;
    std::thread::sleep(Duration::from_millis(500));
    let rate = lab.perfdhcp(a);
    relay.kill().ok();
    relay.wait().ok();
    sh(&[
        "ip",
        "netns",
        "exec",
        &lab.gw,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=0",
    ])?;
    rate
}

fn registry(db: &Path, clients: u32) -> Result<Registry> {
    let mut reg = Registry::open(db)?;
    reg.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: None,
        dhcp_servers: vec![KEA],
    })?;
    let mut csv = String::from("mac,isp,customer_id\n");
    for i in 0..clients.max(1) {
        let [_, _, hi, lo] = i.to_be_bytes();
        let m = MacAddr([BASE_MAC[0], BASE_MAC[1], BASE_MAC[2], BASE_MAC[3], hi, lo]);
        csv.push_str(&format!("{m},isp-a,C{i}\n"));
    }
    import::import_csv(&mut reg, csv.as_bytes())?;
    Ok(reg)
}

fn ispmux(lab: &mut Lab, a: &Args) -> Result<f64> {
    lab.start_kea()?;
    let db = lab.dir.join("registry.db");
    drop(registry(&db, a.clients)?);
    let cfg = DhcpConfig {
        relay_address: RELAY,
        server_identifier: ACCESS,
        require_credential: false,
        trusted_relay_ports: vec![1], // perfdhcp is a relay agent
        server_timeout_ms: 1000,
        rate_limit: RateLimitConfig::default(),
        isps: vec![IspDhcpConfig {
            name: "isp-a".into(),
            servers: vec![KEA],
            link_selection: Some(Ipv4Addr::new(198, 19, 0, 0)),
        }],
    };
    let stop = Arc::new(AtomicBool::new(false));
    let gw_ns = lab.gw.clone();
    let flag = stop.clone();
    let gateway = std::thread::spawn(move || -> Result<u64> {
        let f = File::open(format!("/var/run/netns/{gw_ns}"))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == "acc0")
            .ok_or_else(|| anyhow!("no acc0"))?;
        let mac = MacAddr(iface.mac.map(|m| m.octets()).unwrap_or([2, 0, 0, 0, 0, 1]));
        let pcfg = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(1)),
            read_buffer_size: 1 << 16,
            ..Default::default()
        };
        let Ok(Channel::Ethernet(mut tx, mut rx)) = pnet_datalink::channel(&iface, pcfg) else {
            bail!("AF_PACKET on acc0");
        };
        let (mut svc, _) = LogonService::start_with_writer(&cfg, &db, mac, SystemTime::now())?;
        while !flag.load(Ordering::Relaxed) {
            for _ in 0..64 {
                let Ok(frame) = rx.next() else { break };
                let frame = frame.to_vec();
                svc.punt(SystemTime::now(), 1, &frame);
            }
            svc.poll_isp(SystemTime::now())?;
            let now = SystemTime::now();
            if svc.next_deadline().is_some_and(|d| d <= now) {
                svc.tick(now);
            }
            for f in svc.flush().inject {
                if let Some(Err(e)) = tx.send_to(&f.frame, None) {
                    return Err(e.into());
                }
            }
        }
        Ok(svc.engine().counters().installs)
    });
    std::thread::sleep(Duration::from_millis(300));
    let rate = lab.perfdhcp(a);
    stop.store(true, Ordering::Relaxed);
    let installs = gateway
        .join()
        .map_err(|_| anyhow!("gateway thread panicked"))??;
    eprintln!("dhcp-logon: ispmux installed {installs} bindings");
    rate
}

fn main() -> Result<()> {
    let a = args()?;
    let mut lab = Lab::new()?;
    let anchor = anchor(&mut lab, &a)?;
    eprintln!("dhcp-logon: dhcrelay {anchor:.0} logons/s");
    let ours = ispmux(&mut lab, &a)?;
    eprintln!("dhcp-logon: ispmux {ours:.0} logons/s");
    println!(
        "dhcp-logon ratio={:.2} ispmux={ours:.0} logons/s anchor={anchor:.0} logons/s",
        if anchor > 0.0 { ours / anchor } else { 0.0 }
    );
    Ok(())
}
