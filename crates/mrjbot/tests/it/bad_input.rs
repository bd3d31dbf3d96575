//! Bad input gets the right 4xx in the one error shape and changes nothing.

use crate::*;
use rstest::rstest;

async fn raw(
    t: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = t
        .http
        .request(method, format!("{}{}", t.base, path))
        .bearer_auth(&t.admin_token)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    let s = resp.status();
    (
        s,
        serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null),
    )
}

async fn snapshot(t: &TestApp) -> (Value, Value) {
    (
        t.get("/api/v1/users?limit=500").await.1["items"].clone(),
        t.get("/api/v1/plans?limit=500").await.1["items"].clone(),
    )
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn bad_requests_change_nothing(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, plan) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Base", "duration_days": 30}),
        )
        .await;
    let pid = plan["id"].as_i64().unwrap_or_default();
    let before = snapshot(&t).await;
    let json_ct = Some("application/json");

    let (s, v) = raw(
        &t,
        Method::POST,
        "/api/v1/users",
        json_ct,
        b"{\"username\": \"abc\",".to_vec(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_request"))
    );
    let (s, v) = raw(
        &t,
        Method::POST,
        "/api/v1/users",
        json_ct,
        b"[1,2,3]".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = raw(
        &t,
        Method::POST,
        "/api/v1/users",
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await;
    assert!(
        s == StatusCode::BAD_REQUEST || s == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{s} {v}"
    );
    assert!(v["error"]["code"].is_string());

    // Wrong types and unknown fields name the field.
    let (s, v) = t.post("/api/v1/users", json!({"username": 12345})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["details"]["fields"]["username"].is_string(),
        "{v}"
    );
    let (s, v) = t
        .post(
            "/api/v1/users",
            json!({"username": "okname", "is_admin": true}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["details"]["fields"]["is_admin"].is_string(),
        "{v}"
    );
    let (s, v) = t
        .post(
            "/api/v1/plans",
            json!({"name": "x", "duration_days": "thirty"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["details"]["fields"]["duration_days"].is_string(),
        "{v}"
    );
    let (s, v) = t.post("/api/v1/plans", json!({"name": "x"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["error"]["details"]["fields"]["duration_days"].is_string(),
        "{v}"
    );
    let (s, _) = t
        .post(
            "/api/v1/plans",
            json!({"name": "x", "duration_days": 1e300}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.get("/api/v1/users?limit=abc").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.get("/api/v1/users?limit=100000").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.get("/api/v1/users?offset=-1").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.get("/api/v1/users/abc").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t.get("/api/v1/users/99999999999999999999").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A huge body is refused before it is read whole.
    let huge = format!(
        "{{\"name\": \"{}\", \"duration_days\": 30}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (s, v) = raw(
        &t,
        Method::POST,
        "/api/v1/plans",
        json_ct,
        huge.into_bytes(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (s, _) = t
        .post(
            "/api/v1/plans",
            json!({"name": "y".repeat(65), "duration_days": 30}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // SQL metacharacters are data, never SQL.
    for evil in [
        "x' OR '1'='1",
        "x'; DROP TABLE users;--",
        "%",
        "_",
        "\\",
        "ü'\"{}",
    ] {
        let (s, v) = t.get(&format!("/api/v1/users?q={}", urlencode(evil))).await;
        assert_eq!(s, StatusCode::OK, "{evil}: {v}");
        assert_eq!(v["total"], 0, "{evil} matched: {v}");
        let (s, _) = t
            .patch(
                &format!("/api/v1/plans/{pid}"),
                json!({"description": evil}),
            )
            .await;
        assert!(s == StatusCode::OK, "{evil}");
        let (s, _) = t
            .get(&format!("/api/v1/audit-log?action={}", urlencode(evil)))
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, v) = t
        .post(
            "/api/v1/users",
            json!({"username": "a'; DROP TABLE users;--"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, v) = t.get(&format!("/api/v1/plans/{pid}")).await;
    assert_eq!(v["description"], "ü'\"{}");
    // NUL characters cannot be stored by PostgreSQL: refused on both engines alike.
    let (s, v) = t
        .patch(
            &format!("/api/v1/plans/{pid}"),
            json!({"description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        t.get("/api/v1/users?q=%00").await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    t.patch(&format!("/api/v1/plans/{pid}"), json!({"description": ""}))
        .await;
    let after = snapshot(&t).await;
    assert_eq!(before.0, after.0, "users unchanged");
    assert_eq!(
        before.1.as_array().map(Vec::len),
        after.1.as_array().map(Vec::len),
        "plans unchanged"
    );
    t.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
