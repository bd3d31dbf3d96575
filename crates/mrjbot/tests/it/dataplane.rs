//! The control plane's side of its node agents, spoken over HTTP exactly as `mrjbot-node`
//! speaks it: registration and tokens, desired state with ETags, usage reports counted
//! once, caps and expiry taking users off the node, silent nodes marked down, bad input.

use crate::*;
use mrjbot_node_proto as proto;
use rstest::rstest;
use std::time::Duration;

const MB: i64 = 1_000_000;

/// An agent node with one VLESS and one Shadowsocks-2022 inbound, a plan of `cap` bytes
/// and `n` customers subscribed to it. Returns (node id, secret, subscription ids).
pub async fn node_with_customers(t: &TestApp, cap: i64, n: usize) -> (i64, String, Vec<i64>) {
    let (s, node) = t
        .post(
            "/api/v1/nodes",
            json!({"name": "n1", "kind": "agent", "address": "127.0.0.1"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{node}");
    let id = node["id"].as_i64().unwrap_or_default();
    let secret = node["secret"].as_str().unwrap_or_default().to_owned();
    for ib in [
        json!({"tag": "vless-in", "protocol": "vless", "port": 20001}),
        json!({"tag": "ss-in", "protocol": "shadowsocks", "port": 20004,
               "settings": {"method": "2022-blake3-aes-128-gcm", "server_key": "qNeEgmABWLP5/d4g3+35dw=="}}),
    ] {
        let (s, v) = t.post(&format!("/api/v1/nodes/{id}/inbounds"), ib).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, plan) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Small", "duration_days": 30, "data_limit_bytes": cap,
            "prices": [{"currency": "IRR", "amount_minor": 1_000_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let pid = plan["id"].as_i64().unwrap_or_default();
    let mut subs = Vec::new();
    for i in 0..n {
        let (s, u) = t
            .post(
                "/api/v1/users",
                json!({"telegram_id": 900_000 + i, "display_name": format!("c{i}")}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
        let (s, sub) = t
            .post(
                "/api/v1/subscriptions",
                json!({"user_id": u["id"], "plan_id": pid}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{sub}");
        subs.push(sub["id"].as_i64().unwrap_or_default());
    }
    (id, secret, subs)
}

/// A node agent's HTTP conversation, without a core.
pub struct AgentClient {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl AgentClient {
    pub async fn register(base: &str, secret: &str) -> (StatusCode, Value) {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}{}", proto::REGISTER))
            .json(&proto::RegisterRequest {
                secret: secret.into(),
                agent_version: "test".into(),
                core: proto::CoreKind::V2ray,
                core_version: Some("V2Ray 4.34.0".into()),
                hostname: Some("node-1".into()),
            })
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn new(base: &str, secret: &str) -> AgentClient {
        let (s, v) = Self::register(base, secret).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        AgentClient {
            base: base.into(),
            http: reqwest::Client::new(),
            token: v["token"].as_str().unwrap_or_default().into(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// The desired state, or `None` on 304.
    pub async fn desired(&self, etag: Option<&str>) -> Option<proto::DesiredState> {
        let mut req = self
            .http
            .get(format!("{}{}", self.base, proto::DESIRED))
            .bearer_auth(&self.token);
        if let Some(e) = etag {
            req = req.header("If-None-Match", format!("\"{e}\""));
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        if r.status() == StatusCode::NOT_MODIFIED {
            return None;
        }
        assert_eq!(r.status(), StatusCode::OK);
        let header = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let d: proto::DesiredState = r.json().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(header, format!("\"{}\"", d.etag));
        Some(d)
    }

    pub async fn usage(&self, seq: u64, entries: &[(i64, u64, u64)]) -> proto::UsageAck {
        let report = proto::UsageReport {
            seq,
            collected_at_ms: 0,
            entries: entries
                .iter()
                .map(|(id, up, down)| proto::UsageEntry {
                    email: format!("sub{id}"),
                    up: *up,
                    down: *down,
                })
                .collect(),
        };
        let (s, v) = self
            .send(
                Method::POST,
                proto::USAGE,
                serde_json::to_value(&report).ok(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn heartbeat(&self, core: proto::CoreStatus, cpu: f32) -> (StatusCode, Value) {
        let hb = proto::Heartbeat {
            cpu_percent: Some(cpu),
            mem_percent: Some(40.0),
            rx_bps: Some(1000),
            tx_bps: Some(2000),
            connections: Some(3),
            latency_ms: Some(5),
            core_status: core,
            core_version: Some("V2Ray 4.34.0".into()),
            core_restarts: 0,
            applied_etag: None,
            last_error: None,
        };
        self.send(
            Method::POST,
            proto::HEARTBEAT,
            serde_json::to_value(&hb).ok(),
        )
        .await
    }
}

async fn sub_json(t: &TestApp, id: i64) -> Value {
    let (s, v) = t.get(&format!("/api/v1/subscriptions/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn agents_register_heartbeat_and_follow_the_desired_state(#[case] backend: Backend) {
    let mut t = app!(backend);
    let (node, secret, subs) = node_with_customers(&t, 1_000 * MB, 3).await;
    // Wrong secrets buy nothing; nor does a token of our own users.
    assert_eq!(
        AgentClient::register(&t.base, "nope").await.0,
        StatusCode::UNAUTHORIZED
    );
    let a = AgentClient::new(&t.base, &secret).await;
    let user_token = AgentClient {
        base: t.base.clone(),
        http: reqwest::Client::new(),
        token: t.admin_token.clone(),
    };
    assert_eq!(
        user_token
            .heartbeat(proto::CoreStatus::Running, 1.0)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Heartbeats make the node online, or degraded when the core is not running.
    let (s, ack) = a.heartbeat(proto::CoreStatus::Running, 12.5).await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    let (_, n) = t.get(&format!("/api/v1/nodes/{node}")).await;
    assert_eq!(n["status"], "online");
    a.heartbeat(proto::CoreStatus::Stopped, 12.5).await;
    let (_, n) = t.get(&format!("/api/v1/nodes/{node}")).await;
    assert_eq!(n["status"], "degraded");
    a.heartbeat(proto::CoreStatus::Running, 12.5).await;

    // Every customer, with per-method Shadowsocks keys; an unchanged poll is a 304.
    let d = a.desired(None).await.unwrap_or_else(|| panic!("no state"));
    assert_eq!(ack["desired_etag"].as_str(), Some(d.etag.as_str()));
    assert_eq!(d.node_id, node);
    assert_eq!(d.inbounds.len(), 2);
    let emails: Vec<&str> = d.users.iter().map(|u| u.email.as_str()).collect();
    let want: Vec<String> = subs.iter().map(|s| format!("sub{s}")).collect();
    assert_eq!(emails, want.iter().map(String::as_str).collect::<Vec<_>>());
    let first = sub_json(&t, subs[0]).await;
    assert_eq!(
        d.users[0].uuid.as_str(),
        first["credential_uuid"].as_str().unwrap_or_default()
    );
    assert_eq!(d.users[0].ss_keys.len(), 1);
    assert_eq!(
        d.users[0]
            .ss_keys
            .get("2022-blake3-aes-128-gcm")
            .map(String::len),
        Some(24),
        "a 16-byte key in base64"
    );
    assert!(a.desired(Some(&d.etag)).await.is_none());

    // Disabling a customer takes them off; expiry does too, by the clock alone.
    let (s, v) = t
        .post(
            &format!("/api/v1/subscriptions/{}/suspend", subs[1]),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d2 = a
        .desired(Some(&d.etag))
        .await
        .unwrap_or_else(|| panic!("unchanged"));
    assert_eq!(d2.users.len(), 2);
    assert!(
        d2.users
            .iter()
            .all(|u| u.email != format!("sub{}", subs[1]))
    );
    t.travel(Duration::from_secs(31 * 86_400)).await;
    let a = AgentClient::new(&t.base, &secret).await;
    let d3 = a
        .desired(Some(&d2.etag))
        .await
        .unwrap_or_else(|| panic!("unchanged"));
    assert!(d3.users.is_empty(), "{:?}", d3.users);

    // A node that stops heartbeating is down after 30 s; rotating the secret ends tokens.
    t.clock.advance(Duration::from_secs(31));
    let down = t
        .app
        .sweep_silent_nodes()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(down, 1);
    let (_, n) = t.get(&format!("/api/v1/nodes/{node}")).await;
    assert_eq!(n["status"], "down");
    let (s, _) = t
        .post(&format!("/api/v1/nodes/{node}/rotate-secret"), json!({}))
        .await;
    assert!(s.is_success(), "{s}");
    assert_eq!(
        a.heartbeat(proto::CoreStatus::Running, 1.0).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        AgentClient::register(&t.base, &secret).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn usage_counts_once_and_caps_take_users_off(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, secret, subs) = node_with_customers(&t, 100 * MB, 2).await;
    let a = AgentClient::new(&t.base, &secret).await;
    let d = a.desired(None).await.unwrap_or_else(|| panic!("no state"));
    assert_eq!(d.users.len(), 2);

    let ack = a
        .usage(1, &[(subs[0], 1_000, 30 * MB as u64), (subs[1], 5, 7)])
        .await;
    assert_eq!((ack.duplicate, ack.counted), (false, 2));
    // The same report again (its answer was lost): acknowledged, not counted.
    let again = a
        .usage(1, &[(subs[0], 1_000, 30 * MB as u64), (subs[1], 5, 7)])
        .await;
    assert_eq!((again.duplicate, again.counted), (true, 0));
    let s0 = sub_json(&t, subs[0]).await;
    assert_eq!(s0["used_bytes"].as_i64(), Some(1_000 + 30 * MB));
    assert_eq!(sub_json(&t, subs[1]).await["used_bytes"].as_i64(), Some(12));
    // Entries for users we do not know are skipped; the same user twice is added up.
    let ack = a
        .usage(2, &[(subs[1], 1, 1), (subs[1], 1, 1), (999_999, 5, 5)])
        .await;
    assert_eq!(ack.counted, 1);
    assert_eq!(sub_json(&t, subs[1]).await["used_bytes"].as_i64(), Some(16));

    // Past the cap: limited at once, and off the node on the next poll.
    a.usage(3, &[(subs[0], 0, 71 * MB as u64)]).await;
    let s0 = sub_json(&t, subs[0]).await;
    assert_eq!(s0["status"], "limited", "{s0}");
    let d2 = a
        .desired(Some(&d.etag))
        .await
        .unwrap_or_else(|| panic!("unchanged"));
    assert_eq!(
        d2.users.iter().map(|u| u.email.clone()).collect::<Vec<_>>(),
        vec![format!("sub{}", subs[1])]
    );
    // Per-node usage rows add up to the totals.
    let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
    let rows = mrjbot_db::usage::by_node(c.conn(), subs[0])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1 + rows[0].2, 1_000 + 101 * MB);

    // A re-installed agent continues above the last recorded report.
    let (_, v) = AgentClient::register(&t.base, &secret).await;
    assert_eq!(v["last_usage_seq"], 3);
}

#[tokio::test]
async fn bad_agent_input_is_refused_clearly() {
    let mut t = app!(Backend::Sqlite);
    let (_, secret, subs) = node_with_customers(&t, 100 * MB, 1).await;
    let a = AgentClient::new(&t.base, &secret).await;
    let post_raw = |path: &'static str, body: &'static str| {
        let a = &a;
        async move {
            let r = a
                .http
                .post(format!("{}{path}", a.base))
                .bearer_auth(&a.token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = post_raw(proto::USAGE, "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post_raw(
        proto::USAGE,
        r#"{"seq": -1, "collected_at_ms": 0, "entries": []}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "validation_failed");
    let (s, v) = post_raw(
        proto::USAGE,
        r#"{"seq": 9223372036854775808, "collected_at_ms": 0, "entries": []}"#,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = post_raw(proto::HEARTBEAT, r#"{"core_status": "melting"}"#).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // A forged token, an expired one.
    let forged = AgentClient {
        base: t.base.clone(),
        http: reqwest::Client::new(),
        token: format!("{}x", a.token),
    };
    assert_eq!(
        forged.send(Method::GET, proto::DESIRED, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    t.travel(Duration::from_secs(proto::TOKEN_TTL_SECS + 1))
        .await;
    let (s, v) = a.send(Method::GET, proto::DESIRED, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );
    // Too many entries in one report.
    let a = AgentClient::new(&t.base, &secret).await;
    let many: Vec<Value> = (0..=proto::MAX_USAGE_ENTRIES)
        .map(|i| json!({"email": format!("sub{i}"), "up": 1, "down": 1}))
        .collect();
    let (s, v) = a
        .send(
            Method::POST,
            proto::USAGE,
            Some(json!({"seq": 1, "collected_at_ms": 0, "entries": many})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Nothing of that was counted.
    assert_eq!(sub_json(&t, subs[0]).await["used_bytes"].as_i64(), Some(0));
}

#[tokio::test]
async fn a_down_node_leaves_the_links_of_customers_who_can_move() {
    let mut t = app!(Backend::Sqlite);
    let (n1, secret1, subs) = node_with_customers(&t, 1_000 * MB, 2).await;
    let (s, n2) = t
        .post(
            "/api/v1/nodes",
            json!({"name": "n2", "kind": "agent", "address": "127.0.0.2"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n2}");
    let n2_id = n2["id"].as_i64().unwrap_or_default();
    let (s, v) = t
        .post(
            &format!("/api/v1/nodes/{n2_id}/inbounds"),
            json!({"tag": "vless-in", "protocol": "vless", "port": 30001}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The second customer has a constant address on node 1.
    let (s, v) = t
        .patch(
            &format!("/api/v1/subscriptions/{}", subs[1]),
            json!({"node_id": n1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Only 3x-UI panels take an API token.
    let (s, v) = t
        .patch(&format!("/api/v1/nodes/{n1}"), json!({"api_token": "tok"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let a1 = AgentClient::new(&t.base, &secret1).await;
    a1.heartbeat(proto::CoreStatus::Running, 5.0).await;
    assert_eq!(links_of(&t, subs[0]).await, (true, true));
    assert_eq!(links_of(&t, subs[1]).await, (true, false));
    // Node 1 falls silent: the movable customer's links leave it, the pinned one stays.
    t.travel(Duration::from_secs(31)).await;
    assert_eq!(
        t.app
            .sweep_silent_nodes()
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        1
    );
    assert_eq!(links_of(&t, subs[0]).await, (false, true));
    assert_eq!(links_of(&t, subs[1]).await, (true, false));
    // The node still gets its users (they return when it does), and comes back online.
    let a1 = AgentClient::new(&t.base, &secret1).await;
    let d = a1.desired(None).await.unwrap_or_else(|| panic!("no state"));
    assert_eq!(d.users.len(), 2);
    a1.heartbeat(proto::CoreStatus::Running, 5.0).await;
    assert_eq!(links_of(&t, subs[0]).await, (true, true));
}

/// Whether a subscription's links point at 127.0.0.1 and at 127.0.0.2.
async fn links_of(t: &TestApp, id: i64) -> (bool, bool) {
    let sub = sub_json(t, id).await;
    let token = sub["token"].as_str().unwrap_or_default().to_owned();
    let (s, _, body) = t.fetch(&format!("/sub/{token}?format=plain"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    (body.contains("127.0.0.1:"), body.contains("127.0.0.2:"))
}
