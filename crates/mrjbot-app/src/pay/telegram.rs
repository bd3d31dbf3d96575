//! The payment part of the Telegram Bot API (Stars, currency `XTR`; payments.md §3):
//! invoices, the pre-checkout answer, refunds, the Stars ledger, and the `getUpdates`
//! polling the checkout needs.
//!
//! Guarantees: invoice fields are checked against the Bot API's limits before anything is
//! sent (a bad one is refused locally with code `400`, like Telegram would); Telegram's
//! error object becomes `Refused` with its `error_code` and `description`, or
//! `RateLimited` with its `retry_after`; every update is returned, the ones this module
//! does not model as [`UpdateKind::Other`], so a poller can always move its offset on.
//! The bot token is part of every URL, so transport errors are reported without the URL.

use super::{GatewayError, http_client, join_url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// Gateway name in errors and logs.
pub const GATEWAY: &str = "telegram";
/// The public Bot API host.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";
/// Currency code of Telegram Stars.
pub const STARS: &str = "XTR";
/// The only subscription period the Bot API accepts: 30 days, in seconds.
pub const SUBSCRIPTION_PERIOD_30_DAYS: u32 = 2_592_000;
/// Most transactions `getStarTransactions` returns per call.
pub const MAX_TRANSACTIONS_PAGE: u32 = 100;
/// Used when a 429 comes without `retry_after` (not seen in practice; the wait must
/// still be positive so a retry loop cannot spin).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Where and how to reach the Bot API.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The bot token from @BotFather.
    pub token: String,
    /// API host ([`DEFAULT_API_URL`] unless testing or using a local Bot API server).
    pub api_url: String,
    /// Time allowed for one call; long polls get their poll time on top.
    pub timeout: Duration,
}

impl TelegramConfig {
    /// Settings for the public Bot API with a 15 s timeout.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            api_url: DEFAULT_API_URL.into(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The bot itself, from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BotUser {
    /// Bot user id.
    pub id: i64,
    /// Always true for a bot token.
    pub is_bot: bool,
    /// Display name.
    pub first_name: String,
    /// `@username` without the `@`.
    pub username: Option<String>,
}

/// A Stars invoice (one price, whole stars).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarsInvoice {
    /// Product name, 1-32 characters.
    pub title: String,
    /// Product description, 1-255 characters.
    pub description: String,
    /// Our order reference, 1-128 bytes; never shown to the user.
    pub payload: String,
    /// Price in stars, at least 1.
    pub amount_stars: i64,
    /// Renewal period in seconds for a subscription ([`SUBSCRIPTION_PERIOD_30_DAYS`]);
    /// only `create_invoice_link` can make one.
    pub subscription_period: Option<u32>,
}

impl StarsInvoice {
    /// Checks the Bot API's limits (payments.md §3.1).
    pub fn validate(&self) -> Result<(), GatewayError> {
        let title = self.title.chars().count();
        if !(1..=32).contains(&title) {
            return Err(local_refusal(&format!(
                "invoice title must have 1-32 characters, has {title}"
            )));
        }
        let description = self.description.chars().count();
        if !(1..=255).contains(&description) {
            return Err(local_refusal(&format!(
                "invoice description must have 1-255 characters, has {description}"
            )));
        }
        let payload = self.payload.len();
        if !(1..=128).contains(&payload) {
            return Err(local_refusal(&format!(
                "invoice payload must have 1-128 bytes, has {payload}"
            )));
        }
        if self.amount_stars < 1 {
            return Err(local_refusal(&format!(
                "invoice amount must be at least 1 star, is {}",
                self.amount_stars
            )));
        }
        Ok(())
    }

    fn body(&self) -> serde_json::Map<String, Value> {
        let mut body = serde_json::Map::new();
        body.insert("title".into(), json!(self.title));
        body.insert("description".into(), json!(self.description));
        body.insert("payload".into(), json!(self.payload));
        body.insert("currency".into(), json!(STARS));
        body.insert(
            "prices".into(),
            json!([{ "label": self.title, "amount": self.amount_stars }]),
        );
        body
    }
}

/// One entry of the bot's Stars ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarTransaction {
    /// Transaction id; for an incoming payment, its `telegram_payment_charge_id`.
    pub id: String,
    /// Whole stars.
    pub amount: i64,
    /// Unix time.
    pub date: i64,
    /// The paying user, for incoming payments.
    pub source_user_id: Option<i64>,
    /// The user who got stars back, for refunds.
    pub receiver_user_id: Option<i64>,
    /// The invoice payload of the payment or refund, when Telegram reports it.
    pub invoice_payload: Option<String>,
}

#[derive(Deserialize)]
struct TransactionWire {
    id: String,
    amount: i64,
    date: i64,
    source: Option<PartnerWire>,
    receiver: Option<PartnerWire>,
}

#[derive(Deserialize)]
struct PartnerWire {
    user: Option<IdOnly>,
    invoice_payload: Option<String>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: i64,
}

impl From<TransactionWire> for StarTransaction {
    fn from(w: TransactionWire) -> Self {
        let source_user_id = w
            .source
            .as_ref()
            .and_then(|p| p.user.as_ref())
            .map(|u| u.id);
        let receiver_user_id = w
            .receiver
            .as_ref()
            .and_then(|p| p.user.as_ref())
            .map(|u| u.id);
        let invoice_payload = w
            .source
            .and_then(|p| p.invoice_payload)
            .or_else(|| w.receiver.and_then(|p| p.invoice_payload));
        Self {
            id: w.id,
            amount: w.amount,
            date: w.date,
            source_user_id,
            receiver_user_id,
            invoice_payload,
        }
    }
}

#[derive(Deserialize)]
struct TransactionsWire {
    transactions: Vec<TransactionWire>,
}

/// One update from `getUpdates`.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Confirm it by polling with `offset = update_id + 1`.
    pub update_id: i64,
    /// What happened.
    pub kind: UpdateKind,
}

/// The updates the money path acts on; everything else is kept as [`UpdateKind::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateKind {
    /// The user pressed Pay: answer with `answer_pre_checkout_query` within 10 s.
    PreCheckoutQuery {
        /// Query id to answer.
        id: String,
        /// The paying user.
        from_id: i64,
        /// `XTR` for Stars.
        currency: String,
        /// Whole stars for XTR.
        total_amount: i64,
        /// Our order reference.
        invoice_payload: String,
    },
    /// The payment went through: the only signal to provision on.
    SuccessfulPayment {
        /// The chat the service message is in (the user's private chat).
        chat_id: i64,
        /// The paying user.
        from_id: i64,
        /// `XTR` for Stars.
        currency: String,
        /// Whole stars for XTR.
        total_amount: i64,
        /// Our order reference.
        invoice_payload: String,
        /// The unique key of the payment; needed for refunds.
        telegram_payment_charge_id: String,
        /// The provider's id (empty or absent for Stars).
        provider_payment_charge_id: String,
        /// A subscription renewal (or its first payment).
        is_recurring: bool,
        /// The first payment of a subscription.
        is_first_recurring: bool,
        /// Unix time the paid subscription period ends.
        subscription_expiration_date: Option<i64>,
    },
    /// A payment was refunded.
    RefundedPayment {
        /// The chat the service message is in.
        chat_id: i64,
        /// The user, when the message names one.
        from_id: Option<i64>,
        /// `XTR` for Stars.
        currency: String,
        /// Whole stars for XTR.
        total_amount: i64,
        /// Our order reference.
        invoice_payload: String,
        /// The refunded payment's charge id.
        telegram_payment_charge_id: String,
        /// The provider's id, if any.
        provider_payment_charge_id: Option<String>,
    },
    /// Any other update, or a payment update this module could not read, kept whole.
    Other(Value),
}

#[derive(Deserialize)]
struct PreCheckoutWire {
    id: String,
    from: IdOnly,
    currency: String,
    total_amount: i64,
    invoice_payload: String,
}

#[derive(Deserialize)]
struct MessageWire {
    chat: IdOnly,
    from: Option<IdOnly>,
    successful_payment: Option<SuccessfulPaymentWire>,
    refunded_payment: Option<RefundedPaymentWire>,
}

#[derive(Deserialize)]
struct SuccessfulPaymentWire {
    currency: String,
    total_amount: i64,
    invoice_payload: String,
    telegram_payment_charge_id: String,
    #[serde(default)]
    provider_payment_charge_id: String,
    #[serde(default)]
    is_recurring: bool,
    #[serde(default)]
    is_first_recurring: bool,
    subscription_expiration_date: Option<i64>,
}

#[derive(Deserialize)]
struct RefundedPaymentWire {
    currency: String,
    total_amount: i64,
    invoice_payload: String,
    telegram_payment_charge_id: String,
    provider_payment_charge_id: Option<String>,
}

/// Reads one update. Only a missing `update_id` is an error (without it a poller could
/// not confirm the update); a payment update that does not read becomes `Other`.
pub fn parse_update(value: Value) -> Result<Update, GatewayError> {
    let Some(update_id) = value.get("update_id").and_then(Value::as_i64) else {
        return Err(GatewayError::unexpected(
            GATEWAY,
            "update without update_id",
            value.to_string().as_bytes(),
        ));
    };
    let kind = match known_kind(&value) {
        Some(Ok(kind)) => kind,
        Some(Err(e)) => {
            tracing::warn!(update_id, error = %e, "payment update not understood; kept as Other");
            UpdateKind::Other(value)
        }
        None => UpdateKind::Other(value),
    };
    Ok(Update { update_id, kind })
}

fn known_kind(value: &Value) -> Option<Result<UpdateKind, serde_json::Error>> {
    if let Some(q) = value.get("pre_checkout_query") {
        return Some(
            PreCheckoutWire::deserialize(q).map(|q| UpdateKind::PreCheckoutQuery {
                id: q.id,
                from_id: q.from.id,
                currency: q.currency,
                total_amount: q.total_amount,
                invoice_payload: q.invoice_payload,
            }),
        );
    }
    let message = value.get("message")?;
    if message.get("successful_payment").is_none() && message.get("refunded_payment").is_none() {
        return None;
    }
    Some(MessageWire::deserialize(message).and_then(message_kind))
}

fn message_kind(m: MessageWire) -> Result<UpdateKind, serde_json::Error> {
    use serde::de::Error;
    if let Some(p) = m.successful_payment {
        let from = m
            .from
            .ok_or_else(|| serde_json::Error::custom("successful_payment without from"))?;
        return Ok(UpdateKind::SuccessfulPayment {
            chat_id: m.chat.id,
            from_id: from.id,
            currency: p.currency,
            total_amount: p.total_amount,
            invoice_payload: p.invoice_payload,
            telegram_payment_charge_id: p.telegram_payment_charge_id,
            provider_payment_charge_id: p.provider_payment_charge_id,
            is_recurring: p.is_recurring,
            is_first_recurring: p.is_first_recurring,
            subscription_expiration_date: p.subscription_expiration_date,
        });
    }
    let p = m
        .refunded_payment
        .ok_or_else(|| serde_json::Error::custom("no payment in the message"))?;
    Ok(UpdateKind::RefundedPayment {
        chat_id: m.chat.id,
        from_id: m.from.map(|f| f.id),
        currency: p.currency,
        total_amount: p.total_amount,
        invoice_payload: p.invoice_payload,
        telegram_payment_charge_id: p.telegram_payment_charge_id,
        provider_payment_charge_id: p.provider_payment_charge_id,
    })
}

#[derive(Deserialize)]
struct SentMessage {
    message_id: i64,
}

/// The Bot API client for the money path.
#[derive(Debug, Clone)]
pub struct TelegramClient {
    config: TelegramConfig,
    http: reqwest::Client,
}

impl TelegramClient {
    /// A client; `NotConfigured` without a token.
    pub fn new(config: TelegramConfig) -> Result<Self, GatewayError> {
        if config.token.trim().is_empty() {
            return Err(GatewayError::NotConfigured { gateway: GATEWAY });
        }
        let http = http_client(config.timeout);
        Ok(Self { config, http })
    }

    /// The bot behind the token.
    pub async fn get_me(&self) -> Result<BotUser, GatewayError> {
        self.call("getMe", &json!({}), Duration::ZERO).await
    }

    /// A `https://t.me/$...` link that opens the invoice; the only way to sell a Stars
    /// subscription (`subscription_period`).
    pub async fn create_invoice_link(
        &self,
        invoice: &StarsInvoice,
    ) -> Result<String, GatewayError> {
        invoice.validate()?;
        let mut body = invoice.body();
        if let Some(period) = invoice.subscription_period {
            body.insert("subscription_period".into(), json!(period));
        }
        self.call("createInvoiceLink", &body, Duration::ZERO).await
    }

    /// Sends an invoice message to `chat_id`; returns its message id. A subscription is
    /// refused locally: `sendInvoice` would silently sell a one-time payment instead.
    pub async fn send_invoice(
        &self,
        chat_id: i64,
        invoice: &StarsInvoice,
    ) -> Result<i64, GatewayError> {
        invoice.validate()?;
        if invoice.subscription_period.is_some() {
            return Err(local_refusal(
                "subscriptions can only be sold with create_invoice_link",
            ));
        }
        let mut body = invoice.body();
        body.insert("chat_id".into(), json!(chat_id));
        let sent: SentMessage = self.call("sendInvoice", &body, Duration::ZERO).await?;
        Ok(sent.message_id)
    }

    /// Answers a pre-checkout query; `error_message` (shown to the user) is required when
    /// `ok` is false.
    pub async fn answer_pre_checkout_query(
        &self,
        query_id: &str,
        ok: bool,
        error_message: Option<&str>,
    ) -> Result<(), GatewayError> {
        let mut body = json!({ "pre_checkout_query_id": query_id, "ok": ok });
        match error_message.map(str::trim) {
            Some(m) if !m.is_empty() => body["error_message"] = json!(m),
            _ if !ok => {
                return Err(local_refusal(
                    "error_message is required when declining a checkout",
                ));
            }
            _ => {}
        }
        self.call_true("answerPreCheckoutQuery", &body).await
    }

    /// Refunds a Stars payment to the user who made it.
    pub async fn refund_star_payment(
        &self,
        user_id: i64,
        telegram_payment_charge_id: &str,
    ) -> Result<(), GatewayError> {
        let body = json!({
            "user_id": user_id,
            "telegram_payment_charge_id": telegram_payment_charge_id,
        });
        self.call_true("refundStarPayment", &body).await
    }

    /// A page of the bot's Stars ledger, oldest first; `limit` is 1..=100.
    pub async fn get_star_transactions(
        &self,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<StarTransaction>, GatewayError> {
        if !(1..=MAX_TRANSACTIONS_PAGE).contains(&limit) {
            return Err(local_refusal(&format!(
                "limit must be 1-{MAX_TRANSACTIONS_PAGE}, is {limit}"
            )));
        }
        let body = json!({ "offset": offset, "limit": limit });
        let page: TransactionsWire = self
            .call("getStarTransactions", &body, Duration::ZERO)
            .await?;
        Ok(page.transactions.into_iter().map(Into::into).collect())
    }

    /// Sends a plain text message; returns its message id.
    pub async fn send_message(&self, chat_id: i64, text: &str) -> Result<i64, GatewayError> {
        let body = json!({ "chat_id": chat_id, "text": text });
        let sent: SentMessage = self.call("sendMessage", &body, Duration::ZERO).await?;
        Ok(sent.message_id)
    }

    /// Long-polls for updates. `offset` confirms every update below it; `timeout_s` is how
    /// long Telegram may hold the request open; `allowed_updates` replaces the bot's
    /// filter (empty = Telegram's default set). A checkout needs `pre_checkout_query` and
    /// `message` in it.
    pub async fn get_updates(
        &self,
        offset: i64,
        timeout_s: u32,
        allowed_updates: &[&str],
    ) -> Result<Vec<Update>, GatewayError> {
        let body = json!({
            "offset": offset,
            "timeout": timeout_s,
            "allowed_updates": allowed_updates,
        });
        let raw: Vec<Value> = self
            .call(
                "getUpdates",
                &body,
                Duration::from_secs(u64::from(timeout_s)),
            )
            .await?;
        raw.into_iter().map(parse_update).collect()
    }

    async fn call_true(&self, method: &str, body: &impl Serialize) -> Result<(), GatewayError> {
        let done: bool = self.call(method, body, Duration::ZERO).await?;
        if done {
            Ok(())
        } else {
            Err(GatewayError::Unexpected {
                gateway: GATEWAY,
                message: format!("{method} answered false"),
            })
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &impl Serialize,
        poll: Duration,
    ) -> Result<T, GatewayError> {
        let url = join_url(
            &self.config.api_url,
            &format!("bot{}/{method}", self.config.token),
        );
        let response = self
            .http
            .post(url)
            .timeout(self.config.timeout + poll)
            .json(body)
            .send()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e.without_url()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e.without_url()))?;
        interpret(method, status, &bytes)
    }
}

fn local_refusal(message: &str) -> GatewayError {
    GatewayError::Refused {
        gateway: GATEWAY,
        code: "400".into(),
        message: format!("{message} (refused before sending)"),
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Value>,
    error_code: Option<i64>,
    description: Option<String>,
    parameters: Option<ResponseParameters>,
}

#[derive(Deserialize)]
struct ResponseParameters {
    retry_after: Option<u64>,
}

/// Maps an HTTP answer: 5xx is "outcome unknown"; otherwise Telegram's envelope decides,
/// whatever the status.
fn interpret<T: DeserializeOwned>(
    method: &str,
    status: u16,
    body: &[u8],
) -> Result<T, GatewayError> {
    if status >= 500 {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
        return Err(GatewayError::Unknown {
            gateway: GATEWAY,
            message: format!("{method}: HTTP {status}: {excerpt}"),
        });
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| {
        GatewayError::unexpected(
            GATEWAY,
            &format!("{method}: HTTP {status}, not the Bot API envelope"),
            body,
        )
    })?;
    if envelope.ok {
        let result = envelope.result.ok_or_else(|| {
            GatewayError::unexpected(GATEWAY, &format!("{method}: ok without result"), body)
        })?;
        return serde_json::from_value(result).map_err(|e| {
            GatewayError::unexpected(
                GATEWAY,
                &format!("{method}: result not understood ({e})"),
                body,
            )
        });
    }
    let retry_after = envelope.parameters.and_then(|p| p.retry_after);
    match (envelope.error_code, retry_after) {
        (_, Some(secs)) => Err(GatewayError::RateLimited {
            gateway: GATEWAY,
            retry_after: Duration::from_secs(secs),
        }),
        (Some(429), None) => Err(GatewayError::RateLimited {
            gateway: GATEWAY,
            retry_after: DEFAULT_RETRY_AFTER,
        }),
        (code, None) => Err(GatewayError::Refused {
            gateway: GATEWAY,
            code: code.map_or_else(|| status.to_string(), |c| c.to_string()),
            message: envelope.description.unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> StarsInvoice {
        StarsInvoice {
            title: "VPN 30 days".into(),
            description: "One month of VPN".into(),
            payload: "order-1".into(),
            amount_stars: 100,
            subscription_period: None,
        }
    }

    fn refused_locally(r: Result<(), GatewayError>) -> bool {
        matches!(r, Err(GatewayError::Refused { ref code, ref message, .. })
            if code == "400" && message.contains("before sending"))
    }

    #[test]
    fn invoice_limits_follow_the_bot_api() {
        assert!(invoice().validate().is_ok());
        let with = |f: &dyn Fn(&mut StarsInvoice)| {
            let mut i = invoice();
            f(&mut i);
            i.validate()
        };
        assert!(refused_locally(with(&|i| i.title.clear())));
        assert!(refused_locally(with(&|i| i.title = "t".repeat(33))));
        assert!(
            with(&|i| i.title = "ی".repeat(32)).is_ok(),
            "32 characters, 64 bytes"
        );
        assert!(refused_locally(with(&|i| i.description.clear())));
        assert!(refused_locally(with(&|i| i.description = "d".repeat(256))));
        assert!(with(&|i| i.description = "d".repeat(255)).is_ok());
        assert!(refused_locally(with(&|i| i.payload.clear())));
        assert!(with(&|i| i.payload = "p".repeat(128)).is_ok());
        assert!(
            refused_locally(with(&|i| i.payload = "ی".repeat(65))),
            "130 bytes"
        );
        assert!(refused_locally(with(&|i| i.amount_stars = 0)));
        assert!(refused_locally(with(&|i| i.amount_stars = -5)));
    }

    #[test]
    fn invoice_body_has_exactly_one_xtr_price() {
        let body = Value::Object(invoice().body());
        assert_eq!(body["currency"], "XTR");
        assert_eq!(
            body["prices"],
            json!([{"label": "VPN 30 days", "amount": 100}])
        );
        assert!(body.get("provider_token").is_none());
    }

    #[test]
    fn parses_payment_updates() {
        let pre = parse_update(json!({"update_id": 5, "pre_checkout_query": {
            "id": "q1", "from": {"id": 42, "is_bot": false, "first_name": "A"},
            "currency": "XTR", "total_amount": 100, "invoice_payload": "order-1"}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pre.update_id, 5);
        assert_eq!(
            pre.kind,
            UpdateKind::PreCheckoutQuery {
                id: "q1".into(),
                from_id: 42,
                currency: "XTR".into(),
                total_amount: 100,
                invoice_payload: "order-1".into()
            }
        );
        let paid = parse_update(json!({"update_id": 6, "message": {
            "message_id": 3, "date": 1, "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": false, "first_name": "A"},
            "successful_payment": {"currency": "XTR", "total_amount": 100,
                "invoice_payload": "order-1", "telegram_payment_charge_id": "stx1",
                "provider_payment_charge_id": "", "is_recurring": true,
                "is_first_recurring": true, "subscription_expiration_date": 1700000000}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(paid.kind, UpdateKind::SuccessfulPayment {
            chat_id: 42, from_id: 42, total_amount: 100, is_recurring: true,
            is_first_recurring: true, subscription_expiration_date: Some(1_700_000_000),
            ref telegram_payment_charge_id, ..
        } if telegram_payment_charge_id == "stx1"));
        let refunded = parse_update(json!({"update_id": 7, "message": {
            "message_id": 4, "date": 2, "chat": {"id": 42, "type": "private"},
            "refunded_payment": {"currency": "XTR", "total_amount": 100,
                "invoice_payload": "order-1", "telegram_payment_charge_id": "stx1"}}}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            refunded.kind,
            UpdateKind::RefundedPayment {
                chat_id: 42,
                from_id: None,
                provider_payment_charge_id: None,
                ..
            }
        ));
    }

    #[test]
    fn other_and_unreadable_updates_are_kept_whole() {
        for v in [
            json!({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 1}, "text": "/start"}}),
            json!({"update_id": 2, "callback_query": {"id": "c"}}),
            json!({"update_id": 3, "pre_checkout_query": {"id": "q"}}),
            json!({"update_id": 4, "message": {"chat": {"id": 1}, "successful_payment": {}}}),
            json!({"update_id": 5, "future_kind": [1, 2, 3]}),
        ] {
            let u = parse_update(v.clone()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(u.kind, UpdateKind::Other(v));
        }
        assert!(matches!(
            parse_update(json!({"message": {}})),
            Err(GatewayError::Unexpected { .. })
        ));
    }

    #[test]
    fn parses_star_transactions() {
        let page: TransactionsWire = serde_json::from_value(json!({"transactions": [
            {"id": "stx1", "amount": 100, "date": 10, "source": {"type": "user",
                "user": {"id": 42, "is_bot": false, "first_name": "A"}, "invoice_payload": "order-1"}},
            {"id": "r1", "amount": 100, "date": 11, "receiver": {"type": "user",
                "user": {"id": 42, "is_bot": false, "first_name": "A"}}},
            {"id": "x", "amount": 5, "date": 12, "source": {"type": "fragment"}}
        ]}))
        .unwrap_or_else(|e| panic!("{e}"));
        let t: Vec<StarTransaction> = page.transactions.into_iter().map(Into::into).collect();
        assert_eq!(t[0].source_user_id, Some(42));
        assert_eq!(t[0].invoice_payload.as_deref(), Some("order-1"));
        assert_eq!(
            (t[1].source_user_id, t[1].receiver_user_id),
            (None, Some(42))
        );
        assert_eq!((t[2].source_user_id, t[2].receiver_user_id), (None, None));
    }

    #[test]
    fn errors_follow_the_envelope() {
        let r: Result<bool, _> = interpret(
            "m",
            429,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
        );
        assert!(
            matches!(r, Err(GatewayError::RateLimited { retry_after, .. })
            if retry_after == Duration::from_secs(7))
        );
        let r: Result<bool, _> = interpret(
            "m",
            429,
            br#"{"ok":false,"error_code":429,"description":"slow"}"#,
        );
        assert!(
            matches!(r, Err(GatewayError::RateLimited { retry_after, .. })
            if retry_after == DEFAULT_RETRY_AFTER)
        );
        let r: Result<bool, _> = interpret(
            "m",
            400,
            br#"{"ok":false,"error_code":400,"description":"Bad Request: CHARGE_ALREADY_REFUNDED"}"#,
        );
        assert!(
            matches!(r, Err(GatewayError::Refused { ref code, ref message, .. })
            if code == "400" && message == "Bad Request: CHARGE_ALREADY_REFUNDED")
        );
        let r: Result<bool, _> = interpret("m", 502, b"Bad Gateway");
        assert!(matches!(r, Err(GatewayError::Unknown { .. })));
        let r: Result<bool, _> = interpret("m", 200, b"<html/>");
        assert!(matches!(r, Err(GatewayError::Unexpected { .. })));
        let r: Result<bool, _> = interpret("m", 200, br#"{"ok":true}"#);
        assert!(matches!(r, Err(GatewayError::Unexpected { .. })));
        let r: Result<bool, _> = interpret("m", 200, br#"{"ok":true,"result":"yes"}"#);
        assert!(matches!(r, Err(GatewayError::Unexpected { .. })));
        let r: Result<bool, _> = interpret("m", 200, br#"{"ok":true,"result":true}"#);
        assert!(matches!(r, Ok(true)));
    }
}
