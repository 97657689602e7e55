//! argon2id hashing. Both functions are CPU-heavy: call them from `spawn_blocking`.

use std::sync::LazyLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use super::Password;

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
pub fn hash(password: &Password) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.expose().as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches a stored PHC string. A malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing in particular, verified against when the e-mail is unknown so that
/// sign-in takes as long for an unknown address as for a wrong password.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    hash(&Password::parse("not-a-real-password").expect("valid")).expect("hashing works")
});

/// Spends the same work as [`verify`] and always fails.
pub fn verify_dummy(password: &str) -> bool {
    let _ = verify(password, &DUMMY);
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let stored = hash(&Password::parse("s3cret").unwrap()).unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("s3cret", &stored));
        assert!(!verify("s3cret!", &stored));
        assert!(!verify("s3cret", "not a hash"));
        assert!(!verify_dummy("not-a-real-password"));
    }
}
