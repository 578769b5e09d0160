//! Capacity of a client SP: the ports it rents (open sessions plus logons accepted and waiting
//! for their Accounting Start), its connection time per billing period, and its suspension.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use ispmux_conf::radius::{Capacity, Period};

/// Why the proxy refuses a CSP logon after the master server accepted the virtual subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Suspended,
    NoFreePort,
    TimeThreshold,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Suspended => "csp_suspended",
            Refusal::NoFreePort => "no_free_port",
            Refusal::TimeThreshold => "time_threshold",
        }
    }
}

/// An open session of a CSP subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub nas_ip: IpAddr,
    pub user: String,
    pub started: u64,
    pub session_secs: u64,
}

/// Key of a session: NAS and Acct-Session-Id.
pub type SessionKey = (IpAddr, String);

/// Load of one CSP.
#[derive(Debug, Default)]
pub struct CspLoad {
    pub sessions: HashMap<SessionKey, Session>,
    /// Ports held by accepted logons until their Start, by token (oldest first).
    reservations: BTreeMap<u64, Instant>,
    next_token: u64,
    /// Period the closed time belongs to.
    period: String,
    /// Connection time of sessions closed in `period`.
    closed_secs: u64,
}

impl CspLoad {
    /// Ports in use now.
    pub fn ports_in_use(&mut self, now: Instant) -> usize {
        // Tokens grow with time and every hold lasts as long, so the oldest expire first:
        // pruning from the front keeps a logon check independent of the number of holds.
        while let Some((&t, &exp)) = self.reservations.first_key_value() {
            if exp > now {
                break;
            }
            self.reservations.remove(&t);
        }
        self.sessions.len() + self.reservations.len()
    }

    /// Connection time used in `period` by closed and open sessions.
    pub fn time_used(&self, period: &str, unix: u64) -> u64 {
        let closed = if self.period == period {
            self.closed_secs
        } else {
            0
        };
        closed
            + self
                .sessions
                .values()
                .map(|s| unix.saturating_sub(s.started).max(s.session_secs))
                .sum::<u64>()
    }

    /// Whether one more logon fits.
    pub fn check(
        &mut self,
        cap: &Capacity,
        suspended: bool,
        now: Instant,
        unix: u64,
    ) -> Result<(), Refusal> {
        if suspended {
            return Err(Refusal::Suspended);
        }
        if self.ports_in_use(now) >= cap.ports as usize {
            return Err(Refusal::NoFreePort);
        }
        if let Some(limit) = cap.connection_time_s {
            if self.time_used(&period_key(cap.period, unix), unix) >= limit {
                return Err(Refusal::TimeThreshold);
            }
        }
        Ok(())
    }

    /// Holds a port until `expires` or until a Start consumes it.
    pub fn reserve(&mut self, expires: Instant) -> u64 {
        self.next_token += 1;
        self.reservations.insert(self.next_token, expires);
        self.next_token
    }

    /// Gives back a port held by a logon that did not complete.
    pub fn release(&mut self, token: u64) {
        self.reservations.remove(&token);
    }

    /// A session starts: it takes the port of the oldest pending logon, if any.
    pub fn start(&mut self, key: SessionKey, s: Session) {
        if !self.sessions.contains_key(&key) {
            self.reservations.pop_first();
        }
        self.sessions.insert(key, s);
    }

    /// A session ends; its time counts toward `period`.
    pub fn stop(&mut self, key: &SessionKey, period: &str, secs: u64) -> Option<Session> {
        let s = self.sessions.remove(key);
        self.add_closed(period, secs);
        s
    }

    /// Adds closed connection time (also when loading the store).
    pub fn add_closed(&mut self, period: &str, secs: u64) {
        if self.period != period {
            self.period = period.to_owned();
            self.closed_secs = 0;
        }
        self.closed_secs = self.closed_secs.saturating_add(secs);
    }
}

/// The billing period containing `unix` (UTC): `YYYY-MM-DD` or `YYYY-MM`.
pub fn period_key(p: Period, unix: u64) -> String {
    let (y, m, d) = civil_from_days((unix / 86_400) as i64);
    match p {
        Period::Day => format!("{y:04}-{m:02}-{d:02}"),
        Period::Month => format!("{y:04}-{m:02}"),
    }
}

/// Gregorian date of a day count since 1970-01-01 (the well-known era-based algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cap(ports: u32, secs: Option<u64>) -> Capacity {
        Capacity {
            ports,
            connection_time_s: secs,
            period: Period::Month,
            suspended: false,
        }
    }

    #[test]
    fn periods() {
        assert_eq!(period_key(Period::Day, 0), "1970-01-01");
        // 2024-02-29 12:00 UTC
        assert_eq!(period_key(Period::Day, 1_709_208_000), "2024-02-29");
        assert_eq!(period_key(Period::Month, 1_709_208_000), "2024-02");
        assert_eq!(period_key(Period::Day, 951_782_400), "2000-02-29");
    }

    #[test]
    fn ports_reservations_and_sessions() {
        let t = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let mut l = CspLoad::default();
        let c = cap(2, None);
        assert_eq!(l.check(&c, false, t, 1000), Ok(()));
        let r1 = l.reserve(t + Duration::from_secs(10));
        let _r2 = l.reserve(t + Duration::from_secs(10));
        assert_eq!(l.check(&c, false, t, 1000), Err(Refusal::NoFreePort));
        l.release(r1);
        assert_eq!(l.check(&c, false, t, 1000), Ok(()));
        assert_eq!(l.check(&c, true, t, 1000), Err(Refusal::Suspended));
        let s = Session {
            nas_ip: ip,
            user: "u".into(),
            started: 1000,
            session_secs: 0,
        };
        l.start((ip, "a".into()), s.clone());
        assert_eq!(
            l.ports_in_use(t),
            1,
            "the start took the reservation's port"
        );
        l.reserve(t + Duration::from_secs(1));
        assert_eq!(
            l.ports_in_use(t + Duration::from_secs(2)),
            1,
            "reservation expired"
        );
        l.start((ip, "b".into()), s);
        assert_eq!(l.check(&c, false, t, 1000), Err(Refusal::NoFreePort));
        assert!(l.stop(&(ip, "a".into()), "x", 5).is_some());
        assert_eq!(l.check(&c, false, t, 1000), Ok(()));
    }

    #[test]
    fn time_threshold() {
        let t = Instant::now();
        let mut l = CspLoad::default();
        let c = cap(10, Some(100));
        let unix = 1_709_208_000;
        let p = period_key(Period::Month, unix);
        l.add_closed(&p, 60);
        assert_eq!(l.check(&c, false, t, unix), Ok(()));
        l.add_closed(&p, 40);
        assert_eq!(l.check(&c, false, t, unix), Err(Refusal::TimeThreshold));
        // A new period starts from zero.
        assert_eq!(l.check(&c, false, t, unix + 40 * 86_400), Ok(()));
    }
}
