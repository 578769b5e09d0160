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
