//! End to end on real cores, loopback only: the control plane (this repo's server), a node
//! agent (`mrjbot-node`) driving a real V2Ray 4.34 core, and customers' VPN clients
//! (sing-box, configured from the product's own share links) fetching a file through it.
//! Checks that paying customers get through, that the bytes they move are what the
//! control plane counts, that a disabled customer is cut off within 30 s while another
//! keeps working, and that a killed core and a control plane outage lose nothing.

use crate::*;
use mrjbot_domain::proxy::ShareLink;
use mrjbot_testkit::cores::{self, Core, Origin};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BLOB: usize = 5_000_000;

/// Debian's v2ray (installed by scripts/test-deps.sh), or `V2RAY_BIN`. `None` (skip)
/// outside CI when missing; in CI a missing core fails the test.
fn v2ray_bin() -> Option<PathBuf> {
    let p = std::env::var_os("V2RAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/v2ray"));
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "v2ray is missing at {} (run scripts/test-deps.sh)",
            p.display()
        );
    }
    eprintln!("skipped: no v2ray at {}", p.display());
    None
}

/// The pid of the v2ray core whose command line names `dir`.
fn core_pid(dir: &std::path::Path) -> Option<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        (cmd.contains("v2ray") && cmd.contains(&needle) && !cmd.contains("mrjbot")).then_some(pid)
    })
}

/// A customer's VPN app: sing-box built from the first link of their subscription.
struct Customer {
    id: i64,
    port: u16,
    _client: Core,
    /// Its own directory: sing-box locks its cache file.
    _dir: tempfile::TempDir,
}

impl Customer {
    async fn connect(t: &TestApp, sb: &std::path::Path, id: i64, proto: &str) -> Customer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let (_, sub) = t.get(&format!("/api/v1/subscriptions/{id}")).await;
        let token = sub["token"].as_str().unwrap_or_default().to_owned();
        let (s, _, body) = t.fetch(&format!("/sub/{token}?format=plain"), &[]).await;
        assert_eq!(s, StatusCode::OK);
        let text = body
            .lines()
            .find(|l| l.starts_with(&format!("{proto}://")))
            .unwrap_or_else(|| panic!("no {proto} link in {body}"));
        let link = ShareLink::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let port = cores::free_port();
        let client = Core::start(sb, &crate::client::client_for(&link, port), dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        Customer {
            id,
            port,
            _client: client,
            _dir: dir,
        }
    }

    async fn fetch(&self, origin: &Origin, path: &str) -> anyhow::Result<Vec<u8>> {
        cores::fetch_via_socks(self.port, &origin.host_port(), path).await
    }

    /// Fetches until it works (the agent is still applying), up to `limit`.
    async fn fetch_eventually(&self, origin: &Origin, path: &str, limit: Duration) -> Vec<u8> {
        let end = Instant::now() + limit;
        loop {
            match self.fetch(origin, path).await {
                Ok(b) => return b,
                Err(e) if Instant::now() > end => {
                    panic!("customer {} never got through: {e:#}", self.id)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}

async fn used(t: &TestApp, id: i64) -> i64 {
    let (_, v) = t.get(&format!("/api/v1/subscriptions/{id}")).await;
    v["used_bytes"].as_i64().unwrap_or(-1)
}

/// Waits until the customer's recorded usage reaches `at_least`.
async fn used_reaches(t: &TestApp, id: i64, at_least: i64, limit: Duration) -> i64 {
    let end = Instant::now() + limit;
    loop {
        let u = used(t, id).await;
        if u >= at_least {
            return u;
        }
        assert!(
            Instant::now() < end,
            "customer {id}: {u} bytes counted, {at_least} expected"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn real_cores_carry_paying_customers_and_count_their_bytes() {
    let (Some(v2ray), Some(sb)) = (v2ray_bin(), cores::require_sing_box()) else {
        return;
    };
    let mut t = app!(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let state = dir.path().join("agent");
    let origin = Origin::start(BLOB)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // The seller's node: VLESS and VMess on loopback, two customers on a 1 GB plan.
    let (vless, vmess) = (cores::free_port(), cores::free_port());
    let (s, node) = t
        .post(
            "/api/v1/nodes",
            json!({"name": "local", "kind": "agent", "address": "127.0.0.1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{node}");
    let node_id = node["id"].as_i64().unwrap_or_default();
    for ib in [
        json!({"tag": "vless-in", "protocol": "vless", "port": vless}),
        json!({"tag": "vmess-in", "protocol": "vmess", "port": vmess}),
    ] {
        let (s, v) = t
            .post(&format!("/api/v1/nodes/{node_id}/inbounds"), ib)
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, plan) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Month", "duration_days": 30, "data_limit_bytes": 1_000_000_000i64,
            "prices": [{"currency": "IRR", "amount_minor": 1_000_000}]}),
        )
        .await;
    let mut subs = Vec::new();
    for tg in [61, 62] {
        let (_, u) = t.post("/api/v1/users", json!({"telegram_id": tg})).await;
        let (s, sub) = t
            .post(
                "/api/v1/subscriptions",
                json!({"user_id": u["id"], "plan_id": plan["id"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sub}");
        subs.push(sub["id"].as_i64().unwrap_or_default());
    }

    // The agent beside the core.
    let cfg = mrjbot_node::config::Config::from_raw(mrjbot_node::config::RawConfig {
        control_plane_url: Some(t.base.clone()),
        secret: node["secret"].as_str().map(str::to_owned),
        core: Some("v2ray".into()),
        core_bin: Some(v2ray),
        state_dir: Some(state.clone()),
        listen: Some("127.0.0.1".into()),
        api_port: Some(cores::free_port()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let agent = mrjbot_node::agent::Agent::new(cfg)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    // Both customers get through with the links the product gave them.
    let a = Customer::connect(&t, &sb, subs[0], "vless").await;
    let b = Customer::connect(&t, &sb, subs[1], "vmess").await;
    let started = Instant::now();
    let got = a
        .fetch_eventually(&origin, "/blob", Duration::from_secs(30))
        .await;
    assert_eq!(got.len(), BLOB);
    eprintln!("first customer through after {:?}", started.elapsed());
    assert_eq!(
        b.fetch_eventually(&origin, "/blob", Duration::from_secs(10))
            .await
            .len(),
        BLOB
    );
    // Heartbeats say the core runs (the node may still read as degraded: this machine's
    // CPU is busy building and testing).
    let end = Instant::now() + Duration::from_secs(25);
    loop {
        let (_, n) = t.get(&format!("/api/v1/nodes/{node_id}")).await;
        let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
        let health = mrjbot_db::nodes::recent_health(c.conn(), node_id, 1)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if health.first().is_some_and(|h| h.core_status == "running") {
            assert!(n["status"] == "online" || n["status"] == "degraded", "{n}");
            break;
        }
        assert!(
            Instant::now() < end,
            "no heartbeat with a running core: {n}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The dashboard's view: the agent, its core, and the desired state it runs.
    let end = Instant::now() + Duration::from_secs(25);
    loop {
        let (s, h) = t.get(&format!("/api/v1/nodes/{node_id}/health")).await;
        assert_eq!(s, StatusCode::OK, "{h}");
        assert_eq!(h["agent"]["core_kind"], "v2ray", "{h}");
        assert_eq!(h["desired_users"], 2, "{h}");
        if h["in_sync"] == true {
            assert!(
                h["agent"]["core_version"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("4.34"),
                "{h}"
            );
            break;
        }
        assert!(
            Instant::now() < end,
            "the agent never reported the current state: {h}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // What the control plane counts is what moved: the payload plus the HTTP request
    // and response headers (no protocol framing: V2Ray's user counters count payload).
    let ua = used_reaches(&t, subs[0], BLOB as i64, Duration::from_secs(40)).await;
    let ub = used_reaches(&t, subs[1], BLOB as i64, Duration::from_secs(20)).await;
    eprintln!("counted: vless {ua} B, vmess {ub} B for {BLOB} B of payload each");
    for u in [ua, ub] {
        assert!(
            u - BLOB as i64 <= 2_000,
            "counted {u} for {BLOB}: more than headers"
        );
    }

    // Disabled: the same client is refused within 30 s; the other customer is not.
    let (s, _) = t
        .post(
            &format!("/api/v1/subscriptions/{}/suspend", subs[0]),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let off = Instant::now();
    while a.fetch(&origin, "/").await.is_ok() {
        assert!(
            off.elapsed() < Duration::from_secs(30),
            "still connected after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("disabled customer cut off after {:?}", off.elapsed());
    assert_eq!(
        b.fetch(&origin, "/blob")
            .await
            .map(|b| b.len())
            .unwrap_or(0),
        BLOB
    );

    // The core dies a few seconds after the last download, before any usage report: the
    // agent's counter samples (every 2 s) keep those bytes, and it starts the core again
    // with every user.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pid = core_pid(&state).unwrap_or_else(|| panic!("no core running"));
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let killed = Instant::now();
    b.fetch_eventually(&origin, "/blob", Duration::from_secs(30))
        .await;
    assert_ne!(core_pid(&state), Some(pid));
    eprintln!("core back after {:?}", killed.elapsed());
    assert!(
        a.fetch(&origin, "/").await.is_err(),
        "the disabled customer came back"
    );

    // The control plane goes away for a minute: the node keeps serving; the usage of that
    // minute arrives when it returns.
    let before = used_reaches(&t, subs[1], 3 * BLOB as i64, Duration::from_secs(40)).await;
    t.pause().await;
    let outage = Instant::now();
    for _ in 0..2 {
        assert_eq!(
            b.fetch(&origin, "/blob")
                .await
                .map(|b| b.len())
                .unwrap_or(0),
            BLOB
        );
        tokio::time::sleep(Duration::from_secs(29)).await;
    }
    eprintln!("control plane down for {:?}", outage.elapsed());
    t.resume().await;
    let back = Instant::now();
    let after = used_reaches(
        &t,
        subs[1],
        before + 2 * BLOB as i64,
        Duration::from_secs(40),
    )
    .await;
    eprintln!(
        "usage of the outage counted {:?} after the control plane returned",
        back.elapsed()
    );
    assert!(
        after - before - 2 * BLOB as i64 <= 2 * 2_000,
        "{before} -> {after}"
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), running).await;
    t.stop().await;
}
