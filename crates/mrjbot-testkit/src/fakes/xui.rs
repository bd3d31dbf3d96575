//! A local 3x-UI panel (spec §1) in the generation a test picks: base path, login with
//! `success` in the body (failures are HTTP 200), the session cookie `session` (< 2.3.8)
//! or `3x-ui`, anonymous API answered by redirect / 401 (< 2.8.4) or 404 (2.8.4+, 401 on
//! v3 with `X-Requested-With`), v3 CSRF on every unsafe method (login included), v3
//! Bearer API tokens, the v3.1 `/panel/api/clients` API (inbound client routes gone),
//! `settings` as JSON strings, "Duplicate email" refusals and per-client counters in
//! `clientStats`.
//!
//! Test controls: [`FakeXui::add_traffic`], [`FakeXui::clients`], [`FakeXui::add_inbound`],
//! [`FakeXui::seed_client`], and faults on the next API calls ([`Fault`]).

use super::{Served, serve};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Which 3x-UI release the fake behaves like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum XuiVersion {
    /// 3x-ui v1.x: `/xui/API/inbounds`, cookie `session`, redirect when anonymous.
    V1,
    /// 2.3: `/panel/api/inbounds`, cookie `session`.
    V2_3,
    /// 2.8.0: cookie `3x-ui`, redirect / 401 when anonymous.
    V2_8,
    /// 2.9: anonymous API answers 404.
    V2_9,
    /// 3.0: CSRF tokens and Bearer API tokens.
    V3_0,
    /// 3.1: client operations under `/panel/api/clients`.
    V3_1,
}

/// A fault the next API calls suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally (to aim a later fault at a particular call).
    Pass,
    /// Answer HTTP 500 without doing anything.
    Error500,
    /// Never answer (past any client timeout), without doing anything.
    Hang,
    /// Do the change, then never answer: the answer is lost.
    ApplyThenHang,
}

#[derive(Debug, Clone)]
struct Inbound {
    id: i64,
    protocol: String,
    port: i64,
    tag: String,
    stream: Value,
    settings: Value,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashSet<String>,
    csrf: HashMap<String, String>,
    inbounds: Vec<Inbound>,
    traffic: HashMap<String, (i64, i64)>,
    faults: VecDeque<Fault>,
    next_id: i64,
    next_session: u64,
}

#[derive(Debug)]
struct Shared {
    version: XuiVersion,
    base_path: String,
    username: String,
    password: String,
    token: Option<String>,
    state: Mutex<Inner>,
}

/// A running fake 3x-UI panel; stops when dropped.
#[derive(Debug)]
pub struct FakeXui {
    served: Served,
    shared: Arc<Shared>,
}

fn ok(obj: Value) -> Response {
    axum::Json(json!({"success": true, "msg": "", "obj": obj})).into_response()
}

fn refuse(msg: &str) -> Response {
    axum::Json(json!({"success": false, "msg": msg, "obj": null})).into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

impl FakeXui {
    /// Starts a panel of `version` under `base_path` (`/` or `/Xk3pQ9/`) with one admin.
    pub async fn start(
        version: XuiVersion,
        base_path: &str,
        username: &str,
        password: &str,
        token: Option<&str>,
    ) -> anyhow::Result<FakeXui> {
        let bp = format!("/{}/", base_path.trim_matches('/')).replace("//", "/");
        let shared = Arc::new(Shared {
            version,
            base_path: bp,
            username: username.into(),
            password: password.into(),
            token: token.map(str::to_owned),
            state: Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        Ok(FakeXui {
            served: serve(router).await?,
            shared,
        })
    }

    /// The panel URL with its base path (what a seller types).
    pub fn url(&self) -> String {
        format!("{}{}", self.served.base_url, self.shared.base_path)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an inbound (`settings` and `stream` as objects) and returns its id.
    pub fn add_inbound(&self, protocol: &str, port: i64, settings: Value, stream: Value) -> i64 {
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        let mut settings = settings;
        if settings.get("clients").is_none() {
            settings["clients"] = json!([]);
        }
        s.inbounds.push(Inbound {
            id,
            protocol: protocol.into(),
            port,
            tag: format!("inbound-{port}"),
            stream,
            settings,
        });
        id
    }

    /// Puts a client into an inbound directly (the seller's own accounts).
    pub fn seed_client(&self, inbound_id: i64, client: Value) {
        let mut s = self.lock();
        if let Some(i) = s.inbounds.iter_mut().find(|i| i.id == inbound_id)
            && let Some(cs) = i.settings["clients"].as_array_mut()
        {
            cs.push(client);
        }
    }

    /// Adds traffic to a client's counters.
    pub fn add_traffic(&self, email: &str, up: i64, down: i64) {
        let mut s = self.lock();
        let t = s.traffic.entry(email.into()).or_default();
        t.0 += up;
        t.1 += down;
    }

    /// Every client: (inbound id, client object, up, down).
    pub fn clients(&self) -> Vec<(i64, Value, i64, i64)> {
        let s = self.lock();
        let mut out = Vec::new();
        for i in &s.inbounds {
            for c in i.settings["clients"].as_array().into_iter().flatten() {
                let (up, down) = s
                    .traffic
                    .get(c["email"].as_str().unwrap_or(""))
                    .copied()
                    .unwrap_or_default();
                out.push((i.id, c.clone(), up, down));
            }
        }
        out
    }

    /// The next `n` API calls (login excluded) suffer `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        for _ in 0..n {
            s.faults.push_back(fault);
        }
    }

    /// Ends every session (as a panel restart or `sessionMaxAge` does).
    pub fn drop_sessions(&self) {
        let mut s = self.lock();
        s.sessions.clear();
        s.csrf.clear();
    }
}

impl Shared {
    fn cookie_name(&self) -> &'static str {
        if self.version <= XuiVersion::V2_3 {
            "session"
        } else {
            "3x-ui"
        }
    }

    fn session_of(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.cookie_name();
        headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|p| p.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }

    fn set_cookie(&self, sid: &str) -> String {
        format!(
            "{}={sid}; Path={}; HttpOnly",
            self.cookie_name(),
            self.base_path
        )
    }
}

fn form_or_json(headers: &HeaderMap, body: &[u8]) -> Value {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let mut m = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        m.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    Value::Object(m)
}

fn client_key<'a>(protocol: &str, c: &'a Value) -> &'a str {
    let f = match protocol {
        "trojan" => "password",
        "shadowsocks" => "email",
        "hysteria" | "hysteria2" => "auth",
        _ => "id",
    };
    c[f].as_str().unwrap_or("")
}

fn inbound_json(i: &Inbound, traffic: &HashMap<String, (i64, i64)>) -> Value {
    let stats: Vec<Value> = i.settings["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let email = c["email"].as_str().unwrap_or("");
            let (up, down) = traffic.get(email).copied().unwrap_or_default();
            json!({"id": 0, "inboundId": i.id, "enable": c["enable"], "email": email, "up": up, "down": down,
                   "expiryTime": c["expiryTime"], "total": c["totalGB"], "reset": 0})
        })
        .collect();
    json!({"id": i.id, "up": 0, "down": 0, "total": 0, "remark": format!("in-{}", i.port), "enable": true,
           "expiryTime": 0, "listen": "", "port": i.port, "protocol": i.protocol, "tag": i.tag,
           "settings": i.settings.to_string(), "streamSettings": i.stream.to_string(),
           "sniffing": "{}", "clientStats": stats})
}

async fn handle(
    State(sh): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(path) = uri.path().strip_prefix(sh.base_path.as_str()) else {
        return not_found();
    };
    let path = path.to_owned();
    let v = sh.version;
    let xhr = headers
        .get("x-requested-with")
        .is_some_and(|h| h == "XMLHttpRequest");
    // v3: CSRF token endpoint (creates an anonymous session).
    if path == "csrf-token" && method == Method::GET {
        if v < XuiVersion::V3_0 {
            return not_found();
        }
        let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        s.next_session += 1;
        let sid = format!("anon{}", s.next_session);
        let token = format!("csrf{}", s.next_session);
        s.csrf.insert(sid.clone(), token.clone());
        let mut r = ok(json!(token));
        if let Ok(h) = sh.set_cookie(&sid).parse() {
            r.headers_mut().insert("set-cookie", h);
        }
        return r;
    }
    let sid = sh.session_of(&headers);
    let csrf_ok = || {
        if v < XuiVersion::V3_0 || method == Method::GET {
            return true;
        }
        let s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        let want = sid.as_ref().and_then(|id| s.csrf.get(id));
        let got = headers.get("x-csrf-token").and_then(|h| h.to_str().ok());
        want.is_some() && want.map(String::as_str) == got
    };
    if path == "login" && method == Method::POST {
        if !csrf_ok() {
            return (StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
        }
        let f = form_or_json(&headers, &body);
        if f["username"].as_str() != Some(&sh.username)
            || f["password"].as_str() != Some(&sh.password)
        {
            return refuse("Invalid username or password");
        }
        let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        s.next_session += 1;
        let new_sid = format!("s{}", s.next_session);
        s.sessions.insert(new_sid.clone());
        if let Some(t) = sid.as_ref().and_then(|old| s.csrf.get(old).cloned()) {
            s.csrf.insert(new_sid.clone(), t);
        }
        let mut r = ok(Value::Null);
        if let Ok(h) = sh.set_cookie(&new_sid).parse() {
            r.headers_mut().insert("set-cookie", h);
        }
        return r;
    }
    let is_api = path.starts_with("panel/") || path.starts_with("xui/");
    if !is_api {
        return not_found();
    }
    let bearer = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "));
    let by_token = v >= XuiVersion::V3_0
        && path.starts_with("panel/api/")
        && bearer.is_some()
        && bearer == sh.token.as_deref();
    let by_session = {
        let s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        sid.as_ref().is_some_and(|id| s.sessions.contains(id))
    };
    if !by_token && !by_session {
        return match v {
            XuiVersion::V1 | XuiVersion::V2_3 | XuiVersion::V2_8 if xhr => (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"success": false, "msg": "unauthorized"})),
            )
                .into_response(),
            XuiVersion::V1 | XuiVersion::V2_3 | XuiVersion::V2_8 => (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", sh.base_path.clone())],
            )
                .into_response(),
            XuiVersion::V3_0 | XuiVersion::V3_1 if xhr => StatusCode::UNAUTHORIZED.into_response(),
            _ => not_found(),
        };
    }
    if !by_token && !csrf_ok() {
        return (StatusCode::FORBIDDEN, "invalid CSRF token").into_response();
    }
    let fault = sh
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .faults
        .pop_front();
    match fault {
        Some(Fault::Error500) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return not_found();
        }
        _ => {}
    }
    let answer = api(&sh, &method, &path, &headers, &body);
    if fault == Some(Fault::ApplyThenHang) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    answer
}

fn api(sh: &Shared, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let v = sh.version;
    let prefix = match v {
        XuiVersion::V1 => "xui/API/inbounds/",
        _ => "panel/api/inbounds/",
    };
    let mut s = sh.state.lock().unwrap_or_else(|p| p.into_inner());
    let s = &mut *s;
    if v == XuiVersion::V3_1
        && let Some(rest) = path.strip_prefix("panel/api/clients/")
    {
        let parts: Vec<&str> = rest.split('/').collect();
        let decode = |x: &str| {
            url::form_urlencoded::parse(format!("k={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return match (method.as_str(), parts.as_slice()) {
            ("GET", ["list"]) => {
                let all: Vec<Value> = s
                    .inbounds
                    .iter()
                    .flat_map(|i| {
                        i.settings["clients"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect();
                ok(json!(all))
            }
            ("POST", ["add"]) => {
                let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let client = b["client"].clone();
                let email = client["email"].as_str().unwrap_or("").to_owned();
                if email.is_empty() || email_taken(s, &email) {
                    return refuse(&format!("Duplicate email: {email}"));
                }
                let ids: Vec<i64> = b["inboundIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64)
                    .collect();
                for i in s.inbounds.iter_mut().filter(|i| ids.contains(&i.id)) {
                    if let Some(cs) = i.settings["clients"].as_array_mut() {
                        cs.push(client.clone());
                    }
                }
                ok(Value::Null)
            }
            ("POST", ["update", email]) => {
                let email = decode(email);
                let client: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let mut found = false;
                for i in &mut s.inbounds {
                    for c in i.settings["clients"].as_array_mut().into_iter().flatten() {
                        if c["email"].as_str() == Some(&email) {
                            *c = client.clone();
                            found = true;
                        }
                    }
                }
                if found {
                    ok(Value::Null)
                } else {
                    refuse("client not found")
                }
            }
            ("POST", ["del", email]) => {
                let email = decode(email);
                for i in &mut s.inbounds {
                    if let Some(cs) = i.settings["clients"].as_array_mut() {
                        cs.retain(|c| c["email"].as_str() != Some(&email));
                    }
                }
                ok(Value::Null)
            }
            _ => not_found(),
        };
    }
    let Some(rest) = path.strip_prefix(prefix) else {
        return not_found();
    };
    let parts: Vec<String> = rest
        .split('/')
        .map(|x| {
            url::form_urlencoded::parse(format!("k={x}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let client_routes = v != XuiVersion::V3_1;
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["list"]) => ok(Value::Array(
            s.inbounds
                .iter()
                .map(|i| inbound_json(i, &s.traffic))
                .collect(),
        )),
        ("POST", ["addClient"]) if client_routes => {
            let f = form_or_json(headers, body);
            let id = f["id"]
                .as_i64()
                .or_else(|| f["id"].as_str().and_then(|x| x.parse().ok()))
                .unwrap_or(0);
            let settings: Value =
                serde_json::from_str(f["settings"].as_str().unwrap_or("")).unwrap_or(Value::Null);
            let new: Vec<Value> = settings["clients"].as_array().cloned().unwrap_or_default();
            let Some(idx) = s.inbounds.iter().position(|i| i.id == id) else {
                return refuse("inbound not found");
            };
            for c in &new {
                let email = c["email"].as_str().unwrap_or("");
                if email.is_empty() || email_taken(s, email) {
                    return refuse(&format!("Duplicate email: {email}"));
                }
                if client_key(&s.inbounds[idx].protocol, c).is_empty() {
                    return refuse("empty client ID");
                }
            }
            if let Some(cs) = s.inbounds[idx].settings["clients"].as_array_mut() {
                cs.extend(new);
            }
            ok(Value::Null)
        }
        ("POST", ["updateClient", key]) if client_routes => {
            let f = form_or_json(headers, body);
            let id = f["id"]
                .as_i64()
                .or_else(|| f["id"].as_str().and_then(|x| x.parse().ok()))
                .unwrap_or(0);
            let settings: Value =
                serde_json::from_str(f["settings"].as_str().unwrap_or("")).unwrap_or(Value::Null);
            let Some(new) = settings["clients"].get(0).cloned() else {
                return refuse("no client");
            };
            let Some(i) = s.inbounds.iter_mut().find(|i| i.id == id) else {
                return refuse("inbound not found");
            };
            let protocol = i.protocol.clone();
            for c in i.settings["clients"].as_array_mut().into_iter().flatten() {
                if client_key(&protocol, c) == *key {
                    *c = new;
                    return ok(Value::Null);
                }
            }
            refuse("client not found")
        }
        ("POST", [id, "delClient", key]) if client_routes => {
            let id: i64 = id.parse().unwrap_or(0);
            let Some(i) = s.inbounds.iter_mut().find(|i| i.id == id) else {
                return refuse("inbound not found");
            };
            let protocol = i.protocol.clone();
            if let Some(cs) = i.settings["clients"].as_array_mut() {
                cs.retain(|c| client_key(&protocol, c) != *key);
            }
            ok(Value::Null)
        }
        _ => not_found(),
    }
}

fn email_taken(s: &Inner, email: &str) -> bool {
    s.inbounds.iter().any(|i| {
        i.settings["clients"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["email"].as_str() == Some(email)))
    })
}
