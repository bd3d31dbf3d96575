//! The subscription lifecycle over HTTP: create, renew with stacking, extend, add data,
//! suspend, activate, reset traffic, rotate and revoke the link, expiry by the clock.

use crate::*;
use rstest::rstest;
use std::time::Duration;

const GB: i64 = 1_000_000_000;
const DAY: Duration = Duration::from_secs(86_400);

async fn customer_and_plan(t: &TestApp) -> (i64, i64) {
    let (s, u) = t
        .post(
            "/api/v1/users",
            json!({"telegram_id": 424242, "display_name": "Ali"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (s, p) = t
        .post("/api/v1/plans", json!({"name": "Monthly", "duration_days": 30, "data_limit_bytes": 50 * GB, "device_limit": 3,
            "prices": [{"currency": "IRR", "amount_minor": 3_000_000}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    (
        u["id"].as_i64().unwrap_or_default(),
        p["id"].as_i64().unwrap_or_default(),
    )
}

fn ms(v: &Value) -> i64 {
    v.as_str()
        .and_then(mrjbot_domain::Timestamp::parse_rfc3339)
        .map(|t| t.millis())
        .unwrap_or_default()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn lifecycle(#[case] backend: Backend) {
    let mut t = app!(backend);
    let (uid, pid) = customer_and_plan(&t).await;
    let (s, sub) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": uid, "plan_id": pid}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let id = sub["id"].as_i64().unwrap_or_default();
    let path = |a: &str| format!("/api/v1/subscriptions/{id}{a}");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["data_limit_bytes"], 50 * GB);
    assert_eq!(sub["device_limit"], 3);
    assert_eq!(sub["token"].as_str().map(str::len), Some(43));
    let created_expiry = ms(&sub["expires_at"]);

    // Renew 10 days in, having used 20 GB: 30 more days on top, 30 GB left + 50 GB.
    t.travel(DAY * 10).await;
    {
        let mut tx = t.app.db().begin().await.unwrap_or_else(|e| panic!("{e}"));
        mrjbot_db::on!(tx.conn(), c, D => {
            sqlx::query::<D>("UPDATE subscriptions SET used_bytes = $1 WHERE id = $2")
                .bind(20 * GB).bind(id).execute(&mut *c).await.unwrap_or_else(|e| panic!("{e}"));
        });
        tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    }
    let (s, v) = t
        .call(Method::POST, &path("/renew"), Some(&t.admin_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(ms(&v["expires_at"]), created_expiry + 30 * 86_400_000);
    assert_eq!(v["data_limit_bytes"], 80 * GB);
    assert_eq!(
        (v["used_bytes"].as_i64(), v["lifetime_used_bytes"].as_i64()),
        (Some(0), Some(20 * GB))
    );

    let (s, v) = t.post(&path("/extend"), json!({"days": 5})).await;
    assert_eq!(
        (s, ms(&v["expires_at"])),
        (StatusCode::OK, created_expiry + 35 * 86_400_000)
    );
    let (s, v) = t.post(&path("/add-data"), json!({"bytes": 5 * GB})).await;
    assert_eq!(
        (s, v["data_limit_bytes"].as_i64()),
        (StatusCode::OK, Some(85 * GB))
    );
    assert_eq!(
        t.post(&path("/add-data"), json!({"bytes": 0})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let (s, v) = t.post(&path("/suspend"), json!({})).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    let (s, v) = t.post(&path("/suspend"), json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::CONFLICT,
            Some("invalid_subscription_transition")
        )
    );
    let (s, v) = t.post(&path("/renew"), json!({})).await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a disabled subscription is not renewed: {v}"
    );
    let (s, v) = t.post(&path("/activate"), json!({})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("active")));

    let old_token = v["token"].as_str().unwrap_or_default().to_owned();
    let (s, v) = t.post(&path("/rotate-token"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_ne!(v["token"].as_str().unwrap_or_default(), old_token);
    let by_old = mrjbot_db::subscriptions::get_by_token(
        t.app
            .db()
            .read()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .conn(),
        &old_token,
    )
    .await;
    assert!(
        by_old.is_ok_and(|r| r.is_none()),
        "the old link must name nothing"
    );
    let (s, v) = t.post(&path("/revoke-token"), json!({})).await;
    assert_eq!((s, v["token"].is_null()), (StatusCode::OK, true));
    assert_eq!(
        t.post(&path("/revoke-token"), json!({})).await.0,
        StatusCode::CONFLICT
    );

    let (s, v) = t.post(&path("/reset-traffic"), json!({})).await;
    assert_eq!((s, v["used_bytes"].as_i64()), (StatusCode::OK, Some(0)));
    let (s, v) = t
        .patch(
            &path(""),
            json!({"note": "paid by card", "device_limit": 5}),
        )
        .await;
    assert_eq!(
        (s, v["note"].as_str(), v["device_limit"].as_i64()),
        (StatusCode::OK, Some("paid by card"), Some(5))
    );

    // Time passes beyond the expiry: the sweeper marks it expired; extend revives it.
    t.travel(DAY * 60).await;
    assert!(t.app.expire_due().await.is_ok_and(|n| n == 1));
    let (_, v) = t.get(&path("")).await;
    assert_eq!(v["status"], "expired");
    let (_, v) = t.get("/api/v1/subscriptions?status=expired").await;
    assert_eq!(v["total"], 1);
    let (s, v) = t.post(&path("/extend"), json!({"days": 7})).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("active")));

    let (_, v) = t
        .get(&format!(
            "/api/v1/audit-log?entity_type=subscription&entity_id={id}&limit=100"
        ))
        .await;
    let actions: Vec<&str> = v["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        vec![
            "subscription.create",
            "subscription.renew",
            "subscription.extend",
            "subscription.add_data",
            "subscription.suspend",
            "subscription.activate",
            "subscription.rotate_token",
            "subscription.revoke_token",
            "subscription.reset_traffic",
            "subscription.update",
            "subscription.extend"
        ]
    );
    // Audit entries never carry the link token or credentials.
    assert!(!v.to_string().contains(&old_token));

    assert_eq!(t.delete(&path("")).await.0, StatusCode::OK);
    assert_eq!(t.get(&path("")).await.0, StatusCode::NOT_FOUND);
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn on_hold_and_temporary(#[case] backend: Backend) {
    let t = app!(backend);
    let (uid, pid) = customer_and_plan(&t).await;
    let (s, v) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": uid, "plan_id": pid, "start": "on_first_use"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        (
            v["status"].as_str(),
            v["hold_days"].as_i64(),
            v["expires_at"].is_null()
        ),
        (Some("on_hold"), Some(30), true)
    );
    let hold = v["id"].as_i64().unwrap_or_default();
    let (_, v) = t
        .post(
            &format!("/api/v1/subscriptions/{hold}/renew"),
            json!({"plan_id": pid}),
        )
        .await;
    assert_eq!(v["hold_days"], 60);
    assert_eq!(v["data_limit_bytes"], 100 * GB);

    let body = json!({"user_id": uid, "plan_id": pid, "start": "temporary", "temporary_percent": 10, "temporary_days": 3});
    let (s, v) = t.post("/api/v1/subscriptions", body).await;
    assert_eq!(
        (s, v["status"].as_str(), v["data_limit_bytes"].as_i64()),
        (StatusCode::CREATED, Some("temporary"), Some(5 * GB))
    );
    let temp = v["id"].as_i64().unwrap_or_default();
    let (_, v) = t
        .post(&format!("/api/v1/subscriptions/{temp}/renew"), json!({}))
        .await;
    assert_eq!(
        (v["status"].as_str(), v["data_limit_bytes"].as_i64()),
        (Some("active"), Some(50 * GB))
    );
    let (s, _) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": uid, "plan_id": pid, "start": "temporary", "temporary_days": 99}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": 999_999, "plan_id": pid}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["details"]["fields"]["user_id"].is_string());
    let (_, v) = t
        .get(&format!(
            "/api/v1/subscriptions?user_id={uid}&sort=id&order=desc"
        ))
        .await;
    assert_eq!(v["total"], 2);
    // A user with subscriptions cannot be deleted; disabling is the way.
    let (s, v) = t.delete(&format!("/api/v1/users/{uid}")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("in_use"))
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn concurrent_changes_are_not_lost(#[case] backend: Backend) {
    let t = app!(backend);
    let (uid, pid) = customer_and_plan(&t).await;
    let (_, v) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": uid, "plan_id": pid}),
        )
        .await;
    let id = v["id"].as_i64().unwrap_or_default();
    let expiry = ms(&v["expires_at"]);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let http = t.http.clone();
        let url = format!("{}/api/v1/subscriptions/{id}/extend", t.base);
        let token = t.admin_token.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"days": 1}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    for task in tasks {
        assert!(matches!(task.await, Ok(Ok(s)) if s == StatusCode::OK));
    }
    let (_, v) = t.get(&format!("/api/v1/subscriptions/{id}")).await;
    assert_eq!(
        ms(&v["expires_at"]),
        expiry + 10 * 86_400_000,
        "every extension counted once"
    );
    assert_eq!(v["version"], 11);
    t.stop().await;
}
