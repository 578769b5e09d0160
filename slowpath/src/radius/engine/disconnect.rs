//! Disconnect-Requests (RFC 5176) to the NASes of a suspended CSP's sessions.

use super::*;

impl Engine {
    /// RFC 5176: a suspended CSP's sessions are disconnected at their NAS.
    pub(super) fn on_suspend(
        &mut self,
        now: Now,
        csp: &str,
        suspended: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(c) = self.csps.iter_mut().find(|c| c.name == csp) else {
            return;
        };
        c.suspended = suspended;
        info!(csp, suspended, "radius: client SP suspension changed");
        if !suspended {
            return;
        }
        let sessions: Vec<(IpAddr, String, String)> = c
            .load
            .sessions
            .iter()
            .map(|((ip, sid), s)| (*ip, sid.clone(), s.user.clone()))
            .collect();
        for (ip, sid, user) in sessions {
            let Some(ni) = self.nases.iter().position(|n| in_prefix(ip, n.net, n.len)) else {
                continue;
            };
            let peer = SocketAddr::new(ip, self.nases[ni].coa_port);
            let Some((slot, id)) = self.ids.allocate(peer) else {
                continue;
            };
            let mut p = Packet::new(Code::DISCONNECT_REQUEST, id, [0; 16]);
            p.push(attr::USER_NAME, user.into_bytes());
            p.push(attr::ACCT_SESSION_ID, sid.into_bytes());
            if let IpAddr::V4(v4) = ip {
                p.push(attr::NAS_IP_ADDRESS, v4.octets().to_vec());
            }
            crypto::add_message_authenticator(&mut p);
            let Ok(bytes) = crypto::encode_request(&p, &self.nases[ni].secret) else {
                self.ids.release(peer, slot, id);
                continue;
            };
            let mut auth = [0u8; 16];
            if let Some(a) = bytes.get(4..20) {
                auth.copy_from_slice(a);
            }
            self.next_txn += 1;
            let d = self.next_txn;
            let deadline = now.mono + self.timing.disconnect;
            out.push(Output::ToPeer {
                slot,
                to: peer,
                data: bytes.clone(),
            });
            self.waiting.insert((peer, slot, id), Waiter::Disconnect(d));
            self.timers
                .push(Reverse((deadline, TimerOf::Disconnect(d))));
            self.disconnects.insert(
                d,
                Disconnect {
                    nas: ni,
                    key: (peer, slot, id),
                    auth,
                    bytes,
                    tries: 0,
                    deadline,
                },
            );
            self.count("event", "disconnect_sent");
        }
    }

    pub(super) fn disconnect_timeout(
        &mut self,
        now: Now,
        d: u64,
        t: Instant,
        out: &mut Vec<Output>,
    ) {
        let retries = self.timing.retries;
        let Some(dc) = self.disconnects.get_mut(&d) else {
            return;
        };
        if dc.deadline != t {
            return;
        }
        if dc.tries < retries {
            dc.tries += 1;
            dc.deadline = now.mono + self.timing.disconnect;
            out.push(Output::ToPeer {
                slot: dc.key.1,
                to: dc.key.0,
                data: dc.bytes.clone(),
            });
            self.timers
                .push(Reverse((dc.deadline, TimerOf::Disconnect(d))));
            return;
        }
        let k = dc.key;
        self.disconnects.remove(&d);
        self.waiting.remove(&k);
        self.ids.release(k.0, k.1, k.2);
        self.count("drop", "disconnect_unanswered");
    }
}
