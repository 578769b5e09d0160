//! Access-Request round trips per second through the ispmux RADIUS proxy and, in the same run
//! with the same load generator and the same home server, through FreeRADIUS configured as the
//! equivalent proxy (realm -> home server pool). The home server is a fast responder written
//! here; its own rate is measured too, to show it is not the bottleneck.
//!
//! Usage: radius-proxy [--inflight N] [--seconds S] [--rounds R] [--rate N] [--pin]
//!   [--busy-poll-us N]
//! Last line: `radius-proxy ratio=R ispmux=X req/s anchor=Y req/s`.
//!
//! CPU placement (`--pin`, off by default): with two CPUs or more, the proxy under test
//! (ispmux's proxy thread, FreeRADIUS's whole process) gets a CPU of its own and the load
//! generator and the responder share another. Measured on the 2-vCPU development VM, pinning
//! keeps the load's threads from preempting the proxy, but every request then crosses CPUs
//! four times, each time waking a halted vCPU: the open loop's added p50 rose from ~35 to
//! ~100-160 us and its p99 did not improve, so by default the scheduler places the threads.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use ispmux_conf::radius::RadiusConfig;
use ispmux_perf::{median, result_line};
use ispmux_slowpath::radius::transport::ProxyHandle;
use ispmux_slowpath::radius::{attr, crypto, packet, Code, Packet};
use ispmux_slowpath::udp_batch::{RecvBatch, SendBatch};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use rand::RngCore;

const NAS_SECRET: &[u8] = b"bench-nas";
const HOME_SECRET: &str = "bench-home";

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Moves the calling thread to `cpu` alone; threads and processes it starts afterwards
/// inherit that.
fn run_on(cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).context("CPU number")?;
    sched_setaffinity(Pid::from_raw(0), &set).context("sched_setaffinity")
}

/// Moves this process's threads named `name` to `cpu`.
fn move_threads(name: &str, cpu: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).context("CPU number")?;
    for t in fs::read_dir("/proc/self/task")?.flatten() {
        if fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name) {
            if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
                sched_setaffinity(Pid::from_raw(tid), &set).context("sched_setaffinity")?;
            }
        }
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Datagrams per recvmmsg/sendmmsg call of the responder and the load generator.
const BATCH: usize = 64;

/// A loopback socket with buffers of 4 MiB, as the proxies ask for theirs: with the default
/// ~200 KiB, about 300 datagrams, a burst of answers after a proxy was kept off the CPU for a
/// few milliseconds overflows it and is counted as lost.
fn bench_socket() -> Result<UdpSocket> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    ispmux_slowpath::udp_batch::enlarge_buffers(&sock, 4 << 20);
    Ok(sock)
}

/// The fast home server: accepts every Access-Request, echoing Proxy-State. One thread; a
/// batch of requests per recvmmsg, their answers per sendmmsg, built in reused buffers
/// without decoding, so that it costs each proxy as little CPU as possible per request.
struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// The answer to `req` in `out` (reused): Access-Accept or Accounting-Response with the
/// request's Proxy-State, signed with the home server's secret. False for anything else.
fn answer_into(req: &[u8], out: &mut Vec<u8>) -> bool {
    let Ok(raw) = packet::frame(req) else {
        return false;
    };
    let code = match Code(raw[0]) {
        Code::ACCESS_REQUEST | Code::STATUS_SERVER => Code::ACCESS_ACCEPT,
        Code::ACCOUNTING_REQUEST => Code::ACCOUNTING_RESPONSE,
        _ => return false,
    };
    out.clear();
    out.extend_from_slice(&[code.0, raw[1], 0, 0]);
    out.extend_from_slice(&raw[4..packet::HEADER_LEN]);
    for (_, typ, v) in packet::attributes(raw) {
        if typ == attr::PROXY_STATE {
            out.push(typ);
            out.push((v.len() + 2) as u8);
            out.extend_from_slice(v);
        }
    }
    let len = (out.len() as u16).to_be_bytes();
    out[2..4].copy_from_slice(&len);
    crypto::sign_response(out, HOME_SECRET.as_bytes());
    true
}

impl Responder {
    fn start() -> Result<Responder> {
        let sock = bench_socket()?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (s2, a2) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let mut rx = RecvBatch::new(BATCH);
            let mut tx = SendBatch::new(BATCH);
            let mut answers: Vec<(Vec<u8>, SocketAddr)> = (0..BATCH)
                .map(|_| (Vec::with_capacity(256), addr))
                .collect();
            while !s2.load(Ordering::Relaxed) {
                let Ok(n) = rx.recv(&sock, true) else {
                    continue;
                };
                let mut k = 0;
                for i in 0..n {
                    let (Some((data, Some(from))), Some(slot)) = (rx.get(i), answers.get_mut(k))
                    else {
                        continue;
                    };
                    if answer_into(data, &mut slot.0) {
                        slot.1 = from;
                        k += 1;
                    }
                }
                let sent = tx.send(&sock, &answers[..k], &mut |_, _| {});
                a2.fetch_add(sent.sent as u64, Ordering::Relaxed);
            }
        });
        Ok(Responder {
            addr,
            stop,
            answered,
            thread: Some(thread),
        })
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Load {
    rate: f64,
    p50_us: u64,
    p99_us: u64,
    lost: u64,
    /// Open loop: sends that were due while all 256 Identifiers were outstanding (the target
    /// was stalled for 256 intervals); their latency is missing from the histogram.
    unsent: u64,
}

/// Access-Requests of one user, made from one encoded template: only the identifier, the
/// Request Authenticator and the hidden User-Password change.
struct Requests {
    template: Vec<u8>,
    password_at: usize,
    secret: Vec<u8>,
    rng: rand::rngs::StdRng,
}

impl Requests {
    fn new(user: &str, secret: &[u8]) -> Result<Requests> {
        let mut p = Packet::new(Code::ACCESS_REQUEST, 0, [0; 16]);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(attr::USER_PASSWORD, vec![0; 16]);
        p.push(attr::NAS_IP_ADDRESS, vec![127, 0, 0, 1]);
        let template = crypto::encode_request(&p, secret)?;
        let password_at = packet::HEADER_LEN + 2 + user.len() + 2;
        Ok(Requests {
            template,
            password_at,
            secret: secret.to_vec(),
            rng: rand::SeedableRng::from_entropy(),
        })
    }

    /// Request `id` into `out` (reused); returns its authenticator.
    fn make(&mut self, id: u8, out: &mut Vec<u8>) -> Result<[u8; 16]> {
        let mut auth = [0u8; 16];
        self.rng.fill_bytes(&mut auth);
        let hidden =
            crypto::hide_password(b"benchpw", &self.secret, &auth).map_err(anyhow::Error::msg)?;
        out.clear();
        out.extend_from_slice(&self.template);
        out[1] = id;
        out[4..20].copy_from_slice(&auth);
        out[self.password_at..self.password_at + 16].copy_from_slice(&hidden);
        Ok(auth)
    }
}

/// Whether `data` answers the outstanding request of its identifier with an Access-Accept;
/// an answer to nothing outstanding, or with a wrong authenticator, is ignored (`None`).
fn settle(
    data: &[u8],
    secret: &[u8],
    outstanding: &mut [Option<(Instant, [u8; 16])>],
) -> Option<(Instant, bool)> {
    let id = usize::from(*data.get(1)?);
    let (sent, auth) = (*outstanding.get(id)?)?;
    if !crypto::check_response_authenticator(data, secret, &auth) {
        return None;
    }
    outstanding[id] = None;
    // Only an Access-Accept is a logon proxied through to the home server.
    Some((sent, data.first() == Some(&Code::ACCESS_ACCEPT.0)))
}

/// Closed loop: keeps `inflight` Access-Requests outstanding toward `target` for `secs`
/// seconds (after a one-second warm-up) and measures completed round trips. One thread,
/// requests sent and answers read a batch per system call.
fn load(target: SocketAddr, secret: &[u8], user: &str, inflight: usize, secs: u64) -> Result<Load> {
    let sock = bench_socket()?;
    sock.set_read_timeout(Some(Duration::from_millis(5)))?;
    let mut reqs = Requests::new(user, secret)?;
    let mut rx = RecvBatch::new(256);
    let mut tx = SendBatch::new(BATCH);
    let mut batch: Vec<(Vec<u8>, SocketAddr)> = (0..256)
        .map(|_| (Vec::with_capacity(128), target))
        .collect();
    let mut fresh: Vec<usize> = Vec::with_capacity(256);
    let mut outstanding: Vec<Option<(Instant, [u8; 16])>> = vec![None; 256];
    let mut in_flight = 0usize;
    let mut next_id = 0u8;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3)?;
    let start = Instant::now();
    let warm = start + Duration::from_secs(1);
    let end = warm + Duration::from_secs(secs);
    let (mut done, mut lost, mut refused) = (0u64, 0u64, 0u64);
    let mut last_sweep = Instant::now();
    let want = inflight.clamp(1, 255);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut k = 0;
        fresh.clear();
        while in_flight + k < want {
            while outstanding[usize::from(next_id)].is_some() {
                next_id = next_id.wrapping_add(1);
            }
            let auth = reqs.make(next_id, &mut batch[k].0)?;
            outstanding[usize::from(next_id)] = Some((now, auth));
            fresh.push(usize::from(next_id));
            next_id = next_id.wrapping_add(1);
            k += 1;
        }
        if k > 0 {
            // Timed from just before the send: on loopback the peer may answer within it.
            let t0 = Instant::now();
            for &id in &fresh {
                if let Some((sent, _)) = outstanding[id].as_mut() {
                    *sent = t0;
                }
            }
            tx.send(&sock, &batch[..k], &mut |_, _| {});
            in_flight += k;
        }
        let n = rx.recv(&sock, true)?;
        let t = Instant::now();
        for i in 0..n {
            let Some((data, _)) = rx.get(i) else { continue };
            let Some((sent, accepted)) = settle(data, secret, &mut outstanding) else {
                continue;
            };
            in_flight -= 1;
            if !accepted {
                refused += 1;
            } else if sent >= warm {
                done += 1;
                hist.saturating_record(t.duration_since(sent).as_micros() as u64);
            }
        }
        if t.duration_since(last_sweep) > Duration::from_millis(200) {
            last_sweep = t;
            for o in outstanding.iter_mut() {
                if o.is_some_and(|(sent, _)| t.duration_since(sent) >= Duration::from_secs(2)) {
                    *o = None;
                    lost += 1;
                    in_flight -= 1;
                }
            }
        }
    }
    if refused > 0 {
        bail!("{target}: {refused} logons were not accepted: not a proxy of the responder");
    }
    Ok(Load {
        rate: done as f64 / secs.max(1) as f64,
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        lost,
        unsent: 0,
    })
}

/// Open loop: Access-Requests sent at a fixed `rate` whatever the answers do (so queueing in
/// the generator does not hide the proxy's latency), answers read by a second thread. The
/// latency is from the send to the answer's arrival.
fn open_loop(target: SocketAddr, secret: &[u8], user: &str, rate: f64, secs: u64) -> Result<Load> {
    let sock = bench_socket()?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let reader = sock.try_clone()?;
    let outstanding = Arc::new(Mutex::new(vec![None::<(Instant, [u8; 16])>; 256]));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let warm = start + Duration::from_secs(1);
    let end = warm + Duration::from_secs(secs);
    let (o2, s2, secret2) = (outstanding.clone(), stop.clone(), secret.to_vec());
    let receiver = std::thread::spawn(move || -> Result<(Histogram<u64>, u64, u64)> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3)?;
        let (mut done, mut refused) = (0u64, 0u64);
        let mut buf = [0u8; 4096];
        while !s2.load(Ordering::Relaxed) {
            let Ok((n, _)) = reader.recv_from(&mut buf) else {
                continue;
            };
            let t = Instant::now();
            let settled = {
                let mut o = o2.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                settle(&buf[..n], &secret2, &mut o)
            };
            match settled {
                Some((_, false)) => refused += 1,
                Some((sent, true)) if sent >= warm => {
                    done += 1;
                    hist.saturating_record(t.duration_since(sent).as_micros() as u64);
                }
                _ => {}
            }
        }
        Ok((hist, done, refused))
    });
    let mut reqs = Requests::new(user, secret)?;
    let mut buf = Vec::with_capacity(128);
    let mut next_id = 0u8;
    let mut skipped = 0u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut due = start;
    while due < end {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        due += interval;
        let free = {
            let o = outstanding
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            (0..256u16)
                .map(|i| next_id.wrapping_add(i as u8))
                .find(|&id| o[usize::from(id)].is_none())
        };
        let Some(id) = free else {
            // 256 outstanding: the target is far behind the offered rate.
            skipped += 1;
            continue;
        };
        next_id = id.wrapping_add(1);
        let auth = reqs.make(id, &mut buf)?;
        let t0 = Instant::now();
        outstanding
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?[usize::from(id)] = Some((t0, auth));
        sock.send_to(&buf, target)?;
    }
    // Answers still on their way get a moment.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (hist, done, refused) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    if refused > 0 {
        bail!("{target}: {refused} logons were not accepted: not a proxy of the responder");
    }
    let lost = outstanding
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .iter()
        .filter(|o| o.is_some())
        .count() as u64;
    Ok(Load {
        rate: done as f64 / secs.max(1) as f64,
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        lost,
        unsent: skipped,
    })
}

/// FreeRADIUS as the equivalent proxy: realm msp.example -> pool of the responder.
struct FreeRadiusProxy {
    child: Child,
    addr: SocketAddr,
}

impl FreeRadiusProxy {
    fn start(dir: &Path, home: SocketAddr) -> Result<FreeRadiusProxy> {
        let bin = ["/usr/sbin/freeradius", "/usr/sbin/radiusd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .context("FreeRADIUS is not installed (apt-get install freeradius)")?;
        let raddb = dir.join("raddb");
        let st = Command::new("cp")
            .args(["-a", "/etc/freeradius/3.0"])
            .arg(&raddb)
            .status()?;
        if !st.success() {
            bail!("copy of /etc/freeradius/3.0 failed");
        }
        let _ = fs::remove_file(raddb.join("mods-enabled/eap"));
        for e in fs::read_dir(raddb.join("sites-enabled"))? {
            let _ = fs::remove_file(e?.path());
        }
        let d = dir.display();
        let conf: Vec<String> = fs::read_to_string(raddb.join("radiusd.conf"))?
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("user = ") || t.starts_with("group = "))
            })
            .map(|l| {
                if l.starts_with("logdir = ") {
                    format!("logdir = {d}/log")
                } else if l.starts_with("raddbdir = ") {
                    format!("raddbdir = {d}/raddb")
                } else if l.starts_with("run_dir = ") {
                    format!("run_dir = {d}/run")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        fs::write(raddb.join("radiusd.conf"), conf.join("\n"))?;
        fs::create_dir_all(dir.join("log"))?;
        fs::create_dir_all(dir.join("run"))?;
        fs::write(
            raddb.join("clients.conf"),
            format!(
                "client nas {{\nipaddr = 127.0.0.0/8\nsecret = {}\n}}\n",
                String::from_utf8_lossy(NAS_SECRET)
            ),
        )?;
        fs::write(
            raddb.join("proxy.conf"),
            format!(
                "proxy server {{\ndefault_fallback = no\n}}\n\
                 home_server responder {{\ntype = auth\nipaddr = 127.0.0.1\nport = {}\nsecret = {HOME_SECRET}\n\
                 response_window = 20\nzombie_period = 40\nstatus_check = none\n\
                 max_outstanding = 65536\n}}\n\
                 home_server_pool master_pool {{\ntype = fail-over\nhome_server = responder\n}}\n\
                 realm msp.example {{\nauth_pool = master_pool\nnostrip\n}}\n",
                home.port()
            ),
        )?;
        let port = free_port()?;
        fs::write(
            raddb.join("sites-enabled/bench"),
            format!(
                "server bench {{\nlisten {{\ntype = auth\nipaddr = 127.0.0.1\nport = {port}\n\
                 recv_buff = 4194304\n}}\n\
                 authorize {{\nsuffix\n}}\nauthenticate {{\n}}\npre-proxy {{\n}}\npost-proxy {{\n}}\n\
                 post-auth {{\n}}\n}}\n"
            ),
        )?;
        let log = fs::File::create(dir.join("freeradius.out"))?;
        let child = Command::new(bin)
            .args(["-f", "-l", "stdout", "-n", "radiusd", "-d"])
            .arg(&raddb)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start freeradius")?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut p = FreeRadiusProxy { child, addr };
        // Ready once a logon goes through it.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            {
                let c = UdpSocket::bind("127.0.0.1:0")?;
                c.set_read_timeout(Some(Duration::from_millis(300)))?;
                let mut req = Packet::new(Code::ACCESS_REQUEST, 1, [3; 16]);
                req.push(attr::USER_NAME, b"probe@msp.example".to_vec());
                req.push(
                    attr::USER_PASSWORD,
                    crypto::hide_password(b"x", NAS_SECRET, &[3; 16])
                        .map_err(anyhow::Error::msg)?,
                );
                c.send_to(&crypto::encode_request(&req, NAS_SECRET)?, addr)?;
                let mut buf = [0u8; 4096];
                if let Ok((n, _)) = c.recv_from(&mut buf) {
                    if Packet::parse(&buf[..n]).is_ok_and(|r| r.code == Code::ACCESS_ACCEPT) {
                        return Ok(p);
                    }
                }
            }
            if let Ok(Some(st)) = p.child.try_wait() {
                bail!(
                    "freeradius exited ({st}): {}",
                    fs::read_to_string(dir.join("freeradius.out")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("freeradius proxy not ready");
            }
        }
    }
}

impl Drop for FreeRadiusProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ispmux_config(home: SocketAddr, busy_poll_us: u64) -> Result<RadiusConfig> {
    let text = format!(
        r#"
[radius]
listen_auth = "127.0.0.1:0"
listen_acct = "127.0.0.1:0"
timeouts = {{ busy_poll_us = {busy_poll_us} }}
[[radius.nas]]
name = "bench"
address = "127.0.0.0/8"
secret = "{}"
[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{{ address = "127.0.0.1", auth_port = {}, secret = "{HOME_SECRET}" }}]
[[radius.client_sp]]
name = "csp"
realms = ["csp.example"]
virtual_user = "vs-csp"
virtual_password = "vs-pass"
home_servers = [{{ address = "127.0.0.1", auth_port = {}, secret = "{HOME_SECRET}" }}]
capacity = {{ ports = 4000000000 }}
"#,
        String::from_utf8_lossy(NAS_SECRET),
        home.port(),
        home.port()
    );
    let cfg = RadiusConfig::from_toml_file_text(&text)?;
    Ok(cfg)
}

/// The engine alone, no sockets: NAS requests in, the home server's answers crafted here.
fn engine_alone(cfg: &RadiusConfig, user: &str, n: usize) -> Result<f64> {
    use ispmux_slowpath::radius::{Engine, Input, Listener, Now, Output};
    let mut e = Engine::new(cfg, Instant::now())?;
    let nas: SocketAddr = ([127, 0, 0, 1], 40000).into();
    let mut rng = rand::thread_rng();
    let mut reqs = Vec::with_capacity(n);
    for i in 0..n {
        let mut auth = [0u8; 16];
        rng.fill_bytes(&mut auth);
        let mut p = Packet::new(Code::ACCESS_REQUEST, i as u8, auth);
        p.push(attr::USER_NAME, user.as_bytes().to_vec());
        p.push(
            attr::USER_PASSWORD,
            crypto::hide_password(b"benchpw", NAS_SECRET, &auth).map_err(anyhow::Error::msg)?,
        );
        reqs.push(crypto::encode_request(&p, NAS_SECRET)?);
    }
    let mut out = Vec::new();
    let mut answered = 0usize;
    let t = Instant::now();
    for r in &reqs {
        let now = Now::system();
        e.handle(
            now,
            Input::Nas {
                listener: Listener::Auth,
                from: nas,
                data: r,
            },
            &mut out,
        );
        while let Some(o) = out.pop() {
            match o {
                Output::ToPeer { slot, to, data } => {
                    let req = Packet::parse(&data)?;
                    let a = Packet::new(Code::ACCESS_ACCEPT, req.identifier, [0; 16]);
                    let b =
                        crypto::encode_response(&a, HOME_SECRET.as_bytes(), &req.authenticator)?;
                    e.handle(
                        now,
                        Input::Peer {
                            slot,
                            from: to,
                            data: &b,
                        },
                        &mut out,
                    );
                }
                Output::ToNas { .. } => answered += 1,
            }
        }
    }
    let el = t.elapsed().as_secs_f64();
    if answered != n {
        bail!("engine alone: {answered} of {n} answered");
    }
    Ok(n as f64 / el)
}

/// CPU time (user + system) in clock ticks from a /proc stat file (fields 14 and 15).
fn stat_ticks(path: &str) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of this process's thread named `name` (the ispmux proxy thread).
fn thread_ticks(name: &str) -> Option<u64> {
    for t in fs::read_dir("/proc/self/task").ok()?.flatten() {
        let p = t.path();
        if fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == name) {
            return stat_ticks(&p.join("stat").to_string_lossy());
        }
    }
    None
}

/// Runs `load` and adds the CPU time `ticks` reports per completed request (Linux reports
/// 100 ticks per second).
fn load_with_cpu(
    ticks: &dyn Fn() -> Option<u64>,
    target: SocketAddr,
    user: &str,
    inflight: usize,
    secs: u64,
) -> Result<(Load, Option<f64>)> {
    let before = ticks();
    let t0 = Instant::now();
    let l = load(target, NAS_SECRET, user, inflight, secs)?;
    let wall = t0.elapsed().as_secs_f64();
    let after = ticks();
    // The load includes a one-second warm-up; CPU is spread over all of it.
    let cpu = match (before, after) {
        (Some(b), Some(a)) if l.rate > 0.0 => Some((a - b) as f64 / 100.0 / (l.rate * wall) * 1e6),
        _ => None,
    };
    Ok((l, cpu))
}

fn report(name: &str, l: &Load, base: Option<&Load>) {
    let added = base.map_or(String::new(), |b| {
        format!(
            "  added p50={} us p99={} us",
            l.p50_us.saturating_sub(b.p50_us),
            l.p99_us.saturating_sub(b.p99_us)
        )
    });
    let unsent = if l.unsent > 0 {
        format!(" unsent={}", l.unsent)
    } else {
        String::new()
    };
    println!(
        "{name:<40} {:>9.0} req/s  p50={} us p99={} us  lost={}{unsent}{added}",
        l.rate, l.p50_us, l.p99_us, l.lost
    );
}

/// The responder's own rate over a measurement, shown beside the proxy's.
fn responder_rate(r: &Responder, before: u64, t0: Instant) -> String {
    let rate = (r.answered() - before) as f64 / t0.elapsed().as_secs_f64();
    format!(
        "{:<40} {rate:>9.0} answers/s (incl. warm-up)",
        "  responder meanwhile"
    )
}

fn main() -> Result<()> {
    let mut inflight = 64usize;
    let mut secs = 3u64;
    let mut rounds = 3usize;
    let mut rate = 5000.0f64;
    let mut open_only = false;
    let mut pin = false;
    let mut busy_poll_us = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--inflight" => inflight = args.next().context("--inflight N")?.parse()?,
            "--seconds" => secs = args.next().context("--seconds S")?.parse()?,
            "--rounds" => rounds = args.next().context("--rounds R")?.parse()?,
            "--rate" => rate = args.next().context("--rate REQ_PER_S")?.parse()?,
            // Latency at the fixed rate only, no closed loop before it (for studying tails).
            "--open-only" => open_only = true,
            "--pin" => pin = true,
            "--busy-poll-us" => busy_poll_us = args.next().context("--busy-poll-us N")?.parse()?,
            "--engine-only" => {
                // For profiling the engine: no sockets, no peers.
                let home: SocketAddr = ([127, 0, 0, 1], 9).into();
                let r = engine_alone(&ispmux_config(home, 0)?, "u@msp.example", 1_000_000)?;
                println!("engine alone, master subscriber {r:.0} req/s");
                return Ok(());
            }
            other => bail!(
                "unknown argument {other} (--inflight N, --seconds S, --rounds R, --rate N, \
                 --open-only, --pin, --busy-poll-us N, --engine-only)"
            ),
        }
    }
    println!(
        "radius-proxy: closed loop {inflight} Access-Requests in flight, open loop {rate:.0} \
         req/s offered; {secs} s per measurement, {rounds} alternating rounds per proxy \
         (medians); ispmux busy_poll_us = {busy_poll_us}"
    );
    // (proxy CPU, load CPU) when pinned.
    let cpus = allowed_cpus()?;
    let placement = match cpus.as_slice() {
        [proxy, load, ..] if pin => Some((*proxy, *load)),
        _ => None,
    };
    match placement {
        Some((p, l)) => {
            println!(
                "CPU placement: proxy under test on CPU {p} alone (ispmux's proxy thread, \
                 FreeRADIUS's process); load generator and responder on CPU {l}"
            );
            run_on(l)?;
        }
        None => println!(
            "CPU placement: none ({} CPUs allowed{}): proxy, generator and responder share them",
            cpus.len(),
            if pin { "" } else { "; --pin to pin" }
        ),
    }
    let responder = Responder::start()?;
    let home = responder.addr;
    let direct = load(
        home,
        HOME_SECRET.as_bytes(),
        "u@msp.example",
        inflight,
        secs,
    )?;
    report("responder alone (home server)", &direct, None);
    // A fixed offered rate well below every proxy's saturation: latency without queueing, so
    // the difference is the proxy's own.
    let direct_open = open_loop(home, HOME_SECRET.as_bytes(), "u@msp.example", rate, secs)?;
    report(
        &format!("responder alone, open loop {rate:.0}/s"),
        &direct_open,
        None,
    );

    let dir = tempfile::tempdir()?;
    let cfg = ispmux_config(home, busy_poll_us)?;
    // Each logon through the engine includes crafting the home server's answer here.
    for (name, user) in [("master", "u@msp.example"), ("CSP", "u@csp.example")] {
        let r = engine_alone(&cfg, user, 200_000)?;
        println!(
            "{:<40} {r:>9.0} req/s  (no sockets, one core)",
            format!("engine alone, {name} subscriber")
        );
    }
    // Both proxies start on the proxy CPU (their threads inherit it), then this thread, the
    // load generator, goes back to the load CPU.
    if let Some((p, _)) = placement {
        run_on(p)?;
    }
    let proxy = ProxyHandle::spawn(&cfg, Some(&dir.path().join("usage.db")))?;
    let ticks = || thread_ticks("radius-proxy");
    let fr = FreeRadiusProxy::start(dir.path(), home)?;
    if let Some((_, l)) = placement {
        run_on(l)?;
        // ispmux's two helper threads are not on the Access-Request path (usage commits are
        // for accounting; the reaper frees expired cached answers, every 5 s at most), so
        // they go with the load rather than preempt the proxy thread. Every FreeRADIUS
        // thread handles requests, so its whole process stays on the proxy CPU.
        for helper in ["radius-usage", "radius-reaper"] {
            move_threads(helper, l)?;
        }
    }
    let pid = fr.child.id();
    let fticks = || stat_ticks(&format!("/proc/{pid}/stat"));

    // Alternating rounds, so that both proxies see the same share of the machine's load.
    let (mut ours, mut anchor, mut cpu, mut cpu_fr) = (vec![], vec![], vec![], vec![]);
    let (mut added, mut added_fr) = (vec![], vec![]);
    let (mut open_added, mut open_added_fr) = (vec![], vec![]);
    for _ in 0..rounds.max(1) {
        if open_only {
            let l = open_loop(proxy.auth_addr, NAS_SECRET, "u@msp.example", rate, secs)?;
            report("ispmux proxy, open loop", &l, Some(&direct_open));
            let l = open_loop(fr.addr, NAS_SECRET, "u@msp.example", rate, secs)?;
            report("FreeRADIUS proxy, open loop", &l, Some(&direct_open));
            let l = open_loop(home, HOME_SECRET.as_bytes(), "u@msp.example", rate, secs)?;
            report("responder alone, open loop", &l, None);
            continue;
        }
        let (a0, t0) = (responder.answered(), Instant::now());
        let (l, c) = load_with_cpu(&ticks, proxy.auth_addr, "u@msp.example", inflight, secs)?;
        report("ispmux proxy, master subscriber", &l, Some(&direct));
        println!("{}", responder_rate(&responder, a0, t0));
        ours.push(l.rate);
        added.push(l.p99_us.saturating_sub(direct.p99_us) as f64);
        cpu.extend(c);
        let (a0, t0) = (responder.answered(), Instant::now());
        let (l, c) = load_with_cpu(&fticks, fr.addr, "u@msp.example", inflight, secs)?;
        report("FreeRADIUS proxy, master subscriber", &l, Some(&direct));
        println!("{}", responder_rate(&responder, a0, t0));
        anchor.push(l.rate);
        added_fr.push(l.p99_us.saturating_sub(direct.p99_us) as f64);
        cpu_fr.extend(c);
        let (c0, t0) = (ticks(), Instant::now());
        let l = open_loop(proxy.auth_addr, NAS_SECRET, "u@msp.example", rate, secs)?;
        report(
            &format!("ispmux proxy, open loop {rate:.0}/s"),
            &l,
            Some(&direct_open),
        );
        // What the fixed rate (and any busy poll) costs: the proxy thread's share of a CPU.
        if let (Some(a), Some(b)) = (c0, ticks()) {
            let share = (b - a) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
            println!(
                "{:<40} {share:>8.0} % of a CPU",
                "  ispmux proxy thread meanwhile"
            );
        }
        open_added.push(l.p99_us.saturating_sub(direct_open.p99_us) as f64);
        let l = open_loop(fr.addr, NAS_SECRET, "u@msp.example", rate, secs)?;
        report(
            &format!("FreeRADIUS proxy, open loop {rate:.0}/s"),
            &l,
            Some(&direct_open),
        );
        open_added_fr.push(l.p99_us.saturating_sub(direct_open.p99_us) as f64);
    }
    if open_only {
        return Ok(());
    }
    let (csp, cpu_csp) = load_with_cpu(&ticks, proxy.auth_addr, "u@csp.example", inflight, secs)?;
    report("ispmux proxy, CSP subscriber (2 hops)", &csp, Some(&direct));
    drop(fr);
    drop(proxy);
    drop(responder);

    let us = |c: f64| {
        if c > 0.0 {
            format!("{c:.1} us")
        } else {
            "n/a".to_owned()
        }
    };
    println!(
        "proxy CPU per logon (median): ispmux master {}, CSP {}; FreeRADIUS master {}",
        us(median(&cpu)),
        us(cpu_csp.unwrap_or(0.0)),
        us(median(&cpu_fr))
    );
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join("/")
    };
    println!(
        "added p99 latency, closed loop {inflight} in flight (median; rounds): ispmux {:.0} us \
         ({}), FreeRADIUS {:.0} us ({})",
        median(&added),
        list(&added),
        median(&added_fr),
        list(&added_fr)
    );
    // Little's law: at `inflight` requests in flight, a proxy doing X req/s in front of a
    // responder doing D req/s adds inflight/X - inflight/D on average however fast each
    // request is handled, so the closed loop measures queueing at saturation.
    let queueing = inflight as f64 * (1.0 / median(&ours) - 1.0 / direct.rate) * 1e6;
    println!(
        "  (queueing alone at {inflight} in flight adds {queueing:.0} us on average at ispmux's \
         median rate: the closed loop measures saturation, not the added latency of a request)"
    );
    let p99 = median(&open_added);
    println!(
        "added p99 latency, open loop {rate:.0} req/s (median; rounds): ispmux {p99:.0} us ({}), \
         FreeRADIUS {:.0} us ({})",
        list(&open_added),
        median(&open_added_fr),
        list(&open_added_fr)
    );
    println!(
        "target p99 added < 200 us, checked on the open loop at {rate:.0} req/s (median of \
         rounds): {}",
        if p99 < 200.0 { "met" } else { "NOT met" }
    );
    println!(
        "{}",
        result_line("radius-proxy", median(&ours), median(&anchor), "req/s")
    );
    Ok(())
}
