//! One LDP session (RFC 5036 §2.5): Initialization parameter negotiation (§2.5.3, §3.5.3)
//! and the session state machine of §2.5.4, over messages already decoded. What to send
//! and whether to close come back to the engine, which owns sockets' stand-ins and time.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::framer::Framer;
use super::wire::{
    Body, Initialization, LdpId, Message, Notification, Status, StatusCode, DEFAULT_MAX_PDU_LEN,
    VERSION,
};

/// The states of RFC 5036 §2.5.4. A session that does not exist has no entry; an entry in
/// `NonExistent` is an active LSR's TCP connection being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    NonExistent,
    Initialized,
    OpenRec,
    OpenSent,
    Operational,
}

impl std::fmt::Display for State {
    /// The names of RFC 5036 §2.5.4, as operators know them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::NonExistent => "NON EXISTENT",
            State::Initialized => "INITIALIZED",
            State::OpenRec => "OPENREC",
            State::OpenSent => "OPENSENT",
            State::Operational => "OPERATIONAL",
        })
    }
}

/// Which side opens the TCP connection and sends the first Initialization: the LSR with the
/// higher transport address is active (RFC 5036 §2.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Active,
    Passive,
}

impl Role {
    pub fn of(ours: Ipv4Addr, theirs: Ipv4Addr) -> Role {
        if ours > theirs {
            Role::Active
        } else {
            Role::Passive
        }
    }
}

/// What this LSR proposes in its Initialization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    pub ldp_id: LdpId,
    /// KeepAlive Time, seconds.
    pub keepalive_time: u16,
    pub max_pdu_len: u16,
}

/// The session parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub keepalive: Duration,
    pub max_pdu_len: u16,
}

/// Checks a received Initialization from `from` against what we run (RFC 5036 §2.5.3,
/// §3.5.3); the error is the status of the fatal Notification that rejects it.
pub fn negotiate(
    local: &Local,
    from: LdpId,
    expected: LdpId,
    init: &Initialization,
) -> Result<Negotiated, StatusCode> {
    // The passive LSR finds the Hello adjacency by the sender's LDP Identifier, and both
    // check that the Initialization is meant for their own: otherwise there was no Hello.
    if from != expected || init.receiver != local.ldp_id {
        return Err(StatusCode::SessionRejectedNoHello);
    }
    if init.version != VERSION {
        return Err(StatusCode::BadProtocolVersion);
    }
    if init.keepalive_time == 0 {
        return Err(StatusCode::SessionRejectedBadKeepAliveTime);
    }
    // 255 or less stands for the default; the session uses the smaller maximum. The A bit
    // needs no check: on a link that is not ATM or Frame Relay a disagreement resolves to
    // downstream unsolicited, which is what this LSR runs.
    let theirs = if init.max_pdu_len <= 255 {
        DEFAULT_MAX_PDU_LEN
    } else {
        init.max_pdu_len
    };
    Ok(Negotiated {
        keepalive: Duration::from_secs(init.keepalive_time.min(local.keepalive_time).into()),
        max_pdu_len: theirs.min(local.max_pdu_len),
    })
}

/// Our Initialization to `peer`.
pub fn init_body(local: &Local, peer: LdpId) -> Body {
    Body::Initialization(Initialization {
        version: VERSION,
        keepalive_time: local.keepalive_time,
        downstream_on_demand: false,
        loop_detection: false,
        pv_limit: 0,
        max_pdu_len: local.max_pdu_len,
        receiver: peer,
    })
}

/// How long the Initialization exchange may take before the attempt is given up.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A session with one peer.
#[derive(Debug)]
pub struct Session {
    pub peer: LdpId,
    pub role: Role,
    pub state: State,
    pub framer: Framer,
    /// Negotiated parameters, once Initializations have been exchanged.
    pub negotiated: Option<Negotiated>,
    /// When the peer is given up: the Initialization timeout, then the KeepAlive timer
    /// (reset by every PDU received).
    pub expires: Instant,
    /// When our next KeepAlive is due (OPENREC and OPERATIONAL).
    pub keepalive_due: Option<Instant>,
    /// When the session became OPERATIONAL.
    pub up_since: Option<Instant>,
    /// The peer's interface addresses from its Address messages: what maps a route's next
    /// hop to this session.
    pub addresses: BTreeSet<Ipv4Addr>,
}

/// What a message did to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these messages (in order), stay open.
    Send(Vec<Body>),
    /// Send these messages, and the session just became OPERATIONAL.
    Up(Vec<Body>),
    /// A label message for the label procedures (the session is OPERATIONAL).
    Label(Message),
    /// The peer's addresses changed (the session is OPERATIONAL).
    Addresses,
    /// Close the session, after sending a fatal Notification with this status if any.
    Close(Option<Status>),
}

impl Session {
    pub fn new(now: Instant, peer: LdpId, role: Role, state: State) -> Session {
        Session {
            peer,
            role,
            state,
            framer: Framer::default(),
            negotiated: None,
            expires: now + INIT_TIMEOUT,
            keepalive_due: None,
            up_since: None,
            addresses: BTreeSet::new(),
        }
    }

    /// The largest PDU Length accepted and sent: negotiated, else the default.
    pub fn framer_max(&self) -> u16 {
        self.negotiated
            .map_or(DEFAULT_MAX_PDU_LEN, |n| n.max_pdu_len)
    }

    /// The TCP connection of the active side is up: it sends its Initialization.
    pub fn connected(&mut self, now: Instant, local: &Local) -> Vec<Body> {
        self.state = State::OpenSent;
        self.expires = now + INIT_TIMEOUT;
        vec![init_body(local, self.peer)]
    }

    fn agree(&mut self, now: Instant, n: Negotiated) {
        self.negotiated = Some(n);
        self.framer.set_max_pdu_len(n.max_pdu_len);
        self.expires = now + n.keepalive;
        self.keepalive_due = Some(now + n.keepalive / 3);
    }

    /// Any PDU from the peer restarts its KeepAlive timer once parameters are agreed.
    pub fn heard(&mut self, now: Instant) {
        if let Some(n) = self.negotiated {
            self.expires = now + n.keepalive;
        }
    }

    /// One message of a PDU from `from`, by the state machine of RFC 5036 §2.5.4.
    pub fn receive(&mut self, now: Instant, local: &Local, from: LdpId, m: Message) -> Step {
        let fatal = |code: StatusCode| Step::Close(Some(code.status(m.id, m.body.msg_type())));
        if let Body::Notification(n) = &m.body {
            // A fatal Notification ends the session in any state; others are only noted.
            return if n.status.fatal {
                Step::Close(None)
            } else {
                Step::Send(Vec::new())
            };
        }
        match (self.state, &m.body) {
            (State::Initialized, Body::Initialization(init)) => {
                match negotiate(local, from, self.peer, init) {
                    Ok(n) => {
                        self.agree(now, n);
                        self.state = State::OpenRec;
                        Step::Send(vec![init_body(local, self.peer), Body::KeepAlive])
                    }
                    Err(code) => fatal(code),
                }
            }
            (State::OpenSent, Body::Initialization(init)) => {
                match negotiate(local, from, self.peer, init) {
                    Ok(n) => {
                        self.agree(now, n);
                        self.state = State::OpenRec;
                        Step::Send(vec![Body::KeepAlive])
                    }
                    Err(code) => fatal(code),
                }
            }
            (State::OpenRec, Body::KeepAlive) => {
                self.state = State::Operational;
                self.up_since = Some(now);
                Step::Up(Vec::new())
            }
            (State::Operational, Body::KeepAlive) => Step::Send(Vec::new()),
            (State::Operational, Body::Address(a)) => {
                self.addresses.extend(a.iter().copied());
                Step::Addresses
            }
            (State::Operational, Body::AddressWithdraw(a)) => {
                for x in a {
                    self.addresses.remove(x);
                }
                Step::Addresses
            }
            (
                State::Operational,
                Body::LabelMapping(_)
                | Body::LabelRequest(_)
                | Body::LabelWithdraw(_)
                | Body::LabelRelease(_)
                | Body::LabelAbortRequest(_),
            ) => Step::Label(m),
            // Any other message in any state (a second Initialization, a Hello on the
            // session, an Address before OPERATIONAL, ...): a fatal Notification and close,
            // as §2.5.4 says for every state it lists; Shutdown is the status ldpd and
            // others use for it.
            _ => fatal(StatusCode::Shutdown),
        }
    }

    /// A KeepAlive to send, when due; advances the schedule.
    pub fn keepalive_tick(&mut self, now: Instant) -> bool {
        match (self.keepalive_due, self.negotiated) {
            (Some(due), Some(n)) if due <= now => {
                self.keepalive_due = Some(now + n.keepalive / 3);
                true
            }
            _ => false,
        }
    }

    /// The earliest instant this session needs the engine's attention.
    pub fn next_timeout(&self) -> Instant {
        self.keepalive_due
            .map_or(self.expires, |k| k.min(self.expires))
    }

    /// The status of the Notification sent when the peer has been silent too long: the
    /// KeepAlive timer once parameters are agreed; before that the attempt is dropped.
    pub fn expiry_status(&self) -> Option<Status> {
        self.negotiated
            .map(|_| StatusCode::KeepAliveTimerExpired.status(0, 0))
    }
}

/// A fatal Notification message body.
pub fn notification(status: Status) -> Body {
    Body::Notification(Notification::new(status))
}
