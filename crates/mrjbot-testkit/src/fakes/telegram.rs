//! A local Telegram Bot API (telegram.md §1.7, payments.md §3) for tests. This is the seed
//! of the full fake the bot will use, so it is built to grow: one router for
//! `/bot{token}/{method}` (method names case-insensitive, parameters from GET query, POST
//! JSON or POST form), a method table (`dispatch`), an update queue with real
//! `getUpdates` semantics, and per-chat records of what the bot sent.
//!
//! Answers have Telegram's shapes: `{"ok":true,"result":..}` or
//! `{"ok":false,"error_code":..,"description":..,"parameters":{"retry_after":..}}` with the
//! HTTP status equal to `error_code`; a wrong token gets 401 `Unauthorized`, an unknown
//! method 404 `Not Found`. Error descriptions seen from the real API are used where known
//! (`STARS_INVOICE_INVALID`, `CURRENCY_TOTAL_AMOUNT_INVALID`, `CHARGE_ALREADY_REFUNDED`...);
//! the others follow the same style.
//!
//! Implemented: `getMe`, `getUpdates` (offset confirms, `limit`, long polling that returns
//! as soon as an update arrives, a persistent `allowed_updates` filter), `sendMessage`,
//! `sendInvoice`, `createInvoiceLink`, `answerPreCheckoutQuery`, `refundStarPayment`,
//! `getStarTransactions` (Stars only: other currencies are refused). Test controls play
//! the user: [`FakeTelegram::pay_invoice`] walks the checkout, `renew_subscription`
//! charges a Stars subscription again; knobs inject 429s and raw updates.

use super::params::{BadParam, Params};
use super::{Served, serve};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// The only subscription period the Bot API accepts (30 days).
pub const SUBSCRIPTION_PERIOD: i64 = 2_592_000;
/// Update types Telegram leaves out unless asked for them explicitly.
const OPT_IN_UPDATES: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];
const MAX_TEXT: usize = 4096;

/// A running fake Bot API for one bot; stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    served: Served,
    shared: Arc<Shared>,
}

/// A message the bot sent, as recorded by the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// Id within the chat.
    pub message_id: i64,
    /// Unix time.
    pub date: i64,
    /// Text of a text message.
    pub text: Option<String>,
    /// The `invoice` object of an invoice message.
    pub invoice: Option<Value>,
    /// Everything the bot sent in the request (keyboards, parse mode...).
    pub request: Value,
}

/// How a checkout started with [`FakeTelegram::pay_invoice`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// The bot accepted; a `successful_payment` message was queued with this charge id.
    Paid {
        /// The new, unique `telegram_payment_charge_id`.
        charge_id: String,
    },
    /// The bot declined with this message.
    Declined {
        /// What the user was shown.
        error_message: String,
    },
    /// The bot did not answer in time; nothing was charged.
    TimedOut,
}

#[derive(Debug)]
struct Shared {
    token: String,
    bot_id: i64,
    state: Mutex<Inner>,
    /// Woken whenever an update is queued (long polls wait on it).
    updates_changed: Notify,
}

#[derive(Debug)]
struct Inner {
    next_update_id: i64,
    queue: VecDeque<Value>,
    allowed_updates: Vec<String>,
    chats: BTreeMap<i64, Chat>,
    invoices: Vec<InvoiceRecord>,
    pending_checkouts: HashMap<String, oneshot::Sender<CheckoutAnswer>>,
    next_query: u64,
    charges: BTreeMap<String, Charge>,
    next_charge: u64,
    transactions: Vec<Value>,
    rate_limit: Option<(u32, u64)>,
    precheckout_timeout: Duration,
}

#[derive(Debug, Default)]
struct Chat {
    last_message_id: i64,
    sent: Vec<SentMessage>,
}

#[derive(Debug, Clone)]
struct InvoiceRecord {
    payload: String,
    link: Option<String>,
    currency: String,
    amount: i64,
    subscription_period: Option<i64>,
}

#[derive(Debug, Clone)]
struct Charge {
    user_id: i64,
    currency: String,
    amount: i64,
    payload: String,
    provider_charge_id: String,
    refunded: bool,
    subscription_period: Option<i64>,
    subscription_expires: Option<i64>,
}

#[derive(Debug)]
struct CheckoutAnswer {
    ok: bool,
    error_message: Option<String>,
}

/// A Bot API error; HTTP status = `code`.
#[derive(Debug)]
struct ApiError {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn bad_request(what: &str) -> Self {
        Self {
            code: 400,
            description: format!("Bad Request: {what}"),
            retry_after: None,
        }
    }

    fn required(param: &str) -> Self {
        Self::bad_request(&format!("parameter \"{param}\" is required"))
    }
}

impl From<BadParam> for ApiError {
    fn from(e: BadParam) -> Self {
        ApiError::bad_request(&format!("invalid {} specified", e.0))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = json!({
            "ok": false,
            "error_code": self.code,
            "description": self.description,
        });
        if let Some(secs) = self.retry_after {
            body["parameters"] = json!({ "retry_after": secs });
        }
        (status, axum::Json(body)).into_response()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

fn user_json(user_id: i64) -> Value {
    json!({
        "id": user_id,
        "is_bot": false,
        "first_name": format!("User {user_id}"),
        "language_code": "en",
    })
}

fn chat_json(chat_id: i64) -> Value {
    if chat_id > 0 {
        json!({"id": chat_id, "type": "private", "first_name": format!("User {chat_id}")})
    } else {
        json!({"id": chat_id, "type": "group", "title": format!("Group {chat_id}")})
    }
}

/// The update type: its one key besides `update_id`.
fn update_type(update: &Value) -> &str {
    update
        .as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != "update_id"))
        .map_or("", String::as_str)
}

impl Inner {
    fn push_update(&mut self, mut update: serde_json::Map<String, Value>) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        update.insert("update_id".into(), json!(id));
        self.queue.push_back(Value::Object(update));
        id
    }

    fn push(&mut self, kind: &str, content: Value) -> i64 {
        let mut update = serde_json::Map::new();
        update.insert(kind.into(), content);
        self.push_update(update)
    }

    fn chat(&mut self, chat_id: i64) -> &mut Chat {
        self.chats.entry(chat_id).or_default()
    }

    /// A service message from `user_id` in their private chat, queued as an update.
    fn push_user_message(&mut self, user_id: i64, field: &str, content: Value) -> i64 {
        let chat = self.chat(user_id);
        chat.last_message_id += 1;
        let mut message = json!({
            "message_id": chat.last_message_id,
            "from": user_json(user_id),
            "chat": chat_json(user_id),
            "date": now(),
        });
        message[field] = content;
        self.push("message", message)
    }

    fn is_allowed(&self, kind: &str) -> bool {
        if self.allowed_updates.is_empty() {
            !OPT_IN_UPDATES.contains(&kind)
        } else {
            kind.is_empty() || self.allowed_updates.iter().any(|a| a == kind)
        }
    }

    fn new_charge_id(&mut self) -> String {
        self.next_charge += 1;
        format!("stxFAKE{:06}{}", self.next_charge, random_hex(12))
    }

    /// Records a successful charge and queues its `successful_payment` message.
    fn charge(
        &mut self,
        user_id: i64,
        invoice: &InvoiceRecord,
        recurring: Option<(bool, i64)>,
    ) -> String {
        let charge_id = self.new_charge_id();
        let provider_charge_id = format!("fake-provider-{}", random_hex(8));
        let mut payment = json!({
            "currency": invoice.currency,
            "total_amount": invoice.amount,
            "invoice_payload": invoice.payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": provider_charge_id,
        });
        if let Some((first, expires)) = recurring {
            payment["is_recurring"] = json!(true);
            payment["is_first_recurring"] = json!(first);
            payment["subscription_expiration_date"] = json!(expires);
        }
        self.charges.insert(
            charge_id.clone(),
            Charge {
                user_id,
                currency: invoice.currency.clone(),
                amount: invoice.amount,
                payload: invoice.payload.clone(),
                provider_charge_id,
                refunded: false,
                subscription_period: invoice.subscription_period,
                subscription_expires: recurring.map(|(_, e)| e),
            },
        );
        let mut source = json!({
            "type": "user",
            "user": user_json(user_id),
            "invoice_payload": invoice.payload,
        });
        if let Some(period) = invoice.subscription_period {
            source["subscription_period"] = json!(period);
        }
        self.transactions.push(json!({
            "id": charge_id,
            "amount": invoice.amount,
            "date": now(),
            "source": source,
        }));
        self.push_user_message(user_id, "successful_payment", payment);
        charge_id
    }

    fn find_invoice(&self, payload_or_link: &str) -> Option<InvoiceRecord> {
        self.invoices
            .iter()
            .rev()
            .find(|i| i.link.as_deref() == Some(payload_or_link) || i.payload == payload_or_link)
            .cloned()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn me(&self) -> Value {
        json!({
            "id": self.bot_id,
            "is_bot": true,
            "first_name": "MRJBot Test",
            "username": "mrjbot_test_bot",
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        })
    }

    /// Records an outgoing message in `chat_id` and returns the Message object.
    fn record_sent(&self, chat_id: i64, fields: Value, request: Value) -> Value {
        let mut st = self.lock();
        let chat = st.chat(chat_id);
        chat.last_message_id += 1;
        let date = now();
        let mut message = json!({
            "message_id": chat.last_message_id,
            "from": self.me(),
            "chat": chat_json(chat_id),
            "date": date,
        });
        if let (Some(m), Value::Object(extra)) = (message.as_object_mut(), &fields) {
            m.extend(extra.clone());
        }
        chat.sent.push(SentMessage {
            message_id: chat.last_message_id,
            date,
            text: fields
                .get("text")
                .and_then(Value::as_str)
                .map(str::to_owned),
            invoice: fields.get("invoice").cloned(),
            request,
        });
        message
    }

    fn notify(&self) {
        self.updates_changed.notify_waiters();
    }
}

fn chat_id(p: &Params) -> Result<i64, ApiError> {
    match p.get("chat_id") {
        None => Err(ApiError::bad_request("chat_id is empty")),
        Some(_) => match p.i64("chat_id") {
            Ok(Some(id)) if id != 0 => Ok(id),
            // `@channelname` targets are not modelled: the fake knows no public chats.
            _ => Err(ApiError::bad_request("chat not found")),
        },
    }
}

/// The invoice fields shared by `sendInvoice` and `createInvoiceLink` (payments.md §3.1).
fn parse_invoice(p: &Params) -> Result<(InvoiceRecord, Value), ApiError> {
    let title = p.str("title")?.ok_or_else(|| ApiError::required("title"))?;
    if !(1..=32).contains(&title.chars().count()) {
        return Err(ApiError::bad_request("INVOICE_TITLE_INVALID"));
    }
    let description = p
        .str("description")?
        .ok_or_else(|| ApiError::required("description"))?;
    if !(1..=255).contains(&description.chars().count()) {
        return Err(ApiError::bad_request("INVOICE_DESCRIPTION_INVALID"));
    }
    let payload = p
        .str("payload")?
        .ok_or_else(|| ApiError::required("payload"))?;
    if !(1..=128).contains(&payload.len()) {
        return Err(ApiError::bad_request("INVOICE_PAYLOAD_INVALID"));
    }
    let currency = p
        .str("currency")?
        .ok_or_else(|| ApiError::required("currency"))?;
    if currency != "XTR" {
        // This fake sells Stars only; real provider payments need a provider token and
        // a payment provider it does not model.
        return Err(ApiError::bad_request("CURRENCY_INVALID"));
    }
    if p.str("provider_token")?.is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request("PROVIDER_TOKEN_INVALID"));
    }
    if p.get("max_tip_amount").is_some() || p.get("suggested_tip_amounts").is_some() {
        return Err(ApiError::bad_request("STARS_INVOICE_INVALID"));
    }
    let prices = p
        .json("prices")
        .map_err(|_| ApiError::bad_request("can't parse prices JSON object"))?
        .ok_or_else(|| ApiError::required("prices"))?;
    let Some(prices) = prices.as_array() else {
        return Err(ApiError::bad_request("can't parse prices JSON object"));
    };
    let [price] = prices.as_slice() else {
        return Err(ApiError::bad_request("STARS_INVOICE_INVALID"));
    };
    let label_ok = price
        .get("label")
        .and_then(Value::as_str)
        .is_some_and(|l| !l.is_empty());
    let Some(amount) = price
        .get("amount")
        .and_then(Value::as_i64)
        .filter(|_| label_ok)
    else {
        return Err(ApiError::bad_request("can't parse prices JSON object"));
    };
    if amount < 1 {
        return Err(ApiError::bad_request("CURRENCY_TOTAL_AMOUNT_INVALID"));
    }
    let invoice = json!({
        "title": title,
        "description": description,
        "start_parameter": "",
        "currency": currency,
        "total_amount": amount,
    });
    Ok((
        InvoiceRecord {
            payload,
            link: None,
            currency,
            amount,
            subscription_period: None,
        },
        invoice,
    ))
}

async fn get_updates(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let offset = p.i64("offset")?.unwrap_or(0);
    let limit = usize::try_from(p.i64("limit")?.unwrap_or(100).clamp(1, 100)).unwrap_or(100);
    let timeout = u64::try_from(p.i64("timeout")?.unwrap_or(0).max(0)).unwrap_or(0);
    let allowed = match p.json("allowed_updates")? {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::bad_request("can't parse allowed_updates"))?,
        ),
        Some(_) => return Err(ApiError::bad_request("can't parse allowed_updates")),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        // Registered before looking at the queue, so an update queued in between still
        // wakes this poll.
        let notified = shared.updates_changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut guard = shared.lock();
            let st = &mut *guard;
            if let Some(list) = &allowed {
                st.allowed_updates = list.clone();
            }
            if offset < 0 {
                let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
                while st.queue.len() > keep {
                    st.queue.pop_front();
                }
            } else {
                st.queue.retain(|u| {
                    u.get("update_id")
                        .and_then(Value::as_i64)
                        .is_some_and(|id| id >= offset)
                });
            }
            // Telegram never delivers (or keeps) updates the bot did not ask for.
            let queue = std::mem::take(&mut st.queue);
            st.queue = queue
                .into_iter()
                .filter(|u| st.is_allowed(update_type(u)))
                .collect();
            let batch: Vec<Value> = st.queue.iter().take(limit).cloned().collect();
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Value::Array(batch));
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn send_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(p)?;
    let text = p.str("text")?.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(ApiError::bad_request("message text is empty"));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request("message is too long"));
    }
    Ok(shared.record_sent(chat_id, json!({ "text": text }), p.to_value()))
}

fn send_invoice(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let chat_id = chat_id(p)?;
    let (record, invoice) = parse_invoice(p)?;
    let message = shared.record_sent(chat_id, json!({ "invoice": invoice }), p.to_value());
    shared.lock().invoices.push(record);
    Ok(message)
}

fn create_invoice_link(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let (mut record, _) = parse_invoice(p)?;
    if let Some(period) = p.i64("subscription_period")? {
        if period != SUBSCRIPTION_PERIOD {
            return Err(ApiError::bad_request("SUBSCRIPTION_PERIOD_INVALID"));
        }
        record.subscription_period = Some(period);
    }
    let link = format!("https://t.me/$fake{}", random_hex(12));
    record.link = Some(link.clone());
    shared.lock().invoices.push(record);
    Ok(json!(link))
}

fn answer_pre_checkout_query(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let id = p
        .str("pre_checkout_query_id")?
        .ok_or_else(|| ApiError::required("pre_checkout_query_id"))?;
    let ok = p.bool("ok")?.ok_or_else(|| ApiError::required("ok"))?;
    let error_message = p.str("error_message")?.filter(|m| !m.trim().is_empty());
    if !ok && error_message.is_none() {
        return Err(ApiError::bad_request("ERROR_MESSAGE_EMPTY"));
    }
    let too_old = || {
        ApiError::bad_request(
            "query is too old and response timeout expired or query ID is invalid",
        )
    };
    // Sent under the lock, so `pay_invoice` sees either the answer or the pending query.
    let mut st = shared.lock();
    let tx = st.pending_checkouts.remove(&id).ok_or_else(too_old)?;
    tx.send(CheckoutAnswer { ok, error_message })
        .map_err(|_| too_old())?;
    Ok(json!(true))
}

fn refund_star_payment(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let user_id = p
        .i64("user_id")?
        .ok_or_else(|| ApiError::required("user_id"))?;
    let charge_id = p
        .str("telegram_payment_charge_id")?
        .ok_or_else(|| ApiError::required("telegram_payment_charge_id"))?;
    let mut st = shared.lock();
    let charge = st
        .charges
        .get_mut(&charge_id)
        .ok_or_else(|| ApiError::bad_request("CHARGE_NOT_FOUND"))?;
    if charge.user_id != user_id {
        return Err(ApiError::bad_request("USER_ID_INVALID"));
    }
    if charge.refunded {
        return Err(ApiError::bad_request("CHARGE_ALREADY_REFUNDED"));
    }
    charge.refunded = true;
    let charge = charge.clone();
    st.transactions.push(json!({
        "id": format!("refund-{charge_id}"),
        "amount": charge.amount,
        "date": now(),
        "receiver": {"type": "user", "user": user_json(user_id), "invoice_payload": charge.payload},
    }));
    st.push_user_message(
        user_id,
        "refunded_payment",
        json!({
            "currency": charge.currency,
            "total_amount": charge.amount,
            "invoice_payload": charge.payload,
            "telegram_payment_charge_id": charge_id,
            "provider_payment_charge_id": charge.provider_charge_id,
        }),
    );
    drop(st);
    shared.notify();
    Ok(json!(true))
}

fn get_star_transactions(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let offset = p.i64("offset")?.unwrap_or(0);
    let limit = p.i64("limit")?.unwrap_or(100);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must be non-negative"));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    let st = shared.lock();
    let page: Vec<Value> = st
        .transactions
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .cloned()
        .collect();
    Ok(json!({ "transactions": page }))
}

/// The method table. A new Bot API method is one more arm here.
async fn dispatch(shared: &Shared, method: &str, p: &Params) -> Result<Value, ApiError> {
    match method.to_ascii_lowercase().as_str() {
        "getme" => Ok(shared.me()),
        "getupdates" => get_updates(shared, p).await,
        "sendmessage" => send_message(shared, p),
        "sendinvoice" => send_invoice(shared, p),
        "createinvoicelink" => create_invoice_link(shared, p),
        "answerprecheckoutquery" => answer_pre_checkout_query(shared, p),
        "refundstarpayment" => refund_star_payment(shared, p),
        "getstartransactions" => get_star_transactions(shared, p),
        _ => Err(not_found()),
    }
}

fn not_found() -> ApiError {
    ApiError {
        code: 404,
        description: "Not Found".into(),
        retry_after: None,
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return not_found().into_response();
    };
    if token != shared.token {
        return ApiError {
            code: 401,
            description: "Unauthorized".into(),
            retry_after: None,
        }
        .into_response();
    }
    let limited = {
        let mut st = shared.lock();
        match st.rate_limit {
            Some((calls, secs)) if calls > 0 => {
                st.rate_limit = (calls > 1).then_some((calls - 1, secs));
                Some(secs)
            }
            _ => None,
        }
    };
    if let Some(secs) = limited {
        return ApiError {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs),
        }
        .into_response();
    }
    let params = match Params::from_request(&headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(e) => return ApiError::bad_request(&e).into_response(),
    };
    match dispatch(&shared, &method, &params).await {
        Ok(result) => axum::Json(json!({"ok": true, "result": result})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn fallback() -> Response {
    not_found().into_response()
}

impl FakeTelegram {
    /// Starts the fake for the bot with `token` (`123456:ABC...`; the digits before the
    /// colon become the bot's user id).
    pub async fn start(token: &str) -> anyhow::Result<FakeTelegram> {
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1);
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            state: Mutex::new(Inner {
                next_update_id: 1,
                queue: VecDeque::new(),
                allowed_updates: Vec::new(),
                chats: BTreeMap::new(),
                invoices: Vec::new(),
                pending_checkouts: HashMap::new(),
                next_query: 0,
                charges: BTreeMap::new(),
                next_charge: 0,
                transactions: Vec::new(),
                rate_limit: None,
                precheckout_timeout: Duration::from_secs(10),
            }),
            updates_changed: Notify::new(),
        });
        let router = Router::new()
            .route("/{bot}/{method}", any(api))
            .fallback(fallback)
            .with_state(shared.clone());
        let served = serve(router).await.context("starting the fake Telegram")?;
        Ok(FakeTelegram { served, shared })
    }

    /// `http://127.0.0.1:PORT`: the `api_url` for the client.
    pub fn api_url(&self) -> &str {
        &self.served.base_url
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// What the bot has sent to `chat_id`, oldest first.
    pub fn messages(&self, chat_id: i64) -> Vec<SentMessage> {
        self.shared
            .lock()
            .chats
            .get(&chat_id)
            .map(|c| c.sent.clone())
            .unwrap_or_default()
    }

    /// How long [`FakeTelegram::pay_invoice`] waits for `answerPreCheckoutQuery`
    /// (Telegram: 10 s).
    pub fn set_precheckout_timeout(&self, timeout: Duration) {
        self.shared.lock().precheckout_timeout = timeout;
    }

    /// The next `calls` API calls answer 429 with `retry_after` seconds.
    pub fn rate_limit_next(&self, calls: u32, retry_after_secs: u64) {
        self.shared.lock().rate_limit = (calls > 0).then_some((calls, retry_after_secs));
    }

    /// Queues a raw update (any JSON object; `update_id` is assigned). Returns its id.
    pub fn push_update(&self, update: Value) -> anyhow::Result<i64> {
        let Value::Object(mut map) = update else {
            anyhow::bail!("an update must be a JSON object");
        };
        map.remove("update_id");
        let id = self.shared.lock().push_update(map);
        self.shared.notify();
        Ok(id)
    }

    /// User `user_id` pays the invoice sent with `payload` (or the link from
    /// `createInvoiceLink`): a `pre_checkout_query` is queued and the bot has the
    /// pre-checkout timeout to answer. On `ok` a `successful_payment` message with a fresh
    /// charge id is queued; on a decline or no answer nothing is charged.
    pub async fn pay_invoice(
        &self,
        user_id: i64,
        payload_or_link: &str,
    ) -> anyhow::Result<PayOutcome> {
        anyhow::ensure!(user_id > 0, "a user id is positive");
        let (mut rx, query_id, invoice, timeout) = {
            let mut st = self.shared.lock();
            let invoice = st
                .find_invoice(payload_or_link)
                .with_context(|| format!("no invoice with payload or link `{payload_or_link}`"))?;
            st.next_query += 1;
            let query_id = format!("{}{:08}", self.shared.bot_id, st.next_query);
            let (tx, rx) = oneshot::channel();
            st.pending_checkouts.insert(query_id.clone(), tx);
            st.push(
                "pre_checkout_query",
                json!({
                    "id": query_id,
                    "from": user_json(user_id),
                    "currency": invoice.currency,
                    "total_amount": invoice.amount,
                    "invoice_payload": invoice.payload,
                }),
            );
            (rx, query_id, invoice, st.precheckout_timeout)
        };
        self.shared.notify();
        let answer = match tokio::time::timeout(timeout, &mut rx).await {
            Ok(Ok(answer)) => answer,
            _ => {
                let mut st = self.shared.lock();
                // Still pending: the bot never answered. Otherwise the answer was sent
                // under the lock just before the timeout fired and is waiting in `rx`.
                if st.pending_checkouts.remove(&query_id).is_some() {
                    return Ok(PayOutcome::TimedOut);
                }
                drop(st);
                match rx.try_recv() {
                    Ok(answer) => answer,
                    Err(_) => return Ok(PayOutcome::TimedOut),
                }
            }
        };
        if !answer.ok {
            return Ok(PayOutcome::Declined {
                error_message: answer.error_message.unwrap_or_default(),
            });
        }
        let recurring = invoice
            .subscription_period
            .map(|period| (true, now() + period));
        let charge_id = self.shared.lock().charge(user_id, &invoice, recurring);
        self.shared.notify();
        Ok(PayOutcome::Paid { charge_id })
    }

    /// Telegram renews a Stars subscription first paid with `charge_id`: a new charge and
    /// a `successful_payment` with `is_recurring` and the next expiration date. Returns
    /// the new charge id.
    pub fn renew_subscription(&self, charge_id: &str) -> anyhow::Result<String> {
        let mut st = self.shared.lock();
        let charge = st
            .charges
            .get(charge_id)
            .cloned()
            .with_context(|| format!("no charge `{charge_id}`"))?;
        anyhow::ensure!(!charge.refunded, "charge `{charge_id}` was refunded");
        let (Some(period), Some(expires)) =
            (charge.subscription_period, charge.subscription_expires)
        else {
            anyhow::bail!("charge `{charge_id}` is not a subscription");
        };
        let invoice = InvoiceRecord {
            payload: charge.payload.clone(),
            link: None,
            currency: charge.currency.clone(),
            amount: charge.amount,
            subscription_period: Some(period),
        };
        let new_id = st.charge(charge.user_id, &invoice, Some((false, expires + period)));
        drop(st);
        self.shared.notify();
        Ok(new_id)
    }
}
