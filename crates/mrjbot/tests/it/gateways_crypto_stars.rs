//! The Crypto Pay and Telegram Stars clients against their local fakes over real HTTP:
//! every method and error path, webhook signatures, a Stars checkout played by a test bot
//! loop, unanswered and declined checkouts, refunds, rate limits, and updates the money
//! path does not model.

use crate::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use mrjbot_app::pay::GatewayError;
use mrjbot_app::pay::cryptopay::{
    self, CreateInvoice, CryptoPayClient, CryptoPayConfig, CurrencyType, InvoiceStatus,
};
use mrjbot_app::pay::telegram::{
    self, StarsInvoice, TelegramClient, TelegramConfig, Update, UpdateKind,
};
use mrjbot_domain::{Currency, Money};
use mrjbot_testkit::fakes::cryptopay::{Delivery, FakeCryptoPay};
use mrjbot_testkit::fakes::telegram::{FakeTelegram, PayOutcome};
use mrjbot_testkit::fakes::{Served, serve};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CP_TOKEN: &str = "4242:AAfakeCryptoPayAppToken";
const TG_TOKEN: &str = "777000:AAfakeTelegramBotToken";
const CHECKOUT_UPDATES: &[&str] = &["message", "pre_checkout_query"];

fn money(s: &str) -> Money {
    Money::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The `(code, message)` of a refusal; anything else fails the test.
fn refusal<T: std::fmt::Debug>(r: Result<T, GatewayError>) -> (String, String) {
    match r {
        Err(GatewayError::Refused { code, message, .. }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn refused_locally<T: std::fmt::Debug>(r: Result<T, GatewayError>) {
    let (code, message) = refusal(r);
    assert_eq!(code, "400");
    assert!(message.contains("before sending"), "{message}");
}

// ---------------------------------------------------------------------------------------
// Crypto Pay

async fn crypto() -> (FakeCryptoPay, CryptoPayClient) {
    let fake = FakeCryptoPay::start(CP_TOKEN)
        .await
        .unwrap_or_else(|e| panic!("fake Crypto Pay: {e}"));
    let client = cp_client(fake.base_url(), CP_TOKEN, Duration::from_secs(5));
    (fake, client)
}

fn cp_client(base_url: &str, token: &str, timeout: Duration) -> CryptoPayClient {
    CryptoPayClient::new(CryptoPayConfig {
        token: token.into(),
        base_url: base_url.into(),
        timeout,
    })
    .unwrap_or_else(|e| panic!("client: {e}"))
}

fn order(amount: &str, payload: &str) -> CreateInvoice {
    CreateInvoice {
        amount: money(amount),
        description: "VPN, 30 days".into(),
        payload: payload.into(),
        expires_in: None,
        accepted_assets: None,
        paid_btn_url: None,
    }
}

async fn create(client: &CryptoPayClient, req: &CreateInvoice) -> cryptopay::Invoice {
    client
        .create_invoice(req)
        .await
        .unwrap_or_else(|e| panic!("createInvoice: {e}"))
}

/// A raw webhook body and its signature header, as received.
type Received = (Vec<u8>, Option<String>);

/// A webhook endpoint that records raw bodies and signature headers and answers the
/// queued statuses (then 200).
#[derive(Clone, Default)]
struct Sink {
    seen: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Sink {
    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn sink_hook(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get(cryptopay::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    sink.seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((body.to_vec(), signature));
    let status = sink
        .answers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// Starts a sink; returns it with its server (keep it alive) and its URL.
async fn start_sink(answers: &[u16]) -> (Sink, Served, String) {
    let sink = Sink::default();
    sink.answers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(answers.iter().copied());
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(sink_hook))
        .with_state(sink.clone());
    let served = serve(router).await.unwrap_or_else(|e| panic!("sink: {e}"));
    let url = format!("{}/hook", served.base_url);
    (sink, served, url)
}

#[tokio::test]
async fn cryptopay_get_me_and_wrong_token() {
    let (fake, client) = crypto().await;
    let me = client
        .get_me()
        .await
        .unwrap_or_else(|e| panic!("getMe: {e}"));
    assert!(me.app_id > 0);
    assert!(!me.name.is_empty());
    assert!(!me.payment_processing_bot_username.is_empty());

    let stranger = cp_client(fake.base_url(), "4242:wrong", Duration::from_secs(5));
    assert_eq!(
        refusal(stranger.get_me().await),
        ("401".into(), "UNAUTHORIZED".into())
    );
    assert_eq!(
        refusal(stranger.create_invoice(&order("1 USD", "o")).await),
        ("401".into(), "UNAUTHORIZED".into())
    );
    assert!(matches!(
        CryptoPayClient::new(CryptoPayConfig::new(" ")),
        Err(GatewayError::NotConfigured { .. })
    ));
    assert_eq!(CryptoPayConfig::new("t").base_url, "https://pay.crypt.bot");
}

#[tokio::test]
async fn cryptopay_fake_takes_query_form_and_json_with_the_real_error_shape() {
    let (fake, _client) = crypto().await;
    let http = reqwest::Client::new();
    let api = |m: &str| format!("{}/api/{m}", fake.base_url());
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    };

    let (s, b) = send(
        http.get(api("createInvoice"))
            .header(cryptopay::TOKEN_HEADER, CP_TOKEN)
            .query(&[("asset", "TON"), ("amount", "2.5"), ("payload", "q")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["result"]["amount"], "2.5");
    let (s, b) = send(
        http.post(api("createInvoice"))
            .header(cryptopay::TOKEN_HEADER, CP_TOKEN)
            .form(&[("currency_type", "fiat"), ("fiat", "EUR"), ("amount", "3")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["result"]["fiat"], "EUR");
    let (s, b) = send(
        http.get(api("getInvoices"))
            .header(cryptopay::TOKEN_HEADER, CP_TOKEN)
            .query(&[("invoice_ids", "1,2")]),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["result"]["items"].as_array().map(Vec::len), Some(2));

    for amount in ["-1", "abc", "0", "1e3", "0.00"] {
        let (s, b) = send(
            http.post(api("createInvoice"))
                .header(cryptopay::TOKEN_HEADER, CP_TOKEN)
                .json(&json!({"asset": "USDT", "amount": amount})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{amount}");
        assert_eq!(
            b,
            json!({"ok": false, "error": {"code": 400, "name": "AMOUNT_INVALID"}})
        );
    }
    let (s, b) = send(http.get(api("getMe"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        b,
        json!({"ok": false, "error": {"code": 401, "name": "UNAUTHORIZED"}})
    );
    let (s, b) = send(
        http.get(api("transfer"))
            .header(cryptopay::TOKEN_HEADER, CP_TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(b["error"]["name"], "METHOD_NOT_FOUND");
}

#[tokio::test]
async fn cryptopay_creates_fiat_and_crypto_invoices() {
    let (fake, client) = crypto().await;
    let fiat = create(
        &client,
        &CreateInvoice {
            accepted_assets: Some(vec!["USDT".into(), "TON".into()]),
            expires_in: Some(3600),
            paid_btn_url: Some("https://t.me/mrjbot_test_bot".into()),
            ..order("4.99 USD", "order-1")
        },
    )
    .await;
    assert_eq!(fiat.status, InvoiceStatus::Active);
    assert_eq!(fiat.currency_type, CurrencyType::Fiat);
    assert_eq!(
        (fiat.fiat.as_deref(), fiat.asset.as_deref()),
        (Some("USD"), None)
    );
    assert_eq!(fiat.amount, "4.99");
    assert_eq!(fiat.amount_money(), Ok(money("4.99 USD")));
    assert_eq!(fiat.payload.as_deref(), Some("order-1"));
    assert_eq!(fiat.description.as_deref(), Some("VPN, 30 days"));
    assert!(
        fiat.pay_url.starts_with("https://t.me/"),
        "{}",
        fiat.pay_url
    );
    assert!(fiat.expiration_date.is_some());
    assert!(fiat.paid_at.is_none());
    let stored = fake
        .invoice(fiat.invoice_id)
        .unwrap_or_else(|| panic!("stored"));
    assert_eq!(stored["accepted_assets"], json!(["USDT", "TON"]));
    assert_eq!(stored["paid_btn_name"], "callback");
    assert_eq!(stored["paid_btn_url"], "https://t.me/mrjbot_test_bot");

    let ton = create(&client, &order("1.5 TON", "order-2")).await;
    assert_eq!(ton.currency_type, CurrencyType::Crypto);
    assert_eq!(ton.asset.as_deref(), Some("TON"));
    assert_eq!(ton.amount, "1.5");
    assert_eq!(ton.amount_money(), Ok(money("1.5 TON")));
    let usdt = create(&client, &order("0.000001 USDT", "order-3")).await;
    assert_eq!(usdt.amount, "0.000001");
    let rub = create(&client, &order("199.00 RUB", "order-4")).await;
    assert_eq!(
        (rub.amount.as_str(), rub.fiat.as_deref()),
        ("199", Some("RUB"))
    );
    assert_eq!(rub.amount_money(), Ok(money("199 RUB")));
    let ids: HashSet<i64> = [&fiat, &ton, &usdt, &rub]
        .iter()
        .map(|i| i.invoice_id)
        .collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn cryptopay_refuses_bad_invoices() {
    let (_fake, client) = crypto().await;
    refused_locally(client.create_invoice(&order("150000 IRR", "o")).await);
    refused_locally(client.create_invoice(&order("100 XTR", "o")).await);
    refused_locally(
        client
            .create_invoice(&CreateInvoice {
                amount: Money {
                    amount_minor: -1,
                    currency: Currency::Usd,
                },
                ..order("1 USD", "o")
            })
            .await,
    );
    refused_locally(
        client
            .create_invoice(&CreateInvoice {
                accepted_assets: Some(vec!["USDT".into()]),
                ..order("1 TON", "o")
            })
            .await,
    );
    refused_locally(
        client
            .create_invoice(&CreateInvoice {
                accepted_assets: Some(vec![]),
                ..order("1 USD", "o")
            })
            .await,
    );

    let cases: Vec<(CreateInvoice, &str)> = vec![
        (order("0 USD", "o"), "AMOUNT_INVALID"),
        (order("0 TON", "o"), "AMOUNT_INVALID"),
        (
            CreateInvoice {
                description: "d".repeat(1025),
                ..order("1 USD", "o")
            },
            "DESCRIPTION_TOO_LONG",
        ),
        (order("1 USD", &"p".repeat(4097)), "PAYLOAD_TOO_LONG"),
        (
            CreateInvoice {
                expires_in: Some(0),
                ..order("1 USD", "o")
            },
            "EXPIRES_IN_INVALID",
        ),
        (
            CreateInvoice {
                expires_in: Some(cryptopay::MAX_EXPIRES_IN + 1),
                ..order("1 USD", "o")
            },
            "EXPIRES_IN_INVALID",
        ),
        (
            CreateInvoice {
                accepted_assets: Some(vec!["USDT".into(), "DOGE".into()]),
                ..order("1 USD", "o")
            },
            "ACCEPTED_ASSETS_INVALID",
        ),
        (
            CreateInvoice {
                paid_btn_url: Some("not a url".into()),
                ..order("1 USD", "o")
            },
            "PAID_BTN_URL_INVALID",
        ),
    ];
    for (req, name) in &cases {
        assert_eq!(
            refusal(client.create_invoice(req).await),
            ("400".into(), (*name).into())
        );
    }
    let edges = [
        CreateInvoice {
            description: "d".repeat(1024),
            ..order("1 USD", "o")
        },
        order("1 USD", &"p".repeat(4096)),
        CreateInvoice {
            expires_in: Some(1),
            ..order("1 USD", "o")
        },
        CreateInvoice {
            expires_in: Some(cryptopay::MAX_EXPIRES_IN),
            ..order("1 USD", "o")
        },
    ];
    for req in &edges {
        create(&client, req).await;
    }
    let all = client
        .get_invoices(&[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), edges.len(), "refused invoices were not created");
}

#[tokio::test]
async fn cryptopay_lists_filters_and_deletes_invoices() {
    let (fake, client) = crypto().await;
    let a = create(&client, &order("4.99 USD", "a")).await;
    let b = create(&client, &order("2 TON", "b")).await;
    let c = create(&client, &order("3 USDT", "c")).await;
    fake.pay(a.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("pay: {e}"));
    fake.expire(b.invoice_id)
        .unwrap_or_else(|e| panic!("expire: {e}"));
    assert!(fake.deliveries().is_empty(), "no webhook was set");

    let ids = |list: Vec<cryptopay::Invoice>| list.iter().map(|i| i.invoice_id).collect::<Vec<_>>();
    let get = |ids: &'static [i64], status: Option<&'static str>| {
        let client = client.clone();
        async move {
            client
                .get_invoices(ids, status)
                .await
                .unwrap_or_else(|e| panic!("getInvoices: {e}"))
        }
    };
    let all = get(&[], None).await;
    assert_eq!(all.len(), 3);
    let paid = get(&[], Some("paid")).await;
    assert_eq!(ids(paid.clone()), vec![a.invoice_id]);
    assert_eq!(paid[0].status, InvoiceStatus::Paid);
    assert!(paid[0].paid_at.is_some());
    assert_eq!(paid[0].paid_asset.as_deref(), Some("USDT"));
    assert_eq!(paid[0].paid_amount.as_deref(), Some("4.99"));
    assert_eq!(ids(get(&[], Some("active")).await), vec![c.invoice_id]);
    let by_id = client
        .get_invoices(&[a.invoice_id, b.invoice_id], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(by_id.clone()), vec![a.invoice_id, b.invoice_id]);
    assert_eq!(by_id[1].status, InvoiceStatus::Expired);
    let none = client
        .get_invoices(&[a.invoice_id], Some("active"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(none.is_empty());
    assert_eq!(
        refusal(client.get_invoices(&[], Some("expired")).await),
        ("400".into(), "STATUS_INVALID".into())
    );

    client
        .delete_invoice(c.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("delete: {e}"));
    let gone = client
        .get_invoices(&[c.invoice_id], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gone.is_empty());
    assert_eq!(
        refusal(client.delete_invoice(c.invoice_id).await),
        ("400".into(), "INVOICE_NOT_FOUND".into())
    );
    assert!(
        fake.pay(b.invoice_id).await.is_err(),
        "expired cannot be paid"
    );
    assert!(fake.pay(a.invoice_id).await.is_err(), "paid twice");
    assert!(fake.pay(9999).await.is_err());
    assert!(fake.expire(a.invoice_id).is_err());
}

#[tokio::test]
async fn cryptopay_get_invoices_walks_every_page() {
    let (_fake, client) = crypto().await;
    for n in 0..1003 {
        create(&client, &order("1 USDT", &format!("bulk-{n}"))).await;
    }
    let all = client
        .get_invoices(&[], Some("active"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), 1003, "more than one page of 1000");
    let unique: HashSet<i64> = all.iter().map(|i| i.invoice_id).collect();
    assert_eq!(unique.len(), 1003);
}

#[tokio::test]
async fn cryptopay_paid_webhook_is_signed_and_verifies() {
    let (fake, client) = crypto().await;
    let (sink, _served, url) = start_sink(&[]).await;
    fake.set_webhook(&url);
    let inv = create(&client, &order("4.99 USD", "order-7")).await;
    fake.pay(inv.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("pay: {e}"));
    assert_eq!(
        fake.deliveries(),
        vec![Delivery {
            update_id: Some(1),
            attempt: 1,
            status: Some(200)
        }]
    );
    let seen = sink.seen();
    assert_eq!(seen.len(), 1);
    let (body, signature) = &seen[0];
    let Some(signature) = signature.as_deref() else {
        panic!("the delivery carries a signature header");
    };
    assert_eq!(signature, signature.to_lowercase(), "lowercase hex");
    assert!(cryptopay::verify_signature(CP_TOKEN, body, signature));
    assert!(!cryptopay::verify_signature("4242:other", body, signature));

    let update = cryptopay::parse_webhook(body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(update.update_id, 1);
    assert_eq!(update.update_type, "invoice_paid");
    assert_eq!(update.invoice.invoice_id, inv.invoice_id);
    assert_eq!(update.invoice.status, InvoiceStatus::Paid);
    assert_eq!(update.invoice.payload.as_deref(), Some("order-7"));
    assert!(update.invoice.paid_at.is_some());
    assert_eq!(update.invoice.amount_money(), Ok(money("4.99 USD")));

    // The same JSON with other whitespace is other bytes: rejected.
    let parsed: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}"));
    let pretty = serde_json::to_vec_pretty(&parsed).unwrap_or_default();
    assert_ne!(&pretty, body);
    assert!(!cryptopay::verify_signature(CP_TOKEN, &pretty, signature));
    // ...but signed for what it is, it verifies: bytes are what is authenticated.
    assert!(cryptopay::verify_signature(
        CP_TOKEN,
        &pretty,
        &fake.sign(&pretty)
    ));
    let tampered = String::from_utf8_lossy(body)
        .replace("\"4.99\"", "\"0.01\"")
        .into_bytes();
    assert_ne!(&tampered, body);
    assert!(!cryptopay::verify_signature(CP_TOKEN, &tampered, signature));

    // Forged delivery: a made-up signature.
    let status = fake
        .send_webhook_raw(&tampered, Some("deadbeef"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    // Missing header.
    fake.send_webhook_raw(body, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen = sink.seen();
    assert_eq!(seen[1].1.as_deref(), Some("deadbeef"));
    assert!(!cryptopay::verify_signature(
        CP_TOKEN, &seen[1].0, "deadbeef"
    ));
    assert_eq!(seen[2].1, None, "no signature header was sent");
    assert!(!cryptopay::verify_signature(CP_TOKEN, &seen[2].0, ""));

    // A duplicate delivery is byte-identical, so dedupe on update_id sees it.
    let status = fake
        .deliver_again(update.update_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    let seen = sink.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[3], seen[0]);
    assert!(fake.deliver_again(99).await.is_err());
}

#[tokio::test]
async fn cryptopay_webhook_retries_until_ok_and_gives_up_bounded() {
    let (fake, client) = crypto().await;
    let (sink, _served, url) = start_sink(&[500, 503, 200, 500, 500, 500]).await;
    fake.set_webhook(&url);
    fake.set_webhook_retry(5, Duration::from_millis(10));
    let first = create(&client, &order("1 USD", "r1")).await;
    fake.pay(first.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let statuses: Vec<_> = fake
        .deliveries()
        .iter()
        .map(|d| (d.attempt, d.status))
        .collect();
    assert_eq!(
        statuses,
        vec![(1, Some(500)), (2, Some(503)), (3, Some(200))]
    );
    let seen = sink.seen();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|s| s == &seen[0]),
        "retries resend the same bytes"
    );

    // Three 500s left in the sink, three attempts allowed: the fake gives up.
    fake.set_webhook_retry(3, Duration::from_millis(10));
    let second = create(&client, &order("1 USD", "r2")).await;
    let paid = fake
        .pay(second.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        paid["status"], "paid",
        "paid even though no delivery got through"
    );
    let tail: Vec<_> = fake.deliveries()[3..]
        .iter()
        .map(|d| (d.update_id, d.status))
        .collect();
    assert_eq!(tail, vec![(Some(2), Some(500)); 3]);

    // An unreachable webhook: attempts are recorded without a status.
    fake.set_webhook("http://127.0.0.1:1/hook");
    fake.set_webhook_retry(2, Duration::from_millis(10));
    let third = create(&client, &order("1 USD", "r3")).await;
    fake.pay(third.invoice_id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let last: Vec<_> = fake.deliveries()[6..].iter().map(|d| d.status).collect();
    assert_eq!(last, vec![None, None]);
}

#[tokio::test]
async fn cryptopay_outcome_unknown_on_5xx_timeouts_and_dead_hosts() {
    let (fake, client) = crypto().await;
    fake.fail_next(1, 502);
    assert!(matches!(
        client.get_me().await,
        Err(GatewayError::Unknown { .. })
    ));
    client
        .get_me()
        .await
        .unwrap_or_else(|e| panic!("recovers after the forced failure: {e}"));

    fake.fail_next(2, 503);
    for _ in 0..2 {
        let r = client.create_invoice(&order("1 USD", "u")).await;
        assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
    }
    fake.fail_next(1, 400);
    assert_eq!(
        refusal(client.get_me().await),
        ("400".into(), "FORCED_BY_TEST".into())
    );
    let all = client
        .get_invoices(&[], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(all.is_empty(), "forced failures created nothing");

    let impatient = cp_client(fake.base_url(), CP_TOKEN, Duration::from_millis(300));
    fake.set_delay(Duration::from_millis(1500));
    let r = impatient.get_me().await;
    assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
    assert!(r.as_ref().err().is_some_and(GatewayError::is_retryable));
    fake.set_delay(Duration::ZERO);
    impatient
        .get_me()
        .await
        .unwrap_or_else(|e| panic!("no delay: {e}"));

    let base = fake.base_url().to_owned();
    drop(fake);
    let dead = cp_client(&base, CP_TOKEN, Duration::from_secs(2));
    let r = dead.get_me().await;
    assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
}

#[tokio::test]
async fn cryptopay_control_routes_pay_and_expire() {
    let (fake, client) = crypto().await;
    let (sink, _served, url) = start_sink(&[]).await;
    fake.set_webhook(&url);
    let a = create(&client, &order("2 USD", "route-a")).await;
    let b = create(&client, &order("3 USD", "route-b")).await;
    let http = reqwest::Client::new();
    let control = |id: i64, action: &str| {
        let req = http.post(format!(
            "{}/__test/cryptopay/{id}/{action}",
            fake.base_url()
        ));
        async move {
            let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = control(a.invoice_id, "pay").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "paid");
    assert_eq!(sink.seen().len(), 1, "the route delivers the webhook too");
    assert_eq!(control(a.invoice_id, "pay").await.0, StatusCode::CONFLICT);
    let (s, v) = control(b.invoice_id, "expire").await;
    assert_eq!((s, v["status"].clone()), (StatusCode::OK, json!("expired")));
    assert_eq!(control(b.invoice_id, "pay").await.0, StatusCode::CONFLICT);
    assert_eq!(control(12345, "pay").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        control(a.invoice_id, "refund").await.0,
        StatusCode::NOT_FOUND
    );
    let statuses: Vec<_> = client
        .get_invoices(&[a.invoice_id, b.invoice_id], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|i| i.status)
        .collect();
    assert_eq!(statuses, vec![InvoiceStatus::Paid, InvoiceStatus::Expired]);
}

/// Servers that break the protocol: both clients call it `Unexpected` (or `Unknown` for
/// a 5xx), never success.
#[tokio::test]
async fn answers_outside_the_protocol_are_unexpected() {
    let html = serve(axum::Router::new().fallback(|| async { "<html>maintenance</html>" }))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let odd = serve(
        axum::Router::new()
            .fallback(|| async { axum::Json(json!({"ok": true, "result": {"surprise": 1}})) }),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let broken = serve(axum::Router::new().fallback(|| async {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"ok": false, "error_code": 500, "description": "Internal"})),
        )
    }))
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    for base in [&html.base_url, &odd.base_url] {
        let cp = cp_client(base, CP_TOKEN, Duration::from_secs(2));
        let r = cp.get_me().await;
        assert!(matches!(r, Err(GatewayError::Unexpected { .. })), "{r:?}");
        let tg = tg_client(base, TG_TOKEN, Duration::from_secs(2));
        let r = tg.get_me().await;
        assert!(matches!(r, Err(GatewayError::Unexpected { .. })), "{r:?}");
    }
    let tg = tg_client(&broken.base_url, TG_TOKEN, Duration::from_secs(2));
    let r = tg.send_message(1, "hi").await;
    assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------------------
// Telegram Stars

async fn telegram() -> (FakeTelegram, TelegramClient) {
    let fake = FakeTelegram::start(TG_TOKEN)
        .await
        .unwrap_or_else(|e| panic!("fake Telegram: {e}"));
    // The customers these tests write to started the bot before (Telegram refuses
    // chats that never talked to the bot).
    for chat in [1, 5, 10, 20, 42] {
        fake.open_chat(chat);
    }
    let client = tg_client(fake.api_url(), TG_TOKEN, Duration::from_secs(5));
    (fake, client)
}

fn tg_client(api_url: &str, token: &str, timeout: Duration) -> TelegramClient {
    TelegramClient::new(TelegramConfig {
        token: token.into(),
        api_url: api_url.into(),
        timeout,
    })
    .unwrap_or_else(|e| panic!("client: {e}"))
}

fn stars(payload: &str, amount: i64) -> StarsInvoice {
    StarsInvoice {
        title: "VPN 30 days".into(),
        description: "One month of VPN, all locations".into(),
        payload: payload.into(),
        amount_stars: amount,
        subscription_period: None,
    }
}

/// Polls until one update arrives, confirms it, and returns it.
async fn next_update(bot: &TelegramClient, offset: &mut i64) -> Update {
    for _ in 0..10 {
        let updates = bot
            .get_updates(*offset, 2, CHECKOUT_UPDATES)
            .await
            .unwrap_or_else(|e| panic!("getUpdates: {e}"));
        if let Some(u) = updates.into_iter().next() {
            *offset = u.update_id + 1;
            return u;
        }
    }
    panic!("no update arrived");
}

/// Plays the bot for one checkout: waits for the pre-checkout query and accepts it, or
/// declines with `decline`. Returns the query's fields.
async fn answer_checkout(
    bot: &TelegramClient,
    offset: &mut i64,
    decline: Option<&str>,
) -> UpdateKind {
    let update = next_update(bot, offset).await;
    let UpdateKind::PreCheckoutQuery { id, .. } = &update.kind else {
        panic!("expected a pre-checkout query, got {update:?}");
    };
    bot.answer_pre_checkout_query(id, decline.is_none(), decline)
        .await
        .unwrap_or_else(|e| panic!("answerPreCheckoutQuery: {e}"));
    update.kind
}

async fn raw_call(fake: &FakeTelegram, method: &str, body: Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/bot{}/{method}", fake.api_url(), fake.token()))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn telegram_tokens_methods_and_encodings() {
    let (fake, bot) = telegram().await;
    let me = bot.get_me().await.unwrap_or_else(|e| panic!("getMe: {e}"));
    assert_eq!(me.id, 777000);
    assert!(me.is_bot);
    assert!(me.username.is_some());
    let stranger = tg_client(fake.api_url(), "777000:wrong", Duration::from_secs(5));
    assert_eq!(
        refusal(stranger.get_me().await),
        ("401".into(), "Unauthorized".into())
    );
    assert!(matches!(
        TelegramClient::new(TelegramConfig::new("")),
        Err(GatewayError::NotConfigured { .. })
    ));
    assert_eq!(TelegramConfig::new("t").api_url, "https://api.telegram.org");

    let (s, b) = raw_call(&fake, "sendSticker", json!({"chat_id": 1})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        b,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );
    let http = reqwest::Client::new();
    let api = format!("{}/bot{TG_TOKEN}", fake.api_url());
    let resp = http
        .get(format!("{api}/GETME"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "method names are case-insensitive"
    );
    let resp = http
        .get(format!("{api}/sendMessage"))
        .query(&[("chat_id", "5"), ("text", "by query")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(v["result"]["message_id"], 1, "{v}");
    let resp = http
        .post(format!("{api}/sendMessage"))
        .form(&[("chat_id", "5"), ("text", "by form")])
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert_eq!(v["result"]["message_id"], 2, "{v}");
    assert_eq!(v["result"]["chat"]["id"], 5);
    assert_eq!(v["result"]["from"]["id"], 777000);
    let texts: Vec<_> = fake
        .messages(5)
        .into_iter()
        .filter_map(|m| m.text)
        .collect();
    assert_eq!(texts, vec!["by query", "by form"]);
    let resp = http
        .get(format!("{}/nothing/here/at/all", fake.api_url()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn telegram_messages_are_recorded_per_chat() {
    let (fake, bot) = telegram().await;
    let send = |chat: i64, text: String| {
        let bot = bot.clone();
        async move { bot.send_message(chat, &text).await }
    };
    assert_eq!(send(10, "a".into()).await.ok(), Some(1));
    assert_eq!(send(10, "b".into()).await.ok(), Some(2));
    assert_eq!(send(20, "c".into()).await.ok(), Some(1));
    let ten = fake.messages(10);
    assert_eq!(
        ten.iter()
            .map(|m| (m.message_id, m.text.clone()))
            .collect::<Vec<_>>(),
        vec![(1, Some("a".into())), (2, Some("b".into()))]
    );
    assert_eq!(ten[0].request["chat_id"], 10);
    assert!(ten[0].date > 1_600_000_000, "seconds, not milliseconds");
    assert!(ten[0].date < 10_000_000_000, "seconds, not milliseconds");
    assert_eq!(
        refusal(send(10, String::new()).await),
        ("400".into(), "Bad Request: message text is empty".into())
    );
    assert_eq!(
        refusal(send(10, "x".repeat(4097)).await),
        ("400".into(), "Bad Request: message is too long".into())
    );
    assert_eq!(
        refusal(send(0, "x".into()).await),
        ("400".into(), "Bad Request: chat not found".into())
    );
    assert_eq!(
        fake.messages(10).len(),
        2,
        "refused messages are not recorded"
    );
    assert!(fake.messages(30).is_empty());
}

#[tokio::test]
async fn telegram_invoices_are_validated() {
    let (fake, bot) = telegram().await;
    refused_locally(
        bot.send_invoice(
            1,
            &StarsInvoice {
                title: "t".repeat(33),
                ..stars("o", 1)
            },
        )
        .await,
    );
    refused_locally(bot.create_invoice_link(&stars("o", 0)).await);
    refused_locally(
        bot.send_invoice(
            1,
            &StarsInvoice {
                subscription_period: Some(telegram::SUBSCRIPTION_PERIOD_30_DAYS),
                ..stars("o", 1)
            },
        )
        .await,
    );
    assert!(fake.messages(1).is_empty(), "nothing reached the fake");

    let base = json!({
        "chat_id": 1, "title": "VPN", "description": "30 days", "payload": "o-1",
        "currency": "XTR", "prices": [{"label": "VPN", "amount": 5}],
    });
    let with = |patch: Value| {
        let mut v = base.clone();
        if let (Some(m), Value::Object(p)) = (v.as_object_mut(), patch) {
            for (k, val) in p {
                if val.is_null() {
                    m.remove(&k);
                } else {
                    m.insert(k, val);
                }
            }
        }
        v
    };
    let cases = [
        (
            "sendInvoice",
            with(json!({"prices": [{"label": "a", "amount": 1}, {"label": "b", "amount": 1}]})),
            "STARS_INVOICE_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"prices": []})),
            "STARS_INVOICE_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"prices": [{"label": "a", "amount": 0}]})),
            "CURRENCY_TOTAL_AMOUNT_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"prices": "not json"})),
            "can't parse prices JSON object",
        ),
        (
            "sendInvoice",
            with(json!({"currency": "USD"})),
            "CURRENCY_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"currency": null})),
            "parameter \"currency\" is required",
        ),
        (
            "sendInvoice",
            with(json!({"title": "t".repeat(33)})),
            "INVOICE_TITLE_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"description": ""})),
            "INVOICE_DESCRIPTION_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"payload": "p".repeat(129)})),
            "INVOICE_PAYLOAD_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"max_tip_amount": 10})),
            "STARS_INVOICE_INVALID",
        ),
        (
            "sendInvoice",
            with(json!({"provider_token": "x"})),
            "PROVIDER_TOKEN_INVALID",
        ),
        (
            "createInvoiceLink",
            with(json!({"subscription_period": 86400})),
            "SUBSCRIPTION_PERIOD_INVALID",
        ),
    ];
    for (method, body, description) in cases {
        let (s, b) = raw_call(&fake, method, body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            b,
            json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {description}")}),
            "{body}"
        );
    }
    // The prices may come as a JSON string, as form-encoding clients send them.
    let (s, b) = raw_call(
        &fake,
        "sendInvoice",
        with(json!({"prices": "[{\"label\":\"VPN\",\"amount\":5}]", "provider_token": ""})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let id = bot
        .send_invoice(42, &stars("order-1", 100))
        .await
        .unwrap_or_else(|e| panic!("sendInvoice: {e}"));
    let sent = fake.messages(42);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id, id);
    let Some(invoice) = &sent[0].invoice else {
        panic!("an invoice message");
    };
    assert_eq!(invoice["currency"], "XTR");
    assert_eq!(invoice["total_amount"], 100);
    assert_eq!(sent[0].request["payload"], "order-1");
    let link = bot
        .create_invoice_link(&StarsInvoice {
            subscription_period: Some(telegram::SUBSCRIPTION_PERIOD_30_DAYS),
            ..stars("order-2", 250)
        })
        .await
        .unwrap_or_else(|e| panic!("createInvoiceLink: {e}"));
    assert!(link.starts_with("https://t.me/$"), "{link}");
}

#[tokio::test]
async fn stars_checkout_end_to_end() {
    let (fake, bot) = telegram().await;
    bot.send_invoice(42, &stars("order-1", 100))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut offset = 0;
    let mut charges = Vec::new();

    for user in [42, 43] {
        let (outcome, query) = tokio::join!(
            fake.pay_invoice(user, "order-1"),
            answer_checkout(&bot, &mut offset, None)
        );
        assert!(matches!(query, UpdateKind::PreCheckoutQuery {
            from_id, total_amount: 100, ref currency, ref invoice_payload, ..
        } if from_id == user && currency == "XTR" && invoice_payload == "order-1"));
        let Ok(PayOutcome::Paid { charge_id }) = outcome else {
            panic!("expected a payment, got {outcome:?}");
        };
        let paid = next_update(&bot, &mut offset).await;
        let UpdateKind::SuccessfulPayment {
            chat_id,
            from_id,
            currency,
            total_amount,
            invoice_payload,
            telegram_payment_charge_id,
            provider_payment_charge_id,
            is_recurring,
            is_first_recurring,
            subscription_expiration_date,
        } = paid.kind
        else {
            panic!("expected successful_payment, got {paid:?}");
        };
        assert_eq!((chat_id, from_id), (user, user));
        assert_eq!((currency.as_str(), total_amount), ("XTR", 100));
        assert_eq!(invoice_payload, "order-1");
        assert_eq!(telegram_payment_charge_id, charge_id);
        assert_ne!(provider_payment_charge_id, charge_id);
        assert!(!is_recurring && !is_first_recurring);
        assert_eq!(subscription_expiration_date, None);
        charges.push(charge_id);
    }

    // A subscription, sold by link, then renewed by Telegram.
    let link = bot
        .create_invoice_link(&StarsInvoice {
            subscription_period: Some(telegram::SUBSCRIPTION_PERIOD_30_DAYS),
            ..stars("order-sub", 250)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (outcome, _) = tokio::join!(
        fake.pay_invoice(44, &link),
        answer_checkout(&bot, &mut offset, None)
    );
    let Ok(PayOutcome::Paid { charge_id }) = outcome else {
        panic!("expected a payment, got {outcome:?}");
    };
    let first = next_update(&bot, &mut offset).await;
    let UpdateKind::SuccessfulPayment {
        is_recurring: true,
        is_first_recurring: true,
        subscription_expiration_date: Some(first_expiry),
        total_amount: 250,
        ..
    } = first.kind
    else {
        panic!("expected the first subscription payment, got {first:?}");
    };
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    assert!(first_expiry > now + 29 * 86_400, "{first_expiry}");
    charges.push(charge_id.clone());
    let renewal_id = fake
        .renew_subscription(&charge_id)
        .unwrap_or_else(|e| panic!("renew: {e}"));
    let renewal = next_update(&bot, &mut offset).await;
    let UpdateKind::SuccessfulPayment {
        is_recurring: true,
        is_first_recurring: false,
        subscription_expiration_date: Some(next_expiry),
        ref telegram_payment_charge_id,
        ..
    } = renewal.kind
    else {
        panic!("expected a renewal, got {renewal:?}");
    };
    assert_eq!(telegram_payment_charge_id, &renewal_id);
    assert_eq!(
        next_expiry,
        first_expiry + i64::from(telegram::SUBSCRIPTION_PERIOD_30_DAYS)
    );
    charges.push(renewal_id);
    assert!(
        fake.renew_subscription(&charges[0]).is_err(),
        "not a subscription"
    );

    let unique: HashSet<&String> = charges.iter().collect();
    assert_eq!(
        unique.len(),
        charges.len(),
        "charge ids are unique: {charges:?}"
    );
    let ledger = bot
        .get_star_transactions(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ledger.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        charges
    );
    assert_eq!(
        ledger
            .iter()
            .map(|t| (t.source_user_id, t.amount))
            .collect::<Vec<_>>(),
        vec![
            (Some(42), 100),
            (Some(43), 100),
            (Some(44), 250),
            (Some(44), 250)
        ]
    );
    assert_eq!(ledger[0].invoice_payload.as_deref(), Some("order-1"));
    let page = bot
        .get_star_transactions(1, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        page.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        charges[1..3].to_vec()
    );
    refused_locally(bot.get_star_transactions(0, 0).await);
    refused_locally(bot.get_star_transactions(0, 101).await);
    assert!(fake.pay_invoice(42, "no-such-order").await.is_err());
}

#[tokio::test]
async fn stars_unanswered_checkout_times_out_and_charges_nothing() {
    let (fake, bot) = telegram().await;
    fake.set_precheckout_timeout(Duration::from_millis(300));
    bot.send_invoice(42, &stars("order-9", 100))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let outcome = fake
        .pay_invoice(42, "order-9")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, PayOutcome::TimedOut);
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The bot wakes up late: the query is there but can no longer be answered.
    let mut offset = 0;
    let late = next_update(&bot, &mut offset).await;
    let UpdateKind::PreCheckoutQuery { id, .. } = &late.kind else {
        panic!("expected the query, got {late:?}");
    };
    let (code, message) = refusal(bot.answer_pre_checkout_query(id, true, None).await);
    assert_eq!(code, "400");
    assert!(message.contains("query is too old"), "{message}");
    let after = bot
        .get_updates(offset, 1, CHECKOUT_UPDATES)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(after.is_empty(), "no successful_payment: {after:?}");
    let ledger = bot
        .get_star_transactions(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ledger.is_empty());
}

#[tokio::test]
async fn stars_declined_checkout_charges_nothing() {
    let (fake, bot) = telegram().await;
    bot.send_invoice(42, &stars("order-5", 10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    refused_locally(bot.answer_pre_checkout_query("any", false, None).await);
    refused_locally(
        bot.answer_pre_checkout_query("any", false, Some("  "))
            .await,
    );
    let (code, message) = refusal(bot.answer_pre_checkout_query("nope", true, None).await);
    assert_eq!(code, "400");
    assert!(message.contains("query ID is invalid"), "{message}");

    let mut offset = 0;
    let bot_side = async {
        let update = next_update(&bot, &mut offset).await;
        let UpdateKind::PreCheckoutQuery { id, .. } = &update.kind else {
            panic!("expected the query, got {update:?}");
        };
        // The fake itself insists on error_message when declining.
        let (s, b) = raw_call(
            &fake,
            "answerPreCheckoutQuery",
            json!({"pre_checkout_query_id": id, "ok": false}),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["description"], "Bad Request: ERROR_MESSAGE_EMPTY");
        bot.answer_pre_checkout_query(id, false, Some("This order has expired"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    };
    let (outcome, ()) = tokio::join!(fake.pay_invoice(42, "order-5"), bot_side);
    assert_eq!(
        outcome.ok(),
        Some(PayOutcome::Declined {
            error_message: "This order has expired".into()
        })
    );
    let after = bot
        .get_updates(offset, 0, CHECKOUT_UPDATES)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(after.is_empty(), "no successful_payment: {after:?}");
}

#[tokio::test]
async fn stars_refund_once_then_refused() {
    let (fake, bot) = telegram().await;
    bot.send_invoice(42, &stars("order-r", 75))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut offset = 0;
    let (outcome, _) = tokio::join!(
        fake.pay_invoice(42, "order-r"),
        answer_checkout(&bot, &mut offset, None)
    );
    let Ok(PayOutcome::Paid { charge_id }) = outcome else {
        panic!("expected a payment, got {outcome:?}");
    };
    next_update(&bot, &mut offset).await;

    assert_eq!(
        refusal(bot.refund_star_payment(43, &charge_id).await),
        ("400".into(), "Bad Request: USER_ID_INVALID".into())
    );
    assert_eq!(
        refusal(bot.refund_star_payment(42, "stxNOPE").await),
        ("400".into(), "Bad Request: CHARGE_NOT_FOUND".into())
    );
    bot.refund_star_payment(42, &charge_id)
        .await
        .unwrap_or_else(|e| panic!("refund: {e}"));
    let refunded = next_update(&bot, &mut offset).await;
    assert!(matches!(refunded.kind, UpdateKind::RefundedPayment {
        chat_id: 42, from_id: Some(42), total_amount: 75,
        ref telegram_payment_charge_id, ref invoice_payload, ref currency, ..
    } if telegram_payment_charge_id == &charge_id && invoice_payload == "order-r" && currency == "XTR"));
    assert_eq!(
        refusal(bot.refund_star_payment(42, &charge_id).await),
        ("400".into(), "Bad Request: CHARGE_ALREADY_REFUNDED".into())
    );
    let ledger = bot
        .get_star_transactions(0, 100)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ledger.len(), 2);
    assert_eq!(
        (ledger[1].receiver_user_id, ledger[1].amount),
        (Some(42), 75)
    );
    assert!(fake.renew_subscription(&charge_id).is_err());
}

#[tokio::test]
async fn telegram_rate_limit_is_reported_with_its_delay() {
    let (fake, bot) = telegram().await;
    fake.rate_limit_next(2, 7);
    for r in [
        bot.get_me().await.map(|_| ()),
        bot.send_message(1, "hi").await.map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(GatewayError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(7)
            ),
            "{r:?}"
        );
        assert!(r.as_ref().err().is_some_and(GatewayError::is_retryable));
    }
    assert!(fake.messages(1).is_empty(), "a limited call does nothing");
    bot.get_me().await.unwrap_or_else(|e| panic!("{e}"));

    fake.rate_limit_next(1, 3);
    let (s, b) = raw_call(&fake, "getMe", json!({})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        b,
        json!({"ok": false, "error_code": 429,
               "description": "Too Many Requests: retry after 3",
               "parameters": {"retry_after": 3}})
    );
}

#[tokio::test]
async fn telegram_updates_keep_unknown_kinds_and_follow_polling_rules() {
    let (fake, bot) = telegram().await;
    let pushed = [
        json!({"message": {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"},
                           "from": {"id": 5, "is_bot": false, "first_name": "U"}, "text": "/start"}}),
        json!({"pre_checkout_query": {"id": "broken"}}),
        json!({"business_message_from_the_future": {"x": [1, 2]}}),
    ];
    let mut ids = Vec::new();
    for u in &pushed {
        ids.push(
            fake.push_update(u.clone())
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    assert!(fake.push_update(json!([1])).is_err());

    let got = bot
        .get_updates(0, 0, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.iter().map(|u| u.update_id).collect::<Vec<_>>(), ids);
    for (u, raw) in got.iter().zip(&pushed) {
        let mut expected = raw.clone();
        expected["update_id"] = json!(u.update_id);
        assert_eq!(u.kind, UpdateKind::Other(expected));
    }
    let again = bot
        .get_updates(0, 0, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.len(), 3, "unconfirmed updates are delivered again");
    let offset = ids[2] + 1;
    let confirmed = bot
        .get_updates(offset, 0, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(confirmed.is_empty());

    // Long polling returns as soon as an update arrives...
    let started = Instant::now();
    let push_later = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        fake.push_update(json!({"callback_query": {"id": "c1"}}))
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (polled, pushed_id) = tokio::join!(bot.get_updates(offset, 20, &[]), push_later);
    let polled = polled.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        polled.iter().map(|u| u.update_id).collect::<Vec<_>>(),
        vec![pushed_id]
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let offset = pushed_id + 1;

    // ...and otherwise holds the request for the whole timeout, which the client allows
    // for on top of its own (1 s here).
    let short = tg_client(fake.api_url(), TG_TOKEN, Duration::from_secs(1));
    let started = Instant::now();
    let empty = short
        .get_updates(offset, 2, &[])
        .await
        .unwrap_or_else(|e| panic!("a long poll is not a timeout: {e}"));
    assert!(empty.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // allowed_updates filters, and Telegram drops what the bot did not ask for.
    let message_id = fake
        .push_update(
            json!({"message": {"message_id": 2, "date": 2, "chat": {"id": 5}, "text": "hi"}}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let query_id = fake
        .push_update(json!({"pre_checkout_query": {"id": "q", "from": {"id": 5},
            "currency": "XTR", "total_amount": 1, "invoice_payload": "p"}}))
        .unwrap_or_else(|e| panic!("{e}"));
    let only = bot
        .get_updates(offset, 0, &["pre_checkout_query"])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].update_id, query_id);
    assert!(matches!(only[0].kind, UpdateKind::PreCheckoutQuery { .. }));
    let rest = bot
        .get_updates(offset, 0, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rest.iter().all(|u| u.update_id != message_id),
        "the filtered message is gone: {rest:?}"
    );

    // A negative offset keeps only the newest updates.
    for n in 0..3 {
        fake.push_update(json!({"poll": {"id": n.to_string()}}))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let newest = bot
        .get_updates(-1, 0, &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(newest.len(), 1);
    let UpdateKind::Other(v) = &newest[0].kind else {
        panic!("a poll is kept as Other");
    };
    assert_eq!(v["poll"]["id"], "2");
}

#[tokio::test]
async fn telegram_transport_errors_are_unknown_and_hide_the_token() {
    let (fake, _bot) = telegram().await;
    let url = fake.api_url().to_owned();
    drop(fake);
    let bot = tg_client(&url, TG_TOKEN, Duration::from_secs(2));
    let r = bot.send_message(1, "hi").await;
    let Err(e @ GatewayError::Unknown { .. }) = r else {
        panic!("expected Unknown, got {r:?}");
    };
    assert!(!e.to_string().contains("AAfakeTelegramBotToken"), "{e}");
    assert!(e.is_retryable());
}

/// The money in Crypto Pay answers and in our domain agree to the minor unit for every
/// currency Crypto Pay can price.
#[tokio::test]
async fn cryptopay_amounts_round_trip_exactly() {
    let (_fake, client) = crypto().await;
    for (text, currency) in [
        ("0.01", Currency::Usd),
        ("1234567.89", Currency::Eur),
        ("0.1", Currency::Rub),
        ("0.000001", Currency::Usdt),
        ("123.456789", Currency::Usdt),
        ("0.000000001", Currency::Ton),
    ] {
        let amount = Money::parse_amount(text, currency).unwrap_or_else(|e| panic!("{text}: {e}"));
        let inv = create(
            &client,
            &CreateInvoice {
                amount,
                ..order("1 USD", "rt")
            },
        )
        .await;
        assert_eq!(inv.amount, text);
        assert_eq!(inv.amount_money(), Ok(amount), "{text} {currency}");
    }
}
