//! `ispmux run` on net_af_packet over veth pairs in network namespaces: two hosts talk
//! through an io-forwarding ispmux as through a wire.

use std::process::Stdio;
use std::time::{Duration, Instant};

use ispmux_tests::netns::{veth, End, Netns};
use ispmux_tests::{ispmux_bin, terminate, TempDir};

#[test]
fn hosts_ping_each_other_through_io_forwarding() {
    let (a, gw, b) = (Netns::new("afa"), Netns::new("afg"), Netns::new("afb"));
    veth(
        End {
            ns: &a,
            dev: "eth0",
            mac: "02:00:00:00:0a:01",
        },
        End {
            ns: &gw,
            dev: "p0",
            mac: "02:00:00:00:0a:02",
        },
    );
    veth(
        End {
            ns: &gw,
            dev: "p1",
            mac: "02:00:00:00:0b:02",
        },
        End {
            ns: &b,
            dev: "eth0",
            mac: "02:00:00:00:0b:01",
        },
    );
    a.addr("eth0", "198.18.7.1/24");
    b.addr("eth0", "198.18.7.2/24");

    let d = TempDir::new("afpacket");
    let conf = d.join("gw.toml");
    std::fs::write(
        &conf,
        r#"
[eal]
lcores = [0, 1]
memory_mb = 256
hugepages = "off"

[[port]]
name = "p0"
device = "net_af_packet0,iface=p0"

[[port]]
name = "p1"
device = "net_af_packet1,iface=p1"

[dataplane]
idle_sleep = "on"
"#,
    )
    .expect("write");
    let child = gw
        .command(ispmux_bin().to_str().expect("path"))
        .args(["run", "-c"])
        .arg(&conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");

    // Wait until the first ping gets through (EAL and the ports take a moment).
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut up = false;
    while !up && Instant::now() < deadline {
        up = a
            .command("ping")
            .args(["-c", "1", "-W", "0.3", "198.18.7.2"])
            .output()
            .is_ok_and(|o| o.status.success());
    }
    assert!(up, "no ping got through");
    let out = a
        .command("ping")
        .args(["-c", "20", "-i", "0.01", "-W", "1", "198.18.7.2"])
        .output()
        .expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("20 received"), "{text}");

    let out = terminate(child);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rx: u64 = stdout
        .lines()
        .find(|l| l.starts_with("port p0 "))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .expect("port p0 line");
    assert!(rx >= 21, "echo requests and ARP counted on p0: {stdout}");
}
