//! The durable store (SQLite by default): opening, pragmas, and versioned schema migrations.
//!
//! Each component (registry, RADIUS usage, ...) owns an ordered list of migrations; the
//! version applied per component is kept in `schema_version`, so components evolve apart.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer ispmux.
    #[error(
        "store: component {component} is at schema version {found}, this ispmux knows {known}"
    )]
    TooNew {
        /// Component name.
        component: String,
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
}

/// Opens (creating if needed) a SQLite database in WAL mode with durable commits.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens a private in-memory database (tests).
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    // WAL lets readers (ispmux usage, the API) run beside the writer; synchronous=FULL makes
    // a commit durable before anything that depends on it is acknowledged.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             component TEXT PRIMARY KEY,
             version INTEGER NOT NULL
         )",
    )?;
    Ok(())
}

/// Applies the migrations of `component` not yet applied, each in its own transaction.
///
/// `migrations[i]` takes the component from version `i` to `i + 1`; never edit a released one,
/// append a new one.
pub fn migrate(
    conn: &mut Connection,
    component: &str,
    migrations: &[&str],
) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    let found: i64 = conn
        .query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [component],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    if found > known {
        return Err(StoreError::TooNew {
            component: component.to_owned(),
            found,
            known,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            rusqlite::params![component, i as i64 + 1],
        )?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_in_order() {
        let mut c = open_in_memory().expect("open");
        migrate(&mut c, "t", &["CREATE TABLE a (x INTEGER)"]).expect("v1");
        migrate(
            &mut c,
            "t",
            &[
                "CREATE TABLE a (x INTEGER)",
                "ALTER TABLE a ADD COLUMN y TEXT",
            ],
        )
        .expect("v2 applies only the second");
        c.execute("INSERT INTO a (x, y) VALUES (1, 'z')", [])
            .expect("both columns exist");
        let err = migrate(&mut c, "t", &["CREATE TABLE a (x INTEGER)"]).unwrap_err();
        assert!(matches!(
            err,
            StoreError::TooNew {
                found: 2,
                known: 1,
                ..
            }
        ));
    }

    #[test]
    fn file_store_is_wal() {
        let dir = std::env::temp_dir().join(format!("ispmux-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let c = open(&dir.join("s.db")).expect("open");
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(mode, "wal");
        drop(c);
        std::fs::remove_dir_all(&dir).ok();
    }
}
