//! Passwords: Argon2id with the crate's default parameters (19 MiB, 2 passes, the OWASP
//! recommendation), the PHC string format, and random secrets from the operating system.

use crate::domain::{PASSWORD_LENGTH_MAX, PASSWORD_LENGTH_MIN};
use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// A hash of a password nobody has, verified against when the user does not exist, so that a
/// wrong username takes as long as a wrong password.
const DECOY_PASSWORD: &str = "decoy password of a user that does not exist";

/// Why a password is refused.
pub fn check_rules(password: &str, username: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < PASSWORD_LENGTH_MIN {
        return Err(format!("must be at least {PASSWORD_LENGTH_MIN} characters"));
    }
    if length > PASSWORD_LENGTH_MAX {
        return Err(format!("must be at most {PASSWORD_LENGTH_MAX} characters"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err("must not be the username".into());
    }
    Ok(())
}

/// The Argon2id hash of `password` with a fresh salt (CPU-heavy: call off the async threads).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| error.to_string())
}

/// Whether `password` matches the stored hash; with no hash, a decoy is verified (and fails).
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let (stored, real) = match stored {
        Some(stored) => (stored, true),
        None => (
            DECOY
                .get_or_init(|| hash(DECOY_PASSWORD).unwrap_or_default())
                .as_str(),
            false,
        ),
    };
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// `bytes` random bytes from the operating system, hex encoded.
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buffer);
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

/// A password for the first administrator when none is configured: 24 characters of an
/// alphabet without look-alikes (about 137 bits).
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut buffer = [0u8; 24];
    OsRng.fill_bytes(&mut buffer);
    buffer
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&stored)));
        assert!(!verify("correct horse batterY", Some(&stored)));
        assert!(!verify(DECOY_PASSWORD, None));
        assert!(!verify("x", Some("not a hash")));
    }

    #[test]
    fn rules_name_what_is_wrong() {
        assert!(
            check_rules("short", "alice")
                .unwrap_err()
                .contains("at least")
        );
        assert!(check_rules(&"x".repeat(257), "alice").is_err());
        assert!(check_rules("AliceAlice", "alicealice").is_err());
        assert!(check_rules("a long enough one", "alice").is_ok());
        assert_eq!(generate().len(), 24);
        assert_ne!(generate(), generate());
    }
}
