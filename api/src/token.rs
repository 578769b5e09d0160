//! Bearer tokens: the operator's (its SHA-256 in `[api] operator_token_sha256`) and the
//! ISPs' (issued by the operator, kept in the store by their SHA-256 only).
//!
//! SHA-256 and not Argon2: a token is 256 random bits, so no guess list or brute force
//! finds one from its hash however fast the hash is; a slow hash protects only secrets
//! people choose. A fast one lets a request find its token by one index lookup, and keeps a
//! flood of wrong tokens from costing the server Argon2's memory and time per attempt.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};

use ispmux_slowpath::store::{self, StoreError};

/// The store's migrations of component `api`. Append, never edit.
const MIGRATIONS: &[&str] = &["
    -- An ISP's tokens go with the ISP.
    CREATE TABLE api_token (
        id      INTEGER PRIMARY KEY,
        isp     TEXT NOT NULL REFERENCES isp(name) ON DELETE CASCADE,
        sha256  TEXT NOT NULL UNIQUE,
        label   TEXT NOT NULL DEFAULT '',
        created INTEGER NOT NULL
    );
    CREATE INDEX api_token_isp ON api_token(isp);
"];

/// What every token starts with: secret scanners and people both recognise it.
pub const PREFIX: &str = "ispmux_";

/// A token store failure.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SQLite failed.
    #[error("tokens: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No such ISP.
    #[error("unknown ISP {0:?}")]
    UnknownIsp(String),
}

/// A new random token: [`PREFIX`] and 256 bits in hex.
pub fn generate() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{PREFIX}{}", hex(&b))
}

/// The SHA-256 of a token as stored and configured: 64 lower-case hex digits.
pub fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether two hex digests are equal, in time that does not depend on where they differ.
pub fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
}

/// An issued ISP token as listed (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Its id, to revoke it by.
    pub id: i64,
    /// The ISP it acts for.
    pub isp: String,
    /// The operator's note.
    pub label: String,
    /// When issued, Unix seconds.
    pub created: i64,
}

/// The ISP tokens in the store.
pub struct TokenStore {
    conn: Connection,
}

impl TokenStore {
    /// Opens the store at `path` (the registry's, migrated already).
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        Self::from_connection(store::open(path)?)
    }

    /// Wraps and migrates an open connection (tests: in memory, beside a registry).
    pub fn from_connection(mut conn: Connection) -> Result<Self, TokenError> {
        store::migrate(&mut conn, "api", MIGRATIONS)?;
        Ok(TokenStore { conn })
    }

    /// Issues a token for `isp`; returns it (shown once, never stored) and its record.
    pub fn issue(&mut self, isp: &str, label: &str) -> Result<(String, TokenInfo), TokenError> {
        let exists = self
            .conn
            .query_row("SELECT 1 FROM isp WHERE name = ?1", [isp], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(TokenError::UnknownIsp(isp.to_owned()));
        }
        let token = generate();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.conn.execute(
            "INSERT INTO api_token (isp, sha256, label, created) VALUES (?1, ?2, ?3, ?4)",
            params![isp, sha256_hex(&token), label, created],
        )?;
        let info = TokenInfo {
            id: self.conn.last_insert_rowid(),
            isp: isp.to_owned(),
            label: label.to_owned(),
            created,
        };
        Ok((token, info))
    }

    /// The ISP a token acts for, if it is a live one.
    pub fn isp_of(&self, token: &str) -> Result<Option<String>, TokenError> {
        Ok(self
            .conn
            .prepare_cached("SELECT isp FROM api_token WHERE sha256 = ?1")?
            .query_row([sha256_hex(token)], |r| r.get(0))
            .optional()?)
    }

    /// The tokens of `isp`, or of every ISP, by id.
    pub fn list(&self, isp: Option<&str>) -> Result<Vec<TokenInfo>, TokenError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, isp, label, created FROM api_token WHERE ?1 IS NULL OR isp = ?1
             ORDER BY id",
        )?;
        let rows = st
            .query_map([isp], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    isp: r.get(1)?,
                    label: r.get(2)?,
                    created: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Revokes token `id` of `isp` (or of any ISP); false when there was none.
    pub fn revoke(&mut self, isp: Option<&str>, id: i64) -> Result<bool, TokenError> {
        Ok(self.conn.execute(
            "DELETE FROM api_token WHERE id = ?1 AND (?2 IS NULL OR isp = ?2)",
            params![id, isp],
        )? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ispmux_slowpath::registry::{Isp, Registry};

    #[test]
    fn issued_tokens_find_their_isp_until_revoked() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("s.db");
        let mut reg = Registry::open(&db).expect("registry");
        for name in ["isp-a", "isp-b"] {
            reg.upsert_isp(&Isp {
                name: name.into(),
                label: None,
                dhcp_servers: vec![],
            })
            .expect("isp");
        }
        let mut t = TokenStore::open(&db).expect("tokens");
        let (tok, info) = t.issue("isp-a", "provisioning").expect("issue");
        assert!(tok.starts_with(PREFIX) && tok.len() == PREFIX.len() + 64);
        assert_eq!(t.isp_of(&tok).expect("lookup").as_deref(), Some("isp-a"));
        assert_eq!(t.isp_of("ispmux_00").expect("lookup"), None);
        assert!(matches!(
            t.issue("isp-z", ""),
            Err(TokenError::UnknownIsp(_))
        ));
        assert_eq!(
            t.list(Some("isp-a")).expect("list"),
            std::slice::from_ref(&info)
        );
        assert!(t.list(Some("isp-b")).expect("list").is_empty());
        assert!(
            !t.revoke(Some("isp-b"), info.id).expect("revoke"),
            "another ISP's id"
        );
        assert!(t.revoke(Some("isp-a"), info.id).expect("revoke"));
        assert_eq!(t.isp_of(&tok).expect("lookup"), None);
    }

    #[test]
    fn digests_compare_whole() {
        let h = sha256_hex("x");
        assert!(same_digest(&h, &h.to_uppercase()));
        assert!(!same_digest(&h, &sha256_hex("y")));
        assert!(!same_digest(&h, &h[..63]));
        // The well-known SHA-256 of "abc".
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
