//! Bulk subscriber preload: `port,vlan,mac,isp[,ipv4]` per line, the port by `[[port]]`
//! name, checked like
//! `[[tables.subscribers]]` entries against the configuration and the entries before them.

use std::path::Path;

use ispmux_dataplane::table::preload::SubscriberPreload;

use crate::error::{ConfError, Problem};
use crate::tables::{Place, SubscriberCheck};
use crate::Config;

/// Columns, in order; a problem's key is the column at fault.
const COLUMNS: [&str; 5] = ["port", "vlan", "mac", "isp", "ipv4"];

/// Problems reported per file before giving up: one bad column tends to repeat on every line.
const MAX_PROBLEMS: usize = 20;

/// Reads the subscriber CSV at `path`, checked with `check`; errors name the CSV file, line,
/// column and column name.
pub(crate) fn load(
    path: &Path,
    cfg: &Config,
    check: &mut SubscriberCheck<'_>,
) -> Result<Vec<SubscriberPreload>, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, cfg, check).map_err(|problems| ConfError::Invalid {
        path: path.to_owned(),
        problems,
    })
}

/// Parses subscriber CSV text (see [`load`]).
pub(crate) fn parse(
    text: &str,
    cfg: &Config,
    check: &mut SubscriberCheck<'_>,
) -> Result<Vec<SubscriberPreload>, Vec<Problem>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if problems.len() >= MAX_PROBLEMS {
            break;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (n == 0 && line.starts_with("port")) {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |column: &str, what: String| {
            let i = COLUMNS.iter().position(|c| *c == column).unwrap_or(0);
            Problem {
                key: column.to_owned(),
                line: n + 1,
                column: fields.iter().take(i).map(|f| f.len() + 1).sum::<usize>() + 1,
                message: what,
            }
        };
        match row(&fields, cfg) {
            Err((column, what)) => problems.push(bad(column, what)),
            Ok(s) => {
                let found = check.check(&s, Place::Line(n + 1));
                if found.is_empty() {
                    out.push(s);
                }
                problems.extend(found.into_iter().map(|(f, m)| bad(f, m)));
            }
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// One line's fields as a subscriber; else the column at fault and why.
fn row(fields: &[&str], cfg: &Config) -> Result<SubscriberPreload, (&'static str, String)> {
    let e = |column, what: &str| (column, what.to_owned());
    if !(4..=5).contains(&fields.len()) {
        return Err(e("", "expected port,vlan,mac,isp[,ipv4]"));
    }
    let port = match cfg.ports.iter().position(|p| p.name == fields[0]) {
        Some(i) => u16::try_from(i).map_err(|_| e("port", "too many ports"))?,
        None if fields[0].parse::<u64>().is_ok() => {
            return Err(("port", crate::de::numbered(fields[0])))
        }
        None => return Err(("port", format!("no port named {:?}", fields[0]))),
    };
    Ok(SubscriberPreload {
        port,
        vlan: fields[1]
            .parse()
            .map_err(|_| e("vlan", "vlan is not a number"))?,
        inner_vlan: 0,
        mac: fields[2]
            .parse()
            .map_err(|_| e("mac", "not a MAC address"))?,
        isp: fields[3]
            .parse()
            .map_err(|_| e("isp", "isp is not a number"))?,
        ipv4: match fields.get(4) {
            Some(a) if !a.is_empty() => {
                Some(a.parse().map_err(|_| e("ipv4", "not an IPv4 address"))?)
            }
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::parse(
            "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\n",
            Path::new("t.toml"),
        )
        .expect("valid")
    }

    #[test]
    fn parses_lines_and_names_the_bad_one() {
        let cfg = config();
        let ok = parse(
            "port,vlan,mac,isp,ipv4\na,0,02:00:00:00:00:01,1,198.18.1.10\na,12,02:00:00:00:00:02,2,\n",
            &cfg,
            &mut SubscriberCheck::new(&cfg),
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].ipv4, Some("198.18.1.10".parse().expect("ip")));
        assert_eq!((ok[1].vlan, ok[1].isp, ok[1].ipv4), (12, 2, None));
        let e = parse(
            "a,0,02:00:00:00:00:01,1\na,0,zz:00,1\n",
            &cfg,
            &mut SubscriberCheck::new(&cfg),
        )
        .expect_err("bad mac");
        assert_eq!((e[0].line, e[0].column, e[0].key.as_str()), (2, 5, "mac"));
    }

    #[test]
    fn a_subscriber_twice_is_refused_at_its_second_line() {
        let cfg = config();
        let text = "port,vlan,mac,isp\na,7,02:00:00:00:00:01,1\na,8,02:00:00:00:00:01,1\n\
                    a,7,02:00:00:00:00:01,2\n";
        let e = parse(text, &cfg, &mut SubscriberCheck::new(&cfg)).expect_err("duplicate");
        assert_eq!(
            (e[0].line, e[0].column, e[0].key.as_str()),
            (4, 5, "mac"),
            "{e:?}"
        );
        assert!(e[0].message.contains("already line 2"), "{e:?}");
    }

    #[test]
    fn ports_are_named_not_numbered() {
        let cfg = config();
        let e = parse(
            "0,0,02:00:00:00:00:01,1\nb,0,02:00:00:00:00:02,1\n",
            &cfg,
            &mut SubscriberCheck::new(&cfg),
        )
        .expect_err("numbered and unknown ports");
        assert_eq!((e[0].line, e[0].column, e[0].key.as_str()), (1, 1, "port"));
        assert!(e[0].message.contains("not the number 0"), "{e:?}");
        assert_eq!(
            (e[1].line, e[1].message.as_str()),
            (2, "no port named \"b\"")
        );
    }
}
