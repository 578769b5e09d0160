//! `perf/run api-provision [--rows N] [--batch B] [--rounds R] [--single-secs S]
//! [--single-clients K] [--clear-rows C] [--api-cpu CPU]`: subscribers created per second
//! through the provisioning API of a running `ispmux run` (TLS, an ISP's token), against
//! `ispmux subscriber import` of the same rows (CSV) into the same kind of store, in the same
//! run.
//!
//! Every measurement starts from a fresh store. Per round:
//! (a) a bulk import of N subscribers without passwords (default 1,000,000) as JSON bodies
//!     of B rows (default 100,000: the API's default `max_import_items`; at 1M rows a single
//!     body would also pass `max_body_bytes` of 64 MiB), sent one after the other;
//! (b) the same N subscribers, each with a `password_hash` (an Argon2id PHC string at the
//!     configured cost, which the server checks and stores as it is; 32 distinct hashes
//!     made up front are reused: checking costs the same whatever the string);
//! (c) single `POST .../subscribers` from K clients (default 4, one connection each) for S
//!     seconds (default 10): each is its own durable commit;
//! (d) a bulk of C rows with clear passwords (default 200), hashed by the API at the
//!     configured Argon2id cost (19 MiB, 2 passes) on its own threads: its rate is that
//!     cost's, reported apart;
//! and the anchor: `ispmux subscriber import` of the rows of (a) as CSV.
//!
//! Cores: the gateway's EAL lcores are mapped onto CPU 0 (`--lcores=2@0,3@0`; its ports are
//! `net_null` without receive, so the worker sleeps); the API gets CPU `--api-cpu` (default:
//! CPU 1) alone through `[api] cpus`, with its default 2 threads; the anchor runs pinned to
//! that same CPU; this client (its bodies built beforehand, TLS) on CPU 0. The figures of
//! each round go to stderr, the medians over the rounds to stdout; the last line is
//! `api-provision ratio=R ispmux=X subs/s anchor=Y subs/s`, X the median rate of (a) and Y
//! the anchor's.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ispmux_perf::{ispmux_bin, measured, median, result_line};
use ispmux_slowpath::registry::password::{self, PasswordCost};

/// The API's default Argon2id cost (`[api] argon2_m_kib`, `argon2_t`).
const COST: PasswordCost = PasswordCost {
    m_kib: 19_456,
    t: 2,
};

struct Args {
    rows: u32,
    batch: u32,
    rounds: u32,
    single_secs: u32,
    single_clients: u32,
    clear_rows: u32,
    api_cpu: u32,
}

fn args() -> Result<Args> {
    let mut a = Args {
        rows: 1_000_000,
        batch: 100_000,
        rounds: 3,
        single_secs: 10,
        single_clients: 4,
        clear_rows: 200,
        api_cpu: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v: u32 = it
            .next()
            .ok_or_else(|| anyhow!("{k} needs a value"))?
            .parse()
            .with_context(|| k.clone())?;
        match k.as_str() {
            "--rows" => a.rows = v.max(1),
            "--batch" => a.batch = v.max(1),
            "--rounds" => a.rounds = v.max(1),
            "--single-secs" => a.single_secs = v.max(1),
            "--single-clients" => a.single_clients = v.max(1),
            "--clear-rows" => a.clear_rows = v.max(1),
            "--api-cpu" => a.api_cpu = v,
            _ => bail!(
                "usage: api-provision [--rows N] [--batch B] [--rounds R] [--single-secs S] \
                 [--single-clients K] [--clear-rows C] [--api-cpu CPU]"
            ),
        }
    }
    if a.api_cpu == 0 {
        bail!("--api-cpu: CPU 0 carries the gateway's lcores and this client");
    }
    Ok(a)
}

/// Subscriber `i`'s MAC: locally administered, the index scattered over 40 bits (an odd
/// multiplier is a bijection), so the store's MAC index is written out of order as an ISP's
/// customer list would write it.
fn mac(i: u32) -> String {
    let x = u64::from(i).wrapping_mul(0x009E_3779_B97F) & 0x00ff_ffff_ffff;
    let b = x.to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[3], b[4], b[5], b[6], b[7]
    )
}

/// JSON import bodies of `batch` rows over subscribers `from..to`; `extra(i)` adds fields.
fn json_bodies(from: u32, to: u32, batch: u32, extra: &dyn Fn(u32) -> String) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = from;
    while start < to {
        let end = to.min(start + batch);
        let mut b = Vec::with_capacity((end - start) as usize * 160);
        b.push(b'[');
        for i in start..end {
            if i > start {
                b.push(b',');
            }
            let _ = write!(
                b,
                r#"{{"mac":"{}","customer_id":"C{i}"{}}}"#,
                mac(i),
                extra(i)
            );
        }
        b.push(b']');
        out.push(b);
        start = end;
    }
    out
}

/// A self-signed certificate for `localhost`: PEM cert and key, and the client's TLS setup
/// trusting it.
fn tls(dir: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    std::fs::write(dir.join("cert.pem"), ck.cert.pem())?;
    std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone())?;
    // ring, as the API's own server side (api/src/server.rs says why).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The working directory, the operator token's `[api]` line and the client's TLS.
struct Lab {
    dir: PathBuf,
    bin: PathBuf,
    operator_line: String,
    tls: Arc<rustls::ClientConfig>,
    api_cpu: u32,
    runs: u32,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running gateway with its API, on a fresh store.
struct Gateway {
    child: Option<Child>,
    port: u16,
    token: String,
    conf: PathBuf,
    log: PathBuf,
}

impl Gateway {
    /// The end of the gateway's log, for an error's context.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "ispmux run said:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        )
    }

    fn stop(&mut self) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                bail!("ispmux run did not stop within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Lab {
    fn new(api_cpu: u32) -> Result<Lab> {
        let dir = std::env::temp_dir().join(format!("ispmux-api-provision-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let bin = ispmux_bin()?;
        let tls = tls(&dir)?;
        let (_, operator_line) = ispmux_tests::operator_token(&bin).map_err(anyhow::Error::msg)?;
        Ok(Lab {
            dir,
            bin,
            operator_line,
            tls,
            api_cpu,
            runs: 0,
        })
    }

    /// A configuration over a fresh store `name`.db, the API on `port`.
    fn conf(&mut self, name: &str, port: u16) -> Result<PathBuf> {
        self.runs += 1;
        let db = self.dir.join(format!("{name}.db"));
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        let text = format!(
            r#"[eal]
lcores = [2, 3]
extra_args = ["--lcores=2@0,3@0"]
memory_mb = 256
hugepages = "off"
file_prefix = "api-provision-{pid}-{run}"

[[port]]
name = "acc"
device = "net_null0,no-rx=1"
role = "access"

[[port]]
name = "core"
device = "net_null1,no-rx=1"
role = "core"
twin = "apv{pid}"

[dataplane]
pipeline = "node"
idle_sleep = "on"

[store]
path = "{db}"

[control]
socket = "{dir}/ctl-{run}.sock"

[dhcp]
relay_address = "127.0.0.1"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["127.0.0.2"]

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = {{ label = 1001, port = "core", next_hop = "02:00:00:02:00:01" }}

[api]
listen = "127.0.0.1:{port}"
tls_cert = "{dir}/cert.pem"
tls_key = "{dir}/key.pem"
cpus = [{cpu}]
{op}
"#,
            pid = std::process::id(),
            run = self.runs,
            db = db.display(),
            dir = self.dir.display(),
            cpu = self.api_cpu,
            op = self.operator_line,
        );
        let path = self.dir.join(format!("{name}.toml"));
        std::fs::write(&path, text)?;
        Ok(path)
    }

    fn cli(&self, conf: &Path, args: &[&str]) -> Result<String> {
        let (cmd, rest) = args.split_first().context("a command")?;
        let out = Command::new(&self.bin)
            .arg(cmd)
            .arg("-c")
            .arg(conf)
            .args(rest)
            .output()?;
        if !out.status.success() {
            bail!("ispmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ispmux run` over a fresh store, its API answering, and an ISP token for isp-a.
    fn gateway(&mut self, name: &str) -> Result<Gateway> {
        let port = free_port()?;
        let conf = self.conf(name, port)?;
        let issued = self.cli(&conf, &["token", "issue", "--isp", "isp-a"])?;
        let token = issued
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .context("ispmux token issue printed no token")?
            .to_owned();
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = measured(Command::new(&self.bin).args(["run", "-c"]).arg(&conf))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("ispmux run")?;
        let mut gw = Gateway {
            child: Some(child),
            port,
            token,
            conf,
            log: log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = gw
                .child
                .as_mut()
                .map(|c| c.try_wait())
                .transpose()?
                .flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join(format!("{name}.log")))
                    .unwrap_or_default();
                bail!("the API never listened:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(gw)
    }

    fn agent(&self, port: u16) -> ureq::Agent {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        ureq::AgentBuilder::new()
            .tls_config(self.tls.clone())
            .resolver(move |_: &str| Ok(vec![addr]))
            .timeout(Duration::from_secs(600))
            .build()
    }
}

/// POSTs `body`, expecting 201; the answer's text.
fn post(agent: &ureq::Agent, gw: &Gateway, path: &str, body: &[u8]) -> Result<String> {
    let url = format!("https://localhost:{}/v1/isps/isp-a/{path}", gw.port);
    match agent
        .post(&url)
        .set("authorization", &format!("Bearer {}", gw.token))
        .set("content-type", "application/json")
        .send_bytes(body)
    {
        Ok(r) if r.status() == 201 => Ok(r.into_string()?),
        Ok(r) => bail!("{url}: {} {}", r.status(), r.into_string()?),
        Err(ureq::Error::Status(code, r)) => {
            bail!("{url}: {code} {}", r.into_string().unwrap_or_default())
        }
        Err(e) => Err(e.into()),
    }
}

/// Subscribers in the store of `conf`, as `ispmux subscriber list` counts them.
fn stored(lab: &Lab, conf: &Path) -> Result<u64> {
    let out = lab.cli(conf, &["subscriber", "list", "--isp", "isp-a"])?;
    Ok(out.lines().filter(|l| l.starts_with("02:")).count() as u64)
}

/// Sends `bodies` one after the other; subscribers per second.
fn bulk(lab: &mut Lab, name: &str, bodies: &[Vec<u8>], rows: u32) -> Result<f64> {
    let mut gw = lab.gateway(name)?;
    let agent = lab.agent(gw.port);
    let t = Instant::now();
    for b in bodies {
        post(&agent, &gw, "subscribers/import", b).with_context(|| gw.log_tail())?;
    }
    let secs = t.elapsed().as_secs_f64();
    gw.stop()?;
    // With ISPMUX_LOG=ispmux_api=debug the API times each import's reading, hashing and
    // storing: where the time went.
    let log = std::fs::read_to_string(&gw.log).unwrap_or_default();
    for l in log.lines().filter(|l| l.contains("api: bulk import")) {
        eprintln!("api-provision: {name}: {l}");
    }
    let n = stored(lab, &gw.conf)?;
    if n != u64::from(rows) {
        bail!("{name}: {n} subscribers stored, {rows} sent");
    }
    Ok(f64::from(rows) / secs)
}

/// Single POSTs from `clients` connections for `secs`; subscribers per second.
fn single(lab: &mut Lab, a: &Args) -> Result<f64> {
    let mut gw = lab.gateway("single")?;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let gw_ref = &gw;
    let t = Instant::now();
    let r: Result<()> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.single_clients)
            .map(|c| {
                let agent = lab.agent(gw_ref.port);
                let (stop, done) = (stop.clone(), done.clone());
                s.spawn(move || -> Result<()> {
                    // Client c's MACs: c, c + K, c + 2K, ...
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) {
                        let body = format!(r#"{{"mac":"{}","customer_id":"S{i}"}}"#, mac(i));
                        post(&agent, gw_ref, "subscribers", body.as_bytes())?;
                        done.fetch_add(1, Ordering::Relaxed);
                        i += a.single_clients;
                    }
                    Ok(())
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(u64::from(a.single_secs)));
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().map_err(|_| anyhow!("a client panicked"))??;
        }
        Ok(())
    });
    let secs = t.elapsed().as_secs_f64();
    r.with_context(|| gw.log_tail())?;
    gw.stop()?;
    let sent = done.load(Ordering::Relaxed);
    let n = stored(lab, &gw.conf)?;
    if n != sent {
        bail!("single: {n} subscribers stored, {sent} answered 201");
    }
    Ok(sent as f64 / secs)
}

/// `ispmux subscriber import` of the same rows as CSV into a fresh store, pinned to the
/// API's CPU; subscribers per second (the whole command, as an operator runs it).
fn anchor(lab: &mut Lab, csv: &Path, rows: u32) -> Result<f64> {
    let conf = lab.conf("anchor", free_port()?)?;
    // The store created and migrated, as the gateway's own start does before the API runs.
    lab.cli(&conf, &["subscriber", "list"])?;
    let t = Instant::now();
    let out = measured(
        Command::new("taskset")
            .args(["-c", &lab.api_cpu.to_string()])
            .arg(&lab.bin)
            .args(["subscriber", "-c"])
            .arg(&conf)
            .arg("import")
            .arg(csv),
    )
    .output()
    .context("taskset ispmux subscriber import")?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("import: {}", String::from_utf8_lossy(&out.stderr));
    }
    let n = stored(lab, &conf)?;
    if n != u64::from(rows) {
        bail!("anchor: {n} subscribers stored, {rows} in the CSV");
    }
    Ok(f64::from(rows) / secs)
}

fn pin_self(cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

fn main() -> Result<()> {
    let a = args()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if a.api_cpu as usize >= cpus {
        bail!("--api-cpu {}: this machine has {cpus} CPUs", a.api_cpu);
    }
    pin_self(0)?;
    let mut lab = Lab::new(a.api_cpu)?;
    eprintln!(
        "api-provision: {} rounds; {} rows in bodies of {}; single POSTs {} s from {} clients; \
         {} clear passwords (argon2id m={} KiB t={}); API on CPU {}, lcores and client on CPU 0; \
         load {}",
        a.rounds,
        a.rows,
        a.batch,
        a.single_secs,
        a.single_clients,
        a.clear_rows,
        COST.m_kib,
        COST.t,
        a.api_cpu,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let plain = json_bodies(0, a.rows, a.batch, &|_| String::new());
    let hashes: Vec<String> = (0..32)
        .map(|i| password::hash(format!("pw-{i}").as_bytes(), COST))
        .collect::<Result<_, _>>()?;
    let hashed = json_bodies(0, a.rows, a.batch, &|i| {
        format!(
            r#","password_hash":"{}""#,
            hashes[i as usize % hashes.len()]
        )
    });
    let clear = json_bodies(0, a.clear_rows, a.clear_rows, &|i| {
        format!(r#","password":"pw-{i}""#)
    });
    let csv = lab.dir.join("subscribers.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(f, "mac,isp,customer_id")?;
        for i in 0..a.rows {
            writeln!(f, "{},isp-a,C{i}", mac(i))?;
        }
    }
    let mut figures: [Vec<f64>; 5] = Default::default();
    for round in 1..=a.rounds {
        // Alternate the anchor's place so a change in the machine's load hits both alike.
        let y0 = if round % 2 == 1 {
            Some(anchor(&mut lab, &csv, a.rows)?)
        } else {
            None
        };
        let x = bulk(&mut lab, "bulk", &plain, a.rows)?;
        let h = bulk(&mut lab, "prehashed", &hashed, a.rows)?;
        let s = single(&mut lab, &a)?;
        let c = bulk(&mut lab, "clear", &clear, a.clear_rows)?;
        let y = match y0 {
            Some(y) => y,
            None => anchor(&mut lab, &csv, a.rows)?,
        };
        eprintln!(
            "api-provision: round {round}: bulk {x:.0}, pre-hashed {h:.0}, single {s:.0}, \
             clear passwords {c:.1}, anchor {y:.0} subs/s; ratio {:.3}",
            x / y
        );
        for (v, f) in figures.iter_mut().zip([x, h, s, c, y]) {
            v.push(f);
        }
    }
    let [x, h, s, c, y] = figures.map(|v| median(&v));
    println!(
        "api-provision bulk, no passwords (JSON bodies of {}, TLS): {x:.0} subs/s",
        a.batch
    );
    println!("api-provision bulk, pre-hashed argon2id PHC passwords: {h:.0} subs/s");
    println!(
        "api-provision single POSTs ({} clients): {s:.0} subs/s",
        a.single_clients
    );
    println!(
        "api-provision bulk, clear passwords (argon2id m={} KiB t={}, API threads on 1 CPU): {c:.1} subs/s",
        COST.m_kib, COST.t
    );
    println!("api-provision anchor, ispmux subscriber import (CSV): {y:.0} subs/s");
    println!("{}", result_line("api-provision", x, y, "subs/s"));
    Ok(())
}
