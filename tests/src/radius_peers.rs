//! Real RADIUS peers for the proxy's end-to-end tests: FreeRADIUS 3.2 servers started on free
//! loopback ports with generated configurations, radclient as a NAS, and the proxy itself.

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ispmux_slowpath::radius::client::Client;

/// A free UDP port on 127.0.0.1 (the kernel's choice; released for the caller to bind).
pub fn free_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
    s.local_addr().expect("local addr").port()
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A FreeRADIUS server with its own configuration directory.
pub struct FreeRadius {
    pub name: String,
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    pub secret: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// The FreeRADIUS binary; its absence is a test failure (CI installs it).
pub fn freeradius_bin() -> &'static str {
    for p in ["/usr/sbin/freeradius", "/usr/sbin/radiusd"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!(
        "FreeRADIUS is not installed: apt-get install freeradius freeradius-utils \
         (listed in scripts/apt-packages.txt)"
    );
}

impl FreeRadius {
    /// Configures (users file in FreeRADIUS `users` syntax) and starts a server.
    pub fn start(root: &Path, name: &str, secret: &str, users: &str) -> FreeRadius {
        let dir = root.join(name);
        let raddb = dir.join("raddb");
        fs::create_dir_all(&dir).expect("dir");
        let st = Command::new("cp")
            .args(["-a", "/etc/freeradius/3.0"])
            .arg(&raddb)
            .status()
            .expect("cp");
        assert!(st.success(), "copy of /etc/freeradius/3.0 failed");
        // No EAP (it needs certificates) and none of the stock sites.
        let _ = fs::remove_file(raddb.join("mods-enabled/eap"));
        for e in fs::read_dir(raddb.join("sites-enabled")).expect("sites") {
            let _ = fs::remove_file(e.expect("entry").path());
        }
        let conf = fs::read_to_string(raddb.join("radiusd.conf")).expect("radiusd.conf");
        let conf: String = conf
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with("user = ") || t.starts_with("group = "))
            })
            .map(|l| {
                let d = dir.display();
                if l.starts_with("logdir = ") {
                    format!("logdir = {d}/log")
                } else if l.starts_with("raddbdir = ") {
                    format!("raddbdir = {d}/raddb")
                } else if l.starts_with("run_dir = ") {
                    format!("run_dir = {d}/run")
                } else if l.trim_start().starts_with("reject_delay = ") {
                    // Immediate rejects keep the tests short; the proxy's timers are short too.
                    "\treject_delay = 0".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        fs::write(raddb.join("radiusd.conf"), conf).expect("write radiusd.conf");
        fs::create_dir_all(dir.join("log")).expect("log");
        fs::create_dir_all(dir.join("run")).expect("run");
        fs::write(
            raddb.join("clients.conf"),
            format!("client loopback {{\nipaddr = 127.0.0.0/8\nsecret = {secret}\n}}\n"),
        )
        .expect("clients.conf");
        fs::write(raddb.join("mods-config/files/authorize"), users).expect("users");
        let mut s = FreeRadius {
            name: name.to_owned(),
            auth: addr(0),
            acct: addr(0),
            secret: secret.to_owned(),
            dir,
            child: None,
        };
        s.restart_on(free_port(), free_port());
        s
    }

    fn restart_on(&mut self, auth: u16, acct: u16) {
        self.auth = addr(auth);
        self.acct = addr(acct);
        let site = format!(
            "server ispmux_test {{\nlisten {{\ntype = auth\nipaddr = 127.0.0.1\nport = {auth}\n}}\n\
             listen {{\ntype = acct\nipaddr = 127.0.0.1\nport = {acct}\n}}\n\
             authorize {{\nfiles\nchap\npap\n}}\n\
             authenticate {{\nAuth-Type PAP {{\npap\n}}\nAuth-Type CHAP {{\nchap\n}}\n}}\n\
             preacct {{\n}}\naccounting {{\ndetail\nok\n}}\npost-auth {{\n}}\n}}\n"
        );
        fs::write(self.dir.join("raddb/sites-enabled/ispmux_test"), site).expect("site");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("freeradius.out"))
            .expect("log");
        let child = Command::new(freeradius_bin())
            .args(["-f", "-l", "stdout", "-n", "radiusd", "-d"])
            .arg(self.dir.join("raddb"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start freeradius");
        self.child = Some(child);
    }

    /// Waits until the server answers Status-Server.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut c = Client::new(
                addr(0),
                self.auth,
                self.acct,
                self.secret.as_bytes(),
                Duration::from_millis(200),
                1,
            )
            .expect("client");
            let mut p = ispmux_slowpath::radius::Packet::new(
                ispmux_slowpath::radius::Code::STATUS_SERVER,
                1,
                [7; 16],
            );
            ispmux_slowpath::radius::crypto::add_message_authenticator(&mut p);
            if c.exchange(&p).is_ok() {
                return;
            }
            if let Some(ch) = self.child.as_mut() {
                if let Ok(Some(st)) = ch.try_wait() {
                    // Another test may have taken the free ports meanwhile: pick new ones.
                    if self.output().contains("Address already in use") && Instant::now() < deadline
                    {
                        let _ = fs::remove_file(self.dir.join("freeradius.out"));
                        self.restart_on(free_port(), free_port());
                        continue;
                    }
                    panic!("freeradius {} exited ({st}): {}", self.name, self.output());
                }
            }
            assert!(
                Instant::now() < deadline,
                "freeradius {} not ready: {}",
                self.name,
                self.output()
            );
        }
    }

    /// Stops the server (SIGKILL: a crash, as far as the proxy can tell).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.kill();
        let (a, b) = (self.auth.port(), self.acct.port());
        self.restart_on(a, b);
        self.wait_ready();
    }

    /// Its console output so far.
    pub fn output(&self) -> String {
        fs::read_to_string(self.dir.join("freeradius.out")).unwrap_or_default()
    }

    /// All accounting detail records it wrote.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        let root = self.dir.join("log/radacct");
        let Ok(hosts) = fs::read_dir(&root) else {
            return out;
        };
        for h in hosts.flatten() {
            for f in fs::read_dir(h.path()).into_iter().flatten().flatten() {
                out += &fs::read_to_string(f.path()).unwrap_or_default();
            }
        }
        out
    }

    /// The home-server table entry for the proxy configuration.
    pub fn home_server_toml(&self, extra: &str) -> String {
        format!(
            "{{ address = \"127.0.0.1\", auth_port = {}, acct_port = {}, secret = \"{}\"{extra} }}",
            self.auth.port(),
            self.acct.port(),
            self.secret
        )
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs radclient (a NAS) and returns its output; `kind` is auth, acct or status.
pub fn radclient(to: SocketAddr, kind: &str, secret: &str, attrs: &str) -> String {
    let mut child = Command::new("radclient")
        .args(["-x", "-r", "1", "-t", "1"])
        .arg(to.to_string())
        .arg(kind)
        .arg(secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("radclient (apt-get install freeradius-utils)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(attrs.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("radclient");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}
