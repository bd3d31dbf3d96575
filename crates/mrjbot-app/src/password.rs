//! Password hashing with Argon2id (OWASP parameters: 19 MiB, 2 passes), off the async
//! threads. A login for an unknown user still verifies against a dummy hash so the reply
//! time does not reveal which usernames exist.

use crate::error::{AppError, AppResult};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes and verifies passwords on a small dedicated pool of threads.
///
/// Each Argon2id run allocates a 19 MiB block. Run on tokio's blocking pool (up to
/// hundreds of threads), every thread gets its own malloc arena and keeps its block, so a
/// login burst left the process at ~1 GB. A fixed pool of as many threads as cores bounds
/// both memory and CPU contention: extra requests queue instead.
#[derive(Clone)]
pub struct Hasher {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce(&str) + Send>;

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl Default for Hasher {
    fn default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 4);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(1024);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        // The dummy hash for unknown users is made once, lazily, on a pool thread.
        let dummy = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
        for i in 0..threads {
            let rx = rx.clone();
            let dummy = dummy.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let d = dummy.get_or_init(|| {
                            Argon2::default()
                                .hash_password(b"mrjbot-dummy-password")
                                .map(|h| h.to_string())
                                .unwrap_or_default()
                        });
                        job(d);
                    }
                });
            if spawned.is_err() {
                tracing::error!("cannot start a password hashing thread");
            }
        }
        Self { jobs: tx }
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
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&str) -> T + Send + 'static,
    ) -> AppResult<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |dummy| {
            let _ = tx.send(f(dummy));
        });
        let jobs = self.jobs.clone();
        // `send` blocks only when 1024 hashes are already queued.
        tokio::task::spawn_blocking(move || jobs.send(job))
            .await
            .map_err(AppError::internal)?
            .map_err(|_| {
                AppError::internal(std::io::Error::other("password hashing pool stopped"))
            })?;
        rx.await
            .map_err(|_| AppError::internal(std::io::Error::other("password hashing job lost")))
    }

    /// Hashes a password (Argon2id, random salt) into a PHC string.
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let pw = password.to_owned();
        self.run(move |_| {
            Argon2::default()
                .hash_password(pw.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| AppError::internal(std::io::Error::other(e.to_string())))
    }

    /// Verifies a password against a stored hash, or against the dummy when `stored` is
    /// `None`, taking the same time either way.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> AppResult<bool> {
        let exists = stored.is_some();
        let stored = stored.map(str::to_owned);
        let pw = password.to_owned();
        let ok = self
            .run(move |dummy| {
                let hash = stored.as_deref().unwrap_or(dummy);
                match PasswordHash::new(hash) {
                    Ok(parsed) => Argon2::default()
                        .verify_password(pw.as_bytes(), &parsed)
                        .is_ok(),
                    Err(_) => false,
                }
            })
            .await?;
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
