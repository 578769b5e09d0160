//! Remembers credentials that verified, so a subscriber's next message with the same
//! credential (the REQUEST after its DISCOVER, retransmissions, renewals, the next logon)
//! skips the Argon2 verification.
//!
//! Why: Argon2id is memory-hard on purpose (19 MiB, tens of milliseconds in a release
//! build, most of a second in a debug one), and it runs on the slow-path thread, so every
//! credentialed message held up every other logon behind it. A client retransmitting while
//! it waited queued yet more verifications; under load the REQUEST's answer then came after
//! busybox udhcpc had given up (three REQUESTs, one second apart, with `-n`).
//!
//! What is kept per MAC is a keyed BLAKE2b digest over the stored PHC string and the
//! presented password, never the password: the key is random per process, so the digests
//! are worthless outside it. A hit needs the same stored hash (a new password, even the same
//! one again, has a new salt and so a new PHC string: the entry no longer matches) and the
//! same presented password. Status and customer id are checked against the registry row on
//! every message, as before; [`CredentialCache::forget`] drops an entry when the subscriber
//! is removed or suspended. Only successes are cached: a wrong password always pays the full
//! verification.

use std::collections::HashMap;

use blake2::digest::{Digest, Update};
use blake2::Blake2b512;
use rand::RngCore;

use super::MacAddr;
use crate::registry::password;

/// Entries kept at most; beyond, an arbitrary one makes room (a miss costs one verification).
pub const DEFAULT_CAPACITY: usize = 262_144;

/// Verified credentials by subscriber MAC.
pub struct CredentialCache {
    key: [u8; 32],
    entries: HashMap<MacAddr, [u8; 64]>,
    capacity: usize,
    hits: u64,
    verifications: u64,
}

impl CredentialCache {
    /// An empty cache holding at most `capacity` entries, with a fresh random key.
    pub fn new(capacity: usize) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CredentialCache {
            key,
            entries: HashMap::new(),
            capacity,
            hits: 0,
            verifications: 0,
        }
    }

    fn digest(&self, phc: &str, presented: &[u8]) -> [u8; 64] {
        let mut h = Blake2b512::new();
        Update::update(&mut h, &self.key);
        // Length-prefixed, so no (hash, password) pair can be shifted into another.
        Update::update(&mut h, &(phc.len() as u64).to_be_bytes());
        Update::update(&mut h, phc.as_bytes());
        Update::update(&mut h, presented);
        let mut out = [0u8; 64];
        out.copy_from_slice(&h.finalize());
        out
    }

    /// True when this exact (stored hash, presented password) pair verified before for
    /// `mac`: no Argon2 needed.
    pub fn hit(&mut self, mac: MacAddr, phc: &str, presented: &[u8]) -> bool {
        let d = self.digest(phc, presented);
        let hit = self.entries.get(&mac).is_some_and(|e| same(e, &d));
        if hit {
            self.hits += 1;
        }
        hit
    }

    /// Remembers a pair that verified (by Argon2, elsewhere).
    pub fn remember(&mut self, mac: MacAddr, phc: &str, presented: &[u8]) {
        let d = self.digest(phc, presented);
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&mac) {
            if let Some(k) = self.entries.keys().next().copied() {
                self.entries.remove(&k);
            }
        }
        if self.capacity > 0 {
            self.entries.insert(mac, d);
        }
    }

    /// True when `presented` matches the stored hash `phc` of `mac`'s password: from the
    /// cache when this exact pair verified before, else by Argon2 here (and remembered if
    /// so). The engine does the two halves apart, verifying off its thread.
    pub fn verify(&mut self, mac: MacAddr, phc: &str, presented: &[u8]) -> bool {
        if self.hit(mac, phc, presented) {
            return true;
        }
        self.verifications += 1;
        if !password::verify(phc, presented) {
            return false;
        }
        self.remember(mac, phc, presented);
        true
    }

    /// Drops what is remembered for `mac` (subscriber removed or suspended).
    pub fn forget(&mut self, mac: MacAddr) {
        self.entries.remove(&mac);
    }

    /// Verifications answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// Full Argon2 verifications made.
    pub fn verifications(&self) -> u64 {
        self.verifications
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Compares without an early exit, so the time taken says nothing about where they differ.
fn same(a: &[u8; 64], b: &[u8; 64]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::PasswordCost;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn a_verified_credential_is_answered_from_the_cache() {
        let phc = password::hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let mut c = CredentialCache::new(16);
        assert!(c.verify(A, &phc, b"s3cret"));
        assert!(c.verify(A, &phc, b"s3cret"));
        assert_eq!((c.verifications(), c.hits()), (1, 1));
        // Another subscriber with the same stored hash is not a hit for A's entry.
        assert!(c.verify(B, &phc, b"s3cret"));
        assert_eq!(c.verifications(), 2);
    }

    #[test]
    fn wrong_passwords_are_verified_every_time_and_never_cached() {
        let phc = password::hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let mut c = CredentialCache::new(16);
        assert!(c.verify(A, &phc, b"s3cret"));
        assert!(!c.verify(A, &phc, b"guess"));
        assert!(!c.verify(A, &phc, b"guess"));
        assert_eq!((c.verifications(), c.hits()), (3, 0));
        assert!(c.verify(A, &phc, b"s3cret"), "the good entry survives");
        assert_eq!(c.hits(), 1);
    }

    #[test]
    fn a_new_password_or_forget_invalidates() {
        let old = password::hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let new = password::hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let mut c = CredentialCache::new(16);
        assert!(c.verify(A, &old, b"s3cret"));
        // The ISP set the password again: a new salt, so the entry no longer matches.
        assert!(c.verify(A, &new, b"s3cret"));
        assert_eq!((c.verifications(), c.hits()), (2, 0));
        let changed = password::hash(b"other", PasswordCost::TEST).expect("hash");
        assert!(
            !c.verify(A, &changed, b"s3cret"),
            "the old password is refused"
        );
        c.forget(A);
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_kept() {
        let phc = password::hash(b"pw", PasswordCost::TEST).expect("hash");
        let mut c = CredentialCache::new(2);
        for n in 1..=5 {
            assert!(c.verify(MacAddr([2, 0, 0, 0, 0, n]), &phc, b"pw"));
        }
        assert_eq!(c.len(), 2);
        let mut none = CredentialCache::new(0);
        assert!(none.verify(A, &phc, b"pw") && none.verify(A, &phc, b"pw"));
        assert_eq!(none.hits(), 0);
    }
}
