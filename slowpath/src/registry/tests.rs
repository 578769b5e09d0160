use std::net::Ipv4Addr;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn reg() -> Registry {
    let mut r = Registry::open_in_memory()
        .expect("open")
        .with_password_cost(PasswordCost::TEST);
    r.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: Some(1001),
        dhcp_servers: vec![Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 1, 3)],
    })
    .expect("isp");
    r
}

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn new_sub(n: u8) -> NewSubscriber {
    NewSubscriber {
        mac: mac(n),
        isp: "isp-a".into(),
        customer_id: format!("C{n}"),
        password: Some("pw".into()),
        status: Status::Active,
    }
}

#[test]
fn isp_roundtrip_keeps_server_order() {
    let mut r = reg();
    let isps = r.list_isps().expect("list");
    assert_eq!(isps.len(), 1);
    assert_eq!(isps[0].dhcp_servers[1], Ipv4Addr::new(198, 18, 1, 3));
    r.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: None,
        dhcp_servers: vec![Ipv4Addr::new(198, 18, 1, 9)],
    })
    .expect("replace");
    let isps = r.list_isps().expect("list");
    assert_eq!(isps[0].dhcp_servers, vec![Ipv4Addr::new(198, 18, 1, 9)]);
    assert_eq!(isps[0].label, None);
}

#[test]
fn subscriber_add_list_remove() {
    let mut r = reg();
    r.add_subscriber(&new_sub(1)).expect("add");
    assert!(matches!(
        r.add_subscriber(&new_sub(1)),
        Err(RegistryError::DuplicateSubscriber(m)) if m == mac(1)
    ));
    let mut other = new_sub(2);
    other.isp = "nope".into();
    assert!(matches!(
        r.add_subscriber(&other),
        Err(RegistryError::UnknownIsp(_))
    ));
    let s = r.subscriber(mac(1)).expect("get").expect("present");
    assert_eq!(s.customer_id, "C1");
    let hash = s.password_hash.expect("hashed");
    assert!(password::verify(&hash, b"pw") && !hash.contains("pw$"));
    assert_eq!(r.list_subscribers(Some("isp-a")).expect("list").len(), 1);
    assert_eq!(r.list_subscribers(Some("isp-b")).expect("list").len(), 0);
    assert!(matches!(
        r.remove_isp("isp-a"),
        Err(RegistryError::IspInUse(_))
    ));
    assert_eq!(r.remove_subscriber(mac(1)).expect("remove"), None);
    assert!(matches!(
        r.remove_subscriber(mac(1)),
        Err(RegistryError::NoSuchSubscriber(_))
    ));
    assert!(r.remove_isp("isp-a").expect("now free"));
}

#[test]
fn an_isp_goes_with_its_subscribers_and_bindings() {
    let mut r = reg();
    r.add_subscriber(&new_sub(1)).expect("add");
    r.add_subscriber(&new_sub(2)).expect("add");
    r.upsert_binding(&Binding {
        mac: mac(1),
        isp: "isp-a".into(),
        ipv4: Ipv4Addr::new(198, 18, 1, 10),
        expires: UNIX_EPOCH + Duration::from_secs(4_000_000_000),
        server: Ipv4Addr::new(198, 18, 1, 2),
        port: 0,
        vlan: 0,
        inner_vlan: 0,
    })
    .expect("binding");
    assert_eq!(r.remove_isp_with_subscribers("isp-a").expect("remove"), 2);
    assert!(!r.has_isp("isp-a").expect("has"));
    assert_eq!(r.list_subscribers(None).expect("list").len(), 0);
    assert_eq!(r.binding(mac(1)).expect("binding"), None);
    assert_eq!(r.remove_isp_with_subscribers("isp-a").expect("again"), 0);
}

#[test]
fn bindings_and_refusals_persist() {
    let dir = std::env::temp_dir().join(format!("ispmux-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("r.db");
    let b = Binding {
        mac: mac(1),
        isp: "isp-a".into(),
        ipv4: Ipv4Addr::new(198, 18, 100, 10),
        expires: UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        server: Ipv4Addr::new(198, 18, 1, 2),
        port: 3,
        vlan: 100,
        inner_vlan: 0,
    };
    {
        let mut r = Registry::open(&path)
            .expect("open")
            .with_password_cost(PasswordCost::TEST);
        r.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: None,
            dhcp_servers: vec![],
        })
        .expect("isp");
        r.add_subscriber(&new_sub(1)).expect("add");
        r.upsert_binding(&b).expect("bind");
        r.record_refusal(&Refusal {
            at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            mac: mac(9),
            isp: None,
            reason: "unknown subscriber".into(),
        })
        .expect("refusal");
    }
    let mut r = Registry::open(&path).expect("reopen");
    assert_eq!(r.bindings().expect("bindings"), vec![b.clone()]);
    assert_eq!(
        r.refusals(10).expect("refusals")[0].reason,
        "unknown subscriber"
    );
    assert_eq!(r.remove_subscriber(mac(1)).expect("remove"), Some(b));
    assert!(
        r.bindings().expect("bindings").is_empty(),
        "binding cascades"
    );
    drop(r);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn csv_import_is_all_or_nothing() {
    let mut r = reg();
    let good = "mac,isp,customer_id,password,status\n\
                02:00:00:00:00:01,isp-a,C1,pw1,\n\
                02-00-00-00-00-02, isp-a ,C2,,suspended\n";
    assert_eq!(
        import::import_csv(&mut r, good.as_bytes()).expect("imports"),
        2
    );
    let s2 = r.subscriber(mac(2)).expect("get").expect("present");
    assert_eq!((s2.status, s2.password_hash), (Status::Suspended, None));
    let bad = "mac,isp,customer_id\n02:00:00:00:00:03,isp-a,C3\nnot-a-mac,isp-a,C4\n";
    match import::import_csv(&mut r, bad.as_bytes()) {
        Err(RegistryError::Csv { line: 3, .. }) => {}
        other => panic!("want a line-3 error, got {other:?}"),
    }
    assert_eq!(r.subscriber(mac(3)).expect("get"), None, "rolled back");
    let no_header = "02:00:00:00:00:05,isp-a,C5\n";
    assert!(matches!(
        import::import_csv(&mut r, no_header.as_bytes()),
        Err(RegistryError::Csv { line: 1, .. })
    ));
}

#[test]
fn suspension_deletes_the_binding_and_a_new_password_replaces_the_old() {
    let mut r = reg();
    r.add_subscriber(&new_sub(1)).expect("add");
    let b = Binding {
        mac: mac(1),
        isp: "isp-a".into(),
        ipv4: Ipv4Addr::new(198, 18, 1, 10),
        expires: UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        server: Ipv4Addr::new(198, 18, 1, 2),
        port: 0,
        vlan: 0,
        inner_vlan: 0,
    };
    r.upsert_binding(&b).expect("bind");
    assert_eq!(r.suspend_subscriber(mac(1)).expect("suspend"), Some(b));
    assert_eq!(r.binding(mac(1)).expect("binding"), None);
    let s = r
        .subscriber(mac(1))
        .expect("read")
        .expect("still registered");
    assert_eq!(s.status, Status::Suspended);
    assert_eq!(r.suspend_subscriber(mac(1)).expect("again"), None);
    assert!(matches!(
        r.suspend_subscriber(mac(9)),
        Err(RegistryError::NoSuchSubscriber(_))
    ));

    let old = s.password_hash.expect("hash");
    r.set_password(mac(1), Some("new")).expect("passwd");
    let new = r
        .subscriber(mac(1))
        .expect("read")
        .and_then(|s| s.password_hash)
        .expect("hash");
    assert_ne!(old, new);
    assert!(password::verify(&new, b"new") && !password::verify(&new, b"pw"));
    r.set_password(mac(1), None).expect("clear");
    assert_eq!(
        r.subscriber(mac(1))
            .expect("read")
            .expect("sub")
            .password_hash,
        None
    );
    assert!(matches!(
        r.set_password(mac(9), Some("x")),
        Err(RegistryError::NoSuchSubscriber(_))
    ));
}

/// What another writer (the CLI, an import) does to the registry reaches a reader that
/// follows the change log, in order, with each MAC's state now.
#[test]
fn the_change_log_carries_every_writers_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("registry.db");
    let open = || {
        Registry::open(&path)
            .expect("open")
            .with_password_cost(PasswordCost::TEST)
    };
    let mut cli = open();
    cli.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: None,
        dhcp_servers: vec![Ipv4Addr::new(198, 18, 1, 2)],
    })
    .expect("isp");
    cli.add_subscriber(&new_sub(1)).expect("add");
    let mut daemon = open();
    let (macs, seq) = daemon.registered_macs().expect("load");
    assert_eq!(macs, vec![mac(1)]);
    assert!(daemon.changes_since(seq, 100).expect("none").is_empty());

    cli.add_subscriber(&new_sub(2)).expect("add");
    cli.remove_subscriber(mac(1)).expect("remove");
    cli.add_subscriber(&new_sub(3)).expect("add");
    cli.suspend_subscriber(mac(3))
        .expect("suspend: still registered, no change");
    let csv = "mac,isp,customer_id,password\n02:00:00:00:00:04,isp-a,C4,pw\n";
    import::import_csv(&mut cli, csv.as_bytes()).expect("import");
    let changes = daemon.changes_since(seq, 100).expect("changes");
    let seen: Vec<(MacAddr, bool)> = changes.iter().map(|c| (c.1, c.2)).collect();
    assert_eq!(
        seen,
        vec![
            (mac(2), true),
            (mac(1), false),
            (mac(3), true),
            (mac(4), true)
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].0 < w[1].0), "in order");
    // Paged, and forgotten once read.
    let first = daemon.changes_since(seq, 1).expect("page");
    assert_eq!(first.len(), 1);
    let last = changes.last().expect("some").0;
    assert_eq!(
        daemon.forget_changes_through(last).expect("forget"),
        5,
        "with the first add"
    );
    assert!(daemon.changes_since(seq, 100).expect("none").is_empty());
    // Positions are never reused after the log is emptied (AUTOINCREMENT).
    cli.add_subscriber(&new_sub(5)).expect("add");
    let next = daemon.changes_since(last, 100).expect("changes");
    assert_eq!(next.len(), 1);
    assert!(next[0].0 > last);
}

#[test]
fn refusal_notices_start_at_the_first_ask_and_resume_where_they_were() {
    let mut r = reg();
    let refuse = |r: &mut Registry, isp: Option<&str>, reason: &str| {
        r.record_refusal(&Refusal {
            at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            mac: mac(7),
            isp: isp.map(Into::into),
            reason: reason.into(),
        })
        .expect("refusal");
    };
    refuse(&mut r, Some("isp-a"), "before the webhook");
    let start = r.notice_cursor("isp-a").expect("cursor");
    assert!(r
        .refusals_after("isp-a", start, 10)
        .expect("after")
        .is_empty());
    refuse(&mut r, Some("isp-a"), "bad credential");
    refuse(&mut r, Some("isp-b"), "suspended");
    refuse(&mut r, None, "unknown subscriber");
    refuse(&mut r, Some("isp-a"), "ISP sent DHCPNAK");
    let got = r.refusals_after("isp-a", start, 10).expect("after");
    let reasons: Vec<&str> = got.iter().map(|(_, f)| f.reason.as_str()).collect();
    assert_eq!(reasons, ["bad credential", "ISP sent DHCPNAK"]);
    assert!(got.iter().all(|(_, f)| f.isp.as_deref() == Some("isp-a")));
    assert_eq!(r.refusals_after("isp-a", start, 1).expect("after").len(), 1);
    r.set_notice_cursor("isp-a", got[0].0).expect("set");
    assert_eq!(r.notice_cursor("isp-a").expect("cursor"), got[0].0);
    let rest = r.refusals_after("isp-a", got[0].0, 10).expect("after");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.reason, "ISP sent DHCPNAK");
}

fn bind(r: &mut Registry, n: u8) {
    r.upsert_binding(&Binding {
        mac: mac(n),
        isp: "isp-a".into(),
        ipv4: Ipv4Addr::new(198, 18, 1, n),
        expires: UNIX_EPOCH + Duration::from_secs(4_000_000_000),
        server: Ipv4Addr::new(198, 18, 1, 2),
        port: 0,
        vlan: 0,
        inner_vlan: 0,
    })
    .expect("binding");
}

#[test]
fn add_hashed_is_all_or_nothing_and_names_the_bad_item() {
    let mut r = reg();
    let sub = |n: u8, isp: &str| Subscriber {
        mac: mac(n),
        isp: isp.into(),
        customer_id: format!("C{n}"),
        password_hash: Some("$argon2id$stored-as-is".into()),
        status: Status::Active,
    };
    match r.add_hashed(&[sub(1, "isp-a"), sub(2, "isp-z")]) {
        Err(RegistryError::Item { index: 1, source }) => {
            assert!(matches!(*source, RegistryError::UnknownIsp(_)), "{source}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(r.subscriber(mac(1)).expect("read"), None, "nothing written");
    match r.add_hashed(&[sub(1, "isp-a"), sub(1, "isp-a")]) {
        Err(RegistryError::Item { index: 1, source }) => {
            assert!(matches!(*source, RegistryError::DuplicateSubscriber(_)))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.add_hashed(&[sub(1, "isp-a"), sub(2, "isp-a")])
            .expect("add"),
        2
    );
    assert_eq!(
        r.subscriber(mac(2))
            .expect("read")
            .and_then(|s| s.password_hash),
        Some("$argon2id$stored-as-is".into())
    );
    // The bulk write's page cache is given back, whether the batch went in or not.
    let cache = |r: &Registry| -> i64 {
        r.conn
            .pragma_query_value(None, "cache_size", |c| c.get(0))
            .expect("cache_size")
    };
    let before = cache(&r);
    assert_ne!(before, -BULK_CACHE_KIB);
    assert!(r.add_hashed(&[sub(3, "isp-z")]).is_err());
    assert_eq!(r.add_hashed(&[sub(3, "isp-a")]).expect("add"), 1);
    assert_eq!(cache(&r), before);
}

#[test]
fn a_bulk_write_waits_for_the_write_lock_instead_of_failing_on_a_stale_read() {
    // Another connection holds the write lock a moment and commits a change: an import that
    // had read before it (the ISP check) could not write after it; one that takes the lock
    // first waits its turn (busy timeout) and goes in whole.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    let mut r = Registry::open(&path)
        .expect("open")
        .with_password_cost(PasswordCost::TEST);
    r.upsert_isp(&Isp {
        name: "isp-a".into(),
        label: None,
        dhcp_servers: vec![],
    })
    .expect("isp");
    let mut other = Registry::open(&path).expect("second connection");
    other
        .conn_mut()
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO isp (name) VALUES ('isp-b')")
        .expect("lock");
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.conn_mut().execute_batch("COMMIT").expect("unlock");
    });
    let csv = "mac,isp,customer_id\n02:00:00:00:00:01,isp-a,C1\n02:00:00:00:00:02,isp-a,C2\n";
    assert_eq!(
        import::import_csv(&mut r, csv.as_bytes()).expect("import"),
        2
    );
    holder.join().expect("holder");
}

#[test]
fn change_sets_only_what_it_names_and_suspending_drops_the_binding() {
    let mut r = reg();
    r.add_subscriber(&new_sub(1)).expect("add");
    bind(&mut r, 1);
    let before = r.subscriber(mac(1)).expect("read").expect("sub");
    let b = r
        .change_subscriber(
            mac(1),
            &SubscriberChange {
                customer_id: Some("C9".into()),
                ..Default::default()
            },
        )
        .expect("change");
    assert_eq!(b, None);
    let after = r.subscriber(mac(1)).expect("read").expect("sub");
    assert_eq!(after.customer_id, "C9");
    assert_eq!(after.password_hash, before.password_hash);
    let b = r
        .change_subscriber(
            mac(1),
            &SubscriberChange {
                password_hash: Some(None),
                status: Some(Status::Suspended),
                ..Default::default()
            },
        )
        .expect("change");
    assert_eq!(b.map(|b| b.ipv4), Some(Ipv4Addr::new(198, 18, 1, 1)));
    let after = r.subscriber(mac(1)).expect("read").expect("sub");
    assert_eq!(
        (after.password_hash, after.status),
        (None, Status::Suspended)
    );
    assert_eq!(r.binding(mac(1)).expect("read"), None);
    assert!(matches!(
        r.change_subscriber(mac(7), &SubscriberChange::default()),
        Err(RegistryError::NoSuchSubscriber(_))
    ));
    assert!(matches!(
        r.change_subscriber(
            mac(1),
            &SubscriberChange {
                customer_id: Some(" ".into()),
                ..Default::default()
            }
        ),
        Err(RegistryError::Invalid { .. })
    ));
}

#[test]
fn pages_follow_the_cursor_and_filters() {
    let mut r = reg();
    for n in 1..=5 {
        let mut s = new_sub(n);
        s.password = None;
        s.customer_id = if n % 2 == 0 {
            format!("even-{n}")
        } else {
            format!("odd-{n}")
        };
        if n == 5 {
            s.status = Status::Suspended;
        }
        r.add_subscriber(&s).expect("add");
    }
    let macs = |q: &SubscriberQuery| -> Vec<u8> {
        r.page_subscribers(q)
            .expect("page")
            .into_iter()
            .map(|s| s.mac.0[5])
            .collect()
    };
    let mut q = SubscriberQuery {
        limit: 2,
        ..Default::default()
    };
    assert_eq!(macs(&q), [1, 2]);
    q.after = Some(mac(2));
    assert_eq!(macs(&q), [3, 4]);
    q.after = Some(mac(4));
    assert_eq!(macs(&q), [5]);
    let q = SubscriberQuery {
        customer_id_prefix: Some("odd".into()),
        status: Some(Status::Active),
        isp: Some("isp-a".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(macs(&q), [1, 3]);
    let q = SubscriberQuery {
        isp: Some("isp-b".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(macs(&q).is_empty());
    // A prefix with LIKE's wildcards matches them literally.
    let q = SubscriberQuery {
        customer_id_prefix: Some("%".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(macs(&q).is_empty());
}

#[test]
fn bindings_and_refusals_by_isp() {
    let mut r = reg();
    r.add_subscriber(&new_sub(1)).expect("add");
    bind(&mut r, 1);
    assert_eq!(r.bindings_of(Some("isp-a")).expect("read").len(), 1);
    assert!(r.bindings_of(Some("isp-b")).expect("read").is_empty());
    for isp in [Some("isp-a"), None, Some("isp-b")] {
        r.record_refusal(&Refusal {
            at: UNIX_EPOCH + Duration::from_secs(1),
            mac: mac(1),
            isp: isp.map(str::to_owned),
            reason: "x".into(),
        })
        .expect("refusal");
    }
    assert_eq!(r.refusals_of(Some("isp-a"), 10).expect("read").len(), 1);
    assert_eq!(r.refusals_of(None, 10).expect("read").len(), 3);
    assert_eq!(r.refusals(2).expect("read").len(), 2);
}
