//! 3x-UI and Marzban panels as data planes: HTTP clients for their real APIs
//! (../shared/specs/panels-and-protocols.md §1, §2), the reconciler that converges every
//! enabled panel node to the desired state of `App::node_desired`, and the import of a
//! panel's existing customers.
//!
//! Guarantees:
//! * **Only managed accounts are touched.** An account is MRJBot's when it is in
//!   `panel_accounts` (created by the reconciler, or imported); the seller's other
//!   accounts on the same panel are listed but never changed.
//! * **Nothing is provisioned twice.** Remote names are deterministic
//!   (`mrj{subscription}-{inbound}` on 3x-UI, `mrj{subscription}` on Marzban) and are
//!   recorded before the create call; after an unknown outcome (timeout, 5xx, connection
//!   lost) or a refusal, the account is looked up by name and updated when it exists.
//! * **Usage counts exactly once.** Remote counters are cumulative; the delta against the
//!   stored baseline is added with `usage::apply` in the same transaction that moves the
//!   baseline. A counter below its baseline (the panel reset it) starts a new baseline.
//! * **Level-triggered.** Every sync compares the whole panel with the whole desired
//!   state, so a panel that was down converges when it returns; a failing panel marks
//!   its node `degraded`, then `down`, and is retried with exponential backoff.

pub mod import;
pub mod marzban;
pub(crate) mod reconcile;
pub mod xui;

pub use import::{ImportFailure, ImportKind, ImportProgress, ImportRequest, ImportSummary};
pub use reconcile::{PanelSettings, SyncReport};

use rand::Rng;
use std::future::Future;
use std::time::Duration;

/// Largest answer body a panel client reads (a panel with thousands of clients answers
/// a few megabytes).
const MAX_BODY: usize = 64 << 20;

/// Percent-encodes one path segment (panel account names and keys go into URLs).
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What an HTTP status other than 200 means for a panel call: a 5xx leaves the outcome
/// unknown (look before doing it again), anything else is a refusal with the panel's
/// `message`. `None` for 200.
pub(crate) fn status_error(
    panel: &'static str,
    call: &str,
    st: reqwest::StatusCode,
    message: impl FnOnce() -> String,
) -> Option<PanelError> {
    if st.is_server_error() {
        return Some(PanelError::Unknown {
            panel,
            call: call.into(),
            message: format!("HTTP {st}"),
        });
    }
    (st != reqwest::StatusCode::OK).then(|| PanelError::Refused {
        panel,
        call: call.into(),
        status: st.as_u16(),
        message: message(),
    })
}

/// Why a panel call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PanelError {
    /// The request may or may not have been performed (timeout, connection lost, HTTP
    /// 5xx): look before doing it again.
    #[error("{panel} {call}: no definite answer: {message}")]
    Unknown {
        /// `3x-ui` or `marzban`.
        panel: &'static str,
        /// Which call (`POST addClient`).
        call: String,
        /// What happened.
        message: String,
    },
    /// The panel refused (4xx with a body, or 3x-UI `success:false` with HTTP 200).
    #[error("{panel} {call}: refused ({status}): {message}")]
    Refused {
        /// `3x-ui` or `marzban`.
        panel: &'static str,
        /// Which call.
        call: String,
        /// HTTP status (200 for a 3x-UI `success:false`).
        status: u16,
        /// The panel's message.
        message: String,
    },
    /// The panel answered something this client does not understand (HTML where JSON
    /// was expected, missing fields): a wrong URL or an API change.
    #[error("{panel} {call}: unexpected answer: {message}")]
    Unexpected {
        /// `3x-ui` or `marzban`.
        panel: &'static str,
        /// Which call.
        call: String,
        /// What was wrong, with a bounded excerpt of the body.
        message: String,
    },
}

impl PanelError {
    /// True when the outcome is unknown (the call may have been performed).
    pub fn is_unknown(&self) -> bool {
        matches!(self, PanelError::Unknown { .. })
    }

    /// The HTTP status of a refusal.
    pub fn refused_status(&self) -> Option<u16> {
        match self {
            PanelError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn unexpected(panel: &'static str, call: &str, what: &str, body: &[u8]) -> Self {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
        PanelError::Unexpected {
            panel,
            call: call.to_owned(),
            message: format!("{what}: {excerpt}"),
        }
    }

    /// A body that should have been JSON and is not (an HTML login page or error page
    /// usually means a wrong URL or base path).
    pub(crate) fn not_json(panel: &'static str, call: &str, body: &[u8]) -> Self {
        let what = if body.trim_ascii_start().starts_with(b"<") {
            "HTML where JSON was expected"
        } else {
            "not JSON"
        };
        Self::unexpected(panel, call, what, body)
    }

    pub(crate) fn transport(panel: &'static str, call: &str, e: &reqwest::Error) -> Self {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "connection failed"
        };
        PanelError::Unknown {
            panel,
            call: call.to_owned(),
            message: format!("{what}: {e}"),
        }
    }
}

/// Bounded retries of calls whose outcome was unknown.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Delay before the second attempt; doubles each time, plus up to 50 % jitter.
    pub base_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(200),
        }
    }
}

impl Retry {
    /// The delay before attempt `n + 1` (n ≥ 1).
    fn delay(&self, n: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1 << n.saturating_sub(1).min(10));
        let jitter_ms = u64::try_from(exp.as_millis() / 2).unwrap_or(0);
        let jitter = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        };
        exp + Duration::from_millis(jitter)
    }

    /// Runs `f` until it succeeds, fails definitely, or the attempts are used up. Only
    /// for calls that are safe to repeat (reads, updates to a full state, deletes).
    pub async fn run<T, F, Fut>(&self, mut f: F) -> Result<T, PanelError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, PanelError>>,
    {
        let mut n = 1;
        loop {
            match f().await {
                Err(e) if e.is_unknown() && n < self.attempts.max(1) => {
                    tracing::debug!(error = %e, attempt = n, "panel call retried");
                    tokio::time::sleep(self.delay(n)).await;
                    n += 1;
                }
                r => return r,
            }
        }
    }
}

/// When a panel account stops being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Never.
    Never,
    /// At this instant (epoch ms).
    At(i64),
    /// Runs for this many days from the first connection.
    OnHold {
        /// Length of the plan in days.
        days: i64,
    },
}

/// Where an inbound-local tag comes from: panel tags may hold spaces or `:`; ours are
/// `A-Z a-z 0-9 _ . -`, at most 64 characters.
pub fn local_tag(panel_tag: &str) -> String {
    let t: String = panel_tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if t.is_empty() { "inbound".into() } else { t }
}

/// A panel URL in the spec's shape: `scheme://host:port` + base path with exactly one
/// trailing `/` (§1.2), so relative API paths join below the base path.
pub fn normalize_base(panel: &'static str, url: &str) -> Result<url::Url, PanelError> {
    let bad = |why: &str| PanelError::Unexpected {
        panel,
        call: "configuration".into(),
        message: format!("panel URL `{url}`: {why}"),
    };
    let mut u = url::Url::parse(url.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(bad("expected an http(s) URL with a host"));
    }
    u.set_query(None);
    u.set_fragment(None);
    let path = format!("{}/", u.path().trim_end_matches('/'));
    u.set_path(&path);
    Ok(u)
}

/// Builds the shared HTTP client of panel calls: bounded time per call, no redirects
/// (a redirect from a panel API means "not logged in").
pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    crate::pay::http_client(timeout)
}

/// Reads a body up to [`MAX_BODY`]; a connection that breaks mid-answer leaves the
/// outcome unknown.
pub(crate) async fn read_body(
    panel: &'static str,
    call: &str,
    mut resp: reqwest::Response,
) -> Result<Vec<u8>, PanelError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(PanelError::unexpected(
                        panel,
                        call,
                        "answer larger than 64 MiB",
                        &body,
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(PanelError::transport(panel, call, &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_end_in_one_slash() {
        let u = normalize_base("t", "https://h:2053/Xk3pQ9").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), "https://h:2053/Xk3pQ9/");
        let u =
            normalize_base("t", "https://h:2053/Xk3pQ9//?a=1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), "https://h:2053/Xk3pQ9/");
        let u = normalize_base("t", "http://h").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.join("login").map(|j| j.to_string()).ok().as_deref(),
            Some("http://h/login")
        );
        assert!(normalize_base("t", "ftp://h").is_err());
    }

    #[test]
    fn tags_become_local() {
        assert_eq!(local_tag("inbound-1.2.3.4:443"), "inbound-1.2.3.4-443");
        assert_eq!(local_tag("VLESS TCP REALITY"), "VLESS-TCP-REALITY");
        assert_eq!(local_tag(""), "inbound");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let r = Retry::default();
        assert!(
            r.delay(1) >= Duration::from_millis(200) && r.delay(1) <= Duration::from_millis(300)
        );
        assert!(r.delay(3) >= Duration::from_millis(800));
        assert!(r.delay(40) <= Duration::from_millis(200 * 1024 * 3 / 2));
    }
}
