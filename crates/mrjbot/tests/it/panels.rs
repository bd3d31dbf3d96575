//! 3x-UI and Marzban nodes against their fakes: provisioning with the panel's units,
//! traffic counted exactly once, caps enforced within one sync, faults without
//! duplicates, and imports that keep customers' credentials.

use crate::*;
use mrjbot_testkit::fakes::marzban::FakeMarzban;
use mrjbot_testkit::fakes::xui::{FakeXui, Fault, XuiVersion};
use rstest::rstest;

const GB: i64 = 1_000_000_000;

fn fast(c: &mut mrjbot::config::Config) {
    c.panel_sync = false;
    c.panel_timeout_secs = 1;
}

/// A panel node with `inbounds` (tag, protocol, port), a customer and a 1 GB / 30 day
/// subscription; returns (subscription, node id).
async fn panel_sub(
    t: &TestApp,
    kind: &str,
    url: &str,
    inbounds: &[(&str, &str, i64)],
    who: &str,
) -> (Value, i64) {
    let (s, n) = t
        .post(
            "/api/v1/nodes",
            json!({"name": format!("{kind}-{who}"), "kind": kind, "address": "127.0.0.1",
            "api_url": url, "api_username": "admin", "api_password": "pw"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let node = n["id"].as_i64().unwrap_or_default();
    for (tag, protocol, port) in inbounds {
        let (s, v) = t
            .post(
                &format!("/api/v1/nodes/{node}/inbounds"),
                json!({"tag": tag, "protocol": protocol, "port": port}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    (new_sub(t, node, who).await, node)
}

async fn new_sub(t: &TestApp, node: i64, who: &str) -> Value {
    let (s, u) = t.post("/api/v1/users", json!({"username": who})).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (s, p) = t
        .post(
            "/api/v1/plans",
            json!({"name": format!("plan-{who}"), "duration_days": 30, "data_limit_bytes": GB,
            "prices": [{"currency": "IRR", "amount_minor": 1000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, sub) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": u["id"], "plan_id": p["id"], "node_id": node}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    sub
}

async fn sync(t: &TestApp, node: i64) -> mrjbot_app::panels::SyncReport {
    t.app
        .sync_panel(node)
        .await
        .unwrap_or_else(|e| panic!("sync failed: {e}"))
}

async fn sub_of(t: &TestApp, id: i64) -> Value {
    t.get(&format!("/api/v1/subscriptions/{id}")).await.1
}

#[rstest]
#[case::v1_xui_api(XuiVersion::V1, None, Backend::Sqlite)]
#[case::v2_3_session(XuiVersion::V2_3, None, Backend::Sqlite)]
#[case::v2_8_cookie(XuiVersion::V2_8, None, Backend::Sqlite)]
#[case::v2_8_cookie_pg(XuiVersion::V2_8, None, Backend::Postgres)]
#[case::v2_9_hidden(XuiVersion::V2_9, None, Backend::Sqlite)]
#[case::v3_0_csrf(XuiVersion::V3_0, None, Backend::Sqlite)]
#[case::v3_0_bearer(XuiVersion::V3_0, Some("api-token-1"), Backend::Sqlite)]
#[case::v3_1_clients(XuiVersion::V3_1, None, Backend::Sqlite)]
#[tokio::test]
async fn xui_provisions_counts_once_and_enforces_caps(
    #[case] version: XuiVersion,
    #[case] token: Option<&str>,
    #[case] backend: Backend,
) {
    let t = app!(backend, fast);
    let fake = FakeXui::start(
        version,
        "/Xk3pQ9",
        "admin",
        if token.is_some() { "not-used" } else { "pw" },
        token,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let vless = fake.add_inbound(
        "vless",
        443,
        json!({"decryption": "none"}),
        json!({"network": "tcp"}),
    );
    let trojan = fake.add_inbound(
        "trojan",
        2083,
        json!({}),
        json!({"network": "tcp", "security": "tls"}),
    );
    fake.seed_client(vless, json!({"id": "0d6a3f1e-0000-4000-8000-000000000001", "email": "sellers-own", "enable": true}));
    let (sub, node) = panel_sub(
        &t,
        "xui",
        &fake.url(),
        &[
            ("inbound-443", "vless", 443),
            ("inbound-2083", "trojan", 2083),
        ],
        "sara",
    )
    .await;
    if let Some(tok) = token {
        // The seller pastes the panel's API token into the node.
        let (s, v) = t
            .patch(&format!("/api/v1/nodes/{node}"), json!({"api_token": tok}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(
            v.get("api_token").is_none(),
            "the token is never shown: {v}"
        );
    }
    let id = sub["id"].as_i64().unwrap_or_default();
    let r = sync(&t, node).await;
    assert_eq!(r.created, 2, "{r:?}");
    let clients = fake.clients();
    assert_eq!(clients.len(), 3, "{clients:?}");
    let mine = |inbound: i64| {
        fake.clients()
            .into_iter()
            .find(|c| c.0 == inbound && c.1["email"] == json!(format!("mrj{id}-{inbound}")))
            .unwrap_or_else(|| panic!("no client on inbound {inbound}: {:?}", fake.clients()))
    };
    let v = mine(vless).1;
    assert_eq!(v["id"], sub["credential_uuid"]);
    assert_eq!(v["totalGB"], json!(GB));
    let expires = sub_of(&t, id).await["expires_at"].clone();
    assert!(
        v["expiryTime"].as_i64().unwrap_or(0) > 0,
        "{v} vs {expires}"
    );
    assert_eq!(mine(trojan).1["password"], sub["credential_secret"]);
    // Traffic counts once, however many syncs read it.
    fake.add_traffic(&format!("mrj{id}-{vless}"), 100, 200);
    fake.add_traffic(&format!("mrj{id}-{trojan}"), 0, 50);
    fake.add_traffic("sellers-own", 999, 999);
    assert_eq!(sync(&t, node).await.counted_bytes, 350);
    assert_eq!(sync(&t, node).await.counted_bytes, 0);
    assert_eq!(sub_of(&t, id).await["used_bytes"], json!(350));
    // Past the cap: limited here and disabled on the panel within the same sync.
    fake.add_traffic(&format!("mrj{id}-{vless}"), 0, GB);
    let r = sync(&t, node).await;
    assert_eq!(r.disabled, 2, "{r:?}");
    assert_eq!(sub_of(&t, id).await["status"], json!("limited"));
    assert_eq!(mine(vless).1["enable"], json!(false));
    assert_eq!(mine(trojan).1["enable"], json!(false));
    assert_eq!(sub_of(&t, id).await["used_bytes"], json!(350 + GB));
    // The seller's own account was never touched.
    assert!(
        fake.clients()
            .iter()
            .any(|c| c.1["email"] == json!("sellers-own") && c.1["enable"] == json!(true))
    );
    t.stop().await;
}

#[tokio::test]
async fn xui_faults_never_duplicate_and_converge() {
    let t = app!(Backend::Sqlite, fast);
    let fake = FakeXui::start(XuiVersion::V2_8, "/", "admin", "pw", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let vless = fake.add_inbound("vless", 443, json!({}), json!({"network": "tcp"}));
    let (sub, node) = panel_sub(
        &t,
        "xui",
        &fake.url(),
        &[("inbound-443", "vless", 443)],
        "omid",
    )
    .await;
    let id = sub["id"].as_i64().unwrap_or_default();
    // Two 500s on the listing: retried with backoff inside one sync.
    fake.fail_next(2, Fault::Error500);
    assert_eq!(sync(&t, node).await.created, 1);
    // A second subscription whose create is applied but whose answer is lost.
    let sub2 = new_sub(&t, node, "nima").await;
    let id2 = sub2["id"].as_i64().unwrap_or_default();
    fake.fail_next(1, Fault::Pass);
    fake.fail_next(1, Fault::ApplyThenHang);
    let r = sync(&t, node).await;
    assert_eq!((r.created, r.updated), (0, 1), "{r:?}");
    let emails: Vec<String> = fake
        .clients()
        .iter()
        .map(|c| c.1["email"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        emails,
        vec![format!("mrj{id}-{vless}"), format!("mrj{id2}-{vless}")]
    );
    // The panel hangs: the node degrades, then goes down; recovery converges.
    fake.fail_next(9, Fault::Hang);
    for _ in 0..3 {
        assert!(t.app.sync_panel(node).await.is_err());
    }
    assert_eq!(
        t.get(&format!("/api/v1/nodes/{node}")).await.1["status"],
        json!("down")
    );
    fake.add_traffic(&format!("mrj{id2}-{vless}"), 10, 20);
    let r = sync(&t, node).await;
    assert_eq!((r.created, r.counted_bytes), (0, 30), "{r:?}");
    assert_eq!(
        t.get(&format!("/api/v1/nodes/{node}")).await.1["status"],
        json!("online")
    );
    assert_eq!(fake.clients().len(), 2);
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn marzban_provisions_counts_once_and_survives_lost_answers(#[case] backend: Backend) {
    let t = app!(backend, fast);
    let fake = FakeMarzban::start("admin", "pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (sub, node) = panel_sub(
        &t,
        "marzban",
        &fake.url(),
        &[("VLESS-TCP", "vless", 443), ("Trojan-WS", "trojan", 8443)],
        "leila",
    )
    .await;
    let id = sub["id"].as_i64().unwrap_or_default();
    assert_eq!(sync(&t, node).await.created, 1);
    let users = fake.users();
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!(u["username"], json!(format!("mrj{id}")));
    assert_eq!(u["proxies"]["vless"]["id"], sub["credential_uuid"]);
    assert_eq!(u["proxies"]["trojan"]["password"], sub["credential_secret"]);
    assert_eq!(u["data_limit"], json!(GB));
    let expires_ms = sub_of(&t, id).await;
    assert!(
        u["expire"].as_i64().unwrap_or(0) > 0 && u["expire"].as_i64().unwrap_or(0) < 10_000_000_000,
        "{u} {expires_ms}"
    );
    assert_eq!(u["inbounds"]["vless"], json!(["VLESS TCP"]));
    fake.add_traffic(&format!("mrj{id}"), 500);
    fake.revoke_tokens();
    assert_eq!(sync(&t, node).await.counted_bytes, 500);
    assert_eq!(sync(&t, node).await.counted_bytes, 0);
    assert_eq!(sub_of(&t, id).await["used_bytes"], json!(500));
    // Created, but the answer is lost: looked up, not created twice.
    let sub2 = new_sub(&t, node, "reza").await;
    fake.fail_next(2, Fault::Pass);
    fake.fail_next(1, Fault::ApplyThenHang);
    let r = sync(&t, node).await;
    assert_eq!(r.created, 0, "{r:?}");
    assert_eq!(fake.users().len(), 2);
    assert!(
        fake.users()
            .iter()
            .any(|u| u["username"] == json!(format!("mrj{}", sub2["id"])))
    );
    // Cap reached: disabled on the panel in the same sync.
    fake.add_traffic(&format!("mrj{id}"), GB);
    let r = sync(&t, node).await;
    assert_eq!(r.disabled, 1, "{r:?}");
    assert_eq!(sub_of(&t, id).await["status"], json!("limited"));
    t.stop().await;
}

fn links(body: &str) -> String {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_default();
    String::from_utf8(raw).unwrap_or_default()
}

#[tokio::test]
async fn imports_keep_credentials_and_run_twice_without_duplicates() {
    let t = app!(Backend::Sqlite, fast);
    let req = |kind, url: String| mrjbot_app::panels::ImportRequest {
        kind,
        url,
        username: "admin".into(),
        password: "pw".into(),
        token: None,
    };
    // 3x-UI: one customer on two inbounds (same subId).
    let xui = FakeXui::start(XuiVersion::V2_8, "/p4n3l/", "admin", "pw", None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let vless = xui.add_inbound(
        "vless",
        443,
        json!({}),
        json!({"network": "ws", "security": "tls",
        "tlsSettings": {"serverName": "vpn.example.com"}, "wsSettings": {"path": "/ws"}}),
    );
    let trojan = xui.add_inbound(
        "trojan",
        2083,
        json!({}),
        json!({"network": "tcp", "security": "tls"}),
    );
    let uuid = "7f2ee095-268e-4b72-a912-26c91703ae0c";
    xui.seed_client(
        vless,
        json!({"id": uuid, "email": "ali", "enable": true, "totalGB": 5 * GB,
        "expiryTime": 4_102_444_800_000_i64, "subId": "ali1"}),
    );
    xui.seed_client(
        trojan,
        json!({"password": "pw-ali-123", "email": "ali-t", "enable": true, "totalGB": 5 * GB,
        "expiryTime": 4_102_444_800_000_i64, "subId": "ali1"}),
    );
    xui.add_traffic("ali", 100, 200);
    let r = t
        .app
        .import_panel(&req(mrjbot_app::panels::ImportKind::Xui, xui.url()), &())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (r.imported, r.skipped, r.failed.len(), r.inbounds_created),
        (1, 0, 0, 2),
        "{r:?}"
    );
    let (_, subs) = t.get("/api/v1/subscriptions").await;
    let s = subs["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["credential_uuid"] == json!(uuid)))
        .cloned()
        .unwrap_or_else(|| panic!("imported subscription missing: {subs}"));
    assert_eq!(s["credential_secret"], json!("pw-ali-123"));
    assert_eq!(s["used_bytes"], json!(300));
    assert_eq!(s["data_limit_bytes"], json!(5 * GB));
    let (st, _, body) = t
        .fetch(&format!("/sub/{}", s["token"].as_str().unwrap_or("")), &[])
        .await;
    assert_eq!(st, StatusCode::OK);
    let l = links(&body);
    assert!(
        l.contains(&format!("vless://{uuid}@")) && l.contains("trojan://pw-ali-123@"),
        "{l}"
    );
    let again = t
        .app
        .import_panel(&req(mrjbot_app::panels::ImportKind::Xui, xui.url()), &())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (again.imported, again.skipped, again.node_id),
        (0, 1, r.node_id),
        "{again:?}"
    );
    // The reconciler takes the accounts over: nothing recreated, nothing counted twice.
    let rep = sync(&t, r.node_id).await;
    assert_eq!((rep.created, rep.counted_bytes), (0, 0), "{rep:?}");
    assert_eq!(xui.clients().len(), 2);
    // Marzban.
    let mz = FakeMarzban::start("admin", "pw")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let uuid2 = "1b7c9f0e-5d2a-4c3b-9e8f-0a1b2c3d4e5f";
    mz.seed_user(json!({"username": "bob", "proxies": {"vless": {"id": uuid2}, "trojan": {"password": "bob-pass-1"}},
        "inbounds": {"vless": ["VLESS TCP"], "trojan": ["Trojan WS"]}, "expire": 4_102_444_800_i64, "data_limit": GB,
        "status": "active"}), 1000);
    let m = t
        .app
        .import_panel(&req(mrjbot_app::panels::ImportKind::Marzban, mz.url()), &())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.imported, m.failed.len()), (1, 0), "{m:?}");
    let (_, subs) = t.get("/api/v1/subscriptions").await;
    let s = subs["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["credential_uuid"] == json!(uuid2)))
        .cloned()
        .unwrap_or_else(|| panic!("imported subscription missing: {subs}"));
    assert_eq!(
        (s["used_bytes"].clone(), s["status"].clone()),
        (json!(1000), json!("active"))
    );
    let (_, _, body) = t
        .fetch(&format!("/sub/{}", s["token"].as_str().unwrap_or("")), &[])
        .await;
    assert!(
        links(&body).contains(&format!("vless://{uuid2}@")),
        "{body}"
    );
    let m2 = t
        .app
        .import_panel(&req(mrjbot_app::panels::ImportKind::Marzban, mz.url()), &())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m2.imported, m2.skipped), (0, 1));
    let rep = sync(&t, m.node_id).await;
    assert_eq!((rep.created, rep.counted_bytes), (0, 0), "{rep:?}");
    assert_eq!(mz.users().len(), 1);
    t.stop().await;
}
