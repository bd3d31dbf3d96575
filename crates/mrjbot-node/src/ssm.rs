//! sing-box's SSM API (Shadowsocks server management): per-user keys and counters of
//! `managed` Shadowsocks inbounds.
//!
//! sing-box forgets SSM users on every reload and restart, so [`Ssm::reconcile`] is
//! level-triggered: it compares the users the core has with the wanted ones and fixes the
//! difference, and the agent calls it after each start or reload and on every supervision
//! tick. Counters are read without clearing them.

use crate::usage::{Counters, Traffic};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One SSM user as the core reports it.
#[derive(Debug, Clone, Deserialize)]
struct SsmUser {
    username: String,
    #[serde(default, rename = "uPSK")]
    upsk: String,
    #[serde(default, rename = "uplinkBytes")]
    up: u64,
    #[serde(default, rename = "downlinkBytes")]
    down: u64,
}

#[derive(Debug, Deserialize)]
struct Users {
    #[serde(default)]
    users: Vec<SsmUser>,
}

/// Client of the SSM API on `127.0.0.1:port`.
#[derive(Clone)]
pub struct Ssm {
    http: reqwest::Client,
    base: String,
}

impl Ssm {
    /// A client for the SSM service on `port`.
    pub fn new(port: u16) -> Ssm {
        Ssm {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn url(&self, endpoint: &str, rest: &str) -> String {
        format!("{}{endpoint}/server/v1{rest}", self.base)
    }

    /// True when the endpoint answers.
    pub async fn ready(&self, endpoint: &str) -> bool {
        matches!(self.http.get(self.url(endpoint, "/")).send().await, Ok(r) if r.status().is_success())
    }

    async fn users(&self, endpoint: &str) -> Result<Vec<SsmUser>, String> {
        let r = self
            .http
            .get(self.url(endpoint, "/users"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("SSM users: HTTP {}", r.status()));
        }
        r.json::<Users>()
            .await
            .map(|u| u.users)
            .map_err(|e| e.to_string())
    }

    /// Makes the endpoint's users exactly `want` (username -> key). Returns how many
    /// changes were made.
    pub async fn reconcile(
        &self,
        endpoint: &str,
        want: &BTreeMap<String, String>,
    ) -> Result<usize, String> {
        let have: BTreeMap<String, String> = self
            .users(endpoint)
            .await?
            .into_iter()
            .map(|u| (u.username, u.upsk))
            .collect();
        let mut changes = 0;
        for (name, key) in want {
            let body = serde_json::json!({"username": name, "uPSK": key});
            let resp = match have.get(name) {
                Some(k) if k == key => continue,
                Some(_) => {
                    self.http
                        .put(self.url(endpoint, &format!("/users/{name}")))
                        .json(&body)
                        .send()
                        .await
                }
                None => {
                    self.http
                        .post(self.url(endpoint, "/users"))
                        .json(&body)
                        .send()
                        .await
                }
            }
            .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("SSM user {name}: HTTP {}", resp.status()));
            }
            changes += 1;
        }
        for name in have.keys().filter(|n| !want.contains_key(*n)) {
            let resp = self
                .http
                .delete(self.url(endpoint, &format!("/users/{name}")))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() && resp.status() != reqwest::StatusCode::NOT_FOUND {
                return Err(format!("SSM remove {name}: HTTP {}", resp.status()));
            }
            changes += 1;
        }
        Ok(changes)
    }

    /// Cumulative per-user bytes of the endpoint, added into `into`.
    pub async fn counters(&self, endpoint: &str, into: &mut Counters) -> Result<(), String> {
        let r = self
            .http
            .get(self.url(endpoint, "/stats"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("SSM stats: HTTP {}", r.status()));
        }
        let u: Users = r.json().await.map_err(|e| e.to_string())?;
        for user in u.users {
            let t: &mut Traffic = into.entry(user.username).or_default();
            t.up = t.up.saturating_add(user.up);
            t.down = t.down.saturating_add(user.down);
        }
        Ok(())
    }
}
