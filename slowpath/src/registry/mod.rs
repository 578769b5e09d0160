//! The subscriber registry (claims 7, 9, 14 of the seeds): ISPs, subscribers and their
//! credentials, DHCP bindings, and the log of refused logons, in the store (component
//! `registry`). The CLI (`ispmux subscriber ...`), the daemon and the later HTTP API all go
//! through these functions.

pub mod import;
mod memory;
pub mod password;
mod schema;

use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use crate::dhcp::MacAddr;
use crate::store::{self, StoreError};
pub use memory::MemoryDirectory;
pub use password::PasswordCost;

/// A registry error.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// SQLite failed.
    #[error("registry: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A subscriber names an ISP the registry does not have.
    #[error("unknown ISP {0:?}")]
    UnknownIsp(String),
    /// The MAC is already registered.
    #[error("subscriber {0} already exists")]
    DuplicateSubscriber(MacAddr),
    /// No subscriber with that MAC.
    #[error("no subscriber {0}")]
    NoSuchSubscriber(MacAddr),
    /// An ISP still has subscribers.
    #[error("ISP {0:?} still has subscribers")]
    IspInUse(String),
    /// A stored value does not parse (the database was edited by hand).
    #[error("registry: corrupt {what}: {value:?}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The stored value.
        value: String,
    },
    /// A field is not acceptable.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// Hashing a password failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// One item of a batch is bad; nothing of the batch was written.
    #[error("item {index}: {source}")]
    Item {
        /// 0-based position in the batch.
        index: usize,
        /// What is wrong with it.
        source: Box<RegistryError>,
    },
    /// A CSV import row is bad; nothing was imported.
    #[error("CSV line {line}: {message}")]
    Csv {
        /// 1-based line number (the header is line 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// An ISP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isp {
    /// Unique name.
    pub name: String,
    /// The MPLS label (or FEC index) its subscribers' traffic rides, if assigned.
    pub label: Option<u32>,
    /// DHCP servers in order of preference.
    pub dhcp_servers: Vec<Ipv4Addr>,
}

/// Whether a subscriber may log on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// May log on.
    Active,
    /// Registered but refused (unpaid, abuse).
    Suspended,
}

impl Status {
    /// The word stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

impl FromStr for Status {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Status::Active),
            "suspended" => Ok(Status::Suspended),
            other => Err(RegistryError::Invalid {
                field: "status",
                message: format!("{other:?} is neither active nor suspended"),
            }),
        }
    }
}

/// A registered subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The modem's/CPE's MAC, the subscriber's key (claim 20).
    pub mac: MacAddr,
    /// The ISP the subscriber chose.
    pub isp: String,
    /// The customer id the ISP issued.
    pub customer_id: String,
    /// Argon2id PHC string; `None` when the ISP issued no password.
    pub password_hash: Option<String>,
    /// Whether logons are allowed.
    pub status: Status,
}

/// A subscriber to add, with the password in clear (hashed before storing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    /// MAC.
    pub mac: MacAddr,
    /// ISP name (must exist).
    pub isp: String,
    /// Customer id.
    pub customer_id: String,
    /// Clear-text password, if any.
    pub password: Option<String>,
    /// Initial status.
    pub status: Status,
}

/// A change to a subscriber; `None` leaves that field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberChange {
    /// A new customer id.
    pub customer_id: Option<String>,
    /// A new password hash (PHC string), or `Some(None)` to remove the password.
    pub password_hash: Option<Option<String>>,
    /// A new status; suspending also deletes the binding (see
    /// [`Registry::suspend_subscriber`]).
    pub status: Option<Status>,
}

/// Which subscribers a page lists: filters, and where the page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberQuery {
    /// Only this ISP's.
    pub isp: Option<String>,
    /// Only those with this status.
    pub status: Option<Status>,
    /// Only those whose customer id starts with this.
    pub customer_id_prefix: Option<String>,
    /// Only MACs after this one (the previous page's last): a cursor that stays right while
    /// subscribers are added and removed, unlike an offset.
    pub after: Option<MacAddr>,
    /// At most this many.
    pub limit: u32,
}

/// A DHCP lease the gateway relayed and now enforces in the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Subscriber MAC.
    pub mac: MacAddr,
    /// ISP that granted the lease.
    pub isp: String,
    /// Leased address.
    pub ipv4: Ipv4Addr,
    /// When the lease ends (whole seconds).
    pub expires: SystemTime,
    /// The ISP DHCP server that granted it (renewals go there first).
    pub server: Ipv4Addr,
    /// Access port the subscriber logged on from.
    pub port: u16,
    /// Outer (or only) VLAN on that port (0 = untagged).
    pub vlan: u16,
    /// Inner VLAN of QinQ (0 = at most one tag).
    pub inner_vlan: u16,
}

/// A refused logon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When (whole seconds).
    pub at: SystemTime,
    /// Who.
    pub mac: MacAddr,
    /// Which ISP, when known.
    pub isp: Option<String>,
    /// Why.
    pub reason: String,
}

/// A binding as stored: mac, isp, ipv4, expires, server, port, vlan, inner_vlan.
type BindingRow = (String, String, String, i64, String, u16, u16, u16);

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn from_unix(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

fn parse_col<T: FromStr>(what: &'static str, v: String) -> Result<T, RegistryError> {
    v.parse()
        .map_err(|_| RegistryError::Corrupt { what, value: v })
}

/// The page cache of a bulk write, KiB: the MAC index of about 1.5 million subscribers.
pub const BULK_CACHE_KIB: i64 = 64 << 10;

/// The registry over one store connection.
pub struct Registry {
    conn: Connection,
    cost: PasswordCost,
}

impl Registry {
    /// Opens (creating and migrating) the registry in the database at `path`.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        Self::from_connection(store::open(path)?)
    }

    /// A private in-memory registry.
    pub fn open_in_memory() -> Result<Registry, RegistryError> {
        Self::from_connection(store::open_in_memory()?)
    }

    /// Migrates and wraps an open store connection.
    pub fn from_connection(mut conn: Connection) -> Result<Registry, RegistryError> {
        store::migrate(&mut conn, "registry", schema::MIGRATIONS)?;
        Ok(Registry {
            conn,
            cost: PasswordCost::DEFAULT,
        })
    }

    /// Sets the Argon2 cost for passwords hashed from now on.
    pub fn with_password_cost(mut self, cost: PasswordCost) -> Self {
        self.cost = cost;
        self
    }

    /// Adds or replaces an ISP (its server list is replaced as a whole).
    pub fn upsert_isp(&mut self, isp: &Isp) -> Result<(), RegistryError> {
        if isp.name.trim().is_empty() {
            return Err(RegistryError::Invalid {
                field: "isp.name",
                message: "empty".into(),
            });
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO isp (name, label) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET label = excluded.label",
            params![isp.name, isp.label],
        )?;
        tx.execute("DELETE FROM isp_dhcp_server WHERE isp = ?1", [&isp.name])?;
        for (i, s) in isp.dhcp_servers.iter().enumerate() {
            tx.execute(
                "INSERT INTO isp_dhcp_server (isp, position, addr) VALUES (?1, ?2, ?3)",
                params![isp.name, i as i64, s.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// All ISPs by name.
    pub fn list_isps(&self) -> Result<Vec<Isp>, RegistryError> {
        let mut st = self
            .conn
            .prepare("SELECT name, label FROM isp ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<u32>>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        let mut srv = self
            .conn
            .prepare("SELECT addr FROM isp_dhcp_server WHERE isp = ?1 ORDER BY position")?;
        for (name, label) in rows {
            let addrs = srv
                .query_map([&name], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let dhcp_servers = addrs
                .into_iter()
                .map(|a| parse_col("isp_dhcp_server.addr", a))
                .collect::<Result<_, _>>()?;
            out.push(Isp {
                name,
                label,
                dhcp_servers,
            });
        }
        Ok(out)
    }

    /// Removes an ISP that no subscriber uses.
    pub fn remove_isp(&mut self, name: &str) -> Result<bool, RegistryError> {
        let users: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM subscriber WHERE isp = ?1",
            [name],
            |r| r.get(0),
        )?;
        if users > 0 {
            return Err(RegistryError::IspInUse(name.to_owned()));
        }
        Ok(self
            .conn
            .execute("DELETE FROM isp WHERE name = ?1", [name])?
            > 0)
    }

    /// Removes an ISP with its subscribers (and their bindings) in one transaction; the
    /// number of subscribers removed. The caller withdraws the bindings from the fast path
    /// (a reload does, for an ISP leaving `[[dhcp.isps]]`).
    pub fn remove_isp_with_subscribers(&mut self, name: &str) -> Result<usize, RegistryError> {
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM subscriber WHERE isp = ?1", [name])?;
        tx.execute("DELETE FROM isp WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(n)
    }

    /// Whether the registry has ISP `name`.
    pub fn has_isp(&self, name: &str) -> Result<bool, RegistryError> {
        Self::isp_exists(&self.conn, name)
    }

    /// Prepared once per connection: an import asks it for every row.
    fn isp_exists(conn: &Connection, name: &str) -> Result<bool, RegistryError> {
        Ok(conn
            .prepare_cached("SELECT 1 FROM isp WHERE name = ?1")?
            .query_row([name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub(crate) fn insert_subscriber(
        conn: &Connection,
        s: &NewSubscriber,
        cost: PasswordCost,
    ) -> Result<(), RegistryError> {
        Self::check_new(conn, &s.isp, &s.customer_id)?;
        let hash = match &s.password {
            Some(p) if !p.is_empty() => Some(password::hash(p.as_bytes(), cost)?),
            _ => None,
        };
        Self::insert_row(conn, s.mac, &s.isp, &s.customer_id, hash, s.status)
    }

    fn check_new(conn: &Connection, isp: &str, customer_id: &str) -> Result<(), RegistryError> {
        if customer_id.trim().is_empty() {
            return Err(RegistryError::Invalid {
                field: "customer_id",
                message: "empty".into(),
            });
        }
        if !Self::isp_exists(conn, isp)? {
            return Err(RegistryError::UnknownIsp(isp.to_owned()));
        }
        Ok(())
    }

    fn insert_row(
        conn: &Connection,
        mac: MacAddr,
        isp: &str,
        customer_id: &str,
        hash: Option<String>,
        status: Status,
    ) -> Result<(), RegistryError> {
        let n = conn
            .prepare_cached(
                "INSERT INTO subscriber (mac, isp, customer_id, password_hash, status, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(mac) DO NOTHING",
            )?
            .execute(params![
                mac.to_string(),
                isp,
                customer_id,
                hash,
                status.as_str(),
                unix_secs(SystemTime::now())
            ])?;
        if n == 0 {
            return Err(RegistryError::DuplicateSubscriber(mac));
        }
        Ok(())
    }

    /// Registers subscribers whose passwords are hashed already (`password_hash` is stored as
    /// it is: the caller hashed or checked it), all or none; returns how many. The first bad
    /// one is named by its position ([`RegistryError::Item`]).
    pub fn add_hashed(&mut self, subs: &[Subscriber]) -> Result<usize, RegistryError> {
        self.with_bulk_cache(|r| r.add_hashed_now(subs))
    }

    fn add_hashed_now(&mut self, subs: &[Subscriber]) -> Result<usize, RegistryError> {
        let tx = self.write_transaction()?;
        for (index, s) in subs.iter().enumerate() {
            Self::check_new(&tx, &s.isp, &s.customer_id)
                .and_then(|()| {
                    Self::insert_row(
                        &tx,
                        s.mac,
                        &s.isp,
                        &s.customer_id,
                        s.password_hash.clone(),
                        s.status,
                    )
                })
                .map_err(|e| RegistryError::Item {
                    index,
                    source: Box::new(e),
                })?;
        }
        tx.commit()?;
        Ok(subs.len())
    }

    /// Changes a subscriber's fields in one transaction; returns the binding that was in
    /// force when it is suspended by the change, which the caller must also withdraw from the
    /// fast path (as for [`Registry::suspend_subscriber`]).
    pub fn change_subscriber(
        &mut self,
        mac: MacAddr,
        c: &SubscriberChange,
    ) -> Result<Option<Binding>, RegistryError> {
        if c.customer_id
            .as_ref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(RegistryError::Invalid {
                field: "customer_id",
                message: "empty".into(),
            });
        }
        let suspends = c.status == Some(Status::Suspended);
        let binding = if suspends { self.binding(mac)? } else { None };
        let tx = self.conn.transaction()?;
        let m = mac.to_string();
        let n = tx.execute(
            "UPDATE subscriber SET
               customer_id = COALESCE(?2, customer_id),
               password_hash = CASE WHEN ?3 THEN ?4 ELSE password_hash END,
               status = COALESCE(?5, status)
             WHERE mac = ?1",
            params![
                m,
                c.customer_id,
                c.password_hash.is_some(),
                c.password_hash.clone().flatten(),
                c.status.map(Status::as_str)
            ],
        )?;
        if n == 0 {
            return Err(RegistryError::NoSuchSubscriber(mac));
        }
        if suspends {
            tx.execute("DELETE FROM binding WHERE mac = ?1", [&m])?;
        }
        tx.commit()?;
        Ok(binding)
    }

    /// One page of subscribers by MAC, filtered as `q` says.
    pub fn page_subscribers(&self, q: &SubscriberQuery) -> Result<Vec<Subscriber>, RegistryError> {
        let mut st = self.conn.prepare_cached(
            "SELECT mac, isp, customer_id, password_hash, status FROM subscriber
             WHERE (?1 IS NULL OR isp = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR substr(customer_id, 1, length(?3)) = ?3)
               AND (?4 IS NULL OR mac > ?4)
             ORDER BY mac LIMIT ?5",
        )?;
        let rows = st
            .query_map(
                params![
                    q.isp,
                    q.status.map(Status::as_str),
                    q.customer_id_prefix,
                    q.after.map(|m| m.to_string()),
                    q.limit
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(Self::row_to_subscriber).collect()
    }

    /// Registers a subscriber (claim 8: the ISP pre-registers its customer).
    pub fn add_subscriber(&mut self, s: &NewSubscriber) -> Result<(), RegistryError> {
        Self::insert_subscriber(&self.conn, s, self.cost)
    }

    /// Sets a subscriber's status.
    pub fn set_status(&mut self, mac: MacAddr, status: Status) -> Result<(), RegistryError> {
        let n = self.conn.execute(
            "UPDATE subscriber SET status = ?2 WHERE mac = ?1",
            params![mac.to_string(), status.as_str()],
        )?;
        if n == 0 {
            return Err(RegistryError::NoSuchSubscriber(mac));
        }
        Ok(())
    }

    /// Suspends a subscriber and deletes its binding in one transaction; returns the binding
    /// that was in force, which the caller must also withdraw from the fast path (as for
    /// [`Registry::remove_subscriber`]). Without the delete a restart would reinstall it.
    pub fn suspend_subscriber(&mut self, mac: MacAddr) -> Result<Option<Binding>, RegistryError> {
        let binding = self.binding(mac)?;
        let tx = self.conn.transaction()?;
        let n = tx.execute(
            "UPDATE subscriber SET status = ?2 WHERE mac = ?1",
            params![mac.to_string(), Status::Suspended.as_str()],
        )?;
        if n == 0 {
            return Err(RegistryError::NoSuchSubscriber(mac));
        }
        tx.execute("DELETE FROM binding WHERE mac = ?1", [mac.to_string()])?;
        tx.commit()?;
        Ok(binding)
    }

    /// Replaces a subscriber's password (hashed with a fresh salt, as when added); `None` or
    /// an empty one removes it. A running gateway needs no telling: it reads the hash on
    /// every logon, and its credential cache keys on the hash, which the new salt changes.
    pub fn set_password(
        &mut self,
        mac: MacAddr,
        password: Option<&str>,
    ) -> Result<(), RegistryError> {
        let hash = match password {
            Some(p) if !p.is_empty() => Some(password::hash(p.as_bytes(), self.cost)?),
            _ => None,
        };
        let n = self.conn.execute(
            "UPDATE subscriber SET password_hash = ?2 WHERE mac = ?1",
            params![mac.to_string(), hash],
        )?;
        if n == 0 {
            return Err(RegistryError::NoSuchSubscriber(mac));
        }
        Ok(())
    }

    fn row_to_subscriber(
        r: (String, String, String, Option<String>, String),
    ) -> Result<Subscriber, RegistryError> {
        Ok(Subscriber {
            mac: parse_col("subscriber.mac", r.0)?,
            isp: r.1,
            customer_id: r.2,
            password_hash: r.3,
            status: parse_col("subscriber.status", r.4)?,
        })
    }

    /// One subscriber. The statements of the logon path are prepared once per connection
    /// (`prepare_cached`): parsing SQL on every logon showed in profiles under load.
    pub fn subscriber(&self, mac: MacAddr) -> Result<Option<Subscriber>, RegistryError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT mac, isp, customer_id, password_hash, status FROM subscriber
                 WHERE mac = ?1",
            )?
            .query_row([mac.to_string()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        row.map(Self::row_to_subscriber).transpose()
    }

    /// Every registered MAC, and the position in the change log they reflect (see
    /// [`Registry::changes_since`]), read in one transaction.
    pub fn registered_macs(&mut self) -> Result<(Vec<MacAddr>, i64), RegistryError> {
        let tx = self.conn.transaction()?;
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM subscriber_change",
            [],
            |r| r.get(0),
        )?;
        let macs = {
            let mut st = tx.prepare("SELECT mac FROM subscriber")?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|m| parse_col("subscriber.mac", m))
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok((macs, seq))
    }

    /// The MACs that joined or left the registry after position `seq`, at most `max`, each
    /// with whether it is registered now and its position; oldest first.
    pub fn changes_since(
        &self,
        seq: i64,
        max: usize,
    ) -> Result<Vec<(i64, MacAddr, bool)>, RegistryError> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.seq, c.mac, EXISTS (SELECT 1 FROM subscriber s WHERE s.mac = c.mac)
             FROM subscriber_change c WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![seq, i64::try_from(max).unwrap_or(i64::MAX)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(q, m, present)| Ok((q, parse_col("subscriber_change.mac", m)?, present)))
            .collect()
    }

    /// Forgets the change log up to position `seq`: the reader that followed it is done
    /// with them (a gateway restarting reads the whole registry instead).
    pub fn forget_changes_through(&mut self, seq: i64) -> Result<usize, RegistryError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM subscriber_change WHERE seq <= ?1")?
            .execute([seq])?)
    }

    /// Subscribers by MAC, optionally of one ISP.
    pub fn list_subscribers(&self, isp: Option<&str>) -> Result<Vec<Subscriber>, RegistryError> {
        let mut st = self.conn.prepare(
            "SELECT mac, isp, customer_id, password_hash, status FROM subscriber
             WHERE ?1 IS NULL OR isp = ?1 ORDER BY mac",
        )?;
        let rows = st
            .query_map([isp], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(Self::row_to_subscriber).collect()
    }

    /// Removes a subscriber and its binding; returns the binding that was in force, which
    /// the caller must also remove from the fast path.
    pub fn remove_subscriber(&mut self, mac: MacAddr) -> Result<Option<Binding>, RegistryError> {
        let binding = self.binding(mac)?;
        let n = self
            .conn
            .execute("DELETE FROM subscriber WHERE mac = ?1", [mac.to_string()])?;
        if n == 0 {
            return Err(RegistryError::NoSuchSubscriber(mac));
        }
        Ok(binding)
    }

    /// Writes a binding (ACK, renewal).
    pub fn upsert_binding(&mut self, b: &Binding) -> Result<(), RegistryError> {
        self.conn
            .prepare_cached(
                "INSERT INTO binding
               (mac, isp, ipv4, expires, server, port, vlan, inner_vlan, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(mac) DO UPDATE SET isp = excluded.isp, ipv4 = excluded.ipv4,
               expires = excluded.expires, server = excluded.server, port = excluded.port,
               vlan = excluded.vlan, inner_vlan = excluded.inner_vlan,
               updated = excluded.updated",
            )?
            .execute(params![
                b.mac.to_string(),
                b.isp,
                b.ipv4.to_string(),
                unix_secs(b.expires),
                b.server.to_string(),
                b.port,
                b.vlan,
                b.inner_vlan,
                unix_secs(SystemTime::now())
            ])?;
        Ok(())
    }

    /// Deletes a binding; false when there was none.
    pub fn remove_binding(&mut self, mac: MacAddr) -> Result<bool, RegistryError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM binding WHERE mac = ?1")?
            .execute([mac.to_string()])?
            > 0)
    }

    const BINDING_COLS: &'static str = "mac, isp, ipv4, expires, server, port, vlan, inner_vlan";

    fn binding_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BindingRow> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ))
    }

    fn row_to_binding(r: BindingRow) -> Result<Binding, RegistryError> {
        Ok(Binding {
            mac: parse_col("binding.mac", r.0)?,
            isp: r.1,
            ipv4: parse_col("binding.ipv4", r.2)?,
            expires: from_unix(r.3),
            server: parse_col("binding.server", r.4)?,
            port: r.5,
            vlan: r.6,
            inner_vlan: r.7,
        })
    }

    /// One subscriber's binding.
    pub fn binding(&self, mac: MacAddr) -> Result<Option<Binding>, RegistryError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {} FROM binding WHERE mac = ?1", Self::BINDING_COLS),
                [mac.to_string()],
                Self::binding_row,
            )
            .optional()?;
        row.map(Self::row_to_binding).transpose()
    }

    /// All bindings (reinstalled into the fast path at start).
    pub fn bindings(&self) -> Result<Vec<Binding>, RegistryError> {
        self.bindings_of(None)
    }

    /// The bindings of one ISP's subscribers, or all.
    pub fn bindings_of(&self, isp: Option<&str>) -> Result<Vec<Binding>, RegistryError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM binding WHERE ?1 IS NULL OR isp = ?1 ORDER BY mac",
            Self::BINDING_COLS
        ))?;
        let rows = st
            .query_map([isp], Self::binding_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(Self::row_to_binding).collect()
    }

    /// Appends to the refusal log (claim 17).
    pub fn record_refusal(&mut self, f: &Refusal) -> Result<(), RegistryError> {
        self.conn
            .prepare_cached("INSERT INTO refusal (at, mac, isp, reason) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![unix_secs(f.at), f.mac.to_string(), f.isp, f.reason])?;
        Ok(())
    }

    /// The newest `limit` refusals, newest first.
    pub fn refusals(&self, limit: u32) -> Result<Vec<Refusal>, RegistryError> {
        self.refusals_of(None, limit)
    }

    /// The newest `limit` refusals of one ISP's (those whose ISP is known), or of all;
    /// newest first.
    pub fn refusals_of(
        &self,
        isp: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Refusal>, RegistryError> {
        let mut st = self.conn.prepare(
            "SELECT at, mac, isp, reason FROM refusal WHERE ?1 IS NULL OR isp = ?1
             ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![isp, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(at, mac, isp, reason)| {
                Ok(Refusal {
                    at: from_unix(at),
                    mac: parse_col("refusal.mac", mac)?,
                    isp,
                    reason,
                })
            })
            .collect()
    }

    /// ISP `isp`'s refusals after refusal id `after`, oldest first, at most `limit`, with
    /// their ids.
    pub fn refusals_after(
        &self,
        isp: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Refusal)>, RegistryError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, at, mac, reason FROM refusal WHERE isp = ?1 AND id > ?2 \
             ORDER BY id LIMIT ?3",
        )?;
        let rows = st
            .query_map(params![isp, after, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, at, mac, reason)| {
                Ok((
                    id,
                    Refusal {
                        at: from_unix(at),
                        mac: parse_col("refusal.mac", mac)?,
                        isp: Some(isp.to_owned()),
                        reason,
                    },
                ))
            })
            .collect()
    }

    /// The last refusal id ISP `isp` was told of; the first time it is asked, the newest
    /// refusal's id (an ISP is told of refusals from when it is first asked for, not of
    /// the whole log).
    pub fn notice_cursor(&mut self, isp: &str) -> Result<i64, RegistryError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO refusal_notice (isp, last_id) \
             SELECT ?1, COALESCE(MAX(id), 0) FROM refusal",
            [isp],
        )?;
        Ok(self.conn.query_row(
            "SELECT last_id FROM refusal_notice WHERE isp = ?1",
            [isp],
            |r| r.get(0),
        )?)
    }

    /// Records that ISP `isp` was told of the refusals up to id `last_id`.
    pub fn set_notice_cursor(&mut self, isp: &str, last_id: i64) -> Result<(), RegistryError> {
        self.conn.execute(
            "INSERT INTO refusal_notice (isp, last_id) VALUES (?1, ?2) \
             ON CONFLICT (isp) DO UPDATE SET last_id = excluded.last_id",
            params![isp, last_id],
        )?;
        Ok(())
    }

    pub(crate) fn begin_immediate(&mut self) -> Result<(), RegistryError> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    pub(crate) fn commit(&mut self) -> Result<(), RegistryError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    pub(crate) fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "registry: rollback failed");
            }
        }
    }

    /// Runs `f` (a bulk write) with the connection's page cache raised to [`BULK_CACHE_KIB`],
    /// then gives the memory back. Subscribers arrive in no order of MAC, so every row lands
    /// on a random page of the MAC index (about 40 bytes an entry); once that index outgrows
    /// SQLite's default 2 MiB cache, each row reads a page back: 100,000 rows into a store of
    /// 400,000 took three times as long as with the index cached.
    pub(crate) fn with_bulk_cache<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let before: i64 = self
            .conn
            .pragma_query_value(None, "cache_size", |r| r.get(0))?;
        self.conn
            .pragma_update(None, "cache_size", -BULK_CACHE_KIB)?;
        let r = f(self);
        if let Err(e) = self.conn.pragma_update(None, "cache_size", before) {
            tracing::warn!(error = %e, "registry: restoring the page cache's size");
        }
        r
    }

    /// A transaction that takes the store's write lock at its start (waiting its turn as
    /// any writer does): one that reads first and writes later fails at its first write,
    /// without waiting, when another connection committed in between (SQLite's
    /// `SQLITE_BUSY_SNAPSHOT` in WAL mode), as the gateway's own connections do while the API
    /// or the CLI writes.
    pub(crate) fn write_transaction(&mut self) -> Result<rusqlite::Transaction<'_>, RegistryError> {
        Ok(self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }

    #[cfg(test)]
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(crate) fn cost(&self) -> PasswordCost {
        self.cost
    }
}

#[cfg(test)]
mod tests;
