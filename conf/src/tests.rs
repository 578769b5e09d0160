//! Good and bad configurations, each bad one with the exact problem it must produce.

use std::path::Path;

use crate::*;

const GOOD: &str = r#"
[eal]
lcores = [0, 1]
memory_mb = 256

[[port]]
name = "a"
device = "net_null0"

[[port]]
name = "b"
device = "net_null1,size=64"
"#;

fn problems(text: &str) -> Vec<Problem> {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.problems().to_vec(),
    }
}

#[test]
fn good_file_parses_and_plans() {
    let c = parse(GOOD, Path::new("t.toml")).expect("valid");
    assert_eq!(c.ports[1].dpdk_name(), "net_null1");
    let plan = c.plan(2);
    assert_eq!(plan.workers.len(), 1);
    assert_eq!(plan.workers[0].lcore, 1);
    assert_eq!(plan.workers[0].rx, vec![(0, 0), (1, 0)]);
    assert!(!plan.idle_sleep);
    assert!(
        c.plan(1).idle_sleep,
        "fewer cores than lcores turns idle sleep on"
    );
    let eal = c.eal_plan(None).expect("eal");
    assert!(!eal.hugepages);
    assert_eq!(
        eal.args,
        [
            "-l",
            "0,1",
            "--main-lcore",
            "0",
            "--no-huge",
            "--no-shconf",
            "-m",
            "256",
            "--log-level=lib.*:warning",
            "--vdev",
            "net_null0",
            "--vdev",
            "net_null1,size=64",
            "--no-pci"
        ]
    );
    let huge = c.eal_plan(Some(1024)).expect("eal");
    assert!(huge.hugepages && huge.args.contains(&"--in-memory".to_owned()));
}

#[test]
fn automatic_plan_spreads_queues_over_workers() {
    let text = GOOD.replace("lcores = [0, 1]", "lcores = [0, 2, 3]");
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    let plan = c.plan(4);
    assert_eq!(plan.ports[0].rx_queues, 2);
    assert_eq!(plan.ports[0].tx_queues, 2);
    assert_eq!(plan.workers[0].rx, vec![(0, 0), (1, 0)]);
    assert_eq!(plan.workers[1].rx, vec![(0, 1), (1, 1)]);
    assert_eq!(plan.workers[1].tx_queue, 1);
}

#[test]
fn pci_devices_are_allowed_and_normalised() {
    let text = GOOD.replace("\"net_null0\"", "\"01:00.0\"");
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    assert_eq!(c.ports[0].dpdk_name(), "0000:01:00.0");
    let eal = c.eal_plan(None).expect("eal");
    assert!(eal.args.windows(2).any(|w| w == ["-a", "0000:01:00.0"]));
    assert!(!eal.args.contains(&"--no-pci".to_owned()));
}

/// (what is changed, the file, key, line, column, message fragment)
#[test]
fn bad_configurations_name_the_line_and_key() {
    let table: &[(&str, &str, &str, usize, usize, &str)] = &[
        (
            "unknown top-level key",
            "[eal]\nlcores = [0, 1]\nbogus = 1\n",
            "eal.bogus",
            3,
            1,
            "unknown field `bogus`",
        ),
        (
            "wrong type",
            "[eal]\nlcores = \"0-1\"\n",
            "eal.lcores",
            2,
            10,
            "invalid type: string \"0-1\", expected a sequence",
        ),
        (
            "syntax error",
            "[eal\nlcores = [0, 1]\n",
            "",
            1,
            5,
            "invalid table header",
        ),
        (
            "unknown port key",
            &format!("{GOOD}qeues = 2\n"),
            "port[1].qeues",
            13,
            1,
            "unknown field `qeues`",
        ),
        (
            "duplicate port name",
            &GOOD.replace("name = \"b\"", "name = \"a\""),
            "port[1].name",
            11,
            8,
            "name \"a\" is already used by port[0]",
        ),
        (
            "bad device",
            &GOOD.replace("\"net_null0\"", "\"eth0\""),
            "port[0].device",
            8,
            10,
            "\"eth0\" is neither a PCI address nor a virtual device",
        ),
        (
            "one lcore",
            &GOOD.replace("lcores = [0, 1]", "lcores = [0]"),
            "eal.lcores",
            3,
            10,
            "needs at least two lcores",
        ),
        (
            "main lcore not listed",
            &GOOD.replace("memory_mb = 256", "memory_mb = 256\nmain_lcore = 5"),
            "eal.main_lcore",
            5,
            14,
            "main lcore 5 is not in eal.lcores [0, 1]",
        ),
        (
            "burst too big",
            &format!("{GOOD}\n[dataplane]\nburst = 512\n"),
            "dataplane.burst",
            15,
            9,
            "burst 512 is out of range 1..=256",
        ),
        (
            "worker polls unknown port",
            &format!("{GOOD}\n[[worker]]\nlcore = 1\nrx = [{{ port = \"c\" }}]\n"),
            "worker[0].rx[0].port",
            16,
            16,
            "no port named \"c\"",
        ),
        (
            "worker on the main lcore",
            &format!(
                "{GOOD}\n[[worker]]\nlcore = 0\nrx = [{{ port = \"a\" }}, {{ port = \"b\" }}]\n"
            ),
            "worker[0].lcore",
            15,
            9,
            "lcore 0 is the main (control) lcore",
        ),
        (
            "queue polled by nobody",
            &format!("{GOOD}\n[[worker]]\nlcore = 1\nrx = [{{ port = \"a\" }}]\n"),
            "port[1]",
            10,
            1,
            "receive queue 0 of port \"b\" is polled by no worker",
        ),
        (
            "bad hugepages value",
            "[eal]\nhugepages = \"maybe\"\n",
            "eal.hugepages",
            2,
            13,
            "unknown variant `maybe`",
        ),
        (
            "no ports",
            "[eal]\nlcores = [0, 1]\n",
            "port",
            0,
            0,
            "no ports configured",
        ),
    ];
    for (what, text, key, line, column, msg) in table {
        let ps = problems(text);
        let p = ps
            .iter()
            .find(|p| p.message.contains(msg))
            .unwrap_or_else(|| panic!("{what}: no problem containing {msg:?} in {ps:#?}"));
        assert_eq!(
            (p.key.as_str(), p.line, p.column),
            (*key, *line, *column),
            "{what}: {p:?}"
        );
    }
}

#[test]
fn error_text_names_file_line_column_and_key() {
    let e = parse(
        "[eal]\nlcores = [0, 1]\nbogus = 1\n",
        Path::new("/etc/ispmux.toml"),
    )
    .expect_err("invalid");
    let s = e.to_string();
    assert!(
        s.starts_with("/etc/ispmux.toml:3:1: `eal.bogus`: unknown field `bogus`"),
        "{s}"
    );
}

/// A `[radius]` table to append to `GOOD`; line 1 is GOOD's last line + 1.
const RADIUS: &str = r#"
[radius]
listen_auth = "127.0.0.1:1812"
listen_acct = "127.0.0.1:1813"

[[radius.nas]]
name = "pop1"
address = "127.0.0.0/8"
secret = "s"

[radius.master]
name = "msp"
realms = ["msp.example"]
home_servers = [{ address = "127.0.0.1", secret = "m" }]

[[radius.client_sp]]
name = "csp1"
realms = ["csp1.example"]
virtual_user = "vs1"
virtual_password = "p"
home_servers = [{ address = "127.0.0.1", secret = "c1" }]
capacity = { ports = 2 }

[[radius.client_sp]]
name = "csp2"
realms = ["csp2.example"]
virtual_user = "vs2"
virtual_password = "p"
home_servers = [{ address = "127.0.0.1", secret = "c2" }]
capacity = { ports = 2 }
"#;

#[test]
fn radius_table_is_part_of_the_main_file() {
    let text = format!("{GOOD}{RADIUS}");
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    let r = c.radius.expect("[radius] present");
    assert_eq!(r.client_sp[1].name, "csp2");
    assert_eq!(c.store.path, DEFAULT_STORE_PATH);
    assert!(parse(GOOD, Path::new("t.toml"))
        .expect("valid")
        .radius
        .is_none());

    // The standalone proxy needs no ports, but needs [radius].
    let alone = format!("[store]\npath = \"/tmp/x.db\"\n{RADIUS}");
    assert!(
        parse(&alone, Path::new("t.toml")).is_err(),
        "gateway: no ports"
    );
    let c = parse_for(&alone, Path::new("t.toml"), Purpose::RadiusProxy).expect("proxy");
    assert_eq!(c.store.path, "/tmp/x.db");
    let e = parse_for(GOOD, Path::new("t.toml"), Purpose::RadiusProxy).expect_err("no radius");
    assert_eq!(e.problems()[0].key, "radius");
}

/// Problems of `[radius]` are placed in the main file like any other.
#[test]
fn bad_radius_tables_name_the_line_and_key() {
    let good_lines = GOOD.lines().count();
    let table: &[(&str, String, &str, usize, usize, &str)] = &[
        (
            "realm of another SP",
            RADIUS.replace("[\"csp2.example\"]", "[\"CSP1.example\"]"),
            "radius.client_sp[1].realms[0]",
            // `realms = [` on the second client SP: its first element.
            good_lines + 26,
            11,
            "realm already belongs to another SP",
        ),
        (
            "bad NAS prefix",
            RADIUS.replace("127.0.0.0/8", "127.0.0.0/33"),
            "radius.nas[0].address",
            good_lines + 8,
            11,
            "not an address or ADDR/LEN prefix",
        ),
        (
            "unknown key in a client SP",
            RADIUS.replace("virtual_user = \"vs2\"", "virtual_usr = \"vs2\""),
            "radius.client_sp[1].virtual_usr",
            good_lines + 27,
            1,
            "unknown field `virtual_usr`",
        ),
    ];
    for (what, radius, key, line, column, msg) in table {
        let ps = problems(&format!("{GOOD}{radius}"));
        let p = ps
            .iter()
            .find(|p| p.message.contains(msg))
            .unwrap_or_else(|| panic!("{what}: no problem containing {msg:?} in {ps:#?}"));
        assert_eq!(
            (p.key.as_str(), p.line, p.column),
            (*key, *line, *column),
            "{what}: {p:?}"
        );
    }
}

#[test]
fn radius_example_is_a_standalone_proxy_file() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/radius-proxy.toml"
    ));
    let c = load_for(path, Purpose::RadiusProxy).expect("the example loads for the proxy");
    assert!(c.radius.is_some_and(|r| !r.client_sp.is_empty()));
}

/// A node with one port of each role and one entry of each table; line numbers below count
/// from its first line.
const NODE: &str = r#"[eal]
lcores = [0, 1]

[dataplane]
pipeline = "node"

[[port]]
name = "access"
device = "net_null0"
role = "access"

[[port]]
name = "core"
device = "net_null1"
role = "core"

[[port]]
name = "isp"
device = "net_null2"
role = "handoff"

[[tables.isps]]
id = 1
upstream = { label = 1001, port = "core", next_hop = "02:00:00:00:00:01" }

[[tables.isps]]
id = 2
upstream = { label = 1002, port = "core", next_hop = "02:00:00:00:00:01" }

[[tables.ilm]]
label = 3001
action = { kind = "pop_deliver", isp = 1 }

[[tables.ilm]]
label = 3002
action = { kind = "pop_deliver", isp = 2 }

[[tables.subscribers]]
port = "access"
mac = "02:00:00:aa:00:01"
isp = 1

[[tables.subscribers]]
port = "access"
mac = "02:00:00:aa:00:02"
isp = 2
"#;

/// Overlaps the tables would accept silently (a later entry replacing an earlier one) are
/// located errors at the entry's own key.
#[test]
fn overlapping_table_entries_name_the_second_entry() {
    parse(NODE, Path::new("t.toml")).expect("the base is valid");
    let table: &[(&str, String, &str, usize, usize, &str)] = &[
        (
            "two ISPs with one id",
            NODE.replace("id = 2", "id = 1"),
            "tables.isps[1].id",
            27,
            6,
            "ISP id 1 is already used by tables.isps[0]",
        ),
        (
            "two ISPs with one name",
            NODE.replace("id = 1\n", "id = 1\nname = \"x\"\n")
                .replace("id = 2\n", "id = 2\nname = \"x\"\n"),
            "tables.isps[1].name",
            29,
            8,
            "ISP name \"x\" is already used by tables.isps[0]",
        ),
        (
            "two ISPs pushing one label",
            NODE.replace("label = 1002", "label = 1001"),
            "tables.isps[1].upstream.label",
            28,
            22,
            "label 1001 is already pushed upstream by tables.isps[0]",
        ),
        (
            "an incoming label twice",
            NODE.replace("label = 3002", "label = 3001"),
            "tables.ilm[1].label",
            35,
            9,
            "label 3001 is already in tables.ilm[0]",
        ),
        (
            "a subscriber twice",
            NODE.replace("02:00:00:aa:00:02", "02:00:00:aa:00:01"),
            "tables.subscribers[1].mac",
            45,
            7,
            "is already tables.subscribers[0]",
        ),
        (
            "an ISP id beyond the limits: at the entry, not at [tables]",
            NODE.replace("isp = 2 }", "isp = 200 }"),
            "tables.ilm[1].action.isp",
            36,
            40,
            "ISP id 200 is not below tables.limits.max_isps (64)",
        ),
        (
            "a reserved label",
            NODE.replace("label = 3002", "label = 3"),
            "tables.ilm[1].label",
            35,
            9,
            "label 3 is out of range 16..=1048575",
        ),
    ];
    for (what, text, key, line, column, msg) in table {
        let ps = problems(text);
        let p = ps
            .iter()
            .find(|p| p.message.contains(msg))
            .unwrap_or_else(|| panic!("{what}: no problem containing {msg:?} in {ps:#?}"));
        assert_eq!(
            (p.key.as_str(), p.line, p.column),
            (*key, *line, *column),
            "{what}: {p:?}"
        );
    }
}

#[test]
fn a_nas_name_twice_is_located() {
    let twice = RADIUS.replace(
        "secret = \"s\"\n",
        "secret = \"s\"\n\n[[radius.nas]]\nname = \"pop1\"\naddress = \"192.0.2.1\"\nsecret = \"t\"\n",
    );
    let ps = problems(&format!("{GOOD}{twice}"));
    let p = ps
        .iter()
        .find(|p| p.key == "radius.nas[1].name")
        .unwrap_or_else(|| panic!("{ps:#?}"));
    assert_eq!((p.line, p.column), (GOOD.lines().count() + 12, 8), "{p:?}");
    assert!(p.message.contains("already used by radius.nas[0]"), "{p:?}");
}

/// `[tables]` names ports as `[[worker]]` does; the plan turns names into indexes.
#[test]
fn tables_name_ports_and_plan_to_indexes() {
    let text = format!(
        "{NODE}\n[[tables.isps]]\nid = 3\nname = \"c\"\nhandoff = [{{ port = \"isp\", vlan = 7 }}]\n\
         \n[tables.limits]\nmax_subscribers = 100\n"
    );
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    let p = c.preload_tables();
    assert_eq!(p.limits.max_subscribers, 100);
    assert_eq!(
        p.limits.max_labels,
        ispmux_dataplane::table::Limits::default().max_labels
    );
    assert_eq!(
        p.isps[0].upstream.map(|f| (f.label, f.port)),
        Some((1001, 1))
    );
    assert_eq!(
        p.isps[2].handoff,
        [ispmux_dataplane::table::preload::HandoffPreload { port: 2, vlan: 7 }]
    );
    assert_eq!(p.subscribers[1].port, 0);
    assert_eq!(p.isp_names()[2], (3, "c"));
    p.build().expect("the tables take it");
}

#[test]
fn table_ports_that_are_numbers_unknown_or_of_another_role_are_located() {
    let table: &[(&str, String, &str, usize, usize, &str)] = &[
        (
            "a number where a name is expected",
            NODE.replace(
                "port = \"core\", next_hop = \"02:00:00:00:00:01\" }\n\n[[tables.isps]]\nid = 2",
                "port = 1, next_hop = \"02:00:00:00:00:01\" }\n\n[[tables.isps]]\nid = 2",
            ),
            "tables.isps[0].upstream.port",
            24,
            35,
            "write the [[port]] name (port = \"core\"), not the number 1",
        ),
        (
            "no such port",
            NODE.replacen("port = \"access\"", "port = \"acess\"", 1),
            "tables.subscribers[0].port",
            39,
            8,
            "no port named \"acess\"",
        ),
        (
            "a port of another role",
            NODE.replacen(
                "label = 1001, port = \"core\"",
                "label = 1001, port = \"isp\"",
                1,
            ),
            "tables.isps[0].upstream.port",
            24,
            35,
            "port \"isp\" is not a core port",
        ),
        (
            "a typo in the limits",
            format!("{NODE}\n[tables.limits]\nmax_subscriber = 3\n"),
            "tables.limits.max_subscriber",
            49,
            1,
            "unknown field `max_subscriber`",
        ),
        (
            "a proxy ARP prefix with host bits",
            NODE.replace(
                "role = \"handoff\"",
                "role = \"handoff\"\nproxy_arp = [\"198.18.1.1/24\"]",
            ),
            "port[2].proxy_arp",
            21,
            14,
            "198.18.1.1/24 has host bits set; the network is 198.18.1.0/24",
        ),
        (
            "a static route via an address off the port's link",
            NODE.replace(
                "role = \"core\"",
                "role = \"core\"\naddress = \"10.0.12.1/30\"\n\
                 routes = [{ to = \"10.0.23.0/30\", via = \"10.0.13.2\" }]",
            ),
            "port[1].routes[0].via",
            17,
            40,
            "next hop 10.0.13.2 is not a neighbour on the port's link 10.0.12.0/30",
        ),
        (
            "a static route on an access port",
            NODE.replace(
                "role = \"access\"",
                "role = \"access\"\nroutes = [{ to = \"10.0.23.0/30\", via = \"10.0.12.2\" }]",
            ),
            "port[0].routes",
            11,
            10,
            "static routes go on a kernel twin",
        ),
        (
            "one prefix routed twice",
            NODE.replace(
                "role = \"core\"",
                "role = \"core\"\naddress = \"10.0.12.1/30\"\n\
                 routes = [{ to = \"10.0.23.0/30\", via = \"10.0.12.2\" }, \
                 { to = \"10.0.23.0/30\", via = \"10.0.12.2\" }]",
            ),
            "port[1].routes[1].to",
            17,
            62,
            "a route to 10.0.23.0/30 is already port[1].routes[0]",
        ),
        (
            "a static route to a prefix with host bits",
            NODE.replace(
                "role = \"core\"",
                "role = \"core\"\naddress = \"10.0.12.1/30\"\n\
                 routes = [{ to = \"10.0.23.1/30\", via = \"10.0.12.2\" }]",
            ),
            "port[1].routes",
            17,
            18,
            "10.0.23.1/30 has host bits set",
        ),
        (
            "a twin name over IFNAMSIZ",
            NODE.replace(
                "role = \"handoff\"",
                "role = \"handoff\"\ntwin = \"a-very-long-twin0\"",
            ),
            "port[2].twin",
            21,
            8,
            "twin interface name \"a-very-long-twin0\" is 17 characters",
        ),
        (
            "a default twin name over IFNAMSIZ",
            NODE.replace("name = \"isp\"", "name = \"isp-handoff\""),
            "port[2].name",
            18,
            8,
            "twin interface name \"ispmux-isp-handoff\" is 18 characters",
        ),
        (
            "a twin on an access port",
            NODE.replace("role = \"access\"", "role = \"access\"\ntwin = \"acc\""),
            "port[0].twin",
            11,
            8,
            "only core and hand-off ports of a node pipeline have a kernel twin",
        ),
        (
            "two ports, one twin name",
            NODE.replace(
                "role = \"handoff\"",
                "role = \"handoff\"\ntwin = \"ispmux-core\"",
            ),
            "port[2].twin",
            21,
            8,
            "twin interface name \"ispmux-core\" is already port[1]'s",
        ),
        (
            "an implicit null label on a hand-off port",
            NODE.replace(
                "role = \"handoff\"",
                "role = \"handoff\"\nimplicit_null_label = 5001",
            ),
            "port[2].implicit_null_label",
            21,
            23,
            "only a core port receives what a neighbour popped",
        ),
        (
            "a reserved implicit null label",
            NODE.replace(
                "role = \"core\"",
                "role = \"core\"\nimplicit_null_label = 3",
            ),
            "port[1].implicit_null_label",
            16,
            23,
            "label 3 is out of range 16..=1048575",
        ),
        (
            "an interface address with a bad length",
            NODE.replace(
                "role = \"core\"",
                "role = \"core\"\naddress = \"198.18.9.1/33\"",
            ),
            "port[1].address",
            16,
            11,
            "prefix length 33 is over 32",
        ),
    ];
    for (what, text, key, line, column, msg) in table {
        let ps = problems(text);
        let p = ps
            .iter()
            .find(|p| p.message.contains(msg))
            .unwrap_or_else(|| panic!("{what}: no problem containing {msg:?} in {ps:#?}"));
        assert_eq!(
            (p.key.as_str(), p.line, p.column),
            (*key, *line, *column),
            "{what}: {p:?}"
        );
    }
}

#[test]
fn an_lcores_mapping_in_extra_args_replaces_the_lcore_list() {
    let text = GOOD.replace(
        "lcores = [0, 1]",
        "lcores = [0, 1, 2]\nextra_args = [\"--lcores\", \"0@0,1@1,2@1\"]",
    );
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    assert_eq!(c.worker_lcores(), [1, 2]);
    let eal = c.eal_plan(None).expect("eal");
    assert!(!eal.args.contains(&"-l".to_owned()), "{:?}", eal.args);
    assert!(eal
        .args
        .ends_with(&["--lcores".to_owned(), "0@0,1@1,2@1".to_owned()]));
}

/// Next hops given by address start unresolved (MAC zero) and are listed with the entries
/// that wait for them; MACs stay static entries; `router` and `router_mac` are one key.
#[test]
fn next_hops_by_address_start_unresolved_and_are_listed() {
    use ispmux_dataplane::table::{Direction, IlmAction};
    use ispmux_dataplane::wire::MacAddr;
    use std::net::Ipv4Addr;
    let nh = Ipv4Addr::new(192, 0, 2, 2);
    let text = NODE
        .replacen("next_hop = \"02:00:00:00:00:01\"", "next_hop = \"192.0.2.2\"", 1)
        .replace(
            "[[tables.ilm]]\nlabel = 3001",
            "[[tables.ilm]]\nlabel = 5000\naction = { kind = \"swap\", out_label = 5001, port = \"core\", next_hop = \"192.0.2.2\" }\n\n\
             [[tables.ilm]]\nlabel = 5002\naction = { kind = \"pop_handoff\", isp = 1, port = \"isp\", router = \"198.51.100.1\" }\n\n\
             [[tables.ilm]]\nlabel = 5003\naction = { kind = \"pop_handoff\", isp = 2, port = \"isp\", vlan = 2, router = \"02:00:00:0b:00:01\" }\n\n\
             [[tables.ilm]]\nlabel = 5004\naction = { kind = \"pop_handoff\", isp = 2, port = \"isp\", vlan = 3, router_mac = \"02:00:00:0b:00:02\" }\n\n\
             [[tables.ilm]]\nlabel = 3001",
        );
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    let p = c.preload_tables();
    assert_eq!(p.isps[0].upstream.map(|f| f.next_hop), Some(MacAddr::ZERO));
    assert_eq!(
        p.isps[1].upstream.map(|f| f.next_hop),
        Some(MacAddr([2, 0, 0, 0, 0, 1])),
        "a MAC is a static entry"
    );
    let router = |label| {
        p.ilm
            .iter()
            .find(|e| e.label == label)
            .map(|e| IlmAction::from(e.action))
    };
    assert!(
        matches!(router(5002), Some(IlmAction::PopHandoff { router_mac, .. }) if router_mac == MacAddr::ZERO)
    );
    assert!(
        matches!(router(5003), Some(IlmAction::PopHandoff { router_mac, .. }) if router_mac == MacAddr([2, 0, 0, 0xb, 0, 1]))
    );
    assert!(
        matches!(router(5004), Some(IlmAction::PopHandoff { router_mac, .. }) if router_mac == MacAddr([2, 0, 0, 0xb, 0, 2]))
    );
    let r = c.next_hops_to_resolve();
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!((r[0].port, r[0].addr), (1, nh));
    assert!(matches!(
        r[0].entries[..],
        [
            NextHopEntry::Fec { isp: 1, direction: Direction::Upstream, fec },
            NextHopEntry::Ilm { label: 5000, .. },
        ] if fec.label == 1001 && fec.next_hop == MacAddr::ZERO
    ));
    assert_eq!((r[1].port, r[1].addr), (2, Ipv4Addr::new(198, 51, 100, 1)));
    assert!(matches!(
        r[1].entries[..],
        [NextHopEntry::Ilm { label: 5002, .. }]
    ));
    p.build().expect("the tables take it");
}

#[test]
fn bad_next_hops_are_located() {
    let table: &[(&str, String, &str, &str)] = &[
        (
            "the zero MAC",
            NODE.replacen("02:00:00:00:00:01", "00:00:00:00:00:00", 1),
            "tables.isps[0].upstream.next_hop",
            "it means unresolved",
        ),
        (
            "neither",
            NODE.replacen("02:00:00:00:00:01", "router1", 1),
            "tables.isps[0].upstream.next_hop",
            "neither an IPv4 address",
        ),
        (
            "an address as router_mac",
            format!("{NODE}\n[[tables.ilm]]\nlabel = 6000\naction = {{ kind = \"pop_handoff\", isp = 1, port = \"isp\", router_mac = \"198.51.100.1\" }}\n"),
            // A tagged table is read whole: the error is at the action.
            "tables.ilm[2].action",
            "write router = \"198.51.100.1\"",
        ),
        (
            "router and router_mac",
            format!("{NODE}\n[[tables.ilm]]\nlabel = 6000\naction = {{ kind = \"pop_handoff\", isp = 1, port = \"isp\", router = \"198.51.100.1\", router_mac = \"02:00:00:0b:00:01\" }}\n"),
            "tables.ilm[2].action.router_mac",
            "not both",
        ),
        (
            "no router",
            format!("{NODE}\n[[tables.ilm]]\nlabel = 6000\naction = {{ kind = \"pop_handoff\", isp = 1, port = \"isp\" }}\n"),
            "tables.ilm[2].action",
            "needs router",
        ),
    ];
    for (what, text, key, msg) in table {
        let ps = problems(text);
        assert!(
            ps.iter()
                .any(|p| p.key.starts_with(key) && p.line > 0 && p.message.contains(msg)),
            "{what}: {ps:#?}"
        );
    }
}

#[test]
fn routed_ports_have_twins_with_interface_addresses() {
    let text = NODE
        .replace(
            "role = \"core\"",
            "role = \"core\"\naddress = \"198.18.9.1/30\"",
        )
        .replace(
            "role = \"handoff\"",
            "role = \"handoff\"\naddress = \"198.18.200.1\"\ntwin = \"isp-twin\"",
        );
    let c = parse(&text, Path::new("t.toml")).expect("valid");
    let core = &c.ports[1];
    assert_eq!(core.twin_name(), "ispmux-core");
    let a = core.address.expect("address");
    assert_eq!(
        (a.addr().to_string(), a.prefix_len()),
        ("198.18.9.1".into(), 30)
    );
    let isp = &c.ports[2];
    assert_eq!(isp.twin_name(), "isp-twin");
    assert_eq!(
        isp.address.map(|a| a.prefix_len()),
        Some(32),
        "a bare address is a /32"
    );
    assert!(core.is_routed() && isp.is_routed() && !c.ports[0].is_routed());
}

/// `[dhcp] trusted_relay_ports` names access ports, as `[tables]` does; the logon engine gets
/// their indices.
#[test]
fn trusted_relay_ports_are_access_port_names() {
    let with = |ports: &str| {
        format!(
            "{NODE}\n[dhcp]\nrelay_address = \"198.18.0.1\"\nserver_identifier = \"198.18.0.2\"\n\
             trusted_relay_ports = {ports}\n"
        )
    };
    let c = parse(&with("[\"access\"]"), Path::new("t.toml")).expect("valid");
    assert_eq!(c.dhcp.expect("dhcp").trusted_relay_port_ids, vec![0]);
    for (ports, message) in [
        ("[\"acess\"]", "no port named \"acess\""),
        ("[\"core\"]", "port \"core\" is not an access port"),
    ] {
        let p = problems(&with(ports));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "dhcp.trusted_relay_ports[0]");
        assert!(p[0].message.starts_with(message), "{p:?}");
        assert!(p[0].line > 0, "located: {p:?}");
    }
    let p = problems(&with("[0]"));
    assert_eq!(p[0].key, "dhcp.trusted_relay_ports", "a number: {p:?}");
    assert!(p[0].message.contains("expected a string"), "{p:?}");
}

/// `[ldp]` and the ISPs' LDP FECs: a good node, then each mistake at its key.
#[test]
fn ldp_tables_are_checked_against_ports_labels_and_static_fecs() {
    let routed = NODE
        .replace(
            "name = \"core\"\ndevice = \"net_null1\"\nrole = \"core\"\n",
            "name = \"core\"\ndevice = \"net_null1\"\nrole = \"core\"\naddress = \"10.0.12.1/30\"\n",
        )
        .replace(
            "upstream = { label = 1002, port = \"core\", next_hop = \"02:00:00:00:00:01\" }\n",
            "ldp = { fec = \"198.18.2.0/24\", subscribers = \"100.64.2.0/24\" }\n",
        );
    let ldp = "\n[ldp]\nrouter_id = \"10.0.12.1\"\n";
    let c = parse(&format!("{routed}{ldp}"), Path::new("t.toml")).expect("valid");
    let l = c.ldp.expect("ldp");
    assert_eq!(
        (l.hello_interval_s, l.hello_hold_s, l.keepalive_s, l.labels),
        (5, 15, 180, crate::ldp::DEFAULT_LABELS)
    );
    let isp2 = c
        .tables
        .isps
        .get(1)
        .and_then(|i| i.ldp.clone())
        .expect("isp 2");
    assert_eq!(
        isp2.fec.map(|n| n.to_string()),
        Some("198.18.2.0/24".into())
    );

    let cases: &[(&str, String, &str)] = &[
        (
            "an ISP's ldp without [ldp]",
            routed.clone(),
            "tables.isps[1].ldp",
        ),
        (
            "a transport address no port has",
            format!("{routed}\n[ldp]\nrouter_id = \"10.9.9.9\"\n"),
            "ldp.router_id",
        ),
        (
            "a static label in LDP's range",
            format!("{routed}{ldp}labels = [3000, 3999]\n"),
            "tables.ilm[0].label",
        ),
        (
            "static and LDP upstream FECs for one ISP",
            format!("{routed}{ldp}").replace(
                "ldp = { fec",
                "upstream = { label = 1002, port = \"core\", next_hop = \"02:00:00:00:00:01\" }\nldp = { fec",
            ),
            "tables.isps[1].ldp.fec",
        ),
        (
            "LDP on a port that is not a core port",
            format!("{routed}{ldp}interfaces = [\"access\"]\n"),
            "ldp.interfaces[0]",
        ),
        (
            "hellos as slow as the hold time",
            format!("{routed}{ldp}hello_interval_s = 15\n"),
            "ldp.hello_interval_s",
        ),
    ];
    for (what, text, key) in cases {
        let p = problems(text);
        assert!(
            p.iter().any(|p| p.key == *key && p.line > 0),
            "{what}: want {key}, got {p:?}"
        );
    }
}

/// `[[ldp.neighbours]]`: TCP MD5 keys by LSR ID, GTSM on by default; each mistake located
/// at its key.
#[test]
fn ldp_neighbours_keys_are_checked() {
    let routed = NODE.replace(
        "name = \"core\"\ndevice = \"net_null1\"\nrole = \"core\"\n",
        "name = \"core\"\ndevice = \"net_null1\"\nrole = \"core\"\naddress = \"10.0.12.1/30\"\n",
    );
    let ldp = "\n[ldp]\nrouter_id = \"10.0.12.1\"\n";
    let n = |id: &str, key: &str| {
        format!("\n[[ldp.neighbours]]\nrouter_id = \"{id}\"\npassword = \"{key}\"\n")
    };
    let text = format!(
        "{routed}{ldp}{}{}",
        n("10.0.12.2", "s3cret"),
        n("10.0.12.3", &"k".repeat(80))
    );
    let l = parse(&text, Path::new("t.toml"))
        .expect("valid")
        .ldp
        .expect("ldp");
    assert!(l.gtsm, "GTSM is on by default");
    let key = l.password("10.0.12.2".parse().expect("ip")).expect("key");
    assert_eq!(key.as_bytes(), b"s3cret");
    assert!(
        !format!("{l:?}").contains("s3cret"),
        "the key stays out of Debug"
    );
    assert!(l.password("10.0.12.9".parse().expect("ip")).is_none());
    let off = parse(&format!("{routed}{ldp}gtsm = false\n"), Path::new("t.toml"))
        .expect("valid")
        .ldp
        .expect("ldp");
    assert!(!off.gtsm);

    let cases: &[(&str, String, &str)] = &[
        (
            "an empty key",
            format!("{routed}{ldp}{}", n("10.0.12.2", "")),
            "ldp.neighbours[0].password",
        ),
        (
            "a key longer than the kernel takes",
            format!("{routed}{ldp}{}", n("10.0.12.2", &"k".repeat(81))),
            "ldp.neighbours[0].password",
        ),
        (
            "a neighbour twice",
            format!(
                "{routed}{ldp}{}{}",
                n("10.0.12.2", "a"),
                n("10.0.12.2", "b")
            ),
            "ldp.neighbours[1].router_id",
        ),
        (
            "this node itself",
            format!("{routed}{ldp}{}", n("10.0.12.1", "a")),
            "ldp.neighbours[0].router_id",
        ),
    ];
    for (what, text, key) in cases {
        let p = problems(text);
        assert!(
            p.iter().any(|p| p.key == *key && p.line > 0),
            "{what}: want {key}, got {p:?}"
        );
    }
    // A neighbour without a key: serde's error, on the table's line.
    let text = format!("{routed}{ldp}\n[[ldp.neighbours]]\nrouter_id = \"10.0.12.2\"\n");
    let p = problems(&text);
    let line = text
        .lines()
        .position(|l| l == "[[ldp.neighbours]]")
        .expect("header")
        + 1;
    assert!(
        p.iter()
            .any(|p| p.message.contains("missing field `password`") && p.line == line),
        "{p:?}"
    );
}
