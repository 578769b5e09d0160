//! The reload plan: what is refused, what changes, and the table steps, from pairs of files.

use std::path::Path;

use ispmux_dataplane::table::{Direction, Fec, IlmAction, SubscriberKey};
use ispmux_dataplane::wire::MacAddr;
use ispmux_dataplane::TableUpdate;

use super::*;

const BASE: &str = r#"
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
address = "10.0.12.1/30"

[[port]]
name = "isp"
device = "net_null2"
role = "handoff"

[tables.limits]
max_isps = 8

[[tables.isps]]
id = 1
name = "isp-a"
gateway = "198.18.1.1"
upstream = { label = 1001, port = "core", next_hop = "02:00:00:00:00:c1" }

[[tables.isps]]
id = 2
name = "isp-b"
upstream = { label = 1002, port = "core", next_hop = "10.0.12.2" }
handoff = [{ port = "isp", vlan = 12 }]

[[tables.ilm]]
label = 2001
action = { kind = "pop_deliver", isp = 1 }

[[tables.subscribers]]
port = "acc"
mac = "02:00:00:aa:00:01"
isp = 1
ipv4 = "198.18.1.10"

[[tables.subscribers]]
port = "acc"
mac = "02:00:00:bb:00:01"
isp = 2
ipv4 = "198.18.2.10"
"#;

fn loaded(text: &str) -> Loaded {
    let config = crate::parse(text, Path::new("t.toml")).expect("valid");
    let preload = config.preload_tables();
    Loaded { config, preload }
}

fn reload(new: &str) -> Result<Reload, Vec<String>> {
    plan(&loaded(BASE), &loaded(new))
}

fn updates(r: &Reload) -> Vec<TableUpdate> {
    r.steps
        .iter()
        .filter_map(|s| match s {
            TableStep::Update(u) => Some(*u),
            _ => None,
        })
        .collect()
}

fn key(mac: [u8; 6]) -> SubscriberKey {
    SubscriberKey {
        port: 0,
        outer_vid: 0,
        inner_vid: 0,
        mac: MacAddr(mac),
    }
}

#[test]
fn the_same_file_changes_nothing() {
    let r = reload(BASE).expect("live");
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    assert!(r.steps.is_empty(), "{:?}", r.steps);
}

#[test]
fn what_sized_or_bound_something_at_start_is_refused_by_name() {
    let new = BASE
        .replace("lcores = [0, 1]", "lcores = [0, 1, 2]")
        .replace("net_null2", "net_null3")
        .replace("max_isps = 8", "max_isps = 16")
        + "\n[control]\nsocket = \"/tmp/x.sock\"\n[store]\npath = \"/tmp/other.db\"\n";
    let refused = reload(&new).expect_err("fixed parts changed");
    assert_eq!(
        refused,
        ["eal", "port", "control", "tables.limits", "store"],
        "named, in file order, nothing live among them"
    );
    let burst = BASE.replace("pipeline = \"node\"", "pipeline = \"node\"\nburst = 16");
    assert_eq!(reload(&burst).expect_err("burst"), ["dataplane.burst"]);
}

#[test]
fn a_label_change_writes_that_isps_fec_only() {
    let r = reload(&BASE.replace("label = 1001", "label = 1011")).expect("live");
    assert_eq!(r.changes.isps_changed, [1]);
    assert_eq!(r.changes.fecs, 1);
    let fec = Fec {
        label: 1011,
        tc: 0,
        port: 1,
        next_hop: MacAddr([2, 0, 0, 0, 0, 0xc1]),
    };
    assert_eq!(
        updates(&r),
        [TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Upstream,
            fec: Some(fec),
        }]
    );
}

#[test]
fn a_next_hop_by_address_is_followed_not_written() {
    let r = reload(&BASE.replace("label = 1002", "label = 1012")).expect("live");
    assert_eq!(r.changes.isps_changed, [2]);
    match r.steps.as_slice() {
        [TableStep::Attach {
            port: 1,
            addr,
            entry,
        }] => {
            assert_eq!(*addr, Ipv4Addr::new(10, 0, 12, 2));
            assert!(matches!(entry, NextHopEntry::Fec { isp: 2, fec, .. } if fec.label == 1012));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn removing_an_isp_clears_its_fec_gateway_handoff_and_rows() {
    // ISP 1 goes with its subscriber and its label; ISP 2 stays as it was.
    let new = BASE
        .replace(
            "[[tables.isps]]\nid = 1\nname = \"isp-a\"\ngateway = \"198.18.1.1\"\nupstream = { label = 1001, port = \"core\", next_hop = \"02:00:00:00:00:c1\" }\n",
            "",
        )
        .replace(
            "[[tables.ilm]]\nlabel = 2001\naction = { kind = \"pop_deliver\", isp = 1 }\n",
            "",
        )
        .replace(
            "[[tables.subscribers]]\nport = \"acc\"\nmac = \"02:00:00:aa:00:01\"\nisp = 1\nipv4 = \"198.18.1.10\"\n",
            "",
        );
    let r = reload(&new).expect("live");
    assert_eq!(r.changes.isps_removed, [1]);
    assert!(r.changes.isps_changed.is_empty() && r.changes.isps_added.is_empty());
    assert_eq!((r.changes.labels, r.changes.subscribers_removed), (1, 1));
    let u = updates(&r);
    for want in [
        TableUpdate::SetFec {
            isp: 1,
            direction: Direction::Upstream,
            fec: None,
        },
        TableUpdate::SetGateway {
            isp: 1,
            addr: Ipv4Addr::UNSPECIFIED,
        },
        TableUpdate::SetIlm {
            label: 2001,
            action: None,
        },
        TableUpdate::RemoveSubscriber {
            key: key([2, 0, 0, 0xaa, 0, 1]),
        },
    ] {
        assert!(u.contains(&want), "{want:?} not in {u:?}");
    }
    assert!(
        !u.iter()
            .any(|u| matches!(u, TableUpdate::SetFec { isp: 2, .. })),
        "ISP 2 untouched: {u:?}"
    );
}

#[test]
fn adding_an_isp_writes_all_of_it() {
    let new = format!(
        "{BASE}\n[[tables.isps]]\nid = 3\nname = \"isp-c\"\nupstream = {{ label = 1003, port = \"core\", next_hop = \"02:00:00:00:00:c1\" }}\nhandoff = [{{ port = \"isp\", vlan = 13 }}]\n\
         \n[[tables.ilm]]\nlabel = 2003\naction = {{ kind = \"pop_handoff\", isp = 3, port = \"isp\", vlan = 13, router = \"02:00:00:00:00:0c\" }}\n"
    );
    let r = reload(&new).expect("live");
    assert_eq!(r.changes.isps_added, [3]);
    assert_eq!(
        (r.changes.fecs, r.changes.handoffs, r.changes.labels),
        (1, 1, 1)
    );
    let u = updates(&r);
    assert!(u.contains(&TableUpdate::SetHandoff {
        port: 2,
        vid: 13,
        isp: Some(3)
    }));
    assert!(u.contains(&TableUpdate::SetIlm {
        label: 2003,
        action: Some(IlmAction::PopHandoff {
            isp: 3,
            port: 2,
            vid: 13,
            router_mac: MacAddr([2, 0, 0, 0, 0, 0x0c]),
        }),
    }));
}

#[test]
fn a_handoff_moving_between_isps_is_removed_then_written() {
    let new = BASE.replace("vlan = 12", "vlan = 22");
    let r = reload(&new).expect("live");
    assert_eq!(
        updates(&r),
        [
            TableUpdate::SetHandoff {
                port: 2,
                vid: 12,
                isp: None
            },
            TableUpdate::SetHandoff {
                port: 2,
                vid: 22,
                isp: Some(2)
            }
        ]
    );
    assert_eq!(r.changes.isps_changed, [2]);
}

#[test]
fn subscriber_rows_are_added_rebound_and_removed() {
    let new = BASE
        .replace("ipv4 = \"198.18.2.10\"", "ipv4 = \"198.18.2.11\"")
        .replace("mac = \"02:00:00:aa:00:01\"", "mac = \"02:00:00:aa:00:02\"");
    let r = reload(&new).expect("live");
    let c = &r.changes;
    assert_eq!(
        (
            c.subscribers_added,
            c.subscribers_changed,
            c.subscribers_removed
        ),
        (1, 1, 1)
    );
    let b = key([2, 0, 0, 0xbb, 0, 1]);
    let u = updates(&r);
    let at = |want: &TableUpdate| u.iter().position(|x| x == want).expect("present");
    // The old address is released before any row takes an address.
    assert!(
        at(&TableUpdate::Unbind { key: b })
            < at(&TableUpdate::Bind {
                key: b,
                addr: Ipv4Addr::new(198, 18, 2, 11)
            })
    );
    assert!(
        at(&TableUpdate::RemoveSubscriber {
            key: key([2, 0, 0, 0xaa, 0, 1])
        }) < at(&TableUpdate::AddSubscriber {
            key: key([2, 0, 0, 0xaa, 0, 2]),
            isp: 1
        })
    );
}

#[test]
fn ldp_fecs_of_an_isp_are_live() {
    let with_ldp = |fec: &str| {
        BASE.replace("[[tables.ilm]]", "[ldp]\nrouter_id = \"10.0.12.1\"\n\n[[tables.ilm]]")
            .replace(
                "handoff = [{ port = \"isp\", vlan = 12 }]",
                &format!("handoff = [{{ port = \"isp\", vlan = 12 }}]\nldp = {{ fec = \"{fec}\", router = \"198.18.2.2\" }}"),
            )
            .replace("upstream = { label = 1002, port = \"core\", next_hop = \"10.0.12.2\" }\n", "")
    };
    let old = loaded(&with_ldp("198.18.2.254/32"));
    let new = loaded(&with_ldp("198.18.2.253/32"));
    let r = plan(&old, &new).expect("live");
    assert_eq!(r.changes.ldp_isps, [2]);
    assert_eq!(r.changes.isps_changed, [2]);
    // [ldp] itself is fixed.
    let other = loaded(&with_ldp("198.18.2.254/32").replace(
        "router_id = \"10.0.12.1\"",
        "router_id = \"10.0.12.1\"\nhello_interval_s = 1",
    ));
    assert_eq!(plan(&old, &other).expect_err("fixed"), ["ldp"]);
}

const DHCP: &str = r#"
[dhcp]
relay_address = "198.18.100.1"
server_identifier = "198.18.1.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["198.18.100.2"]

[[dhcp.isps]]
name = "isp-b"
servers = ["198.18.100.3"]
"#;

#[test]
fn dhcp_isps_are_live_the_rest_of_dhcp_is_not() {
    let old = format!("{BASE}{DHCP}");
    let new = format!(
        "{BASE}\n[[tables.isps]]\nid = 3\nname = \"isp-c\"\n{}",
        DHCP.replace("198.18.100.3", "198.18.100.4")
            .replace("name = \"isp-a\"", "name = \"isp-c\"")
    );
    let r = plan(&loaded(&old), &loaded(&new)).expect("live");
    assert_eq!(r.changes.dhcp_isps_added, ["isp-c"]);
    assert_eq!(r.changes.dhcp_isps_changed, ["isp-b"]);
    assert_eq!(r.changes.dhcp_isps_removed, ["isp-a"]);
    let moved = format!("{BASE}{}", DHCP.replace("198.18.100.1", "198.18.100.9"));
    assert_eq!(
        plan(&loaded(&old), &loaded(&moved)).expect_err("fixed"),
        ["dhcp (other than dhcp.isps)"]
    );
    assert_eq!(
        plan(&loaded(&old), &loaded(BASE)).expect_err("fixed"),
        ["dhcp (added or removed)"]
    );
}

const RADIUS: &str = r#"
[radius]
listen_auth = "127.0.0.1:18120"
listen_acct = "127.0.0.1:18130"

[[radius.nas]]
name = "bras"
address = "127.0.0.0/8"
secret = "s3cret"

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{ address = "127.0.0.1", auth_port = 18121, acct_port = 18131, secret = "m" }]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
virtual_user = "v1"
virtual_password = "p1"
home_servers = [{ address = "127.0.0.1", auth_port = 18122, acct_port = 18132, secret = "c1" }]
capacity = { ports = 10 }
"#;

#[test]
fn client_sps_realms_and_capacity_are_live_listeners_are_not() {
    let old = format!("{BASE}{RADIUS}");
    let new = format!(
        "{BASE}{}",
        RADIUS.replace("ports = 10", "ports = 20").replace(
            "realms = [\"csp1.example\"]",
            "realms = [\"csp1.example\", \"csp1.net\"]"
        )
    );
    let r = plan(&loaded(&old), &loaded(&new)).expect("live");
    assert_eq!(r.changes.csps_changed, ["csp1"]);
    assert_eq!(r.changes.radius_realms, ["csp1.net"]);
    assert!(r.changes.radius());
    let moved = format!("{BASE}{}", RADIUS.replace("18120", "18125"));
    assert_eq!(
        plan(&loaded(&old), &loaded(&moved)).expect_err("fixed"),
        ["radius.listen_auth"]
    );
}
