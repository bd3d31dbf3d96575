//! Every online gateway end to end against its local fake: paid -> delivered exactly once,
//! the same callback or webhook delivered five times at once -> one delivery, forged
//! deliveries (bad signature, unknown id, a claim the gateway does not confirm, another
//! amount) refused and recorded, lost callbacks found by reconciliation, refunds.

use crate::money::{
    PRICE_IRR, as_user, balance, buy, delivered, order, pay_with, shop, subscriptions_of, wait_for,
};
use crate::*;
use mrjbot_testkit::fakes::cryptopay::FakeCryptoPay;
use mrjbot_testkit::fakes::telegram::{FakeTelegram, PayOutcome};
use mrjbot_testkit::fakes::yookassa::FakeYookassa;
use mrjbot_testkit::fakes::zarinpal::FakeZarinpal;
use rstest::rstest;
use std::time::Duration;

const MERCHANT: &str = "1344b5d4-0048-11e8-94db-005056a205be";
const PUBLIC: &str = "http://shop.invalid";

/// Recorded gateway events as (source, status, count).
async fn events(t: &TestApp) -> Vec<(String, String, i64)> {
    let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
    mrjbot_db::money::event_counts(c.conn())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn count(ev: &[(String, String, i64)], source: &str, status: &str) -> i64 {
    ev.iter()
        .filter(|e| e.0 == source && e.1 == status)
        .map(|e| e.2)
        .sum()
}

async fn get_text(url: &str) -> (StatusCode, String) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let s = r.status();
    (s, r.text().await.unwrap_or_default())
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn zarinpal_verifies_once_whatever_the_browser_does(#[case] backend: Backend) {
    let fake = FakeZarinpal::start(MERCHANT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = fake.base_url().to_owned();
    let mut t = app!(backend, |c| {
        c.zarinpal_merchant_id = Some(MERCHANT.into());
        c.zarinpal_base_url = base;
        c.public_url = Some(PUBLIC.into());
    });
    let shop = shop(&t, "zp").await;
    let (oid, p) = buy(&t, &shop, "IRR", json!({"method": "zarinpal"})).await;
    let authority = p["gateway_ref"].as_str().unwrap_or_default().to_owned();
    assert!(
        p["pay_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/pg/StartPay/{authority}"))),
        "{p}"
    );

    // The payer pays; the browser comes back five times at once.
    let callback = fake
        .pay(&authority)
        .unwrap_or_else(|e| panic!("{e}"))
        .replace(PUBLIC, &t.base);
    assert!(callback.contains("Status=OK"), "{callback}");
    let mut hits = Vec::new();
    for _ in 0..5 {
        let url = callback.clone();
        hits.push(tokio::spawn(async move { get_text(&url).await }));
    }
    for h in hits {
        let (s, page) = h.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, StatusCode::OK);
        assert!(
            page.contains("Payment received") || page.contains("Checking"),
            "{page}"
        );
    }
    delivered(&t, oid).await;
    assert_eq!(
        subscriptions_of(&t, shop.customer).await.len(),
        1,
        "one delivery for five callbacks"
    );
    let (_, p) = t.get(&format!("/api/v1/payments/{}", p["id"])).await;
    assert_eq!(p["status"], "approved");
    assert!(p["bank_ref"].as_str().is_some_and(|r| !r.is_empty()), "{p}");
    assert_eq!(fake.state(&authority), Some("verified"));

    // Forged and malformed callbacks change nothing and are recorded.
    let (s, _) = get_text(&format!("{}/api/v1/payments/callbacks/zarinpal?Authority=A00000000000000000000000000000099999&Status=OK", t.base)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get_text(&format!(
        "{}/api/v1/payments/callbacks/zarinpal?Status=OK",
        t.base
    ))
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let ev = events(&t).await;
    assert_eq!(count(&ev, "zarinpal", "failed"), 2, "{ev:?}");

    // Cancelled at the bank: no verify, the attempt is closed, the order stays payable.
    let (_, p2) = buy(&t, &shop, "IRR", json!({"method": "zarinpal"})).await;
    let a2 = p2["gateway_ref"].as_str().unwrap_or_default().to_owned();
    let (s, page) = get_text(
        &fake
            .cancel(&a2)
            .unwrap_or_else(|e| panic!("{e}"))
            .replace(PUBLIC, &t.base),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("not completed"), "{page}");
    let (_, p2) = t.get(&format!("/api/v1/payments/{}", p2["id"])).await;
    assert_eq!(p2["status"], "rejected");

    // Paid, but the browser never came back: reconciliation finds it.
    let o3 = order(&t, &shop.token, json!({"kind": "renewal", "subscription_id": subscriptions_of(&t, shop.customer).await[0]["id"], "currency": "IRR"})).await;
    let (_, p3) = pay_with(
        &t,
        &shop.token,
        o3["id"].as_i64().unwrap_or_default(),
        json!({"method": "zarinpal"}),
    )
    .await;
    let a3 = p3["gateway_ref"].as_str().unwrap_or_default().to_owned();
    fake.pay(&a3).unwrap_or_else(|e| panic!("{e}"));
    t.travel(Duration::from_secs(180)).await;
    let n = t
        .app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(n >= 1, "reconciliation confirmed the lost payment");
    delivered(&t, o3["id"].as_i64().unwrap_or_default()).await;
    assert_eq!(
        subscriptions_of(&t, shop.customer).await.len(),
        1,
        "a renewal extends the same subscription"
    );

    // A reverse within 30 minutes returns the money to the payer.
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p3["id"]),
            json!({"destination": "gateway", "reason": "asked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(fake.state(&a3), Some("reversed"));
    let (s, r) = t.get("/api/v1/reports/revenue?by=method").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["totals"][0]["gross_minor"], 2 * PRICE_IRR, "{r}");
    assert_eq!(r["totals"][0]["refunded_minor"], PRICE_IRR);
    assert_eq!(r["refunds"][0]["destination"], "gateway");
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn yookassa_acts_on_the_refetched_payment_only(#[case] backend: Backend) {
    let fake = FakeYookassa::start("54401", "test_secret")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = fake.base_url().to_owned();
    let t = app!(backend, |c| {
        c.yookassa_shop_id = Some("54401".into());
        c.yookassa_secret_key = Some("test_secret".into());
        c.yookassa_base_url = base;
        c.yookassa_webhook_allow = Some(vec!["127.0.0.1/32".into()]);
        // 54-FZ receipts on: payments and refunds must carry the customer's contact.
        c.yookassa_receipts = true;
        c.public_url = Some(PUBLIC.into());
    });
    fake.set_webhook(&format!("{}/api/v1/payments/callbacks/yookassa", t.base));
    fake.receipts_on(true);
    let shop = shop(&t, "yk").await;
    let (oid, p) = buy(
        &t,
        &shop,
        "RUB",
        json!({"method": "yookassa", "email": "c@example.com"}),
    )
    .await;
    let yid = p["gateway_ref"].as_str().unwrap_or_default().to_owned();
    assert!(
        p["pay_url"].as_str().is_some_and(|u| u.contains(&yid)),
        "{p}"
    );
    assert_eq!(
        fake.payment(&yid).map(|v| v["amount"]["value"].clone()),
        Some(json!("199.00"))
    );

    // A forged "succeeded" for a pending payment: the re-fetch says pending, nothing moves.
    let forged = json!({"type": "notification", "event": "payment.succeeded", "object": {"id": yid, "status": "succeeded", "paid": true, "amount": {"value": "199.00", "currency": "RUB"}}});
    let status = fake
        .send_webhook_raw(forged.to_string())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    let (_, po) = t.get(&format!("/api/v1/payments/{}", p["id"])).await;
    assert_eq!(
        po["status"], "pending",
        "a notification alone proves nothing"
    );
    // An unknown payment id and a body that is not a notification are refused.
    let status = fake.send_webhook_raw(json!({"type": "notification", "event": "payment.succeeded", "object": {"id": "2f0f0000-000f-5000-9000-1f1f1f1f1f1f"}}).to_string()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 404);
    let status = fake
        .send_webhook_raw("{\"hello\": 1}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 400);

    // Paid: YooKassa's own webhook, then the same notification five times at once.
    fake.succeed(&yid).unwrap_or_else(|e| panic!("{e}"));
    delivered(&t, oid).await;
    let mut sends = Vec::new();
    for _ in 0..5 {
        sends.push(fake.send_webhook_raw(forged.to_string()));
    }
    for s in futures_util::future::join_all(sends).await {
        assert_eq!(s.unwrap_or_else(|e| panic!("{e}")), 200);
    }
    assert_eq!(subscriptions_of(&t, shop.customer).await.len(), 1);
    let ev = events(&t).await;
    assert_eq!(count(&ev, "yookassa", "failed"), 2, "{ev:?}");
    assert!(count(&ev, "yookassa", "processed") >= 1, "{ev:?}");

    // A partial refund through YooKassa.
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p["id"]),
            json!({"amount_minor": 9_900, "destination": "gateway", "reason": "partial"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        fake.payment(&yid)
            .map(|v| v["refunded_amount"]["value"].clone()),
        Some(json!("99.00"))
    );
    assert_eq!(v["refunded_minor"], 9_900);

    // Cancelled at YooKassa and found by reconciliation without any webhook.
    fake.set_webhook("http://127.0.0.1:9/");
    let o2 = order(
        &t,
        &shop.token,
        json!({"kind": "topup", "amount_minor": 50_000, "currency": "RUB"}),
    )
    .await;
    let (_, p2) = pay_with(
        &t,
        &shop.token,
        o2["id"].as_i64().unwrap_or_default(),
        json!({"method": "yookassa", "email": "c@example.com"}),
    )
    .await;
    let y2 = p2["gateway_ref"].as_str().unwrap_or_default().to_owned();
    fake.succeed(&y2).unwrap_or_else(|e| panic!("{e}"));
    t.clock.advance(Duration::from_secs(120));
    t.app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        balance(&t, shop.customer, "RUB").await,
        50_000,
        "the top-up reached the wallet"
    );
    t.stop().await;

    // With YooKassa's own address list, a notification from 127.0.0.1 is refused.
    let strict = app!(Backend::Sqlite, |c| {
        c.yookassa_shop_id = Some("54401".into());
        c.yookassa_secret_key = Some("test_secret".into());
        c.yookassa_base_url = fake.base_url().to_owned();
    });
    fake.set_webhook(&format!(
        "{}/api/v1/payments/callbacks/yookassa",
        strict.base
    ));
    let status = fake
        .send_webhook_raw(forged.to_string())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 403);
    strict.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn cryptopay_trusts_signed_and_refetched_invoices_only(#[case] backend: Backend) {
    let fake = FakeCryptoPay::start("7777:AAtoken")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let base = fake.base_url().to_owned();
    let t = app!(backend, |c| {
        c.cryptopay_token = Some("7777:AAtoken".into());
        c.cryptopay_base_url = base;
    });
    fake.set_webhook(&format!("{}/api/v1/payments/callbacks/cryptopay", t.base));
    let shop = shop(&t, "cp").await;
    let (oid, p) = buy(&t, &shop, "USD", json!({"method": "cryptopay"})).await;
    let invoice: i64 = p["gateway_ref"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or_default();
    assert_eq!(
        fake.invoice(invoice).map(|i| i["amount"].clone()),
        Some(json!("3.99"))
    );

    // A correctly signed claim for an invoice that is not paid: the re-fetch says active.
    let claim = json!({"update_id": 990001, "update_type": "invoice_paid", "request_date": "2026-11-22T01:00:00.000Z",
                       "payload": {"invoice_id": invoice, "hash": "IVx", "status": "paid", "currency_type": "fiat", "fiat": "USD", "amount": "3.99",
                                   "bot_invoice_url": "https://t.me/CryptoBot?start=IVx", "payload": format!("mrjbot:p{}", p["id"]), "created_at": "2026-11-22T01:00:00.000Z"}});
    let body = claim.to_string();
    let s = fake
        .send_webhook_raw(body.as_bytes(), Some(&fake.sign(body.as_bytes())))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s, 200);
    let (_, po) = t.get(&format!("/api/v1/payments/{}", p["id"])).await;
    assert_eq!(po["status"], "pending", "{po}");
    // Bad and missing signatures.
    let s = fake
        .send_webhook_raw(body.as_bytes(), Some("00ff"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s, 401);
    let s = fake
        .send_webhook_raw(body.as_bytes(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s, 401);

    // Paid for real; the same signed update delivered five more times.
    fake.pay(invoice).await.unwrap_or_else(|e| panic!("{e}"));
    delivered(&t, oid).await;
    let update = fake
        .deliveries()
        .iter()
        .find_map(|d| d.update_id)
        .unwrap_or_default();
    for _ in 0..5 {
        assert_eq!(
            fake.deliver_again(update)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
            200
        );
    }
    assert_eq!(subscriptions_of(&t, shop.customer).await.len(), 1);
    let ev = events(&t).await;
    assert_eq!(
        count(&ev, "cryptopay", "failed"),
        2,
        "two forged deliveries: {ev:?}"
    );
    // Crypto Pay cannot refund by itself: staff refund to the wallet instead.
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p["id"]),
            json!({"destination": "gateway", "reason": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p["id"]),
            json!({"destination": "wallet", "reason": "service issue"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(balance(&t, shop.customer, "USD").await, 399);
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn stars_checkout_delivers_on_successful_payment_only(#[case] backend: Backend) {
    let fake = FakeTelegram::start("123456:TEST-token")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let api = fake.api_url().to_owned();
    let t = app!(backend, |c| {
        c.telegram_token = Some("123456:TEST-token".into());
        c.telegram_api_url = api;
    });
    let shop = shop(&t, "stars").await;
    let tg_user = 900_000 + "stars".len() as i64;
    let (oid, p) = buy(&t, &shop, "XTR", json!({"method": "stars"})).await;
    let link = p["pay_url"].as_str().unwrap_or_default().to_owned();
    // Somebody else opening the customer's invoice is declined at pre-checkout.
    match fake
        .pay_invoice(4_242, &link)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        PayOutcome::Declined { error_message } => {
            assert!(error_message.contains("someone else"), "{error_message}")
        }
        other => panic!("expected a decline, got {other:?}"),
    }
    let charge = match fake
        .pay_invoice(tg_user, &link)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        PayOutcome::Paid { charge_id } => charge_id,
        other => panic!("expected the payment to go through, got {other:?}"),
    };
    delivered(&t, oid).await;
    let (_, po) = t.get(&format!("/api/v1/payments/{}", p["id"])).await;
    assert_eq!(po["gateway_ref"], charge.as_str());
    // The same successful_payment delivered four more times: still one delivery.
    let again = json!({"message": {"message_id": 9, "date": 0, "chat": {"id": tg_user, "type": "private"}, "from": {"id": tg_user, "is_bot": false, "first_name": "C"},
        "successful_payment": {"currency": "XTR", "total_amount": 150, "invoice_payload": format!("mrjbot:p{}", p["id"]), "telegram_payment_charge_id": charge, "provider_payment_charge_id": ""}}});
    for _ in 0..4 {
        fake.push_update(again.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let start = std::time::Instant::now();
    while count(&events(&t).await, "stars", "processed") < 1
        || start.elapsed() < Duration::from_millis(500)
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(subscriptions_of(&t, shop.customer).await.len(), 1);
    // The customer was told, in their language.
    let texts: Vec<String> = wait_messages(&fake, tg_user, 2).await;
    assert!(
        texts.iter().any(|m| m.contains("is confirmed")),
        "{texts:?}"
    );
    assert!(texts.iter().any(|m| m.contains("is ready")), "{texts:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Approved, delivered, and the link with its QR code (the bot's delivery message).
    assert_eq!(
        fake.messages(tg_user).len(),
        3,
        "one notice each, however often the payment came: {texts:?}"
    );
    // A forged successful_payment with another amount is recorded, not delivered.
    let o2 = order(
        &t,
        &shop.token,
        json!({"kind": "purchase", "plan_id": shop.plan, "currency": "XTR"}),
    )
    .await;
    let (_, p2) = as_user(
        &t,
        &shop.token,
        Method::POST,
        &format!("/api/v1/orders/{}/pay", o2["id"]),
        Some(json!({"method": "stars"})),
    )
    .await;
    fake.push_update(json!({"message": {"message_id": 1, "date": 0, "chat": {"id": tg_user, "type": "private"}, "from": {"id": tg_user, "is_bot": false, "first_name": "C"},
        "successful_payment": {"currency": "XTR", "total_amount": 1, "invoice_payload": format!("mrjbot:p{}", p2["id"]), "telegram_payment_charge_id": "forged-1", "provider_payment_charge_id": ""}}}))
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        &t,
        &format!("/api/v1/payments/{}", p2["id"]),
        Duration::from_secs(10),
        |_| true,
    )
    .await;
    let start = std::time::Instant::now();
    while count(&events(&t).await, "stars", "failed") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the forged payment was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, p2) = t.get(&format!("/api/v1/payments/{}", p2["id"])).await;
    assert_eq!(p2["status"], "pending");
    // Refund through Telegram, once.
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p["id"]),
            json!({"destination": "gateway", "reason": "asked"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .post(
            &format!("/api/v1/payments/{}/refund", p["id"]),
            json!({"destination": "gateway", "reason": "again"}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "nothing left to refund: {v}"
    );
    t.stop().await;
}

async fn wait_messages(fake: &FakeTelegram, chat: i64, n: usize) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let texts: Vec<String> = fake
            .messages(chat)
            .into_iter()
            .filter_map(|m| m.text)
            .collect();
        if texts.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn stars_lost_successful_payment_is_found_in_the_transactions() {
    let fake = FakeTelegram::start("123456:TEST-token")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let api = fake.api_url().to_owned();
    let mut t = app!(Backend::Sqlite, |c| {
        c.telegram_token = Some("123456:TEST-token".into());
        c.telegram_api_url = api.clone();
        // Another consumer reads the updates: this test plays it and loses the payment.
        c.telegram_payment_updates = false;
        // Another program runs the bot and reads the updates.
        c.telegram_bot = false;
    });
    let shop = shop(&t, "lost").await;
    let tg_user = 900_000 + "lost".len() as i64;
    let (oid, p) = buy(&t, &shop, "XTR", json!({"method": "stars"})).await;
    let link = p["pay_url"].as_str().unwrap_or_default().to_owned();
    let mut cfg = mrjbot_app::pay::telegram::TelegramConfig::new("123456:TEST-token");
    cfg.api_url = api;
    let bot = mrjbot_app::pay::telegram::TelegramClient::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let answering = tokio::spawn(async move {
        for _ in 0..50 {
            let updates = bot
                .get_updates(0, 1, &["pre_checkout_query"])
                .await
                .unwrap_or_default();
            for u in updates {
                if let mrjbot_app::pay::telegram::UpdateKind::PreCheckoutQuery { id, .. } = u.kind {
                    bot.answer_pre_checkout_query(&id, true, None)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    return;
                }
            }
        }
        panic!("no pre-checkout query arrived");
    });
    let charge = match fake
        .pay_invoice(tg_user, &link)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        PayOutcome::Paid { charge_id } => charge_id,
        other => panic!("expected a payment, got {other:?}"),
    };
    answering.await.unwrap_or_else(|e| panic!("{e}"));
    let (_, o) = t.get(&format!("/api/v1/orders/{oid}")).await;
    assert_eq!(
        o["status"], "pending",
        "the successful_payment was lost: {o}"
    );
    t.travel(Duration::from_secs(120)).await;
    let n = t
        .app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(n >= 1);
    delivered(&t, oid).await;
    let (_, po) = t.get(&format!("/api/v1/payments/{}", p["id"])).await;
    assert_eq!(
        po["gateway_ref"],
        charge.as_str(),
        "the transaction id is the charge id"
    );
    // Running it again changes nothing.
    t.app
        .reconcile_payments()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(subscriptions_of(&t, shop.customer).await.len(), 1);
    t.stop().await;
}
