//! What the API's tests share: a store with two ISPs and their tokens, a gateway stand-in
//! that answers the command channel as the control thread does, and requests sent to the
//! router in process.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use ispmux_api::token::{self, TokenStore};
use ispmux_api::AppState;
use ispmux_conf::api::ApiConfig;
use ispmux_gateway::command::{Reloaded, Revoked, Suspended};
use ispmux_gateway::inbox::Inbox;
use ispmux_gateway::report::{IspStats, PacketBytes, Stats};
use ispmux_gateway::{ControlAnswer, ControlCommand};
use ispmux_slowpath::registry::{Binding, Isp, Refusal, Registry};
use tower::ServiceExt;

pub const OPERATOR: &str = "ispmux_operator-token-of-the-tests";

/// The gateway's side of the command channel, answered from a thread every 2 ms.
pub struct FakeGateway {
    pub seen: Arc<Mutex<Vec<ControlCommand>>>,
    /// Refuse reloads, as a gateway does one that cannot change live.
    pub refuse_reload: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeGateway {
    /// Reloads check `config` as the gateway does (`load_gateway`).
    pub fn start(config: PathBuf) -> (FakeGateway, ispmux_gateway::CommandSender) {
        let inbox = Inbox::default();
        let sender = inbox.sender();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let refuse_reload = Arc::new(AtomicBool::new(false));
        let (s2, st2, r2) = (seen.clone(), stop.clone(), refuse_reload.clone());
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                inbox.serve_pending(&mut |cmd| {
                    s2.lock().expect("seen").push(cmd.clone());
                    match cmd {
                        ControlCommand::Reload if r2.load(Ordering::Relaxed) => {
                            ControlAnswer::refused("reload refused: these cannot change")
                        }
                        ControlCommand::Reload => match ispmux_conf::load_gateway(&config) {
                            Ok(_) => ControlAnswer::Reloaded(Box::new(Reloaded {
                                path: config.display().to_string(),
                                ..Reloaded::default()
                            })),
                            Err(e) => ControlAnswer::refused(format!("reload refused: {e}")),
                        },
                        cmd => answer(cmd),
                    }
                });
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        (
            FakeGateway {
                seen,
                refuse_reload,
                stop,
                thread: Some(thread),
            },
            sender,
        )
    }
}

/// The gateway's configuration file of the fixture: ISPs `isp-a` and `isp-b` with their
/// labels and DHCP servers, client SP `csp1`.
pub const CONFIG: &str = r#"# The fixture's gateway.
[eal]
lcores = [0, 1]

[dataplane]
pipeline = "node"

[[port]]
name = "acc"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"

[[port]]
name = "hand"
device = "net_null2"
role = "handoff"

[[tables.isps]]
id = 1
name = "isp-a"   # the first
gateway = "198.18.1.1"
upstream = { label = 1001, port = "core", next_hop = "02:00:00:00:00:c1" }

[[tables.isps]]
id = 2
name = "isp-b"
upstream = { label = 1002, port = "core", next_hop = "02:00:00:00:00:c1" }
handoff = [{ port = "hand", vlan = 20 }]

[[tables.ilm]]
label = 4002
action = { kind = "pop_deliver", isp = 2 }

[dhcp]
relay_address = "198.18.0.1"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["198.18.9.1"]

[[dhcp.isps]]
name = "isp-b"
servers = ["198.18.9.1"]

[radius]
listen_auth = "127.0.0.1:0"
listen_acct = "127.0.0.1:0"

[[radius.nas]]
name = "pop"
address = "127.0.0.0/8"
secret = "nas-secret"

[radius.master]
name = "msp"
home_servers = [{ address = "127.0.0.1", secret = "master-secret" }]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
virtual_user = "vs-csp1"
virtual_password = "virtual-secret"
home_servers = [{ address = "127.0.0.1", auth_port = 21812, secret = "csp-secret" }]
capacity = { ports = 100, period = "month" }  # rented
"#;

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(cmd: ControlCommand) -> ControlAnswer {
    match cmd {
        ControlCommand::Stats => {
            let mut s = Stats::default();
            for (id, name, n) in [(1, "isp-a", 10), (2, "isp-b", 20)] {
                s.pipeline.isps.push(IspStats {
                    id,
                    name: name.into(),
                    headend_up: PacketBytes {
                        packets: n,
                        bytes: n * 100,
                    },
                    ..IspStats::default()
                });
            }
            ControlAnswer::Stats(Box::new(s))
        }
        ControlCommand::Revoke(mac) => ControlAnswer::Revoked(Revoked {
            revoked: mac.to_string(),
            queued: true,
        }),
        ControlCommand::Suspend(csp) | ControlCommand::Resume(csp) if csp == "csp1" => {
            ControlAnswer::Suspended(Suspended {
                csp,
                suspended: true,
                was_suspended: false,
                disconnect_requests: 0,
            })
        }
        ControlCommand::Metrics(f) => {
            let stats = match answer(ControlCommand::Stats) {
                ControlAnswer::Stats(s) => *s,
                _ => Stats::default(),
            };
            ControlAnswer::Metrics(
                ispmux_gateway::metrics::Metrics::default().encode(&stats, None, f),
            )
        }
        _ => ControlAnswer::refused("not here"),
    }
}

/// A store with ISPs `isp-a` and `isp-b`, a subscriber and a binding and a refusal each, and
/// a token each.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The gateway's configuration file, which the operator's routes edit.
    pub config: PathBuf,
    pub db: PathBuf,
    pub cfg: ApiConfig,
    pub token_a: String,
    pub token_b: String,
    pub token_b_id: i64,
    pub gateway: FakeGateway,
    pub app: Router,
    pub state: Arc<AppState>,
}

pub const SUB_A: &str = "02:00:00:00:0a:01";
pub const SUB_B: &str = "02:00:00:00:0b:01";

pub fn api_config(extra: &str) -> ApiConfig {
    let text = format!(
        "listen = \"127.0.0.1:0\"\noperator_token_sha256 = \"{}\"\nargon2_m_kib = 64\nargon2_t = 1\nmax_body_bytes = 65536\nmax_import_items = 50\n{extra}",
        token::sha256_hex(OPERATOR)
    );
    let cfg: ApiConfig = toml::from_str(&text).expect("api config");
    assert!(cfg.validate(&[]).is_empty(), "{:?}", cfg.validate(&[]));
    cfg
}

impl Fixture {
    pub fn new(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("api.db");
        let mut reg = Registry::open(&db).expect("registry");
        for (name, mac) in [("isp-a", SUB_A), ("isp-b", SUB_B)] {
            reg.upsert_isp(&Isp {
                name: name.into(),
                label: None,
                dhcp_servers: vec!["198.18.9.1".parse().expect("ip")],
            })
            .expect("isp");
            let mac = mac.parse().expect("mac");
            reg.add_hashed(&[ispmux_slowpath::registry::Subscriber {
                mac,
                isp: name.into(),
                customer_id: format!("{name}-C1"),
                password_hash: None,
                status: ispmux_slowpath::registry::Status::Active,
            }])
            .expect("subscriber");
            reg.upsert_binding(&Binding {
                mac,
                isp: name.into(),
                ipv4: "198.18.9.10".parse().expect("ip"),
                expires: std::time::SystemTime::now() + Duration::from_secs(3600),
                server: "198.18.9.1".parse().expect("ip"),
                port: 0,
                vlan: 0,
                inner_vlan: 0,
            })
            .expect("binding");
            reg.record_refusal(&Refusal {
                at: std::time::SystemTime::now(),
                mac,
                isp: Some(name.into()),
                reason: "bad credential".into(),
            })
            .expect("refusal");
        }
        let mut tokens = TokenStore::open(&db).expect("tokens");
        let (token_a, _) = tokens.issue("isp-a", "a").expect("token a");
        let (token_b, info_b) = tokens.issue("isp-b", "b").expect("token b");
        let cfg = api_config(extra);
        let config = dir.path().join("ispmux.toml");
        std::fs::write(&config, CONFIG).expect("config");
        let (gateway, sender) = FakeGateway::start(config.clone());
        let state = Arc::new(
            AppState::new(&cfg, reg, tokens, Some(sender)).with_config_file(config.clone()),
        );
        let app = ispmux_api::app(state.clone(), &cfg);
        Fixture {
            config,
            dir,
            db,
            cfg,
            token_a,
            token_b,
            token_b_id: info_b.id,
            gateway,
            app,
            state,
        }
    }

    /// Sends one request; the status and the body as JSON (Null when empty or not JSON).
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, serde_json::Value) {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(c) = content_type {
            b = b.header("content-type", c);
        }
        let req = b.body(Body::from(body)).expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    pub async fn json(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).expect("json")
        };
        self.send(method, uri, Some(token), Some("application/json"), bytes)
            .await
    }

    /// Everything the API may write, as text, to compare before and after.
    pub fn dump(&self) -> String {
        let c = rusqlite::Connection::open(&self.db).expect("open");
        let mut out = String::new();
        for (table, order) in [
            ("isp", "name"),
            ("subscriber", "mac"),
            ("binding", "mac"),
            ("refusal", "id"),
            ("api_token", "id"),
        ] {
            let mut st = c
                .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
                .expect("select");
            let n = st.column_count();
            let rows = st
                .query_map([], |r| {
                    let mut line = String::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        line.push_str(&format!("{v:?}|"));
                    }
                    Ok(line)
                })
                .expect("query")
                .collect::<Result<Vec<_>, _>>()
                .expect("rows");
            out.push_str(&format!("{table}: {}\n", rows.join("\n  ")));
        }
        out
    }
}

/// The document's (method, path) pairs.
pub fn documented() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(ispmux_api::OPENAPI).expect("openapi");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (m, _) in item.as_object().expect("item") {
            if ["get", "post", "patch", "delete", "put"].contains(&m.as_str()) {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}
