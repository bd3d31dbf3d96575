//! Password hashing with Argon2id (OWASP parameters: 19 MiB, 2 passes), off the async
//! threads. A login for an unknown user still verifies against a dummy hash so the reply
//! time does not reveal which usernames exist.

use crate::error::{AppError, AppResult};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes and verifies passwords.
#[derive(Debug, Clone)]
pub struct Hasher {
    dummy: String,
}

impl Default for Hasher {
    fn default() -> Self {
        let dummy = Argon2::default()
            .hash_password(b"mrjbot-dummy-password")
            .map(|h| h.to_string())
            .unwrap_or_default();
        Self { dummy }
    }
}

/// Checks the strength rules for a new password: 10-128 characters, not all the same
/// character class (letters only or digits only).
pub fn check_strength(field: &str, pw: &str) -> AppResult<()> {
    let n = pw.chars().count();
    if !(10..=128).contains(&n) {
        return Err(AppError::field(field, "must be 10 to 128 characters long"));
    }
    if pw.chars().all(|c| c.is_ascii_digit()) || pw.chars().all(char::is_alphabetic) {
        return Err(AppError::field(
            field,
            "must mix letters with digits or symbols",
        ));
    }
    Ok(())
}

impl Hasher {
    /// Hashes a password (Argon2id, random salt) into a PHC string.
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .hash_password(pw.as_bytes())
                .map(|h| h.to_string())
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))
    }

    /// Verifies a password against a stored hash, or against the dummy when `stored` is
    /// `None`, taking the same time either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> AppResult<bool> {
        let exists = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy).to_owned();
        let pw = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
            Ok(parsed) => Argon2::default()
                .verify_password(pw.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        })
        .await
        .map_err(AppError::internal)?;
        Ok(ok && exists)
    }
}

/// A random password of 20 characters from an unambiguous alphabet (no 0/O, 1/l/I).
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut s: String = (0..18)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    // Guarantee the mix `check_strength` asks for.
    s.push(char::from(b"23456789"[rng.random_range(0..8)]));
    s.push(char::from(
        b"abcdefghijkmnopqrstuvwxyz"[rng.random_range(0..25)],
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_strong() {
        for _ in 0..50 {
            assert!(check_strength("p", &generate()).is_ok());
        }
        assert!(check_strength("p", "short1").is_err());
        assert!(check_strength("p", "onlyletterslong").is_err());
        assert!(check_strength("p", "12345678901").is_err());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = Hasher::default();
        let stored = h.hash("correct horse 1").await.unwrap_or_default();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            h.verify("correct horse 1", Some(&stored))
                .await
                .unwrap_or(false)
        );
        assert!(
            !h.verify("wrong horse 1", Some(&stored))
                .await
                .unwrap_or(true)
        );
        assert!(!h.verify("correct horse 1", None).await.unwrap_or(true));
    }
}
