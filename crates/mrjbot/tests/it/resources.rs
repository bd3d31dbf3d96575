//! CRUD of users, roles, plans, nodes and inbounds over HTTP, with pagination, filters,
//! sorting and the audit entries each change leaves.

use crate::*;
use rstest::rstest;

async fn audit_actions(t: &TestApp, entity: &str, id: i64) -> Vec<String> {
    let (s, v) = t
        .get(&format!(
            "/api/v1/audit-log?entity_type={entity}&entity_id={id}&limit=100"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn users_crud_pagination_and_audit(#[case] backend: Backend) {
    let t = app!(backend);
    for i in 0..25 {
        let body = json!({"telegram_id": 1000 + i, "display_name": format!("Customer {i:02}"), "language": "ru"});
        let (s, v) = t.post("/api/v1/users", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["roles"], json!(["user"]));
    }
    let (s, v) = t
        .get("/api/v1/users?limit=10&offset=20&sort=id&order=asc")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["total"].as_i64(), v["items"].as_array().map(Vec::len)),
        (Some(26), Some(6))
    );
    let (_, v) = t
        .get("/api/v1/users?q=customer%201&sort=username&order=desc")
        .await;
    assert_eq!(v["total"], 10, "{v}");
    let (_, v) = t.get("/api/v1/users?telegram_id=1007").await;
    assert_eq!(v["items"][0]["display_name"], "Customer 07");
    let (_, v) = t.get("/api/v1/users?role=admin").await;
    assert_eq!(v["total"], 1);
    let (s, v) = t.get("/api/v1/users?sort=password_hash").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["details"]["fields"]["sort"].is_string());

    // Duplicate usernames and Telegram ids are field errors, not 500s.
    let (s, v) = t.post("/api/v1/users", json!({"telegram_id": 1003})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );
    assert!(
        v["error"]["details"]["fields"]["telegram_id"].is_string(),
        "{v}"
    );
    let (s, v) = t.post("/api/v1/users", json!({"username": "Admin"})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        v["error"]["details"]["fields"]["username"].is_string(),
        "{v}"
    );

    let (_, v) = t.get("/api/v1/users?telegram_id=1001").await;
    let id = v["items"][0]["id"].as_i64().unwrap_or_default();
    let (s, v) = t
        .patch(
            &format!("/api/v1/users/{id}"),
            json!({"display_name": "Renamed", "note": "vip soon"}),
        )
        .await;
    assert_eq!(
        (s, v["display_name"].as_str()),
        (StatusCode::OK, Some("Renamed"))
    );
    let (s, v) = t
        .patch(&format!("/api/v1/users/{id}"), json!({"language": "de"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        t.delete(&format!("/api/v1/users/{id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.get(&format!("/api/v1/users/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        audit_actions(&t, "user", id).await,
        vec!["user.create", "user.update", "user.delete"]
    );
    let (_, v) = t
        .get(&format!(
            "/api/v1/audit-log?entity_type=user&entity_id={id}&action=user.update"
        ))
        .await;
    let entry = &v["items"][0];
    assert_eq!(entry["actor_label"], "admin");
    assert_eq!(entry["before"]["display_name"], "Customer 01");
    assert_eq!(entry["after"]["display_name"], "Renamed");
    assert!(entry["before"].get("password_hash").is_none());
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn custom_roles_and_expiring_assignments(#[case] backend: Backend) {
    let mut t = app!(backend);
    let (s, role) = t
        .post("/api/v1/roles", json!({"name": "auditor", "description": "reads the log", "permissions": ["audit.read", "users.read"]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{role}");
    let role_id = role["id"].as_i64().unwrap_or_default();
    let (id, token) = t.user_with_role("aud1", "user").await;
    assert_eq!(
        t.call(Method::GET, "/api/v1/audit-log", Some(&token), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let until =
        mrjbot_domain::Timestamp::from_millis(t.app.now().millis() + 3_600_000).to_rfc3339();
    let (s, v) = t
        .post(
            &format!("/api/v1/users/{id}/roles"),
            json!({"role": "auditor", "expires_at": until}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        t.call(Method::GET, "/api/v1/audit-log", Some(&token), None)
            .await
            .0,
        StatusCode::OK
    );
    // Permissions follow the role at once, and the assignment lapses by itself.
    let (s, _) = t
        .patch(
            &format!("/api/v1/roles/{role_id}"),
            json!({"permissions": ["users.read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        t.call(Method::GET, "/api/v1/audit-log", Some(&token), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/users", Some(&token), None)
            .await
            .0,
        StatusCode::OK
    );
    t.travel(std::time::Duration::from_secs(3_601)).await;
    let token = t.login("aud1", "test-password-1").await.unwrap_or_default();
    assert_eq!(
        t.call(Method::GET, "/api/v1/users", Some(&token), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (_, v) = t.get(&format!("/api/v1/users/{id}/roles")).await;
    assert!(
        v.as_array().is_some_and(|a| a
            .iter()
            .any(|r| r["name"] == "auditor" && r["active"] == false)),
        "{v}"
    );

    // Built-in roles are fixed; names are unique.
    let (_, roles) = t.get("/api/v1/roles").await;
    let admin_id = roles
        .as_array()
        .and_then(|a| a.iter().find(|r| r["name"] == "admin"))
        .map(|r| r["id"].clone());
    let (s, v) = t
        .delete(&format!("/api/v1/roles/{}", admin_id.unwrap_or_default()))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("role_builtin"))
    );
    let (s, _) = t
        .post(
            "/api/v1/roles",
            json!({"name": "auditor", "permissions": []}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = t
        .post(
            "/api/v1/roles",
            json!({"name": "x", "permissions": ["no.such"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        t.delete(&format!("/api/v1/roles/{role_id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        audit_actions(&t, "role", role_id).await,
        vec!["role.create", "role.update", "role.delete"]
    );
    let (s, perms) = t.get("/api/v1/permissions").await;
    assert_eq!(
        (s, perms.as_array().map(Vec::len)),
        (StatusCode::OK, Some(mrjbot_domain::Permission::ALL.len()))
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn plans_crud_with_prices(#[case] backend: Backend) {
    let t = app!(backend);
    let body = json!({
        "name": "Germany 30d 50GB", "duration_days": 30, "data_limit_bytes": 50_000_000_000i64, "device_limit": 2,
        "ip_type": "constant", "region": "de", "sort_order": 2,
        "prices": [{"currency": "IRR", "amount_minor": 2_500_000}, {"currency": "USD", "amount_minor": 499}]
    });
    let (s, plan) = t.post("/api/v1/plans", body).await;
    assert_eq!(s, StatusCode::CREATED, "{plan}");
    let id = plan["id"].as_i64().unwrap_or_default();
    assert_eq!(plan["prices"].as_array().map(Vec::len), Some(2));
    let (s, _) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Cheap", "duration_days": 7, "is_active": false, "sort_order": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = t.get("/api/v1/plans?sort=sort_order").await;
    assert_eq!(v["items"][0]["name"], "Cheap");
    let (_, v) = t.get("/api/v1/plans?is_active=true").await;
    assert_eq!(v["total"], 1);
    let (s, v) = t
        .patch(
            &format!("/api/v1/plans/{id}"),
            json!({"prices": [{"currency": "RUB", "amount_minor": 39900}], "data_limit_bytes": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["prices"],
        json!([{"currency": "RUB", "amount_minor": 39900}])
    );
    assert!(v["data_limit_bytes"].is_null());
    for bad in [
        json!({"name": "x", "duration_days": 0}),
        json!({"name": "x", "duration_days": 30, "prices": [{"currency": "XXX", "amount_minor": 1}]}),
        json!({"name": "x", "duration_days": 30, "prices": [{"currency": "USD", "amount_minor": -1}]}),
        json!({"name": "x", "duration_days": 30, "prices": [{"currency": "USD", "amount_minor": 1}, {"currency": "USD", "amount_minor": 2}]}),
        json!({"name": "", "duration_days": 30}),
    ] {
        let (s, v) = t.post("/api/v1/plans", bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad} -> {v}");
    }
    let (s, _) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Germany 30d 50GB", "duration_days": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(
        t.delete(&format!("/api/v1/plans/{id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.get(&format!("/api/v1/plans/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn nodes_and_inbounds(#[case] backend: Backend) {
    let t = app!(backend);
    let (s, node) = t.post("/api/v1/nodes", json!({"name": "fra-1", "kind": "agent", "address": "fra1.example.com", "region": "de"})).await;
    assert_eq!(s, StatusCode::CREATED, "{node}");
    assert_eq!(node["secret"].as_str().map(str::len), Some(43));
    let id = node["id"].as_i64().unwrap_or_default();
    let (_, again) = t.get(&format!("/api/v1/nodes/{id}")).await;
    assert!(again.get("secret").is_none() && again.get("secret_hash").is_none());
    let (s, v) = t
        .post(
            "/api/v1/nodes",
            json!({"name": "panel", "kind": "xui", "address": "1.2.3.4"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, panel) = t
        .post("/api/v1/nodes", json!({"name": "panel", "kind": "xui", "address": "1.2.3.4", "api_url": "https://1.2.3.4:2053/path", "api_username": "u", "api_password": "p"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(panel.get("api_password").is_none());
    let (_, v) = t.get("/api/v1/nodes?kind=xui").await;
    assert_eq!(v["total"], 1);

    let inbound = json!({"tag": "vless-reality", "protocol": "vless", "port": 443, "security": "reality",
        "settings": {"sni": "www.example.com", "public_key": "QZnlifLjPPBYHmN-ndbgBOmCrHMopjdKEZCnF3tUxz0", "short_id": "12ab", "fp": "chrome", "flow": "xtls-rprx-vision"}});
    let (s, ib) = t
        .post(&format!("/api/v1/nodes/{id}/inbounds"), inbound.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ib}");
    let iid = ib["id"].as_i64().unwrap_or_default();
    assert_eq!(
        t.post(&format!("/api/v1/nodes/{id}/inbounds"), inbound)
            .await
            .0,
        StatusCode::CONFLICT
    );
    let (s, _) = t
        .post(
            &format!("/api/v1/nodes/{id}/inbounds"),
            json!({"tag": "h2", "protocol": "hysteria2", "port": 8443}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = t
        .post(
            &format!("/api/v1/nodes/{id}/inbounds"),
            json!({"tag": "bad", "protocol": "vmess", "port": 70000}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = t
        .call(Method::PUT, &format!("/api/v1/nodes/{id}/inbounds/{iid}"), Some(&t.admin_token),
            Some(json!({"tag": "vless-ws", "protocol": "vless", "port": 8080, "network": "ws", "settings": {"path": "/ws"}})))
        .await;
    assert_eq!((s, v["network"].as_str()), (StatusCode::OK, Some("ws")));
    let (_, list) = t.get(&format!("/api/v1/nodes/{id}/inbounds")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    // An inbound is addressed through its own node only.
    let pid = panel["id"].as_i64().unwrap_or_default();
    assert_eq!(
        t.get(&format!("/api/v1/nodes/{pid}/inbounds/{iid}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, rotated) = t
        .post(&format!("/api/v1/nodes/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(rotated["secret"], node["secret"]);
    assert_eq!(
        t.delete(&format!("/api/v1/nodes/{id}/inbounds/{iid}"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        t.delete(&format!("/api/v1/nodes/{id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.get(&format!("/api/v1/nodes/{id}/inbounds")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        audit_actions(&t, "node", id).await,
        vec!["node.create", "node.rotate_secret", "node.delete"]
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn operations_endpoints(#[case] backend: Backend) {
    let t = app!(backend);
    assert_eq!(
        t.call(Method::GET, "/healthz", None, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/readyz", None, None).await.0,
        StatusCode::OK
    );
    let _ = t.get("/api/v1/users").await;
    let text = t
        .http
        .get(format!("{}/metrics", t.base))
        .send()
        .await
        .map(|r| r.text());
    let text = match text {
        Ok(f) => f.await.unwrap_or_default(),
        Err(e) => panic!("{e}"),
    };
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/api/v1/users\""));
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("subscriptions{status=\"active\"}"));
    assert!(text.contains("db_pool_connections"));
    let resp = t
        .http
        .get(format!("{}/api/v1/users", t.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await;
    let resp = resp.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resp.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-42")
    );
    let (s, v) = t
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["openapi"].as_str().is_some_and(|o| o.starts_with("3.")));
    for p in [
        "/api/v1/auth/login",
        "/api/v1/users",
        "/api/v1/subscriptions/{id}/rotate-token",
        "/api/v1/audit-log",
    ] {
        assert!(v["paths"].get(p).is_some(), "{p} missing from the document");
    }
    let docs = t
        .http
        .get(format!("{}/api/docs/", t.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap_or_default();
    assert!(html.contains("swagger"), "docs page is served locally");
    let (s, v) = t.call(Method::GET, "/api/v1/nope", None, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    t.stop().await;
}
