//! A local YooKassa API v3 (specs/payments.md §2.6): payments, capture, cancel, refunds
//! and their lists behind Basic auth, with `Idempotence-Key` semantics, the error body
//! `{"type":"error","id","code","description","parameter"}`, a checkout page, and test
//! controls that play the payer.
//!
//! Guarantees tests rely on:
//! - A POST with a key already used returns the stored answer when the request is the
//!   same and `400 invalid_request` when it differs; an injected 500 is answered after
//!   the operation was performed and stored, so a retry with the same key gets the
//!   original result and creates nothing new.
//! - Every status change (test controls, capture, cancel, refund) posts a notification
//!   `{"type":"notification","event":"<object>.<status>","object":{...}}` to the URL
//!   given to [`FakeYookassa::set_webhook`], from 127.0.0.1, repeating until it gets a
//!   200 (bounded by [`FakeYookassa::webhook_retry`]).
//! - Knobs per endpoint (`create_payment`, `get_payment`, `list_payments`,
//!   `capture_payment`, `cancel_payment`, `create_refund`, `get_refund`,
//!   `list_refunds`): inject 202, 429 or 500 for the next N calls, or delay them.

use super::zarinpal::escape;
use super::{Served, serve};
use anyhow::{Context, anyhow, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The API endpoints, by the names the knobs and counters take.
pub const ENDPOINTS: [&str; 8] = [
    "create_payment",
    "get_payment",
    "list_payments",
    "capture_payment",
    "cancel_payment",
    "create_refund",
    "get_refund",
    "list_refunds",
];

/// Currencies the fake shop accepts.
const CURRENCIES: [&str; 3] = ["RUB", "USD", "EUR"];

/// A delivered or attempted webhook.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event (`payment.succeeded`).
    pub event: String,
    /// The object's id.
    pub object_id: String,
    /// The receiver's HTTP status, `None` when the connection failed.
    pub status: Option<u16>,
    /// The body sent.
    pub body: Value,
}

/// A running fake YooKassa; stops when dropped.
pub struct FakeYookassa {
    served: Served,
    shared: Arc<Shared>,
}

struct Payment {
    seq: u64,
    id: String,
    status: &'static str,
    paid: bool,
    amount: i64,
    currency: String,
    description: Option<String>,
    return_url: String,
    metadata: Map<String, Value>,
    capture: bool,
    receipt: bool,
    created_at: OffsetDateTime,
    captured_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
    refunded: i64,
    cancellation: Option<(&'static str, String)>,
}

struct Refund {
    seq: u64,
    id: String,
    payment_id: String,
    amount: i64,
    currency: String,
    description: Option<String>,
    created_at: OffsetDateTime,
}

struct Stored {
    request: Value,
    status: StatusCode,
    body: Value,
}

#[derive(Default)]
struct Knobs {
    inject: Option<(StatusCode, u32)>,
    delay: Option<Duration>,
}

struct Inner {
    payments: HashMap<String, Payment>,
    refunds: HashMap<String, Refund>,
    seq: u64,
    idempotence: HashMap<String, Stored>,
    knobs: HashMap<&'static str, Knobs>,
    calls: HashMap<&'static str, u64>,
    receipts: bool,
    page_cap: Option<usize>,
    webhook: Option<String>,
    webhook_attempts: u32,
    webhook_interval: Duration,
    deliveries: Vec<Delivery>,
}

struct Shared {
    shop_id: String,
    secret: String,
    base: OnceLock<String>,
    http: reqwest::Client,
    /// Serializes state-changing POSTs so two requests with one key cannot both run.
    posts: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

type Answer = (StatusCode, Value);

fn endpoint(name: &str) -> &'static str {
    ENDPOINTS
        .into_iter()
        .find(|e| *e == name)
        .unwrap_or_else(|| panic!("fake YooKassa has no endpoint `{name}`; one of {ENDPOINTS:?}"))
}

fn error(status: StatusCode, code: &str, description: &str, parameter: Option<&str>) -> Answer {
    let mut body = json!({
        "type": "error",
        "id": uuid::Uuid::new_v4().to_string(),
        "code": code,
        "description": description,
    });
    if let Some(p) = parameter {
        body["parameter"] = json!(p);
    }
    (status, body)
}

fn invalid(description: &str, parameter: &str) -> Answer {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
        Some(parameter),
    )
}

fn not_found(what: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("{what} not found"),
        None,
    )
}

fn time_text(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn money_text(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn amount_json(minor: i64, currency: &str) -> Value {
    json!({ "value": money_text(minor), "currency": currency })
}

/// Parses `{"value":"199.00","currency":"RUB"}`: a string with exactly two decimals,
/// above zero, in a known currency. `Err` names the bad parameter under `prefix`.
fn parse_amount(v: &Value, prefix: &str) -> Result<(i64, String), Answer> {
    let value = v["value"].as_str().unwrap_or("");
    let param = format!("{prefix}.value");
    let minor = value
        .split_once('.')
        .filter(|(int, frac)| {
            !int.is_empty()
                && int.len() <= 15
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.len() == 2
                && frac.bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|(int, frac)| Some(int.parse::<i64>().ok()? * 100 + frac.parse::<i64>().ok()?))
        .ok_or_else(|| {
            invalid(
                "The amount must be a string with two decimals, like \"199.00\"",
                &param,
            )
        })?;
    if minor <= 0 {
        return Err(invalid("The amount must be greater than zero", &param));
    }
    let currency = v["currency"].as_str().unwrap_or("");
    if !CURRENCIES.contains(&currency) {
        return Err(invalid(
            "Unsupported currency",
            &format!("{prefix}.currency"),
        ));
    }
    Ok((minor, currency.to_owned()))
}

/// A decimal quantity (`"1.00"`, `1`, `2.5`) in thousandths.
fn quantity_milli(v: &Value) -> Option<i64> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    if int.is_empty()
        || int.len() > 9
        || frac.len() > 3
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac_milli = format!("{frac:0<3}").parse::<i64>().ok()?;
    Some(int.parse::<i64>().ok()? * 1000 + frac_milli).filter(|q| *q > 0)
}

/// Checks a 54-FZ receipt against the payment amount.
fn check_receipt(r: &Value, amount: i64, currency: &str) -> Result<(), Answer> {
    let customer = &r["customer"];
    let has = |k: &str| customer[k].as_str().is_some_and(|s| !s.is_empty());
    if !has("email") && !has("phone") {
        return Err(invalid(
            "The receipt needs the customer's email or phone",
            "receipt.customer",
        ));
    }
    let Some(items) = r["items"].as_array().filter(|i| !i.is_empty()) else {
        return Err(invalid("The receipt has no items", "receipt.items"));
    };
    let mut total: i64 = 0;
    for (n, item) in items.iter().enumerate() {
        let param = |f: &str| format!("receipt.items[{n}].{f}");
        let description = item["description"].as_str().unwrap_or("");
        if description.is_empty() || description.chars().count() > 128 {
            return Err(invalid(
                "An item needs a description of 1..128 characters",
                &param("description"),
            ));
        }
        let Some(q) = quantity_milli(&item["quantity"]) else {
            return Err(invalid("Invalid quantity", &param("quantity")));
        };
        let (item_amount, item_currency) = parse_amount(&item["amount"], &param("amount"))?;
        if item_currency != currency {
            return Err(invalid(
                "Item currency differs from the payment",
                &param("amount.currency"),
            ));
        }
        if !item["vat_code"]
            .as_u64()
            .is_some_and(|c| (1..=12).contains(&c))
        {
            return Err(invalid("Invalid vat_code", &param("vat_code")));
        }
        for f in ["payment_mode", "payment_subject"] {
            if item[f].as_str().is_none_or(str::is_empty) {
                return Err(invalid("Missing field", &param(f)));
            }
        }
        let line = i128::from(item_amount) * i128::from(q);
        if line % 1000 != 0 {
            return Err(invalid(
                "An item total is not a whole kopek",
                &param("quantity"),
            ));
        }
        total = total.saturating_add(i64::try_from(line / 1000).unwrap_or(i64::MAX));
    }
    if total != amount {
        return Err(invalid(
            "The receipt items do not add up to the amount",
            "receipt.items",
        ));
    }
    match &r["tax_system_code"] {
        Value::Null => Ok(()),
        v if v.as_u64().is_some_and(|c| (1..=6).contains(&c)) => Ok(()),
        _ => Err(invalid(
            "Invalid tax_system_code",
            "receipt.tax_system_code",
        )),
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn base(&self) -> &str {
        self.base.get().map_or("", String::as_str)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        decoded == format!("{}:{}", self.shop_id, self.secret).as_bytes()
    }

    fn payment_json(&self, p: &Payment) -> Value {
        let mut v = json!({
            "id": p.id,
            "status": p.status,
            "paid": p.paid,
            "amount": amount_json(p.amount, &p.currency),
            "recipient": {"account_id": self.shop_id, "gateway_id": "1000001"},
            "created_at": time_text(p.created_at),
            "test": true,
            "refundable": p.status == "succeeded" && p.refunded < p.amount,
            "metadata": p.metadata,
        });
        if let Some(d) = &p.description {
            v["description"] = json!(d);
        }
        if p.status == "pending" {
            v["confirmation"] = json!({
                "type": "redirect",
                "return_url": p.return_url,
                "confirmation_url": format!("{}/__test/yookassa/checkout/{}", self.base(), p.id),
            });
        }
        if p.paid || p.status == "succeeded" {
            v["payment_method"] = json!({
                "type": "bank_card", "id": p.id, "saved": false, "title": "Bank card *4444",
            });
        }
        if p.status == "succeeded" {
            v["income_amount"] = amount_json(p.amount - p.amount * 35 / 1000, &p.currency);
        }
        if let Some(t) = p.captured_at {
            v["captured_at"] = json!(time_text(t));
        }
        if let Some(t) = p.expires_at {
            v["expires_at"] = json!(time_text(t));
        }
        if p.refunded > 0 {
            v["refunded_amount"] = amount_json(p.refunded, &p.currency);
        }
        if let Some((party, reason)) = &p.cancellation {
            v["cancellation_details"] = json!({ "party": party, "reason": reason });
        }
        if p.receipt && p.paid {
            v["receipt_registration"] = json!("succeeded");
        }
        v
    }

    fn refund_json(r: &Refund) -> Value {
        let mut v = json!({
            "id": r.id,
            "payment_id": r.payment_id,
            "status": "succeeded",
            "amount": amount_json(r.amount, &r.currency),
            "created_at": time_text(r.created_at),
        });
        if let Some(d) = &r.description {
            v["description"] = json!(d);
        }
        v
    }

    fn notification(event: &str, object: Value) -> Value {
        json!({ "type": "notification", "event": event, "object": object })
    }

    /// Moves payment `id` along; returns the payment and the webhook to send.
    fn transition(
        &self,
        id: &str,
        change: impl FnOnce(&mut Payment) -> Result<(), String>,
    ) -> Result<(Value, Value), Answer> {
        let mut g = self.lock();
        let Some(p) = g.payments.get_mut(id) else {
            return Err(not_found("Payment"));
        };
        change(p).map_err(|e| invalid(&e, "payment_id"))?;
        let object = self.payment_json(p);
        let event = format!("payment.{}", p.status);
        Ok((object.clone(), Self::notification(&event, object)))
    }

    /// `pending` (capture) or `waiting_for_capture` → `succeeded`.
    fn succeed(&self, id: &str) -> Result<(Value, Value), Answer> {
        self.transition(id, |p| match p.status {
            "pending" if p.capture => {
                settle(p, None);
                Ok(())
            }
            "waiting_for_capture" => {
                settle(p, None);
                Ok(())
            }
            "pending" => {
                Err("a payment with capture: false must be authorized, then captured".into())
            }
            s => Err(format!("payment is {s}")),
        })
    }

    /// `pending` (without capture) → `waiting_for_capture`.
    fn authorize(&self, id: &str) -> Result<(Value, Value), Answer> {
        self.transition(id, |p| match p.status {
            "pending" if !p.capture => {
                p.status = "waiting_for_capture";
                p.paid = true;
                p.expires_at = Some(OffsetDateTime::now_utc() + time::Duration::days(7));
                Ok(())
            }
            "pending" => Err("a payment with capture: true succeeds directly".into()),
            s => Err(format!("payment is {s}")),
        })
    }

    /// `pending` or `waiting_for_capture` → `canceled` with `reason`.
    fn cancel(&self, id: &str, reason: &str) -> Result<(Value, Value), Answer> {
        self.cancel_from(id, reason, &["pending", "waiting_for_capture"])
    }

    /// A status in `from` → `canceled` with `reason`.
    fn cancel_from(&self, id: &str, reason: &str, from: &[&str]) -> Result<(Value, Value), Answer> {
        let party = match reason {
            "canceled_by_merchant" => "merchant",
            "3d_secure_failed"
            | "card_expired"
            | "insufficient_funds"
            | "general_decline"
            | "issuer_unavailable"
            | "payment_method_limit_exceeded" => "payment_network",
            _ => "yoo_money",
        };
        self.transition(id, |p| {
            if !from.contains(&p.status) {
                return Err(format!(
                    "payment is {}, only {} can be canceled",
                    p.status,
                    from.join(" or ")
                ));
            }
            p.status = "canceled";
            p.paid = false;
            p.expires_at = None;
            p.cancellation = Some((party, reason.to_owned()));
            Ok(())
        })
    }

    fn create_payment(&self, body: &Value) -> Result<(Answer, Vec<Value>), Answer> {
        let (amount, currency) = parse_amount(&body["amount"], "amount")?;
        let capture = match &body["capture"] {
            Value::Null => false,
            Value::Bool(b) => *b,
            _ => return Err(invalid("capture must be a boolean", "capture")),
        };
        let confirmation = &body["confirmation"];
        if !confirmation.is_object() {
            return Err(invalid("Confirmation is required", "confirmation"));
        }
        if confirmation["type"] != "redirect" {
            return Err(invalid(
                "Only redirect confirmation is supported by the fake",
                "confirmation.type",
            ));
        }
        let return_url = confirmation["return_url"].as_str().unwrap_or("");
        if !(return_url.starts_with("http://") || return_url.starts_with("https://"))
            || return_url.len() > 2048
        {
            return Err(invalid(
                "return_url must be an http(s) URL",
                "confirmation.return_url",
            ));
        }
        let description = match &body["description"] {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 128 => Some(s.clone()),
            _ => {
                return Err(invalid(
                    "description must be a string of at most 128 characters",
                    "description",
                ));
            }
        };
        let metadata = match &body["metadata"] {
            Value::Null => Map::new(),
            Value::Object(m)
                if m.len() <= 16
                    && m.iter().all(|(k, v)| {
                        k.chars().count() <= 32
                            && v.as_str().is_some_and(|s| s.chars().count() <= 512)
                    }) =>
            {
                m.clone()
            }
            _ => {
                return Err(invalid(
                    "metadata must map at most 16 keys (32 chars) to strings (512 chars)",
                    "metadata",
                ));
            }
        };
        let receipt = &body["receipt"];
        if receipt.is_null() {
            if self.lock().receipts {
                return Err(invalid("Receipt is missing or illegal", "receipt"));
            }
        } else {
            check_receipt(receipt, amount, &currency)?;
        }
        let mut g = self.lock();
        g.seq += 1;
        let p = Payment {
            seq: g.seq,
            id: uuid::Uuid::new_v4().to_string(),
            status: "pending",
            paid: false,
            amount,
            currency,
            description,
            return_url: return_url.to_owned(),
            metadata,
            capture,
            receipt: !receipt.is_null(),
            created_at: OffsetDateTime::now_utc(),
            captured_at: None,
            expires_at: None,
            refunded: 0,
            cancellation: None,
        };
        let v = self.payment_json(&p);
        g.payments.insert(p.id.clone(), p);
        Ok(((StatusCode::OK, v), vec![]))
    }

    fn capture(&self, id: &str, body: &Value) -> Result<(Answer, Vec<Value>), Answer> {
        let partial = match &body["amount"] {
            Value::Null => None,
            a => Some(parse_amount(a, "amount")?),
        };
        let (object, hook) = self.transition(id, |p| {
            if p.status != "waiting_for_capture" {
                return Err(format!(
                    "payment is {}, only waiting_for_capture can be captured",
                    p.status
                ));
            }
            if let Some((amount, currency)) = &partial
                && (*currency != p.currency || *amount > p.amount)
            {
                return Err("the capture amount exceeds the authorized amount".into());
            }
            settle(p, partial.as_ref().map(|(a, _)| *a));
            Ok(())
        })?;
        Ok(((StatusCode::OK, object), vec![hook]))
    }

    fn cancel_api(&self, id: &str) -> Result<(Answer, Vec<Value>), Answer> {
        let (object, hook) =
            self.cancel_from(id, "canceled_by_merchant", &["waiting_for_capture"])?;
        Ok(((StatusCode::OK, object), vec![hook]))
    }

    fn create_refund(&self, body: &Value) -> Result<(Answer, Vec<Value>), Answer> {
        let payment_id = body["payment_id"].as_str().unwrap_or("");
        let (amount, currency) = parse_amount(&body["amount"], "amount")?;
        let description = match &body["description"] {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 250 => Some(s.clone()),
            _ => {
                return Err(invalid(
                    "description must be at most 250 characters",
                    "description",
                ));
            }
        };
        let receipts = self.lock().receipts;
        match &body["receipt"] {
            Value::Null if receipts => {
                return Err(invalid("Receipt is missing or illegal", "receipt"));
            }
            Value::Null => {}
            r => check_receipt(r, amount, &currency)?,
        }
        let mut g = self.lock();
        let seq = g.seq + 1;
        let Some(p) = g.payments.get_mut(payment_id) else {
            return Err(invalid("Payment not found", "payment_id"));
        };
        if p.status != "succeeded" || p.refunded >= p.amount {
            return Err(invalid(
                &format!("payment is {} and cannot be refunded", p.status),
                "payment_id",
            ));
        }
        if currency != p.currency {
            return Err(invalid(
                "Currency differs from the payment",
                "amount.currency",
            ));
        }
        if amount > p.amount - p.refunded {
            return Err(invalid(
                "The refund exceeds what is left of the payment",
                "amount.value",
            ));
        }
        p.refunded += amount;
        let refund = Refund {
            seq,
            id: uuid::Uuid::new_v4().to_string(),
            payment_id: payment_id.to_owned(),
            amount,
            currency,
            description,
            created_at: OffsetDateTime::now_utc(),
        };
        g.seq = seq;
        let object = Self::refund_json(&refund);
        g.refunds.insert(refund.id.clone(), refund);
        Ok((
            (StatusCode::OK, object.clone()),
            vec![Self::notification("refund.succeeded", object)],
        ))
    }

    /// A page of `items` (already filtered), newest first, after `cursor`.
    fn page(&self, mut items: Vec<(u64, Value)>, q: &HashMap<String, String>) -> Answer {
        let limit = match q.get("limit") {
            None => 10,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => return invalid("limit must be 1..100", "limit"),
            },
        };
        let limit = self.lock().page_cap.map_or(limit, |cap| limit.min(cap));
        let after = match q.get("cursor") {
            None => u64::MAX,
            Some(c) => match c.parse::<u64>() {
                Ok(n) => n,
                Err(_) => return invalid("Invalid cursor", "cursor"),
            },
        };
        items.sort_by_key(|item| std::cmp::Reverse(item.0));
        items.retain(|(seq, _)| *seq < after);
        let more = items.len() > limit;
        items.truncate(limit);
        let mut v = json!({
            "type": "list",
            "items": items.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        });
        if more && let Some((seq, _)) = items.last() {
            v["next_cursor"] = json!(seq.to_string());
        }
        (StatusCode::OK, v)
    }

    fn list_payments(&self, q: &HashMap<String, String>) -> Answer {
        let status = q.get("status").map(String::as_str);
        if status.is_some_and(|s| {
            !["pending", "waiting_for_capture", "succeeded", "canceled"].contains(&s)
        }) {
            return invalid("Unknown status", "status");
        }
        let mut bounds = Vec::new();
        for op in ["gte", "gt", "lte", "lt"] {
            let key = format!("created_at.{op}");
            if let Some(t) = q.get(&key) {
                match OffsetDateTime::parse(t, &Rfc3339) {
                    Ok(t) => bounds.push((op, t)),
                    Err(_) => return invalid("Invalid date", &key),
                }
            }
        }
        let items = {
            let g = self.lock();
            g.payments
                .values()
                .filter(|p| status.is_none_or(|s| p.status == s))
                .filter(|p| {
                    bounds.iter().all(|(op, t)| match *op {
                        "gte" => p.created_at >= *t,
                        "gt" => p.created_at > *t,
                        "lte" => p.created_at <= *t,
                        _ => p.created_at < *t,
                    })
                })
                .map(|p| (p.seq, self.payment_json(p)))
                .collect()
        };
        self.page(items, q)
    }

    fn list_refunds(&self, q: &HashMap<String, String>) -> Answer {
        let payment_id = q.get("payment_id");
        let items = {
            let g = self.lock();
            g.refunds
                .values()
                .filter(|r| payment_id.is_none_or(|p| *p == r.payment_id))
                .map(|r| (r.seq, Self::refund_json(r)))
                .collect()
        };
        self.page(items, q)
    }
}

/// A held or pending payment becomes `succeeded` (captured, possibly for less).
fn settle(p: &mut Payment, amount: Option<i64>) {
    p.status = "succeeded";
    p.paid = true;
    if let Some(a) = amount {
        p.amount = a;
    }
    p.captured_at = Some(OffsetDateTime::now_utc());
    p.expires_at = None;
}

/// What the preamble decided: answer now, or go on (with a 500 to give afterwards).
enum Gate {
    Answer(Answer),
    Proceed { fail_after: bool },
}

/// Counts the call, checks credentials (and the key of a POST), applies the delay and
/// the injected answers.
async fn gate(shared: &Shared, endpoint: &'static str, headers: &HeaderMap, post: bool) -> Gate {
    let delay = {
        let mut g = shared.lock();
        *g.calls.entry(endpoint).or_default() += 1;
        g.knobs.get(endpoint).and_then(|k| k.delay)
    };
    if !shared.authorized(headers) {
        return Gate::Answer(error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Authentication by the given shopId and secret key failed",
            None,
        ));
    }
    if post {
        let key = headers
            .get("Idempotence-Key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if key.is_empty() || key.len() > 64 {
            return Gate::Answer(invalid(
                "Idempotence-Key is required (at most 64 characters)",
                "Idempotence-Key",
            ));
        }
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let injected = {
        let mut g = shared.lock();
        g.knobs.get_mut(endpoint).and_then(|k| {
            let (status, left) = k.inject.as_mut()?;
            let status = *status;
            *left -= 1;
            if *left == 0 {
                k.inject = None;
            }
            Some(status)
        })
    };
    match injected {
        Some(StatusCode::ACCEPTED) => Gate::Answer((
            StatusCode::ACCEPTED,
            json!({"type": "processing", "description": "Request accepted, still processing"}),
        )),
        Some(StatusCode::TOO_MANY_REQUESTS) => Gate::Answer(error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests",
            None,
        )),
        Some(_) => Gate::Proceed { fail_after: true },
        None => Gate::Proceed { fail_after: false },
    }
}

fn internal_error() -> Answer {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_server_error",
        "Internal server error",
        None,
    )
}

fn respond((status, body): Answer) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A state-changing POST: the idempotence rules around `op`.
async fn post_call(
    shared: Arc<Shared>,
    endpoint: &'static str,
    target: String,
    headers: HeaderMap,
    body: Bytes,
    op: impl FnOnce(&Shared, &Value) -> Result<(Answer, Vec<Value>), Answer>,
) -> Response {
    let fail_after = match gate(&shared, endpoint, &headers, true).await {
        Gate::Answer(a) => return respond(a),
        Gate::Proceed { fail_after } => fail_after,
    };
    let key = headers
        .get("Idempotence-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let parsed = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return respond(invalid("The body is not a JSON object", "body")),
        }
    };
    let request = json!({ "endpoint": endpoint, "target": target, "body": parsed });
    let _one_at_a_time = shared.posts.lock().await;
    let stored = shared
        .lock()
        .idempotence
        .get(&key)
        .map(|s| (s.request == request, s.status, s.body.clone()));
    let answer = match stored {
        Some((true, status, body)) => (status, body),
        Some((false, ..)) => {
            return respond(invalid(
                "This Idempotence-Key was used with a different request",
                "Idempotence-Key",
            ));
        }
        None => {
            let (answer, hooks) = op(&shared, &parsed).unwrap_or_else(|e| (e, vec![]));
            shared.lock().idempotence.insert(
                key,
                Stored {
                    request,
                    status: answer.0,
                    body: answer.1.clone(),
                },
            );
            deliver(shared.clone(), hooks);
            answer
        }
    };
    respond(if fail_after { internal_error() } else { answer })
}

/// A read.
async fn get_call(
    shared: Arc<Shared>,
    endpoint: &'static str,
    headers: HeaderMap,
    op: impl FnOnce(&Shared) -> Answer,
) -> Response {
    match gate(&shared, endpoint, &headers, false).await {
        Gate::Answer(a) => respond(a),
        Gate::Proceed { fail_after: true } => respond(internal_error()),
        Gate::Proceed { fail_after: false } => respond(op(&shared)),
    }
}

/// Sends `hooks` in order to the webhook URL, each until it gets a 200 or the attempts
/// run out.
fn deliver(shared: Arc<Shared>, hooks: Vec<Value>) {
    let (url, attempts, interval) = {
        let g = shared.lock();
        (g.webhook.clone(), g.webhook_attempts, g.webhook_interval)
    };
    let Some(url) = url else { return };
    if hooks.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for body in hooks {
            for attempt in 1..=attempts {
                let status = shared
                    .http
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status().as_u16());
                shared.lock().deliveries.push(Delivery {
                    event: body["event"].as_str().unwrap_or("").to_owned(),
                    object_id: body["object"]["id"].as_str().unwrap_or("").to_owned(),
                    status,
                    body: body.clone(),
                });
                if status == Some(200) {
                    break;
                }
                if attempt < attempts {
                    tokio::time::sleep(interval).await;
                }
            }
        }
    });
}

fn control(result: Result<(Value, Value), Answer>, shared: Arc<Shared>) -> Response {
    match result {
        Ok((object, hook)) => {
            deliver(shared, vec![hook]);
            respond((StatusCode::OK, object))
        }
        Err((StatusCode::NOT_FOUND, body)) => respond((StatusCode::NOT_FOUND, body)),
        Err((_, body)) => respond((StatusCode::CONFLICT, body)),
    }
}

fn control_result(
    result: Result<(Value, Value), Answer>,
    shared: &Arc<Shared>,
) -> anyhow::Result<Value> {
    match result {
        Ok((object, hook)) => {
            deliver(shared.clone(), vec![hook]);
            Ok(object)
        }
        Err((_, body)) => Err(anyhow!(
            "fake YooKassa: {}",
            body["description"].as_str().unwrap_or("refused")
        )),
    }
}

async fn checkout_page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let g = shared.lock();
    let Some(p) = g.payments.get(&id) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<html><body><h1>Unknown payment</h1></body></html>".to_owned()),
        )
            .into_response();
    };
    let id = escape(&p.id);
    Html(format!(
        "<!doctype html><html><body><h1>Fake YooKassa checkout</h1>\
         <p>{description}: {amount} {currency} ({status})</p>\
         <form method=\"post\" action=\"/__test/yookassa/{id}/succeed\"><button>Pay</button></form>\
         <form method=\"post\" action=\"/__test/yookassa/{id}/authorize\"><button>Authorize</button></form>\
         <form method=\"post\" action=\"/__test/yookassa/{id}/cancel?reason=expired_on_confirmation\"><button>Cancel</button></form>\
         </body></html>",
        description = escape(p.description.as_deref().unwrap_or("")),
        amount = money_text(p.amount),
        currency = escape(&p.currency),
        status = p.status,
    ))
    .into_response()
}

impl FakeYookassa {
    /// Starts a fake shop with these Basic-auth credentials.
    pub async fn start(shop_id: &str, secret: &str) -> anyhow::Result<FakeYookassa> {
        let shared = Arc::new(Shared {
            shop_id: shop_id.to_owned(),
            secret: secret.to_owned(),
            base: OnceLock::new(),
            http: mrjbot_app::pay::http_client(Duration::from_secs(5)),
            posts: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                payments: HashMap::new(),
                refunds: HashMap::new(),
                seq: 0,
                idempotence: HashMap::new(),
                knobs: HashMap::new(),
                calls: HashMap::new(),
                receipts: false,
                page_cap: None,
                webhook: None,
                webhook_attempts: 10,
                webhook_interval: Duration::from_millis(100),
                deliveries: Vec::new(),
            }),
        });
        type S = State<Arc<Shared>>;
        type Q = Query<HashMap<String, String>>;
        let router = Router::new()
            .route(
                "/v3/payments",
                post(|State(s): S, h: HeaderMap, b: Bytes| {
                    post_call(s, "create_payment", String::new(), h, b, |s, v| {
                        s.create_payment(v)
                    })
                })
                .get(|State(s): S, h: HeaderMap, Query(q): Q| {
                    get_call(s, "list_payments", h, move |s| s.list_payments(&q))
                }),
            )
            .route(
                "/v3/payments/{id}",
                get(|State(s): S, h: HeaderMap, Path(id): Path<String>| {
                    get_call(s, "get_payment", h, move |s| {
                        let g = s.lock();
                        g.payments.get(&id).map_or_else(
                            || not_found("Payment"),
                            |p| (StatusCode::OK, s.payment_json(p)),
                        )
                    })
                }),
            )
            .route(
                "/v3/payments/{id}/capture",
                post(
                    |State(s): S, h: HeaderMap, Path(id): Path<String>, b: Bytes| {
                        let target = id.clone();
                        post_call(s, "capture_payment", target, h, b, move |s, v| {
                            s.capture(&id, v)
                        })
                    },
                ),
            )
            .route(
                "/v3/payments/{id}/cancel",
                post(
                    |State(s): S, h: HeaderMap, Path(id): Path<String>, b: Bytes| {
                        let target = id.clone();
                        post_call(s, "cancel_payment", target, h, b, move |s, _| {
                            s.cancel_api(&id)
                        })
                    },
                ),
            )
            .route(
                "/v3/refunds",
                post(|State(s): S, h: HeaderMap, b: Bytes| {
                    post_call(s, "create_refund", String::new(), h, b, |s, v| {
                        s.create_refund(v)
                    })
                })
                .get(|State(s): S, h: HeaderMap, Query(q): Q| {
                    get_call(s, "list_refunds", h, move |s| s.list_refunds(&q))
                }),
            )
            .route(
                "/v3/refunds/{id}",
                get(|State(s): S, h: HeaderMap, Path(id): Path<String>| {
                    get_call(s, "get_refund", h, move |s| {
                        let g = s.lock();
                        g.refunds.get(&id).map_or_else(
                            || not_found("Refund"),
                            |r| (StatusCode::OK, Shared::refund_json(r)),
                        )
                    })
                }),
            )
            .route("/__test/yookassa/checkout/{id}", get(checkout_page))
            .route(
                "/__test/yookassa/{id}/succeed",
                post(|State(s): S, Path(id): Path<String>| async move {
                    control(s.succeed(&id), s.clone())
                }),
            )
            .route(
                "/__test/yookassa/{id}/authorize",
                post(|State(s): S, Path(id): Path<String>| async move {
                    control(s.authorize(&id), s.clone())
                }),
            )
            .route(
                "/__test/yookassa/{id}/cancel",
                post(
                    |State(s): S, Path(id): Path<String>, Query(q): Q| async move {
                        match q.get("reason").filter(|r| !r.is_empty()) {
                            Some(reason) => control(s.cancel(&id, reason), s.clone()),
                            None => (StatusCode::BAD_REQUEST, "the query needs ?reason=...")
                                .into_response(),
                        }
                    },
                ),
            )
            .with_state(shared.clone());
        let served = serve(router).await.context("starting the fake YooKassa")?;
        let _ = shared.base.set(served.base_url.clone());
        Ok(FakeYookassa { served, shared })
    }

    /// `http://127.0.0.1:PORT`, the value for the client's `base_url`.
    pub fn base_url(&self) -> &str {
        &self.served.base_url
    }

    /// The payer pays: a `capture: true` payment becomes `succeeded` (a held one is
    /// captured). Sends `payment.succeeded`; returns the payment object.
    pub fn succeed(&self, id: &str) -> anyhow::Result<Value> {
        control_result(self.shared.succeed(id), &self.shared)
    }

    /// The payer pays a `capture: false` payment: `waiting_for_capture`. Sends
    /// `payment.waiting_for_capture`.
    pub fn authorize(&self, id: &str) -> anyhow::Result<Value> {
        control_result(self.shared.authorize(id), &self.shared)
    }

    /// The payment fails or expires with `reason` (`expired_on_confirmation`,
    /// `insufficient_funds`, ...). Sends `payment.canceled`.
    pub fn cancel(&self, id: &str, reason: &str) -> anyhow::Result<Value> {
        control_result(self.shared.cancel(id, reason), &self.shared)
    }

    /// The stored payment object, as `GET /v3/payments/{id}` would show it.
    pub fn payment(&self, id: &str) -> Option<Value> {
        let g = self.shared.lock();
        g.payments.get(id).map(|p| self.shared.payment_json(p))
    }

    /// How many payments exist.
    pub fn payments_count(&self) -> usize {
        self.shared.lock().payments.len()
    }

    /// Whether payments and refunds without a 54-FZ receipt are refused.
    pub fn receipts_on(&self, on: bool) {
        self.shared.lock().receipts = on;
    }

    /// Lists answer at most `n` items a page whatever `limit` asks (to test cursors).
    pub fn page_cap(&self, n: usize) {
        assert!(n > 0, "a page holds at least one item");
        self.shared.lock().page_cap = Some(n);
    }

    /// Where notifications go.
    pub fn set_webhook(&self, url: &str) {
        self.shared.lock().webhook = Some(url.to_owned());
    }

    /// Each notification is tried at most `attempts` times, `interval` apart, until the
    /// receiver answers 200 (default 10 times, 100 ms).
    pub fn webhook_retry(&self, attempts: u32, interval: Duration) {
        assert!(attempts > 0, "at least one delivery attempt");
        let mut g = self.shared.lock();
        g.webhook_attempts = attempts;
        g.webhook_interval = interval;
    }

    /// Every webhook attempt so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }

    /// Waits until `n` notifications were acknowledged with 200 and returns their
    /// bodies; fails after `within`.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let done: Vec<Value> = self
                .deliveries()
                .into_iter()
                .filter(|d| d.status == Some(200))
                .map(|d| d.body)
                .collect();
            if done.len() >= n {
                return Ok(done);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "fake YooKassa: {} of {n} notifications delivered in {within:?}",
                    done.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Posts `body` once to the webhook URL as YooKassa would (forged or repeated
    /// deliveries); returns the receiver's status.
    pub async fn send_webhook_raw(&self, body: impl Into<Vec<u8>>) -> anyhow::Result<u16> {
        let url = self
            .shared
            .lock()
            .webhook
            .clone()
            .context("fake YooKassa: no webhook URL set")?;
        let resp = self
            .shared
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .send()
            .await
            .context("posting a raw webhook")?;
        Ok(resp.status().as_u16())
    }

    /// The next `times` calls of `endpoint` get HTTP `code`: 202 (nothing done, "still
    /// processing"), 429 (nothing done) or 500 (answered after the operation was done
    /// and stored under its key).
    pub fn inject(&self, endpoint_name: &str, code: u16, times: u32) {
        let status = match code {
            202 => StatusCode::ACCEPTED,
            429 => StatusCode::TOO_MANY_REQUESTS,
            500 => StatusCode::INTERNAL_SERVER_ERROR,
            other => panic!("fake YooKassa injects 202, 429 or 500, not {other}"),
        };
        assert!(times > 0, "inject at least one answer");
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().inject = Some((status, times));
    }

    /// Every call of `endpoint` waits `d` before answering (`Duration::ZERO` clears).
    pub fn delay(&self, endpoint_name: &str, d: Duration) {
        let mut g = self.shared.lock();
        g.knobs.entry(endpoint(endpoint_name)).or_default().delay = (!d.is_zero()).then_some(d);
    }

    /// How many calls `endpoint` received, refused and injected ones included.
    pub fn calls(&self, endpoint_name: &str) -> u64 {
        let g = self.shared.lock();
        g.calls.get(endpoint(endpoint_name)).copied().unwrap_or(0)
    }
}
