//! Toward the home servers: each hop of a request sent to the first live server of its
//! pool, answers authenticated and matched back to their request.

use super::*;

impl Engine {
    /// Sends the current hop of `tid` to the first live server of its pool not yet tried.
    pub(super) fn send_hop(&mut self, now: Now, tid: u64, out: &mut Vec<Output>) {
        let Some(txn) = self.txns.get(&tid) else {
            return;
        };
        let pool = match (txn.route, txn.hop) {
            (Route::Csp(i), Hop::Csp) => self.csps.get(i).map(|c| c.pool.as_slice()),
            _ => Some(self.master_pool.as_slice()),
        }
        .unwrap_or(&[]);
        let untried = || pool.iter().copied().filter(|s| !txn.tried.contains(s));
        // A live server first; with none left, a dead one rather than nothing: it may be
        // back before its next probe, and an answer revives it.
        let live = untried().find(|s| self.servers.get(*s).is_some_and(|s| s.alive));
        let Some(si) = live.or_else(|| untried().next()) else {
            return self.give_up(tid, "no_live_home_server");
        };
        let acct = txn.listener == Listener::Acct;
        if live.is_none() {
            self.count("event", "tried_dead_server");
        }
        let srv = &self.servers[si];
        let peer = if acct { srv.acct } else { srv.auth };
        let Some((slot, id)) = self.ids.allocate(peer) else {
            return self.give_up(tid, "identifiers_exhausted");
        };
        let mut auth = [0u8; 16];
        if !acct {
            self.rng.fill_bytes(&mut auth);
        }
        let p = match self.hop_packet(tid, si, id, auth) {
            Some(p) => p,
            None => {
                self.ids.release(peer, slot, id);
                return self.give_up(tid, "encode_error");
            }
        };
        let bytes = match crypto::encode_request(&p, &self.servers[si].secret) {
            Ok(b) => b,
            Err(_) => {
                self.ids.release(peer, slot, id);
                return self.give_up(tid, "encode_error");
            }
        };
        if acct {
            if let Some(a) = bytes.get(4..20).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                auth = a;
            }
        }
        let deadline = now.mono + self.timing.response;
        out.push(Output::ToPeer {
            slot,
            to: peer,
            data: bytes.clone(),
        });
        self.servers[si].stats.requests += 1;
        let key = (peer, slot, id);
        self.waiting.insert(key, Waiter::Txn(tid));
        self.timers.push(Reverse((deadline, TimerOf::Txn(tid))));
        if let Some(txn) = self.txns.get_mut(&tid) {
            txn.tried.push(si);
            txn.out = Some(Outstanding {
                key,
                server: si,
                auth,
                bytes,
                tries: 0,
                deadline,
                sent: now.mono,
            });
        }
    }

    /// The request of the current hop toward server `si` (box 530 of figure 5 for the
    /// virtual-subscriber copy).
    pub(super) fn hop_packet(&self, tid: u64, si: usize, id: u8, auth: [u8; 16]) -> Option<Packet> {
        let txn = self.txns.get(&tid)?;
        let secret = &self.servers.get(si)?.secret;
        let access = txn.listener == Listener::Auth;
        let mut p = txn.req.clone();
        p.identifier = id;
        p.authenticator = auth;
        p.remove(attr::MESSAGE_AUTHENTICATOR);
        let mut password = txn.password.clone();
        match (txn.route, txn.hop) {
            (Route::Csp(i), Hop::Master) => {
                let c = self.csps.get(i)?;
                p.set(attr::USER_NAME, c.virtual_user.clone());
                if access {
                    // The virtual subscriber logs on with PAP; the subscriber's own
                    // credentials and conversation (CHAP, EAP and its State) are for the CSP.
                    password = Some(c.virtual_password.clone());
                    for t in [
                        attr::CHAP_PASSWORD,
                        attr::CHAP_CHALLENGE,
                        attr::EAP_MESSAGE,
                        attr::STATE,
                    ] {
                        p.remove(t);
                    }
                }
            }
            (Route::Csp(i), Hop::Csp) => {
                let c = self.csps.get(i)?;
                if c.strip_realm {
                    if let Some(name) = txn.req.get_string(attr::USER_NAME) {
                        let user = realm::split(&name).user.to_owned();
                        p.set(attr::USER_NAME, user.into_bytes());
                    }
                }
            }
            (Route::Master, _) => {}
        }
        if access {
            if let Some(pw) = password {
                let hidden = crypto::hide_password(&pw, secret, &auth).ok()?;
                p.set(attr::USER_PASSWORD, hidden);
            }
            // Without CHAP-Challenge the NAS's Request Authenticator was the challenge; it
            // changes on this hop, so it must travel as an attribute.
            if p.get(attr::CHAP_PASSWORD).is_some() && p.get(attr::CHAP_CHALLENGE).is_none() {
                p.push(attr::CHAP_CHALLENGE, txn.req.authenticator.to_vec());
            }
            crypto::add_message_authenticator(&mut p);
        }
        Some(p)
    }

    /// Abandons a request (no server can answer); the NAS's retransmission starts afresh.
    pub(super) fn give_up(&mut self, tid: u64, reason: &'static str) {
        if let Some(txn) = self.txns.remove(&tid) {
            if let Some(o) = txn.out {
                self.waiting.remove(&o.key);
                self.ids.release(o.key.0, o.key.1, o.key.2);
            }
            self.release_reservation(txn.route, txn.reservation);
            self.dedup.forget(&txn.key);
            warn!(from = %txn.from, reason, "radius: request abandoned");
            self.count("drop", reason);
        }
    }

    pub(super) fn release_reservation(&mut self, route: Route, token: Option<u64>) {
        if let (Route::Csp(i), Some(t)) = (route, token) {
            if let Some(c) = self.csps.get_mut(i) {
                c.load.release(t);
            }
        }
    }

    pub(super) fn on_peer(
        &mut self,
        now: Now,
        slot: u16,
        from: SocketAddr,
        data: &[u8],
        out: &mut Vec<Output>,
    ) {
        let raw = match packet::frame(data) {
            Ok(r) => r,
            Err(_) => return self.drop_with("malformed_response", from),
        };
        let key = (from, slot, raw.get(1).copied().unwrap_or(0));
        let Some(&w) = self.waiting.get(&key) else {
            return self.drop_with("unexpected_response", from);
        };
        let code = Code(raw.first().copied().unwrap_or(0));
        let (secret, auth, require_ma) = match w {
            Waiter::Txn(tid) => {
                let Some(t) = self.txns.get(&tid) else {
                    return self.drop_with("unexpected_response", from);
                };
                let Some(o) = t.out.as_ref() else {
                    return self.drop_with("unexpected_response", from);
                };
                let fits = match t.listener {
                    Listener::Auth => is_access_reply(code),
                    Listener::Acct => code == Code::ACCOUNTING_RESPONSE,
                };
                if !fits {
                    return self.drop_with("unexpected_response_code", from);
                }
                let s = &self.servers[o.server];
                (&s.secret, o.auth, s.require_ma)
            }
            Waiter::Probe(si) => {
                let s = &self.servers[si];
                let Some((_, a)) = s.probe else {
                    return self.drop_with("unexpected_response", from);
                };
                (&s.secret, a, s.require_ma)
            }
            Waiter::Disconnect(d) => {
                let Some(dc) = self.disconnects.get(&d) else {
                    return self.drop_with("unexpected_response", from);
                };
                (&self.nases[dc.nas].secret, dc.auth, false)
            }
        };
        if !crypto::check_response_authenticator(raw, secret, &auth) {
            // A forged answer, or a server with another secret: keep waiting for the real one.
            return self.drop_with("bad_response_authenticator", from);
        }
        match crypto::check_message_authenticator(raw, secret, Some(&auth)) {
            MessageAuth::Invalid => return self.drop_with("bad_message_authenticator", from),
            MessageAuth::Absent if require_ma && is_access_reply(code) => {
                return self.drop_with("missing_message_authenticator", from)
            }
            _ => {}
        }
        let Ok(reply) = Packet::parse(raw) else {
            return self.drop_with("malformed_response", from);
        };
        self.waiting.remove(&key);
        self.ids.release(key.0, key.1, key.2);
        match w {
            Waiter::Txn(tid) => {
                let Some(o) = self.txns.get_mut(&tid).and_then(|t| t.out.take()) else {
                    return;
                };
                if let Some(s) = self.servers.get_mut(o.server) {
                    s.stats.answers += 1;
                    s.stats
                        .response
                        .observe(now.mono.saturating_duration_since(o.sent));
                }
                self.revive(o.server);
                let origin = Origin {
                    server: o.server,
                    auth: o.auth,
                };
                self.on_reply(now, tid, reply, origin, out);
            }
            Waiter::Probe(si) => {
                if let Some(s) = self.servers.get_mut(si) {
                    s.probe = None;
                }
                self.revive(si);
            }
            Waiter::Disconnect(d) => {
                self.disconnects.remove(&d);
                if reply.code == Code::DISCONNECT_ACK {
                    self.count("event", "disconnect_ack");
                } else {
                    self.count("event", "disconnect_nak");
                }
            }
        }
    }

    pub(super) fn revive(&mut self, si: usize) {
        if let Some(s) = self.servers.get_mut(si) {
            if !s.alive {
                s.alive = true;
                info!(server = %s.auth, "radius: home server alive again");
                self.count("event", "server_revived");
            }
        }
    }
}
