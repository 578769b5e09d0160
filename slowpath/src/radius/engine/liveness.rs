//! Retransmission, failover to the next server of the pool, and Status-Server probes of
//! dead servers until they answer (RFC 5997).

use super::*;

impl Engine {
    pub(super) fn on_timer(&mut self, now: Now, out: &mut Vec<Output>) {
        // Expired duplicate-cache answers are retired here too, so that their memory is
        // returned when requests stop coming.
        self.dedup.tick(now.mono);
        while let Some(&Reverse((t, of))) = self.timers.peek() {
            if t > now.mono {
                break;
            }
            self.timers.pop();
            match of {
                TimerOf::Txn(tid) => self.txn_timeout(now, tid, t, out),
                TimerOf::Disconnect(d) => self.disconnect_timeout(now, d, t, out),
            }
        }
        let due: Vec<usize> = (0..self.servers.len())
            .filter(|&i| !self.servers[i].alive && self.servers[i].next_probe <= now.mono)
            .collect();
        for si in due {
            self.probe(now, si, out);
        }
    }

    pub(super) fn txn_timeout(&mut self, now: Now, tid: u64, t: Instant, out: &mut Vec<Output>) {
        let retries = self.timing.retries;
        let Some(o) = self.txns.get_mut(&tid).and_then(|x| x.out.as_mut()) else {
            return;
        };
        if o.deadline != t {
            return;
        }
        if o.tries < retries {
            o.tries += 1;
            o.deadline = now.mono + self.timing.response;
            out.push(Output::ToPeer {
                slot: o.key.1,
                to: o.key.0,
                data: o.bytes.clone(),
            });
            self.timers.push(Reverse((o.deadline, TimerOf::Txn(tid))));
            if let Some(s) = self.servers.get_mut(o.server) {
                s.stats.retransmits += 1;
            }
            self.count("event", "retransmit");
            return;
        }
        let Some(o) = self.txns.get_mut(&tid).and_then(|x| x.out.take()) else {
            return;
        };
        self.waiting.remove(&o.key);
        self.ids.release(o.key.0, o.key.1, o.key.2);
        if let Some(s) = self.servers.get_mut(o.server) {
            s.stats.timeouts += 1;
        }
        self.mark_dead(now, o.server);
        self.count("event", "failover");
        self.send_hop(now, tid, out);
    }

    pub(super) fn mark_dead(&mut self, now: Now, si: usize) {
        if let Some(s) = self.servers.get_mut(si) {
            if s.alive {
                s.alive = false;
                s.next_probe = now.mono + self.timing.probe;
                warn!(server = %s.auth, "radius: home server dead, failing over");
                self.count("event", "server_dead");
            }
        }
    }

    /// RFC 5997: a dead server is probed with Status-Server until it answers.
    pub(super) fn probe(&mut self, now: Now, si: usize, out: &mut Vec<Output>) {
        let Some(s) = self.servers.get_mut(si) else {
            return;
        };
        s.next_probe = now.mono + self.timing.probe;
        if let Some((k, _)) = s.probe.take() {
            self.waiting.remove(&k);
            self.ids.release(k.0, k.1, k.2);
        }
        let peer = self.servers[si].auth;
        let Some((slot, id)) = self.ids.allocate(peer) else {
            return;
        };
        let mut auth = [0u8; 16];
        self.rng.fill_bytes(&mut auth);
        let mut p = Packet::new(Code::STATUS_SERVER, id, auth);
        crypto::add_message_authenticator(&mut p);
        let Ok(data) = crypto::encode_request(&p, &self.servers[si].secret) else {
            self.ids.release(peer, slot, id);
            return;
        };
        self.servers[si].probe = Some(((peer, slot, id), auth));
        self.waiting.insert((peer, slot, id), Waiter::Probe(si));
        self.count("event", "status_server_probe");
        out.push(Output::ToPeer {
            slot,
            to: peer,
            data,
        });
    }
}
