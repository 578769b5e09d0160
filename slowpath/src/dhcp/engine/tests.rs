//! The engine fed recorded inputs; outputs checked exactly.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ispmux_conf::dhcp::{DhcpConfig, IspDhcpConfig, RateLimitConfig};

use super::*;
use crate::dhcp::codec::{DhcpOption, FLAG_BROADCAST};
use crate::dhcp::relay_info::sub;
use crate::dhcp::verifier::VERIFY_QUEUE;
use crate::registry::{Isp, MemoryDirectory, NewSubscriber, PasswordCost};

const RELAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const GW_ID: Ipv4Addr = Ipv4Addr::new(198, 18, 64, 1);
const S1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const S2: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const LEASED: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 10);
const ALICE: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x01]);
const MALLORY: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x66]);

/// Both clocks `secs` into a test (the same start for every test of the process).
fn t(secs: u64) -> Now {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    Now {
        mono: *START.get_or_init(std::time::Instant::now) + Duration::from_secs(secs),
        unix: 1_700_000_000 + secs,
    }
}

/// The wall clock `secs` into a test, as the store records it.
fn w(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn cfg() -> DhcpConfig {
    DhcpConfig {
        relay_address: RELAY,
        server_identifier: GW_ID,
        require_credential: false,
        trusted_relay_ports: vec![],
        trusted_relay_port_ids: vec![],
        server_timeout_ms: 500,
        rate_limit: RateLimitConfig {
            per_second: 1.0,
            burst: 8,
            max_tracked: 100,
        },
        unregistered_per_s: 50,

        isps: vec![IspDhcpConfig {
            name: "isp-a".into(),
            servers: vec![S1, S2],
            link_selection: Some(Ipv4Addr::new(198, 18, 100, 0)),
            refusal_webhook: None,
            refusal_webhook_secret: None,
        }],
    }
}

/// The engine over an in-memory directory: the engine's logic needs no store.
fn engine() -> Engine<MemoryDirectory> {
    let mut d = MemoryDirectory::new(PasswordCost::TEST);
    d.add(&alice()).expect("subscriber");
    Engine::new(&cfg(), d)
}

fn alice() -> NewSubscriber {
    NewSubscriber {
        mac: ALICE,
        isp: "isp-a".into(),
        customer_id: "C1001".into(),
        password: Some("s3cret".into()),
        status: Status::Active,
    }
}

/// A registry holding what [`engine`]'s directory holds, for the tests of store writes.
fn registry() -> Registry {
    let mut r = Registry::open_in_memory()
        .expect("registry")
        .with_password_cost(PasswordCost::TEST);
    r.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: Some(1001),
        dhcp_servers: vec![S1, S2],
    })
    .expect("isp");
    r.add_subscriber(&alice()).expect("subscriber");
    r
}

/// Handles `input` as a driver with an instant verifier does: each password verification
/// asked for is run here and its answer fed back, its outputs in place of the request.
fn verified<D: Directory>(e: &mut Engine<D>, now: Now, input: Input<'_>) -> Vec<Output> {
    let mut out = Vec::new();
    for o in e.handle(now, input) {
        match o {
            Output::Verify(r) => out.extend(verified(
                e,
                now,
                Input::Verified {
                    ticket: r.ticket,
                    valid: Some(r.run()),
                },
            )),
            other => out.push(other),
        }
    }
    out
}

fn client(t: MessageType, xid: u32) -> Message {
    let mut m = Message::new_request(ALICE, xid, t);
    m.flags = FLAG_BROADCAST;
    m.set_option(61, vec![1, 0x02, 0, 0x5e, 0x10, 0, 0x01]);
    m.set_option(55, vec![1, 3, 6]);
    m
}

fn from_alice(m: &Message) -> Vec<u8> {
    m.encode()
}

fn sub_in(payload: &[u8]) -> Input<'_> {
    Input::FromSubscriber {
        port: 3,
        vlan: 100,
        inner_vlan: 0,
        src_mac: ALICE,
        payload,
    }
}

/// What an ISP server answers: the request turned round, option 82 echoed (RFC 3046 §2.2).
fn server_reply(req: &[u8], t: MessageType, server: Ipv4Addr) -> Vec<u8> {
    let mut m = Message::decode(req).expect("relayed request decodes");
    m.op = OP_BOOTREPLY;
    m.hops = 0;
    if t != MessageType::Nak {
        m.yiaddr = LEASED;
    }
    let echoed = m.option(code::RELAY_AGENT_INFO).map(<[u8]>::to_vec);
    m.options = vec![DhcpOption {
        code: code::MESSAGE_TYPE,
        data: vec![u8::from(t)],
    }];
    m.set_option(code::SERVER_ID, server.octets().to_vec());
    if t == MessageType::Nak {
        m.set_option(code::MESSAGE, b"address not available".to_vec());
    } else {
        m.set_option(code::LEASE_TIME, 600u32.to_be_bytes().to_vec());
    }
    if let Some(e) = echoed {
        m.set_option(code::RELAY_AGENT_INFO, e);
    }
    m.encode()
}

fn srv_in(server: Ipv4Addr, payload: &[u8]) -> Input<'_> {
    Input::FromServer {
        src: SocketAddrV4::new(server, 67),
        payload,
    }
}

/// The single datagram to a server in `out`.
fn to_server(out: &[Output]) -> (SocketAddrV4, Vec<u8>) {
    match out {
        [Output::ToServer { dst, payload }] => (*dst, payload.clone()),
        other => panic!("want one ToServer, got {other:?}"),
    }
}

fn binding(expires: SystemTime) -> Binding {
    Binding {
        mac: ALICE,
        isp: "isp-a".into(),
        ipv4: LEASED,
        expires,
        server: S1,
        port: 3,
        vlan: 100,
        inner_vlan: 0,
    }
}

/// Runs DISCOVER/OFFER/REQUEST/ACK at t(0) and returns the engine.
fn bound() -> Engine<MemoryDirectory> {
    let mut e = engine();
    let (_, relayed) =
        to_server(&e.handle(t(0), sub_in(&from_alice(&client(MessageType::Discover, 1)))));
    e.handle(
        t(0),
        srv_in(S1, &server_reply(&relayed, MessageType::Offer, S1)),
    );
    let mut req = client(MessageType::Request, 1);
    req.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    req.set_option(code::REQUESTED_IP, LEASED.octets().to_vec());
    let (_, relayed) = to_server(&e.handle(t(0), sub_in(&from_alice(&req))));
    let out = e.handle(
        t(0),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    assert_eq!(out.len(), 3, "{out:?}");
    e
}

#[test]
fn unknown_mac_is_refused_and_not_relayed() {
    let mut e = engine();
    let m = Message::new_request(MALLORY, 9, MessageType::Discover);
    let out = e.handle(
        t(5),
        Input::FromSubscriber {
            port: 3,
            vlan: 100,
            inner_vlan: 0,
            src_mac: MALLORY,
            payload: &m.encode(),
        },
    );
    assert_eq!(
        out,
        vec![Output::Store(StoreWrite::Refusal(Refusal {
            at: w(5),
            mac: MALLORY,
            isp: None,
            reason: "unknown subscriber".into(),
        }))]
    );
    assert_eq!(e.counters().relayed, 0);
}

#[test]
fn discover_becomes_an_extended_request() {
    let mut e = engine();
    let mut d = client(MessageType::Discover, 0x1234);
    d.set_option(code::LOGON_CUSTOMER_ID, b"C1001".to_vec());
    d.set_option(code::LOGON_PASSWORD, b"s3cret".to_vec());
    let (dst, relayed) = to_server(&verified(&mut e, t(0), sub_in(&from_alice(&d))));
    assert_eq!(dst, SocketAddrV4::new(S1, 67));
    let m = Message::decode(&relayed).expect("decodes");
    assert_eq!((m.giaddr, m.hops, m.xid), (RELAY, 1, 0x1234));
    assert_eq!(
        m.option(code::LOGON_PASSWORD),
        None,
        "password stays on the access side"
    );
    assert_eq!(m.option(code::LOGON_CUSTOMER_ID), None);
    assert_eq!(m.option(61), d.option(61), "client options pass through");
    let codes: Vec<u8> = m.options.iter().map(|o| o.code).collect();
    assert_eq!(codes, vec![53, 61, 55, 82], "option 82 last, order kept");
    let info = RelayAgentInfo::decode(m.option(82).expect("option 82")).expect("parses");
    assert_eq!(info.get(sub::CIRCUIT_ID), Some(&b"3:100"[..]));
    assert_eq!(info.get(sub::REMOTE_ID), Some(&ALICE.0[..]));
    assert_eq!(
        info.get(sub::LINK_SELECTION),
        Some(&[198u8, 18, 100, 0][..])
    );
    assert_eq!(info.get(sub::SUBSCRIBER_ID), Some(&b"C1001"[..]));
    assert_eq!(info.get(sub::SERVER_ID_OVERRIDE), Some(&GW_ID.octets()[..]));
}

#[test]
fn wrong_password_or_customer_id_is_refused() {
    for (id, pw) in [("C1001", "wrong"), ("C9999", "s3cret")] {
        let mut e = engine();
        let mut d = client(MessageType::Discover, 1);
        d.set_option(code::LOGON_CUSTOMER_ID, id.as_bytes().to_vec());
        d.set_option(code::LOGON_PASSWORD, pw.as_bytes().to_vec());
        let out = verified(&mut e, t(1), sub_in(&from_alice(&d)));
        assert_eq!(
            out,
            vec![Output::Store(StoreWrite::Refusal(Refusal {
                at: w(1),
                mac: ALICE,
                isp: Some("isp-a".into()),
                reason: "bad credential".into(),
            }))]
        );
    }
}

/// A DISCOVER of ALICE's carrying `pw` with her customer id.
fn credentialed(xid: u32, pw: &str) -> Vec<u8> {
    let mut d = client(MessageType::Discover, xid);
    d.set_option(code::LOGON_CUSTOMER_ID, b"C1001".to_vec());
    d.set_option(code::LOGON_PASSWORD, pw.as_bytes().to_vec());
    from_alice(&d)
}

fn relays(out: &[Output]) -> bool {
    matches!(out, [Output::ToServer { .. }])
}

#[test]
fn the_same_credential_again_skips_argon2_until_the_subscriber_changes() {
    let mut e = engine();
    assert!(relays(&verified(
        &mut e,
        t(1),
        sub_in(&credentialed(1, "s3cret"))
    )));
    assert!(relays(&verified(
        &mut e,
        t(2),
        sub_in(&credentialed(2, "s3cret"))
    )));
    assert!(relays(&verified(
        &mut e,
        t(3),
        sub_in(&credentialed(3, "s3cret"))
    )));
    let c = e.counters();
    assert_eq!(
        (c.credential_verifications, c.credential_cache_hits),
        (1, 2)
    );
    // A wrong password is verified in full, refused, and does not evict the good entry.
    assert!(!relays(&verified(
        &mut e,
        t(4),
        sub_in(&credentialed(4, "guess"))
    )));
    assert_eq!(e.counters().credential_verifications, 2);

    // The ISP issues a new password: the remembered one no longer logs on.
    let reg = e.directory_mut();
    reg.remove(ALICE).expect("remove");
    reg.add(&NewSubscriber {
        mac: ALICE,
        isp: "isp-a".into(),
        customer_id: "C1001".into(),
        password: Some("n3w".into()),
        status: Status::Active,
    })
    .expect("add");
    assert!(!relays(&verified(
        &mut e,
        t(5),
        sub_in(&credentialed(5, "s3cret"))
    )));
    assert!(relays(&verified(
        &mut e,
        t(6),
        sub_in(&credentialed(6, "n3w"))
    )));
    assert_eq!(e.counters().credential_verifications, 4);

    // Suspended: refused though the credential is cached; revoked: forgotten.
    e.directory_mut()
        .set_status(ALICE, Status::Suspended)
        .expect("suspend");
    let out = verified(&mut e, t(7), sub_in(&credentialed(7, "n3w")));
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))] if r.reason == "subscriber suspended"),
        "{out:?}"
    );
    e.directory_mut()
        .set_status(ALICE, Status::Active)
        .expect("resume");
    assert!(relays(&verified(
        &mut e,
        t(8),
        sub_in(&credentialed(8, "n3w"))
    )));
    assert_eq!(
        e.counters().credential_verifications,
        5,
        "suspension dropped the entry"
    );
    verified(&mut e, t(9), Input::Revoke { mac: ALICE });
    assert!(relays(&verified(
        &mut e,
        t(10),
        sub_in(&credentialed(10, "n3w"))
    )));
    assert_eq!(e.counters().credential_verifications, 6);
}

#[test]
fn a_storm_of_passwords_waits_off_the_loop_and_overflows_counted() {
    // A verifier so slow that nothing comes back during the storm: VERIFY_QUEUE+1 MACs
    // with passwords, and ALICE logging on without one.
    let mut d = MemoryDirectory::new(PasswordCost::TEST);
    let mut stormers = Vec::new();
    for n in 0..=VERIFY_QUEUE as u8 {
        let mac = MacAddr([0x02, 0, 0x5e, 0x20, 0, n]);
        d.add(&NewSubscriber {
            mac,
            isp: "isp-a".into(),
            customer_id: "C1001".into(),
            password: Some("s3cret".into()),
            status: Status::Active,
        })
        .expect("subscriber");
        stormers.push(mac);
    }
    d.add(&NewSubscriber {
        password: None,
        ..alice()
    })
    .expect("alice");
    let mut e = Engine::new(&cfg(), d);
    let discover = |mac: MacAddr, xid: u32| {
        let mut m = Message::new_request(mac, xid, MessageType::Discover);
        m.set_option(code::LOGON_CUSTOMER_ID, b"C1001".to_vec());
        m.set_option(code::LOGON_PASSWORD, b"guess".to_vec());
        m.encode()
    };
    fn from(src_mac: MacAddr, payload: &[u8]) -> Input<'_> {
        Input::FromSubscriber {
            port: 3,
            vlan: 100,
            inner_vlan: 0,
            src_mac,
            payload,
        }
    }
    let mut tickets = Vec::new();
    for (i, mac) in stormers.iter().enumerate() {
        let p = discover(*mac, i as u32);
        let out = e.handle(t(0), from(*mac, &p));
        match &out[..] {
            [Output::Verify(r)] => tickets.push(r.ticket),
            [] => assert_eq!(i, VERIFY_QUEUE, "only the one past the bound is dropped"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(tickets.len(), VERIFY_QUEUE);
    assert_eq!(e.counters().dropped(DropReason::CredentialQueueFull), 1);
    // A retransmission from a waiting MAC costs no second verification.
    let p = discover(stormers[0], 0);
    assert!(e.handle(t(0), from(stormers[0], &p)).is_empty());
    assert_eq!(e.counters().dropped(DropReason::VerificationPending), 1);
    // Meanwhile other logons are served at once.
    let out = e.handle(
        t(0),
        sub_in(&from_alice(&client(MessageType::Discover, 99))),
    );
    assert!(matches!(&out[..], [Output::ToServer { .. }]), "{out:?}");
    // Answers come back as events: a wrong password is refused, and makes room.
    let out = e.handle(
        t(1),
        Input::Verified {
            ticket: tickets[0],
            valid: Some(false),
        },
    );
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))] if r.reason == "bad credential"),
        "{out:?}"
    );
    let p = discover(stormers[VERIFY_QUEUE], 77);
    assert!(matches!(
        &e.handle(t(1), from(stormers[VERIFY_QUEUE], &p))[..],
        [Output::Verify(_)]
    ));
    // One the verifier could not run is dropped and counted the same way.
    e.handle(
        t(1),
        Input::Verified {
            ticket: tickets[1],
            valid: None,
        },
    );
    assert_eq!(e.counters().dropped(DropReason::CredentialQueueFull), 2);
    // A good answer sends the parked DISCOVER on; a stale ticket is ignored.
    let out = e.handle(
        t(1),
        Input::Verified {
            ticket: tickets[2],
            valid: Some(true),
        },
    );
    let (_, relayed) = to_server(&out);
    assert_eq!(Message::decode(&relayed).expect("decodes").xid, 2);
    assert!(e
        .handle(
            t(1),
            Input::Verified {
                ticket: tickets[2],
                valid: Some(true)
            }
        )
        .is_empty());
    // Verifications that never come back are given up, and make room.
    let queued = e.verifying.len();
    assert!(queued > 0);
    e.handle(t(11), Input::Tick);
    assert!(e.verifying.is_empty());
    assert_eq!(
        e.counters().dropped(DropReason::CredentialQueueFull),
        2 + queued as u64
    );
}

#[test]
fn missing_credential_refused_only_when_required() {
    let mut c = cfg();
    c.require_credential = true;
    let mut e = engine();
    e.require_credential = c.require_credential;
    let out = e.handle(t(1), sub_in(&from_alice(&client(MessageType::Discover, 1))));
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))] if r.reason == "no credential"),
        "{out:?}"
    );
}

#[test]
fn dora_installs_the_binding_and_emulates_the_server() {
    let mut e = engine();
    let (_, relayed) =
        to_server(&e.handle(t(0), sub_in(&from_alice(&client(MessageType::Discover, 7)))));
    let out = e.handle(
        t(0),
        srv_in(S1, &server_reply(&relayed, MessageType::Offer, S1)),
    );
    let [Output::ToSubscriber(offer)] = &out[..] else {
        panic!("want the OFFER relayed, got {out:?}");
    };
    assert_eq!(
        (
            offer.port,
            offer.vlan,
            offer.dst_mac,
            offer.dst_ip,
            offer.src_ip,
            offer.broadcast
        ),
        (3, 100, MacAddr::BROADCAST, Ipv4Addr::BROADCAST, GW_ID, true)
    );
    let o = Message::decode(&offer.payload).expect("decodes");
    assert_eq!(
        o.ipv4_option(code::SERVER_ID),
        Some(GW_ID),
        "gateway stands in as server"
    );
    assert_eq!(o.option(82), None, "option 82 stripped");
    assert_eq!((o.yiaddr, o.giaddr), (LEASED, Ipv4Addr::UNSPECIFIED));

    // SELECTING: the client names the gateway; the ISP must see its own identifier.
    let mut req = client(MessageType::Request, 7);
    req.flags = 0;
    req.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    req.set_option(code::REQUESTED_IP, LEASED.octets().to_vec());
    let (dst, relayed) = to_server(&e.handle(t(1), sub_in(&from_alice(&req))));
    assert_eq!(dst, SocketAddrV4::new(S1, 67));
    let r = Message::decode(&relayed).expect("decodes");
    assert_eq!(r.ipv4_option(code::SERVER_ID), Some(S1));

    let out = e.handle(
        t(2),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    let b = binding(w(2) + Duration::from_secs(600));
    let [Output::Store(StoreWrite::UpsertBinding(sb)), Output::Binding(BindingChange::Install(ib)), Output::ToSubscriber(ack)] =
        &out[..]
    else {
        panic!("want store, table, reply in that order, got {out:?}");
    };
    assert_eq!((sb, ib), (&b, &b));
    assert_eq!(
        (ack.dst_mac, ack.dst_ip, ack.broadcast),
        (ALICE, LEASED, false),
        "unicast when the client did not ask for broadcast"
    );
    assert_eq!(e.counters().installs, 1);
    let mut reg = registry();
    reg.apply(&StoreWrite::UpsertBinding(sb.clone()))
        .expect("store write applies");
    assert_eq!(reg.bindings().expect("read"), vec![b]);
}

#[test]
fn nak_is_refused_with_the_reason_and_broadcast() {
    let mut e = bound();
    let mut req = client(MessageType::Request, 8);
    req.flags = 0;
    req.set_option(code::REQUESTED_IP, [198, 18, 200, 1].to_vec());
    let (dst, relayed) = to_server(&e.handle(t(10), sub_in(&from_alice(&req))));
    assert_eq!(
        dst.ip(),
        &S1,
        "INIT-REBOOT goes to the server of the binding first"
    );
    let out = e.handle(
        t(10),
        srv_in(S1, &server_reply(&relayed, MessageType::Nak, S1)),
    );
    let old = binding(w(600));
    assert_eq!(
        out[..3],
        [
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(old)),
            Output::Store(StoreWrite::Refusal(Refusal {
                at: w(10),
                mac: ALICE,
                isp: Some("isp-a".into()),
                reason: "ISP sent DHCPNAK: address not available".into(),
            })),
        ]
    );
    let Some(Output::ToSubscriber(nak)) = out.get(3) else {
        panic!("NAK reaches the client: {out:?}");
    };
    assert!(nak.broadcast && nak.dst_mac == MacAddr::BROADCAST);
}

#[test]
fn timeout_fails_over_then_refuses() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 3));
    let (dst, first) = to_server(&e.handle(t(0), sub_in(&d)));
    assert_eq!(dst.ip(), &S1);
    assert_eq!(
        e.next_deadline(),
        Some((t(0) + Duration::from_millis(500)).mono)
    );
    assert!(e
        .handle(t(0) + Duration::from_millis(499), Input::Tick)
        .is_empty());
    let (dst, second) = to_server(&e.handle(t(0) + Duration::from_millis(500), Input::Tick));
    assert_eq!(
        (dst.ip(), &second),
        (&S2, &first),
        "same extended request, next server"
    );
    assert_eq!(e.counters().failovers, 1);
    let out = e.handle(t(1), Input::Tick);
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))]
            if r.reason == "no answer from the ISP's DHCP servers"),
        "{out:?}"
    );
    // The server that answered last is preferred from now on.
    let (_, relayed) =
        to_server(&e.handle(t(2), sub_in(&from_alice(&client(MessageType::Discover, 4)))));
    assert_eq!(e.handle(t(2), Input::Tick), vec![]);
    let mut e2 = engine();
    e2.handle(t(0), sub_in(&d));
    let (_, r2) = to_server(&e2.handle(t(1), Input::Tick));
    e2.handle(t(1), srv_in(S2, &server_reply(&r2, MessageType::Offer, S2)));
    let (dst, _) =
        to_server(&e2.handle(t(2), sub_in(&from_alice(&client(MessageType::Discover, 5)))));
    assert_eq!(dst.ip(), &S2);
    drop(relayed);
}

#[test]
fn renewal_refreshes_the_binding_and_replies_unicast() {
    let mut e = bound();
    let mut renew = client(MessageType::Request, 11);
    renew.flags = 0;
    renew.ciaddr = LEASED;
    let (dst, relayed) = to_server(&e.handle(t(300), sub_in(&from_alice(&renew))));
    assert_eq!(dst.ip(), &S1);
    let out = e.handle(
        t(300),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    let b = binding(w(900));
    assert_eq!(
        out[..2],
        [
            Output::Store(StoreWrite::UpsertBinding(b.clone())),
            Output::Binding(BindingChange::Install(b)),
        ]
    );
    let Some(Output::ToSubscriber(ack)) = out.get(2) else {
        panic!("{out:?}");
    };
    assert_eq!(
        (ack.dst_ip, ack.dst_mac),
        (LEASED, ALICE),
        "RFC 2131 §4.1: to ciaddr"
    );
}

#[test]
fn release_removes_at_once() {
    let mut e = bound();
    let mut rel = client(MessageType::Release, 12);
    rel.ciaddr = LEASED;
    rel.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    let out = e.handle(t(20), sub_in(&from_alice(&rel)));
    let [Output::Store(StoreWrite::RemoveBinding(m)), Output::Binding(BindingChange::Remove(b)), Output::ToServer { dst, payload }] =
        &out[..]
    else {
        panic!("{out:?}");
    };
    assert_eq!((m, b), (&ALICE, &binding(w(600))));
    assert_eq!(dst.ip(), &S1);
    let fwd = Message::decode(payload).expect("decodes");
    assert_eq!(fwd.ipv4_option(code::SERVER_ID), Some(S1));
    assert_eq!(e.bindings().count(), 0);
}

#[test]
fn lease_expiry_removes_on_tick() {
    let mut e = bound();
    assert!(e.handle(t(599), Input::Tick).is_empty());
    let out = e.handle(t(600), Input::Tick);
    assert_eq!(
        out,
        vec![
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(binding(w(600)))),
        ]
    );
}

#[test]
fn a_late_offer_does_not_take_the_requests_transaction() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 21));
    let (_, first) = to_server(&e.handle(t(0), sub_in(&d)));
    // The OFFER is slow: the client retransmits its DISCOVER (same xid), relayed again.
    let (_, second) = to_server(&e.handle(t(1), sub_in(&d)));
    let out = e.handle(
        t(1),
        srv_in(S1, &server_reply(&first, MessageType::Offer, S1)),
    );
    assert!(matches!(&out[..], [Output::ToSubscriber(_)]), "{out:?}");
    let mut req = client(MessageType::Request, 21);
    req.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    req.set_option(code::REQUESTED_IP, LEASED.octets().to_vec());
    let (_, relayed) = to_server(&e.handle(t(1), sub_in(&from_alice(&req))));
    // The server's OFFER to the retransmitted DISCOVER arrives now: it answers nothing.
    let late = e.handle(
        t(1),
        srv_in(S1, &server_reply(&second, MessageType::Offer, S1)),
    );
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(e.counters().dropped(DropReason::NoTransaction), 1);
    let out = e.handle(
        t(1),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    assert!(
        matches!(
            &out[..],
            [
                Output::Store(StoreWrite::UpsertBinding(_)),
                Output::Binding(_),
                Output::ToSubscriber(_)
            ]
        ),
        "the ACK still finds its transaction: {out:?}"
    );
}

#[test]
fn a_renewed_lease_outlives_its_first_expiry() {
    let mut e = bound();
    let mut renew = client(MessageType::Request, 11);
    renew.flags = 0;
    renew.ciaddr = LEASED;
    let (_, relayed) = to_server(&e.handle(t(300), sub_in(&from_alice(&renew))));
    e.handle(
        t(300),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    // The first lease's timer comes due and is found stale: nothing happens.
    assert!(e.next_deadline().is_some_and(|d| d <= t(600).mono));
    assert!(e.handle(t(600), Input::Tick).is_empty());
    assert_eq!(e.bindings().count(), 1);
    assert!(e.handle(t(899), Input::Tick).is_empty());
    assert_eq!(
        e.handle(t(900), Input::Tick),
        vec![
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(binding(w(900)))),
        ]
    );
    assert_eq!(e.next_deadline(), None, "nothing left to wait for");
}

#[test]
fn a_wall_clock_step_neither_expires_nor_stalls_a_lease() {
    let mut e = bound();
    // NTP (or an operator) steps the wall clock a day ahead ten seconds after the ACK:
    // the 600 s lease is not over.
    let stepped = |secs| Now {
        unix: t(secs).unix + 86_400,
        ..t(secs)
    };
    assert!(e.handle(stepped(10), Input::Tick).is_empty());
    assert_eq!(e.bindings().count(), 1, "the lease outlives the step");
    // Stepped back a day instead: the lease still ends 600 s after the ACK.
    let back = |secs| Now {
        unix: t(secs).unix - 86_400,
        ..t(secs)
    };
    assert!(e.handle(back(599), Input::Tick).is_empty());
    let out = e.handle(back(600), Input::Tick);
    assert_eq!(
        out,
        vec![
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(binding(w(600)))),
        ],
        "the store keeps the wall-clock end the ACK gave"
    );
}

#[test]
fn restore_measures_what_is_left_on_the_wall_clock() {
    let mut e = engine();
    // Stored at wall time 100; restarted at wall time 40: 60 s left, kept monotonic.
    let out = e.restore(t(40), vec![binding(w(100))]);
    assert_eq!(out.len(), 1);
    assert_eq!(e.next_deadline(), Some(t(100).mono));
}

#[test]
fn restore_reinstalls_live_bindings_only() {
    let mut e = engine();
    let live = binding(w(100));
    let mut dead = binding(w(5));
    dead.mac = MALLORY;
    let out = e.restore(t(10), vec![live.clone(), dead]);
    assert_eq!(
        out,
        vec![
            Output::Binding(BindingChange::Install(live)),
            Output::Store(StoreWrite::RemoveBinding(MALLORY)),
        ]
    );
    assert_eq!(e.bindings().count(), 1);
}

#[test]
fn floods_are_rate_limited_per_subscriber() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 1));
    let sent = (0..20)
        .filter(|_| !e.handle(t(0), sub_in(&d)).is_empty())
        .count();
    assert_eq!(sent, 8, "the burst, then nothing");
    assert_eq!(e.counters().dropped(DropReason::RateLimited), 12);
    assert_eq!(e.handle(t(1), sub_in(&d)).len(), 1, "refills at 1/s");
}

#[test]
fn spoofed_and_untrusted_inputs_are_dropped() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 1));
    let spoof = Input::FromSubscriber {
        port: 3,
        vlan: 100,
        inner_vlan: 0,
        src_mac: MALLORY,
        payload: &d,
    };
    assert!(e.handle(t(0), spoof).is_empty());
    let mut with82 = client(MessageType::Discover, 1);
    with82.set_option(82, vec![1, 1, b'x']);
    assert!(e.handle(t(0), sub_in(&from_alice(&with82))).is_empty());
    assert!(e.handle(t(0), sub_in(&d[..100])).is_empty());
    assert_eq!(e.counters().dropped(DropReason::ChaddrMismatch), 1);
    assert_eq!(e.counters().dropped(DropReason::RelayInfoFromClient), 1);
    assert_eq!(e.counters().dropped(DropReason::Malformed), 1);
    // A reply from a host that is not the ISP's server is ignored.
    let (_, relayed) = to_server(&e.handle(t(0), sub_in(&d)));
    let forged = server_reply(&relayed, MessageType::Ack, Ipv4Addr::new(198, 18, 9, 9));
    assert!(e
        .handle(t(0), srv_in(Ipv4Addr::new(198, 18, 9, 9), &forged))
        .is_empty());
    assert_eq!(e.counters().dropped(DropReason::UnexpectedServer), 1);
    assert_eq!(e.bindings().count(), 0);
}

#[test]
fn relay_info_from_a_client_is_counted_and_logged_once_a_minute_per_mac() {
    let mut e = engine();
    let mut with82 = client(MessageType::Discover, 1);
    with82.set_option(82, vec![1, 1, b'x']);
    let with82 = from_alice(&with82);
    let mut with_giaddr = client(MessageType::Discover, 2);
    with_giaddr.giaddr = Ipv4Addr::new(10, 9, 9, 9);
    let with_giaddr = from_alice(&with_giaddr);
    for (at, p) in [(0, &with82), (1, &with_giaddr), (59, &with82)] {
        assert!(e.handle(t(at), sub_in(p)).is_empty());
    }
    let c = e.counters();
    assert_eq!(c.dropped(DropReason::RelayInfoFromClient), 3);
    assert_eq!(c.relay_info_logged, 1, "one line in the first minute");
    // Another source MAC has its own minute.
    let mut other = Message::new_request(MALLORY, 3, MessageType::Discover);
    other.set_option(82, vec![1, 1, b'y']);
    e.handle(
        t(2),
        Input::FromSubscriber {
            port: 3,
            vlan: 100,
            inner_vlan: 0,
            src_mac: MALLORY,
            payload: &other.encode(),
        },
    );
    assert_eq!(e.counters().relay_info_logged, 2);
    // A minute after its last line, the first MAC is logged again.
    e.handle(t(60), sub_in(&with82));
    assert_eq!(e.counters().relay_info_logged, 3);
    assert_eq!(e.counters().dropped(DropReason::RelayInfoFromClient), 5);
    // Housekeeping forgets MACs that have been quiet for a minute.
    e.handle(t(200), Input::Tick);
    assert!(e.relay_info_log.is_empty());
}

#[test]
fn revoke_removes_the_binding() {
    let mut e = bound();
    let out = e.handle(t(30), Input::Revoke { mac: ALICE });
    assert_eq!(
        out,
        vec![
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(binding(w(600)))),
        ]
    );
}

#[test]
fn client_retransmissions_do_not_postpone_failover() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 3));
    to_server(&e.handle(t(0), sub_in(&d)));
    // The client retransmits before the server timeout; still to the first server.
    let (dst, _) = to_server(&e.handle(t(0) + Duration::from_millis(400), sub_in(&d)));
    assert_eq!(dst.ip(), &S1);
    // The original deadline stands: failover at 500 ms, not 900 ms.
    let (dst, _) = to_server(&e.handle(t(0) + Duration::from_millis(500), Input::Tick));
    assert_eq!(dst.ip(), &S2);
    // Further retransmissions follow the failover.
    let (dst, _) = to_server(&e.handle(t(0) + Duration::from_millis(600), sub_in(&d)));
    assert_eq!(dst.ip(), &S2);
}

#[test]
fn a_relay_below_is_trusted_only_on_its_port() {
    const HEAD_END: MacAddr = MacAddr([0x02, 0, 0x5e, 0x20, 0, 0x01]);
    const HEAD_END_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
    let mut d = client(MessageType::Discover, 0x99);
    d.giaddr = HEAD_END_IP;
    d.hops = 1;
    d.set_option(code::RELAY_AGENT_INFO, vec![1, 3, b'c', b'm', b't']);
    let wire = d.encode();
    let from_head_end = Input::FromSubscriber {
        port: 3,
        vlan: 100,
        inner_vlan: 0,
        src_mac: HEAD_END,
        payload: &wire,
    };
    let mut e = engine();
    assert!(e.handle(t(0), from_head_end).is_empty());
    assert_eq!(e.counters().dropped(DropReason::RelayInfoFromClient), 1);

    e.trusted_relay_ports = vec![3];
    let (_, relayed) = to_server(&e.handle(t(0), from_head_end));
    let r = Message::decode(&relayed).expect("decodes");
    assert_eq!((r.giaddr, r.hops), (RELAY, 2));
    let info = RelayAgentInfo::decode(r.option(82).expect("82")).expect("parses");
    assert_eq!(
        info.get(sub::SUBSCRIBER_ID),
        Some(&b"C1001"[..]),
        "ours, not the head end's"
    );

    let out = e.handle(
        t(0),
        srv_in(S1, &server_reply(&relayed, MessageType::Offer, S1)),
    );
    let [Output::ToSubscriber(reply)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(
        (reply.dst_mac, reply.dst_ip, reply.dst_port, reply.broadcast),
        (HEAD_END, HEAD_END_IP, 67, false),
        "answered as a server answers a relay"
    );
    let o = Message::decode(&reply.payload).expect("decodes");
    assert_eq!(o.giaddr, HEAD_END_IP);
    assert_eq!(
        o.option(82),
        Some(&[1u8, 3, b'c', b'm', b't'][..]),
        "its option 82 back"
    );
    assert_eq!(o.ipv4_option(code::SERVER_ID), Some(GW_ID));
}

#[test]
fn a_flood_of_new_macs_is_counted_not_all_logged() {
    let mut e = engine();
    e.limiter = RateLimiter::new(1.0, 8, 10_000);
    let mut written = 0;
    for i in 0..1500u32 {
        let b = i.to_be_bytes();
        let mac = MacAddr([0x02, 0x01, b[0], b[1], b[2], b[3]]);
        let m = Message::new_request(mac, i, MessageType::Discover).encode();
        let out = e.handle(
            t(0),
            Input::FromSubscriber {
                port: 3,
                vlan: 100,
                inner_vlan: 0,
                src_mac: mac,
                payload: &m,
            },
        );
        written += out.len();
    }
    assert_eq!(written, 1000, "the burst is recorded");
    assert_eq!(e.counters().refusals, 1500);
    assert_eq!(e.counters().refusals_unlogged, 500);
    let by_reason = e.counters().refusals_by_reason;
    assert_eq!(
        by_reason[0],
        1500,
        "all {}, logged or not",
        RefusalReason::NAMES[0]
    );
    assert_eq!(by_reason.iter().sum::<u64>(), 1500);
}

#[test]
fn each_subscriber_goes_to_its_own_isp() {
    const S_B: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
    const BOB: MacAddr = MacAddr([0x02, 0, 0x5e, 0x10, 0, 0x02]);
    let mut c = cfg();
    c.isps.push(IspDhcpConfig {
        name: "isp-b".into(),
        servers: vec![S_B],
        link_selection: None,
        refusal_webhook: None,
        refusal_webhook_secret: None,
    });
    let mut r = MemoryDirectory::new(PasswordCost::TEST);
    for (mac, isp) in [(ALICE, "isp-a"), (BOB, "isp-b")] {
        r.add(&NewSubscriber {
            mac,
            isp: isp.into(),
            customer_id: format!("C-{isp}"),
            password: None,
            status: Status::Active,
        })
        .expect("subscriber");
    }
    let mut e = Engine::new(&c, r);
    for (mac, want) in [(ALICE, S1), (BOB, S_B)] {
        let m = Message::new_request(mac, 1, MessageType::Discover).encode();
        let out = e.handle(
            t(0),
            Input::FromSubscriber {
                port: 3,
                vlan: 100,
                inner_vlan: 0,
                src_mac: mac,
                payload: &m,
            },
        );
        let (dst, relayed) = to_server(&out);
        assert_eq!(dst.ip(), &want);
        let info = RelayAgentInfo::decode(
            Message::decode(&relayed)
                .expect("decodes")
                .option(82)
                .expect("82"),
        )
        .expect("parses");
        assert_eq!(info.get(sub::LINK_SELECTION).is_some(), want == S1);
    }
    // A reply for Bob from A's server is not taken.
    let m = Message::new_request(BOB, 1, MessageType::Discover).encode();
    let forged = server_reply(&m, MessageType::Offer, S1);
    assert!(e.handle(t(0), srv_in(S1, &forged)).is_empty());
    assert_eq!(e.counters().dropped(DropReason::UnexpectedServer), 1);
}

#[test]
fn decline_removes_and_is_forwarded() {
    let mut e = bound();
    let mut dec = client(MessageType::Decline, 13);
    dec.set_option(code::SERVER_ID, GW_ID.octets().to_vec());
    dec.set_option(code::REQUESTED_IP, LEASED.octets().to_vec());
    let out = e.handle(t(5), sub_in(&from_alice(&dec)));
    assert!(
        matches!(&out[..], [
            Output::Store(StoreWrite::RemoveBinding(m)),
            Output::Binding(BindingChange::Remove(_)),
            Output::ToServer { dst, .. },
        ] if *m == ALICE && dst.ip() == &S1),
        "{out:?}"
    );
}

#[test]
fn inform_is_answered_without_a_binding() {
    let mut e = engine();
    let mut inf = client(MessageType::Inform, 14);
    inf.flags = 0;
    inf.ciaddr = Ipv4Addr::new(198, 18, 100, 77);
    let (_, relayed) = to_server(&e.handle(t(0), sub_in(&from_alice(&inf))));
    let mut ack = Message::decode(&server_reply(&relayed, MessageType::Ack, S1)).expect("ack");
    ack.yiaddr = Ipv4Addr::UNSPECIFIED;
    ack.remove_option(code::LEASE_TIME);
    let out = e.handle(t(0), srv_in(S1, &ack.encode()));
    let [Output::ToSubscriber(r)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!((r.dst_ip, r.dst_mac), (inf.ciaddr, ALICE), "to ciaddr");
    assert_eq!(e.bindings().count(), 0);
}

#[test]
fn inform_is_relayed_so_that_the_answer_comes_back_through_the_gateway() {
    let mut e = engine();
    let mut inf = client(MessageType::Inform, 15);
    inf.flags = 0;
    inf.ciaddr = Ipv4Addr::new(198, 18, 100, 77);
    let (_, relayed) = to_server(&e.handle(t(0), sub_in(&from_alice(&inf))));
    let m = Message::decode(&relayed).expect("decodes");
    // ciaddr 0 and giaddr set: the server answers the relay (RFC 2131 §4.1), not ciaddr.
    assert_eq!((m.ciaddr, m.giaddr), (Ipv4Addr::UNSPECIFIED, RELAY));
    // Kea answers such an INFORM with the broadcast bit set; a server may even fill yiaddr.
    let mut ack = Message::decode(&server_reply(&relayed, MessageType::Ack, S1)).expect("ack");
    ack.flags = FLAG_BROADCAST;
    let out = e.handle(t(0), srv_in(S1, &ack.encode()));
    let [Output::ToSubscriber(r)] = &out[..] else {
        panic!("want only the reply, no binding: {out:?}");
    };
    assert_eq!(
        (r.dst_ip, r.dst_mac, r.broadcast),
        (inf.ciaddr, ALICE, false),
        "unicast to ciaddr, RFC 2131 §4.3.5"
    );
    let back = Message::decode(&r.payload).expect("reply decodes");
    assert_eq!(
        (back.ciaddr, back.flags),
        (inf.ciaddr, 0),
        "the client's own fields"
    );
    assert_eq!(e.bindings().count(), 0);
}

#[test]
fn a_bound_subscribers_inform_needs_no_credential() {
    let mut e = bound();
    e.require_credential = true;
    let mut inf = client(MessageType::Inform, 16);
    inf.ciaddr = LEASED;
    let out = e.handle(t(1), sub_in(&from_alice(&inf)));
    assert!(matches!(&out[..], [Output::ToServer { .. }]), "{out:?}");
    // From another address than the bound one it is a logon like any other.
    inf.ciaddr = Ipv4Addr::new(198, 18, 100, 99);
    inf.xid = 17;
    let out = e.handle(t(2), sub_in(&from_alice(&inf)));
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))] if r.reason == "no credential"),
        "{out:?}"
    );
    // Suspended: refused though bound.
    e.directory_mut()
        .set_status(ALICE, Status::Suspended)
        .expect("suspend");
    inf.ciaddr = LEASED;
    inf.xid = 18;
    let out = e.handle(t(3), sub_in(&from_alice(&inf)));
    assert!(
        matches!(&out[..], [Output::Store(StoreWrite::Refusal(r))] if r.reason == "subscriber suspended"),
        "{out:?}"
    );
}

#[test]
fn qinq_subscribers_keep_both_vlans() {
    let mut e = engine();
    let d = from_alice(&client(MessageType::Discover, 21));
    let qinq = |payload| Input::FromSubscriber {
        port: 3,
        vlan: 100,
        inner_vlan: 2001,
        src_mac: ALICE,
        payload,
    };
    let (_, relayed) = to_server(&e.handle(t(0), qinq(&d)));
    let m = Message::decode(&relayed).expect("decodes");
    let info = RelayAgentInfo::decode(m.option(82).expect("82")).expect("parses");
    assert_eq!(info.get(sub::CIRCUIT_ID), Some(&b"3:100.2001"[..]));
    let mut r = client(MessageType::Request, 22);
    r.set_option(code::REQUESTED_IP, LEASED.octets().to_vec());
    let r = from_alice(&r);
    let (_, relayed) = to_server(&e.handle(t(0), qinq(&r)));
    let out = e.handle(
        t(0),
        srv_in(S1, &server_reply(&relayed, MessageType::Ack, S1)),
    );
    let Some(Output::Binding(BindingChange::Install(b))) = out.get(1) else {
        panic!("{out:?}");
    };
    assert_eq!((b.port, b.vlan, b.inner_vlan), (3, 100, 2001));
    let Some(Output::ToSubscriber(reply)) = out.get(2) else {
        panic!("{out:?}");
    };
    assert_eq!((reply.vlan, reply.inner_vlan), (100, 2001));
}

/// `DropReason::ALL` is in declaration order without gaps and every name is distinct:
/// the counters published by name are then one per reason.
#[test]
fn every_reason_is_listed_once() {
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r:?}");
    }
    let names: std::collections::HashSet<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names.len(), DropReason::ALL.len());
}

/// A reload that removes the subscriber's ISP releases its binding (store and fast path);
/// one that keeps it, or changes only its servers, does not.
#[test]
fn a_reload_without_the_isp_releases_its_bindings() {
    let mut e = bound();
    let mut out = Vec::new();
    let mut moved = cfg();
    moved.isps[0].servers = vec![S2];
    assert_eq!(e.set_isps(&moved, &mut out), 0);
    assert!(out.is_empty(), "{out:?}");
    let mut added = moved.clone();
    added.isps.push(IspDhcpConfig {
        name: "isp-b".into(),
        servers: vec![S1],
        link_selection: None,
        refusal_webhook: None,
        refusal_webhook_secret: None,
    });
    assert_eq!(e.set_isps(&added, &mut out), 0);
    let mut gone = added.clone();
    gone.isps.remove(0);
    assert_eq!(e.set_isps(&gone, &mut out), 1);
    assert_eq!(
        out,
        vec![
            Output::Store(StoreWrite::RemoveBinding(ALICE)),
            Output::Binding(BindingChange::Remove(binding(w(600)))),
        ]
    );
    // Her next DISCOVER finds no route to her ISP: no relay.
    let out = e.handle(
        t(40),
        sub_in(&from_alice(&client(MessageType::Discover, 9))),
    );
    assert!(!relays(&out), "{out:?}");
}
