//! The Zarinpal and YooKassa clients against their local fakes over real HTTP: every
//! method, every error path the money path depends on (refusal codes, unknown outcomes,
//! rate limits, answers that break the spec), same-key retries that never duplicate a
//! payment, webhooks with their source check, and exact money strings.

use crate::*;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use mrjbot_app::pay::GatewayError;
use mrjbot_app::pay::yookassa::{
    CreatePayment, CreateRefund, PaymentStatus, RefundStatus, Yookassa, YookassaConfig,
    parse_notification,
};
use mrjbot_app::pay::zarinpal::{
    FeeType, InquiryStatus, Zarinpal, ZarinpalConfig, ZarinpalMeta, parse_callback,
};
use mrjbot_domain::{Currency, Money};
use mrjbot_testkit::fakes::yookassa::FakeYookassa;
use mrjbot_testkit::fakes::zarinpal::FakeZarinpal;
use mrjbot_testkit::fakes::{Served, serve};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MERCHANT: &str = "1344b5d4-0048-11e8-94db-005056a205be";
const OTHER_MERCHANT: &str = "9f1c2a70-1111-4a2b-9c3d-0123456789ab";
const SHOP: &str = "100500";
const SECRET: &str = "test_secret_key";
const CALLBACK: &str = "https://bot.example/pay/zarinpal/callback?order=7";

fn ok<T, E: Debug>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// The gateway code of a refusal; anything else fails the test.
fn refused<T: Debug>(r: Result<T, GatewayError>) -> (String, String) {
    match r {
        Err(GatewayError::Refused { code, message, .. }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn http() -> reqwest::Client {
    mrjbot_app::pay::http_client(Duration::from_secs(5))
}

// ---------------------------------------------------------------------------------
// Zarinpal

async fn zarinpal_fake() -> FakeZarinpal {
    ok(
        FakeZarinpal::start(MERCHANT).await,
        "starting the fake Zarinpal",
    )
}

fn zarinpal(base: &str, merchant: &str, timeout: Duration) -> Zarinpal {
    ok(
        Zarinpal::new(ZarinpalConfig {
            merchant_id: merchant.into(),
            base_url: base.into(),
            timeout,
        }),
        "building the Zarinpal client",
    )
}

async fn request(zp: &Zarinpal, amount: i64) -> String {
    let meta = ZarinpalMeta {
        order_id: Some("7".into()),
        mobile: Some("09121234567".into()),
        email: None,
    };
    ok(
        zp.request(amount, "VPN 1 month, order 7", CALLBACK, &meta)
            .await,
        "payment request",
    )
    .authority
}

/// The full path: request, StartPay page, the payer pays (302 back to the callback),
/// unVerified, verify, the idempotent repeat (101, same ref_id), inquiry on the way.
#[tokio::test]
async fn zarinpal_request_pay_verify_and_repeat() {
    let fake = zarinpal_fake().await;
    fake.set_fee("Payer", 5_000);
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_secs(5));
    let meta = ZarinpalMeta {
        order_id: Some("7".into()),
        ..ZarinpalMeta::default()
    };
    let req = ok(
        zp.request(1_990_000, "VPN 1 month, order 7", CALLBACK, &meta)
            .await,
        "payment request",
    );
    let a = req.authority.clone();
    assert_eq!(a.len(), 36);
    assert!(a.starts_with('A'), "{a}");
    assert_eq!(req.fee_type, Some(FeeType::Payer));
    assert_eq!(req.fee, Some(5_000));
    assert_eq!(ok(zp.inquiry(&a).await, "inquiry"), InquiryStatus::InBank);

    let page_url = zp.start_pay_url(&a);
    assert_eq!(page_url, format!("{}/pg/StartPay/{a}", fake.base_url()));
    let page = ok(http().get(&page_url).send().await, "StartPay page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(ok(page.text().await, "page text").contains("/pay"));
    assert_eq!(fake.state(&a), Some("in_bank"));

    let paid = ok(
        http()
            .post(format!("{}/__test/zarinpal/{a}/pay", fake.base_url()))
            .send()
            .await,
        "paying",
    );
    assert_eq!(paid.status(), StatusCode::FOUND);
    let location = paid
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(location.starts_with(CALLBACK), "{location}");
    let back = ok(reqwest::Url::parse(&location), "callback URL");
    let cb = ok(parse_callback(back.query().unwrap_or("")), "callback");
    assert_eq!(cb.authority, a);
    assert!(cb.ok);
    assert_eq!(ok(zp.inquiry(&a).await, "inquiry"), InquiryStatus::Paid);

    let pending = ok(zp.unverified().await, "unVerified");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].authority, a);
    assert_eq!(pending[0].amount, 1_990_000);
    assert_eq!(pending[0].callback_url, CALLBACK);
    assert!(pending[0].date.is_some());

    let first = ok(zp.verify(1_990_000, &a).await, "verify");
    assert!(!first.already);
    assert!(
        first.ref_id.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        first.ref_id
    );
    assert_eq!(first.card_pan.as_deref(), Some("502229******5995"));
    assert_eq!(first.card_hash.as_ref().map(String::len), Some(64));
    assert_eq!(first.fee_type, Some(FeeType::Payer));
    let again = ok(zp.verify(1_990_000, &a).await, "verify again");
    assert!(again.already, "the repeat must be code 101");
    assert_eq!(again.ref_id, first.ref_id);
    assert_eq!(again.card_hash, first.card_hash);
    assert_eq!(fake.calls("verify"), 2);
    assert_eq!(ok(zp.inquiry(&a).await, "inquiry"), InquiryStatus::Verified);
    assert!(ok(zp.unverified().await, "unVerified").is_empty());

    // A second payment gets its own ref_id.
    let b = request(&zp, 1_000_000).await;
    ok(fake.pay(&b), "paying b");
    let other = ok(zp.verify(1_000_000, &b).await, "verify b");
    assert_ne!(other.ref_id, first.ref_id);
}

/// Validation (`-9` with the field named, whatever the HTTP status), unknown terminal
/// (`-10`), amount above the maximum (`-41`), and no merchant id at all.
#[tokio::test]
async fn zarinpal_request_refusals() {
    let fake = zarinpal_fake().await;
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_secs(5));
    let meta = ZarinpalMeta::default();
    let long = "x".repeat(501);
    let (code, message) = refused(zp.request(10_000, &long, CALLBACK, &meta).await);
    assert_eq!(code, "-9");
    assert!(message.contains("description"), "{message}");

    fake.force_status("request", 422, 1);
    let (code, message) = refused(zp.request(10_000, "x", "not a url", &meta).await);
    assert_eq!(code, "-9");
    assert!(message.contains("callback_url"), "{message}");

    let (code, message) = refused(zp.request(0, "x", CALLBACK, &meta).await);
    assert_eq!(code, "-9");
    assert!(message.contains("amount"), "{message}");

    let (code, _) = refused(zp.request(1_000_000_001, "x", CALLBACK, &meta).await);
    assert_eq!(code, "-41");

    let stranger = zarinpal(fake.base_url(), OTHER_MERCHANT, Duration::from_secs(5));
    let (code, _) = refused(stranger.request(10_000, "x", CALLBACK, &meta).await);
    assert_eq!(code, "-10");
    assert_eq!(fake.payments_count(), 0);

    let unset = zarinpal(fake.base_url(), "", Duration::from_secs(5));
    assert!(matches!(
        unset.request(10_000, "x", CALLBACK, &meta).await,
        Err(GatewayError::NotConfigured { .. })
    ));
    assert_eq!(fake.calls("request"), 5, "no call without a merchant id");
}

/// Every verify refusal: -50 wrong amount, -51 not paid (after NOK), -53 another
/// terminal's authority, -54 unknown, -55 never reached the bank.
#[tokio::test]
async fn zarinpal_verify_refusals() {
    let fake = zarinpal_fake().await;
    fake.add_merchant(OTHER_MERCHANT);
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_secs(5));

    let never_opened = request(&zp, 20_000).await;
    assert_eq!(refused(zp.verify(20_000, &never_opened).await).0, "-55");

    let cancelled = request(&zp, 20_000).await;
    let back = ok(fake.cancel(&cancelled), "cancelling");
    assert!(
        back.ends_with(&format!("Authority={cancelled}&Status=NOK")),
        "{back}"
    );
    let query = back.split_once('?').map_or("", |(_, q)| q);
    assert!(!ok(parse_callback(query), "callback").ok);
    assert_eq!(refused(zp.verify(20_000, &cancelled).await).0, "-51");
    assert_eq!(
        ok(zp.inquiry(&cancelled).await, "inquiry"),
        InquiryStatus::Failed
    );
    assert!(
        fake.pay(&cancelled).is_err(),
        "a failed payment cannot be paid"
    );

    let paid = request(&zp, 20_000).await;
    ok(fake.pay(&paid), "paying");
    let (code, _) = refused(zp.verify(20_001, &paid).await);
    assert_eq!(code, "-50");
    let other = zarinpal(fake.base_url(), OTHER_MERCHANT, Duration::from_secs(5));
    assert_eq!(refused(other.verify(20_000, &paid).await).0, "-53");
    assert_eq!(refused(other.inquiry(&paid).await).0, "-53");
    // The refusals changed nothing: the right amount still verifies.
    assert!(!ok(zp.verify(20_000, &paid).await, "verify").already);
    assert_eq!(refused(zp.verify(20_001, &paid).await).0, "-50");

    let unknown = format!("A{}", "0".repeat(35));
    assert_eq!(refused(zp.verify(20_000, &unknown).await).0, "-54");
    assert_eq!(refused(zp.verify(20_000, "short").await).0, "-54");
    assert_eq!(refused(zp.inquiry(&unknown).await).0, "-54");
}

/// Reverse: only verified payments (-61 otherwise, and again after a reverse), only
/// within 30 minutes of payment on the fake's clock (-63 after).
#[tokio::test]
async fn zarinpal_reverse_window_and_states() {
    let fake = zarinpal_fake().await;
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_secs(5));
    let a = request(&zp, 50_000).await;
    ok(fake.pay(&a), "paying");
    assert_eq!(refused(zp.reverse(&a).await).0, "-61", "paid, not verified");
    ok(zp.verify(50_000, &a).await, "verify");
    ok(zp.reverse(&a).await, "reverse");
    assert_eq!(ok(zp.inquiry(&a).await, "inquiry"), InquiryStatus::Reversed);
    assert_eq!(refused(zp.reverse(&a).await).0, "-61", "already reversed");
    assert_eq!(refused(zp.verify(50_000, &a).await).0, "-51");

    let late = request(&zp, 50_000).await;
    ok(fake.pay(&late), "paying");
    ok(zp.verify(50_000, &late).await, "verify");
    fake.advance(Duration::from_secs(29 * 60));
    let in_time = request(&zp, 50_000).await;
    ok(fake.pay(&in_time), "paying");
    ok(zp.verify(50_000, &in_time).await, "verify");
    fake.advance(Duration::from_secs(2 * 60));
    assert_eq!(refused(zp.reverse(&late).await).0, "-63");
    ok(zp.reverse(&in_time).await, "reverse within the window");
    assert_eq!(fake.calls("reverse"), 5);
}

/// `data` on failure and `errors` on success written as `[]`, `{}` and `null`; the
/// HTTP status never overrides what the envelope says.
#[tokio::test]
async fn zarinpal_envelope_shapes_and_statuses() {
    let fake = zarinpal_fake().await;
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_secs(5));
    for shape in [json!([]), json!({}), Value::Null] {
        fake.empty_shape(shape.clone());
        let a = request(&zp, 30_000).await;
        assert_eq!(
            refused(zp.verify(30_000, &a).await).0,
            "-55",
            "shape {shape}"
        );
        ok(fake.pay(&a), "paying");
        assert!(
            !ok(zp.verify(30_000, &a).await, "verify").already,
            "shape {shape}"
        );
        assert!(ok(zp.unverified().await, "unVerified").is_empty());
    }
    // A success envelope on a 500 is a success; a refusal on a 200, 422 or 500 is one.
    let a = request(&zp, 30_000).await;
    ok(fake.pay(&a), "paying");
    fake.force_status("verify", 500, 1);
    assert!(!ok(zp.verify(30_000, &a).await, "verify on a 500").already);
    for status in [200, 422, 500] {
        fake.force_status("verify", status, 1);
        assert_eq!(refused(zp.verify(1, &a).await).0, "-50", "HTTP {status}");
    }
}

/// Answers that say nothing definite: a 5xx page, a timeout, a dropped connection, a
/// stopped gateway are Unknown; a 200 page is Unexpected; a 429 is RateLimited.
#[tokio::test]
async fn zarinpal_without_a_definite_answer() {
    let fake = zarinpal_fake().await;
    let zp = zarinpal(fake.base_url(), MERCHANT, Duration::from_millis(800));
    fake.fail_next("request", 502, 1);
    assert!(matches!(
        zp.request(10_000, "x", CALLBACK, &ZarinpalMeta::default())
            .await,
        Err(GatewayError::Unknown { .. })
    ));
    assert_eq!(fake.payments_count(), 0);
    let a = request(&zp, 10_000).await;
    ok(fake.pay(&a), "paying");

    fake.fail_next("verify", 200, 1);
    assert!(matches!(
        zp.verify(10_000, &a).await,
        Err(GatewayError::Unexpected { .. })
    ));
    fake.fail_next("verify", 429, 1);
    assert!(matches!(
        zp.verify(10_000, &a).await,
        Err(GatewayError::RateLimited { .. })
    ));
    fake.drop_next("verify", 1);
    let dropped = zp.verify(10_000, &a).await;
    assert!(
        matches!(dropped, Err(GatewayError::Unknown { .. })),
        "{dropped:?}"
    );
    fake.delay("verify", Duration::from_millis(1_500));
    let slow = zp.verify(10_000, &a).await;
    assert!(
        matches!(slow, Err(GatewayError::Unknown { .. })),
        "{slow:?}"
    );
    fake.delay("verify", Duration::ZERO);
    assert_eq!(fake.state(&a), Some("paid"), "no knob performed the verify");
    assert!(!ok(zp.verify(10_000, &a).await, "verify").already);
    assert_eq!(fake.calls("verify"), 5);

    let base = fake.base_url().to_owned();
    drop(fake);
    let gone = zarinpal(&base, MERCHANT, Duration::from_millis(800));
    assert!(matches!(
        gone.inquiry(&a).await,
        Err(GatewayError::Unknown { .. })
    ));
}

// ---------------------------------------------------------------------------------
// YooKassa

async fn yookassa_fake() -> FakeYookassa {
    ok(
        FakeYookassa::start(SHOP, SECRET).await,
        "starting the fake YooKassa",
    )
}

fn yk_config(base: &str) -> YookassaConfig {
    YookassaConfig {
        base_url: base.into(),
        timeout: Duration::from_secs(3),
        ..YookassaConfig::new(SHOP, SECRET)
    }
}

fn yookassa(cfg: YookassaConfig) -> Yookassa {
    ok(Yookassa::new(cfg), "building the YooKassa client")
}

fn rub(minor: i64) -> Money {
    ok(Money::new(minor, Currency::Rub), "an amount")
}

fn payment_req(amount: Money) -> CreatePayment {
    CreatePayment {
        amount,
        description: "VPN 1 month, order 12345".into(),
        return_url: "https://t.me/YourBot".into(),
        metadata: BTreeMap::from([
            ("order_id".to_owned(), "12345".to_owned()),
            ("tg_user_id".to_owned(), "42".to_owned()),
        ]),
        customer_email: Some("user@example.com".into()),
        customer_phone: None,
        item_description: "VPN subscription, 30 days".into(),
    }
}

/// A fresh idempotence key.
fn key() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

/// A webhook receiver that records each body with its source address and answers 500
/// to the first `fail_first` deliveries.
struct Receiver {
    served: Served,
    got: Arc<Mutex<Vec<Received>>>,
}

/// A delivery's source address and body.
type Received = (IpAddr, Vec<u8>);

impl Receiver {
    async fn start(fail_first: u32) -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failures = Arc::new(AtomicU32::new(fail_first));
        let (g, f) = (got.clone(), failures.clone());
        let router = axum::Router::new().route(
            "/hook",
            post(
                move |ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes| async move {
                    g.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((peer.ip(), body.to_vec()));
                    let fail = f
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ),
        );
        let served = ok(serve(router).await, "starting the webhook receiver");
        Receiver { served, got }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.served.base_url)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Create, checkout page, the payer pays, the webhook arrives from 127.0.0.1 and
/// parses to (event, id), the re-fetched payment is succeeded with exact amounts and
/// our metadata.
#[tokio::test]
async fn yookassa_payment_lifecycle_with_webhook() {
    let fake = yookassa_fake().await;
    let hooks = Receiver::start(0).await;
    fake.set_webhook(&hooks.url());
    let yk = yookassa(yk_config(fake.base_url()));
    let p = ok(
        yk.create_payment(&payment_req(rub(19_900)), &key()).await,
        "create",
    );
    assert_eq!(p.status, PaymentStatus::Pending);
    assert!(!p.paid && !p.refundable && p.test);
    assert_eq!(p.amount, rub(19_900));
    assert_eq!(
        p.metadata.get("order_id").map(String::as_str),
        Some("12345")
    );
    let checkout = p.confirmation_url.clone().unwrap_or_default();
    assert_eq!(
        checkout,
        format!("{}/__test/yookassa/checkout/{}", fake.base_url(), p.id)
    );
    let page = ok(http().get(&checkout).send().await, "checkout page");
    assert_eq!(page.status(), StatusCode::OK);

    let paid = ok(
        http()
            .post(format!(
                "{}/__test/yookassa/{}/succeed",
                fake.base_url(),
                p.id
            ))
            .send()
            .await,
        "paying",
    );
    assert_eq!(paid.status(), StatusCode::OK);
    ok(
        fake.wait_delivered(1, Duration::from_secs(5)).await,
        "webhook",
    );
    let received = hooks.received();
    assert_eq!(received.len(), 1);
    let (source, body) = &received[0];
    assert_eq!(*source, IpAddr::from([127, 0, 0, 1]));
    let n = ok(parse_notification(body), "notification");
    assert_eq!(n.event, "payment.succeeded");
    assert_eq!(n.object_id, p.id);

    let got = ok(yk.get_payment(&n.object_id).await, "get");
    assert_eq!(got.status, PaymentStatus::Succeeded);
    assert!(got.paid && got.refundable);
    assert_eq!(got.amount, rub(19_900));
    assert_eq!(got.refunded_amount, None);
    assert_eq!(got.confirmation_url, None);
    assert_eq!(got.metadata, p.metadata);
    assert_eq!(got.created_at, p.created_at);
    assert!(fake.succeed(&p.id).is_err(), "a succeeded payment stays so");

    let (code, _) = refused(yk.get_payment("no-such-payment").await);
    assert_eq!(code, "not_found");
}

/// A 500 answered after the payment was created: the client retries with the same key
/// and gets the stored payment; exactly one exists. Later calls with that key too.
#[tokio::test]
async fn yookassa_retry_after_500_creates_one_payment() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    let k = key();
    fake.inject("create_payment", 500, 1);
    let p = ok(
        yk.create_payment(&payment_req(rub(19_900)), &k).await,
        "create",
    );
    assert_eq!(fake.calls("create_payment"), 2);
    assert_eq!(fake.payments_count(), 1);

    // Every attempt answered 500: unknown, yet the payment exists once, and asking
    // again later with the same key returns it.
    let k2 = key();
    fake.inject("create_payment", 500, 3);
    let r = yk.create_payment(&payment_req(rub(5_000)), &k2).await;
    assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
    assert_eq!(fake.calls("create_payment"), 5);
    assert_eq!(fake.payments_count(), 2);
    let later = ok(
        yk.create_payment(&payment_req(rub(5_000)), &k2).await,
        "again",
    );
    assert_eq!(fake.payments_count(), 2);
    assert_ne!(later.id, p.id);
    let first_again = ok(
        yk.create_payment(&payment_req(rub(19_900)), &k).await,
        "repeat",
    );
    assert_eq!(first_again.id, p.id);
    assert_eq!(fake.payments_count(), 2);
}

/// A 202 ("still processing") is retried with the same key; 202 on every attempt is
/// Unknown after a bounded number of tries, with nothing created.
#[tokio::test]
async fn yookassa_202_then_success_and_202_forever() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    fake.inject("create_payment", 202, 1);
    ok(
        yk.create_payment(&payment_req(rub(100)), &key()).await,
        "create",
    );
    assert_eq!(fake.calls("create_payment"), 2);
    assert_eq!(fake.payments_count(), 1);

    fake.inject("create_payment", 202, 10);
    let started = std::time::Instant::now();
    let r = yk.create_payment(&payment_req(rub(100)), &key()).await;
    assert!(matches!(r, Err(GatewayError::Unknown { .. })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the timeout"
    );
    assert_eq!(fake.calls("create_payment"), 5, "three attempts");
    assert_eq!(fake.payments_count(), 1);
}

/// Wrong credentials are a definite refusal (`invalid_credentials`, HTTP 401); empty
/// credentials never leave the process.
#[tokio::test]
async fn yookassa_bad_credentials() {
    let fake = yookassa_fake().await;
    let yk = yookassa(YookassaConfig {
        secret_key: "test_wrong".into(),
        ..yk_config(fake.base_url())
    });
    let (code, message) = refused(yk.create_payment(&payment_req(rub(100)), &key()).await);
    assert_eq!(code, "invalid_credentials");
    assert!(message.contains("401"), "{message}");
    assert_eq!(refused(yk.get_payment("x").await).0, "invalid_credentials");
    assert_eq!(fake.payments_count(), 0);

    let unset = yookassa(YookassaConfig {
        shop_id: String::new(),
        ..yk_config(fake.base_url())
    });
    assert!(matches!(
        unset.get_payment("x").await,
        Err(GatewayError::NotConfigured { .. })
    ));
    assert_eq!(fake.calls("get_payment"), 1);
}

/// The Idempotence-Key rules: same key and body → the stored payment; same key with
/// another body → 400; no key or a key over 64 chars → 400.
#[tokio::test]
async fn yookassa_idempotence_key_rules() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    let k = key();
    let a = ok(
        yk.create_payment(&payment_req(rub(19_900)), &k).await,
        "create",
    );
    let b = ok(
        yk.create_payment(&payment_req(rub(19_900)), &k).await,
        "repeat",
    );
    assert_eq!(a, b);
    assert_eq!(fake.payments_count(), 1);
    let (code, message) = refused(yk.create_payment(&payment_req(rub(20_000)), &k).await);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("Idempotence-Key"), "{message}");
    let (code, _) = refused(
        yk.create_payment(&payment_req(rub(100)), &"k".repeat(65))
            .await,
    );
    assert_eq!(code, "invalid_request");
    assert_eq!(fake.payments_count(), 1);

    let raw = ok(
        http()
            .post(format!("{}/v3/payments", fake.base_url()))
            .basic_auth(SHOP, Some(SECRET))
            .json(
                &json!({"amount": {"value": "1.00", "currency": "RUB"}, "capture": true,
                          "confirmation": {"type": "redirect", "return_url": "https://t.me/x"}}),
            )
            .send()
            .await,
        "raw create",
    );
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let e: Value = ok(raw.json().await, "error body");
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "invalid_request");
    assert_eq!(e["parameter"], "Idempotence-Key");
    assert!(e["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(fake.payments_count(), 1);
}

/// What the fake validates reaches the caller as a refusal naming the parameter:
/// amounts, currency, return URL, metadata, and the 54-FZ receipt when receipts are on.
#[tokio::test]
async fn yookassa_validation_and_receipts() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    let param = |r: Result<_, GatewayError>| refused(r).1;
    let zero = param(yk.create_payment(&payment_req(rub(0)), &key()).await);
    assert!(zero.contains("amount.value"), "{zero}");
    let irr = ok(Money::new(150_000, Currency::Irr), "IRR");
    let irr = param(yk.create_payment(&payment_req(irr), &key()).await);
    assert!(irr.contains("amount.value"), "{irr}");
    let usdt = ok(Money::parse("1.00 USDT"), "USDT");
    let usdt = param(yk.create_payment(&payment_req(usdt), &key()).await);
    assert!(usdt.contains("amount.value"), "{usdt}");
    let mut bad_url = payment_req(rub(100));
    bad_url.return_url = "tg://resolve?domain=bot".into();
    let m = param(yk.create_payment(&bad_url, &key()).await);
    assert!(m.contains("confirmation.return_url"), "{m}");
    let mut fat = payment_req(rub(100));
    fat.metadata = (0..17).map(|i| (format!("k{i}"), "v".into())).collect();
    assert!(param(yk.create_payment(&fat, &key()).await).contains("metadata"));
    assert_eq!(fake.payments_count(), 0);

    fake.receipts_on(true);
    let m = param(yk.create_payment(&payment_req(rub(100)), &key()).await);
    assert!(m.contains("`receipt`"), "{m}");
    let with_receipts = yookassa(YookassaConfig {
        receipts: true,
        tax_system_code: Some(2),
        ..yk_config(fake.base_url())
    });
    let mut anonymous = payment_req(rub(100));
    anonymous.customer_email = None;
    let m = param(with_receipts.create_payment(&anonymous, &key()).await);
    assert!(m.contains("receipt.customer"), "{m}");
    let mut by_phone = anonymous.clone();
    by_phone.customer_phone = Some("79000000000".into());
    ok(
        with_receipts.create_payment(&by_phone, &key()).await,
        "receipt by phone",
    );
    ok(
        with_receipts
            .create_payment(&payment_req(rub(19_900)), &key())
            .await,
        "receipt by email",
    );
    let bad_vat = yookassa(YookassaConfig {
        receipts: true,
        vat_code: 0,
        ..yk_config(fake.base_url())
    });
    let m = param(bad_vat.create_payment(&payment_req(rub(100)), &key()).await);
    assert!(m.contains("vat_code"), "{m}");
    let bad_tax = yookassa(YookassaConfig {
        receipts: true,
        tax_system_code: Some(9),
        ..yk_config(fake.base_url())
    });
    let m = param(bad_tax.create_payment(&payment_req(rub(100)), &key()).await);
    assert!(m.contains("tax_system_code"), "{m}");
    assert_eq!(fake.payments_count(), 2);
}

/// Listing: newest first, cursors until the end, status and creation-time filters, and
/// refusals for a bad status or cursor.
#[tokio::test]
async fn yookassa_list_with_cursor_and_filters() {
    let fake = yookassa_fake().await;
    fake.page_cap(2);
    let yk = yookassa(yk_config(fake.base_url()));
    let start = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let mut created = Vec::new();
    for i in 1..=5 {
        let p = ok(
            yk.create_payment(&payment_req(rub(i * 100)), &key()).await,
            "create",
        );
        created.push(p.id);
    }
    for id in &created[..2] {
        ok(fake.succeed(id), "succeed");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (items, next) = ok(
            yk.list_payments(None, Some(start), cursor.as_deref()).await,
            "list",
        );
        pages += 1;
        assert!(items.len() <= 2);
        seen.extend(items.into_iter().map(|p| p.id));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let (succeeded, next) = ok(
        yk.list_payments(Some("succeeded"), None, None).await,
        "list",
    );
    assert_eq!(next, None);
    assert_eq!(succeeded.len(), 2);
    assert!(
        succeeded
            .iter()
            .all(|p| p.status == PaymentStatus::Succeeded)
    );
    let (pending, _) = ok(yk.list_payments(Some("pending"), None, None).await, "list");
    assert!(pending.iter().all(|p| p.status == PaymentStatus::Pending));
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (none, next) = ok(yk.list_payments(None, Some(future), None).await, "list");
    assert!(none.is_empty() && next.is_none());
    assert!(
        refused(yk.list_payments(Some("paid"), None, None).await)
            .1
            .contains("status")
    );
    assert!(
        refused(yk.list_payments(None, None, Some("zz")).await)
            .1
            .contains("cursor")
    );
}

/// Creates a two-stage payment (`capture: false`) over raw HTTP, as only the fake's
/// other clients would.
async fn held_payment(fake: &FakeYookassa, value: &str) -> String {
    let resp = ok(
        http()
            .post(format!("{}/v3/payments", fake.base_url()))
            .basic_auth(SHOP, Some(SECRET))
            .header("Idempotence-Key", key())
            .json(
                &json!({"amount": {"value": value, "currency": "RUB"}, "capture": false,
                          "confirmation": {"type": "redirect", "return_url": "https://t.me/x"}}),
            )
            .send()
            .await,
        "raw create",
    );
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = ok(resp.json().await, "payment");
    v["id"].as_str().unwrap_or_default().to_owned()
}

/// Held payments: authorize → waiting_for_capture, then cancel or (partial) capture,
/// each announced by a webhook; a pending one cannot be cancelled by the merchant.
#[tokio::test]
async fn yookassa_capture_and_cancel() {
    let fake = yookassa_fake().await;
    let hooks = Receiver::start(0).await;
    fake.set_webhook(&hooks.url());
    let yk = yookassa(yk_config(fake.base_url()));

    let held = held_payment(&fake, "300.00").await;
    assert!(
        fake.succeed(&held).is_err(),
        "capture: false must be authorized first"
    );
    ok(fake.authorize(&held), "authorize");
    let p = ok(yk.get_payment(&held).await, "get");
    assert_eq!(p.status, PaymentStatus::WaitingForCapture);
    assert!(p.paid);
    let c = ok(yk.cancel_payment(&held, &key()).await, "cancel");
    assert_eq!(c.status, PaymentStatus::Canceled);
    assert!(!c.paid);
    assert_eq!(
        c.cancellation_reason.as_deref(),
        Some("canceled_by_merchant")
    );

    let held2 = held_payment(&fake, "300.00").await;
    let r = ok(
        http()
            .post(format!(
                "{}/__test/yookassa/{held2}/authorize",
                fake.base_url()
            ))
            .send()
            .await,
        "authorize route",
    );
    assert_eq!(r.status(), StatusCode::OK);
    let k = key();
    let captured = ok(
        yk.capture_payment(&held2, Some(rub(15_000)), &k).await,
        "capture",
    );
    assert_eq!(captured.status, PaymentStatus::Succeeded);
    assert_eq!(captured.amount, rub(15_000));
    let again = ok(
        yk.capture_payment(&held2, Some(rub(15_000)), &k).await,
        "same key",
    );
    assert_eq!(again, captured);
    assert_eq!(
        refused(yk.capture_payment(&held2, None, &key()).await).0,
        "invalid_request"
    );

    let pending = ok(
        yk.create_payment(&payment_req(rub(100)), &key()).await,
        "create",
    );
    let (code, message) = refused(yk.cancel_payment(&pending.id, &key()).await);
    assert_eq!(code, "invalid_request");
    assert!(message.contains("pending"), "{message}");
    let no_reason = ok(
        http()
            .post(format!(
                "{}/__test/yookassa/{}/cancel",
                fake.base_url(),
                pending.id
            ))
            .send()
            .await,
        "cancel route",
    );
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);
    let r = ok(
        http()
            .post(format!(
                "{}/__test/yookassa/{}/cancel?reason=insufficient_funds",
                fake.base_url(),
                pending.id
            ))
            .send()
            .await,
        "cancel route",
    );
    assert_eq!(r.status(), StatusCode::OK);
    let gone = ok(yk.get_payment(&pending.id).await, "get");
    assert_eq!(gone.status, PaymentStatus::Canceled);
    assert_eq!(
        gone.cancellation_reason.as_deref(),
        Some("insufficient_funds")
    );

    let bodies = ok(
        fake.wait_delivered(5, Duration::from_secs(5)).await,
        "webhooks",
    );
    let mut events: Vec<(String, String)> = bodies
        .iter()
        .map(|b| ok(parse_notification(b.to_string().as_bytes()), "notification"))
        .map(|n| (n.event, n.object_id))
        .collect();
    events.sort();
    let mut expected = vec![
        ("payment.waiting_for_capture".to_owned(), held.clone()),
        ("payment.canceled".to_owned(), held),
        ("payment.waiting_for_capture".to_owned(), held2.clone()),
        ("payment.succeeded".to_owned(), held2),
        ("payment.canceled".to_owned(), pending.id),
    ];
    expected.sort();
    assert_eq!(events, expected);
}

/// Refunds: partial up to the paid amount, the payment's refunded amount grows and it
/// stops being refundable, over-refunds and refunds of unpaid payments are refused,
/// each refund announced by `refund.succeeded`; with receipts on, the receipt goes too.
#[tokio::test]
async fn yookassa_refunds() {
    let fake = yookassa_fake().await;
    fake.receipts_on(true);
    let hooks = Receiver::start(0).await;
    fake.set_webhook(&hooks.url());
    let yk = yookassa(YookassaConfig {
        receipts: true,
        ..yk_config(fake.base_url())
    });
    let p = ok(
        yk.create_payment(&payment_req(rub(19_900)), &key()).await,
        "create",
    );
    let refund = |amount: Money| CreateRefund {
        payment_id: p.id.clone(),
        amount,
        description: "partial refund".into(),
        customer_email: Some("user@example.com".into()),
        customer_phone: None,
        item_description: "VPN subscription, 30 days".into(),
    };
    let (code, _) = refused(yk.create_refund(&refund(rub(100)), &key()).await);
    assert_eq!(
        code, "invalid_request",
        "a pending payment has nothing to refund"
    );
    ok(fake.succeed(&p.id), "succeed");

    let r1 = ok(
        yk.create_refund(&refund(rub(5_000)), &key()).await,
        "refund",
    );
    assert_eq!(r1.status, RefundStatus::Succeeded);
    assert_eq!(r1.payment_id, p.id);
    assert_eq!(r1.amount, rub(5_000));
    assert_eq!(r1.description.as_deref(), Some("partial refund"));
    assert_eq!(ok(yk.get_refund(&r1.id).await, "get refund"), r1);
    let after = ok(yk.get_payment(&p.id).await, "get");
    assert_eq!(after.refunded_amount, Some(rub(5_000)));
    assert!(after.refundable);

    let (_, m) = refused(yk.create_refund(&refund(rub(14_901)), &key()).await);
    assert!(m.contains("amount.value"), "{m}");
    let mut anonymous = refund(rub(100));
    anonymous.customer_email = None;
    assert!(
        refused(yk.create_refund(&anonymous, &key()).await)
            .1
            .contains("receipt")
    );
    ok(
        yk.create_refund(&refund(rub(14_900)), &key()).await,
        "the rest",
    );
    let all = ok(yk.get_payment(&p.id).await, "get");
    assert_eq!(all.refunded_amount, Some(rub(19_900)));
    assert!(!all.refundable);
    assert_eq!(
        refused(yk.create_refund(&refund(rub(1)), &key()).await).0,
        "invalid_request"
    );
    assert_eq!(refused(yk.get_refund("nope").await).0, "not_found");

    let bodies = ok(
        fake.wait_delivered(3, Duration::from_secs(5)).await,
        "webhooks",
    );
    let refunds = bodies
        .iter()
        .filter(|b| b["event"] == "refund.succeeded")
        .count();
    assert_eq!(refunds, 2);
}

/// Notifications are repeated until the receiver answers 200, and no more than the
/// configured number of times.
#[tokio::test]
async fn yookassa_webhook_retries_are_bounded() {
    let fake = yookassa_fake().await;
    fake.webhook_retry(5, Duration::from_millis(20));
    let flaky = Receiver::start(2).await;
    fake.set_webhook(&flaky.url());
    let yk = yookassa(yk_config(fake.base_url()));
    let p = ok(
        yk.create_payment(&payment_req(rub(100)), &key()).await,
        "create",
    );
    ok(fake.succeed(&p.id), "succeed");
    ok(
        fake.wait_delivered(1, Duration::from_secs(5)).await,
        "webhook",
    );
    let statuses: Vec<Option<u16>> = fake.deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)]);
    assert_eq!(flaky.received().len(), 3);

    let fake = yookassa_fake().await;
    fake.webhook_retry(2, Duration::from_millis(20));
    let broken = Receiver::start(100).await;
    fake.set_webhook(&broken.url());
    let yk = yookassa(yk_config(fake.base_url()));
    let p = ok(
        yk.create_payment(&payment_req(rub(100)), &key()).await,
        "create",
    );
    ok(fake.succeed(&p.id), "succeed");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fake.deliveries().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(broken.received().len(), 2, "two attempts, then it gives up");
    assert!(fake.deliveries().iter().all(|d| d.status == Some(500)));
}

/// A forged or repeated webhook yields only (event, id); acting on the re-fetched
/// payment ignores the forged status and amount. Malformed bodies are refused.
#[tokio::test]
async fn yookassa_forged_and_repeated_webhooks() {
    let fake = yookassa_fake().await;
    let hooks = Receiver::start(0).await;
    fake.set_webhook(&hooks.url());
    let yk = yookassa(yk_config(fake.base_url()));
    let p = ok(
        yk.create_payment(&payment_req(rub(19_900)), &key()).await,
        "create",
    );
    let forged = json!({
        "type": "notification", "event": "payment.succeeded",
        "object": {"id": p.id, "status": "succeeded", "paid": true,
                   "amount": {"value": "1.00", "currency": "RUB"}}
    })
    .to_string();
    assert_eq!(
        ok(fake.send_webhook_raw(forged.clone()).await, "forged"),
        200
    );
    assert_eq!(ok(fake.send_webhook_raw(forged).await, "repeated"), 200);
    for garbage in [
        "<html>".to_owned(),
        json!({"type": "notification", "event": "payment.succeeded", "object": {"id": "../../v3/refunds"}}).to_string(),
        json!({"event": "payment.succeeded", "object": {"id": p.id}}).to_string(),
    ] {
        assert_eq!(ok(fake.send_webhook_raw(garbage).await, "garbage"), 200);
    }
    let received = hooks.received();
    assert_eq!(received.len(), 5);
    let first = ok(parse_notification(&received[0].1), "forged notification");
    let second = ok(parse_notification(&received[1].1), "repeated notification");
    assert_eq!(first, second, "a repeat has the same dedupe key");
    assert_eq!(first.object_id, p.id);
    for (_, body) in &received[2..] {
        assert!(matches!(
            parse_notification(body),
            Err(GatewayError::Unexpected { .. })
        ));
    }
    let truth = ok(yk.get_payment(&first.object_id).await, "re-fetch");
    assert_eq!(truth.status, PaymentStatus::Pending);
    assert_eq!(truth.amount, rub(19_900));
}

/// The webhook source check: YooKassa's own ranges by default (loopback refused),
/// loopback only when configured; a bad range is a settings error.
#[tokio::test]
async fn yookassa_webhook_source_allowlist() {
    let fake = yookassa_fake().await;
    let hooks = Receiver::start(0).await;
    fake.set_webhook(&hooks.url());
    assert_eq!(ok(fake.send_webhook_raw("{}").await, "send"), 200);
    let source = hooks.received()[0].0;
    let ip = |s: &str| ok(s.parse::<IpAddr>(), "ip");

    let default = yookassa(yk_config(fake.base_url()));
    assert!(!default.source_allowed(source));
    assert!(default.source_allowed(ip("77.75.153.100")));
    assert!(!default.source_allowed(ip("77.75.153.128")));
    assert!(default.source_allowed(ip("185.71.77.31")));
    assert!(!default.source_allowed(ip("185.71.77.32")));
    assert!(default.source_allowed(ip("::ffff:77.75.156.35")));
    assert!(default.source_allowed(ip("2a02:5180:0:2669::42")));

    let local = yookassa(YookassaConfig {
        webhook_allow: vec!["127.0.0.1/32".into()],
        ..yk_config(fake.base_url())
    });
    assert!(local.source_allowed(source));
    assert!(!local.source_allowed(ip("77.75.153.100")));
    assert!(!local.source_allowed(ip("127.0.0.2")));

    let bad = Yookassa::new(YookassaConfig {
        webhook_allow: vec!["127.0.0.1/40".into()],
        ..yk_config(fake.base_url())
    });
    assert!(bad.is_err());
    let bad_base = Yookassa::new(yk_config("ftp://example.com"));
    assert!(bad_base.is_err());
}

/// Amounts go out as exact two-decimal strings and come back to the same minor units,
/// from one kopek to tens of millions of rubles.
#[tokio::test]
async fn yookassa_money_strings_are_exact() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    for minor in [1, 10, 99, 100, 19_999, 1_234_567_890, 999_999_999_999] {
        let p = ok(
            yk.create_payment(&payment_req(rub(minor)), &key()).await,
            "create",
        );
        assert_eq!(p.amount, rub(minor));
        let stored = fake.payment(&p.id).unwrap_or_default();
        assert_eq!(
            stored["amount"]["value"],
            format!("{}.{:02}", minor / 100, minor % 100)
        );
    }
}

/// 429 is RateLimited without a retry; a slow gateway is Unknown within the timeout; a
/// wrong base path (HTML 404) and an unknown currency are Unexpected.
#[tokio::test]
async fn yookassa_rate_limit_timeout_and_broken_answers() {
    let fake = yookassa_fake().await;
    let yk = yookassa(yk_config(fake.base_url()));
    let p = ok(
        yk.create_payment(&payment_req(rub(100)), &key()).await,
        "create",
    );
    fake.inject("get_payment", 429, 1);
    assert!(matches!(
        yk.get_payment(&p.id).await,
        Err(GatewayError::RateLimited { .. })
    ));
    assert_eq!(fake.calls("get_payment"), 1);
    fake.inject("get_payment", 202, 1);
    ok(yk.get_payment(&p.id).await, "get after a 202");

    let impatient = yookassa(YookassaConfig {
        timeout: Duration::from_millis(700),
        ..yk_config(fake.base_url())
    });
    fake.delay("get_payment", Duration::from_millis(1_500));
    let started = std::time::Instant::now();
    let slow = impatient.get_payment(&p.id).await;
    assert!(
        matches!(slow, Err(GatewayError::Unknown { .. })),
        "{slow:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1_400));
    fake.delay("get_payment", Duration::ZERO);

    let wrong_path = yookassa(yk_config(&format!("{}/nope", fake.base_url())));
    assert!(matches!(
        wrong_path.get_payment(&p.id).await,
        Err(GatewayError::Unexpected { .. })
    ));

    let mut odd = fake.payment(&p.id).unwrap_or_default();
    odd["amount"]["currency"] = json!("XYZ");
    let router = axum::Router::new().route(
        "/v3/payments/{id}",
        get(move || {
            let odd = odd.clone();
            async move { axum::Json(odd) }
        }),
    );
    let strange = ok(serve(router).await, "a gateway with an odd currency");
    let client = yookassa(yk_config(&strange.base_url));
    let r = client.get_payment(&p.id).await;
    assert!(matches!(r, Err(GatewayError::Unexpected { .. })), "{r:?}");
}
