//! The binary as an operator uses it: subcommands, configuration errors that name the
//! setting, admin management from scripts, and restart safety after `kill -9`.

use crate::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mrjbot");

/// A command for the binary with no inherited store or `MRJBOT_*` settings.
fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).env_remove("DATABASE_URL");
    for (k, _) in std::env::vars() {
        if k.starts_with("MRJBOT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn run(
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: Option<&str>,
    dir: &std::path::Path,
) -> (bool, String, String) {
    let mut cmd = command(dir);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {BIN}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `mrjbot admin create --username NAME --password-stdin --data-dir store`.
fn create_admin(
    d: &std::path::Path,
    name: &str,
    password: Option<&str>,
    envs: &[(&str, &str)],
) -> (bool, String, String) {
    run(
        &[
            "admin",
            "create",
            "--username",
            name,
            "--password-stdin",
            "--data-dir",
            "store",
        ],
        envs,
        password,
        d,
    )
}

#[test]
fn subcommands_and_config_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let (ok, out, _) = run(&["version"], &[], None, d);
    assert!(ok && out.starts_with("mrjbot "), "{out}");
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["admin", "create", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let (ok, out, _) = run(&args, &[], None, d);
        assert!(ok && out.contains("Usage"), "{args:?}: {out}");
    }

    let (ok, _, err) = run(
        &["config", "check", "--data-dir", "store"],
        &[("MRJBOT_LISTEN", "nonsense")],
        None,
        d,
    );
    assert!(!ok && err.contains("listen"), "{err}");
    let (ok, _, err) = run(
        &["config", "check"],
        &[("DATABASE_URL", "mysql://x")],
        None,
        d,
    );
    assert!(!ok && err.contains("database_url"), "{err}");
    std::fs::write(d.join("mrjbot.toml"), "log_format = \"xml\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, err) = run(&["config", "check"], &[], None, d);
    assert!(!ok && err.contains("log_format"), "{err}");
    std::fs::write(d.join("mrjbot.toml"), "listn = \"1\"\n").unwrap_or_else(|e| panic!("{e}"));
    let (ok, _, err) = run(&["config", "check"], &[], None, d);
    assert!(
        !ok && err.contains("listn"),
        "unknown keys are named: {err}"
    );
    // Environment wins over the file.
    std::fs::write(
        d.join("mrjbot.toml"),
        "log_level = \"debug\"\nlisten = \"127.0.0.1:1\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (ok, out, err) = run(
        &["config", "check", "--data-dir", "store"],
        &[("MRJBOT_LISTEN", "127.0.0.1:9999")],
        None,
        d,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("listen = \"127.0.0.1:9999\"") && out.contains("log_level = \"debug\""),
        "{out}"
    );
    std::fs::remove_file(d.join("mrjbot.toml")).unwrap_or_else(|e| panic!("{e}"));

    let (ok, out, err) = run(&["migrate", "--data-dir", "store"], &[], None, d);
    assert!(ok && out.contains("sqlite"), "{out}{err}");
    assert!(d.join("store/mrjbot.db").exists());
    let (ok, out, err) = create_admin(d, "ops", Some("ops-password-1\n"), &[]);
    assert!(ok && out.contains("created admin `ops`"), "{out}{err}");
    let (ok, _, err) = create_admin(d, "ops", Some("ops-password-1\n"), &[]);
    assert!(!ok && err.contains("already"), "{err}");
    let (ok, _, err) = create_admin(d, "weak", Some("123\n"), &[]);
    assert!(!ok && err.contains("password"), "{err}");
    let (ok, out, err) = run(
        &[
            "admin",
            "reset-password",
            "--username",
            "ops",
            "--data-dir",
            "store",
        ],
        &[],
        None,
        d,
    );
    assert!(
        ok && out.contains("password: "),
        "a generated password is printed: {out}{err}"
    );
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_123)
}

async fn start_server(dir: &std::path::Path, port: u16, db_url: Option<&str>) -> (Server, String) {
    mrjbot_app::pay::install_crypto();
    let mut cmd = command(dir);
    cmd.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        "store",
    ])
    .env("MRJBOT_AUTH__LOGIN_BURST", "1000")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(u) = db_url {
        cmd.env("DATABASE_URL", u);
    }
    let server = Server(cmd.spawn().unwrap_or_else(|e| panic!("{e}")));
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if reqwest::get(format!("{base}/readyz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return (server, base);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not become ready");
}

async fn restart_safety(db_url: Option<String>) {
    let (dir, mut server, base, token) = served(db_url.as_deref()).await;
    let d = dir.path();
    let http = reqwest::Client::new();

    // A burst of writes from 8 writers; kill -9 while it runs.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let (http, base, token, acked) = (
            http.clone(),
            base.clone(),
            token.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0..10_000i64 {
                let tg = 100_000 + w * 100_000 + i;
                let r = http
                    .post(format!("{base}/api/v1/users"))
                    .bearer_auth(&token)
                    .json(
                        &json!({"telegram_id": tg, "display_name": format!("writer {w} row {i}")}),
                    )
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        if let Ok(mut a) = acked.lock() {
                            a.push(tg);
                        }
                    }
                    _ => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no graceful shutdown, no WAL checkpoint.
    let _ = server.0.kill();
    let _ = server.0.wait();
    for w in writers {
        let _ = w.await;
    }
    let acked = acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(
        acked.len() > 20,
        "the burst was running ({} writes acknowledged)",
        acked.len()
    );

    let (_server, base) = start_server(d, free_port(), db_url.as_deref()).await;
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "ops", "password": "ops-password-1"}));
    let token: Value = login
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut seen = std::collections::HashSet::new();
    let mut offset = 0;
    loop {
        let page: Value = http
            .get(format!("{base}/api/v1/users?limit=500&offset={offset}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_default();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        for u in &items {
            if let Some(tg) = u["telegram_id"].as_i64() {
                // No half-written row: every visible user is complete, with its role.
                assert!(
                    u["display_name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("writer ")),
                    "{u}"
                );
                assert_eq!(u["roles"], json!(["user"]), "{u}");
                seen.insert(tg);
            }
        }
        if items.len() < 500 {
            break;
        }
        offset += 500;
    }
    let lost: Vec<&i64> = acked.iter().filter(|tg| !seen.contains(tg)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // At most the in-flight writes (one per writer) may exist without an acknowledgement.
    assert!(
        seen.len() <= acked.len() + 8,
        "{} rows, {} acknowledged",
        seen.len(),
        acked.len()
    );
}

#[tokio::test]
async fn kill_9_loses_nothing_committed_sqlite() {
    restart_safety(None).await;
}

#[tokio::test]
async fn kill_9_loses_nothing_committed_postgres() {
    let Some((url, name)) = mrjbot_testkit::fresh_pg_database().await else {
        return;
    };
    restart_safety(Some(url)).await;
    mrjbot_testkit::drop_pg_database(&name).await;
}

/// A fresh store with the admin `ops` and a server on it: (dir, server, base URL, the
/// admin's access token).
async fn served(db_url: Option<&str>) -> (tempfile::TempDir, Server, String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let envs: Vec<(&str, &str)> = db_url.map(|u| ("DATABASE_URL", u)).into_iter().collect();
    let (ok, _, err) = create_admin(dir.path(), "ops", Some("ops-password-1"), &envs);
    assert!(ok, "{err}");
    let (server, base) = start_server(dir.path(), free_port(), db_url).await;
    let token = sign_in(&base, "ops", "ops-password-1").await;
    (dir, server, base, token)
}

/// Signs in to a subprocess server and returns the access token.
async fn sign_in(base: &str, user: &str, password: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    v["access_token"].as_str().unwrap_or_default().to_owned()
}

async fn call(
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A payment is confirmed, then the process dies with `kill -9` before the subscription
/// is delivered (its region has no serving node). After the restart the delivery happens
/// from the outbox, exactly once, without anyone paying again.
async fn delivery_survives_kill_9(db_url: Option<String>) {
    let (dir, mut server, base, admin) = served(db_url.as_deref()).await;
    let d = dir.path();
    let (s, node) = call(&base, &admin, Method::POST, "/api/v1/nodes", Some(json!({"name": "de-1", "kind": "agent", "address": "10.0.0.1", "region": "de", "is_enabled": false}))).await;
    assert_eq!(s, StatusCode::CREATED, "{node}");
    let (s, plan) = call(&base, &admin, Method::POST, "/api/v1/plans", Some(json!({"name": "DE", "duration_days": 30, "region": "de", "prices": [{"currency": "IRR", "amount_minor": 1_000_000}]}))).await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let (s, user) = call(
        &base,
        &admin,
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "cust", "password": "test-password-1", "roles": ["user"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{user}");
    let uid = user["id"].as_i64().unwrap_or_default();
    call(
        &base,
        &admin,
        Method::POST,
        &format!("/api/v1/users/{uid}/wallet/adjust"),
        Some(json!({"amount_minor": 1_000_000, "currency": "IRR", "note": "test"})),
    )
    .await;
    let cust = sign_in(&base, "cust", "test-password-1").await;
    let (s, order) = call(
        &base,
        &cust,
        Method::POST,
        "/api/v1/orders",
        Some(json!({"kind": "purchase", "plan_id": plan["id"], "currency": "IRR"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let oid = order["id"].as_i64().unwrap_or_default();
    let (s, pay) = call(
        &base,
        &cust,
        Method::POST,
        &format!("/api/v1/orders/{oid}/pay"),
        Some(json!({"method": "wallet"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{pay}");
    let (_, o) = call(
        &base,
        &admin,
        Method::GET,
        &format!("/api/v1/orders/{oid}"),
        None,
    )
    .await;
    assert_eq!(o["status"], "paid");
    assert!(o["fulfilled_at"].is_null(), "{o}");
    let _ = server.0.kill();
    let _ = server.0.wait();

    let (_server, base) = start_server(d, free_port(), db_url.as_deref()).await;
    let admin = sign_in(&base, "ops", "ops-password-1").await;
    // The data plane comes back; the outbox item committed with the payment delivers.
    let (s, v) = call(
        &base,
        &admin,
        Method::PATCH,
        &format!("/api/v1/nodes/{}", node["id"]),
        Some(json!({"is_enabled": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let started = Instant::now();
    let o = loop {
        let (_, o) = call(
            &base,
            &admin,
            Method::GET,
            &format!("/api/v1/orders/{oid}"),
            None,
        )
        .await;
        if !o["fulfilled_at"].is_null() {
            break o;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not delivered after the restart: {o}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, subs) = call(
        &base,
        &admin,
        Method::GET,
        &format!("/api/v1/subscriptions?user_id={uid}"),
        None,
    )
    .await;
    assert_eq!(subs["total"], 1, "{subs}");
    assert_eq!(o["subscription_id"], subs["items"][0]["id"]);
    let (_, w) = call(
        &base,
        &admin,
        Method::GET,
        &format!("/api/v1/users/{uid}/wallet"),
        None,
    )
    .await;
    assert_eq!(w["balances"][0]["amount_minor"], 0, "paid once: {w}");
}

#[tokio::test]
async fn delivery_survives_kill_9_sqlite() {
    delivery_survives_kill_9(None).await;
}

#[tokio::test]
async fn delivery_survives_kill_9_postgres() {
    let Some((url, name)) = mrjbot_testkit::fresh_pg_database().await else {
        return;
    };
    delivery_survives_kill_9(Some(url)).await;
    mrjbot_testkit::drop_pg_database(&name).await;
}

/// `mrjbot import 3x-ui` as a seller runs it: the binary against a panel (a 3.0 fake with
/// CSRF), into the embedded store; a second run imports nothing twice.
#[tokio::test]
async fn import_takes_over_a_panel_from_the_command_line() {
    use mrjbot_testkit::fakes::xui::{FakeXui, XuiVersion};
    let xui = FakeXui::start(XuiVersion::V3_0, "/Xk3pQ9/", "admin", "pw", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let inbound = xui.add_inbound(
        "vless",
        443,
        json!({}),
        json!({"network": "tcp", "security": "none"}),
    );
    for (i, uuid) in [
        "a8308d11-a541-4591-ad00-31cea68f8bee",
        "7f2ee095-268e-4b72-a912-26c91703ae0c",
    ]
    .iter()
    .enumerate()
    {
        xui.seed_client(
            inbound,
            json!({"id": uuid, "email": format!("c{i}"), "enable": true, "totalGB": 0,
                   "expiryTime": 0, "subId": format!("s{i}")}),
        );
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = xui.url();
    let import = move |dir: std::path::PathBuf, url: String| {
        tokio::task::spawn_blocking(move || {
            run(
                &[
                    "import",
                    "3x-ui",
                    "--url",
                    &url,
                    "--username",
                    "admin",
                    "--password",
                    "pw",
                    "--data-dir",
                    "store",
                ],
                &[],
                None,
                &dir,
            )
        })
    };
    let (ok, out, err) = import(dir.path().to_owned(), url.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("imported: 2  skipped: 0  failed: 0"), "{out}");
    let (ok, out, err) = import(dir.path().to_owned(), url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("(existing)"), "{out}");
    assert!(out.contains("imported: 0  skipped: 2  failed: 0"), "{out}");
    // A panel that refuses the password: a clear error, nothing imported.
    let bad = FakeXui::start(XuiVersion::V2_9, "/", "admin", "other", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, out, err) = import(dir.path().to_owned(), bad.url())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!ok, "{out}");
    assert!(err.contains("3x-ui"), "{err}");
}
