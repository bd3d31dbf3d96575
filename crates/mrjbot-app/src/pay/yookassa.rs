//! YooKassa (Russia) API v3 client (specs/payments.md §2): payments with a redirect
//! confirmation and optional 54-FZ receipts, refunds, and the two checks a webhook
//! needs (source address, body shape).
//!
//! Guarantees:
//! - Every call is safe to repeat: reads are GETs and every POST carries the caller's
//!   `Idempotence-Key`. A 202 ("still processing"), a 5xx or a broken connection is
//!   retried with the same key, at most [`MAX_ATTEMPTS`] times within the configured
//!   timeout, then reported as [`GatewayError::Unknown`]; the caller repeats later with
//!   the same key or fetches the object.
//! - Amounts cross the boundary as exact decimal strings (`"199.00"`), parsed back with
//!   [`Money::parse_amount`]; an unknown currency or a malformed amount is
//!   [`GatewayError::Unexpected`], never a rounded number.
//! - A webhook body is never trusted: [`parse_notification`] returns only the event name
//!   and the object id, which the caller must re-fetch.

use super::{ConfigError, GatewayError, parse_base_url, read_body, retry_after, url_with};
use mrjbot_domain::{Currency, Money};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const GATEWAY: &str = "yookassa";

/// Production API host.
pub const DEFAULT_BASE_URL: &str = "https://api.yookassa.ru";

/// The addresses YooKassa sends webhooks from (the official SDK's list, spec §2.4).
pub const DEFAULT_WEBHOOK_ALLOW: [&str; 10] = [
    "77.75.153.0/25",
    "77.75.156.11",
    "77.75.156.35",
    "77.75.154.128/25",
    "185.71.76.0/27",
    "185.71.77.0/27",
    "2a02:5180:0:1509::/64",
    "2a02:5180:0:2655::/64",
    "2a02:5180:0:1533::/64",
    "2a02:5180:0:2669::/64",
];

/// Attempts per call when the outcome stays unknown (202, 5xx, connection error).
pub const MAX_ATTEMPTS: u32 = 3;

/// Pause before the second attempt; doubles for each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// Page size asked of the list endpoint (its maximum).
const LIST_LIMIT: u32 = 100;

/// Settings of a YooKassa shop.
#[derive(Debug, Clone)]
pub struct YookassaConfig {
    /// The shop id (Basic-auth user).
    pub shop_id: String,
    /// The secret key (Basic-auth password; `test_...` for a test shop).
    pub secret_key: String,
    /// API host, [`DEFAULT_BASE_URL`] in production, a fake's URL in tests.
    pub base_url: String,
    /// Bound on a whole call, retries included.
    pub timeout: Duration,
    /// Send a 54-FZ `receipt` with payments and refunds (required when the shop uses
    /// YooKassa's fiscal receipts).
    pub receipts: bool,
    /// The receipt item's VAT code (`1` = no VAT).
    pub vat_code: u8,
    /// The receipt's tax system code, when the shop has several.
    pub tax_system_code: Option<u8>,
    /// Addresses (CIDR or single IP) webhooks may come from.
    pub webhook_allow: Vec<String>,
}

impl YookassaConfig {
    /// Production settings: 15-second timeout, no receipts, VAT code 1, the SDK's
    /// webhook address list.
    pub fn new(shop_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            shop_id: shop_id.into(),
            secret_key: secret_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(15),
            receipts: false,
            vat_code: 1,
            tax_system_code: None,
            webhook_allow: DEFAULT_WEBHOOK_ALLOW
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// A payment to create: one-stage (`capture: true`) with a redirect confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePayment {
    /// The amount (RUB for a Russian shop).
    pub amount: Money,
    /// Shown to the payer and in the cabinet (up to 128 chars).
    pub description: String,
    /// Where the payer's browser returns after paying.
    pub return_url: String,
    /// Flat string map returned in every payment object and webhook (put the order id).
    pub metadata: BTreeMap<String, String>,
    /// Receipt recipient's email (receipts need an email or a phone).
    pub customer_email: Option<String>,
    /// Receipt recipient's phone.
    pub customer_phone: Option<String>,
    /// The receipt line (`VPN subscription, 30 days`).
    pub item_description: String,
}

/// A refund to create. The customer and item fields are used for the receipt when the
/// shop sends receipts, as YooKassa requires one with a refund then too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRefund {
    /// The refunded payment.
    pub payment_id: String,
    /// How much to return, up to what is left of the payment.
    pub amount: Money,
    /// Why (up to 250 chars; may be empty).
    pub description: String,
    /// Receipt recipient's email.
    pub customer_email: Option<String>,
    /// Receipt recipient's phone.
    pub customer_phone: Option<String>,
    /// The receipt line.
    pub item_description: String,
}

/// A payment's status (spec §2.3). Only `Succeeded` means the money is ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Created; the payer has not finished.
    Pending,
    /// Paid and held (two-stage payments only).
    WaitingForCapture,
    /// Final: money taken.
    Succeeded,
    /// Final: failed or cancelled.
    Canceled,
}

impl PaymentStatus {
    /// The API's name (`waiting_for_capture`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::WaitingForCapture => "waiting_for_capture",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Canceled => "canceled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            PaymentStatus::Pending,
            PaymentStatus::WaitingForCapture,
            PaymentStatus::Succeeded,
            PaymentStatus::Canceled,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A payment as YooKassa reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// YooKassa's id.
    pub id: String,
    /// The status.
    pub status: PaymentStatus,
    /// True once the payer paid (`waiting_for_capture` or `succeeded`).
    pub paid: bool,
    /// The amount.
    pub amount: Money,
    /// How much was refunded, when anything was.
    pub refunded_amount: Option<Money>,
    /// Where to send the payer (redirect confirmation), while pending.
    pub confirmation_url: Option<String>,
    /// Our metadata, as sent.
    pub metadata: BTreeMap<String, String>,
    /// `cancellation_details.reason` of a cancelled payment.
    pub cancellation_reason: Option<String>,
    /// Whether a refund is possible.
    pub refundable: bool,
    /// A test shop's payment.
    pub test: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// A refund's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// Being processed.
    Pending,
    /// Done: the money went back.
    Succeeded,
    /// Failed.
    Canceled,
}

/// A refund as YooKassa reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// YooKassa's id.
    pub id: String,
    /// The refunded payment.
    pub payment_id: String,
    /// The status.
    pub status: RefundStatus,
    /// The refunded amount.
    pub amount: Money,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// The description given.
    pub description: Option<String>,
    /// `cancellation_details.reason` of a cancelled refund.
    pub cancellation_reason: Option<String>,
}

/// What a webhook body may be trusted for: which object to re-fetch, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `payment.succeeded`, `refund.succeeded`, ...
    pub event: String,
    /// The payment's or refund's id (letters, digits, `-`, `_`; at most 64 chars).
    pub object_id: String,
}

/// An address range: a CIDR (`77.75.153.0/25`, `2a02:5180:0:1509::/64`) or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the range; an IPv4 address written as IPv6
    /// (`::ffff:77.75.156.11`, how a dual-stack listener reports it) counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError {
            gateway: GATEWAY,
            message: format!("`{s}` is not an IP address or CIDR range"),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr {
            network: network.to_canonical(),
            prefix,
        })
    }
}

/// A YooKassa shop.
#[derive(Debug, Clone)]
pub struct Yookassa {
    cfg: YookassaConfig,
    base: url::Url,
    allow: Vec<Cidr>,
    http: reqwest::Client,
}

impl Yookassa {
    /// A client for one shop; fails on an unusable base URL or webhook address. Empty
    /// credentials are allowed here and make every call answer
    /// [`GatewayError::NotConfigured`].
    pub fn new(cfg: YookassaConfig) -> Result<Self, ConfigError> {
        let allow = cfg
            .webhook_allow
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<Cidr>, _>>()?;
        Ok(Self {
            base: parse_base_url(GATEWAY, &cfg.base_url)?,
            allow,
            http: super::http_client(cfg.timeout),
            cfg,
        })
    }

    /// Creates a payment (`POST /v3/payments`).
    pub async fn create_payment(
        &self,
        req: &CreatePayment,
        idempotence_key: &str,
    ) -> Result<Payment, GatewayError> {
        let mut metadata = Map::new();
        for (k, v) in &req.metadata {
            metadata.insert(k.clone(), json!(v));
        }
        let mut body = json!({
            "amount": amount_json(req.amount),
            "capture": true,
            "confirmation": {"type": "redirect", "return_url": req.return_url},
            "description": req.description,
        });
        if !metadata.is_empty() {
            body["metadata"] = Value::Object(metadata);
        }
        if self.cfg.receipts {
            body["receipt"] = self.receipt(
                req.amount,
                &req.item_description,
                req.customer_email.as_deref(),
                req.customer_phone.as_deref(),
            );
        }
        let v = self
            .call(
                Method::POST,
                &["payments"],
                &[],
                Some(&body),
                Some(idempotence_key),
            )
            .await?;
        parse_payment(v)
    }

    /// Fetches a payment (`GET /v3/payments/{id}`).
    pub async fn get_payment(&self, id: &str) -> Result<Payment, GatewayError> {
        let v = self
            .call(Method::GET, &["payments", id], &[], None, None)
            .await?;
        parse_payment(v)
    }

    /// One page of payments, newest first (`GET /v3/payments`), optionally only those
    /// in `status` (`pending`, ...) created at or after `created_gte`; pass the returned
    /// cursor to get the next page (`None` when this was the last).
    pub async fn list_payments(
        &self,
        status: Option<&str>,
        created_gte: Option<OffsetDateTime>,
        cursor: Option<&str>,
    ) -> Result<(Vec<Payment>, Option<String>), GatewayError> {
        let mut query = vec![("limit", LIST_LIMIT.to_string())];
        if let Some(s) = status {
            query.push(("status", s.to_owned()));
        }
        if let Some(t) = created_gte {
            query.push(("created_at.gte", format_time(t)?));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let v = self
            .call(Method::GET, &["payments"], &query, None, None)
            .await?;
        let Value::Object(mut page) = v else {
            return Err(unexpected_value("a list that is not an object", &v));
        };
        let next = match page.remove("next_cursor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(unexpected_value("a non-string next_cursor", &other)),
        };
        let items = match page.remove("items") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(unexpected_value(
                    "a list without items",
                    &Value::Object(page),
                ));
            }
        };
        let payments = items
            .into_iter()
            .map(parse_payment)
            .collect::<Result<_, _>>()?;
        Ok((payments, next))
    }

    /// Captures a held payment (`POST /v3/payments/{id}/capture`), all of it or `amount`.
    pub async fn capture_payment(
        &self,
        id: &str,
        amount: Option<Money>,
        idempotence_key: &str,
    ) -> Result<Payment, GatewayError> {
        let body = match amount {
            Some(a) => json!({ "amount": amount_json(a) }),
            None => json!({}),
        };
        let v = self
            .call(
                Method::POST,
                &["payments", id, "capture"],
                &[],
                Some(&body),
                Some(idempotence_key),
            )
            .await?;
        parse_payment(v)
    }

    /// Cancels a held payment (`POST /v3/payments/{id}/cancel`).
    pub async fn cancel_payment(
        &self,
        id: &str,
        idempotence_key: &str,
    ) -> Result<Payment, GatewayError> {
        let v = self
            .call(
                Method::POST,
                &["payments", id, "cancel"],
                &[],
                Some(&json!({})),
                Some(idempotence_key),
            )
            .await?;
        parse_payment(v)
    }

    /// Refunds all or part of a succeeded payment (`POST /v3/refunds`).
    pub async fn create_refund(
        &self,
        req: &CreateRefund,
        idempotence_key: &str,
    ) -> Result<Refund, GatewayError> {
        let mut body = json!({
            "payment_id": req.payment_id,
            "amount": amount_json(req.amount),
        });
        if !req.description.is_empty() {
            body["description"] = json!(req.description);
        }
        if self.cfg.receipts {
            body["receipt"] = self.receipt(
                req.amount,
                &req.item_description,
                req.customer_email.as_deref(),
                req.customer_phone.as_deref(),
            );
        }
        let v = self
            .call(
                Method::POST,
                &["refunds"],
                &[],
                Some(&body),
                Some(idempotence_key),
            )
            .await?;
        parse_refund(v)
    }

    /// Fetches a refund (`GET /v3/refunds/{id}`).
    pub async fn get_refund(&self, id: &str) -> Result<Refund, GatewayError> {
        let v = self
            .call(Method::GET, &["refunds", id], &[], None, None)
            .await?;
        parse_refund(v)
    }

    /// Whether a webhook from `ip` may be processed (the configured allowlist).
    pub fn source_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|c| c.contains(ip))
    }

    /// The 54-FZ receipt for one full-payment service line of `amount`.
    fn receipt(
        &self,
        amount: Money,
        item_description: &str,
        email: Option<&str>,
        phone: Option<&str>,
    ) -> Value {
        let mut customer = Map::new();
        if let Some(e) = email {
            customer.insert("email".into(), json!(e));
        }
        if let Some(p) = phone {
            customer.insert("phone".into(), json!(p));
        }
        let mut receipt = json!({
            "customer": customer,
            "items": [{
                "description": item_description,
                "quantity": "1.00",
                "amount": amount_json(amount),
                "vat_code": self.cfg.vat_code,
                "payment_mode": "full_payment",
                "payment_subject": "service",
            }],
        });
        if let Some(t) = self.cfg.tax_system_code {
            receipt["tax_system_code"] = json!(t);
        }
        receipt
    }

    /// One API call with the retry rule of the module docs.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Value, GatewayError> {
        if self.cfg.shop_id.trim().is_empty() || self.cfg.secret_key.is_empty() {
            return Err(GatewayError::NotConfigured { gateway: GATEWAY });
        }
        let mut segments = vec!["v3"];
        segments.extend_from_slice(path);
        let url = url_with(&self.base, &segments);
        let deadline = Instant::now() + self.cfg.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let result = self
                .once(method.clone(), url.clone(), query, body, key, left)
                .await;
            match result {
                Err(e @ GatewayError::Unknown { .. }) if attempt < MAX_ATTEMPTS => {
                    // Only retry when the pause leaves time for another attempt.
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left <= backoff {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, attempt, "yookassa: retrying with the same key");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once(
        &self,
        method: Method,
        url: url::Url,
        query: &[(&str, String)],
        body: Option<&Value>,
        key: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, GatewayError> {
        let mut req = self
            .http
            .request(method, url)
            .basic_auth(&self.cfg.shop_id, Some(&self.cfg.secret_key))
            .timeout(timeout);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(k) = key {
            req = req.header("Idempotence-Key", k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e))?;
        let status = resp.status();
        let pause = retry_after(resp.headers());
        let bytes = read_body(GATEWAY, resp).await?;
        interpret(status, pause, &bytes)
    }
}

/// Maps an answer to the object it carries or to an error (spec §2.1).
fn interpret(status: StatusCode, pause: Duration, body: &[u8]) -> Result<Value, GatewayError> {
    if status == StatusCode::OK {
        return match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err(GatewayError::unexpected(
                GATEWAY,
                "HTTP 200 without a JSON object",
                body,
            )),
        };
    }
    if status == StatusCode::ACCEPTED {
        return Err(GatewayError::Unknown {
            gateway: GATEWAY,
            message: "HTTP 202: accepted, still processing".into(),
        });
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(GatewayError::RateLimited {
            gateway: GATEWAY,
            retry_after: pause,
        });
    }
    let error_body = serde_json::from_slice::<Value>(body)
        .ok()
        .filter(|v| v["type"] == "error");
    if status.is_server_error() {
        let detail = error_body
            .as_ref()
            .and_then(|v| v["description"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
        return Err(GatewayError::Unknown {
            gateway: GATEWAY,
            message: format!("HTTP {status}: {detail}"),
        });
    }
    match error_body {
        Some(e) if status.is_client_error() => {
            let code = e["code"].as_str().unwrap_or("").to_owned();
            if code.is_empty() {
                return Err(GatewayError::unexpected(
                    GATEWAY,
                    "error without a code",
                    body,
                ));
            }
            let mut message = e["description"]
                .as_str()
                .unwrap_or("no description")
                .to_owned();
            if let Some(p) = e["parameter"].as_str() {
                message.push_str(&format!(" (parameter `{p}`)"));
            }
            message.push_str(&format!(" [HTTP {}]", status.as_u16()));
            Err(GatewayError::Refused {
                gateway: GATEWAY,
                code,
                message,
            })
        }
        _ => Err(GatewayError::unexpected(
            GATEWAY,
            &format!("HTTP {status} without a YooKassa error body"),
            body,
        )),
    }
}

fn amount_json(m: Money) -> Value {
    json!({ "value": m.decimal_string(), "currency": m.currency.code() })
}

#[derive(Deserialize)]
struct WireAmount {
    value: String,
    currency: String,
}

impl WireAmount {
    fn money(&self) -> Result<Money, GatewayError> {
        let bad = |what: &str| GatewayError::Unexpected {
            gateway: GATEWAY,
            message: format!("{what}: `{} {}`", self.value, self.currency),
        };
        let currency = Currency::parse(&self.currency).map_err(|_| bad("unknown currency"))?;
        Money::parse_amount(&self.value, currency).map_err(|_| bad("malformed amount"))
    }
}

#[derive(Deserialize)]
struct WireCancellation {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct WireConfirmation {
    confirmation_url: Option<String>,
}

#[derive(Deserialize)]
struct WirePayment {
    id: String,
    status: String,
    paid: bool,
    amount: WireAmount,
    refunded_amount: Option<WireAmount>,
    confirmation: Option<WireConfirmation>,
    metadata: Option<BTreeMap<String, String>>,
    cancellation_details: Option<WireCancellation>,
    #[serde(default)]
    refundable: bool,
    #[serde(default)]
    test: bool,
    created_at: String,
}

#[derive(Deserialize)]
struct WireRefund {
    id: String,
    payment_id: String,
    status: String,
    amount: WireAmount,
    created_at: String,
    description: Option<String>,
    cancellation_details: Option<WireCancellation>,
}

fn parse_payment(v: Value) -> Result<Payment, GatewayError> {
    let w: WirePayment = serde_json::from_value(v.clone())
        .map_err(|e| unexpected_value(&format!("not a payment ({e})"), &v))?;
    let status = PaymentStatus::parse(&w.status)
        .ok_or_else(|| unexpected_value("a payment with an unknown status", &v))?;
    let refunded_amount = w
        .refunded_amount
        .as_ref()
        .map(WireAmount::money)
        .transpose()?;
    Ok(Payment {
        id: w.id,
        status,
        paid: w.paid,
        amount: w.amount.money()?,
        refunded_amount,
        confirmation_url: w.confirmation.and_then(|c| c.confirmation_url),
        metadata: w.metadata.unwrap_or_default(),
        cancellation_reason: w.cancellation_details.and_then(|c| c.reason),
        refundable: w.refundable,
        test: w.test,
        created_at: parse_time(&w.created_at, &v)?,
    })
}

fn parse_refund(v: Value) -> Result<Refund, GatewayError> {
    let w: WireRefund = serde_json::from_value(v.clone())
        .map_err(|e| unexpected_value(&format!("not a refund ({e})"), &v))?;
    let status = match w.status.as_str() {
        "pending" => RefundStatus::Pending,
        "succeeded" => RefundStatus::Succeeded,
        "canceled" => RefundStatus::Canceled,
        _ => return Err(unexpected_value("a refund with an unknown status", &v)),
    };
    Ok(Refund {
        id: w.id,
        payment_id: w.payment_id,
        status,
        amount: w.amount.money()?,
        created_at: parse_time(&w.created_at, &v)?,
        description: w.description,
        cancellation_reason: w.cancellation_details.and_then(|c| c.reason),
    })
}

fn parse_time(s: &str, whole: &Value) -> Result<OffsetDateTime, GatewayError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| unexpected_value("a malformed created_at", whole))
}

/// `2018-07-18T10:51:18.139Z`: UTC with milliseconds, as the API writes times.
fn format_time(t: OffsetDateTime) -> Result<String, GatewayError> {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .map_err(|e| GatewayError::Unexpected {
            gateway: GATEWAY,
            message: format!("cannot format {t}: {e}"),
        })
}

fn unexpected_value(what: &str, v: &Value) -> GatewayError {
    GatewayError::unexpected(GATEWAY, what, v.to_string().as_bytes())
}

/// Reads a webhook body (`{"type":"notification","event":...,"object":{"id":...}}`)
/// and returns only the event and the object id; everything else in it may be forged.
/// Anything that is not such a notification is [`GatewayError::Unexpected`].
pub fn parse_notification(body: &[u8]) -> Result<Notification, GatewayError> {
    let bad = |what: &str| GatewayError::unexpected(GATEWAY, what, body);
    let v: Value =
        serde_json::from_slice(body).map_err(|_| bad("a webhook body that is not JSON"))?;
    if v["type"] != "notification" {
        return Err(bad("a webhook body whose type is not `notification`"));
    }
    let event = v["event"].as_str().unwrap_or("");
    let well_formed_event = event.len() <= 64
        && event.split_once('.').is_some_and(|(object, status)| {
            let word =
                |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            word(object) && word(status)
        });
    if !well_formed_event {
        return Err(bad("a webhook with a malformed event"));
    }
    let id = v["object"]["id"].as_str().unwrap_or("");
    let well_formed_id = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed_id {
        return Err(bad("a webhook with a missing or malformed object id"));
    }
    Ok(Notification {
        event: event.to_owned(),
        object_id: id.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_payment() -> Value {
        json!({
            "id": "2419a771-000f-5000-9000-1edaf29243f2",
            "status": "succeeded",
            "paid": true,
            "amount": {"value": "199.00", "currency": "RUB"},
            "income_amount": {"value": "192.03", "currency": "RUB"},
            "refunded_amount": {"value": "0.01", "currency": "RUB"},
            "description": "VPN 1 month, order 12345",
            "recipient": {"account_id": "100001", "gateway_id": "1000001"},
            "payment_method": {"type": "bank_card", "id": "x", "saved": false, "title": "Bank card *4444"},
            "captured_at": "2018-07-18T10:52:18.139Z",
            "created_at": "2018-07-18T10:51:18.139Z",
            "confirmation": {"type": "redirect", "return_url": "https://t.me/YourBot",
                             "confirmation_url": "https://yoomoney.ru/checkout/x"},
            "test": true,
            "refundable": true,
            "metadata": {"order_id": "12345", "tg_user_id": "42"}
        })
    }

    #[test]
    fn parses_a_payment_object_exactly() {
        let Ok(p) = parse_payment(sample_payment()) else {
            panic!("the spec's payment object was refused");
        };
        assert_eq!(p.status, PaymentStatus::Succeeded);
        assert_eq!(
            p.amount,
            Money {
                amount_minor: 19900,
                currency: Currency::Rub
            }
        );
        assert_eq!(p.refunded_amount.map(|m| m.amount_minor), Some(1));
        assert_eq!(
            p.metadata.get("order_id").map(String::as_str),
            Some("12345")
        );
        assert_eq!(
            p.confirmation_url.as_deref(),
            Some("https://yoomoney.ru/checkout/x")
        );
        assert!(p.paid && p.refundable && p.test);
        assert_eq!(p.created_at.unix_timestamp(), 1_531_911_078);
    }

    #[test]
    fn refuses_payments_it_cannot_read_exactly() {
        for (path, value) in [
            ("currency", json!("XYZ")),
            ("value", json!("199.001")),
            ("value", json!("1e2")),
            ("value", json!(199.0)),
        ] {
            let mut v = sample_payment();
            v["amount"][path] = value.clone();
            assert!(
                matches!(parse_payment(v), Err(GatewayError::Unexpected { .. })),
                "amount.{path} = {value}"
            );
        }
        let mut v = sample_payment();
        v["status"] = json!("paid");
        assert!(matches!(
            parse_payment(v),
            Err(GatewayError::Unexpected { .. })
        ));
        let mut v = sample_payment();
        v["created_at"] = json!("yesterday");
        assert!(matches!(
            parse_payment(v),
            Err(GatewayError::Unexpected { .. })
        ));
    }

    #[test]
    fn parses_a_refund_object() {
        let v = json!({
            "id": "216749f7-0016-50be-b000-078d43a63ae4", "status": "succeeded",
            "amount": {"value": "50.00", "currency": "RUB"},
            "created_at": "2018-07-18T10:53:18.139Z",
            "payment_id": "2419a771-000f-5000-9000-1edaf29243f2", "description": "partial"
        });
        let Ok(r) = parse_refund(v) else {
            panic!("the refund object was refused");
        };
        assert_eq!(r.status, RefundStatus::Succeeded);
        assert_eq!(r.amount.amount_minor, 5000);
        assert_eq!(r.description.as_deref(), Some("partial"));
    }

    #[test]
    fn maps_statuses_and_error_bodies() {
        let err = br#"{"type":"error","id":"x","code":"invalid_request","description":"Bad amount","parameter":"amount.value"}"#;
        match interpret(StatusCode::BAD_REQUEST, Duration::ZERO, err) {
            Err(GatewayError::Refused { code, message, .. }) => {
                assert_eq!(code, "invalid_request");
                assert!(message.contains("amount.value"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let unauthorized =
            br#"{"type":"error","id":"x","code":"invalid_credentials","description":"no"}"#;
        assert!(matches!(
            interpret(StatusCode::UNAUTHORIZED, Duration::ZERO, unauthorized),
            Err(GatewayError::Refused { code, .. }) if code == "invalid_credentials"
        ));
        assert!(matches!(
            interpret(StatusCode::ACCEPTED, Duration::ZERO, b"{}"),
            Err(GatewayError::Unknown { .. })
        ));
        assert!(matches!(
            interpret(StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO, b"<html>"),
            Err(GatewayError::Unknown { .. })
        ));
        assert!(matches!(
            interpret(StatusCode::TOO_MANY_REQUESTS, Duration::from_secs(3), b""),
            Err(GatewayError::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(3)
        ));
        assert!(matches!(
            interpret(StatusCode::NOT_FOUND, Duration::ZERO, b"<html>nginx</html>"),
            Err(GatewayError::Unexpected { .. })
        ));
        assert!(matches!(
            interpret(StatusCode::OK, Duration::ZERO, b"[]"),
            Err(GatewayError::Unexpected { .. })
        ));
    }

    #[test]
    fn notifications_give_only_event_and_id() {
        let mut body = json!({"type": "notification", "event": "payment.succeeded", "object": sample_payment()});
        let Ok(n) = parse_notification(body.to_string().as_bytes()) else {
            panic!("a well-formed notification was refused");
        };
        assert_eq!(n.event, "payment.succeeded");
        assert_eq!(n.object_id, "2419a771-000f-5000-9000-1edaf29243f2");
        body["object"]["id"] = json!("../payments/x");
        assert!(parse_notification(body.to_string().as_bytes()).is_err());
        for bad in [
            r#"{"type":"error","event":"payment.succeeded","object":{"id":"a"}}"#,
            r#"{"type":"notification","event":"payment","object":{"id":"a"}}"#,
            r#"{"type":"notification","event":"Payment.Succeeded","object":{"id":"a"}}"#,
            r#"{"type":"notification","event":"payment.succeeded","object":{}}"#,
            r#"{"type":"notification","event":"payment.succeeded","object":{"id":7}}"#,
            "not json",
        ] {
            assert!(parse_notification(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_ranges() {
        let c = |s: &str| s.parse::<Cidr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        assert!(c("77.75.153.0/25").contains(ip("77.75.153.127")));
        assert!(!c("77.75.153.0/25").contains(ip("77.75.153.128")));
        assert!(c("77.75.156.11").contains(ip("::ffff:77.75.156.11")));
        assert!(!c("77.75.156.11").contains(ip("77.75.156.12")));
        assert!(c("2a02:5180:0:1509::/64").contains(ip("2a02:5180:0:1509:ffff::1")));
        assert!(!c("2a02:5180:0:1509::/64").contains(ip("2a02:5180:0:150a::1")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!c("0.0.0.0/0").contains(ip("::1")));
        for bad in [
            "77.75.153.0/33",
            "::/129",
            "1.2.3.4/",
            "1.2.3.4/x",
            "example.com",
            "1.2.3/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn times_go_out_in_utc_with_milliseconds() {
        let t = time::macros::datetime!(2018-07-18 13:51:18.139 +03:00);
        assert_eq!(
            format_time(t).ok().as_deref(),
            Some("2018-07-18T10:51:18.139Z")
        );
    }
}
