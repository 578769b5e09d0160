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

/// Why a PHC string sent already hashed is not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakHash(pub String);

/// Checks that `phc` is an Argon2id (version 0x13) PHC string with a salt, a hash and at
/// least the cost `min`: what an ISP may send instead of a clear password, stored as it is.
/// A weaker hash would let a leaked registry give up that subscriber's password sooner than
/// the others'.
pub fn check_phc(phc: &str, min: PasswordCost) -> Result<(), WeakHash> {
    let weak = |m: String| Err(WeakHash(m));
    let h = PasswordHash::new(phc).map_err(|e| WeakHash(format!("not a PHC string: {e}")))?;
    if h.algorithm != argon2::ARGON2ID_IDENT {
        return weak(format!("algorithm {} is not argon2id", h.algorithm));
    }
    if h.version != Some(Version::V0x13 as u32) {
        return weak("argon2 version must be 19 (v=19)".into());
    }
    if h.salt.is_none() || h.hash.is_none() {
        return weak("needs a salt and a hash".into());
    }
    let p = Params::try_from(&h).map_err(|e| WeakHash(format!("parameters: {e}")))?;
    if p.m_cost() < min.m_kib || p.t_cost() < min.t {
        return weak(format!(
            "cost m={},t={} is below the configured m={},t={}",
            p.m_cost(),
            p.t_cost(),
            min.m_kib,
            min.t
        ));
    }
    Ok(())
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

    #[test]
    fn only_argon2id_at_the_configured_cost_passes_as_sent() {
        let h = hash(b"pw", PasswordCost { m_kib: 64, t: 2 }).expect("hash");
        assert_eq!(check_phc(&h, PasswordCost { m_kib: 64, t: 2 }), Ok(()));
        assert_eq!(check_phc(&h, PasswordCost { m_kib: 32, t: 1 }), Ok(()));
        assert!(check_phc(&h, PasswordCost { m_kib: 128, t: 2 }).is_err());
        assert!(check_phc(&h, PasswordCost { m_kib: 64, t: 3 }).is_err());
        let argon2i = h.replacen("$argon2id$", "$argon2i$", 1);
        assert!(check_phc(&argon2i, PasswordCost::TEST).is_err());
        for bad in ["", "pw", "$argon2id$v=19$m=64,t=1,p=1", "$md5$x"] {
            assert!(check_phc(bad, PasswordCost::TEST).is_err(), "{bad}");
        }
    }
}
