//! Durable usage records per client SP and billing period (connections, connection time,
//! octets), and the open sessions behind port accounting, in the store (component
//! `radius_usage`). Every event is applied in one transaction and is idempotent, so a NAS
//! retransmission after a crash neither loses nor double-counts usage.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{params, Connection};

use crate::store::{self, StoreError};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE radius_usage (
        csp TEXT NOT NULL,
        period TEXT NOT NULL,
        connections INTEGER NOT NULL DEFAULT 0,
        connection_secs INTEGER NOT NULL DEFAULT 0,
        input_octets INTEGER NOT NULL DEFAULT 0,
        output_octets INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (csp, period)
    );
    CREATE TABLE radius_session (
        nas TEXT NOT NULL,
        acct_session_id TEXT NOT NULL,
        csp TEXT NOT NULL,
        user_name TEXT NOT NULL,
        started INTEGER NOT NULL,
        session_secs INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (nas, acct_session_id)
    );
    CREATE TABLE radius_stop (
        nas TEXT NOT NULL,
        acct_session_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (nas, acct_session_id)
    );",
    // Suspensions and resumptions by the operator (`ispmux ctl suspend|resume`), which
    // outlive a restart and override the configuration's `suspended` flag.
    "CREATE TABLE radius_csp_state (
        csp TEXT PRIMARY KEY,
        suspended INTEGER NOT NULL,
        at INTEGER NOT NULL
    );",
];

/// What an accounting exchange changes in the usage records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageEvent {
    Start {
        csp: String,
        period: String,
        nas: String,
        session_id: String,
        user: String,
        at: u64,
    },
    Interim {
        nas: String,
        session_id: String,
        session_secs: u64,
    },
    Stop {
        csp: String,
        period: String,
        nas: String,
        session_id: String,
        session_secs: u64,
        input_octets: u64,
        output_octets: u64,
        at: u64,
    },
    /// The operator suspended or resumed a client SP.
    Suspension {
        csp: String,
        suspended: bool,
        at: u64,
    },
}

/// One usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRecord {
    pub csp: String,
    pub period: String,
    pub connections: u64,
    pub connection_secs: u64,
    pub input_octets: u64,
    pub output_octets: u64,
}

/// A session open at the time of loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    pub nas: String,
    pub session_id: String,
    pub csp: String,
    pub user: String,
    pub started: u64,
}

/// Usage records in the store.
pub struct UsageStore {
    conn: Connection,
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl UsageStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<UsageStore, StoreError> {
        Self::with(store::open(path)?)
    }

    /// A private in-memory store.
    pub fn in_memory() -> Result<UsageStore, StoreError> {
        Self::with(store::open_in_memory()?)
    }

    /// Uses an open connection, migrating it.
    pub fn with(mut conn: Connection) -> Result<UsageStore, StoreError> {
        store::migrate(&mut conn, "radius_usage", MIGRATIONS)?;
        Ok(UsageStore { conn })
    }

    /// Applies one event durably.
    pub fn apply(&mut self, e: &UsageEvent) -> Result<(), StoreError> {
        self.apply_all(std::slice::from_ref(e))
    }

    /// Applies events durably, all or none.
    pub fn apply_all(&mut self, events: &[UsageEvent]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for e in events {
            apply_one(&tx, e)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The client SPs the operator suspended (true) or resumed (false), by name.
    pub fn suspensions(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT csp, suspended FROM radius_csp_state ORDER BY csp")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sessions still open (to restore port accounting after a restart).
    pub fn open_sessions(&self) -> Result<Vec<OpenSession>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT nas, acct_session_id, csp, user_name, started FROM radius_session ORDER BY started",
        )?;
        let rows = st.query_map([], |r| {
            Ok(OpenSession {
                nas: r.get(0)?,
                session_id: r.get(1)?,
                csp: r.get(2)?,
                user: r.get(3)?,
                started: r.get::<_, i64>(4)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// All usage records, by CSP and period.
    pub fn records(&self) -> Result<Vec<UsageRecord>, StoreError> {
        records(&self.conn)
    }
}

fn apply_one(tx: &rusqlite::Transaction<'_>, e: &UsageEvent) -> Result<(), StoreError> {
    match e {
        UsageEvent::Start {
            csp,
            period,
            nas,
            session_id,
            user,
            at,
        } => {
            let n = tx.execute(
                    "INSERT OR IGNORE INTO radius_session (nas, acct_session_id, csp, user_name, started)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![nas, session_id, csp, user, i(*at)],
                )?;
            if n == 1 {
                tx.execute(
                    "INSERT INTO radius_usage (csp, period, connections) VALUES (?1, ?2, 1)
                         ON CONFLICT(csp, period) DO UPDATE SET connections = connections + 1",
                    params![csp, period],
                )?;
            }
        }
        UsageEvent::Interim {
            nas,
            session_id,
            session_secs,
        } => {
            tx.execute(
                    "UPDATE radius_session SET session_secs = ?3 WHERE nas = ?1 AND acct_session_id = ?2",
                    params![nas, session_id, i(*session_secs)],
                )?;
        }
        UsageEvent::Stop {
            csp,
            period,
            nas,
            session_id,
            session_secs,
            input_octets,
            output_octets,
            at,
        } => {
            let n = tx.execute(
                "INSERT OR IGNORE INTO radius_stop (nas, acct_session_id, at) VALUES (?1, ?2, ?3)",
                params![nas, session_id, i(*at)],
            )?;
            if n == 1 {
                tx.execute(
                        "INSERT INTO radius_usage (csp, period, connection_secs, input_octets, output_octets)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT(csp, period) DO UPDATE SET
                             connection_secs = connection_secs + excluded.connection_secs,
                             input_octets = input_octets + excluded.input_octets,
                             output_octets = output_octets + excluded.output_octets",
                        params![csp, period, i(*session_secs), i(*input_octets), i(*output_octets)],
                    )?;
            }
            tx.execute(
                "DELETE FROM radius_session WHERE nas = ?1 AND acct_session_id = ?2",
                params![nas, session_id],
            )?;
        }
        UsageEvent::Suspension { csp, suspended, at } => {
            tx.execute(
                "INSERT INTO radius_csp_state (csp, suspended, at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(csp) DO UPDATE SET suspended = excluded.suspended, at = excluded.at",
                params![csp, *suspended, i(*at)],
            )?;
        }
    }
    Ok(())
}

/// All usage records of a store opened elsewhere (`ispmux usage`), by CSP and period.
pub fn records(conn: &Connection) -> Result<Vec<UsageRecord>, StoreError> {
    let mut st = conn.prepare(
        "SELECT csp, period, connections, connection_secs, input_octets, output_octets
         FROM radius_usage ORDER BY csp, period",
    )?;
    let rows = st.query_map([], |r| {
        let u = |k: usize| r.get::<_, i64>(k).map(|v| v.max(0) as u64);
        Ok(UsageRecord {
            csp: r.get(0)?,
            period: r.get(1)?,
            connections: u(2)?,
            connection_secs: u(3)?,
            input_octets: u(4)?,
            output_octets: u(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A plain table for `ispmux usage`, one line per CSP and period.
pub fn to_table(records: &[UsageRecord]) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:>11} {:>15} {:>14} {:>14}\n",
        "csp", "period", "connections", "connection_secs", "input_octets", "output_octets"
    );
    for r in records {
        let _ = writeln!(
            out,
            "{:<16} {:<10} {:>11} {:>15} {:>14} {:>14}",
            r.csp, r.period, r.connections, r.connection_secs, r.input_octets, r.output_octets
        );
    }
    out
}

/// CSV export with a header line; fields are quoted when they need it.
pub fn to_csv(records: &[UsageRecord]) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    }
    let mut out =
        String::from("csp,period,connections,connection_secs,input_octets,output_octets\n");
    for r in records {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            field(&r.csp),
            field(&r.period),
            r.connections,
            r.connection_secs,
            r.input_octets,
            r.output_octets
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_suspension_of_each_csp_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("u.db");
        let mut st = UsageStore::open(&path).expect("open");
        let set = |csp: &str, suspended, at| UsageEvent::Suspension {
            csp: csp.into(),
            suspended,
            at,
        };
        st.apply_all(&[set("csp1", true, 1), set("csp2", true, 2)])
            .expect("apply");
        st.apply(&set("csp1", false, 3)).expect("apply");
        drop(st);
        let st = UsageStore::open(&path).expect("reopen");
        assert_eq!(
            st.suspensions().expect("read"),
            [("csp1".to_owned(), false), ("csp2".to_owned(), true)]
        );
        assert!(
            st.records().expect("records").is_empty(),
            "no usage from it"
        );
    }

    fn start(sid: &str) -> UsageEvent {
        UsageEvent::Start {
            csp: "csp1".into(),
            period: "2026-11".into(),
            nas: "127.0.0.1".into(),
            session_id: sid.into(),
            user: "a@csp1".into(),
            at: 100,
        }
    }

    fn stop(sid: &str, secs: u64) -> UsageEvent {
        UsageEvent::Stop {
            csp: "csp1".into(),
            period: "2026-11".into(),
            nas: "127.0.0.1".into(),
            session_id: sid.into(),
            session_secs: secs,
            input_octets: 10,
            output_octets: 20,
            at: 200,
        }
    }

    #[test]
    fn events_are_idempotent_and_durable() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("u.db");
        {
            let mut s = UsageStore::open(&path).expect("open");
            s.apply(&start("s1")).expect("start");
            s.apply(&start("s1")).expect("replayed start");
            s.apply(&start("s2")).expect("start");
            assert_eq!(s.open_sessions().expect("sessions").len(), 2);
            s.apply(&stop("s1", 60)).expect("stop");
            s.apply(&stop("s1", 60)).expect("replayed stop");
        }
        let s = UsageStore::open(&path).expect("reopen");
        let r = s.records().expect("records");
        assert_eq!(
            r,
            vec![UsageRecord {
                csp: "csp1".into(),
                period: "2026-11".into(),
                connections: 2,
                connection_secs: 60,
                input_octets: 10,
                output_octets: 20
            }]
        );
        let open = s.open_sessions().expect("sessions");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].session_id, "s2");
        assert!(to_table(&r)
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("csp1 ")));
        let csv = to_csv(&r);
        assert_eq!(csv.lines().nth(1), Some("csp1,2026-11,2,60,10,20"));
    }
}
