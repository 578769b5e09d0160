//! The logon engine's binding changes as the fast path's table updates.
//!
//! A binding names its ISP (the registry's name); the tables key ISPs by id. An install is
//! two updates, `AddSubscriber` then `Bind`, because a logon may be the subscriber's first
//! appearance in the tables (registered in the store, never preloaded) and `AddSubscriber`
//! of a known subscriber with the same ISP changes nothing. A removal unbinds but keeps the
//! subscriber registered with its ISP: its next DISCOVER is punted as before.

use std::collections::HashMap;

use ispmux_dataplane::table::{IspId, SubscriberKey};
use ispmux_dataplane::TableUpdate;

use crate::dhcp::BindingChange;
use crate::registry::Binding;

/// Why a binding change has no table updates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The binding's ISP is in the registry but has no FEC in the tables.
    #[error("binding of {mac} for ISP {isp:?}, which has no tables")]
    UnknownIsp {
        /// The subscriber.
        mac: ispmux_dataplane::wire::MacAddr,
        /// The ISP's name.
        isp: String,
    },
}

/// Where the binding's subscriber sits in the subscriber table.
pub fn subscriber_key(b: &Binding) -> SubscriberKey {
    SubscriberKey {
        port: b.port,
        outer_vid: b.vlan,
        inner_vid: b.inner_vlan,
        mac: b.mac,
    }
}

/// The table updates for `change`, in the order they must be applied, pushed onto `out`.
pub fn binding_updates(
    change: &BindingChange,
    isp_ids: &HashMap<String, IspId>,
    out: &mut Vec<TableUpdate>,
) -> Result<(), BindingError> {
    match change {
        BindingChange::Install(b) => {
            let Some(&isp) = isp_ids.get(&b.isp) else {
                return Err(BindingError::UnknownIsp {
                    mac: b.mac,
                    isp: b.isp.clone(),
                });
            };
            let key = subscriber_key(b);
            out.push(TableUpdate::AddSubscriber { key, isp });
            out.push(TableUpdate::Bind { key, addr: b.ipv4 });
        }
        BindingChange::Remove(b) => out.push(TableUpdate::Unbind {
            key: subscriber_key(b),
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::SystemTime;

    use super::*;
    use ispmux_dataplane::table::{Limits, Tables};
    use ispmux_dataplane::wire::MacAddr;

    fn binding(isp: &str) -> Binding {
        Binding {
            mac: MacAddr([2, 0, 0, 0, 0, 7]),
            isp: isp.into(),
            ipv4: Ipv4Addr::new(198, 18, 1, 10),
            expires: SystemTime::UNIX_EPOCH,
            server: Ipv4Addr::new(198, 18, 100, 2),
            port: 1,
            vlan: 101,
            inner_vlan: 7,
        }
    }

    fn ids() -> HashMap<String, IspId> {
        HashMap::from([("isp-a".to_owned(), 3)])
    }

    #[test]
    fn install_adds_then_binds_under_the_isps_id() {
        let mut out = Vec::new();
        binding_updates(&BindingChange::Install(binding("isp-a")), &ids(), &mut out)
            .expect("known ISP");
        let key = SubscriberKey {
            port: 1,
            outer_vid: 101,
            inner_vid: 7,
            mac: MacAddr([2, 0, 0, 0, 0, 7]),
        };
        assert_eq!(
            out,
            vec![
                TableUpdate::AddSubscriber { key, isp: 3 },
                TableUpdate::Bind {
                    key,
                    addr: Ipv4Addr::new(198, 18, 1, 10)
                },
            ]
        );
    }

    #[test]
    fn remove_unbinds_whatever_the_isp() {
        let mut out = Vec::new();
        binding_updates(&BindingChange::Remove(binding("gone")), &ids(), &mut out)
            .expect("removal needs no ISP id");
        assert_eq!(
            out,
            vec![TableUpdate::Unbind {
                key: subscriber_key(&binding("gone"))
            }]
        );
    }

    #[test]
    fn install_for_an_isp_without_tables_is_an_error_and_adds_nothing() {
        let mut out = Vec::new();
        let e = binding_updates(&BindingChange::Install(binding("isp-z")), &ids(), &mut out);
        assert!(matches!(e, Err(BindingError::UnknownIsp { .. })), "{e:?}");
        assert!(out.is_empty());
    }

    /// Real tables take an install's updates in the order given (a `Bind` of a subscriber
    /// the tables never saw is refused: the order matters), then the removal's.
    #[test]
    fn tables_accept_install_then_remove() {
        let mut t = Tables::new(Limits {
            max_subscribers: 64,
            max_isps: 4,
            max_labels: 4,
            max_handoffs: 4,
        });
        let mut out = Vec::new();
        binding_updates(&BindingChange::Install(binding("isp-a")), &ids(), &mut out)
            .expect("known ISP");
        assert!(t.apply(&out[1]).is_err(), "bind before add is refused");
        for u in &out {
            t.apply(u).expect("install applies");
        }
        out.clear();
        binding_updates(&BindingChange::Remove(binding("isp-a")), &ids(), &mut out)
            .expect("remove");
        for u in &out {
            t.apply(u).expect("removal applies");
        }
    }
}
