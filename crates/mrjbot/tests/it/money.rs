//! The money path end to end over HTTP: card-to-card with receipts and racing admins,
//! the wallet, discount codes, refunds, undeliverable orders, and the financial report.
//! Gateway flows (Zarinpal, YooKassa, Crypto Pay, Stars) against their fakes are in
//! `money_gateways`.

use crate::*;
use mrjbot_testkit::receipts;
use rstest::rstest;
use std::time::{Duration, Instant};

pub(crate) const PRICE_IRR: i64 = 1_500_000;

/// A shop: one node in region `de`, a plan sold there in every currency, a destination
/// card, and a customer with a Telegram account.
pub(crate) struct Shop {
    pub plan: i64,
    pub node: i64,
    pub card: i64,
    pub customer: i64,
    pub token: String,
}

pub(crate) async fn shop(t: &TestApp, name: &str) -> Shop {
    let (s, n) = t
        .post("/api/v1/nodes", json!({"name": format!("{name}-node"), "kind": "agent", "address": "10.1.0.1", "region": "de"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let node = n["id"].as_i64().unwrap_or_default();
    let (s, v) = t
        .post(&format!("/api/v1/nodes/{node}/inbounds"), json!({"tag": "vmess", "protocol": "vmess", "port": 8080, "network": "ws", "security": "none", "settings": {"path": "/vm"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, p) = t
        .post(
            "/api/v1/plans",
            json!({"name": format!("{name} 30 days"), "duration_days": 30, "data_limit_bytes": 50_000_000_000i64, "region": "de",
                   "prices": [{"currency": "IRR", "amount_minor": PRICE_IRR}, {"currency": "RUB", "amount_minor": 19_900},
                              {"currency": "XTR", "amount_minor": 150}, {"currency": "USD", "amount_minor": 399}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, c) = t
        .post(
            "/api/v1/cards",
            json!({"number": "6037-9975-9951-4529", "owner_name": "Ali Rezaei", "bank": "Melli"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (s, u) = t
        .post(
            "/api/v1/users",
            json!({"username": format!("{name}-customer"), "password": "test-password-1", "telegram_id": 900_000 + name.len() as i64, "roles": ["user"], "language": "en"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let token = t
        .login(&format!("{name}-customer"), "test-password-1")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    Shop {
        plan: p["id"].as_i64().unwrap_or_default(),
        node,
        card: c["id"].as_i64().unwrap_or_default(),
        customer: u["id"].as_i64().unwrap_or_default(),
        token,
    }
}

/// A picture that is unlike any other seed's (random blocks), PNG-encoded.
pub(crate) fn picture(seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let img = image::GrayImage::from_fn(320, 240, |px, py| {
        let block = u64::from(px / 40 + (py / 40) * 8);
        let v = (x.rotate_left((block % 63) as u32) ^ block.wrapping_mul(0x9E3779B97F4A7C15)) >> 56;
        image::Luma([v as u8])
    });
    x = x.wrapping_add(1);
    let _ = x;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .unwrap_or_else(|e| panic!("png: {e}"));
    out.into_inner()
}

pub(crate) async fn as_user(
    t: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    t.call(method, path, Some(token), body).await
}

pub(crate) async fn upload(
    t: &TestApp,
    token: &str,
    payment: i64,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/payments/{payment}/receipts", t.base))
        .bearer_auth(token)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload: {e}"));
    let s = resp.status();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `path` as the admin until `done` holds (or panics after `within`).
pub(crate) async fn wait_for(
    t: &TestApp,
    path: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (s, v) = t.get(path).await;
        if s == StatusCode::OK && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "{path} did not reach the expected state in {within:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn order(t: &TestApp, token: &str, body: Value) -> Value {
    let (s, o) = as_user(t, token, Method::POST, "/api/v1/orders", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o
}

pub(crate) async fn delivered(t: &TestApp, order_id: i64) -> Value {
    wait_for(
        t,
        &format!("/api/v1/orders/{order_id}"),
        Duration::from_secs(20),
        |o| !o["fulfilled_at"].is_null(),
    )
    .await
}

pub(crate) async fn subscriptions_of(t: &TestApp, user: i64) -> Vec<Value> {
    let (_, v) = t
        .get(&format!("/api/v1/subscriptions?user_id={user}"))
        .await;
    v["items"].as_array().cloned().unwrap_or_default()
}

pub(crate) async fn balance(t: &TestApp, user: i64, currency: &str) -> i64 {
    let (s, w) = t.get(&format!("/api/v1/users/{user}/wallet")).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    w["balances"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["currency"] == currency))
        .and_then(|b| b["amount_minor"].as_i64())
        .unwrap_or(0)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn card_to_card_with_receipt_and_racing_admins(#[case] backend: Backend) {
    // OCR off: the pictures here are not receipts; the verdict rests on what is known.
    let t = app!(backend, |c| c.ocr = false);
    let shop = shop(&t, "card").await;
    let (_, seller) = t.user_with_role("seller-1", "seller").await;
    let (oid, p) = buy(&t, &shop, "IRR", json!({"method": "card"})).await;
    assert_eq!(p["amount_minor"], PRICE_IRR);
    assert_eq!(p["card"]["card_number"], "6037997599514529", "{p}");
    assert_eq!(p["card"]["owner_name"], "Ali Rezaei");
    let pid = p["id"].as_i64().unwrap_or_default();
    // Paying again reuses the reservation instead of taking a second card.
    let (_, again) = pay_with(&t, &shop.token, oid, json!({"method": "card"})).await;
    assert_eq!(again["id"], pid);

    // Approving before a receipt is allowed for staff (they may see the money in the bank),
    // but a customer can never approve.
    let (s, _) = as_user(
        &t,
        &shop.token,
        Method::POST,
        &format!("/api/v1/payments/{pid}/approve"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let pic = picture(1);
    let (s, r) = upload(&t, &shop.token, pid, pic.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (s, dup) = upload(&t, &shop.token, pid, pic).await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    assert_eq!(dup["error"]["code"], "duplicate_receipt");
    let (s, bad) = upload(&t, &shop.token, pid, b"not a picture".to_vec()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    // A customer cannot flood a payment with pictures.
    for seed in 2..6 {
        let (s, v) = upload(&t, &shop.token, pid, picture(seed * 1000)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = upload(&t, &shop.token, pid, picture(7000)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited")),
        "{v}"
    );

    let receipts = wait_for(
        &t,
        &format!("/api/v1/payments/{pid}/receipts"),
        Duration::from_secs(60),
        |v| v[0]["analyzed"] == true,
    )
    .await;
    let verdict = receipts[0]["risk_verdict"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        verdict, "medium",
        "a picture without a readable receipt is doubtful, not low risk: {receipts}"
    );
    let (s, listed) = t.get("/api/v1/payments?awaiting_review=true").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["total"], 1, "{listed}");
    let rid = receipts[0]["id"].as_i64().unwrap_or_default();
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/receipts/{rid}/image", t.base))
        .bearer_auth(&t.admin_token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );

    // Eight approvals at once from two staff members: one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let token = if i % 2 == 0 {
            t.admin_token.clone()
        } else {
            seller.clone()
        };
        let url = format!("{}/api/v1/payments/{pid}/approve", t.base);
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    let mut ok = 0;
    let mut conflict = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(StatusCode::OK)) => ok += 1,
            Ok(Ok(StatusCode::CONFLICT)) => conflict += 1,
            other => panic!("unexpected approval result {other:?}"),
        }
    }
    assert_eq!((ok, conflict), (1, 7));
    let o = delivered(&t, oid).await;
    let subs = subscriptions_of(&t, shop.customer).await;
    assert_eq!(
        subs.len(),
        1,
        "one subscription, not one per approval: {subs:?}"
    );
    assert_eq!(o["subscription_id"], subs[0]["id"]);
    assert_eq!(subs[0]["status"], "active");
    let token = subs[0]["token"].as_str().unwrap_or_default();
    let (s, _, _) = t.fetch(&format!("/sub/{token}"), &[]).await;
    assert_eq!(s, StatusCode::OK);
    // A decision is final: rejecting an approved payment is refused, the card's totals count it.
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/reject"),
            json!({"reason": "late"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (_, card) = t.get(&format!("/api/v1/cards/{}", shop.card)).await;
    assert_eq!(card["today_minor"], PRICE_IRR, "{card}");
    assert_eq!(card["month_count"], 1);
    // Money rows keep what they point at: the card and the customer cannot be deleted.
    let (s, v) = t.delete(&format!("/api/v1/cards/{}", shop.card)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("in_use")),
        "{v}"
    );
    let (s, v) = t.delete(&format!("/api/v1/users/{}", shop.customer)).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("in_use")),
        "{v}"
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn rejected_receipt_ends_temporary_service(#[case] backend: Backend) {
    let t = app!(backend);
    let shop = shop(&t, "temp").await;
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/settings/payments",
            Some(&t.admin_token),
            Some(json!({"temporary_while_review": {"percent": 10, "days": 2}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, p) = buy(&t, &shop, "IRR", json!({"method": "card"})).await;
    let pid = p["id"].as_i64().unwrap_or_default();
    let (s, r) = upload(&t, &shop.token, pid, picture(2)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let subs = subscriptions_of(&t, shop.customer).await;
    assert_eq!(
        subs.len(),
        1,
        "temporary service while the receipt is reviewed"
    );
    assert_eq!(subs[0]["status"], "temporary");
    assert_eq!(
        subs[0]["data_limit_bytes"], 5_000_000_000i64,
        "10% of the quota"
    );
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/reject"),
            json!({"reason": "the amount on the receipt is wrong"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["rejected_reason"], "the amount on the receipt is wrong");
    let subs = subscriptions_of(&t, shop.customer).await;
    assert_eq!(
        subs[0]["status"], "disabled",
        "the temporary service ends with the rejection"
    );
    // Final: a rejected card payment cannot be approved afterwards.
    let (s, v) = t
        .post(&format!("/api/v1/payments/{pid}/approve"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn wallet_pays_once_and_never_goes_negative(#[case] backend: Backend) {
    let t = app!(backend);
    let shop = shop(&t, "wallet").await;
    let (s, w) = t
        .post(
            &format!("/api/v1/users/{}/wallet/adjust", shop.customer),
            json!({"amount_minor": 2_000_000, "currency": "IRR", "note": "gift"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let (s, _) = as_user(
        &t,
        &shop.token,
        Method::POST,
        &format!("/api/v1/users/{}/wallet/adjust", shop.customer),
        Some(json!({"amount_minor": 1, "currency": "IRR", "note": "me"})),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "customers cannot credit themselves"
    );
    for amount in [i64::MIN, i64::MAX, 0] {
        let (s, v) = t
            .post(
                &format!("/api/v1/users/{}/wallet/adjust", shop.customer),
                json!({"amount_minor": amount, "currency": "IRR", "note": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{amount}: {v}");
    }
    // Five orders paid from the wallet at once: the balance covers one.
    let mut orders = Vec::new();
    for _ in 0..5 {
        orders.push(
            order(
                &t,
                &shop.token,
                json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR"}),
            )
            .await["id"]
                .as_i64()
                .unwrap_or_default(),
        );
    }
    let mut tasks = Vec::new();
    for oid in &orders {
        let url = format!("{}/api/v1/orders/{oid}/pay", t.base);
        let token = shop.token.clone();
        tasks.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({"method": "wallet"}))
                .send()
                .await
                .map(|r| r.status())
        }));
    }
    let mut paid = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(StatusCode::CREATED)) => paid += 1,
            Ok(Ok(StatusCode::PAYMENT_REQUIRED)) => {}
            other => panic!("unexpected wallet payment result {other:?}"),
        }
    }
    assert_eq!(paid, 1);
    assert_eq!(
        balance(&t, shop.customer, "IRR").await,
        2_000_000 - PRICE_IRR
    );
    let paid_order = {
        let (_, list) = t
            .get(&format!(
                "/api/v1/orders?user_id={}&status=paid",
                shop.customer
            ))
            .await;
        list["items"][0]["id"].as_i64().unwrap_or_default()
    };
    delivered(&t, paid_order).await;
    assert_eq!(subscriptions_of(&t, shop.customer).await.len(), 1);
    // Renewal from the wallet is refused with a clear error when the balance is short.
    let sub = subscriptions_of(&t, shop.customer).await[0]["id"]
        .as_i64()
        .unwrap_or_default();
    let r = order(
        &t,
        &shop.token,
        json!({"kind": "renewal", "subscription_id": sub, "currency": "IRR"}),
    )
    .await;
    let (s, v) = as_user(
        &t,
        &shop.token,
        Method::POST,
        &format!("/api/v1/orders/{}/pay", r["id"]),
        Some(json!({"method": "wallet"})),
    )
    .await;
    assert_eq!(s, StatusCode::PAYMENT_REQUIRED, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_funds");
    // A refund to the wallet, in two parts, never more than was paid.
    let (_, pays) = t
        .get(&format!("/api/v1/payments?order_id={paid_order}"))
        .await;
    let pid = pays["items"][0]["id"].as_i64().unwrap_or_default();
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/refund"),
            json!({"amount_minor": 500_000, "destination": "wallet", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "refunded");
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/refund"),
            json!({"amount_minor": 1_000_001, "destination": "wallet", "reason": "too much"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/refund"),
            json!({"destination": "gateway", "reason": "no gateway"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{pid}/refund"),
            json!({"destination": "wallet", "reason": "the rest", "revoke_service": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["refunded_minor"], PRICE_IRR);
    assert_eq!(balance(&t, shop.customer, "IRR").await, 2_000_000);
    assert_eq!(
        subscriptions_of(&t, shop.customer).await[0]["status"],
        "disabled"
    );
    let (_, w) = t
        .get(&format!("/api/v1/users/{}/wallet", shop.customer))
        .await;
    let sum: i64 = w["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|x| x["amount_minor"].as_i64()).sum())
        .unwrap_or(-1);
    assert_eq!(sum, 2_000_000, "the balance is the sum of the ledger: {w}");
    t.stop().await;
}

async fn pay_from_wallet(t: &TestApp, token: &str, oid: i64) {
    let (s, v) = as_user(
        t,
        token,
        Method::POST,
        &format!("/api/v1/orders/{oid}/pay"),
        Some(json!({"method": "wallet"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn undeliverable_orders_are_retried_then_refunded() {
    let mut t = app!(Backend::Sqlite);
    let shop = shop(&t, "down").await;
    t.post(
        &format!("/api/v1/users/{}/wallet/adjust", shop.customer),
        json!({"amount_minor": 3 * PRICE_IRR, "currency": "IRR", "note": "test"}),
    )
    .await;
    let (s, v) = t
        .patch(
            &format!("/api/v1/nodes/{}", shop.node),
            json!({"is_enabled": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let a = order(
        &t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR"}),
    )
    .await["id"]
        .as_i64()
        .unwrap_or_default();
    pay_from_wallet(&t, &shop.token, a).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, o) = t.get(&format!("/api/v1/orders/{a}")).await;
    assert_eq!(o["status"], "paid");
    assert!(
        o["fulfilled_at"].is_null(),
        "no node serves the region: {o}"
    );
    // The node comes back before the deadline: the order is delivered.
    t.patch(
        &format!("/api/v1/nodes/{}", shop.node),
        json!({"is_enabled": true}),
    )
    .await;
    t.travel(Duration::from_secs(30)).await;
    delivered(&t, a).await;
    // It never comes back: after the give-up time the money returns to the wallet.
    t.patch(
        &format!("/api/v1/nodes/{}", shop.node),
        json!({"is_enabled": false}),
    )
    .await;
    let b = order(
        &t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR"}),
    )
    .await["id"]
        .as_i64()
        .unwrap_or_default();
    pay_from_wallet(&t, &shop.token, b).await;
    assert_eq!(balance(&t, shop.customer, "IRR").await, PRICE_IRR);
    for _ in 0..30 {
        t.travel(Duration::from_secs(3_600)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let o = wait_for(
        &t,
        &format!("/api/v1/orders/{b}"),
        Duration::from_secs(20),
        |o| o["status"] == "failed",
    )
    .await;
    assert!(o["fulfilled_at"].is_null());
    assert!(
        o["failure_reason"]
            .as_str()
            .is_some_and(|r| r.contains("refunded")),
        "{o}"
    );
    assert_eq!(
        balance(&t, shop.customer, "IRR").await,
        2 * PRICE_IRR,
        "the amount is back in the wallet"
    );
    assert_eq!(
        subscriptions_of(&t, shop.customer).await.len(),
        1,
        "only the delivered order has a subscription"
    );
    t.stop().await;
}

#[tokio::test]
async fn discount_codes_follow_their_limits() {
    let t = app!(Backend::Sqlite);
    let shop = shop(&t, "disc").await;
    let (_, other_plan) = t.post("/api/v1/plans", json!({"name": "other", "duration_days": 7, "prices": [{"currency": "IRR", "amount_minor": 100_000}]})).await;
    let (s, code) = t
        .post("/api/v1/discount-codes", json!({"code": "nowruz-20", "kind": "percent", "value": 20, "max_uses": 2, "max_uses_per_user": 1, "plan_ids": [shop.plan]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{code}");
    assert_eq!(code["code"], "NOWRUZ-20");
    let (s, v) = t
        .post(
            "/api/v1/discount-codes",
            json!({"code": "BAD", "kind": "percent", "value": 120}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .post(
            "/api/v1/discount-codes",
            json!({"code": "FIX", "kind": "fixed", "value": 100}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a fixed code needs a currency: {v}"
    );

    let o = order(&t, &shop.token, json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "nowruz-20"})).await;
    assert_eq!(o["amount_minor"], PRICE_IRR * 80 / 100);
    assert_eq!(o["discount_minor"], PRICE_IRR * 20 / 100);
    let again = |body: Value| {
        let t = &t;
        let token = shop.token.clone();
        async move { as_user(t, &token, Method::POST, "/api/v1/orders", Some(body)).await }
    };
    let (s, v) = again(json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "NOWRUZ-20"})).await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("discount_invalid")),
        "once per customer: {v}"
    );
    let (s, v) = again(json!({"kind": "purchase", "plan_id": other_plan["id"], "currency": "IRR", "discount_code": "NOWRUZ-20"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "other plan: {v}");
    let (s, v) = again(json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "NOSUCH"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = again(json!({"kind": "topup", "amount_minor": 1000, "currency": "IRR", "discount_code": "NOWRUZ-20"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Two more customers: the second use is the last.
    let mut tokens = Vec::new();
    for n in 0..2 {
        let (_, tok) = t.user_with_role(&format!("disc-c{n}"), "user").await;
        tokens.push(tok);
    }
    let (s, o2) = as_user(&t, &tokens[0], Method::POST, "/api/v1/orders", Some(json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "NOWRUZ-20"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{o2}");
    let (s, v) = as_user(&t, &tokens[1], Method::POST, "/api/v1/orders", Some(json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "NOWRUZ-20"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "used up: {v}");
    // Cancelling an unpaid order gives its use back.
    let (s, v) = as_user(
        &t,
        &tokens[0],
        Method::POST,
        &format!("/api/v1/orders/{}/cancel", o2["id"]),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = as_user(&t, &tokens[1], Method::POST, "/api/v1/orders", Some(json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR", "discount_code": "NOWRUZ-20"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (_, c) = t
        .get(&format!("/api/v1/discount-codes/{}", code["id"]))
        .await;
    assert_eq!(c["used_count"], 2);
    // An idempotency key returns the first order.
    let body = json!({"kind": "purchase", "plan_id": shop.plan, "currency": "USD", "idempotency_key": "k-1"});
    let first = order(&t, &shop.token, body.clone()).await;
    let (_, second) = again(body).await;
    assert_eq!(first["id"], second["id"]);
    t.stop().await;
}

#[tokio::test]
async fn revenue_report_by_day_method_and_csv() {
    let t = app!(Backend::Sqlite);
    let shop = shop(&t, "report").await;
    // Two card payments approved, one rejected, one wallet payment (not revenue).
    let mut approved = 0;
    for i in 0..3u64 {
        let o = order(
            &t,
            &shop.token,
            json!({"kind": "topup", "amount_minor": 1_000_000 + i as i64, "currency": "IRR"}),
        )
        .await;
        let (_, p) = as_user(
            &t,
            &shop.token,
            Method::POST,
            &format!("/api/v1/orders/{}/pay", o["id"]),
            Some(json!({"method": "card"})),
        )
        .await;
        let pid = p["id"].as_i64().unwrap_or_default();
        upload(&t, &shop.token, pid, picture(100 + i)).await;
        if i < 2 {
            let (s, v) = t
                .post(&format!("/api/v1/payments/{pid}/approve"), json!({}))
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            approved += 1_000_000 + i as i64;
        } else {
            t.post(
                &format!("/api/v1/payments/{pid}/reject"),
                json!({"reason": "no transfer"}),
            )
            .await;
        }
    }
    assert_eq!(
        balance(&t, shop.customer, "IRR").await,
        approved,
        "top-ups reach the wallet on approval"
    );
    let o = order(
        &t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR"}),
    )
    .await;
    as_user(
        &t,
        &shop.token,
        Method::POST,
        &format!("/api/v1/orders/{}/pay", o["id"]),
        Some(json!({"method": "wallet"})),
    )
    .await;
    let (s, r) = t.get("/api/v1/reports/revenue?group=day&by=method").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["totals"][0]["currency"], "IRR");
    assert_eq!(
        r["totals"][0]["gross_minor"], approved,
        "wallet spending is not revenue again: {r}"
    );
    assert_eq!(r["totals"][0]["count"], 2);
    assert_eq!(r["lines"][0]["key"], "card");
    let (s, r) = t.get("/api/v1/reports/revenue?by=card&group=month").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["lines"][0]["key"], shop.card.to_string());
    let (_, r) = t.get("/api/v1/reports/revenue?by=plan&group=week").await;
    assert_eq!(r["lines"][0]["key"], "topup", "top-ups have no plan: {r}");
    assert!(
        r["lines"][0]["period"]
            .as_str()
            .is_some_and(|p| p.contains("-W")),
        "{r}"
    );
    let (s, h, csv) = {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/reports/revenue?format=csv", t.base))
            .bearer_auth(&t.admin_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (
            resp.status(),
            resp.headers().clone(),
            resp.text().await.unwrap_or_default(),
        )
    };
    assert_eq!(s, StatusCode::OK);
    assert!(
        h.get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "period,currency,key,count,gross_minor,refunded_minor,net_minor"
    );
    assert!(
        lines[1].ends_with(&format!(",IRR,card,2,{approved},0,{approved}")),
        "{csv}"
    );
    let (s, _) = as_user(
        &t,
        &shop.token,
        Method::GET,
        "/api/v1/reports/revenue",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}

/// Starts paying order `oid` as the customer.
pub(crate) async fn pay_with(
    t: &TestApp,
    token: &str,
    oid: i64,
    body: Value,
) -> (StatusCode, Value) {
    as_user(
        t,
        token,
        Method::POST,
        &format!("/api/v1/orders/{oid}/pay"),
        Some(body),
    )
    .await
}

/// Places a purchase order of the shop's plan in `currency` and starts paying it with
/// `method`; returns (order id, the payment attempt).
pub(crate) async fn buy(t: &TestApp, shop: &Shop, currency: &str, method: Value) -> (i64, Value) {
    let o = order(
        t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": currency}),
    )
    .await;
    let oid = o["id"].as_i64().unwrap_or_default();
    let (s, p) = pay_with(t, &shop.token, oid, method).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    (oid, p)
}

async fn card_payment_with_receipt(t: &TestApp, shop: &Shop, seed: u64) -> (i64, i64) {
    let (oid, p) = buy(t, shop, "IRR", json!({"method": "card"})).await;
    let pid = p["id"].as_i64().unwrap_or_default();
    let (s, r) = upload(t, &shop.token, pid, picture(seed)).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    wait_for(
        t,
        &format!("/api/v1/payments/{pid}/receipts"),
        Duration::from_secs(60),
        |v| v[0]["analyzed"] == true,
    )
    .await;
    (oid, pid)
}

#[tokio::test]
async fn seller_rules_trust_history_and_accept_old_receipts_under_a_threshold() {
    let mut t = app!(Backend::Sqlite, |c| c.ocr = false);
    let shop = shop(&t, "rules").await;
    let (s, v) = t
        .call(Method::PUT, "/api/v1/settings/payments", Some(&t.admin_token), Some(json!({
            "trusted_auto_approve": {"min_approved": 1, "max_amount_minor": 2_000_000, "require_low_risk": false},
            "auto_accept": {"after_days": 2, "max_risk_score": 45}})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .call(
            Method::PUT,
            "/api/v1/settings/payments",
            Some(&t.admin_token),
            Some(json!({"auto_accept": {"after_days": 2, "max_risk_score": 80}})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "high risk is never auto-accepted: {v}"
    );
    // No history yet: the first receipt waits for a person.
    let (first, pid) = card_payment_with_receipt(&t, &shop, 10).await;
    let (_, p) = t.get(&format!("/api/v1/payments/{pid}")).await;
    assert_eq!(p["status"], "pending");
    t.post(&format!("/api/v1/payments/{pid}/approve"), json!({}))
        .await;
    delivered(&t, first).await;
    // One approved payment and no rejection: the next receipt is approved by the rule.
    let (second, _) = card_payment_with_receipt(&t, &shop, 11).await;
    delivered(&t, second).await;

    // A new customer: nothing is trusted, but after two days a medium receipt is accepted.
    let (_, token) = t.user_with_role("rules-new", "user").await;
    let newcomer = Shop { token, ..shop };
    let (third, pid3) = card_payment_with_receipt(&t, &newcomer, 12).await;
    // The same picture re-encoded is a near duplicate: high risk, never auto-accepted.
    let (fourth, pid4) = buy(&t, &newcomer, "IRR", json!({"method": "card"})).await;
    let pid4 = pid4["id"].as_i64().unwrap_or_default();
    let copy = {
        let img = image::load_from_memory(&picture(12)).unwrap_or_else(|e| panic!("{e}"));
        let mut out = std::io::Cursor::new(Vec::new());
        img.resize(300, 225, image::imageops::FilterType::Triangle)
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{e}"));
        out.into_inner()
    };
    let (s, r) = upload(&t, &newcomer.token, pid4, copy).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let r = wait_for(
        &t,
        &format!("/api/v1/payments/{pid4}/receipts"),
        Duration::from_secs(60),
        |v| v[0]["analyzed"] == true,
    )
    .await;
    assert_eq!(r[0]["risk_verdict"], "high", "{r}");
    assert!(
        r[0]["risk_reasons"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x.as_str().is_some_and(|x| x.starts_with("near_duplicate:")))),
        "{r}"
    );
    t.app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, p) = t.get(&format!("/api/v1/payments/{pid3}")).await;
    assert_eq!(p["status"], "pending", "not before the waiting time");
    t.travel(Duration::from_secs(3 * 86_400)).await;
    let n = t
        .app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(n >= 1);
    delivered(&t, third).await;
    let (_, p4) = t.get(&format!("/api/v1/payments/{pid4}")).await;
    assert_eq!(
        p4["status"], "pending",
        "a near-duplicate receipt still waits for a person: {p4}"
    );
    let (_, o4) = t.get(&format!("/api/v1/orders/{fourth}")).await;
    assert!(o4["fulfilled_at"].is_null());
    t.stop().await;
}

#[tokio::test]
async fn cards_take_turns_within_their_caps() {
    let t = app!(Backend::Sqlite);
    let shop = shop(&t, "turns").await;
    // A second card; the first takes at most two transfers a month.
    let (s, v) = t
        .call(Method::PUT, &format!("/api/v1/cards/{}", shop.card), Some(&t.admin_token), Some(json!({"number": "6037997599514529", "owner_name": "Ali Rezaei", "monthly_tx_cap": 2})))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, c2) = t.post("/api/v1/cards", json!({"number": "6219861034529007", "owner_name": "Sara Ahmadi", "daily_cap_minor": 2 * PRICE_IRR})).await;
    assert_eq!(s, StatusCode::CREATED, "{c2}");
    let mut used = Vec::new();
    for _ in 0..4 {
        let (_, p) = buy(&t, &shop, "IRR", json!({"method": "card"})).await;
        used.push(p["card_id"].as_i64().unwrap_or_default());
    }
    let c2 = c2["id"].as_i64().unwrap_or_default();
    assert_eq!(
        used,
        vec![shop.card, c2, shop.card, c2],
        "round robin: the card handed out longest ago goes next"
    );
    // Both cards are full (two reservations each): a fifth order gets a clear refusal.
    let o = order(
        &t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": "IRR"}),
    )
    .await;
    let (s, v) = pay_with(
        &t,
        &shop.token,
        o["id"].as_i64().unwrap_or_default(),
        json!({"method": "card"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("no_card_available")),
        "{v}"
    );
    let (_, cards) = t.get("/api/v1/cards").await;
    assert_eq!(cards[0]["reserved_count"], 2, "{cards}");
    assert_eq!(cards[1]["reserved_minor"], 2 * PRICE_IRR);
    t.stop().await;
}

/// What a customer's bank app says was transferred.
struct Transfer<'a> {
    amount_rial: i64,
    dest_card: &'a str,
    days_ago: i64,
    tracking: &'a str,
    holder: &'a str,
}

/// A receipt as a bank app would show it: the amount, the destination card, a tracking
/// number and the date in the customer's calendar.
fn bank_receipt(t: &TestApp, lang: receipts::Lang, x: Transfer<'_>) -> Vec<u8> {
    let Transfer {
        amount_rial,
        dest_card,
        days_ago,
        tracking,
        holder,
    } = x;
    let at = t.app.now().millis() - days_ago * 86_400_000
        + i64::from(mrjbot_i18n::IRAN_OFFSET_MINUTES) * 60_000;
    let dt = time::OffsetDateTime::from_unix_timestamp(at / 1000).unwrap_or_else(|e| panic!("{e}"));
    let (y, m, d) = (
        dt.year(),
        u32::from(u8::from(dt.month())),
        u32::from(dt.day()),
    );
    let date = match lang {
        receipts::Lang::Fa => {
            let (jy, jm, jd) = mrjbot_i18n::to_jalali(y, m, d).unwrap_or_else(|| panic!("jalali"));
            format!(
                "{jy:04}/{jm:02}/{jd:02} {:02}:{:02}",
                dt.hour(),
                dt.minute()
            )
        }
        receipts::Lang::En => format!("{y:04}/{m:02}/{d:02} {:02}:{:02}", dt.hour(), dt.minute()),
    };
    let truth = receipts::ReceiptTruth {
        amount: amount_rial / 10,
        unit: mrjbot_domain::receipt::AmountUnit::Toman,
        tracking_no: tracking.into(),
        reference_no: format!("{tracking}{tracking}"),
        dest_card: dest_card.into(),
        src_card_masked: "6104-33**-****-7788".into(),
        date,
        lang,
        success: true,
        holder: holder.into(),
        bank: "Bank Mellat".into(),
    };
    receipts::render(
        &truth,
        receipts::Style {
            layout: receipts::Layout::Inline,
            look: receipts::Look::Clean,
        },
    )
    .unwrap_or_else(|e| panic!("rendering a receipt: {e:#}"))
}

/// Buys by card, sends a bank receipt of `transfer`, and returns the judged receipt.
async fn pay_by_receipt(
    t: &TestApp,
    shop: &Shop,
    lang: receipts::Lang,
    transfer: Transfer<'_>,
) -> Value {
    let (_, p) = buy(t, shop, "IRR", json!({"method": "card"})).await;
    let pid = p["id"].as_i64().unwrap_or_default();
    let (s, v) = upload(t, &shop.token, pid, bank_receipt(t, lang, transfer)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    judged(t, pid).await
}

/// The last receipt of a payment once its analysis finished.
async fn judged(t: &TestApp, pid: i64) -> Value {
    let r = wait_for(
        t,
        &format!("/api/v1/payments/{pid}/receipts"),
        Duration::from_secs(60),
        |v| {
            v.as_array()
                .and_then(|a| a.last())
                .is_some_and(|r| r["analyzed"] == true)
        },
    )
    .await;
    r.as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default()
}

#[rstest]
#[case::persian(receipts::Lang::Fa)]
#[case::english(receipts::Lang::En)]
#[tokio::test]
async fn a_readable_receipt_is_checked_against_the_order(#[case] lang: receipts::Lang) {
    if !receipts::require_receipt_tools()
        || !receipts::require_ocr(&mrjbot_app::receipt::Ocr::from_env()).await
    {
        return;
    }
    let t = app!(Backend::Sqlite);
    let shop = shop(&t, "ocr").await;
    // The right amount to the right card, today: low risk, every field read.
    let r = pay_by_receipt(
        &t,
        &shop,
        lang,
        Transfer {
            amount_rial: PRICE_IRR,
            dest_card: "6037997599514529",
            days_ago: 0,
            tracking: "482913",
            holder: "Ali Rezaei",
        },
    )
    .await;
    // Tracking numbers and card digits are read in both languages; tesseract's Persian
    // model drops digits of amounts and dates often enough (see the receipts module's
    // measured rates) that only English receipts are held to a clean verdict.
    let english = lang == receipts::Lang::En;
    assert_eq!(r["ocr_dest_card_last4"], "4529", "{r}");
    assert_eq!(r["ocr_tracking_no"], "482913", "{r}");
    if english {
        assert_eq!(r["risk_verdict"], "low", "{r}");
        assert_eq!(r["ocr_amount"], PRICE_IRR / 10, "{r}");
        assert_eq!(r["ocr_amount_unit"], "toman");
    }
    // Less money, another card and an old date: each is a finding, the verdict high.
    let r = pay_by_receipt(
        &t,
        &shop,
        lang,
        Transfer {
            amount_rial: PRICE_IRR / 2,
            dest_card: "6219861034529007",
            days_ago: 5,
            tracking: "551177",
            holder: "Sara Ahmadi",
        },
    )
    .await;
    assert_eq!(r["risk_verdict"], "high", "{r}");
    let reasons: Vec<&str> = r["risk_reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    assert!(reasons.contains(&"card_mismatch"), "{r}");
    if english {
        for finding in ["amount_short", "date_before_order"] {
            assert!(reasons.contains(&finding), "{finding} missing: {r}");
        }
    }
    // The same tracking number on a second receipt is caught as reuse.
    let r = pay_by_receipt(
        &t,
        &shop,
        lang,
        Transfer {
            amount_rial: PRICE_IRR,
            dest_card: "6037997599514529",
            days_ago: 0,
            tracking: "482913",
            holder: "Maryam Karimi",
        },
    )
    .await;
    assert_eq!(r["risk_verdict"], "high", "{r}");
    assert!(
        r["risk_reasons"].to_string().contains("tracking_reused"),
        "{r}"
    );
    t.stop().await;
}
