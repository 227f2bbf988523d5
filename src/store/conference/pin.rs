//! Room PINs as argon2id hashes (PHC strings with their own salt and parameters), so a
//! copy of the database does not give away the PINs of rooms. Pure apart from the salt,
//! which comes from the operating system's random source.
//!
//! Cost: the OWASP-recommended argon2id parameters (19 MiB, 2 passes), about 35 ms per
//! hash or check in a release build; verification reads the parameters from the stored
//! hash, so they can be raised later without invalidating stored PINs. Unit tests hash
//! with the cheapest parameters (an unoptimised build takes over half a second per hash).

use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::store::{RoomPin, StoreError};

/// The parameters new hashes are made with.
fn params() -> Params {
    if cfg!(test) {
        // The smallest argon2 allows; tests check behaviour, not strength.
        Params::new(Params::MIN_M_COST, 1, 1, None).unwrap_or(Params::DEFAULT)
    } else {
        Params::DEFAULT
    }
}

/// Hashes a PIN into a PHC string (`$argon2id$v=19$m=...`).
pub(super) fn hash(pin: &RoomPin) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|_| StoreError::PinHash("the system's random source failed"))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|_| StoreError::PinHash("the salt could not be encoded"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
        .hash_password(pin.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| StoreError::PinHash("argon2 refused the input"))
}

/// Whether `digits` is the PIN hashed in `phc`. A stored value that is not a hash this
/// binary can check is [`StoreError::BadRow`] naming `column` (never a silent "wrong").
pub(super) fn verify(digits: &str, phc: &str, column: &'static str) -> Result<bool, StoreError> {
    let parsed = PasswordHash::new(phc).map_err(|_| StoreError::BadRow { column })?;
    match Argon2::default().verify_password(digits.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::Password) => Ok(false),
        Err(_) => Err(StoreError::BadRow { column }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_never_contain_the_pin() {
        let a = hash(&RoomPin::new("123456")).expect("hash");
        let b = hash(&RoomPin::new("123456")).expect("hash");
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("123456"));
        assert!(verify("123456", &a, "c").expect("verify"));
        assert!(verify("123456", &b, "c").expect("verify"));
        assert!(!verify("123457", &a, "c").expect("verify"));
        assert!(!verify("", &a, "c").expect("verify"));
        assert!(matches!(
            verify("123456", "not a hash", "conference_rooms.pin_hash"),
            Err(StoreError::BadRow {
                column: "conference_rooms.pin_hash"
            })
        ));
    }

    #[test]
    fn production_parameters_are_argon2_defaults_and_checkable() {
        // The parameters are part of the stored hash: one made with the production
        // parameters verifies with the same code path.
        assert_eq!(Params::DEFAULT.m_cost(), 19 * 1024);
        assert_eq!(Params::DEFAULT.t_cost(), 2);
        let strong = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
            .hash_password(b"4321", &SaltString::encode_b64(&[7; 16]).expect("salt"))
            .expect("hash")
            .to_string();
        assert!(strong.contains("m=19456,t=2,p=1"), "{strong}");
        // One check only: an unoptimised build takes over half a second for each.
        assert!(verify("4321", &strong, "c").expect("verify"));
    }
}
