//! Subscribers held in memory: a [`Directory`] for the DHCP engine without a store, so its
//! tests (and tools that replay captures) need no SQLite. Same rules as the registry for
//! what a subscriber is; nothing is durable.

use std::collections::HashMap;

use super::{password, NewSubscriber, PasswordCost, RegistryError, Status, Subscriber};
use crate::dhcp::{Directory, MacAddr};

/// Subscribers by MAC.
#[derive(Debug, Clone)]
pub struct MemoryDirectory {
    subscribers: HashMap<MacAddr, Subscriber>,
    cost: PasswordCost,
}

impl MemoryDirectory {
    /// An empty directory hashing passwords at `cost`.
    pub fn new(cost: PasswordCost) -> Self {
        MemoryDirectory {
            subscribers: HashMap::new(),
            cost,
        }
    }

    /// Adds a subscriber, hashing its password as the registry does.
    pub fn add(&mut self, s: &NewSubscriber) -> Result<(), RegistryError> {
        if self.subscribers.contains_key(&s.mac) {
            return Err(RegistryError::DuplicateSubscriber(s.mac));
        }
        let password_hash = match &s.password {
            Some(p) => Some(password::hash(p.as_bytes(), self.cost)?),
            None => None,
        };
        self.subscribers.insert(
            s.mac,
            Subscriber {
                mac: s.mac,
                isp: s.isp.clone(),
                customer_id: s.customer_id.clone(),
                password_hash,
                status: s.status,
            },
        );
        Ok(())
    }

    /// Removes a subscriber; `NoSuchSubscriber` when absent.
    pub fn remove(&mut self, mac: MacAddr) -> Result<Subscriber, RegistryError> {
        self.subscribers
            .remove(&mac)
            .ok_or(RegistryError::NoSuchSubscriber(mac))
    }

    /// Sets a subscriber's status; `NoSuchSubscriber` when absent.
    pub fn set_status(&mut self, mac: MacAddr, status: Status) -> Result<(), RegistryError> {
        let s = self
            .subscribers
            .get_mut(&mac)
            .ok_or(RegistryError::NoSuchSubscriber(mac))?;
        s.status = status;
        Ok(())
    }

    /// Subscribers held.
    pub fn len(&self) -> usize {
        self.subscribers.len()
    }

    /// True when nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }
}

impl Directory for MemoryDirectory {
    fn lookup(&self, mac: MacAddr) -> Result<Option<Subscriber>, RegistryError> {
        Ok(self.subscribers.get(&mac).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    fn alice(password: Option<&str>) -> NewSubscriber {
        NewSubscriber {
            mac: A,
            isp: "isp-a".into(),
            customer_id: "C1".into(),
            password: password.map(str::to_owned),
            status: Status::Active,
        }
    }

    #[test]
    fn add_lookup_suspend_remove() {
        let mut d = MemoryDirectory::new(PasswordCost::TEST);
        d.add(&alice(Some("pw"))).expect("add");
        assert!(matches!(
            d.add(&alice(None)),
            Err(RegistryError::DuplicateSubscriber(A))
        ));
        let s = d.lookup(A).expect("lookup").expect("present");
        assert_eq!((s.isp.as_str(), s.status), ("isp-a", Status::Active));
        let phc = s.password_hash.expect("hashed");
        assert!(password::verify(&phc, b"pw") && !password::verify(&phc, b"no"));
        d.set_status(A, Status::Suspended).expect("suspend");
        assert_eq!(
            d.lookup(A).expect("lookup").map(|s| s.status),
            Some(Status::Suspended)
        );
        d.remove(A).expect("remove");
        assert!(d.is_empty() && d.lookup(A).expect("lookup").is_none());
        assert!(d.set_status(A, Status::Active).is_err());
    }
}
