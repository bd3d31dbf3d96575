//! A local Marzban 0.8.4 API (spec §2): the OAuth2 password token (form), Bearer checks
//! answering 401 `{"detail": ...}`, users CRUD with 404 / 409 / 422 in FastAPI's shapes,
//! `GET /api/users` pages, `GET /api/inbounds`, and `used_traffic` with the `limited`
//! status when a data limit is reached.
//!
//! Test controls: [`FakeMarzban::add_traffic`], [`FakeMarzban::users`],
//! [`FakeMarzban::seed_user`], [`FakeMarzban::revoke_tokens`] and faults on the next API
//! calls (the same [`Fault`] as the 3x-UI fake).

use super::xui::Fault;
use super::{Served, serve};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Default)]
struct Inner {
    tokens: HashSet<String>,
    users: BTreeMap<String, Value>,
    faults: VecDeque<Fault>,
    next: u64,
}

#[derive(Debug)]
struct Shared {
    username: String,
    password: String,
    inbounds: Value,
    state: Mutex<Inner>,
}

/// A running fake Marzban; stops when dropped.
#[derive(Debug)]
pub struct FakeMarzban {
    served: Served,
    shared: Arc<Shared>,
}

fn detail(status: StatusCode, d: &str) -> Response {
    (status, axum::Json(json!({"detail": d}))).into_response()
}

impl FakeMarzban {
    /// Starts a panel with one sudo admin and inbounds `VLESS TCP` (vless, port 443) and
    /// `Trojan WS` (trojan, port 8443).
    pub async fn start(username: &str, password: &str) -> anyhow::Result<FakeMarzban> {
        let inbounds = json!({
            "vless": [{"tag": "VLESS TCP", "protocol": "vless", "network": "tcp", "tls": "tls", "port": 443}],
            "trojan": [{"tag": "Trojan WS", "protocol": "trojan", "network": "ws", "tls": "tls", "port": 8443}]
        });
        let shared = Arc::new(Shared {
            username: username.into(),
            password: password.into(),
            inbounds,
            state: Mutex::new(Inner::default()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        Ok(FakeMarzban {
            served: serve(router).await?,
            shared,
        })
    }

    /// The panel URL.
    pub fn url(&self) -> String {
        format!("{}/", self.served.base_url)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every user (`UserResponse` objects).
    pub fn users(&self) -> Vec<Value> {
        self.lock().users.values().cloned().collect()
    }

    /// Creates a user directly (the seller's own); `body` is a `UserCreate`.
    pub fn seed_user(&self, body: Value, used_traffic: i64) {
        let mut u = user_response(body);
        u["used_traffic"] = json!(used_traffic);
        u["lifetime_used_traffic"] = json!(used_traffic);
        let name = u["username"].as_str().unwrap_or("").to_owned();
        self.lock().users.insert(name, u);
    }

    /// Adds traffic to a user (`limited` once the data limit is reached).
    pub fn add_traffic(&self, username: &str, bytes: i64) {
        let mut s = self.lock();
        if let Some(u) = s.users.get_mut(username) {
            let used = u["used_traffic"].as_i64().unwrap_or(0) + bytes;
            u["used_traffic"] = json!(used);
            u["lifetime_used_traffic"] =
                json!(u["lifetime_used_traffic"].as_i64().unwrap_or(0) + bytes);
            let limit = u["data_limit"].as_i64().unwrap_or(0);
            if limit > 0 && used >= limit && u["status"] == "active" {
                u["status"] = json!("limited");
            }
        }
    }

    /// Invalidates every access token (as a changed admin password or secret does).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// The next `n` API calls (token excluded) suffer `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        for _ in 0..n {
            s.faults.push_back(fault);
        }
    }
}

fn user_response(body: Value) -> Value {
    let mut u = body;
    for (k, d) in [
        ("status", json!("active")),
        ("expire", Value::Null),
        ("data_limit", Value::Null),
        ("inbounds", json!({})),
        ("note", Value::Null),
        ("on_hold_expire_duration", Value::Null),
    ] {
        if u.get(k).is_none() {
            u[k] = d;
        }
    }
    u["used_traffic"] = json!(0);
    u["lifetime_used_traffic"] = json!(0);
    u["created_at"] = json!("2026-11-22T00:00:00");
    u["links"] = json!([]);
    u["subscription_url"] = json!(format!("/sub/{}", u["username"].as_str().unwrap_or("")));
    u["admin"] = Value::Null;
    u
}

fn valid_username(u: &str) -> bool {
    (3..=32).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_@.".contains(&b))
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    if path == "/api/admin/token" && method == Method::POST {
        let f: BTreeMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
        if f.get("username") != Some(&sh.username) || f.get("password") != Some(&sh.password) {
            return detail(StatusCode::UNAUTHORIZED, "Incorrect username or password");
        }
        let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        s.next += 1;
        let t = format!("jwt{}", s.next);
        s.tokens.insert(t.clone());
        return axum::Json(json!({"access_token": t, "token_type": "bearer"})).into_response();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned);
    let authed = {
        let s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        bearer.is_some_and(|b| s.tokens.contains(&b))
    };
    if !authed {
        return detail(StatusCode::UNAUTHORIZED, "Could not validate credentials");
    }
    let fault = sh
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .faults
        .pop_front();
    match fault {
        Some(Fault::Error500) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return StatusCode::GATEWAY_TIMEOUT.into_response();
        }
        _ => {}
    }
    let answer = api(&sh, &method, &path, uri.query().unwrap_or(""), &body);
    if fault == Some(Fault::ApplyThenHang) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    answer
}

fn api(sh: &Shared, method: &Method, path: &str, query: &str, body: &[u8]) -> Response {
    let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
    if path == "/api/inbounds" && method == Method::GET {
        return axum::Json(sh.inbounds.clone()).into_response();
    }
    if path == "/api/users" && method == Method::GET {
        let q: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let offset: usize = q.get("offset").and_then(|x| x.parse().ok()).unwrap_or(0);
        let limit: usize = q
            .get("limit")
            .and_then(|x| x.parse().ok())
            .unwrap_or(usize::MAX);
        let all: Vec<Value> = s.users.values().cloned().collect();
        let page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
        return axum::Json(json!({"users": page, "total": all.len()})).into_response();
    }
    if path == "/api/user" && method == Method::POST {
        let Ok(b) = serde_json::from_slice::<Value>(body) else {
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"detail": [{"loc": ["body"], "msg": "invalid JSON", "type": "value_error"}]}))).into_response();
        };
        let name = b["username"].as_str().unwrap_or("").to_owned();
        if !valid_username(&name) || b["proxies"].as_object().is_none_or(|p| p.is_empty()) {
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(json!({"detail": [{"loc": ["body", "username"], "msg": "invalid user", "type": "value_error"}]}))).into_response();
        }
        if s.users.contains_key(&name) {
            return detail(StatusCode::CONFLICT, "User already exists");
        }
        let u = user_response(b);
        s.users.insert(name, u.clone());
        return axum::Json(u).into_response();
    }
    let Some(name) = path.strip_prefix("/api/user/") else {
        return detail(StatusCode::NOT_FOUND, "Not Found");
    };
    let name = url::form_urlencoded::parse(format!("k={name}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(u) = s.users.get_mut(&name) else {
        return detail(StatusCode::NOT_FOUND, "User not found");
    };
    match *method {
        Method::GET => axum::Json(u.clone()).into_response(),
        Method::DELETE => {
            s.users.remove(&name);
            detail(StatusCode::OK, "User successfully deleted")
        }
        Method::PUT => {
            let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            if let Some(m) = b.as_object() {
                for (k, v) in m {
                    if v.is_null()
                        || k == "username"
                        || (k == "proxies" && v.as_object().is_some_and(|p| p.is_empty()))
                    {
                        continue;
                    }
                    u[k.as_str()] = v.clone();
                }
            }
            let limit = u["data_limit"].as_i64().unwrap_or(0);
            if u["status"] == "active"
                && limit > 0
                && u["used_traffic"].as_i64().unwrap_or(0) >= limit
            {
                u["status"] = json!("limited");
            }
            axum::Json(u.clone()).into_response()
        }
        _ => detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}
