//! Subscription links over HTTP: every format, the headers the apps read, the page,
//! and exactness of the in-memory read path (a change is served on the very next
//! request, on this replica and, on PostgreSQL, on every other within a second).

use crate::*;
use base64::Engine as _;
use mrjbot_domain::ShareLink;
use rstest::rstest;
use std::time::{Duration, Instant};

const GB: i64 = 1_000_000_000;

/// Creates `node` with `inbounds`, the customer `user`, the plan `plan` and a
/// subscription of that plan; returns (subscription, node id).
pub(crate) async fn subscribe(
    t: &TestApp,
    node: Value,
    inbounds: Vec<Value>,
    user: Value,
    plan: Value,
) -> (Value, i64) {
    let (s, n) = t.post("/api/v1/nodes", node).await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let node = n["id"].as_i64().unwrap_or_default();
    for ib in inbounds {
        let (s, v) = t.post(&format!("/api/v1/nodes/{node}/inbounds"), ib).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, u) = t.post("/api/v1/users", user).await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (s, p) = t.post("/api/v1/plans", plan).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, sub) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": u["id"], "plan_id": p["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    (sub, node)
}

/// A node with one inbound of every protocol, a customer, a plan and a subscription.
/// Returns (subscription id, token, node id).
pub(crate) async fn shop(t: &TestApp) -> (i64, String, i64) {
    let inbounds = vec![
        json!({"tag": "vless-reality", "protocol": "vless", "port": 443, "network": "tcp", "security": "reality",
               "settings": {"sni": "www.example.com", "fp": "chrome", "public_key": "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0",
                            "short_id": "0123abcd", "flow": "xtls-rprx-vision"}}),
        json!({"tag": "vless-ws-cdn", "protocol": "vless", "port": 8443, "network": "ws", "security": "tls",
               "settings": {"sni": "cdn.example.com", "host": "cdn.example.com", "path": "/ws",
                            "hosts": [{"address": "104.16.1.1", "port": 443, "remark": "CDN {NODE}"}]}}),
        json!({"tag": "vmess-ws", "protocol": "vmess", "port": 8080, "network": "ws", "security": "none",
               "settings": {"path": "/vm"}}),
        json!({"tag": "trojan", "protocol": "trojan", "port": 2083, "network": "tcp", "security": "tls",
               "settings": {"sni": "vpn.example.com", "alpn": ["h2", "http/1.1"]}}),
        json!({"tag": "ss2022", "protocol": "shadowsocks", "port": 8388, "network": "tcp", "security": "none",
               "settings": {"method": "2022-blake3-aes-128-gcm", "server_key": "qNeEgmABWLP5/d4g3+35dw=="}}),
        json!({"tag": "hy2", "protocol": "hysteria2", "port": 8443, "network": "udp", "security": "tls",
               "settings": {"sni": "vpn.example.com", "obfs_password": "gawr-obfs"}}),
    ];
    let (sub, node) = subscribe(
        t,
        json!({"name": "Frankfurt-1", "kind": "agent", "address": "de1.example.com", "region": "DE"}),
        inbounds,
        json!({"username": "sara", "telegram_id": 777001}),
        json!({"name": "Monthly 50", "duration_days": 30, "data_limit_bytes": 50 * GB,
               "prices": [{"currency": "IRR", "amount_minor": 3_000_000}]}),
    )
    .await;
    let token = sub["token"].as_str().unwrap_or_default().to_owned();
    (sub["id"].as_i64().unwrap_or_default(), token, node)
}

pub(crate) fn decode_list(body: &str) -> Vec<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_else(|e| panic!("body is not base64 ({e}): {body}"));
    String::from_utf8(raw)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn header(h: &reqwest::header::HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn every_format_and_header(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, token, _) = shop(&t).await;
    let path = format!("/sub/{token}");

    // Default (v2rayNG, Shadowrocket, curl): base64 list of parseable links.
    let (s, h, body) = t.fetch(&path, &[("user-agent", "v2rayNG/1.9.16")]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let links = decode_list(&body);
    assert_eq!(links.len(), 6, "{links:?}");
    for l in &links {
        let parsed = ShareLink::parse(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(&parsed.render(), l);
    }
    assert!(links[0].starts_with("vless://") && links[0].contains("security=reality"));
    assert!(links[0].contains("pbk=QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0"));
    assert!(links[1].contains("@104.16.1.1:443?") && links[1].ends_with("#CDN%20Frankfurt-1"));
    assert!(links[2].starts_with("vmess://"));
    assert!(
        links[4].starts_with("ss://2022-blake3-aes-128-gcm:qNeEgmABWLP5%2Fd4g3%2B35dw%3D%3D%3A")
    );
    assert!(links[5].starts_with("hysteria2://"));
    assert!(
        links[0].ends_with("#%F0%9F%87%A9%F0%9F%87%AA%20Frankfurt-1%20vless"),
        "{}",
        links[0]
    );
    assert_eq!(header(&h, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(
        header(&h, "subscription-userinfo"),
        format!("upload=0; download=0; total={}; expire={}", 50 * GB, {
            let (_, v) = t.get("/api/v1/subscriptions?limit=1").await;
            v["items"][0]["expires_at"]
                .as_str()
                .and_then(mrjbot_domain::Timestamp::parse_rfc3339)
                .map(|x| x.millis() / 1000)
                .unwrap_or_default()
        })
    );
    assert_eq!(header(&h, "profile-update-interval"), "12");
    assert_eq!(header(&h, "profile-title"), "base64:TVJKQm90");
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename=\"sara.txt\""
    );
    assert!(header(&h, "profile-web-page-url").ends_with(&path));

    // Plain links by path and by query.
    let (s, _, plain) = t.fetch(&format!("{path}/plain"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(plain.lines().collect::<Vec<_>>(), links);
    let (_, _, plain2) = t.fetch(&format!("{path}?format=plain"), &[]).await;
    assert_eq!(plain, plain2);

    // Clash Meta by User-Agent: YAML with every proxy mihomo needs.
    let (s, h, yaml) = t
        .fetch(&path, &[("user-agent", "clash-verge/v1.7.7")])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(header(&h, "content-type").starts_with("text/yaml"));
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{e}: {yaml}"));
    let proxies = doc["proxies"].as_sequence().cloned().unwrap_or_default();
    assert_eq!(proxies.len(), 6, "{yaml}");
    for p in &proxies {
        for key in ["name", "type", "server", "port"] {
            assert!(!p[key].is_null(), "{key} missing in {p:?}");
        }
    }
    assert!(
        doc["proxy-groups"]
            .as_sequence()
            .is_some_and(|g| !g.is_empty())
    );

    // sing-box by User-Agent: JSON with one outbound per link plus selector/urltest/direct.
    let (s, h, json_doc) = t
        .fetch(&path, &[("user-agent", "SFA/1.12.1 (Android 14)")])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "application/json");
    let v: Value = serde_json::from_str(&json_doc).unwrap_or_else(|e| panic!("{e}"));
    let outbounds = v["outbounds"].as_array().cloned().unwrap_or_default();
    let proxies = outbounds
        .iter()
        .filter(|o| {
            ["vless", "vmess", "trojan", "shadowsocks", "hysteria2"]
                .contains(&o["type"].as_str().unwrap_or(""))
        })
        .count();
    assert_eq!(proxies, 6, "{json_doc}");

    // Bad format, unknown and malformed tokens.
    let (s, _, _) = t.fetch(&format!("{path}?format=bogus"), &[]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = t.fetch(&format!("{path}/bogus"), &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for bad in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
        "%00",
        "..%2F..%2Fetc",
    ] {
        let (s, _, body) = t.fetch(&format!("/sub/{bad}"), &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
        assert!(!body.contains("vless"), "{bad}");
    }

    // A Telegram-only customer (no user name) is served too, named after the account.
    let (_, u) = t.post("/api/v1/users", json!({"telegram_id": 31337})).await;
    let (_, plans) = t.get("/api/v1/plans").await;
    let (s, sub2) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": u["id"], "plan_id": plans["items"][0]["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub2}");
    let (s, h, _) = t
        .fetch(
            &format!("/sub/{}", sub2["token"].as_str().unwrap_or_default()),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        header(&h, "content-disposition"),
        format!("attachment; filename=\"user{}.txt\"", u["id"])
    );
    // ... and survives a full reload of the read path (a restart, a lost listener).
    assert!(t.app.feed_reload_all().await.is_ok());
    assert_eq!(t.fetch(&path, &[]).await.0, StatusCode::OK);

    // A browser gets the page, in the language asked for.
    let (s, h, html) = t
        .fetch(
            &path,
            &[
                ("accept", "text/html,application/xhtml+xml"),
                ("accept-language", "ru-RU,ru;q=0.9"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert!(
        html.contains("lang=\"ru\"") && html.contains("<svg"),
        "{html}"
    );
    assert!(html.contains("v2rayng://install-config?url="));
    let (_, _, fa) = t
        .fetch(&format!("{path}?lang=fa"), &[("accept", "text/html")])
        .await;
    assert!(fa.contains("dir=\"rtl\"") && fa.contains("۳۰ روز"), "{fa}");
    t.stop().await;
}

async fn links_now(t: &TestApp, token: &str) -> (StatusCode, Vec<String>, String) {
    let (s, h, body) = t.fetch(&format!("/sub/{token}"), &[]).await;
    if s != StatusCode::OK {
        return (s, Vec::new(), String::new());
    }
    (s, decode_list(&body), header(&h, "subscription-userinfo"))
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn changes_show_on_the_next_request(#[case] backend: Backend) {
    let mut t = app!(backend);
    let (id, token, node) = shop(&t).await;
    let path = |a: &str| format!("/api/v1/subscriptions/{id}{a}");
    let (_, links, info) = links_now(&t, &token).await;
    assert_eq!(links.len(), 6);
    assert!(info.contains(&format!("total={}", 50 * GB)));

    // Suspended: one placeholder that names the problem, no credentials.
    let (s, _) = t.post(&path("/suspend"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, links, _) = links_now(&t, &token).await;
    assert_eq!(links.len(), 1, "{links:?}");
    let p = ShareLink::parse(&links[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 1));
    assert!(
        p.remark.contains("disabled") || p.remark.contains("Disabled"),
        "{}",
        p.remark
    );
    let (s, sub) = t.get(&path("")).await;
    assert_eq!(s, StatusCode::OK);
    let uuid = sub["credential_uuid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!links[0].contains(&uuid));

    // Back on, more data: served at once.
    let (s, _) = t.post(&path("/activate"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t.post(&path("/add-data"), json!({"bytes": 10 * GB})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, links, info) = links_now(&t, &token).await;
    assert_eq!(links.len(), 6);
    assert!(info.contains(&format!("total={}", 60 * GB)), "{info}");

    // Inbound change and a new template: next request.
    let (s, ibs) = t.get(&format!("/api/v1/nodes/{node}/inbounds")).await;
    assert_eq!(s, StatusCode::OK);
    let trojan = ibs
        .as_array()
        .and_then(|a| a.iter().find(|i| i["tag"] == "trojan"))
        .map(|i| i["id"].as_i64().unwrap_or_default())
        .unwrap_or_default();
    let (s, v) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/nodes/{node}/inbounds/{trojan}"),
            Some(&t.admin_token),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, v) = t
        .call(Method::PUT, "/api/v1/settings/subscription", Some(&t.admin_token),
            Some(json!({"title": "Shop ✨", "remark_template": "{USERNAME} {DATA_LEFT} {DAYS_LEFT}d", "language": "en"})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, h, body) = t.fetch(&format!("/sub/{token}"), &[]).await;
    let links = decode_list(&body);
    assert_eq!(links.len(), 5);
    assert!(links.iter().all(|l| !l.starts_with("trojan://")));
    let left = mrjbot_i18n::format_bytes(60 * GB as u64, mrjbot_i18n::Lang::En).replace(' ', "%20");
    assert!(
        links[0].ends_with(&format!("#sara%20{left}%2030d")),
        "{}",
        links[0]
    );
    assert_eq!(
        header(&h, "profile-title"),
        format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode("Shop ✨")
        )
    );

    // Expiry by the clock alone (no sweep needed): the placeholder says expired.
    t.travel(Duration::from_secs(31 * 86_400)).await;
    let (_, links, _) = links_now(&t, &token).await;
    assert_eq!(links.len(), 1);
    assert!(links[0].to_lowercase().contains("expired"), "{}", links[0]);
    let (s, _) = t.post(&path("/renew"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, links, _) = links_now(&t, &token).await;
    assert_eq!(links.len(), 5);

    // Rotate: the old link dies, the new one works. Revoke: nothing works.
    let (s, v) = t.post(&path("/rotate-token"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let new_token = v["token"].as_str().unwrap_or_default().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(links_now(&t, &token).await.0, StatusCode::NOT_FOUND);
    assert_eq!(links_now(&t, &new_token).await.0, StatusCode::OK);
    let (s, _) = t.post(&path("/revoke-token"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(links_now(&t, &new_token).await.0, StatusCode::NOT_FOUND);
    t.stop().await;
}

/// Polls `f` until it is true or a second has passed; returns how long it took.
async fn within_a_second<F, Fut>(mut f: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        if f().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn replicas_serve_each_others_changes_within_a_second() {
    let t = app!(Backend::Postgres);
    let (id, token, _) = shop(&t).await;
    let b = t.replica().await;
    b.app.sub_ready().await;
    assert_eq!(links_now(&b, &token).await.1.len(), 6);

    let (s, _) = t
        .post(&format!("/api/v1/subscriptions/{id}/suspend"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let took = within_a_second(|| async { links_now(&b, &token).await.1.len() == 1 }).await;
    assert!(
        took.is_some(),
        "replica B still serves the suspended subscription"
    );

    let (s, v) = b
        .post(
            &format!("/api/v1/subscriptions/{id}/rotate-token"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_token = v["token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(links_now(&b, &token).await.0, StatusCode::NOT_FOUND);
    let took =
        within_a_second(|| async { links_now(&t, &token).await.0 == StatusCode::NOT_FOUND }).await;
    assert!(
        took.is_some(),
        "replica A still serves the rotated-out token"
    );
    assert_eq!(links_now(&t, &new_token).await.0, StatusCode::OK);

    let (s, _) = b
        .call(
            Method::PUT,
            "/api/v1/settings/subscription",
            Some(&b.admin_token),
            Some(json!({"title": "Replica"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let took = within_a_second(|| async {
        let (_, h, _) = t.fetch(&format!("/sub/{new_token}"), &[]).await;
        header(&h, "profile-title") == "base64:UmVwbGljYQ=="
    })
    .await;
    assert!(took.is_some(), "replica A did not pick up the new settings");

    // A subscription created on A is served by B.
    let (s, sub) = t
        .post("/api/v1/subscriptions", json!({"user_id": 2, "plan_id": 1}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let fresh = sub["token"].as_str().unwrap_or_default().to_owned();
    let took = within_a_second(|| async { links_now(&b, &fresh).await.0 == StatusCode::OK }).await;
    assert!(
        took.is_some(),
        "replica B does not know the new subscription"
    );
    b.stop().await;
    t.stop().await;
}
