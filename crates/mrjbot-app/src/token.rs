//! Access tokens: compact JWTs signed with HMAC-SHA256. The verifier accepts exactly one
//! header (`{"alg":"HS256","typ":"JWT"}`), so `alg: none` and algorithm-confusion tokens
//! are refused before any signature work; the signature is compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: i64,
    /// Session id (revoking the session kills the token).
    pub sid: i64,
    /// Issued at, epoch seconds.
    pub iat: i64,
    /// Expires at, epoch seconds.
    pub exp: i64,
}

/// Signs claims into a token.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let header = B64.encode(HEADER);
    let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let sig = mac(key, signing_input.as_bytes())
        .map(|m| B64.encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{signing_input}.{sig}")
}

fn mac(key: &[u8], data: &[u8]) -> Option<HmacSha256> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).ok()?;
    m.update(data);
    Some(m)
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a well-formed HS256 JWT, or the signature is wrong.
    Invalid,
    /// Well-formed and signed, but expired.
    Expired,
}

/// Verifies a token and returns its claims if it is valid at `now_secs`.
pub fn verify(key: &[u8], token: &str, now_secs: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let header = B64.decode(h).map_err(|_| TokenError::Invalid)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| TokenError::Invalid)?;
    if header != serde_json::json!({"alg": "HS256", "typ": "JWT"}) {
        return Err(TokenError::Invalid);
    }
    let sig = B64.decode(s).map_err(|_| TokenError::Invalid)?;
    let m = mac(key, format!("{h}.{p}").as_bytes()).ok_or(TokenError::Invalid)?;
    m.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
    let payload = B64.decode(p).map_err(|_| TokenError::Invalid)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
    if claims.exp <= now_secs {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims {
        Claims {
            sub: 7,
            sid: 9,
            iat: 1000,
            exp: 2000,
        }
    }

    #[test]
    fn round_trip_and_expiry() {
        let t = sign(KEY, &claims());
        assert_eq!(verify(KEY, &t, 1500), Ok(claims()));
        assert_eq!(verify(KEY, &t, 2000), Err(TokenError::Expired));
        assert_eq!(
            verify(b"another key of thirty two bytes!", &t, 1500),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn refuses_alg_none_and_tampering() {
        let t = sign(KEY, &claims());
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert_eq!(verify(KEY, &none, 1500), Err(TokenError::Invalid));
        let forged_payload = B64.encode(r#"{"sub":1,"sid":9,"iat":1000,"exp":2000}"#);
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify(KEY, &forged, 1500), Err(TokenError::Invalid));
        assert_eq!(verify(KEY, "garbage", 1500), Err(TokenError::Invalid));
        assert_eq!(
            verify(KEY, &format!("{t}.x"), 1500),
            Err(TokenError::Invalid)
        );
    }
}
