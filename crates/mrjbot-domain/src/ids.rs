//! Identifiers that parse: usernames, e-mail addresses, Telegram ids, secret tokens.

use crate::error::DomainError;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A login name: 3-32 characters of `a-z 0-9 _ . -`, starting with a letter or digit,
/// stored lower-case so `Admin` and `admin` are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    /// Parses and normalises a username.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim().to_ascii_lowercase();
        let ok_len = (3..=32).contains(&s.len());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        let ok_start = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        if ok_len && ok_chars && ok_start {
            Ok(Self(s))
        } else {
            Err(DomainError::invalid(
                "a username is 3-32 characters of letters, digits, `_`, `.` or `-`, starting with a letter or digit",
            ))
        }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Username> for String {
    fn from(u: Username) -> String {
        u.0
    }
}

/// An e-mail address with one `@`, a non-empty local part and a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses an address; the domain part is lower-cased.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let bad = || DomainError::invalid("not a valid e-mail address");
        let (local, domain) = s.split_once('@').ok_or_else(bad)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.split('.').all(|l| {
                !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.bytes().any(|b| b.is_ascii_whitespace() || b == b'@');
        if domain_ok && local_ok && s.len() <= 254 {
            Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
        } else {
            Err(bad())
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

/// A Telegram user id: positive and below 2^52 as Bot API documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct TelegramId(i64);

impl TelegramId {
    /// Checks the range.
    pub fn new(id: i64) -> Result<Self, DomainError> {
        if id > 0 && id < (1i64 << 52) {
            Ok(Self(id))
        } else {
            Err(DomainError::invalid(
                "a Telegram id is a positive integer below 2^52",
            ))
        }
    }

    /// The raw id.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for TelegramId {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<TelegramId> for i64 {
    fn from(t: TelegramId) -> i64 {
        t.0
    }
}

/// An unguessable secret: 32 random bytes from the OS generator, base64url without
/// padding (43 characters). Used for subscription links, refresh tokens, node secrets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretToken(String);

impl SecretToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut buf = [0u8; 32];
        rand::rng().fill_bytes(&mut buf);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
    }

    /// Accepts text that has the shape of a token (43 base64url characters).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(DomainError::invalid("malformed token"))
        }
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" Admin ").map(|u| u.0), Ok("admin".into()));
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("_x1").is_err());
        assert!(Username::parse("robert'); drop table users;--").is_err());
    }

    #[test]
    fn emails_and_ids() {
        assert!(Email::parse("a@Example.COM").is_ok_and(|e| e.as_str() == "a@example.com"));
        assert!(Email::parse("a@b").is_err());
        assert!(Email::parse("@b.c").is_err());
        assert!(TelegramId::new(0).is_err());
        assert!(TelegramId::new(123_456_789).is_ok());
    }

    #[test]
    fn tokens_are_unique_and_parse() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a, b);
        assert_eq!(SecretToken::parse(a.as_str()), Ok(a));
        assert!(SecretToken::parse("short").is_err());
    }

    proptest! {
        #[test]
        fn username_parse_is_idempotent(s in "[A-Za-z0-9_.-]{0,40}") {
            if let Ok(u) = Username::parse(&s) {
                prop_assert_eq!(Username::parse(u.as_str()), Ok(u.clone()));
            }
        }
    }
}
