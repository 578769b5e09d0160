//! Bulk subscriber preload: `port,vlan,mac,isp[,ipv4]` per line.

use std::path::Path;

use ispmux_dataplane::table::preload::SubscriberPreload;

use crate::error::{ConfError, Problem};

/// Reads a subscriber CSV; errors name the file, line and column.
pub fn load_subscribers_csv(path: &Path) -> Result<Vec<SubscriberPreload>, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_subscribers_csv(&text).map_err(|p| ConfError::Invalid {
        path: path.to_owned(),
        problems: vec![p],
    })
}

/// Parses subscriber CSV text (see [`load_subscribers_csv`]).
pub fn parse_subscribers_csv(text: &str) -> Result<Vec<SubscriberPreload>, Problem> {
    let mut out = Vec::new();
    let mut seen = crate::validate::Subscribers::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("port")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |i: usize, what: &str| {
            let column = fields.iter().take(i).map(|f| f.len() + 1).sum::<usize>() + 1;
            Problem {
                key: ["port", "vlan", "mac", "isp", "ipv4"]
                    .get(i)
                    .copied()
                    .unwrap_or("")
                    .to_owned(),
                line: n + 1,
                column,
                message: what.to_owned(),
            }
        };
        if !(4..=5).contains(&fields.len()) {
            return Err(bad(0, "expected port,vlan,mac,isp[,ipv4]"));
        }
        let s = SubscriberPreload {
            port: fields[0]
                .parse()
                .map_err(|_| bad(0, "port is not a number"))?,
            vlan: fields[1]
                .parse()
                .map_err(|_| bad(1, "vlan is not a number"))?,
            inner_vlan: 0,
            mac: fields[2].parse().map_err(|_| bad(2, "not a MAC address"))?,
            isp: fields[3]
                .parse()
                .map_err(|_| bad(3, "isp is not a number"))?,
            ipv4: match fields.get(4) {
                Some(a) if !a.is_empty() => {
                    Some(a.parse().map_err(|_| bad(4, "not an IPv4 address"))?)
                }
                _ => None,
            },
        };
        seen.add(&s, &format!("line {}", n + 1))
            .map_err(|(field, msg)| bad(if field == "mac" { 2 } else { 4 }, &msg))?;
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_names_the_bad_one() {
        let ok = parse_subscribers_csv(
            "port,vlan,mac,isp,ipv4\n0,0,02:00:00:00:00:01,1,198.18.1.10\n0,12,02:00:00:00:00:02,2,\n",
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].ipv4, Some("198.18.1.10".parse().expect("ip")));
        assert_eq!((ok[1].vlan, ok[1].isp, ok[1].ipv4), (12, 2, None));
        let e =
            parse_subscribers_csv("0,0,02:00:00:00:00:01,1\n0,0,zz:00,1\n").expect_err("bad mac");
        assert_eq!((e.line, e.column, e.key.as_str()), (2, 5, "mac"));
    }

    #[test]
    fn a_subscriber_twice_is_refused_at_its_second_line() {
        let text = "port,vlan,mac,isp\n0,7,02:00:00:00:00:01,1\n0,8,02:00:00:00:00:01,1\n\
                    0,7,02:00:00:00:00:01,2\n";
        let e = parse_subscribers_csv(text).expect_err("duplicate");
        assert_eq!((e.line, e.column, e.key.as_str()), (4, 5, "mac"), "{e:?}");
        assert!(e.message.contains("already line 2"), "{e:?}");
    }
}
