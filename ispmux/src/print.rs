//! What the binary prints: the exit report, the periodic rates, `ispmux ctl`'s answers as
//! tables, and `ispmux usage`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ispmux_conf::Purpose;
use ispmux_dataplane::DropReason;
use ispmux_gateway::command::{ControlAnswer, Revoked, Suspended, Versions};
use ispmux_gateway::report::{IspStats, Stats};
use ispmux_gateway::{PortRate, Report};
use ispmux_slowpath::radius::stats::{Latency, RadiusStats};
use ispmux_slowpath::radius::usage::{self, UsageStore};

/// The ports' rates over the last interval, one line each.
pub fn rates(r: &[PortRate]) {
    for p in r {
        println!(
            "port {:<12} rx {:>8.3} Mpps  tx {:>8.3} Mpps",
            p.name, p.rx_mpps, p.tx_mpps
        );
    }
}

/// The exit report, in lines that benchmarks and tests read (`ispmux ran`, `workers rx`,
/// `drops`, one JSON line per ISP, `slowpath`, `dhcp`, `radius`, `worker lcore`).
pub fn report(r: &Report) {
    for w in &r.workers {
        if let (Some(on), Some(waited)) = (w.on_cpu_s, w.waited_s) {
            println!(
                "worker lcore {} on-cpu {on:.3} s waited {waited:.3} s",
                w.lcore
            );
        }
        if w.replayed_writes > 0 {
            println!(
                "worker replayed {} table writes in {:.1} ms ({:.1} ns a write)",
                w.replayed_writes,
                w.replay_ms,
                w.replay_ms * 1e6 / w.replayed_writes as f64
            );
        }
    }
    if let Some(g) = &r.update_generator {
        println!(
            "update-generator sent {} refused {} backlog {} in {:.3} s: {:.0} updates/s",
            g.sent,
            g.refused,
            g.backlog,
            g.seconds,
            g.sent as f64 / g.seconds.max(1e-9)
        );
    }
    let s = &r.stats;
    println!("ispmux ran {:.3} s", s.seconds);
    for p in &s.ports {
        println!(
            "port {:<12} rx {:>14} pkts {:>8.3} Mpps  tx {:>14} pkts {:>8.3} Mpps  missed {} rx_nombuf {} oerrors {}",
            p.name, p.rx_packets, p.rx_mpps, p.tx_packets, p.tx_mpps, p.rx_missed, p.rx_nombuf, p.tx_errors,
        );
    }
    if !s.ports.is_empty() {
        println!(
            "workers rx {} tx {} punted {} idle_sleeps {}",
            s.rx, s.tx, s.punted, s.idle_sleeps
        );
        // In the pipeline's order of reasons, as benchmarks read it.
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.name(),
                    s.drops.get(r.name()).copied().unwrap_or(0)
                )
            })
            .collect();
        println!("drops {}", drops.join(" "));
        for isp in &s.pipeline.isps {
            println!("{}", serde_json::to_string(isp).unwrap_or_default());
        }
        let sp = &s.slowpath;
        println!(
            "slowpath punted {} arp {} arp_replies {} dhcp {} other {} injected {} inject_drops {} bindings_installed {} bindings_removed {} update_errors {} to_twin {} to_twin_drops {} from_twin {} from_twin_drops {}",
            sp.punted, sp.arp, sp.arp_replies, sp.dhcp, sp.other, sp.injected, sp.inject_drops, sp.bindings_installed, sp.bindings_removed, sp.update_errors, sp.to_twin, sp.to_twin_drops, sp.from_twin, sp.from_twin_drops
        );
        let (p, i) = (&s.pipeline, &sp.icmp);
        println!(
            "icmp punts_ttl_expired {} punts_frag_needed {} punted {} sent {} limited {} refused {}",
            p.punts_ttl_expired, p.punts_frag_needed, i.punted, i.sent, i.limited, i.refused
        );
        if let Some(l) = &sp.ldp {
            println!(
                "ldp sessions_up {} sessions_established {} sessions_lost {} hellos_in {} hellos_out {} hello_errors {} pdus_in {} pdus_out {} connection_errors {} slow_readers_closed {} fec_changes {} fecs_followed {} md5_refused {} md5_kernel_not_found {} md5_kernel_unexpected {} md5_kernel_failure {}",
                l.sessions_up, l.sessions_established, l.sessions_lost, l.hellos_in, l.hellos_out, l.hello_errors, l.pdus_in, l.pdus_out, l.connection_errors, l.slow_readers_closed, l.fec_changes, l.fecs_followed, l.md5_refused, l.md5_kernel_not_found, l.md5_kernel_unexpected, l.md5_kernel_failure
            );
        }
        if sp.registered > 0 || p.punts_unregistered > 0 {
            println!(
                "registered {} registered_updates {} punts_unregistered {}",
                sp.registered, sp.registered_updates, p.punts_unregistered
            );
        }
        if sp.next_hops > 0 {
            println!(
                "next_hops {} resolved {} neighbour_updates {}",
                sp.next_hops, sp.next_hops_resolved, sp.neighbour_updates
            );
        }
    }
    if let Some(dhcp) = &s.dhcp {
        println!("dhcp {}", serde_json::to_string(dhcp).unwrap_or_default());
    }
    if let Some(radius) = &s.radius {
        println!(
            "radius {}",
            serde_json::to_string(&radius.counters).unwrap_or_default()
        );
    }
}

/// An answer of `ispmux ctl`, as an operator reads it.
pub fn answer(a: &ControlAnswer) -> String {
    match a {
        ControlAnswer::Stats(s) => stats(s),
        ControlAnswer::Version(Versions { ispmux, dpdk }) => match dpdk {
            Some(d) => format!("ispmux {ispmux}, {d}\n"),
            None => format!("ispmux {ispmux}\n"),
        },
        ControlAnswer::Revoked(Revoked { revoked, queued }) => {
            if *queued {
                format!("{revoked}: binding withdrawn\n")
            } else {
                format!("{revoked}: not withdrawn (the logon proxy has stopped)\n")
            }
        }
        ControlAnswer::Suspended(Suspended {
            csp,
            suspended,
            was_suspended,
            disconnect_requests,
        }) => format!(
            "{csp}: {} (was {}), {disconnect_requests} Disconnect-Request(s) sent\n",
            if *suspended { "suspended" } else { "active" },
            if *was_suspended {
                "suspended"
            } else {
                "active"
            },
        ),
        ControlAnswer::Traced(t) => {
            let mut o = String::new();
            for r in &t.records {
                let _ = writeln!(o, "{:<12} {}", r.port, r.line);
            }
            if t.records.is_empty() {
                let _ = writeln!(o, "no frames traced ({} still to trace)", t.remaining);
            }
            o
        }
        ControlAnswer::Ldp(l) => ldp(l),
        ControlAnswer::Refused(r) => format!("error: {}\n", r.error),
        ControlAnswer::Reloaded(r) => reloaded(r),
        // Raw: the text is for a scraper or promtool, not a table.
        ControlAnswer::Metrics(m) => m.clone(),
    }
}

/// `ldp` as two tables: neighbours, then bindings (one row per FEC and peer label).
fn ldp(l: &ispmux_gateway::ldp::LdpView) -> String {
    let mut o = String::new();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    if let Some(id) = l.lsr_id {
        let _ = writeln!(o, "LSR ID {id}, {} session(s) up", l.stats.sessions_up);
    }
    let _ = writeln!(
        o,
        "\n{:<20} {:<15} {:<12} {:<8} {:>8} {:<9} INTERFACES",
        "NEIGHBOUR", "TRANSPORT", "STATE", "ROLE", "UPTIME", "SECURITY"
    );
    for n in &l.neighbours {
        let security = match (n.md5, n.gtsm) {
            (true, true) => "md5,gtsm",
            (true, false) => "md5",
            (false, true) => "gtsm",
            (false, false) => "-",
        };
        let _ = writeln!(
            o,
            "{:<20} {:<15} {:<12} {:<8} {:>8} {:<9} {}",
            n.ldp_id,
            opt(n.transport.map(|a| a.to_string())),
            opt(n.state.clone()),
            n.role,
            opt(n.uptime_s.map(|s| format!("{s}s"))),
            security,
            n.interfaces.join(","),
        );
    }
    let _ = writeln!(
        o,
        "\n{:<20} {:>8} {:<15} {:<15} {:>8}  IN USE",
        "FEC", "LOCAL", "NEXT HOP", "PEER", "REMOTE"
    );
    for b in &l.bindings {
        let local = match (b.local, b.egress) {
            (Some(x), true) => format!("{x}*"),
            (Some(x), false) => x.to_string(),
            (None, _) => "-".into(),
        };
        let nh = opt(b.next_hop.map(|a| a.to_string()));
        if b.remote.is_empty() {
            let _ = writeln!(
                o,
                "{:<20} {:>8} {:<15} {:<15} {:>8}",
                b.fec, local, nh, "-", "-"
            );
        }
        for r in &b.remote {
            let _ = writeln!(
                o,
                "{:<20} {:>8} {:<15} {:<15} {:>8}  {}",
                b.fec,
                local,
                nh,
                r.peer,
                r.label,
                if r.in_use { "yes" } else { "no" }
            );
        }
    }
    let _ = writeln!(o, "(* this node is the FEC's egress)");
    o
}

/// `stats` as tables: ports, workers, drops that happened, ISPs, slow path, RADIUS.
fn stats(s: &Stats) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "up {:.1} s", s.seconds);
    if !s.ports.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<12} {:<24} {:>14} {:>9} {:>14} {:>9} {:>8} {:>8} {:>8}",
            "PORT",
            "DEVICE",
            "RX PKTS",
            "RX MPPS",
            "TX PKTS",
            "TX MPPS",
            "MISSED",
            "NOMBUF",
            "TX ERR"
        );
        for p in &s.ports {
            let _ = writeln!(
                o,
                "{:<12} {:<24} {:>14} {:>9.3} {:>14} {:>9.3} {:>8} {:>8} {:>8}",
                p.name,
                p.device,
                p.rx_packets,
                p.rx_mpps,
                p.tx_packets,
                p.tx_mpps,
                p.rx_missed,
                p.rx_nombuf,
                p.tx_errors
            );
        }
        let _ = writeln!(
            o,
            "\nworkers: rx {}  tx {}  punted {}  idle sleeps {}",
            s.rx, s.tx, s.punted, s.idle_sleeps
        );
        let drops: Vec<String> = s
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            o,
            "drops: {}",
            if drops.is_empty() {
                "none".to_owned()
            } else {
                drops.join(", ")
            }
        );
        if !s.pipeline.isps.is_empty() {
            let _ = writeln!(
                o,
                "\n{:>4} {:<16} {:>24} {:>24} {:>24} {:>24}",
                "ISP",
                "NAME",
                "HEADEND UP pkts/bytes",
                "HEADEND DOWN",
                "TAILEND UP",
                "TAILEND DOWN"
            );
            for i in &s.pipeline.isps {
                isp_row(&mut o, i);
            }
        }
        let t = &s.pipeline;
        let _ = writeln!(
            o,
            "\ntransit: {} pkts {} bytes; fast-path ARP replies {}; table writes {} applied, {} refused",
            t.transit.packets, t.transit.bytes, t.arp_replies, t.updates_applied, t.updates_refused
        );
        let sp = &s.slowpath;
        let _ = writeln!(
            o,
            "slow path: punted {} (arp {}, dhcp {}, other {}), arp replies {}, injected {} (dropped {}, waiting {}), bindings +{} -{}, update errors {}\nkernel twins: to {} (dropped {}), from {} (dropped {})",
            sp.punted, sp.arp, sp.dhcp, sp.other, sp.arp_replies, sp.injected, sp.inject_drops, sp.inject_backlog, sp.bindings_installed, sp.bindings_removed, sp.update_errors, sp.to_twin, sp.to_twin_drops, sp.from_twin, sp.from_twin_drops
        );
        let i = &sp.icmp;
        let _ = writeln!(
            o,
            "icmp errors: punted {} (ttl expired {}, frag needed {}), sent {}, rate-limited {}, refused {}",
            i.punted, t.punts_ttl_expired, t.punts_frag_needed, i.sent, i.limited, i.refused
        );
        let _ = writeln!(
            o,
            "registered MACs: {} ({} filter updates), unregistered DHCP punted {} (the rest drop as unregistered)",
            sp.registered, sp.registered_updates, t.punts_unregistered
        );
    }
    if let Some(d) = &s.dhcp {
        let _ = writeln!(o, "\ndhcp logon proxy:");
        for (k, v) in d.iter().filter(|(k, v)| !k.starts_with("drop_") || **v > 0) {
            let _ = writeln!(o, "  {k:<32} {v:>12}");
        }
    }
    if let Some(r) = &s.radius {
        let _ = writeln!(o, "\nradius:");
        for (k, v) in &r.counters {
            let _ = writeln!(o, "  {k:<32} {v:>12}");
        }
        radius_rows(&mut o, r);
    }
    o
}

/// The RADIUS proxy's home servers and client SPs, a row each.
fn radius_rows(o: &mut String, r: &RadiusStats) {
    let mean_ms = |l: &Latency| {
        if l.count == 0 {
            "-".to_owned()
        } else {
            format!("{:.2}", l.sum_seconds() * 1e3 / l.count as f64)
        }
    };
    if !r.home_servers.is_empty() {
        let _ = writeln!(
            o,
            "  {:<24} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9}",
            "home server", "requests", "answers", "timeouts", "retrans", "rtt_ms", "held_ms"
        );
    }
    for h in &r.home_servers {
        let _ = writeln!(
            o,
            "  {:<24} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9}",
            h.server,
            h.requests,
            h.answers,
            h.timeouts,
            h.retransmits,
            mean_ms(&h.response),
            mean_ms(&h.added)
        );
    }
    if !r.client_sps.is_empty() {
        let _ = writeln!(
            o,
            "  {:<24} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "client SP", "access", "accepts", "rejects", "accounting", "acct_ok"
        );
    }
    for c in &r.client_sps {
        let _ = writeln!(
            o,
            "  {:<24} {:>10} {:>10} {:>10} {:>10} {:>10}",
            c.csp,
            c.access_requests,
            c.accepts,
            c.rejects,
            c.accounting_requests,
            c.accounting_responses
        );
    }
}

fn isp_row(o: &mut String, i: &IspStats) {
    let pb = |p: &ispmux_gateway::report::PacketBytes| format!("{}/{}", p.packets, p.bytes);
    let _ = writeln!(
        o,
        "{:>4} {:<16} {:>24} {:>24} {:>24} {:>24}",
        i.id,
        i.name,
        pb(&i.headend_up),
        pb(&i.headend_down),
        pb(&i.tailend_up),
        pb(&i.tailend_down)
    );
}

/// `ispmux usage`: the usage records per client SP, as a table or CSV.
pub fn usage(
    config: Option<&Path>,
    db: Option<&Path>,
    csv: bool,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let path = match (config, db) {
        (_, Some(db)) => db.to_owned(),
        (Some(c), None) => {
            PathBuf::from(ispmux_conf::load_for(c, Purpose::RadiusProxy)?.store.path)
        }
        (None, None) => bail!("give -c FILE or --db PATH"),
    };
    // Opening would create an empty database: a wrong path must say so instead.
    if !path.exists() {
        bail!("{}: no such store", path.display());
    }
    let store =
        UsageStore::open(&path).with_context(|| format!("opening the store {}", path.display()))?;
    let records = store.records()?;
    if csv {
        write!(out, "{}", usage::to_csv(&records))?;
    } else {
        write!(out, "{}", usage::to_table(&records))?;
    }
    Ok(())
}

/// What `ctl reload` changed, one line per kind that changed.
fn reloaded(r: &ispmux_gateway::command::Reloaded) -> String {
    let c = &r.changes;
    let ids = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    let mut out = format!("reloaded {}\n", r.path);
    let mut line = |what: &str, v: String| {
        if !v.is_empty() && v != "0" {
            out.push_str(&format!("  {what:<22} {v}\n"));
        }
    };
    line("ISPs added", ids(&c.isps_added));
    line("ISPs changed", ids(&c.isps_changed));
    line("ISPs removed", ids(&c.isps_removed));
    line("ISP FECs", c.fecs.to_string());
    line("hand-offs", c.handoffs.to_string());
    line("labels", c.labels.to_string());
    line("LDP FECs of ISPs", ids(&c.ldp_isps));
    line("subscribers added", c.subscribers_added.to_string());
    line("subscribers changed", c.subscribers_changed.to_string());
    line("subscribers removed", c.subscribers_removed.to_string());
    line("DHCP ISPs added", c.dhcp_isps_added.join(", "));
    line("DHCP ISPs changed", c.dhcp_isps_changed.join(", "));
    line("DHCP ISPs removed", c.dhcp_isps_removed.join(", "));
    line("bindings released", r.bindings_released.to_string());
    line("RADIUS realms", c.radius_realms.join(", "));
    line("client SPs added", c.csps_added.join(", "));
    line("client SPs changed", c.csps_changed.join(", "));
    line("client SPs removed", c.csps_removed.join(", "));
    line("table updates", r.table_updates.to_string());
    line("table updates refused", r.table_updates_refused.to_string());
    if c.is_empty() {
        out.push_str("  nothing changed\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ispmux_slowpath::radius::stats::{CspStats, HomeServerStats};

    use super::*;

    #[test]
    fn radius_rows_show_each_server_and_client_sp() {
        let mut h = HomeServerStats {
            server: "192.0.2.1:1812".into(),
            requests: 7,
            answers: 6,
            timeouts: 1,
            retransmits: 2,
            ..HomeServerStats::default()
        };
        h.response.observe(Duration::from_millis(1));
        h.response.observe(Duration::from_millis(3));
        let r = RadiusStats {
            home_servers: vec![h],
            client_sps: vec![CspStats {
                csp: "csp1".into(),
                access_requests: 4,
                accepts: 3,
                rejects: 1,
                ..CspStats::default()
            }],
            ..RadiusStats::default()
        };
        let mut o = String::new();
        radius_rows(&mut o, &r);
        let rows: Vec<Vec<&str>> = o.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            rows[1],
            ["192.0.2.1:1812", "7", "6", "1", "2", "2.00", "-"],
            "{o}"
        );
        assert_eq!(rows[3], ["csp1", "4", "3", "1", "0", "0"], "{o}");
    }
}
