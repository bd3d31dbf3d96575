//! Client of the control plane's node API (`mrjbot_node_proto`).
//!
//! Holds the bearer token: registers with the node secret on first use, renews the token
//! a minute before it expires, and registers again after any 401. Each call is a single
//! attempt with a short timeout; the caller schedules retries with [`Backoff`], so a
//! control plane that is down or slow never stalls the agent for long.

use mrjbot_node_proto as proto;
use proto::{
    CoreKind, DesiredState, Heartbeat, HeartbeatAck, Intervals, RegisterRequest, RegisterResponse,
    TokenRequest, TokenResponse, UsageAck, UsageReport,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A failed control-plane call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, timeout, DNS... (retry with backoff).
    #[error("control plane unreachable: {0}")]
    Transport(String),
    /// The token was refused; the next call registers again.
    #[error("control plane refused the token (401)")]
    Unauthorized,
    /// Any other non-success status.
    #[error("control plane answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Body (truncated).
        body: String,
    },
    /// The answer did not parse.
    #[error("control plane answer: {0}")]
    Decode(String),
}

/// Answer to a desired-state poll.
#[derive(Debug)]
pub enum Desired {
    /// `304`: the state with the sent ETag is still current.
    NotModified,
    /// A new state and the `ETag` header to send back in `If-None-Match` (as received,
    /// or the quoted [`DesiredState::etag`] when the header is absent).
    Changed(Box<DesiredState>, String),
}

struct Token {
    value: String,
    renew_at: Instant,
}

#[derive(Default)]
struct Session {
    token: Option<Token>,
    registered: Option<RegisterResponse>,
}

/// What the agent tells the control plane about itself at registration.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Node secret.
    pub secret: String,
    /// Core kind.
    pub core: CoreKind,
    /// Core version, when known.
    pub core_version: Option<String>,
}

/// The node API client; cheap to clone (shared session).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    identity: Identity,
    session: Arc<Mutex<Session>>,
}

fn transport(e: reqwest::Error) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl Client {
    /// A client for `base` (no trailing slash).
    pub fn new(base: &str, identity: Identity) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("mrjbot-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            http,
            base: base.to_string(),
            identity,
            session: Arc::new(Mutex::new(Session::default())),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized);
        }
        if !status.is_success() && status != reqwest::StatusCode::NOT_MODIFIED {
            let mut body = resp.text().await.unwrap_or_default();
            body.truncate(300);
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(resp)
    }

    async fn json<T: serde::de::DeserializeOwned>(r: reqwest::Response) -> Result<T, ClientError> {
        r.json::<T>()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Registers (always a new call). Returns the answer, also kept for [`Client::registered`].
    pub async fn register(&self) -> Result<RegisterResponse, ClientError> {
        let req = RegisterRequest {
            secret: self.identity.secret.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            core: self.identity.core,
            core_version: self.identity.core_version.clone(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string()),
        };
        let resp = self
            .http
            .post(self.url(proto::REGISTER))
            .json(&req)
            .send()
            .await
            .map_err(transport)?;
        let r: RegisterResponse = Self::json(Self::check(resp).await?).await?;
        let mut s = self.session.lock().await;
        s.token = Some(Token {
            value: r.token.clone(),
            renew_at: renew_at(r.expires_in_secs),
        });
        s.registered = Some(r.clone());
        Ok(r)
    }

    /// The last registration answer, if any.
    pub async fn registered(&self) -> Option<RegisterResponse> {
        self.session.lock().await.registered.clone()
    }

    /// Intervals from the last registration.
    pub async fn intervals(&self) -> Option<Intervals> {
        self.session
            .lock()
            .await
            .registered
            .as_ref()
            .map(|r| r.intervals)
    }

    /// A valid token: registers when there is none, renews when it is about to expire.
    async fn token(&self) -> Result<String, ClientError> {
        let (have, due) = {
            let s = self.session.lock().await;
            match &s.token {
                Some(t) => (Some(t.value.clone()), Instant::now() >= t.renew_at),
                None => (None, true),
            }
        };
        match (have, due) {
            (Some(t), false) => Ok(t),
            (Some(_), true) => match self.renew().await {
                Ok(t) => Ok(t),
                Err(ClientError::Unauthorized) => Ok(self.register().await?.token),
                Err(e) => Err(e),
            },
            (None, _) => Ok(self.register().await?.token),
        }
    }

    async fn renew(&self) -> Result<String, ClientError> {
        let resp = self
            .http
            .post(self.url(proto::TOKEN))
            .json(&TokenRequest {
                secret: self.identity.secret.clone(),
            })
            .send()
            .await
            .map_err(transport)?;
        let r: TokenResponse = Self::json(Self::check(resp).await?).await?;
        self.session.lock().await.token = Some(Token {
            value: r.token.clone(),
            renew_at: renew_at(r.expires_in_secs),
        });
        Ok(r.token)
    }

    async fn forget_token(&self) {
        self.session.lock().await.token = None;
    }

    /// Sends with a bearer token; after a 401 registers again and retries once.
    async fn authed<F>(&self, build: F) -> Result<reqwest::Response, ClientError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        for attempt in 0..2 {
            let token = self.token().await?;
            let resp = build(&self.http, &token)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(transport)?;
            match Self::check(resp).await {
                Err(ClientError::Unauthorized) if attempt == 0 => self.forget_token().await,
                other => return other,
            }
        }
        Err(ClientError::Unauthorized)
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatAck, ClientError> {
        let url = self.url(proto::HEARTBEAT);
        let r = self.authed(|c, _| c.post(&url).json(hb)).await?;
        Self::json(r).await
    }

    /// Polls the desired state with `If-None-Match: <if_none_match>`.
    pub async fn desired(&self, if_none_match: Option<&str>) -> Result<Desired, ClientError> {
        let url = self.url(proto::DESIRED);
        let r = self
            .authed(|c, _| {
                let mut rb = c.get(&url);
                if let Some(e) = if_none_match {
                    rb = rb.header(reqwest::header::IF_NONE_MATCH, e);
                }
                rb
            })
            .await?;
        if r.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Desired::NotModified);
        }
        let header = r
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let state: DesiredState = Self::json(r).await?;
        let header = header.unwrap_or_else(|| format!("\"{}\"", state.etag));
        Ok(Desired::Changed(Box::new(state), header))
    }

    /// Sends a usage report.
    pub async fn usage(&self, report: &UsageReport) -> Result<UsageAck, ClientError> {
        let url = self.url(proto::USAGE);
        let r = self.authed(|c, _| c.post(&url).json(report)).await?;
        Self::json(r).await
    }
}

fn renew_at(expires_in_secs: u64) -> Instant {
    // Renew a minute early (or at half-life for short tokens).
    let secs = expires_in_secs.saturating_sub(60).max(expires_in_secs / 2);
    Instant::now() + Duration::from_secs(secs)
}

/// Exponential backoff with jitter for retrying a failing call.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: u32,
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// Starts at `base`, doubles per failure up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            failures: 0,
            base,
            max,
        }
    }

    /// Records a failure and returns how long to wait (±50 % jitter).
    pub fn fail(&mut self) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures.min(16)))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        exp.mul_f64(0.5 + fastrand::f64())
    }

    /// Records a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let first = b.fail();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        for _ in 0..20 {
            let d = b.fail();
            assert!(d <= Duration::from_secs(3));
        }
        assert!(b.fail() >= Duration::from_secs(1));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.fail() <= Duration::from_millis(150));
    }
}
