//! Payment gateways: HTTP clients for Zarinpal, YooKassa, Crypto Pay and the payment
//! part of the Telegram Bot API (Stars). Each client speaks its gateway's real API
//! (../shared/specs/payments.md) against a configurable base URL, so a local fake can
//! stand in for the internet in tests.
//!
//! Clients only talk; they never change our store. The money path (`crate::money`)
//! decides what an answer means for an order. Every error says whether the outcome of
//! the call is known: a timeout or a 5xx leaves it unknown, so the caller must retry
//! with the same idempotency key or ask the gateway later, never assume failure.

pub mod cryptopay;
pub mod telegram;
pub mod yookassa;
pub mod zarinpal;

use std::time::Duration;

/// Largest answer body a gateway client reads; real answers are a few kilobytes.
const MAX_BODY: usize = 1 << 20;

/// Why a gateway call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The request may or may not have reached the gateway (connection error, timeout,
    /// HTTP 5xx, YooKassa 202): the outcome is unknown; retry safely or ask later.
    #[error("{gateway}: no definite answer: {message}")]
    Unknown {
        /// Which gateway.
        gateway: &'static str,
        /// What happened.
        message: String,
    },
    /// The gateway answered with a definite refusal (its own error code and text).
    #[error("{gateway}: refused ({code}): {message}")]
    Refused {
        /// Which gateway.
        gateway: &'static str,
        /// The gateway's own error code (`-51`, `invalid_request`, `400`...).
        code: String,
        /// The gateway's message.
        message: String,
    },
    /// The gateway answered something this client does not understand (a protocol
    /// violation or an API change): logged with the body, treated like a refusal.
    #[error("{gateway}: unexpected answer: {message}")]
    Unexpected {
        /// Which gateway.
        gateway: &'static str,
        /// What was wrong, with a bounded excerpt of the body.
        message: String,
    },
    /// The gateway asked us to slow down (HTTP 429, Telegram `retry_after`); the request
    /// was not performed and may be repeated after the delay.
    #[error("{gateway}: rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// Which gateway.
        gateway: &'static str,
        /// How long to wait.
        retry_after: Duration,
    },
    /// The gateway is not configured (no credentials).
    #[error("{gateway} is not configured")]
    NotConfigured {
        /// Which gateway.
        gateway: &'static str,
    },
}

impl GatewayError {
    /// True when the outcome is unknown and the call may be retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GatewayError::Unknown { .. } | GatewayError::RateLimited { .. }
        )
    }

    /// Classifies a transport error from reqwest as "outcome unknown".
    pub fn transport(gateway: &'static str, e: reqwest::Error) -> Self {
        GatewayError::Unknown {
            gateway,
            message: e.to_string(),
        }
    }

    /// An unexpected-answer error with a bounded excerpt of the body.
    pub fn unexpected(gateway: &'static str, what: &str, body: &[u8]) -> Self {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(300).collect();
        GatewayError::Unexpected {
            gateway,
            message: format!("{what}: {excerpt}"),
        }
    }
}

/// A gateway's settings cannot work (a base URL that is not http(s), a bad CIDR...).
#[derive(Debug, thiserror::Error)]
#[error("{gateway} settings: {message}")]
pub struct ConfigError {
    /// Which gateway.
    pub gateway: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Parses a configured base URL: `http` or `https` with a host, so paths can be appended.
pub(crate) fn parse_base_url(gateway: &'static str, base: &str) -> Result<url::Url, ConfigError> {
    let bad = |why: String| ConfigError {
        gateway,
        message: format!("base URL `{base}`: {why}"),
    };
    let url = url::Url::parse(base).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("expected an http(s) URL with a host".into()));
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded as one path segment (an id with
/// a `/` or `?` stays inside its segment).
pub(crate) fn url_with(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    // Cannot fail: `parse_base_url` admits only http(s) URLs, which have a path.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Reads an answer body up to [`MAX_BODY`]; a broken connection leaves the outcome unknown.
pub(crate) async fn read_body(
    gateway: &'static str,
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, GatewayError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| GatewayError::transport(gateway, e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(GatewayError::unexpected(
                gateway,
                "answer larger than 1 MiB",
                &body,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The delay a 429 answer asks for (`Retry-After` in seconds), one second when absent.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

/// Makes ring the process's TLS crypto provider (reqwest is built without a bundled
/// one). Call before building any HTTPS client; calling again changes nothing.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The shared HTTP client settings for gateways: short connect timeout, bounded total
/// time, no redirects (a gateway API never redirects; a redirect means a wrong base URL).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mrjbot/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Joins a configured base URL and a path without doubling or losing the slash.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_urls() {
        assert_eq!(join_url("http://a/", "/x.json"), "http://a/x.json");
        assert_eq!(join_url("http://a", "x.json"), "http://a/x.json");
    }

    #[test]
    fn base_urls_take_encoded_segments() {
        let Ok(base) = parse_base_url("t", "http://a:1/api/") else {
            panic!("a valid base URL was refused");
        };
        assert_eq!(
            url_with(&base, &["v3", "payments", "a/b?c"]).as_str(),
            "http://a:1/api/v3/payments/a%2Fb%3Fc"
        );
        assert!(parse_base_url("t", "ftp://a").is_err());
        assert!(parse_base_url("t", "not a url").is_err());
    }
}
