//! Conformance cases: recorded or written sequences of inputs to one LDP engine, each
//! followed by exactly the outputs it must give, in `tests/data/ldp_conformance/*.txt`.
//!
//! A case is lines of:
//! - `config lsr=A [addresses=A,B] [interfaces=1,2] [keepalive=S] [labels=LO-HI] [gtsm=off]`
//!   (first);
//! - an input: `hello IFACE SRC PDU`, `accepted FROM`, `connected PEER`, `data PEER PDU`,
//!   `closed PEER`, `egress FEC on|off`, `route FEC NH|none`, `timer`, `shutdown`;
//! - `time +SECONDS` (advances the clock, no input);
//! - `> OUTPUT`: the outputs of the input above, in order; none listed means none given.
//!
//! A PDU is hex (spaces allowed), or `pdu LSR:SPACE MSG | MSG ...` with messages written as outputs show
//! them (each gets ID 1, 2, ... unless it starts with `#ID`). Outputs:
//! `hello IFACE`, `connect PEER LOCAL REMOTE [gtsm]`, `accept FROM PEER [gtsm]`, `refuse FROM`,
//! `send PEER MSG | MSG ...`, `close PEER`, `up PEER`, `down PEER REASON up|notup`,
//! `fec FEC local=L|- egress|transit remote=NH:L|-`.
//! Messages: `hello hold=S [transport=A] [gtsm]`, `init ka=S rcv=A:SPACE [v=N]`, `keepalive`,
//! `address A,B`, `address-withdraw A`, `mapping FEC label=L [req=ID]`, `request FEC`,
//! `withdraw FEC|* [label=L]`, `release FEC|* [label=L]`, `abort FEC req=ID`,
//! `notification CODE [fatal] id=ID type=0xTYPE`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ispmux_slowpath::ldp::wire::{
    self, Body, FecElement, Hello, Initialization, LabelAbortRequest, LabelMapping, LabelRequest,
    LabelWithdraw, LdpId, Message, Notification, Pdu, Status, StatusCode,
};
use ispmux_slowpath::ldp::{Config, Down, Engine, Fec, Input, Output};
use ispmux_slowpath::time::Now;

type R<T> = Result<T, String>;

fn ip(s: &str) -> R<Ipv4Addr> {
    s.parse().map_err(|_| format!("bad address {s:?}"))
}

fn num<T: std::str::FromStr>(s: &str) -> R<T> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn ldp_id(s: &str) -> R<LdpId> {
    let (a, b) = s.split_once(':').ok_or(format!("bad LDP id {s:?}"))?;
    Ok(LdpId {
        lsr_id: ip(a)?,
        label_space: num(b)?,
    })
}

fn fec(s: &str) -> R<Fec> {
    let (a, l) = s.split_once('/').ok_or(format!("bad FEC {s:?}"))?;
    Fec::new(ip(a)?, num(l)?).ok_or(format!("bad FEC {s:?}"))
}

fn fec_elements(s: &str) -> R<Vec<FecElement>> {
    if s == "*" {
        return Ok(vec![FecElement::Wildcard]);
    }
    s.split(',')
        .map(|f| {
            let f = fec(f)?;
            FecElement::prefix(f.addr, f.len).ok_or(format!("bad FEC {s:?}"))
        })
        .collect()
}

fn show_fec(e: &[FecElement]) -> String {
    e.iter()
        .map(|x| match x {
            FecElement::Wildcard => "*".to_string(),
            FecElement::Prefix { addr, len } => format!("{addr}/{len}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn addrs(a: &[Ipv4Addr]) -> String {
    a.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn code_name(data: u32) -> String {
    match StatusCode::from_data(data) {
        Some(c) => format!("{c:?}"),
        None => format!("{data:#x}"),
    }
}

fn show_msg(b: &Body) -> String {
    let opt = |k: &str, v: Option<u32>| v.map(|v| format!(" {k}={v}")).unwrap_or_default();
    match b {
        Body::Hello(h) => format!(
            "hello hold={}{}{}",
            h.hold_time,
            h.transport_v4
                .map(|a| format!(" transport={a}"))
                .unwrap_or_default(),
            if h.gtsm { " gtsm" } else { "" }
        ),
        Body::Initialization(i) => {
            format!(
                "init ka={} rcv={} v={}",
                i.keepalive_time, i.receiver, i.version
            )
        }
        Body::KeepAlive => "keepalive".into(),
        Body::Address(a) => format!("address {}", addrs(a)),
        Body::AddressWithdraw(a) => format!("address-withdraw {}", addrs(a)),
        Body::LabelMapping(m) => format!(
            "mapping {} label={}{}",
            show_fec(&m.fec),
            m.label,
            opt("req", m.request_id)
        ),
        Body::LabelRequest(r) => format!("request {}", show_fec(&r.fec)),
        Body::LabelWithdraw(w) => format!("withdraw {}{}", show_fec(&w.fec), opt("label", w.label)),
        Body::LabelRelease(w) => format!("release {}{}", show_fec(&w.fec), opt("label", w.label)),
        Body::LabelAbortRequest(a) => format!("abort {} req={}", show_fec(&a.fec), a.request_id),
        Body::Notification(n) => format!(
            "notification {}{} id={} type={:#06x}",
            code_name(n.status.data),
            if n.status.fatal { " fatal" } else { "" },
            n.status.msg_id,
            n.status.msg_type
        ),
    }
}

fn parse_msg(s: &str) -> R<(Option<u32>, Body)> {
    let mut w: Vec<&str> = s.split_whitespace().collect();
    let mut id = None;
    if let Some(first) = w.first().and_then(|x| x.strip_prefix('#')) {
        id = Some(num(first)?);
        w.remove(0);
    }
    let kv =
        |k: &str| -> Option<&str> { w.iter().find_map(|x| x.strip_prefix(k)?.strip_prefix('=')) };
    let need = |k: &str| kv(k).ok_or(format!("{s:?} needs {k}="));
    let kind = *w.first().ok_or("empty message")?;
    let arg = w.get(1).copied().unwrap_or("");
    let body = match kind {
        "hello" => Body::Hello(Hello {
            hold_time: num(need("hold")?)?,
            targeted: false,
            request_targeted: false,
            gtsm: w.contains(&"gtsm"),
            transport_v4: kv("transport").map(ip).transpose()?,
            config_seqno: None,
            transport_v6: None,
        }),
        "init" => Body::Initialization(Initialization {
            version: kv("v").map(num).transpose()?.unwrap_or(1),
            keepalive_time: num(need("ka")?)?,
            downstream_on_demand: false,
            loop_detection: false,
            pv_limit: 0,
            max_pdu_len: 0,
            receiver: ldp_id(need("rcv")?)?,
        }),
        "keepalive" => Body::KeepAlive,
        "address" => Body::Address(arg.split(',').map(ip).collect::<R<_>>()?),
        "address-withdraw" => Body::AddressWithdraw(arg.split(',').map(ip).collect::<R<_>>()?),
        "mapping" => Body::LabelMapping(LabelMapping {
            fec: fec_elements(arg)?,
            label: num(need("label")?)?,
            request_id: kv("req").map(num).transpose()?,
            hop_count: None,
            path_vector: None,
        }),
        "request" => Body::LabelRequest(LabelRequest {
            fec: fec_elements(arg)?,
            hop_count: None,
            path_vector: None,
        }),
        "withdraw" | "release" => {
            let w = LabelWithdraw {
                fec: fec_elements(arg)?,
                label: kv("label").map(num).transpose()?,
            };
            if kind == "withdraw" {
                Body::LabelWithdraw(w)
            } else {
                Body::LabelRelease(w)
            }
        }
        "abort" => Body::LabelAbortRequest(LabelAbortRequest {
            fec: fec_elements(arg)?,
            request_id: num(need("req")?)?,
        }),
        "notification" => {
            let code = (0..0x20)
                .filter_map(StatusCode::from_data)
                .find(|c| format!("{c:?}") == arg)
                .ok_or(format!("unknown status {arg:?}"))?;
            let t = need("type")?;
            Body::Notification(Notification::new(Status {
                fatal: w.contains(&"fatal"),
                forward: false,
                data: code.data(),
                msg_id: num(need("id")?)?,
                msg_type: u16::from_str_radix(t.trim_start_matches("0x"), 16)
                    .map_err(|_| format!("bad type {t:?}"))?,
            }))
        }
        other => return Err(format!("unknown message {other:?}")),
    };
    Ok((id, body))
}

fn parse_pdu(s: &str) -> R<Vec<u8>> {
    if let Some(rest) = s.strip_prefix("pdu ") {
        let (id, msgs) = rest.split_once(' ').ok_or("pdu needs messages")?;
        let mut messages = Vec::new();
        for (i, m) in msgs.split('|').enumerate() {
            let (mid, body) = parse_msg(m.trim())?;
            messages.push(Message::new(mid.unwrap_or(i as u32 + 1), body));
        }
        return Pdu {
            ldp_id: ldp_id(id)?,
            messages,
        }
        .to_bytes()
        .map_err(|e| e.to_string());
    }
    // Hex, spaces allowed between groups.
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(format!("bad hex {s:?}"))
        })
        .collect()
}

fn gtsm_word(gtsm: bool) -> &'static str {
    if gtsm {
        " gtsm"
    } else {
        ""
    }
}

fn show_output(o: &Output) -> String {
    match o {
        Output::Hello { iface, .. } => format!("hello {iface}"),
        Output::Connect {
            peer,
            local,
            remote,
            gtsm,
        } => format!("connect {peer} {local} {remote}{}", gtsm_word(*gtsm)),
        Output::Accept { from, peer, gtsm } => format!("accept {from} {peer}{}", gtsm_word(*gtsm)),
        Output::Refuse { from } => format!("refuse {from}"),
        Output::Send { peer, data } => {
            let mut f = ispmux_slowpath::ldp::framer::Framer::new(u16::MAX);
            f.push(data);
            let mut msgs = Vec::new();
            while let Some(Ok(p)) = f.next_pdu() {
                match wire::decode(&p, u16::MAX) {
                    Ok(d) => msgs.extend(d.pdu.messages.iter().map(|m| show_msg(&m.body))),
                    Err(e) => msgs.push(format!("UNDECODABLE {e}")),
                }
            }
            format!("send {peer} {}", msgs.join(" | "))
        }
        Output::Close { peer } => format!("close {peer}"),
        Output::SessionUp { peer } => format!("up {}", peer.lsr_id),
        Output::SessionDown {
            peer,
            reason,
            was_up,
        } => {
            let r = match reason {
                Down::Sent(st) => format!("sent-{}", code_name(st.data)),
                Down::Received => "received".into(),
                Down::Closed => "closed".into(),
                Down::InitTimeout => "init-timeout".into(),
            };
            format!(
                "down {} {r} {}",
                peer.lsr_id,
                if *was_up { "up" } else { "notup" }
            )
        }
        Output::Fec(s) => format!(
            "fec {} local={} {} remote={}",
            s.fec,
            s.local.map_or("-".into(), |l| l.to_string()),
            if s.egress { "egress" } else { "transit" },
            s.remote.map_or("-".into(), |(nh, l)| format!("{nh}:{l}"))
        ),
    }
}

fn config(line: &str) -> R<Config> {
    let mut c: Option<Config> = None;
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=').ok_or(format!("bad config {kv:?}"))?;
        if k == "lsr" {
            c = Some(Config::new(ip(v)?));
            continue;
        }
        let c = c.as_mut().ok_or("config starts with lsr=")?;
        match k {
            "addresses" => c.addresses = v.split(',').map(ip).collect::<R<_>>()?,
            "interfaces" => c.interfaces = v.split(',').map(num).collect::<R<_>>()?,
            "keepalive" => c.keepalive_time = num(v)?,
            "gtsm" if v == "off" => c.gtsm = false,
            "labels" => {
                let (a, b) = v.split_once('-').ok_or("labels=LO-HI")?;
                c.labels = (num(a)?, num(b)?);
            }
            _ => return Err(format!("unknown config key {k:?}")),
        }
    }
    c.ok_or("config needs lsr=".into())
}

/// Runs one case; the first difference is the error.
fn run(text: &str) -> R<()> {
    let mut now = Now {
        mono: Instant::now(),
        unix: 1_800_000_000,
    };
    let mut engine: Option<Engine> = None;
    let mut got: Vec<String> = Vec::new();
    let mut want: Vec<String> = Vec::new();
    let mut at = 0;
    let check = |got: &[String], want: &[String], at: usize| -> R<()> {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "outputs of the input on line {at}:\n  want:\n    {}\n  got:\n    {}",
                want.join("\n    "),
                got.join("\n    ")
            ))
        }
    };
    for (no, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(o) = line.strip_prefix('>') {
            want.push(o.trim().to_string());
            continue;
        }
        let e = |m: String| format!("line {}: {m}", no + 1);
        if line.starts_with("config ") {
            engine = Some(Engine::new(config(line).map_err(e)?, now).map_err(|x| x.to_string())?);
            continue;
        }
        // A new input: the previous one's outputs are complete.
        check(&got, &want, at)?;
        got.clear();
        want.clear();
        at = no + 1;
        let eng = engine.as_mut().ok_or("a case starts with config")?;
        let w: Vec<&str> = line.splitn(4, ' ').collect();
        let arg = |i: usize| w.get(i).copied().ok_or(e(format!("missing argument {i}")));
        let mut out = Vec::new();
        match w[0] {
            "time" => {
                let secs: f64 = num(arg(1)?.trim_start_matches('+')).map_err(e)?;
                now = now + Duration::from_secs_f64(secs);
                continue;
            }
            "hello" => {
                let (iface, src) = (num(arg(1)?).map_err(e)?, ip(arg(2)?).map_err(e)?);
                let data = parse_pdu(arg(3)?).map_err(e)?;
                eng.handle(
                    now,
                    Input::Hello {
                        iface,
                        src,
                        data: &data,
                    },
                    &mut out,
                );
            }
            "accepted" => eng.handle(
                now,
                Input::Accepted {
                    from: ip(arg(1)?).map_err(e)?,
                },
                &mut out,
            ),
            "connected" => eng.handle(
                now,
                Input::Connected {
                    peer: ip(arg(1)?).map_err(e)?,
                },
                &mut out,
            ),
            "closed" => eng.handle(
                now,
                Input::Closed {
                    peer: ip(arg(1)?).map_err(e)?,
                },
                &mut out,
            ),
            "data" => {
                let peer = ip(arg(1)?).map_err(e)?;
                let rest = line
                    .splitn(3, ' ')
                    .nth(2)
                    .ok_or(e("data needs a PDU".into()))?;
                let data = parse_pdu(rest).map_err(e)?;
                eng.handle(now, Input::Data { peer, data: &data }, &mut out);
            }
            "egress" => {
                let f = fec(arg(1)?).map_err(e)?;
                eng.handle(
                    now,
                    Input::Egress {
                        fec: f,
                        egress: arg(2)? == "on",
                    },
                    &mut out,
                );
            }
            "route" => {
                let f = fec(arg(1)?).map_err(e)?;
                let nh = match arg(2)? {
                    "none" => None,
                    a => Some(ip(a).map_err(e)?),
                };
                eng.handle(
                    now,
                    Input::Route {
                        fec: f,
                        next_hop: nh,
                    },
                    &mut out,
                );
            }
            "timer" => eng.handle(now, Input::Timer, &mut out),
            "shutdown" => eng.handle(now, Input::Shutdown, &mut out),
            other => return Err(e(format!("unknown input {other:?}"))),
        }
        got = out.iter().map(show_output).collect();
    }
    check(&got, &want, at)
}

#[test]
fn conformance_cases() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ldp_conformance");
    let mut failures = Vec::new();
    let mut n = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("case directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("case");
        if let Err(e) = run(&text) {
            failures.push(format!("{}: {e}", path.display()));
        }
        n += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(n >= 3, "expected the cases in {}", dir.display());
}

#[test]
fn the_runner_catches_a_wrong_expectation() {
    let case = "config lsr=10.0.0.1 interfaces=1\ntimer\n> hello 2\n";
    assert!(run(case).is_err());
    let case = "config lsr=10.0.0.1 interfaces=1\ntimer\n> hello 1\n";
    assert_eq!(run(case), Ok(()));
}
