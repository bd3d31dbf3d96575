//! A local Crypto Pay API (payments.md §4.1) for tests: `getMe`, `createInvoice`,
//! `getInvoices` and `deleteInvoice` under `/api/{method}` (GET query, POST JSON or POST
//! form), checked against the `Crypto-Pay-API-Token` header, with the real envelope
//! `{"ok":true,"result":..}` / `{"ok":false,"error":{"code":..,"name":..}}` and the HTTP
//! status equal to the error code.
//!
//! Test controls play the payer and the network: [`FakeCryptoPay::pay`] (or
//! `POST /__test/cryptopay/{invoice_id}/pay`) marks an invoice paid and POSTs a signed
//! `invoice_paid` update to the webhook, retrying until it answers 200 (bounded);
//! `expire`; forced failures and delays; forged and duplicate deliveries.
//!
//! The fake signs webhooks with its own HMAC code (not the client's), so a test that the
//! client verifies them checks the client against the spec, not against itself. Error
//! names for validation failures are the fake's own (`AMOUNT_INVALID`...): the spec fixes
//! the shape, not every name. A fiat invoice is paid in its first accepted asset (USDT by
//! default) at a 1:1 rate.

use super::params::{BadParam, Params};
use super::{Served, serve};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use hmac::{Hmac, KeyInit, Mac};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Crypto assets the fake accepts.
pub const ASSETS: &[&str] = &["USDT", "TON", "BTC", "ETH", "LTC", "BNB", "TRX", "USDC"];
/// Fiat currencies the fake accepts.
pub const FIATS: &[&str] = &[
    "USD", "EUR", "RUB", "BYN", "UAH", "GBP", "CNY", "KZT", "UZS", "GEL", "TRY", "AMD", "THB",
    "INR", "BRL", "IDR", "AZN", "AED", "PLN", "ILS",
];
const PAID_BUTTONS: &[&str] = &["viewItem", "openChannel", "openBot", "callback"];
const MAX_EXPIRES_IN: i64 = 2_678_400;

/// A running fake Crypto Pay; stops when dropped.
#[derive(Debug)]
pub struct FakeCryptoPay {
    served: Served,
    shared: Arc<Shared>,
}

/// One webhook POST attempt made by the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The update delivered; `None` for [`FakeCryptoPay::send_webhook_raw`].
    pub update_id: Option<i64>,
    /// 1 for the first attempt of this delivery.
    pub attempt: u32,
    /// The webhook's HTTP status; `None` when the connection failed.
    pub status: Option<u16>,
}

#[derive(Debug)]
struct Shared {
    token: String,
    state: Mutex<Inner>,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Inner {
    app_id: i64,
    invoices: BTreeMap<i64, FakeInvoice>,
    next_invoice_id: i64,
    next_update_id: i64,
    webhook: Option<String>,
    webhook_attempts: u32,
    webhook_interval: Duration,
    updates: HashMap<i64, Signed>,
    deliveries: Vec<Delivery>,
    forced: Option<(u32, u16)>,
    delay: Duration,
}

#[derive(Debug, Clone)]
struct Signed {
    body: Vec<u8>,
    signature: String,
}

#[derive(Debug, Clone, Serialize)]
struct FakeInvoice {
    invoice_id: i64,
    hash: String,
    currency_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fiat: Option<String>,
    amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_assets: Option<Vec<String>>,
    bot_invoice_url: String,
    mini_app_invoice_url: String,
    web_app_invoice_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    status: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expiration_date: Option<String>,
    allow_comments: bool,
    allow_anonymous: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_btn_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_btn_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_fiat_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_usd_rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fee_asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fee_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_anonymously: Option<bool>,
}

/// An API error: HTTP status = `code`, body = the Crypto Pay error envelope.
struct ApiError {
    code: u16,
    name: String,
}

impl ApiError {
    fn bad(name: &str) -> Self {
        Self {
            code: 400,
            name: name.into(),
        }
    }
}

impl From<BadParam> for ApiError {
    fn from(e: BadParam) -> Self {
        ApiError::bad(&format!("{}_INVALID", e.0.to_ascii_uppercase()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let body = json!({"ok": false, "error": {"code": self.code, "name": self.name}});
        (status, axum::Json(body)).into_response()
    }
}

/// Why a test control could not act; also the answer of the `/__test` routes.
#[derive(Debug)]
struct ControlError {
    status: StatusCode,
    message: String,
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ControlError {}

/// HMAC-SHA-256 of `body` keyed with the raw SHA-256 of `token`, lowercase hex.
fn sign(token: &str, body: &[u8]) -> String {
    let key = Sha256::digest(token.as_bytes());
    match <Hmac<Sha256> as KeyInit>::new_from_slice(&key) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        // Unreachable: HMAC takes keys of any length.
        Err(_) => String::new(),
    }
}

fn now_iso() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

fn in_iso(secs: i64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&format)
        .unwrap_or_default()
}

fn random_hash() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("IV{tail}")
}

/// A positive decimal written with digits and at most one dot (`"4.99"`, `"10"`).
fn positive_decimal(s: &str) -> bool {
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && s.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_me(&self) -> Value {
        json!({
            "app_id": self.lock().app_id,
            "name": "MRJBot test shop",
            "payment_processing_bot_username": "CryptoTestnetBot",
        })
    }

    fn create_invoice(&self, p: &Params) -> Result<Value, ApiError> {
        let currency_type = p.str("currency_type")?.unwrap_or_else(|| "crypto".into());
        let (asset, fiat, accepted_assets) = match currency_type.as_str() {
            "crypto" => {
                let asset = p.str("asset")?.unwrap_or_default();
                if !ASSETS.contains(&asset.as_str()) {
                    return Err(ApiError::bad("ASSET_INVALID"));
                }
                if p.get("accepted_assets").is_some() {
                    return Err(ApiError::bad("ACCEPTED_ASSETS_INVALID"));
                }
                (Some(asset), None, None)
            }
            "fiat" => {
                let fiat = p.str("fiat")?.unwrap_or_default();
                if !FIATS.contains(&fiat.as_str()) {
                    return Err(ApiError::bad("FIAT_INVALID"));
                }
                let accepted = match p.get("accepted_assets") {
                    None => None,
                    Some(Value::String(s)) => Some(
                        s.split(',')
                            .map(|a| a.trim().to_owned())
                            .collect::<Vec<_>>(),
                    ),
                    Some(Value::Array(items)) => Some(
                        items
                            .iter()
                            .map(|a| a.as_str().unwrap_or("").to_owned())
                            .collect(),
                    ),
                    Some(_) => return Err(ApiError::bad("ACCEPTED_ASSETS_INVALID")),
                };
                if let Some(list) = &accepted
                    && (list.is_empty() || list.iter().any(|a| !ASSETS.contains(&a.as_str())))
                {
                    return Err(ApiError::bad("ACCEPTED_ASSETS_INVALID"));
                }
                (None, Some(fiat), accepted)
            }
            _ => return Err(ApiError::bad("CURRENCY_TYPE_INVALID")),
        };
        let amount = p.str("amount")?.unwrap_or_default();
        if !positive_decimal(&amount) {
            return Err(ApiError::bad("AMOUNT_INVALID"));
        }
        let description = p.str("description")?;
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1024)
        {
            return Err(ApiError::bad("DESCRIPTION_TOO_LONG"));
        }
        let hidden_message = p.str("hidden_message")?;
        if hidden_message
            .as_ref()
            .is_some_and(|d| d.chars().count() > 2048)
        {
            return Err(ApiError::bad("HIDDEN_MESSAGE_TOO_LONG"));
        }
        let payload = p.str("payload")?;
        if payload.as_ref().is_some_and(|d| d.len() > 4096) {
            return Err(ApiError::bad("PAYLOAD_TOO_LONG"));
        }
        let expires_in = p.i64("expires_in")?;
        if expires_in.is_some_and(|e| !(1..=MAX_EXPIRES_IN).contains(&e)) {
            return Err(ApiError::bad("EXPIRES_IN_INVALID"));
        }
        let paid_btn_name = p.str("paid_btn_name")?;
        let paid_btn_url = p.str("paid_btn_url")?;
        match (&paid_btn_name, &paid_btn_url) {
            (None, None) => {}
            (Some(name), Some(url))
                if PAID_BUTTONS.contains(&name.as_str())
                    && (url.starts_with("https://") || url.starts_with("http://")) => {}
            (Some(name), _) if !PAID_BUTTONS.contains(&name.as_str()) => {
                return Err(ApiError::bad("PAID_BTN_NAME_INVALID"));
            }
            _ => return Err(ApiError::bad("PAID_BTN_URL_INVALID")),
        }
        let allow_comments = p.bool("allow_comments")?.unwrap_or(true);
        let allow_anonymous = p.bool("allow_anonymous")?.unwrap_or(true);

        let mut st = self.lock();
        let invoice_id = st.next_invoice_id;
        st.next_invoice_id += 1;
        let hash = random_hash();
        let invoice = FakeInvoice {
            invoice_id,
            bot_invoice_url: format!("https://t.me/CryptoTestnetBot?start={hash}"),
            mini_app_invoice_url: format!(
                "https://t.me/CryptoTestnetBot/app?startapp=invoice-{hash}"
            ),
            web_app_invoice_url: format!("https://testnet-app.send.tg/invoices/{hash}"),
            hash,
            currency_type,
            asset,
            fiat,
            amount,
            accepted_assets,
            description,
            status: "active".into(),
            created_at: now_iso(),
            expiration_date: expires_in.map(in_iso),
            allow_comments,
            allow_anonymous,
            hidden_message,
            payload,
            paid_btn_name,
            paid_btn_url,
            paid_at: None,
            paid_asset: None,
            paid_amount: None,
            paid_fiat_rate: None,
            paid_usd_rate: None,
            fee_asset: None,
            fee_amount: None,
            paid_anonymously: None,
        };
        let value = serde_json::to_value(&invoice).unwrap_or(Value::Null);
        st.invoices.insert(invoice_id, invoice);
        Ok(value)
    }

    fn get_invoices(&self, p: &Params) -> Result<Value, ApiError> {
        let ids: Option<Vec<i64>> = match p.get("invoice_ids") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| {
                        v.as_i64()
                            .ok_or_else(|| ApiError::bad("INVOICE_IDS_INVALID"))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => {
                let text = p.str("invoice_ids")?.unwrap_or_default();
                Some(
                    text.split(',')
                        .map(|s| {
                            s.trim()
                                .parse()
                                .map_err(|_| ApiError::bad("INVOICE_IDS_INVALID"))
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        let asset = p.str("asset")?;
        let fiat = p.str("fiat")?;
        let status = p.str("status")?;
        if status
            .as_deref()
            .is_some_and(|s| s != "active" && s != "paid")
        {
            return Err(ApiError::bad("STATUS_INVALID"));
        }
        let offset = p.i64("offset")?.unwrap_or(0);
        let count = p.i64("count")?.unwrap_or(100);
        if offset < 0 {
            return Err(ApiError::bad("OFFSET_INVALID"));
        }
        if !(1..=1000).contains(&count) {
            return Err(ApiError::bad("COUNT_INVALID"));
        }
        let st = self.lock();
        let items: Vec<Value> = st
            .invoices
            .values()
            .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.invoice_id)))
            .filter(|i| asset.is_none() || i.asset == asset)
            .filter(|i| fiat.is_none() || i.fiat == fiat)
            .filter(|i| status.as_ref().is_none_or(|s| &i.status == s))
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(count).unwrap_or(0))
            .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
            .collect();
        Ok(json!({ "items": items }))
    }

    fn delete_invoice(&self, p: &Params) -> Result<Value, ApiError> {
        let id = p
            .i64("invoice_id")?
            .ok_or_else(|| ApiError::bad("INVOICE_ID_INVALID"))?;
        match self.lock().invoices.remove(&id) {
            Some(_) => Ok(json!(true)),
            None => Err(ApiError::bad("INVOICE_NOT_FOUND")),
        }
    }

    /// Marks an invoice paid, records the signed update, and delivers it when a webhook
    /// is set. Returns the paid invoice.
    async fn pay(&self, invoice_id: i64) -> Result<Value, ControlError> {
        let (invoice, update_id) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let inv = st
                .invoices
                .get_mut(&invoice_id)
                .ok_or_else(|| ControlError {
                    status: StatusCode::NOT_FOUND,
                    message: format!("no invoice {invoice_id}"),
                })?;
            if inv.status != "active" {
                return Err(ControlError {
                    status: StatusCode::CONFLICT,
                    message: format!("invoice {invoice_id} is {}", inv.status),
                });
            }
            let paid_asset = match &inv.asset {
                Some(a) => a.clone(),
                None => inv
                    .accepted_assets
                    .as_ref()
                    .and_then(|l| l.first().cloned())
                    .unwrap_or_else(|| "USDT".into()),
            };
            inv.status = "paid".into();
            inv.paid_at = Some(now_iso());
            inv.paid_amount = Some(inv.amount.clone());
            inv.fee_asset = Some(paid_asset.clone());
            inv.fee_amount = Some("0".into());
            inv.paid_asset = Some(paid_asset);
            inv.paid_usd_rate = Some("1".into());
            inv.paid_fiat_rate = inv.fiat.as_ref().map(|_| "1".into());
            inv.paid_anonymously = Some(false);
            let invoice = serde_json::to_value(&*inv).unwrap_or(Value::Null);
            let update_id = st.next_update_id;
            st.next_update_id += 1;
            let body = serde_json::to_vec(&json!({
                "update_id": update_id,
                "update_type": "invoice_paid",
                "request_date": now_iso(),
                "payload": invoice,
            }))
            .unwrap_or_default();
            let signature = sign(&self.token, &body);
            st.updates.insert(update_id, Signed { body, signature });
            (invoice, update_id)
        };
        self.deliver(update_id).await;
        Ok(invoice)
    }

    fn expire(&self, invoice_id: i64) -> Result<Value, ControlError> {
        let mut st = self.lock();
        let inv = st
            .invoices
            .get_mut(&invoice_id)
            .ok_or_else(|| ControlError {
                status: StatusCode::NOT_FOUND,
                message: format!("no invoice {invoice_id}"),
            })?;
        if inv.status != "active" {
            return Err(ControlError {
                status: StatusCode::CONFLICT,
                message: format!("invoice {invoice_id} is {}", inv.status),
            });
        }
        inv.status = "expired".into();
        Ok(serde_json::to_value(&*inv).unwrap_or(Value::Null))
    }

    /// Delivers a recorded update, retrying until the webhook answers 200 or the attempts
    /// run out; returns the last status (`None` without a webhook, an update, or an answer).
    async fn deliver(&self, update_id: i64) -> Option<u16> {
        let (url, signed, attempts, interval) = {
            let st = self.lock();
            (
                st.webhook.clone()?,
                st.updates.get(&update_id)?.clone(),
                st.webhook_attempts.max(1),
                st.webhook_interval,
            )
        };
        let mut last = None;
        for attempt in 1..=attempts {
            last = self
                .post_webhook(&url, &signed.body, Some(&signed.signature))
                .await;
            self.lock().deliveries.push(Delivery {
                update_id: Some(update_id),
                attempt,
                status: last,
            });
            if last == Some(200) {
                break;
            }
            if attempt < attempts {
                tokio::time::sleep(interval).await;
            }
        }
        last
    }

    async fn post_webhook(&self, url: &str, body: &[u8], signature: Option<&str>) -> Option<u16> {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(s) = signature {
            request = request.header("crypto-pay-api-signature", s);
        }
        request.send().await.ok().map(|r| r.status().as_u16())
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (delay, forced) = {
        let mut st = shared.lock();
        let forced = match st.forced {
            Some((n, status)) if n > 0 => {
                st.forced = (n > 1).then_some((n - 1, status));
                Some(status)
            }
            _ => None,
        };
        (st.delay, forced)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = forced {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code.is_server_error() {
            // What a proxy in front of the API answers: HTML, not the envelope.
            let html = format!("<html><body><h1>{code}</h1></body></html>");
            return (code, [("content-type", "text/html")], html).into_response();
        }
        return ApiError {
            code: status,
            name: "FORCED_BY_TEST".into(),
        }
        .into_response();
    }
    let token_ok = headers
        .get("crypto-pay-api-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == shared.token);
    if !token_ok {
        return ApiError {
            code: 401,
            name: "UNAUTHORIZED".into(),
        }
        .into_response();
    }
    let params = match Params::from_request(&headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(_) => return ApiError::bad("PARAMS_INVALID").into_response(),
    };
    let result = match method.as_str() {
        "getMe" => Ok(shared.get_me()),
        "createInvoice" => shared.create_invoice(&params),
        "getInvoices" => shared.get_invoices(&params),
        "deleteInvoice" => shared.delete_invoice(&params),
        _ => Err(ApiError {
            code: 405,
            name: "METHOD_NOT_FOUND".into(),
        }),
    };
    match result {
        Ok(v) => axum::Json(json!({"ok": true, "result": v})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn control(
    State(shared): State<Arc<Shared>>,
    Path((invoice_id, action)): Path<(i64, String)>,
) -> Response {
    let result = match action.as_str() {
        "pay" => shared.pay(invoice_id).await,
        "expire" => shared.expire(invoice_id),
        _ => Err(ControlError {
            status: StatusCode::NOT_FOUND,
            message: format!("unknown control `{action}`"),
        }),
    };
    match result {
        Ok(invoice) => axum::Json(invoice).into_response(),
        Err(e) => (e.status, axum::Json(json!({"error": e.message}))).into_response(),
    }
}

impl FakeCryptoPay {
    /// Starts the fake on a loopback port; `token` is the only app token it accepts.
    pub async fn start(token: &str) -> anyhow::Result<FakeCryptoPay> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(Inner {
                app_id: rand::rng().random_range(1000..100_000),
                invoices: BTreeMap::new(),
                next_invoice_id: 1,
                next_update_id: 1,
                webhook: None,
                webhook_attempts: 5,
                webhook_interval: Duration::from_millis(100),
                updates: HashMap::new(),
                deliveries: Vec::new(),
                forced: None,
                delay: Duration::ZERO,
            }),
            http: mrjbot_app::pay::http_client(Duration::from_secs(10)),
        });
        let router = Router::new()
            .route("/api/{method}", any(api))
            .route("/__test/cryptopay/{invoice_id}/{action}", post(control))
            .with_state(shared.clone());
        let served = serve(router)
            .await
            .context("starting the fake Crypto Pay")?;
        Ok(FakeCryptoPay { served, shared })
    }

    /// `http://127.0.0.1:PORT`: the `base_url` for the client.
    pub fn base_url(&self) -> &str {
        &self.served.base_url
    }

    /// The app token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Where `invoice_paid` updates go from now on.
    pub fn set_webhook(&self, url: &str) {
        self.shared.lock().webhook = Some(url.to_owned());
    }

    /// Webhook attempts per update (at least 1) and the pause between them
    /// (default 5 attempts, 100 ms apart).
    pub fn set_webhook_retry(&self, attempts: u32, interval: Duration) {
        let mut st = self.shared.lock();
        st.webhook_attempts = attempts.max(1);
        st.webhook_interval = interval;
    }

    /// The payer pays: the invoice becomes `paid` and, when a webhook is set, a signed
    /// `invoice_paid` update is delivered before this returns. Returns the paid invoice.
    pub async fn pay(&self, invoice_id: i64) -> anyhow::Result<Value> {
        Ok(self.shared.pay(invoice_id).await?)
    }

    /// An active invoice runs out of time (no webhook: Crypto Pay sends only `invoice_paid`).
    pub fn expire(&self, invoice_id: i64) -> anyhow::Result<Value> {
        Ok(self.shared.expire(invoice_id)?)
    }

    /// The stored invoice as the API would return it.
    pub fn invoice(&self, invoice_id: i64) -> Option<Value> {
        self.shared
            .lock()
            .invoices
            .get(&invoice_id)
            .and_then(|i| serde_json::to_value(i).ok())
    }

    /// The next `calls` API calls answer HTTP `status` without doing anything: 5xx with an
    /// HTML page (as a proxy would), others with the error envelope (`FORCED_BY_TEST`).
    pub fn fail_next(&self, calls: u32, status: u16) {
        self.shared.lock().forced = (calls > 0).then_some((calls, status));
    }

    /// Every API call waits this long before answering (zero = no delay).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// The signature the real API would put on `body` for this fake's token.
    pub fn sign(&self, body: &[u8]) -> String {
        sign(&self.shared.token, body)
    }

    /// POSTs `body` to the webhook once, with `signature` in the signature header (or no
    /// header): forged or re-serialised deliveries. Returns the HTTP status.
    pub async fn send_webhook_raw(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> anyhow::Result<u16> {
        let url = self
            .shared
            .lock()
            .webhook
            .clone()
            .context("no webhook set")?;
        let status = self.shared.post_webhook(&url, body, signature).await;
        self.shared.lock().deliveries.push(Delivery {
            update_id: None,
            attempt: 1,
            status,
        });
        status.context("the webhook did not answer")
    }

    /// Delivers an earlier update again, byte for byte (a duplicate), with the usual
    /// retries. Returns the last HTTP status.
    pub async fn deliver_again(&self, update_id: i64) -> anyhow::Result<u16> {
        {
            let st = self.shared.lock();
            anyhow::ensure!(st.webhook.is_some(), "no webhook set");
            anyhow::ensure!(st.updates.contains_key(&update_id), "no update {update_id}");
        }
        self.shared
            .deliver(update_id)
            .await
            .context("the webhook did not answer")
    }

    /// Every webhook attempt so far, in order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.lock().deliveries.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for ok in ["1", "4.99", "0.01", "10.000000001"] {
            assert!(positive_decimal(ok), "{ok}");
        }
        for bad in ["", "0", "0.00", "-1", "1.", ".5", "1e3", "1,5", "abc", " 1"] {
            assert!(!positive_decimal(bad), "{bad}");
        }
    }
}
