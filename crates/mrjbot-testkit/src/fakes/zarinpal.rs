//! A local Zarinpal v4 (specs/payments.md §1.8): the payment API under `/pg/v4/payment/`,
//! the StartPay page, and test controls that play the payer at the bank.
//!
//! Each authority follows `created → in_bank → paid → verified → reversed` or ends in
//! `failed`. Answers use the v4 envelope with the error codes of §1.7; `-54` is a
//! malformed or unknown authority and `-55` one that never reached the bank. Reverse
//! works within 30 minutes of payment on the fake's clock, which tests move with
//! [`FakeZarinpal::advance`]. Knobs per endpoint (`request`, `verify`, `unVerified`,
//! `inquiry`, `reverse`) force a status, answer a non-JSON error page, delay, or drop
//! the connection, so every client error path can be reached.

use super::{Served, serve};
use anyhow::{Context, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;

/// The API endpoints, by the names the knobs and counters take.
pub const ENDPOINTS: [&str; 5] = ["request", "verify", "unVerified", "inquiry", "reverse"];

/// The card every fake payer pays with.
pub const CARD_NUMBER: &str = "5022291012345995";

/// Largest amount a request may ask for, in rials (100,000,000 toman, code `-41`).
const MAX_RIAL: i64 = 1_000_000_000;

/// How long after payment a reverse is allowed.
const REVERSE_WINDOW: time::Duration = time::Duration::minutes(30);

/// A running fake Zarinpal; stops when dropped.
pub struct FakeZarinpal {
    served: Served,
    shared: Arc<Shared>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Created,
    InBank,
    Paid,
    Verified,
    Failed,
    Reversed,
}

impl St {
    fn name(self) -> &'static str {
        match self {
            St::Created => "created",
            St::InBank => "in_bank",
            St::Paid => "paid",
            St::Verified => "verified",
            St::Failed => "failed",
            St::Reversed => "reversed",
        }
    }
}

struct Payment {
    merchant: String,
    amount: i64,
    callback_url: String,
    description: String,
    state: St,
    paid_at: Option<OffsetDateTime>,
    ref_id: Option<i64>,
    fee_type: String,
    fee: i64,
}

#[derive(Default)]
struct Knobs {
    force: Option<(StatusCode, u32)>,
    fail: Option<(StatusCode, u32)>,
    drop: u32,
    delay: Option<Duration>,
}

/// Takes one use of a "next N calls" knob.
fn take(slot: &mut Option<(StatusCode, u32)>) -> Option<StatusCode> {
    let (status, left) = slot.as_mut()?;
    let status = *status;
    *left -= 1;
    if *left == 0 {
        *slot = None;
    }
    Some(status)
}

struct Inner {
    merchants: Vec<String>,
    payments: HashMap<String, Payment>,
    /// Authorities in creation order.
    order: Vec<String>,
    next_ref: i64,
    fee_type: String,
    fee: i64,
    /// What an empty `data`/`errors` looks like: `[]`, `{}` or `null`.
    empty: Value,
    clock_offset: Duration,
    knobs: HashMap<&'static str, Knobs>,
    calls: HashMap<&'static str, u64>,
}

struct Shared {
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn endpoint(name: &str) -> &'static str {
    ENDPOINTS
        .into_iter()
        .find(|e| *e == name)
        .unwrap_or_else(|| panic!("fake Zarinpal has no endpoint `{name}`; one of {ENDPOINTS:?}"))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|_| panic!("`{code}` is not an HTTP status"))
}

impl FakeZarinpal {
    /// Starts a fake that knows one terminal, `merchant_id`.
    pub async fn start(merchant_id: &str) -> anyhow::Result<FakeZarinpal> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                merchants: vec![merchant_id.to_owned()],
                payments: HashMap::new(),
                order: Vec::new(),
                next_ref: 201_000_001,
                fee_type: "Merchant".into(),
                fee: 0,
                empty: json!([]),
                clock_offset: Duration::ZERO,
                knobs: HashMap::new(),
                calls: HashMap::new(),
            }),
        });
        let mut router = Router::new();
        for name in ENDPOINTS {
            router = router.route(
                &format!("/pg/v4/payment/{name}.json"),
                post(move |State(s): State<Arc<Shared>>, body: Bytes| api(s, name, body)),
            );
        }
        let router = router
            .route("/pg/StartPay/{authority}", get(start_pay_page))
            .route(
                "/__test/zarinpal/{authority}/pay",
                post(
                    |State(s): State<Arc<Shared>>, Path(a): Path<String>| async move {
                        redirect(s.settle(&a, true))
                    },
                ),
            )
            .route(
                "/__test/zarinpal/{authority}/cancel",
                post(
                    |State(s): State<Arc<Shared>>, Path(a): Path<String>| async move {
                        redirect(s.settle(&a, false))
                    },
                ),
            )
            .with_state(shared.clone());
        let served = serve(router).await.context("starting the fake Zarinpal")?;
        Ok(FakeZarinpal { served, shared })
    }

    /// `http://127.0.0.1:PORT`, the value for the client's `base_url`.
    pub fn base_url(&self) -> &str {
        &self.served.base_url
    }

    /// Lets another terminal use the fake (for `-53`, "authority of another merchant").
    pub fn add_merchant(&self, merchant_id: &str) {
        self.shared.lock().merchants.push(merchant_id.to_owned());
    }

    /// The payer pays at the bank: `created`/`in_bank` → `paid`. Returns the URL the
    /// browser is sent back to (`callback_url?Authority=..&Status=OK`).
    pub fn pay(&self, authority: &str) -> anyhow::Result<String> {
        self.shared.settle(authority, true)
    }

    /// The payer cancels or the bank declines: `created`/`in_bank` → `failed`. Returns
    /// the callback URL with `Status=NOK`.
    pub fn cancel(&self, authority: &str) -> anyhow::Result<String> {
        self.shared.settle(authority, false)
    }

    /// The state of an authority (`created`, `in_bank`, `paid`, `verified`, `failed`,
    /// `reversed`).
    pub fn state(&self, authority: &str) -> Option<&'static str> {
        self.shared
            .lock()
            .payments
            .get(authority)
            .map(|p| p.state.name())
    }

    /// How many payments were requested.
    pub fn payments_count(&self) -> usize {
        self.shared.lock().payments.len()
    }

    /// Moves the fake's clock forward (for the 30-minute reverse window).
    pub fn advance(&self, d: Duration) {
        self.shared.lock().clock_offset += d;
    }

    /// The fee type (`Merchant` or `Payer`) and fee (rials) of later payments.
    pub fn set_fee(&self, fee_type: &str, fee: i64) {
        assert!(
            matches!(fee_type, "Merchant" | "Payer"),
            "fee type `{fee_type}` is neither Merchant nor Payer"
        );
        let mut g = self.shared.lock();
        g.fee_type = fee_type.to_owned();
        g.fee = fee;
    }

    /// How empty `data` (on failure) and `errors` (on success) are written: `[]`
    /// (default), `{}` or `null`, all seen in the wild.
    pub fn empty_shape(&self, shape: Value) {
        let ok = match &shape {
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Null => true,
            _ => false,
        };
        assert!(ok, "an empty shape is [], {{}} or null, not {shape}");
        self.shared.lock().empty = shape;
    }

    /// The next `times` calls of `endpoint` are processed normally but answered with
    /// HTTP `code` (the envelope unchanged), like gateways that send `-9` with a 422.
    pub fn force_status(&self, endpoint_name: &str, code: u16, times: u32) {
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().force = Some((status(code), times));
    }

    /// The next `times` calls of `endpoint` are not processed and get HTTP `code` with
    /// an HTML page instead of JSON (a proxy error, maintenance).
    pub fn fail_next(&self, endpoint_name: &str, code: u16, times: u32) {
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().fail = Some((status(code), times));
    }

    /// Every call of `endpoint` waits `d` before answering (`Duration::ZERO` clears).
    pub fn delay(&self, endpoint_name: &str, d: Duration) {
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().delay = (!d.is_zero()).then_some(d);
    }

    /// The next `times` calls of `endpoint` are not processed and their connection is
    /// closed without a complete answer.
    pub fn drop_next(&self, endpoint_name: &str, times: u32) {
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().drop = times;
    }

    /// How many calls `endpoint` received, knob-affected ones included.
    pub fn calls(&self, endpoint_name: &str) -> u64 {
        let g = self.shared.lock();
        g.calls.get(endpoint(endpoint_name)).copied().unwrap_or(0)
    }
}

impl Inner {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }

    fn ok(&self, data: Value) -> Value {
        json!({ "data": data, "errors": self.empty })
    }

    fn err(&self, code: i64, message: &str, validations: Vec<Value>) -> Value {
        json!({
            "data": self.empty,
            "errors": { "code": code, "message": message, "validations": validations },
        })
    }

    /// Checks `merchant_id`: `Err` carries the `-9`/`-10` envelope.
    fn merchant(&self, body: &Value) -> Result<String, Value> {
        match body["merchant_id"].as_str() {
            None | Some("") => Err(self.err(
                -9,
                "The input params invalid, validation error.",
                vec![json!({"merchant_id": "The merchant id field is required."})],
            )),
            Some(m) if !self.merchants.iter().any(|x| x == m) => Err(self.err(
                -10,
                "Terminal is not valid, please check merchant_id or ip address.",
                vec![],
            )),
            Some(m) => Ok(m.to_owned()),
        }
    }

    /// Finds the authority of `body` for `merchant`: `-54` unknown/malformed, `-53` other
    /// merchant's.
    fn authority(&self, body: &Value, merchant: &str) -> Result<String, Value> {
        let a = body["authority"].as_str().unwrap_or("");
        let well_formed = a.len() == 36 && a.bytes().all(|b| b.is_ascii_alphanumeric());
        let Some(p) = self.payments.get(a).filter(|_| well_formed) else {
            return Err(self.err(-54, "Invalid authority.", vec![]));
        };
        if p.merchant != merchant {
            return Err(self.err(-53, "The authority belongs to another merchant.", vec![]));
        }
        Ok(a.to_owned())
    }

    fn process(&mut self, endpoint: &str, body: &[u8]) -> Value {
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return self.err(
                    -9,
                    "The input params invalid, validation error.",
                    vec![json!({"body": "The body must be a JSON object."})],
                );
            }
        };
        let result = match endpoint {
            "request" => self.request(&body),
            "verify" => self.verify(&body),
            "unVerified" => self.unverified(&body),
            "inquiry" => self.inquiry(&body),
            _ => self.reverse(&body),
        };
        result.unwrap_or_else(|e| e)
    }

    fn request(&mut self, body: &Value) -> Result<Value, Value> {
        let mut validations = Vec::new();
        let mut invalid = |field: &str, text: &str| validations.push(json!({ field: text }));
        if body["merchant_id"].as_str().is_none_or(str::is_empty) {
            invalid("merchant_id", "The merchant id field is required.");
        }
        let amount = body["amount"].as_i64();
        match amount {
            None => invalid(
                "amount",
                "The amount field is required and must be an integer.",
            ),
            Some(a) if a <= 0 => invalid("amount", "The amount must be at least 1."),
            Some(_) => {}
        }
        let currency = match &body["currency"] {
            Value::Null => "IRR",
            Value::String(c) if c == "IRR" || c == "IRT" => c.as_str(),
            _ => {
                invalid("currency", "The currency must be IRR or IRT.");
                "IRR"
            }
        };
        let description = body["description"].as_str().unwrap_or("");
        if description.is_empty() {
            invalid("description", "The description field is required.");
        } else if description.chars().count() > 500 {
            invalid(
                "description",
                "The description must not be greater than 500 characters.",
            );
        }
        let callback = body["callback_url"].as_str().unwrap_or("");
        if !(callback.starts_with("http://") || callback.starts_with("https://")) {
            invalid("callback_url", "The callback url must be an http(s) URL.");
        }
        match &body["metadata"] {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    if !v.is_string() {
                        invalid(&format!("metadata.{k}"), "Metadata values must be strings.");
                    }
                }
            }
            _ => invalid("metadata", "The metadata must be an object."),
        }
        if !validations.is_empty() {
            return Err(self.err(
                -9,
                "The input params invalid, validation error.",
                validations,
            ));
        }
        let merchant = self.merchant(body)?;
        let amount = amount.unwrap_or_default();
        let rials = if currency == "IRT" {
            amount.saturating_mul(10)
        } else {
            amount
        };
        if rials > MAX_RIAL {
            return Err(self.err(-41, "The amount is above 100,000,000 toman.", vec![]));
        }
        let authority = loop {
            let tail: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(35)
                .map(char::from)
                .collect();
            let a = format!("A{tail}");
            if !self.payments.contains_key(&a) {
                break a;
            }
        };
        let payment = Payment {
            merchant,
            amount,
            callback_url: callback.to_owned(),
            description: description.to_owned(),
            state: St::Created,
            paid_at: None,
            ref_id: None,
            fee_type: self.fee_type.clone(),
            fee: self.fee,
        };
        let data = json!({
            "code": 100,
            "message": "Success",
            "authority": authority,
            "fee_type": payment.fee_type,
            "fee": payment.fee,
        });
        self.payments.insert(authority.clone(), payment);
        self.order.push(authority);
        Ok(self.ok(data))
    }

    fn verify(&mut self, body: &Value) -> Result<Value, Value> {
        let Some(amount) = body["amount"].as_i64() else {
            return Err(self.err(
                -9,
                "The input params invalid, validation error.",
                vec![json!({"amount": "The amount field is required and must be an integer."})],
            ));
        };
        let merchant = self.merchant(body)?;
        let authority = self.authority(body, &merchant)?;
        let next_ref = self.next_ref;
        let (code, message) = {
            let Some(p) = self.payments.get_mut(&authority) else {
                return Err(self.err(-54, "Invalid authority.", vec![]));
            };
            match p.state {
                St::Created => (-55, "Payment not found: it never reached the bank."),
                St::InBank | St::Failed | St::Reversed => (-51, "Payment is not successful."),
                St::Paid | St::Verified if p.amount != amount => {
                    (-50, "The amount differs from the paid amount.")
                }
                St::Verified => (101, "Verified"),
                St::Paid => {
                    p.state = St::Verified;
                    p.ref_id = Some(next_ref);
                    (100, "Paid")
                }
            }
        };
        if code < 0 {
            return Err(self.err(code, message, vec![]));
        }
        if code == 100 {
            self.next_ref += 1;
        }
        let p = &self.payments[&authority];
        let data = json!({
            "code": code,
            "message": message,
            "ref_id": p.ref_id,
            "card_pan": format!("{}******{}", &CARD_NUMBER[..6], &CARD_NUMBER[12..]),
            "card_hash": hex::encode(Sha256::digest(CARD_NUMBER.as_bytes())).to_uppercase(),
            "fee_type": p.fee_type,
            "fee": p.fee,
        });
        Ok(self.ok(data))
    }

    fn unverified(&mut self, body: &Value) -> Result<Value, Value> {
        let merchant = self.merchant(body)?;
        let date_format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let authorities: Vec<Value> = self
            .order
            .iter()
            .rev()
            .filter_map(|a| {
                let p = &self.payments[a];
                (p.merchant == merchant && p.state == St::Paid).then(|| {
                    json!({
                        "authority": a,
                        "amount": p.amount,
                        "callback_url": p.callback_url,
                        "referer": "",
                        "date": p.paid_at.and_then(|t| t.format(&date_format).ok()),
                    })
                })
            })
            .take(100)
            .collect();
        Ok(self.ok(json!({ "code": 100, "message": "Success", "authorities": authorities })))
    }

    fn inquiry(&mut self, body: &Value) -> Result<Value, Value> {
        let merchant = self.merchant(body)?;
        let authority = self.authority(body, &merchant)?;
        let status = match self.payments[&authority].state {
            St::Created | St::InBank => "IN_BANK",
            St::Paid => "PAID",
            St::Verified => "VERIFIED",
            St::Failed => "FAILED",
            St::Reversed => "REVERSED",
        };
        Ok(self.ok(json!({ "code": 100, "message": "Success", "status": status })))
    }

    fn reverse(&mut self, body: &Value) -> Result<Value, Value> {
        let merchant = self.merchant(body)?;
        let authority = self.authority(body, &merchant)?;
        let now = self.now();
        let p = &self.payments[&authority];
        if p.state != St::Verified {
            return Err(self.err(
                -61,
                "The payment is not in a successful state or is already reversed.",
                vec![],
            ));
        }
        if p.paid_at.is_none_or(|t| now - t > REVERSE_WINDOW) {
            return Err(self.err(-63, "The 30-minute reverse window has passed.", vec![]));
        }
        if let Some(p) = self.payments.get_mut(&authority) {
            p.state = St::Reversed;
        }
        Ok(self.ok(json!({ "code": 100, "message": "Reversed" })))
    }
}

impl Shared {
    /// The bank's verdict for `authority`; returns the callback URL for the browser.
    fn settle(&self, authority: &str, paid: bool) -> anyhow::Result<String> {
        let mut g = self.lock();
        let now = g.now();
        let Some(p) = g.payments.get_mut(authority) else {
            bail!("fake Zarinpal: unknown authority `{authority}`");
        };
        if !matches!(p.state, St::Created | St::InBank) {
            bail!(
                "fake Zarinpal: authority `{authority}` is {}, the payer can no longer pay or cancel",
                p.state.name()
            );
        }
        if paid {
            p.state = St::Paid;
            p.paid_at = Some(now);
        } else {
            p.state = St::Failed;
        }
        let sep = if p.callback_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let status = if paid { "OK" } else { "NOK" };
        Ok(format!(
            "{}{sep}Authority={authority}&Status={status}",
            p.callback_url
        ))
    }
}

/// One API call with the endpoint's knobs applied.
async fn api(shared: Arc<Shared>, endpoint: &'static str, body: Bytes) -> Response {
    let (drop, delay, fail) = {
        let mut g = shared.lock();
        *g.calls.entry(endpoint).or_default() += 1;
        let k = g.knobs.entry(endpoint).or_default();
        let drop = k.drop > 0;
        k.drop = k.drop.saturating_sub(1);
        (drop, k.delay, take(&mut k.fail))
    };
    if drop {
        return dropped_connection();
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = fail {
        return (
            code,
            Html(format!("<html><body><h1>{code}</h1></body></html>")),
        )
            .into_response();
    }
    let mut g = shared.lock();
    let envelope = g.process(endpoint, &body);
    let code = g
        .knobs
        .get_mut(endpoint)
        .and_then(|k| take(&mut k.force))
        .unwrap_or(StatusCode::OK);
    (code, axum::Json(envelope)).into_response()
}

/// A response whose body fails at once: the server aborts the connection before a
/// complete answer, as when a gateway's connection drops.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped by the fake"))
    });
    Response::new(Body::from_stream(failing))
}

fn redirect(to: anyhow::Result<String>) -> Response {
    match to {
        Ok(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Err(e) => (StatusCode::CONFLICT, e.to_string()).into_response(),
    }
}

/// The bank page: moves a new authority to `in_bank` and offers pay and cancel.
async fn start_pay_page(
    State(shared): State<Arc<Shared>>,
    Path(authority): Path<String>,
) -> Response {
    let mut g = shared.lock();
    let Some(p) = g.payments.get_mut(&authority) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<html><body><h1>Unknown payment</h1></body></html>".to_owned()),
        )
            .into_response();
    };
    if p.state == St::Created {
        p.state = St::InBank;
    }
    let html = format!(
        "<!doctype html><html><body><h1>Fake Zarinpal</h1>\
         <p>{description}: {amount}</p>\
         <form method=\"post\" action=\"/__test/zarinpal/{authority}/pay\"><button>Pay</button></form>\
         <form method=\"post\" action=\"/__test/zarinpal/{authority}/cancel\"><button>Cancel</button></form>\
         </body></html>",
        description = escape(&p.description),
        amount = p.amount,
    );
    Html(html).into_response()
}

/// Escapes text for HTML.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
