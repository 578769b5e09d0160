//! The properties the `dhcp_codec` fuzz target checks, shared with the corpus test so CI
//! exercises them on stable Rust. Panics are the point here: a panic is a finding.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use ispmux_conf::dhcp::{DhcpConfig, IspDhcpConfig, RateLimitConfig};

use super::codec::{code, Message};
use super::engine::{Engine, Input, Output};
use super::{credential, relay_info, MacAddr};
use crate::registry::{Isp, NewSubscriber, PasswordCost, Registry, Status};
use crate::time::Now;

// The same bytes are also tried as a punted frame and fed to a live engine, so one corpus
// covers both parsers and the state machine.

/// Decodes `data`; anything that decodes must re-encode to something that decodes to the
/// same message, and its option 82 and logon options must parse or fail cleanly.
pub fn exercise(data: &[u8]) {
    if let Ok(p) = super::frame::parse_punt(data) {
        assert!(p.payload.len() <= data.len());
    }
    exercise_engine(data);
    let Ok(mut m) = Message::decode(data) else {
        return;
    };
    let again = Message::decode(&m.encode());
    assert_eq!(again.as_ref(), Ok(&m), "encode/decode round trip");
    if let Some(Ok(info)) = relay_info::strip(&mut m) {
        if let Ok(enc) = info.encode() {
            assert_eq!(
                relay_info::RelayAgentInfo::decode(&enc).as_ref(),
                Ok(&info),
                "option 82 round trip"
            );
        }
    }
    let _ = m.message_type();
    let _ = m.ipv4_option(code::SERVER_ID);
    let _ = credential::take(&mut m);
    assert!(m.option(code::LOGON_PASSWORD).is_none());
}

/// The MAC of the seeds' client, registered in the fuzzing engine.
const SEED_MAC: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

fn engine() -> Option<Engine<Registry>> {
    let mut reg = Registry::open_in_memory()
        .ok()?
        .with_password_cost(PasswordCost::TEST);
    reg.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: None,
        dhcp_servers: vec![SERVER],
    })
    .ok()?;
    reg.add_subscriber(&NewSubscriber {
        mac: SEED_MAC,
        isp: "isp-a".into(),
        customer_id: "C1001".into(),
        password: Some("s3cret".into()),
        status: Status::Active,
    })
    .ok()?;
    let cfg = DhcpConfig {
        relay_address: Ipv4Addr::new(198, 18, 0, 1),
        server_identifier: Ipv4Addr::new(198, 18, 64, 1),
        require_credential: false,
        trusted_relay_ports: vec![],
        trusted_relay_port_ids: vec![],
        server_timeout_ms: 100,
        rate_limit: RateLimitConfig {
            per_second: 1e6,
            burst: 1_000_000,
            max_tracked: 1024,
        },
        unregistered_per_s: 50,

        isps: vec![IspDhcpConfig {
            name: "isp-a".into(),
            servers: vec![SERVER],
            link_selection: None,
            refusal_webhook: None,
            refusal_webhook_secret: None,
        }],
    };
    Some(Engine::new(&cfg, reg))
}

thread_local! {
    static ENGINE: RefCell<Option<Engine<Registry>>> = RefCell::new(engine());
    static CLOCK: RefCell<Now> = RefCell::new(Now { mono: Instant::now(), unix: 1 << 30 });
    static RUNS: RefCell<u32> = const { RefCell::new(0) };
}

/// Inputs per engine: the refusal log grows with every input, so start afresh now and then.
const RUNS_PER_ENGINE: u32 = 10_000;

/// Feeds `data` to one long-lived engine as a subscriber's message, as a server's answer,
/// then lets time pass: no input may panic it.
fn exercise_engine(data: &[u8]) {
    let now = CLOCK.with(|c| {
        let mut c = c.borrow_mut();
        *c = *c + Duration::from_millis(50);
        *c
    });
    let fresh = RUNS.with(|r| {
        let mut r = r.borrow_mut();
        *r = (*r + 1) % RUNS_PER_ENGINE;
        *r == 0
    });
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        if fresh {
            *e = engine();
        }
        let Some(e) = e.as_mut() else {
            return;
        };
        let src_mac = Message::decode(data)
            .ok()
            .and_then(|m| m.client_mac())
            .unwrap_or(SEED_MAC);
        let out = e.handle(
            now,
            Input::FromSubscriber {
                port: 1,
                vlan: 0,
                inner_vlan: 0,
                src_mac,
                payload: data,
            },
        );
        // Password verifications come back as events: answer them, so the parked path runs.
        for o in out {
            if let Output::Verify(r) = o {
                e.handle(
                    now,
                    Input::Verified {
                        ticket: r.ticket,
                        valid: Some(r.run()),
                    },
                );
            }
        }
        e.handle(
            now,
            Input::FromServer {
                src: SocketAddrV4::new(SERVER, 67),
                payload: data,
            },
        );
        e.handle(now, Input::Tick);
    });
}
