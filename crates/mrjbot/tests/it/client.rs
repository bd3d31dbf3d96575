//! A real VPN client imports the subscription: a real sing-box core serves the
//! subscription's credentials on loopback, and every share link the product hands out,
//! turned into a client config by the product's own sing-box document, fetches a page
//! through it. Also: every document passes `sing-box check`.

use crate::*;
use mrjbot_domain::document::{self, SingBoxOptions};
use mrjbot_domain::{Credentials, ShareLink};
use mrjbot_testkit::cores::{self, Core, Origin};

struct Ports {
    vless: u16,
    trojan: u16,
    vmess: u16,
    ss: u16,
    hy2: u16,
}

const SS_METHOD: &str = "2022-blake3-aes-128-gcm";
const SS_SERVER_KEY: &str = "qNeEgmABWLP5/d4g3+35dw==";

/// The server side for one subscription, as the node agent will configure it.
fn server_config(cert: &cores::TestCert, p: &Ports, creds: &Credentials) -> Value {
    let mut hy2_tls = cert.server_tls();
    hy2_tls["alpn"] = json!(["h3"]);
    json!({
        "log": {"level": "warn"},
        "inbounds": [
            {"type": "vless", "tag": "vless-in", "listen": "127.0.0.1", "listen_port": p.vless,
             "users": [{"name": "sub", "uuid": creds.uuid, "flow": ""}], "tls": cert.server_tls()},
            {"type": "trojan", "tag": "trojan-in", "listen": "127.0.0.1", "listen_port": p.trojan,
             "users": [{"name": "sub", "password": creds.secret}], "tls": cert.server_tls()},
            {"type": "vmess", "tag": "vmess-in", "listen": "127.0.0.1", "listen_port": p.vmess,
             "users": [{"name": "sub", "uuid": creds.uuid, "alterId": 0}],
             "transport": {"type": "ws", "path": "/vm"}},
            {"type": "shadowsocks", "tag": "ss-in", "listen": "127.0.0.1", "listen_port": p.ss,
             "method": SS_METHOD, "password": SS_SERVER_KEY,
             "users": [{"name": "sub", "password": creds.shadowsocks_key(SS_METHOD)}]},
            {"type": "hysteria2", "tag": "hy2-in", "listen": "127.0.0.1", "listen_port": p.hy2,
             "users": [{"name": "sub", "password": creds.secret}], "tls": hy2_tls}
        ],
        "outbounds": [{"type": "direct", "tag": "direct"}]
    })
}

/// The product's sing-box document for one link, with the local proxy port moved to
/// `port` and traffic sent straight to that link's outbound (no URL test: no internet).
pub(crate) fn client_for(link: &ShareLink, port: u16) -> Value {
    let text = document::sing_box(
        std::slice::from_ref(link),
        &SingBoxOptions {
            title: "test".into(),
            tun: false,
        },
    );
    let mut v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    if let Some(inbounds) = v["inbounds"].as_array_mut() {
        for i in inbounds.iter_mut() {
            if i["type"] == "mixed" {
                i["listen_port"] = json!(port);
            }
        }
    }
    let tag = v["outbounds"]
        .as_array()
        .and_then(|o| {
            o.iter().find(|o| {
                ["vless", "vmess", "trojan", "shadowsocks", "hysteria2"]
                    .contains(&o["type"].as_str().unwrap_or(""))
            })
        })
        .map(|o| o["tag"].clone())
        .unwrap_or(Value::Null);
    v["route"]["final"] = tag;
    // The document sends private addresses around the proxy; the test's origin is on
    // loopback, so that rule would bypass the very server under test.
    v["route"]["rules"] = json!([{"action": "sniff"}]);
    v
}

#[tokio::test]
async fn a_real_client_connects_with_every_link() {
    let Some(bin) = cores::require_sing_box() else {
        return;
    };
    let t = app!(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cert = cores::self_signed_cert(dir.path()).unwrap_or_else(|e| panic!("{e:#}"));
    let origin = Origin::start(1_000_000)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let p = Ports {
        vless: cores::free_port(),
        trojan: cores::free_port(),
        vmess: cores::free_port(),
        ss: cores::free_port(),
        hy2: cores::free_udp_port(),
    };

    // The seller's node and inbounds, as they would enter them in the dashboard.
    let tls = json!({"sni": "localhost", "allow_insecure": true});
    let (sub, _) = crate::sub::subscribe(
        &t,
        json!({"name": "local", "kind": "agent", "address": "127.0.0.1"}),
        vec![
            json!({"tag": "vless-in", "protocol": "vless", "port": p.vless, "security": "tls", "settings": tls}),
            json!({"tag": "trojan-in", "protocol": "trojan", "port": p.trojan, "security": "tls", "settings": tls}),
            json!({"tag": "vmess-in", "protocol": "vmess", "port": p.vmess, "network": "ws", "settings": {"path": "/vm"}}),
            json!({"tag": "ss-in", "protocol": "shadowsocks", "port": p.ss,
                   "settings": {"method": SS_METHOD, "server_key": SS_SERVER_KEY}}),
            json!({"tag": "hy2-in", "protocol": "hysteria2", "port": p.hy2, "security": "tls",
                   "settings": {"sni": "localhost", "allow_insecure": true, "alpn": ["h3"]}}),
        ],
        json!({"telegram_id": 5150}),
        json!({"name": "Week", "duration_days": 7}),
    )
    .await;
    let creds = Credentials {
        uuid: sub["credential_uuid"].as_str().unwrap_or_default().into(),
        secret: sub["credential_secret"].as_str().unwrap_or_default().into(),
    };
    let token = sub["token"].as_str().unwrap_or_default().to_owned();

    let server = Core::start(&bin, &server_config(&cert, &p, &creds), dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));

    // What the customer's app downloads.
    let (s, _, body) = t.fetch(&format!("/sub/{token}"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let links = crate::sub::decode_list(&body);
    assert_eq!(links.len(), 5, "{links:?}");
    let mut worked = Vec::new();
    for text in &links {
        let link = ShareLink::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let port = cores::free_port();
        let config = client_for(&link, port);
        cores::sing_box_check(&bin, &config, dir.path())
            .await
            .unwrap_or_else(|e| panic!("sing-box check failed for {text}: {e}"));
        let client = Core::start(&bin, &config, dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let got = cores::fetch_via_socks(port, &origin.host_port(), "/blob").await;
        match got {
            Ok(b) => assert_eq!(b, Origin::blob(1_000_000), "{text}: wrong bytes"),
            Err(e) => panic!(
                "{text}: no traffic through the core: {e:#}\nclient log:\n{}\nserver log:\n{}",
                client.log(),
                server.log()
            ),
        }
        worked.push(link.proxy.protocol());
        drop(client);
    }
    assert_eq!(worked.len(), 5);

    // Suspended: the document holds only the placeholder, which connects nowhere.
    let id = sub["id"].as_i64().unwrap_or_default();
    let (s, _) = t
        .post(&format!("/api/v1/subscriptions/{id}/suspend"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, body) = t.fetch(&format!("/sub/{token}"), &[]).await;
    let links = crate::sub::decode_list(&body);
    assert_eq!(links.len(), 1);
    let link = ShareLink::parse(&links[0]).unwrap_or_else(|e| panic!("{e}"));
    let port = cores::free_port();
    let config = client_for(&link, port);
    let client = Core::start(&bin, &config, dir.path())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        cores::fetch_via_socks(port, &origin.host_port(), "/")
            .await
            .is_err(),
        "the placeholder link carried traffic: {config}"
    );
    drop(client);
    drop(server);
    t.stop().await;
}

/// The sing-box document the endpoint serves (every protocol and transport this build
/// of sing-box supports) passes `sing-box check`.
#[tokio::test]
async fn sing_box_accepts_the_served_document() {
    let Some(bin) = cores::require_sing_box() else {
        return;
    };
    let t = app!(Backend::Sqlite);
    // No uTLS fingerprints or REALITY: the PyPI build of sing-box lacks uTLS.
    let (sub, _) = crate::sub::subscribe(
        &t,
        json!({"name": "n1", "kind": "agent", "address": "n1.example.com", "region": "NL"}),
        vec![
            json!({"tag": "a", "protocol": "vless", "port": 443, "security": "tls", "settings": {"sni": "n1.example.com", "flow": "xtls-rprx-vision"}}),
            json!({"tag": "b", "protocol": "vless", "port": 2053, "network": "ws", "security": "tls",
                   "settings": {"sni": "cdn.example.com", "host": "cdn.example.com", "path": "/ws?ed=2048",
                                "hosts": [{"address": "104.16.0.1"}, {"address": "104.16.0.2", "port": 8443}]}}),
            json!({"tag": "c", "protocol": "vless", "port": 2083, "network": "grpc", "security": "tls", "settings": {"service_name": "gun"}}),
            json!({"tag": "d", "protocol": "vless", "port": 2087, "network": "httpupgrade", "security": "tls", "settings": {"path": "/up"}}),
            json!({"tag": "e", "protocol": "vmess", "port": 8080, "network": "ws", "settings": {"path": "/vm"}}),
            json!({"tag": "f", "protocol": "trojan", "port": 8443, "security": "tls", "settings": {"alpn": ["h2", "http/1.1"]}}),
            json!({"tag": "g", "protocol": "shadowsocks", "port": 8388, "settings": {"method": "chacha20-ietf-poly1305"}}),
            json!({"tag": "h", "protocol": "shadowsocks", "port": 8389, "settings": {"method": "2022-blake3-aes-256-gcm"}}),
            json!({"tag": "i", "protocol": "hysteria2", "port": 443, "security": "tls",
                   "settings": {"obfs_password": "x", "hop_ports": "20000-30000"}}),
        ],
        json!({"telegram_id": 99}),
        json!({"name": "P", "duration_days": 30}),
    )
    .await;
    let token = sub["token"].as_str().unwrap_or_default();
    let (s, _, doc) = t.fetch(&format!("/sub/{token}/sing-box"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = cores::sing_box_check(&bin, &v, dir.path()).await {
        panic!("sing-box rejects the served document: {e}\n{doc}");
    }
    t.stop().await;
}
