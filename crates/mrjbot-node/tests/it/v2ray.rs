//! The agent driving a real V2Ray 4.34 core, with a V2Ray client moving real bytes.

use crate::support::*;
use mrjbot_node_proto::DesiredState;
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::Duration;

const ALICE: &str = "a8308d11-a541-4591-ad00-31cea68f8bee";
const BOB: &str = "7f2ee095-268e-4b72-a912-26c91703ae0c";
const CAROL: &str = "44c98168-1e8c-44f0-a3e5-5170ad30c7a0";

/// Alice's cumulative (up, down) as the core itself counts them.
async fn core_alice(home: &AgentHome) -> (u64, u64) {
    let Ok(api) = mrjbot_node::grpc::Api::new(mrjbot_node_proto::CoreKind::V2ray, home.api_port)
    else {
        return (0, 0);
    };
    match api.user_counters().await {
        Ok(c) => c.get("alice@n1").map(|t| (t.up, t.down)).unwrap_or((0, 0)),
        Err(_) => (0, 0),
    }
}

/// Waits until the control plane counted exactly `base` plus the running core's counters
/// for alice (no byte lost, none counted twice) and returns that total.
async fn exact(what: &str, cp: &FakeCp, home: &AgentHome, base: (u64, u64)) -> (u64, u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let core = core_alice(home).await;
        let want = (base.0 + core.0, base.1 + core.1);
        let got = cp.total("alice@n1");
        if got == want && core.1 > 0 {
            return got;
        }
        if std::time::Instant::now() > deadline {
            panic!("{what}: control plane counted {got:?}, expected {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Downlink reported for `email` is the bytes moved, give or take HTTP headers.
fn assert_close(what: &str, reported: u64, moved: u64, requests: u64) {
    let max = moved + moved / 100 + 400 * requests;
    assert!(
        reported >= moved && reported <= max,
        "{what}: reported {reported}, moved {moved} (allowed up to {max})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_change_at_runtime_and_usage_matches_bytes_moved() {
    let Some(bin) = v2ray_bin() else { return };
    let origin = Origin::start().await;
    let (vless_port, vmess_port) = (free_port(), free_port());
    let inbounds = vec![
        inbound("vless-in", "vless", vless_port, json!({})),
        inbound("vmess-in", "vmess", vmess_port, json!({})),
    ];
    let cp = FakeCp::start(DesiredState {
        etag: "e1".into(),
        node_id: 1,
        inbounds,
        users: vec![user("alice", ALICE), user("bob", BOB)],
    })
    .await;
    // Short-lived tokens: the agent must renew and re-register on its own.
    cp.with(|s| s.token_ttl = 3);
    let home = AgentHome::new("v2ray", bin.clone(), &cp);
    let _agent = home.spawn();
    cp.wait_applied("e1").await;
    let core_pid = home.core_pid().unwrap_or_else(|| panic!("no core pid"));

    let (pa, pb, pc) = (free_port(), free_port(), free_port());
    let _client = v2ray_client(
        &bin,
        home.dir.path(),
        &[
            (pa, vless_out(vless_port, ALICE)),
            (pb, vmess_out(vmess_port, BOB)),
            (pc, vless_out(vless_port, CAROL)),
        ],
    );
    wait_port(pc).await;
    let url = origin.url("/bytes/1000000");
    assert_eq!(fetch(pa, &url, 10).await, Ok(1_000_000), "alice over VLESS");
    assert_eq!(fetch(pb, &url, 10).await, Ok(1_000_000), "bob over VMess");
    assert!(fetch(pc, &url, 5).await.is_err(), "carol is not a user yet");

    // The control plane forgets every token: the agent registers again after the 401.
    wait_for("token renewed", Duration::from_secs(5), || async {
        cp.with(|s| s.renewals) >= 1
    })
    .await;
    let regs = cp.with(|s| {
        s.tokens.clear();
        s.refuse_renewal = true;
        s.registers
    });
    wait_for("registered again", Duration::from_secs(5), || async {
        cp.with(|s| s.registers) > regs
    })
    .await;
    // Carol is added through the API: same core process.
    cp.set_users(
        "e2",
        vec![user("alice", ALICE), user("bob", BOB), user("carol", CAROL)],
    );
    cp.wait_applied("e2").await;
    assert_eq!(fetch(pc, &url, 10).await, Ok(1_000_000), "carol after add");
    assert_eq!(
        home.core_pid(),
        Some(core_pid),
        "no restart for a user change"
    );
    let config = std::fs::read_to_string(home.state().join("core-config.json")).unwrap_or_default();
    assert!(
        config.contains("carol@n1"),
        "runtime users are written to the config too"
    );

    // Alice downloads slowly while bob is removed: her transfer is untouched.
    let slow_url = origin.url("/slow/3000000");
    let alice_dl = tokio::spawn(async move { fetch(pa, &slow_url, 30).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cp.set_users("e3", vec![user("alice", ALICE), user("carol", CAROL)]);
    let t0 = std::time::Instant::now();
    wait_for("bob refused", Duration::from_secs(5), || async {
        fetch(pb, &origin.url("/bytes/10"), 3).await.is_err()
    })
    .await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(
        alice_dl.await.unwrap_or_else(|e| panic!("{e}")),
        Ok(3_000_000),
        "alice's download continued"
    );
    assert_eq!(home.core_pid(), Some(core_pid));
    // VMess drains refused connections; one fetch for bob ran into the refusal above.

    // Usage: alice 1 MB + 3 MB, bob 1 MB (+ small probes), carol 1 MB.
    wait_for("usage reported", Duration::from_secs(15), || async {
        cp.total("alice@n1").1 >= 4_000_000 && cp.total("carol@n1").1 >= 1_000_000
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_close("alice", cp.total("alice@n1").1, 4_000_000, 2);
    assert_close("carol", cp.total("carol@n1").1, 1_000_000, 1);
    assert_close("bob", cp.total("bob@n1").1, 1_000_000, 2);
    assert!(cp.total("alice@n1").0 > 0, "uplink counted");
    let (unauth, dups) = cp.with(|s| (s.unauthorized, s.duplicates));
    assert!(unauth >= 1, "the fake refused a token");
    assert_eq!(dups, 0);
    let hb = cp
        .last_heartbeat()
        .unwrap_or_else(|| panic!("no heartbeat"));
    assert_eq!(hb.core_status, mrjbot_node_proto::CoreStatus::Running);
    assert!(hb.core_version.is_some_and(|v| v.contains("4.34")));
    assert!(hb.cpu_percent.is_some() && hb.mem_percent.is_some());
    assert!(hb.latency_ms.is_some());
    assert_eq!(hb.last_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_crash_agent_kill_and_control_plane_outage_lose_nothing() {
    let Some(bin) = v2ray_bin() else { return };
    let origin = Origin::start().await;
    let vless_port = free_port();
    let cp = FakeCp::start(DesiredState {
        etag: "e1".into(),
        node_id: 1,
        inbounds: vec![inbound("vless-in", "vless", vless_port, json!({}))],
        users: vec![user("alice", ALICE)],
    })
    .await;
    let home = AgentHome::new("v2ray", bin.clone(), &cp);
    let mut agent = home.spawn();
    cp.wait_applied("e1").await;
    let pa = free_port();
    let _client = v2ray_client(&bin, home.dir.path(), &[(pa, vless_out(vless_port, ALICE))]);
    wait_port(pa).await;
    let url = origin.url("/bytes/1000000");
    let mut moved = 0;
    let mut requests = 0;
    let get = async |n: u64| {
        let r = fetch(pa, &origin.url(&format!("/bytes/{n}")), 10).await;
        assert_eq!(r, Ok(n));
        n
    };
    moved += get(1_000_000).await;
    requests += 1;
    wait_for("first report", Duration::from_secs(10), || async {
        cp.total("alice@n1").1 >= moved
    })
    .await;

    let base0 = exact("before the crash", &cp, &home, (0, 0)).await;

    // 1. The core dies: the agent starts it again and alice keeps working.
    let pid1 = home.core_pid().unwrap_or_else(|| panic!("no core pid"));
    kill_pid(pid1, Signal::SIGKILL).await;
    let h = &home;
    wait_for("core restarted", Duration::from_secs(10), || async move {
        h.core_pid().is_some_and(|p| p != pid1)
    })
    .await;
    wait_for("alice works again", Duration::from_secs(10), || async {
        fetch(pa, &url, 5).await == Ok(1_000_000)
    })
    .await;
    moved += 1_000_000;
    requests += 1;
    wait_for("restart reported", Duration::from_secs(10), || async {
        cp.last_heartbeat().is_some_and(|h| h.core_restarts >= 1)
    })
    .await;
    wait_for("usage after restart", Duration::from_secs(10), || async {
        cp.total("alice@n1").1 >= moved
    })
    .await;

    // 2. The agent is SIGKILLed while the control plane holds the answer to a report.
    cp.with(|s| s.ack = AckMode::Delay(Duration::from_secs(30)));
    let reports_before = cp.with(|s| s.reports.len());
    moved += get(2_000_000).await;
    requests += 1;
    wait_for("report in flight", Duration::from_secs(10), || async {
        cp.with(|s| s.reports.len()) > reports_before
    })
    .await;
    agent.signal(Signal::SIGKILL);
    agent.wait();
    let core_pid = home.core_pid();
    cp.with(|s| s.ack = AckMode::Normal);
    let mut agent = home.spawn();
    wait_for(
        "journal re-sent as duplicate",
        Duration::from_secs(10),
        || async { cp.with(|s| s.duplicates) >= 1 },
    )
    .await;
    assert_eq!(home.core_pid(), core_pid, "the running core was adopted");

    // 3. Acknowledgements get lost: re-sent reports are not counted twice.
    cp.with(|s| s.ack = AckMode::Lose);
    moved += get(500_000).await;
    requests += 1;
    let dups = cp.with(|s| s.duplicates);
    tokio::time::sleep(Duration::from_secs(3)).await;
    cp.with(|s| s.ack = AckMode::Normal);
    wait_for("lost ack recovered", Duration::from_secs(10), || async {
        cp.with(|s| s.duplicates) > dups
    })
    .await;
    // Since the crash: the one core process counted everything the control plane got.
    let base1 = exact("after SIGKILL and lost acks", &cp, &home, base0).await;

    // 4. Control plane down, agent restarted meanwhile (SIGTERM stops the core): the core
    // comes back from the saved desired state and alice works; reports catch up later.
    cp.with(|s| s.down = true);
    agent.signal(Signal::SIGTERM);
    let status = agent.wait();
    assert!(status.is_some_and(|s| s.success()), "clean exit on SIGTERM");
    assert!(
        home.core_pid().is_none(),
        "the core was stopped with the agent"
    );
    let _agent = home.spawn();
    wait_for(
        "core serves while the control plane is down",
        Duration::from_secs(15),
        || async { fetch(pa, &url, 5).await == Ok(1_000_000) },
    )
    .await;
    moved += 1_000_000;
    requests += 1;
    moved += get(1_000_000).await;
    requests += 1;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cp.with(|s| s.down = false);
    wait_for("reports caught up", Duration::from_secs(20), || async {
        cp.total("alice@n1").1 >= moved
    })
    .await;
    exact("after the outage", &cp, &home, base1).await;
    assert_close("alice total", cp.total("alice@n1").1, moved, requests);
    let log = home.agent_log();
    assert!(log.contains("adopted the core"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_crash_between_reports_loses_nothing_sampled() {
    let Some(bin) = v2ray_bin() else { return };
    let origin = Origin::start().await;
    let vless_port = free_port();
    let cp = FakeCp::start(DesiredState {
        etag: "e1".into(),
        node_id: 1,
        inbounds: vec![inbound("vless-in", "vless", vless_port, json!({}))],
        users: vec![user("alice", ALICE)],
    })
    .await;
    // One report a minute: only the agent's local samples can save the bytes below.
    cp.with(|s| s.intervals.usage_secs = 60);
    let home = AgentHome::new("v2ray", bin.clone(), &cp);
    let env = [("MRJBOT_NODE_SAMPLE_SECS", "1")];
    let mut agent = home.spawn_with(&env);
    cp.wait_applied("e1").await;
    let pa = free_port();
    let _client = v2ray_client(&bin, home.dir.path(), &[(pa, vless_out(vless_port, ALICE))]);
    wait_port(pa).await;
    let mut moved = 0;
    for n in [1_000_000u64, 500_000] {
        let r = fetch(pa, &origin.url(&format!("/bytes/{n}")), 10).await;
        assert_eq!(r, Ok(n));
        moved += n;
    }
    // What the core itself counted; then samples happen, but no report.
    let counted = core_alice(&home).await;
    assert!(counted.1 >= moved, "core counted {counted:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cp.with(|s| s.reports.len()),
        0,
        "no report before the crash"
    );

    // The core is SIGKILLed; the agent starts it again, keeping the sampled bytes.
    let pid1 = home.core_pid().unwrap_or_else(|| panic!("no core pid"));
    kill_pid(pid1, Signal::SIGKILL).await;
    let h = &home;
    wait_for("core restarted", Duration::from_secs(10), || async move {
        h.core_pid().is_some_and(|p| p != pid1)
    })
    .await;
    assert!(home.agent_log().contains("core process gone"));
    assert_eq!(cp.with(|s| s.reports.len()), 0, "still no report");
    // The agent is SIGKILLed too, right after: the bytes are in its journal, and the next
    // agent (adopting the new core) reports them at once.
    agent.signal(Signal::SIGKILL);
    agent.wait();
    let core_pid = home.core_pid();
    let _agent = home.spawn_with(&env);
    wait_for("crash usage reported", Duration::from_secs(15), || async {
        cp.total("alice@n1").1 > 0
    })
    .await;
    assert_eq!(home.core_pid(), core_pid, "the restarted core was adopted");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        cp.total("alice@n1"),
        counted,
        "reported exactly what the dead core counted"
    );
    assert_close("alice", cp.total("alice@n1").1, moved, 2);
    assert_eq!(cp.with(|s| s.duplicates), 0);
}
