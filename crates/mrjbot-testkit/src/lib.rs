//! Test harness: starts the real control plane (the same `mrjbot::start` that `main`
//! calls) on `127.0.0.1:0` against a fresh SQLite file or a fresh PostgreSQL database,
//! with a clock the test can move, and talks to it over real HTTP.
//!
//! PostgreSQL comes from `TEST_PG_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! When it is unreachable a local run skips the PostgreSQL cases with a message; under
//! `CI=true` they fail instead.

use anyhow::Context;
use mrjbot::config::Config;
use mrjbot_app::ManualClock;
use rand::RngCore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use std::sync::Arc;

/// Which database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new PostgreSQL database.
    Postgres,
}

/// Admin URL of the PostgreSQL server used for throwaway databases.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Creates a fresh PostgreSQL database and returns its URL and name, or `None` (after
/// printing why) when PostgreSQL is not available outside CI.
pub async fn fresh_pg_database() -> Option<(String, String)> {
    let admin = pg_admin_url();
    let conn = sqlx::PgConnection::connect(&admin).await;
    let mut conn = match conn {
        Ok(c) => c,
        Err(e) => {
            assert!(!in_ci(), "PostgreSQL is required in CI ({admin}): {e}");
            eprintln!("skipping PostgreSQL case: {admin} unreachable: {e}");
            return None;
        }
    };
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    let name = format!(
        "mrjbot_t_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .ok()?;
    let _ = conn.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    Some((format!("{base}/{name}"), name))
}

/// Drops a database made by [`fresh_pg_database`].
pub async fn drop_pg_database(name: &str) {
    if let Ok(mut c) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await;
        let _ = c.close().await;
    }
}

/// A running control plane for one test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The services behind the server.
    pub app: mrjbot_app::App,
    /// The clock the server uses; `advance` it to travel in time.
    pub clock: Arc<ManualClock>,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The bootstrap admin's access token.
    pub admin_token: String,
    /// The bootstrap admin's password.
    pub admin_password: String,
    /// The engine.
    pub backend: Backend,
    /// The configuration it was started with.
    pub config: Config,
    running: Option<mrjbot::Running>,
    pg_db: Option<String>,
    _dir: tempfile::TempDir,
}

/// A response: status and JSON body (`Null` when the body is not JSON).
pub type Reply = (StatusCode, Value);

impl TestApp {
    /// Starts an app with the default test configuration; `None` when the backend is not
    /// available (PostgreSQL outside CI).
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts an app after letting the test adjust the configuration.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
        mrjbot_app::pay::install_crypto();
        if let Ok(filter) = std::env::var("MRJBOT_TEST_LOG") {
            // Logs of the app under test, for debugging a failing scenario.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().ok()?;
        let mut config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().join("data"),
            database_max_connections: 4,
            ..Config::default()
        };
        config.auth.login_per_minute = 10_000;
        config.auth.login_burst = 1_000;
        let mut pg_db = None;
        if backend == Backend::Postgres {
            let (url, name) = fresh_pg_database().await?;
            config.database_url = Some(url);
            pg_db = Some(name);
        }
        adjust(&mut config);
        let clock = Arc::new(ManualClock::default());
        let running = match mrjbot::start(&config, clock.clone()).await {
            Ok(r) => r,
            Err(e) => panic!("the app did not start: {e:#}"),
        };
        let (user, pw) = running.initial_admin.clone().unwrap_or_default();
        let http = match reqwest::Client::builder().build() {
            Ok(c) => c,
            Err(e) => panic!("building the test HTTP client failed: {e}"),
        };
        let base = format!("http://{}", running.addr);
        let mut t = TestApp {
            base,
            app: running.app.clone(),
            clock,
            http,
            admin_token: String::new(),
            admin_password: pw.clone(),
            backend,
            config,
            running: Some(running),
            pg_db,
            _dir: dir,
        };
        t.admin_token = t
            .login(&user, &pw)
            .await
            .unwrap_or_else(|e| panic!("admin login failed: {e:#}"));
        Some(t)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("request to {path} failed: {e}"),
        };
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(&self.admin_token), None)
            .await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(&self.admin_token), Some(body))
            .await
    }

    /// PATCH JSON as the admin.
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(&self.admin_token), Some(body))
            .await
    }

    /// DELETE as the admin.
    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, Some(&self.admin_token), None)
            .await
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let (s, v) = self
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        anyhow::ensure!(s == StatusCode::OK, "login returned {s}: {v}");
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token")
    }

    /// Creates a staff or customer account with one role and returns (id, access token).
    pub async fn user_with_role(&self, username: &str, role: &str) -> (i64, String) {
        let pw = "test-password-1";
        let (s, v) = self
            .post(
                "/api/v1/users",
                json!({"username": username, "password": pw, "roles": [role]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "creating {username}: {v}");
        let id = v["id"].as_i64().unwrap_or_default();
        let token = self
            .login(username, pw)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        (id, token)
    }

    /// Moves the clock forward and signs the admin in again (the old token may expire).
    pub async fn travel(&mut self, d: std::time::Duration) {
        self.clock.advance(d);
        self.admin_token = self
            .login("admin", &self.admin_password)
            .await
            .unwrap_or_else(|e| panic!("admin login failed: {e:#}"));
    }

    /// Sends a GET without authentication and returns status, headers and body text
    /// (for endpoints that do not answer JSON, like `/sub/{token}`).
    pub async fn fetch(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let mut req = self.http.get(format!("{}{}", self.base, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => panic!("request to {path} failed: {e}"),
        };
        let status = resp.status();
        let h = resp.headers().clone();
        (status, h, resp.text().await.unwrap_or_default())
    }

    /// Starts a second server on the same database (another replica), sharing this
    /// one's clock and admin account.
    pub async fn replica(&self) -> TestApp {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        let running = match mrjbot::start(&config, self.clock.clone()).await {
            Ok(r) => r,
            Err(e) => panic!("the replica did not start: {e:#}"),
        };
        let mut t = TestApp {
            base: format!("http://{}", running.addr),
            app: running.app.clone(),
            clock: self.clock.clone(),
            http: self.http.clone(),
            admin_token: String::new(),
            admin_password: self.admin_password.clone(),
            backend: self.backend,
            config,
            running: Some(running),
            pg_db: None,
            _dir: dir,
        };
        t.admin_token = t
            .login("admin", &t.admin_password)
            .await
            .unwrap_or_else(|e| panic!("admin login on the replica failed: {e:#}"));
        t
    }

    /// Stops the server but keeps its store: the control plane is "down" until
    /// [`TestApp::resume`].
    pub async fn pause(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop().await;
        }
    }

    /// Starts the server again on the same address and store after [`TestApp::pause`].
    pub async fn resume(&mut self) {
        let mut config = self.config.clone();
        config.listen = self.base.trim_start_matches("http://").to_owned();
        let mut last = None;
        // The port was just released; binding it again can take a moment.
        for _ in 0..50 {
            match mrjbot::start(&config, self.clock.clone()).await {
                Ok(r) => {
                    self.app = r.app.clone();
                    self.running = Some(r);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the server did not start again: {last:?}");
    }

    /// Stops the server and drops the PostgreSQL database.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.stop().await;
        }
        if let Some(db) = self.pg_db.take() {
            drop_pg_database(&db).await;
        }
    }
}

pub mod cores;
pub mod fakes;
pub mod receipts;
