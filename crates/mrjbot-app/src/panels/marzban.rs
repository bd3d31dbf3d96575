//! Marzban 0.8.x / PasarGuard client (spec §2): OAuth2 password token, user CRUD, the
//! inbound list.
//!
//! Errors follow FastAPI: `{"detail": ...}` with 401 (token gone: log in again and repeat
//! once), 404 (no such user), 409 (exists), 422 (validation); 5xx and transport failures
//! leave the outcome unknown. Units are Marzban's: `expire` and
//! `on_hold_expire_duration` in seconds, `data_limit` and `used_traffic` in bytes.

use super::{PanelError, Retry, http_client, normalize_base, read_body, seg, status_error};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::Mutex;

/// Panel name in errors and logs.
pub const PANEL: &str = "marzban";
/// Users fetched per page.
const PAGE: usize = 500;

/// Where and how to reach a Marzban panel.
#[derive(Debug, Clone)]
pub struct MarzbanConfig {
    /// Panel URL (`https://host:8000/`); the API is under `api/`.
    pub url: String,
    /// Admin user.
    pub username: String,
    /// Admin password.
    pub password: String,
    /// Time allowed for one call.
    pub timeout: Duration,
    /// Retries of calls whose outcome was unknown.
    pub retry: Retry,
}

impl MarzbanConfig {
    /// Settings with a 10 s timeout and the default retries.
    pub fn new(url: &str, username: &str, password: &str) -> Self {
        Self {
            url: url.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            timeout: Duration::from_secs(10),
            retry: Retry::default(),
        }
    }
}

/// A user as Marzban reports it (`UserResponse`, the fields we use).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MUser {
    /// Identity.
    pub username: String,
    /// `active`, `disabled`, `on_hold`, `limited`, `expired`.
    pub status: String,
    /// Protocol → settings (`id`, `password`, `flow`, `method`).
    #[serde(default)]
    pub proxies: BTreeMap<String, Value>,
    /// Protocol → inbound tags.
    #[serde(default)]
    pub inbounds: BTreeMap<String, Vec<String>>,
    /// Expiry, unix seconds.
    pub expire: Option<i64>,
    /// Cap in bytes.
    pub data_limit: Option<i64>,
    /// Bytes used since the last reset.
    #[serde(default)]
    pub used_traffic: i64,
    /// Bytes used over the whole life (newer versions).
    pub lifetime_used_traffic: Option<i64>,
    /// Seconds the plan runs once first used (on hold).
    pub on_hold_expire_duration: Option<i64>,
    /// Note.
    pub note: Option<String>,
}

impl MUser {
    /// The cumulative counter deltas are taken from: the lifetime counter when the panel
    /// reports one (it survives resets), else `used_traffic`.
    pub fn counter(&self) -> i64 {
        self.lifetime_used_traffic
            .filter(|l| *l >= self.used_traffic)
            .unwrap_or(self.used_traffic)
    }
}

/// An inbound as `GET /api/inbounds` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MInbound {
    /// Tag (the name users' `inbounds` refer to).
    pub tag: String,
    /// Protocol.
    pub protocol: String,
    /// Transport.
    #[serde(default)]
    pub network: String,
    /// `tls`, `reality` or `none`.
    #[serde(default)]
    pub tls: String,
    /// Port (a number, or text for ranges in some versions).
    #[serde(default)]
    pub port: Value,
}

#[derive(Deserialize)]
struct UsersPage {
    users: Vec<MUser>,
    #[serde(default)]
    total: Option<usize>,
}

/// A Marzban API client; keeps its access token.
#[derive(Debug)]
pub struct MarzbanClient {
    cfg: MarzbanConfig,
    base: url::Url,
    http: reqwest::Client,
    token: Mutex<Option<String>>,
}

fn detail(b: &[u8]) -> String {
    match serde_json::from_slice::<Value>(b) {
        Ok(v) => match &v["detail"] {
            Value::String(s) => s.clone(),
            Value::Null => v.to_string(),
            d => d.to_string(),
        },
        Err(_) => String::from_utf8_lossy(b).chars().take(200).collect(),
    }
}

impl MarzbanClient {
    /// A client for `cfg` (no network until the first call).
    pub fn new(cfg: MarzbanConfig) -> Result<Self, PanelError> {
        let base = normalize_base(PANEL, &cfg.url)?;
        Ok(Self {
            http: http_client(cfg.timeout),
            base,
            cfg,
            token: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, PanelError> {
        self.base
            .join(path)
            .map_err(|e| PanelError::unexpected(PANEL, path, &e.to_string(), b""))
    }

    async fn login(&self) -> Result<String, PanelError> {
        let call = "POST api/admin/token";
        let resp = self
            .http
            .post(self.url("api/admin/token")?)
            .form(&[
                ("grant_type", "password"),
                ("username", self.cfg.username.as_str()),
                ("password", self.cfg.password.as_str()),
            ])
            .send()
            .await
            .map_err(|e| PanelError::transport(PANEL, call, &e))?;
        let st = resp.status();
        let b = read_body(PANEL, call, resp).await?;
        if let Some(e) = status_error(PANEL, call, st, || detail(&b)) {
            return Err(e);
        }
        let v: Value = serde_json::from_slice(&b)
            .map_err(|_| PanelError::unexpected(PANEL, call, "not JSON (wrong URL?)", &b))?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| PanelError::unexpected(PANEL, call, "no access_token", &b))
    }

    /// One call; logs in first when needed and once more on 401.
    async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, PanelError> {
        let call = format!("{method} {path}");
        let mut token = self.token.lock().await;
        for attempt in 0..2 {
            let t = match token.as_ref() {
                Some(t) => t.clone(),
                None => {
                    let t = self.login().await?;
                    *token = Some(t.clone());
                    t
                }
            };
            let mut req = self
                .http
                .request(method.clone(), self.url(path)?)
                .bearer_auth(&t);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| PanelError::transport(PANEL, &call, &e))?;
            let st = resp.status();
            let b = read_body(PANEL, &call, resp).await?;
            if st == StatusCode::UNAUTHORIZED && attempt == 0 {
                *token = None;
                continue;
            }
            if st.is_server_error() {
                return Err(PanelError::Unknown {
                    panel: PANEL,
                    call,
                    message: format!("HTTP {st}"),
                });
            }
            if !st.is_success() {
                return Err(PanelError::Refused {
                    panel: PANEL,
                    call,
                    status: st.as_u16(),
                    message: detail(&b),
                });
            }
            return serde_json::from_slice(&b).map_err(|_| PanelError::not_json(PANEL, &call, &b));
        }
        Err(PanelError::Refused {
            panel: PANEL,
            call,
            status: 401,
            message: "token refused twice".into(),
        })
    }

    fn user_of(call: &str, v: Value) -> Result<MUser, PanelError> {
        serde_json::from_value(v.clone()).map_err(|e| {
            PanelError::unexpected(
                PANEL,
                call,
                &format!("user object: {e}"),
                v.to_string().as_bytes(),
            )
        })
    }

    /// Every user, page by page.
    pub async fn users(&self) -> Result<Vec<MUser>, PanelError> {
        let mut out = Vec::new();
        loop {
            let path = format!(
                "api/users?offset={}&limit={PAGE}&sort=created_at",
                out.len()
            );
            let v = self
                .cfg
                .retry
                .run(|| self.api(Method::GET, &path, None))
                .await?;
            let page: UsersPage = serde_json::from_value(v.clone()).map_err(|e| {
                PanelError::unexpected(
                    PANEL,
                    &path,
                    &format!("users page: {e}"),
                    v.to_string().as_bytes(),
                )
            })?;
            let n = page.users.len();
            out.extend(page.users);
            if n < PAGE || page.total.is_some_and(|t| out.len() >= t) || out.len() > 10_000_000 {
                return Ok(out);
            }
        }
    }

    /// One user, `None` when Marzban says 404.
    pub async fn user(&self, username: &str) -> Result<Option<MUser>, PanelError> {
        let path = format!("api/user/{}", seg(username));
        match self
            .cfg
            .retry
            .run(|| self.api(Method::GET, &path, None))
            .await
        {
            Ok(v) => Self::user_of(&path, v).map(Some),
            Err(e) if e.refused_status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a user (`UserCreate`). Not retried: after an unknown outcome the caller
    /// looks the username up first.
    pub async fn create(&self, body: &Value) -> Result<MUser, PanelError> {
        let v = self.api(Method::POST, "api/user", Some(body)).await?;
        Self::user_of("POST api/user", v)
    }

    /// Modifies a user (`UserModify`; omitted fields stay).
    pub async fn modify(&self, username: &str, body: &Value) -> Result<MUser, PanelError> {
        let path = format!("api/user/{}", seg(username));
        let v = self
            .cfg
            .retry
            .run(|| self.api(Method::PUT, &path, Some(body)))
            .await?;
        Self::user_of(&path, v)
    }

    /// Deletes a user; one already gone counts as deleted.
    pub async fn delete(&self, username: &str) -> Result<(), PanelError> {
        let path = format!("api/user/{}", seg(username));
        match self
            .cfg
            .retry
            .run(|| self.api(Method::DELETE, &path, None))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.refused_status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The inbounds of Marzban's core config, by protocol.
    pub async fn inbounds(&self) -> Result<Vec<MInbound>, PanelError> {
        let v = self
            .cfg
            .retry
            .run(|| self.api(Method::GET, "api/inbounds", None))
            .await?;
        let map: BTreeMap<String, Vec<MInbound>> =
            serde_json::from_value(v.clone()).map_err(|e| {
                PanelError::unexpected(
                    PANEL,
                    "GET api/inbounds",
                    &format!("inbound map: {e}"),
                    v.to_string().as_bytes(),
                )
            })?;
        Ok(map.into_values().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_counter_wins_when_sane() {
        let mut u: MUser = serde_json::from_value(serde_json::json!({
            "username": "a", "status": "active", "used_traffic": 10, "lifetime_used_traffic": 25
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.counter(), 25);
        u.lifetime_used_traffic = None;
        assert_eq!(u.counter(), 10);
        assert_eq!(detail(br#"{"detail":"User not found"}"#), "User not found");
    }
}
