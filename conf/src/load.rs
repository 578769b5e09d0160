//! Everything a command reads from its configuration, loaded and checked in one place, so
//! `ispmux check` accepts exactly what `ispmux run` accepts.

use std::path::{Path, PathBuf};

use ispmux_dataplane::PreloadTables;

use crate::error::ConfError;
use crate::model::{Config, Purpose};
use crate::tables::{Place, SubscriberCheck};

/// What `ispmux run` reads: the file and the tables the fast path starts with.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration file.
    pub config: Config,
    /// `[tables]` plus the subscribers of `[dataplane] subscribers_csv`, ports by index
    /// into `config.ports`.
    pub preload: PreloadTables,
}

/// Reads and checks the gateway's configuration file and everything it refers to (the
/// subscribers CSV, a path relative to the file). Errors name the file at fault (the
/// configuration or the CSV), line, column and key.
pub fn load_gateway(path: &Path) -> Result<Loaded, ConfError> {
    let config = crate::load(path)?;
    let mut preload = config.preload_tables();
    if let Some(csv) = &config.dataplane.subscribers_csv {
        let mut check = SubscriberCheck::new(&config);
        // Seeded with the [tables] subscribers (already checked) so a CSV line repeating
        // one of them is refused too.
        for (i, s) in preload.subscribers.iter().enumerate() {
            check.check(s, Place::Table(i));
        }
        let csv = relative_to(path, csv);
        preload
            .subscribers
            .extend(crate::subscribers_csv::load(&csv, &config, &mut check)?);
    }
    Ok(Loaded { config, preload })
}

/// `name` as seen from the directory of the file at `path`.
fn relative_to(path: &Path, name: &str) -> PathBuf {
    path.parent()
        .map_or_else(|| PathBuf::from(name), |d| d.join(name))
}

/// What `ispmux check` found a file to be.
#[derive(Clone, Debug)]
pub enum Checked {
    /// A gateway configuration, with all it loads.
    Gateway(Box<Loaded>),
    /// A file for `ispmux radius-proxy` alone: a `[radius]` table and no `[[port]]`.
    RadiusProxy(Box<Config>),
}

/// Reads and checks a file for `ispmux radius-proxy`; of it, only what the proxy alone uses
/// (`[radius]`, `[store]`, `[control]`, `[api]`): the rest may be a gateway's, which the
/// proxy neither checks nor, on a reload, compares.
pub fn load_radius_proxy(path: &Path) -> Result<Loaded, ConfError> {
    let c = crate::load_for(path, Purpose::RadiusProxy)?;
    Ok(Loaded {
        config: Config {
            radius: c.radius,
            store: c.store,
            control: c.control,
            api: c.api,
            ..Config::default()
        },
        preload: PreloadTables::default(),
    })
}

/// Checks a file as the command that would use it: a file with `[radius]` and no
/// `[[port]]` as the standalone RADIUS proxy's, any other as the gateway's
/// ([`load_gateway`]).
pub fn check(path: &Path) -> Result<Checked, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        path: path.to_owned(),
        source,
    })?;
    let proxy_only = toml_edit::ImDocument::parse(text.as_str())
        .is_ok_and(|d| d.contains_key("radius") && !d.contains_key("port"));
    if proxy_only {
        let c = crate::parse_for(&text, path, Purpose::RadiusProxy)?;
        return Ok(Checked::RadiusProxy(Box::new(c)));
    }
    load_gateway(path).map(|l| Checked::Gateway(Box::new(l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[[port]]\nname = \"a\"\ndevice = \"net_null0\"\n\n\
                          [[tables.subscribers]]\nport = \"a\"\nmac = \"02:00:00:00:00:01\"\nisp = 1\n\n\
                          [dataplane]\nsubscribers_csv = \"subs.csv\"\n";

    fn dir_with(csv: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("subs.csv"), csv).expect("csv");
        let f = d.path().join("ispmux.toml");
        std::fs::write(&f, CONFIG).expect("config");
        (d, f)
    }

    #[test]
    fn loads_the_csv_beside_the_file() {
        let (_d, f) = dir_with("port,vlan,mac,isp\na,0,02:00:00:00:00:02,1\n");
        let l = load_gateway(&f).expect("valid");
        assert_eq!(l.preload.subscribers.len(), 2);
        assert!(matches!(check(&f), Ok(Checked::Gateway(_))));
    }

    /// `check` used to validate the file alone: a CSV that `run` refuses passed.
    #[test]
    fn check_refuses_a_bad_csv_naming_its_line() {
        let (d, f) =
            dir_with("port,vlan,mac,isp\na,0,02:00:00:00:00:02,1\na,0,02:00:00:00:00:zz,1\n");
        let e = check(&f).expect_err("bad MAC in the CSV");
        let s = e.to_string();
        let want = format!(
            "{}:3:5: `mac`: not a MAC address",
            d.path().join("subs.csv").display()
        );
        assert!(s.contains(&want), "{s}");
    }

    #[test]
    fn a_csv_line_repeating_a_tables_subscriber_is_refused() {
        let (_d, f) = dir_with("a,0,02:00:00:00:00:01,2\n");
        let e = load_gateway(&f).expect_err("duplicate");
        let p = &e.problems()[0];
        assert_eq!((p.line, p.key.as_str()), (1, "mac"), "{p:?}");
        assert!(p.message.contains("already tables.subscribers[0]"), "{p:?}");
    }

    /// The README's standalone proxy files have no ports: `check` validates them as such.
    #[test]
    fn check_takes_a_radius_only_file_as_the_proxy_s() {
        let f = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/radius-proxy.toml"
        ));
        match check(f) {
            Ok(Checked::RadiusProxy(c)) => assert!(c.radius.is_some()),
            other => panic!("want the proxy's file, got {other:?}"),
        }
        // And its problems are still found.
        let d = tempfile::tempdir().expect("tempdir");
        let bad = d.path().join("proxy.toml");
        let text = std::fs::read_to_string(f).expect("example");
        std::fs::write(&bad, format!("{text}\n[store]\npath = \"\"\n")).expect("write");
        let e = check(&bad).expect_err("empty store path");
        assert!(e.problems().iter().any(|p| p.key == "store.path"), "{e}");
    }

    /// The proxy alone keeps of a file what it uses: a gateway's ports in the same file
    /// (even ones a gateway would refuse) are no part of what it reloads.
    #[test]
    fn the_proxy_alone_loads_only_its_tables() {
        let f = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/radius-proxy.toml"
        ));
        let text = std::fs::read_to_string(f).expect("example");
        let d = tempfile::tempdir().expect("tempdir");
        let both = d.path().join("both.toml");
        std::fs::write(
            &both,
            format!("{text}\n[[port]]\nname = \"a\"\ndevice = \"\"\n"),
        )
        .expect("write");
        assert!(load_gateway(&both).is_err(), "a port without a device");
        let l = load_radius_proxy(&both).expect("the proxy's part is valid");
        assert!(l.config.radius.is_some());
        assert!(l.config.ports.is_empty());
        let alone = load_radius_proxy(f).expect("valid");
        assert_eq!(
            crate::reload::fixed_changes(&alone.config, &l.config),
            Vec::<String>::new()
        );
    }
}
