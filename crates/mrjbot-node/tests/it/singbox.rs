//! The agent driving a real sing-box core (config rewrite + SIGHUP, SSM API for
//! Shadowsocks), with a sing-box client moving real bytes.

use crate::support::*;
use mrjbot_node_proto::{DesiredState, UserSpec};
use nix::sys::signal::Signal;
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ALICE: &str = "a8308d11-a541-4591-ad00-31cea68f8bee";
const BOB: &str = "7f2ee095-268e-4b72-a912-26c91703ae0c";
const FRANK: &str = "44c98168-1e8c-44f0-a3e5-5170ad30c7a0";
const METHOD: &str = "2022-blake3-aes-128-gcm";
const SERVER_PSK: &str = "qNeEgmABWLP5/d4g3+35dw==";

fn ss_user(name: &str, uuid: &str, psk: &str) -> UserSpec {
    let mut u = user(name, uuid);
    u.ss_keys.insert(METHOD.into(), psk.into());
    u
}

fn alice() -> UserSpec {
    ss_user("alice", ALICE, "3iwD3C/kZdBx2+bDzcvvCw==")
}
fn bob() -> UserSpec {
    ss_user("bob", BOB, "Q0R1uX3GfGm3b9VwWmC7xQ==")
}
fn frank() -> UserSpec {
    ss_user("frank", FRANK, "ZmRmZGZkZmRmZGZkZmRmZA==")
}

fn client(bin: &Path, dir: &Path, routes: &[(u16, serde_json::Value)]) -> Proc {
    let mut inbounds = Vec::new();
    let mut outbounds = Vec::new();
    let mut rules = Vec::new();
    for (i, (port, out)) in routes.iter().enumerate() {
        inbounds.push(
            json!({"type": "socks", "tag": format!("s{i}"), "listen": "127.0.0.1",
            "listen_port": port}),
        );
        let mut o = out.clone();
        o["tag"] = json!(format!("o{i}"));
        outbounds.push(o);
        rules.push(json!({"inbound": [format!("s{i}")], "outbound": format!("o{i}")}));
    }
    outbounds.push(json!({"type": "direct", "tag": "direct"}));
    let cfg = json!({"log": {"level": "warn"}, "inbounds": inbounds, "outbounds": outbounds,
        "route": {"rules": rules, "final": "direct"}});
    let path = dir.join("sb-client.json");
    std::fs::write(&path, cfg.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(bin);
    cmd.arg("run").arg("-c").arg(&path);
    Proc::spawn("sing-box-client", cmd, &dir.join("sb-client.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_users_and_ssm_counts_shadowsocks() {
    let Some(bin) = sing_box_bin() else { return };
    let origin = Origin::start().await;
    let (vless_port, ss_port) = (free_port(), free_port());
    let ss_settings = json!({"method": METHOD, "server_key": SERVER_PSK});
    let inbounds = vec![
        inbound("vless-in", "vless", vless_port, json!({})),
        inbound("ss-in", "shadowsocks", ss_port, ss_settings),
    ];
    let cp = FakeCp::start(DesiredState {
        etag: "e1".into(),
        node_id: 1,
        inbounds: inbounds.clone(),
        users: vec![alice(), bob()],
    })
    .await;
    let home = AgentHome::new("sing-box", bin.clone(), &cp);
    let _agent = home.spawn();
    cp.wait_applied("e1").await;
    let core_pid = home.core_pid().unwrap_or_else(|| panic!("no core pid"));

    let (pa, pss, pf) = (free_port(), free_port(), free_port());
    let _client = client(
        &bin,
        home.dir.path(),
        &[
            (
                pa,
                json!({"type": "vless", "server": "127.0.0.1", "server_port": vless_port, "uuid": ALICE}),
            ),
            (
                pss,
                json!({"type": "shadowsocks", "server": "127.0.0.1", "server_port": ss_port,
                "method": METHOD, "password": format!("{SERVER_PSK}:{}", alice().ss_keys[METHOD])}),
            ),
            (
                pf,
                json!({"type": "vless", "server": "127.0.0.1", "server_port": vless_port, "uuid": FRANK}),
            ),
        ],
    );
    wait_port(pf).await;
    let url = origin.url("/bytes/1000000");
    assert_eq!(fetch(pa, &url, 10).await, Ok(1_000_000), "alice over VLESS");
    // SSM users are pushed right after start; allow a supervision tick.
    wait_for(
        "alice over managed shadowsocks",
        Duration::from_secs(5),
        || async { fetch(pss, &origin.url("/bytes/1000"), 3).await == Ok(1000) },
    )
    .await;
    assert_eq!(fetch(pss, &url, 10).await, Ok(1_000_000));
    assert!(fetch(pf, &url, 3).await.is_err(), "frank is not a user yet");

    // Frank is added: config rewrite + SIGHUP, same process; SSM users come back.
    cp.set_users("e2", vec![alice(), bob(), frank()]);
    cp.wait_applied("e2").await;
    wait_for("frank after reload", Duration::from_secs(5), || async {
        fetch(pf, &url, 3).await == Ok(1_000_000)
    })
    .await;
    assert_eq!(home.core_pid(), Some(core_pid), "reloaded in place");
    wait_for(
        "alice's shadowsocks key after reload",
        Duration::from_secs(5),
        || async { fetch(pss, &url, 5).await == Ok(1_000_000) },
    )
    .await;

    // Frank is removed: refused within one poll.
    cp.set_users("e3", vec![alice(), bob()]);
    wait_for("frank refused", Duration::from_secs(5), || async {
        fetch(pf, &url, 3).await.is_err()
    })
    .await;

    // A state the core refuses: reported, and the previous configuration keeps serving.
    let mut bad = inbounds.clone();
    bad[1].settings = json!({"method": "no-such-cipher", "server_key": SERVER_PSK});
    cp.with(|s| {
        s.desired.etag = "e4".into();
        s.desired.inbounds = bad;
    });
    wait_for("refusal reported", Duration::from_secs(10), || async {
        cp.last_heartbeat()
            .and_then(|h| h.last_error)
            .is_some_and(|e| e.contains("refused"))
    })
    .await;
    let hb = cp
        .last_heartbeat()
        .unwrap_or_else(|| panic!("no heartbeat"));
    assert_eq!(hb.applied_etag.as_deref(), Some("e3"));
    assert_eq!(fetch(pa, &url, 10).await, Ok(1_000_000), "still serving");
    cp.with(|s| {
        s.desired.etag = "e5".into();
        s.desired.inbounds = inbounds.clone();
    });
    cp.wait_applied("e5").await;

    // Usage: shadowsocks bytes are counted per user (1000 + 1 MB before the reload, at
    // least 1 MB after it), VLESS bytes are not (this build has no v2ray_api), and the
    // heartbeat says so.
    let moved = 2_001_000;
    wait_for("shadowsocks usage", Duration::from_secs(15), || async {
        cp.total("alice@n1").1 >= moved
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = cp.total("alice@n1").1;
    // Retried probes above may have moved up to one more megabyte.
    assert!(
        down >= moved && down <= moved + 1_000_000 + moved / 100 + 4000,
        "alice reported {down}, moved {moved}"
    );
    let hb = cp
        .last_heartbeat()
        .unwrap_or_else(|| panic!("no heartbeat"));
    assert!(
        hb.last_error
            .is_some_and(|e| e.contains("per-user counting is unavailable")),
        "heartbeat explains the missing counters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_crash_between_reports_keeps_sampled_ssm_bytes() {
    let Some(bin) = sing_box_bin() else { return };
    let origin = Origin::start().await;
    let ss_port = free_port();
    let ss_settings = json!({"method": METHOD, "server_key": SERVER_PSK});
    let cp = FakeCp::start(DesiredState {
        etag: "e1".into(),
        node_id: 1,
        inbounds: vec![inbound("ss-in", "shadowsocks", ss_port, ss_settings)],
        users: vec![alice()],
    })
    .await;
    // One report a minute: only the local SSM samples can save the bytes below.
    cp.with(|s| s.intervals.usage_secs = 60);
    let home = AgentHome::new("sing-box", bin.clone(), &cp);
    let env = [("MRJBOT_NODE_SAMPLE_SECS", "1")];
    let mut agent = home.spawn_with(&env);
    cp.wait_applied("e1").await;
    let pss = free_port();
    let _client = client(
        &bin,
        home.dir.path(),
        &[(
            pss,
            json!({"type": "shadowsocks", "server": "127.0.0.1", "server_port": ss_port,
            "method": METHOD, "password": format!("{SERVER_PSK}:{}", alice().ss_keys[METHOD])}),
        )],
    );
    wait_port(pss).await;
    let url = origin.url("/bytes/1000000");
    // SSM users are pushed right after start; allow a supervision tick.
    let mut requests = 0;
    wait_for(
        "alice over managed shadowsocks",
        Duration::from_secs(5),
        || {
            requests += 1;
            let url = url.clone();
            async move { fetch(pss, &url, 5).await == Ok(1_000_000) }
        },
    )
    .await;
    let moved = 1_000_000;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        cp.with(|s| s.reports.len()),
        0,
        "no report before the crash"
    );

    let pid1 = home.core_pid().unwrap_or_else(|| panic!("no core pid"));
    kill_pid(pid1, Signal::SIGKILL).await;
    let h = &home;
    wait_for("core restarted", Duration::from_secs(10), || async move {
        h.core_pid().is_some_and(|p| p != pid1)
    })
    .await;
    // SIGKILL the agent as well: the sampled bytes are in its journal.
    agent.signal(Signal::SIGKILL);
    agent.wait();
    let _agent = home.spawn_with(&env);
    wait_for("crash usage reported", Duration::from_secs(15), || async {
        cp.total("alice@n1").1 >= moved
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = cp.total("alice@n1").1;
    // Failed early probes (before SSM had the user) moved nothing; allow HTTP headers.
    assert!(
        down >= moved && down <= moved + moved / 100 + 400 * requests,
        "alice reported {down}, moved {moved}"
    );
    assert_eq!(cp.with(|s| s.duplicates), 0);
}
