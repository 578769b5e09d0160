//! Figure 5 after a server answered: the next hop or the answer to the NAS, the capacity
//! check between the master's accept and the CSP's server, the session table and usage
//! records that accounting drives.

use super::*;

impl Engine {
    /// Accounting-On/Off: the NAS restarted, so its sessions are over; their time is billed
    /// up to now and their ports freed.
    pub(super) fn nas_reset(&mut self, now: Now, ip: IpAddr) -> Vec<UsageEvent> {
        let mut events = Vec::new();
        for c in &mut self.csps {
            let period = period_key(c.cap.period, now.unix);
            let keys: Vec<_> = c
                .load
                .sessions
                .keys()
                .filter(|(i, _)| *i == ip)
                .cloned()
                .collect();
            for k in keys {
                let Some(s) = c.load.sessions.get(&k) else {
                    continue;
                };
                let secs = now.unix.saturating_sub(s.started).max(s.session_secs);
                c.load.stop(&k, &period, secs);
                events.push(UsageEvent::Stop {
                    csp: c.name.clone(),
                    period: period.clone(),
                    nas: ip.to_string(),
                    session_id: k.1,
                    session_secs: secs,
                    input_octets: 0,
                    output_octets: 0,
                    at: now.unix,
                });
            }
        }
        if !events.is_empty() {
            info!(nas = %ip, sessions = events.len(), "radius: NAS restarted, its sessions closed");
            self.count("event", "nas_reset");
        }
        events
    }

    /// A server answered the current hop of `tid`: what follows (figure 5), and when that
    /// is the answer to the NAS, the time the proxy held the request and the CSP's answer
    /// counted.
    pub(super) fn on_reply(
        &mut self,
        now: Now,
        tid: u64,
        reply: Packet,
        origin: Origin,
        out: &mut Vec<Output>,
    ) {
        let Some(txn) = self.txns.remove(&tid) else {
            return;
        };
        let (received, route) = (txn.received, txn.route);
        let before = out.len();
        self.follow_reply(now, tid, txn, reply, origin, out);
        let Some(code) = out[before..].iter().find_map(|o| match o {
            Output::ToNas { data, .. } => data.first().map(|&c| Code(c)),
            _ => None,
        }) else {
            return;
        };
        if let Some(s) = self.servers.get_mut(origin.server) {
            s.stats
                .added
                .observe(now.mono.saturating_duration_since(received));
        }
        if let Some(c) = match route {
            Route::Csp(i) => self.csps.get_mut(i),
            Route::Master => None,
        } {
            match code {
                Code::ACCESS_ACCEPT => c.stats.accepts += 1,
                Code::ACCESS_REJECT => c.stats.rejects += 1,
                Code::ACCESS_CHALLENGE => c.stats.challenges += 1,
                Code::ACCOUNTING_RESPONSE => c.stats.accounting_responses += 1,
                _ => {}
            }
        }
    }

    /// Boxes 510-550 of figure 5: a server answered the current hop of `txn`, which is out
    /// of the table and put back when it goes on to another hop.
    fn follow_reply(
        &mut self,
        now: Now,
        tid: u64,
        mut txn: Txn,
        reply: Packet,
        origin: Origin,
        out: &mut Vec<Output>,
    ) {
        match (txn.listener, txn.route, txn.hop) {
            (Listener::Auth, Route::Master, _) => {
                let reason = (reply.code == Code::ACCESS_REJECT).then_some("master_reject");
                self.answer(now, &txn, &reply, origin, Vec::new(), reason, out);
            }
            (Listener::Auth, Route::Csp(i), Hop::Master) => {
                if reply.code == Code::ACCESS_REJECT {
                    // Figure 7: the master refuses the virtual subscriber (no contract or no
                    // capacity left at the master); the NAS sees the real identity.
                    return self.answer(
                        now,
                        &txn,
                        &reply,
                        origin,
                        Vec::new(),
                        Some("master_reject"),
                        out,
                    );
                }
                if reply.code != Code::ACCESS_ACCEPT {
                    // A challenge for the virtual subscriber cannot be answered by the NAS.
                    let key = txn.key.clone();
                    return self.reject(
                        now,
                        txn.nas,
                        key,
                        txn.listener,
                        &txn.req,
                        "master_reject",
                        out,
                    );
                }
                let Some(c) = self.csps.get_mut(i) else {
                    return;
                };
                if let Err(r) = c.load.check(&c.cap, c.suspended, now.mono, now.unix) {
                    return self.reject(
                        now,
                        txn.nas,
                        txn.key.clone(),
                        txn.listener,
                        &txn.req,
                        r.reason(),
                        out,
                    );
                }
                txn.reservation = Some(c.load.reserve(now.mono + self.timing.reservation));
                txn.hop = Hop::Csp;
                txn.tried.clear();
                self.txns.insert(tid, txn);
                self.send_hop(now, tid, out);
            }
            (Listener::Auth, Route::Csp(_), Hop::Csp) => {
                if reply.code == Code::ACCESS_ACCEPT {
                    // Figure 9: the reservation holds the port until the Accounting Start.
                    self.answer(now, &txn, &reply, origin, Vec::new(), None, out);
                } else {
                    self.release_reservation(txn.route, txn.reservation.take());
                    let reason = (reply.code == Code::ACCESS_REJECT).then_some("csp_reject");
                    self.answer(now, &txn, &reply, origin, Vec::new(), reason, out);
                }
            }
            (Listener::Acct, Route::Master, _) => {
                let commit = match txn.req.get_u32(attr::ACCT_STATUS_TYPE) {
                    Some(attr::ACCT_ON | attr::ACCT_OFF) => self.nas_reset(now, txn.from.ip()),
                    _ => Vec::new(),
                };
                self.answer(now, &txn, &reply, origin, commit, None, out)
            }
            (Listener::Acct, Route::Csp(_), Hop::Master) => {
                if reply.code != Code::ACCOUNTING_RESPONSE {
                    self.txns.insert(tid, txn);
                    return self.give_up(tid, "unexpected_response_code");
                }
                txn.hop = Hop::Csp;
                txn.tried.clear();
                self.txns.insert(tid, txn);
                self.send_hop(now, tid, out);
            }
            (Listener::Acct, Route::Csp(i), Hop::Csp) => {
                if reply.code != Code::ACCOUNTING_RESPONSE {
                    self.txns.insert(tid, txn);
                    return self.give_up(tid, "unexpected_response_code");
                }
                let commit = self.account(now, i, &txn).into_iter().collect();
                self.answer(now, &txn, &reply, origin, commit, None, out);
            }
        }
    }

    /// Both servers acknowledged a CSP accounting request: the session table and the usage
    /// record follow it.
    pub(super) fn account(&mut self, now: Now, i: usize, txn: &Txn) -> Option<UsageEvent> {
        let c = self.csps.get_mut(i)?;
        let req = &txn.req;
        let status = req.get_u32(attr::ACCT_STATUS_TYPE)?;
        let sid = req.get_string(attr::ACCT_SESSION_ID).unwrap_or_default();
        let nas_ip = txn.from.ip();
        let nas = nas_ip.to_string();
        let key = (nas_ip, sid.clone());
        let period = period_key(c.cap.period, now.unix);
        let user = req.get_string(attr::USER_NAME).unwrap_or_default();
        let secs = u64::from(req.get_u32(attr::ACCT_SESSION_TIME).unwrap_or(0));
        let octets = |lo, hi| {
            u64::from(req.get_u32(hi).unwrap_or(0)) << 32 | u64::from(req.get_u32(lo).unwrap_or(0))
        };
        match status {
            attr::ACCT_START => {
                c.load.start(
                    key,
                    Session {
                        nas_ip,
                        user: user.clone(),
                        started: now.unix,
                        session_secs: 0,
                    },
                );
                Some(UsageEvent::Start {
                    csp: c.name.clone(),
                    period,
                    nas,
                    session_id: sid,
                    user,
                    at: now.unix,
                })
            }
            attr::ACCT_INTERIM => {
                if let Some(s) = c.load.sessions.get_mut(&key) {
                    s.session_secs = secs;
                }
                Some(UsageEvent::Interim {
                    nas,
                    session_id: sid,
                    session_secs: secs,
                })
            }
            attr::ACCT_STOP => {
                c.load.stop(&key, &period, secs);
                Some(UsageEvent::Stop {
                    csp: c.name.clone(),
                    period,
                    nas,
                    session_id: sid,
                    session_secs: secs,
                    input_octets: octets(attr::ACCT_INPUT_OCTETS, attr::ACCT_INPUT_GIGAWORDS),
                    output_octets: octets(attr::ACCT_OUTPUT_OCTETS, attr::ACCT_OUTPUT_GIGAWORDS),
                    at: now.unix,
                })
            }
            _ => None,
        }
    }

    /// Relays a server's answer to the NAS: real identity back in User-Name, the NAS's
    /// Proxy-State returned, Message-Authenticator first, authenticators for the NAS's secret.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn answer(
        &mut self,
        now: Now,
        txn: &Txn,
        reply: &Packet,
        origin: Origin,
        commit: Vec<UsageEvent>,
        reject_reason: Option<&'static str>,
        out: &mut Vec<Output>,
    ) {
        let mut r = Packet::new(reply.code, txn.req.identifier, [0; 16]);
        let user = txn.req.get(attr::USER_NAME);
        for a in &reply.attributes {
            match a.typ {
                attr::PROXY_STATE | attr::MESSAGE_AUTHENTICATOR => {}
                attr::USER_NAME => {
                    if let Some(u) = user {
                        r.push(attr::USER_NAME, u.to_vec());
                    }
                }
                _ => r.attributes.push(a.clone()),
            }
        }
        if salted::has_salted(&r.attributes) {
            self.rehide_salted(&mut r, txn, origin);
        }
        // Figures 7 and 8: the reject carries the subscriber's own identity, as the proxy's
        // own rejects do, whatever the server put in it.
        if reply.code == Code::ACCESS_REJECT && r.get(attr::USER_NAME).is_none() {
            if let Some(u) = user {
                r.push(attr::USER_NAME, u.to_vec());
            }
        }
        match reject_reason {
            Some(reason) => {
                info!(nas = %self.nases[txn.nas].name, user = %String::from_utf8_lossy(user.unwrap_or_default()), reason, "radius: Access-Reject");
                self.count("reject", reason);
            }
            None if reply.code == Code::ACCESS_ACCEPT => self.count("event", "access_accept"),
            None => self.count("event", "answered"),
        }
        self.send_to_nas(
            now,
            txn.nas,
            txn.key.clone(),
            txn.listener,
            &txn.req,
            r,
            commit,
            out,
        );
    }

    /// Tunnel-Password and MPPE keys hidden by the server for the proxy's request, hidden
    /// again for the NAS's secret and Request Authenticator.
    fn rehide_salted(&mut self, r: &mut Packet, txn: &Txn, origin: Origin) {
        let (Some(server), Some(nas)) = (self.servers.get(origin.server), self.nases.get(txn.nas))
        else {
            return;
        };
        let from = salted::Keying {
            secret: &server.secret,
            request_auth: &origin.auth,
        };
        let to = salted::Keying {
            secret: &nas.secret,
            request_auth: &txn.req.authenticator,
        };
        let salt = self.rng.next_u32() as u16;
        let d = salted::rehide(&mut r.attributes, from, to, salt);
        for (n, name) in [
            (d.tunnel_password, "bad_tunnel_password"),
            (d.mppe_key, "bad_mppe_key"),
            (d.vendor_specific, "bad_vendor_specific"),
        ] {
            if n > 0 {
                warn!(from = %txn.from, attribute = name, "radius: hidden attribute of a reply dropped");
                *self.counters.entry(("drop", name)).or_insert(0) += u64::from(n);
            }
        }
    }

    /// The proxy's own Access-Reject (unknown realm, capacity refusals).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reject(
        &mut self,
        now: Now,
        ni: usize,
        key: RequestKey,
        listener: Listener,
        req: &Packet,
        reason: &'static str,
        out: &mut Vec<Output>,
    ) {
        let mut r = Packet::new(Code::ACCESS_REJECT, req.identifier, [0; 16]);
        if let Some(u) = req.get(attr::USER_NAME) {
            r.push(attr::USER_NAME, u.to_vec());
        }
        info!(nas = %self.nases[ni].name, user = %req.get_string(attr::USER_NAME).unwrap_or_default(), reason, "radius: Access-Reject");
        self.count("reject", reason);
        self.send_to_nas(now, ni, key, listener, req, r, Vec::new(), out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_to_nas(
        &mut self,
        now: Now,
        ni: usize,
        key: RequestKey,
        listener: Listener,
        req: &Packet,
        mut r: Packet,
        commit: Vec<UsageEvent>,
        out: &mut Vec<Output>,
    ) {
        if is_access_reply(r.code) {
            crypto::add_message_authenticator(&mut r);
        }
        for ps in req.attributes.iter().filter(|a| a.typ == attr::PROXY_STATE) {
            r.attributes.push(ps.clone());
        }
        let Ok(data) = crypto::encode_response(&r, &self.nases[ni].secret, &req.authenticator)
        else {
            self.dedup.forget(&key);
            return self.drop_with("encode_error", key.from);
        };
        let to = key.from;
        self.dedup.answered(now.mono, key, &data, &commit);
        out.push(Output::ToNas {
            listener,
            to,
            data,
            commit,
        });
    }
}
