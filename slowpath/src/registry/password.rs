//! Subscriber passwords, stored as Argon2id hashes in PHC string form (salt and parameters
//! inside the string), so the cost can be raised later without invalidating old hashes.
//!
//! Argon2id over salted SHA-256: a leaked registry must not give up the passwords ISPs
//! issued, and a memory-hard hash is the current answer (RFC 9106). Verification costs
//! milliseconds; the engine verifies only logons that carry a credential, behind the
//! per-subscriber rate limit.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Argon2id cost for new hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
}

impl PasswordCost {
    /// The Argon2 crate's default (19 MiB, 2 passes: the OWASP minimum for Argon2id).
    pub const DEFAULT: PasswordCost = PasswordCost {
        m_kib: Params::DEFAULT_M_COST,
        t: Params::DEFAULT_T_COST,
    };
    /// Cheap enough for unit tests in debug builds; never for production.
    pub const TEST: PasswordCost = PasswordCost { m_kib: 64, t: 1 };
}

/// Hashing failed (bad parameters; the OS random source failing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing: {0}")]
pub struct HashError(pub String);

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &[u8], cost: PasswordCost) -> Result<String, HashError> {
    let params = Params::new(cost.m_kib, cost.t, 1, None).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// True when `password` matches the stored PHC string; a malformed string never matches.
pub fn verify(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password, &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salted_hash_verifies_only_the_right_password() {
        let a = hash(b"s3cret", PasswordCost::TEST).expect("hash");
        let b = hash(b"s3cret", PasswordCost::TEST).expect("hash");
        assert_ne!(a, b, "salt differs per hash");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify(&a, b"s3cret"));
        assert!(!verify(&a, b"s3cret "));
        assert!(!verify("not a hash", b"s3cret"));
    }
}
