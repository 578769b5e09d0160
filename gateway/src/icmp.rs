//! The slow path's ICMP errors: what [`ispmux_slowpath::punt::classify`] sorts as an ICMP
//! punt is answered by [`ispmux_slowpath::icmp::answer`] over the master tables, limited
//! per source (`[icmp]`), and handed to the inject ring like any reply.

use std::net::Ipv4Addr;
use std::time::Instant;

use ispmux_conf::icmp::IcmpConfig;
use ispmux_dataplane::{PortConfig, Tables};
use ispmux_slowpath::dhcp::service::Inject;
use ispmux_slowpath::icmp::{answer, Site, SourceLimiter, Trigger};
use ispmux_slowpath::punt::{Ingress, PortArp};
use serde::{Deserialize, Serialize};

/// What became of the frames punted for ICMP.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcmpStats {
    /// Frames punted for an ICMP error (TTL expired, DF too big).
    pub punted: u64,
    /// Errors built and handed on for sending.
    pub sent: u64,
    /// Not sent: the source's rate limit was spent.
    pub limited: u64,
    /// Not sent: nothing to say or no way to say it (RFC 1812's exclusions, no address,
    /// no path, `[icmp] enabled = false`).
    pub refused: u64,
}

/// The ICMP side of the slow path.
pub struct IcmpErrors {
    enabled: bool,
    ports: Vec<PortConfig>,
    limiter: SourceLimiter,
    /// The next IPv4 identification.
    ident: u16,
    /// The node's own addresses (ports', ISP gateways'), for sorting punts, and the ISP
    /// table generation they were read from.
    local: Vec<Ipv4Addr>,
    local_of: Option<u64>,
}

impl IcmpErrors {
    /// The errors of a node with these ports (by configuration index), whose
    /// [`PortConfig::address`] is the address errors are sourced from.
    pub fn new(cfg: &IcmpConfig, ports: Vec<PortConfig>) -> Self {
        Self {
            enabled: cfg.enabled,
            ports,
            limiter: SourceLimiter::new(cfg.rate_per_s, cfg.burst, cfg.max_sources),
            ident: 0,
            local: Vec::new(),
            local_of: None,
        }
    }

    /// Where a frame received on `port` came from, for [`ispmux_slowpath::punt::classify`].
    pub fn ingress<'a>(
        &'a mut self,
        port: Option<u16>,
        tables: Option<&Tables>,
        arp: Option<&'a PortArp>,
    ) -> Ingress<'a> {
        let generation = tables.map(|t| t.isps.generation());
        if self.local_of != generation || self.local.is_empty() {
            self.local.clear();
            self.local
                .extend(self.ports.iter().filter_map(|p| p.address.addr()));
            if let Some(t) = tables {
                let gateways = t.isps.entries().iter().map(|e| e.gateway);
                self.local.extend(gateways.filter(|g| !g.is_unspecified()));
            }
            self.local.sort_unstable();
            self.local.dedup();
            self.local_of = generation;
        }
        Ingress {
            role: port
                .and_then(|p| self.ports.get(usize::from(p)))
                .map(|p| p.role),
            local: &self.local,
            port: arp,
        }
    }

    /// The error answering `frame`, punted on port `rx` for `why`, if one is sent.
    pub fn handle(
        &mut self,
        now: Instant,
        tables: Option<&Tables>,
        rx: u16,
        frame: &[u8],
        why: Trigger,
        st: &mut IcmpStats,
    ) -> Option<Inject> {
        st.punted += 1;
        let Some(tables) = tables.filter(|_| self.enabled) else {
            st.refused += 1;
            return None;
        };
        let site = Site {
            ports: &self.ports,
            tables,
        };
        let a = match answer(&site, rx, frame, why, self.ident) {
            Ok(a) => a,
            Err(e) => {
                st.refused += 1;
                tracing::debug!(port = rx, ?why, error = %e, "no ICMP error");
                return None;
            }
        };
        if !self.limiter.allow(a.to, now) {
            st.limited += 1;
            return None;
        }
        self.ident = self.ident.wrapping_add(1);
        st.sent += 1;
        Some(Inject {
            port: a.port,
            frame: a.frame,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ispmux_dataplane::table::preload::{IspPreload, SubscriberPreload};
    use ispmux_dataplane::table::Limits;
    use ispmux_dataplane::{PortRole, PreloadTables};

    use super::*;

    fn tables() -> Tables {
        PreloadTables {
            limits: Limits {
                max_subscribers: 16,
                max_isps: 2,
                ..Limits::default()
            },
            isps: vec![IspPreload {
                id: 1,
                name: "a".into(),
                gateway: Some(Ipv4Addr::new(198, 18, 1, 1)),
                upstream: None,
                downstream: None,
                handoff: Vec::new(),
            }],
            subscribers: vec![SubscriberPreload {
                port: 0,
                vlan: 0,
                inner_vlan: 0,
                mac: "02:aa:00:00:00:01".parse().expect("mac"),
                isp: 1,
                ipv4: Some(Ipv4Addr::new(198, 18, 1, 10)),
            }],
            ..PreloadTables::default()
        }
        .build()
        .expect("tables")
    }

    /// A UDP probe with TTL 1 from the subscriber, as the headend punts it.
    fn probe() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0xa0, 2, 0xaa, 0, 0, 0, 1, 0x08, 0x00];
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 1, 0, 0, 1, 17, 0, 0, 198, 18, 1, 10, 198, 18, 1, 2,
        ];
        ispmux_dataplane::wire::Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x9c, 0x40, 0x82, 0x9a, 0, 8, 0, 0]);
        f
    }

    fn errors(cfg: IcmpConfig) -> IcmpErrors {
        let port = PortConfig {
            role: PortRole::Access,
            mac: "02:00:00:00:00:a0".parse().expect("mac"),
            mtu: 1500,
            address: ispmux_dataplane::PortAddr::new(Ipv4Addr::new(192, 0, 2, 1), 24),
            implicit_null: None,
        };
        IcmpErrors::new(&cfg, vec![port])
    }

    #[test]
    fn answers_within_the_rate_and_counts_the_rest() {
        let t = tables();
        let mut e = errors(IcmpConfig {
            burst: 2,
            rate_per_s: 1.0,
            ..IcmpConfig::default()
        });
        let mut st = IcmpStats::default();
        let t0 = Instant::now();
        let f = probe();
        for _ in 0..3 {
            let _ = e.handle(t0, Some(&t), 0, &f, Trigger::TtlExpired, &mut st);
        }
        let later = t0 + Duration::from_secs(1);
        let sent = e.handle(later, Some(&t), 0, &f, Trigger::TtlExpired, &mut st);
        assert_eq!(sent.map(|i| i.port), Some(0));
        assert_eq!(
            st,
            IcmpStats {
                punted: 4,
                sent: 3,
                limited: 1,
                refused: 0
            }
        );
        // Without tables (no node pipeline) or switched off: refused, counted.
        assert!(e
            .handle(later, None, 0, &f, Trigger::TtlExpired, &mut st)
            .is_none());
        let mut off = errors(IcmpConfig {
            enabled: false,
            ..IcmpConfig::default()
        });
        assert!(off
            .handle(later, Some(&t), 0, &f, Trigger::TtlExpired, &mut st)
            .is_none());
        assert_eq!(st.refused, 2);
    }

    #[test]
    fn the_nodes_own_addresses_are_local() {
        let t = tables();
        let mut e = errors(IcmpConfig::default());
        let i = e.ingress(Some(0), Some(&t), None);
        assert_eq!(i.role, Some(PortRole::Access));
        assert_eq!(
            i.local,
            [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 18, 1, 1)]
        );
        assert_eq!(e.ingress(Some(9), None, None).role, None);
    }
}
