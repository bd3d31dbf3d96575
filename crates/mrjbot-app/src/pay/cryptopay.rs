//! Crypto Pay (@CryptoBot) client: creates and looks up invoices and authenticates the
//! `invoice_paid` webhook (payments.md §4.1).
//!
//! Guarantees: amounts go out as exact decimal strings built from integer minor units and
//! come back as the provider's strings (never floats); every answer is either a typed value
//! or a [`GatewayError`] that says whether the outcome is known; a webhook body is trusted
//! only after [`verify_signature`] accepted the raw bytes it arrived as.

use super::{GatewayError, http_client, join_url};
use hmac::{Hmac, KeyInit, Mac};
use mrjbot_domain::{Currency, DomainError, Money};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Gateway name in errors and logs.
pub const GATEWAY: &str = "cryptopay";
/// Mainnet API host.
pub const DEFAULT_BASE_URL: &str = "https://pay.crypt.bot";
/// Testnet API host (tokens from @CryptoTestnetBot).
pub const TESTNET_BASE_URL: &str = "https://testnet-pay.crypt.bot";
/// Request header carrying the app token.
pub const TOKEN_HEADER: &str = "Crypto-Pay-API-Token";
/// Webhook header carrying the body signature (lowercase hex).
pub const SIGNATURE_HEADER: &str = "crypto-pay-api-signature";
/// Longest invoice lifetime the API accepts, in seconds (31 days).
pub const MAX_EXPIRES_IN: u32 = 2_678_400;
/// Largest page `getInvoices` returns.
const PAGE: usize = 1000;
/// Bound on pages walked by one `get_invoices` call (a million invoices).
const MAX_PAGES: usize = 1000;

/// Where and how to reach Crypto Pay.
#[derive(Debug, Clone)]
pub struct CryptoPayConfig {
    /// The app token from @CryptoBot (`Crypto Pay → My Apps`).
    pub token: String,
    /// API host, without `/api` ([`DEFAULT_BASE_URL`] unless testing).
    pub base_url: String,
    /// Total time allowed for one call.
    pub timeout: Duration,
}

impl CryptoPayConfig {
    /// Mainnet settings with a 15 s timeout.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            base_url: DEFAULT_BASE_URL.into(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// What `getMe` says about the app behind the token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppInfo {
    /// The app id.
    pub app_id: i64,
    /// The app's name.
    pub name: String,
    /// The bot that processes payments (`CryptoBot`).
    pub payment_processing_bot_username: String,
}

/// An invoice to create. The amount's currency decides the invoice kind: USD, EUR and RUB
/// make a fiat invoice (the payer chooses a crypto asset), USDT and TON a crypto invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateInvoice {
    /// What the payer pays.
    pub amount: Money,
    /// Shown to the payer (the API allows up to 1024 characters).
    pub description: String,
    /// Our order reference; returned in every invoice and webhook (up to 4 KB).
    pub payload: String,
    /// Lifetime in seconds (1..=[`MAX_EXPIRES_IN`]); `None` = no expiry.
    pub expires_in: Option<u32>,
    /// For fiat invoices: the assets the payer may use (`["USDT", "TON"]`).
    pub accepted_assets: Option<Vec<String>>,
    /// URL behind the button shown after payment (for example our bot's `t.me` link).
    pub paid_btn_url: Option<String>,
}

/// Invoice status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceStatus {
    /// Waiting for payment.
    Active,
    /// Paid.
    Paid,
    /// Expired unpaid.
    Expired,
}

impl InvoiceStatus {
    /// The wire name (`active`, `paid`, `expired`).
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Active => "active",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Expired => "expired",
        }
    }
}

/// Whether an invoice is priced in a crypto asset or in fiat money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurrencyType {
    /// Priced in `asset` (the API's default, and the only kind before API 1.2).
    #[default]
    Crypto,
    /// Priced in `fiat`, paid in one of `accepted_assets`.
    Fiat,
}

/// An invoice as Crypto Pay reports it. Amounts stay the provider's decimal strings;
/// [`Invoice::amount_money`] converts the priced amount exactly when we know the currency.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "InvoiceWire")]
pub struct Invoice {
    /// Crypto Pay's id: the unique key of the payment on our side.
    pub invoice_id: i64,
    /// The invoice hash (part of the payment links).
    pub hash: String,
    /// Current status.
    pub status: InvoiceStatus,
    /// Crypto or fiat pricing.
    pub currency_type: CurrencyType,
    /// The asset (`USDT`) of a crypto invoice.
    pub asset: Option<String>,
    /// The fiat currency (`USD`) of a fiat invoice.
    pub fiat: Option<String>,
    /// The priced amount as a decimal string (`"4.99"`).
    pub amount: String,
    /// The link to send the payer: `bot_invoice_url`, or `mini_app_invoice_url`,
    /// `web_app_invoice_url` or the deprecated `pay_url` when that is missing.
    pub pay_url: String,
    /// Description shown to the payer.
    pub description: Option<String>,
    /// Our order reference, as given at creation.
    pub payload: Option<String>,
    /// Creation time (ISO 8601).
    pub created_at: String,
    /// Expiry time (ISO 8601) when a lifetime was set.
    pub expiration_date: Option<String>,
    /// Payment time (ISO 8601) once paid.
    pub paid_at: Option<String>,
    /// The asset actually paid with.
    pub paid_asset: Option<String>,
    /// The amount actually paid, in `paid_asset`, as a decimal string.
    pub paid_amount: Option<String>,
}

#[derive(Deserialize)]
struct InvoiceWire {
    invoice_id: i64,
    hash: String,
    status: InvoiceStatus,
    #[serde(default)]
    currency_type: CurrencyType,
    asset: Option<String>,
    fiat: Option<String>,
    amount: String,
    bot_invoice_url: Option<String>,
    mini_app_invoice_url: Option<String>,
    web_app_invoice_url: Option<String>,
    pay_url: Option<String>,
    description: Option<String>,
    payload: Option<String>,
    created_at: String,
    expiration_date: Option<String>,
    paid_at: Option<String>,
    paid_asset: Option<String>,
    paid_amount: Option<String>,
}

impl TryFrom<InvoiceWire> for Invoice {
    type Error = String;

    fn try_from(w: InvoiceWire) -> Result<Self, String> {
        let pay_url = [
            w.bot_invoice_url,
            w.mini_app_invoice_url,
            w.web_app_invoice_url,
            w.pay_url,
        ]
        .into_iter()
        .flatten()
        .find(|u| !u.is_empty())
        .ok_or_else(|| format!("invoice {} carries no payment link", w.invoice_id))?;
        Ok(Invoice {
            invoice_id: w.invoice_id,
            hash: w.hash,
            status: w.status,
            currency_type: w.currency_type,
            asset: w.asset,
            fiat: w.fiat,
            amount: w.amount,
            pay_url,
            description: w.description,
            payload: w.payload,
            created_at: w.created_at,
            expiration_date: w.expiration_date,
            paid_at: w.paid_at,
            paid_asset: w.paid_asset,
            paid_amount: w.paid_amount,
        })
    }
}

impl Invoice {
    /// The priced amount in one of our currencies, exactly. Fails for assets MRJBot does
    /// not know (BTC...) and for amounts with more digits than the currency has (trailing
    /// zeros beyond them are accepted: `"4.990"` is 4.99 USD).
    pub fn amount_money(&self) -> Result<Money, DomainError> {
        let code = match self.currency_type {
            CurrencyType::Fiat => self.fiat.as_deref(),
            CurrencyType::Crypto => self.asset.as_deref(),
        }
        .ok_or_else(|| {
            DomainError::invalid(format!(
                "invoice {} has no {} code",
                self.invoice_id,
                match self.currency_type {
                    CurrencyType::Fiat => "fiat",
                    CurrencyType::Crypto => "asset",
                }
            ))
        })?;
        let currency = Currency::parse(code)?;
        Money::parse_amount(trim_fraction_zeros(&self.amount), currency)
    }
}

/// `"4.9900"` → `"4.99"`, `"5.00"` → `"5"`; other text unchanged.
fn trim_fraction_zeros(s: &str) -> &str {
    if !s.contains('.') {
        return s;
    }
    s.trim_end_matches('0').trim_end_matches('.')
}

/// A webhook delivery: `{update_id, update_type, request_date, payload: Invoice}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookUpdate {
    /// Unique per delivery; dedupe on it (and on the invoice id).
    pub update_id: i64,
    /// `invoice_paid` (the only type Crypto Pay sends today).
    pub update_type: String,
    /// When Crypto Pay sent it (ISO 8601).
    pub request_date: String,
    /// The invoice the update is about.
    #[serde(rename = "payload")]
    pub invoice: Invoice,
}

/// True when `signature_hex` is the HMAC-SHA-256 of `raw_body` keyed with the raw 32-byte
/// SHA-256 of `token`. Compares in constant time; a signature that is not hex is false.
/// Pass the body exactly as received: re-serialised JSON has other bytes.
pub fn verify_signature(token: &str, raw_body: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let key = Sha256::digest(token.as_bytes());
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&key) else {
        return false;
    };
    mac.update(raw_body);
    mac.verify_slice(&signature).is_ok()
}

/// Parses a webhook body (after [`verify_signature`] accepted it).
pub fn parse_webhook(raw_body: &[u8]) -> Result<WebhookUpdate, GatewayError> {
    serde_json::from_slice(raw_body)
        .map_err(|e| GatewayError::unexpected(GATEWAY, &format!("webhook body ({e})"), raw_body))
}

/// The Crypto Pay API client.
#[derive(Debug, Clone)]
pub struct CryptoPayClient {
    config: CryptoPayConfig,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct CreateInvoiceBody<'a> {
    currency_type: CurrencyType,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fiat: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accepted_assets: Option<String>,
    amount: String,
    description: &'a str,
    payload: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_in: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_btn_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_btn_url: Option<&'a str>,
}

#[derive(Serialize)]
struct GetInvoicesBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    invoice_ids: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    offset: usize,
    count: usize,
}

/// `getInvoices` answers `{"items": [...]}`; a bare array is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum InvoiceList {
    Items { items: Vec<Invoice> },
    Bare(Vec<Invoice>),
}

impl CryptoPayClient {
    /// A client; `NotConfigured` without a token.
    pub fn new(config: CryptoPayConfig) -> Result<Self, GatewayError> {
        if config.token.trim().is_empty() {
            return Err(GatewayError::NotConfigured { gateway: GATEWAY });
        }
        let http = http_client(config.timeout);
        Ok(Self { config, http })
    }

    /// The app behind the token (a cheap credentials check).
    pub async fn get_me(&self) -> Result<AppInfo, GatewayError> {
        let request = self.http.get(self.url("getMe"));
        self.send(request).await
    }

    /// Creates an invoice. Refused locally (code `400`) for currencies Crypto Pay cannot
    /// price (IRR, XTR), a negative amount, and for `accepted_assets` on a crypto invoice or an empty list.
    pub async fn create_invoice(&self, req: &CreateInvoice) -> Result<Invoice, GatewayError> {
        let (currency_type, code) = invoice_currency(req.amount.currency)?;
        if req.amount.amount_minor < 0 {
            return Err(local_refusal("the amount is negative"));
        }
        let accepted_assets = match (&req.accepted_assets, currency_type) {
            (None, _) => None,
            (Some(_), CurrencyType::Crypto) => {
                return Err(local_refusal(
                    "accepted_assets applies only to fiat invoices",
                ));
            }
            (Some(list), CurrencyType::Fiat) if list.is_empty() => {
                return Err(local_refusal("accepted_assets is empty"));
            }
            (Some(list), CurrencyType::Fiat) => Some(list.join(",")),
        };
        let body = CreateInvoiceBody {
            currency_type,
            asset: (currency_type == CurrencyType::Crypto).then_some(code),
            fiat: (currency_type == CurrencyType::Fiat).then_some(code),
            accepted_assets,
            amount: decimal_amount(req.amount),
            description: &req.description,
            payload: &req.payload,
            expires_in: req.expires_in,
            // "callback" is the generic "Return" button that opens paid_btn_url.
            paid_btn_name: req.paid_btn_url.as_ref().map(|_| "callback"),
            paid_btn_url: req.paid_btn_url.as_deref(),
        };
        self.post("createInvoice", &body).await
    }

    /// Invoices by id (all when `ids` is empty), optionally only those with `status`
    /// (`active` or `paid`, as the API filters). Walks every page.
    pub async fn get_invoices(
        &self,
        ids: &[i64],
        status: Option<&str>,
    ) -> Result<Vec<Invoice>, GatewayError> {
        let invoice_ids =
            (!ids.is_empty()).then(|| ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let mut all = Vec::new();
        for page in 0..MAX_PAGES {
            let body = GetInvoicesBody {
                invoice_ids: invoice_ids.clone(),
                status: status.map(str::to_owned),
                offset: page * PAGE,
                count: PAGE,
            };
            let list: InvoiceList = self.post("getInvoices", &body).await?;
            let items = match list {
                InvoiceList::Items { items } | InvoiceList::Bare(items) => items,
            };
            let full = items.len() >= PAGE;
            all.extend(items);
            if !full {
                break;
            }
        }
        Ok(all)
    }

    /// Deletes an invoice.
    pub async fn delete_invoice(&self, invoice_id: i64) -> Result<(), GatewayError> {
        let done: bool = self
            .post(
                "deleteInvoice",
                &serde_json::json!({ "invoice_id": invoice_id }),
            )
            .await?;
        if done {
            Ok(())
        } else {
            Err(GatewayError::Unexpected {
                gateway: GATEWAY,
                message: format!("deleteInvoice {invoice_id} answered false"),
            })
        }
    }

    fn url(&self, method: &str) -> String {
        join_url(&self.config.base_url, &format!("api/{method}"))
    }

    async fn post<T: DeserializeOwned>(
        &self,
        method: &str,
        body: &impl Serialize,
    ) -> Result<T, GatewayError> {
        let request = self.http.post(self.url(method)).json(body);
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, GatewayError> {
        let response = request
            .header(TOKEN_HEADER, &self.config.token)
            .send()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e))?;
        interpret(status, &body)
    }
}

fn local_refusal(message: &str) -> GatewayError {
    GatewayError::Refused {
        gateway: GATEWAY,
        code: "400".into(),
        message: format!("{message} (refused before sending)"),
    }
}

/// How Crypto Pay prices an amount in `currency`.
fn invoice_currency(currency: Currency) -> Result<(CurrencyType, &'static str), GatewayError> {
    match currency {
        Currency::Usd | Currency::Eur | Currency::Rub => Ok((CurrencyType::Fiat, currency.code())),
        Currency::Usdt | Currency::Ton => Ok((CurrencyType::Crypto, currency.code())),
        Currency::Irr | Currency::Xtr => Err(local_refusal(&format!(
            "Crypto Pay cannot price an invoice in {currency}"
        ))),
    }
}

/// Minor units as the shortest exact decimal string: 499 USD → `"4.99"`, 500 → `"5"`,
/// 1_500_000_000 TON → `"1.5"`.
pub fn decimal_amount(m: Money) -> String {
    let exp = m.currency.exponent();
    if exp == 0 {
        return m.amount_minor.to_string();
    }
    let div = 10i64.pow(exp);
    let frac = format!("{:0width$}", m.amount_minor % div, width = exp as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        (m.amount_minor / div).to_string()
    } else {
        format!("{}.{frac}", m.amount_minor / div)
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<serde_json::Value>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    name: Option<String>,
}

/// Maps an HTTP answer to a typed result: 5xx is "outcome unknown" whatever the body;
/// otherwise the body must be the `{"ok": ...}` envelope, whatever the status.
fn interpret<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T, GatewayError> {
    if status >= 500 {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
        return Err(GatewayError::Unknown {
            gateway: GATEWAY,
            message: format!("HTTP {status}: {excerpt}"),
        });
    }
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| {
        GatewayError::unexpected(
            GATEWAY,
            &format!("HTTP {status}, not the API envelope"),
            body,
        )
    })?;
    match (envelope.ok, envelope.result, envelope.error) {
        (true, Some(result), _) => serde_json::from_value(result).map_err(|e| {
            GatewayError::unexpected(GATEWAY, &format!("result not understood ({e})"), body)
        }),
        (false, _, Some(error)) => Err(GatewayError::Refused {
            gateway: GATEWAY,
            code: error
                .code
                .map_or_else(|| status.to_string(), |c| c.to_string()),
            message: error.name.unwrap_or_default(),
        }),
        _ => Err(GatewayError::unexpected(
            GATEWAY,
            &format!("HTTP {status}, envelope without result or error"),
            body,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "1234:AAtestTOKEN";

    fn invoice_json() -> serde_json::Value {
        json!({
            "invoice_id": 528890, "hash": "IVfX6rkZ2GXq", "currency_type": "fiat",
            "fiat": "USD", "amount": "4.99", "accepted_assets": ["USDT", "TON"],
            "bot_invoice_url": "https://t.me/CryptoBot?start=IVfX6rkZ2GXq",
            "mini_app_invoice_url": "https://t.me/CryptoBot/app?startapp=invoice-IVfX6rkZ2GXq",
            "web_app_invoice_url": "https://app.send.tg/invoices/IVfX6rkZ2GXq",
            "description": "VPN 1 month", "status": "paid",
            "created_at": "2025-01-01T10:00:00.000Z", "paid_at": "2025-01-01T10:05:00.000Z",
            "paid_asset": "USDT", "paid_amount": "4.99", "paid_fiat_rate": "1.00",
            "fee_asset": "USDT", "fee_amount": "0.149", "payload": "order-17",
            "allow_comments": true, "allow_anonymous": true, "paid_anonymously": false
        })
    }

    #[test]
    fn parses_a_full_invoice() {
        let inv: Invoice = serde_json::from_value(invoice_json())
            .unwrap_or_else(|e| panic!("invoice should parse: {e}"));
        assert_eq!(inv.invoice_id, 528890);
        assert_eq!(inv.status, InvoiceStatus::Paid);
        assert_eq!(inv.currency_type, CurrencyType::Fiat);
        assert_eq!(inv.pay_url, "https://t.me/CryptoBot?start=IVfX6rkZ2GXq");
        assert_eq!(inv.payload.as_deref(), Some("order-17"));
        assert_eq!(inv.paid_amount.as_deref(), Some("4.99"));
        assert_eq!(
            inv.amount_money(),
            Ok(Money {
                amount_minor: 499,
                currency: Currency::Usd
            })
        );
    }

    #[test]
    fn pay_url_falls_back_and_is_required() {
        let mut v = invoice_json();
        v["bot_invoice_url"] = json!(null);
        let inv: Invoice =
            serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("fallback: {e}"));
        assert!(inv.pay_url.contains("startapp"));
        for key in [
            "bot_invoice_url",
            "mini_app_invoice_url",
            "web_app_invoice_url",
        ] {
            v[key] = json!(null);
        }
        assert!(serde_json::from_value::<Invoice>(v).is_err());
    }

    #[test]
    fn unknown_status_or_missing_fields_do_not_parse() {
        let mut v = invoice_json();
        v["status"] = json!("refunded");
        assert!(serde_json::from_value::<Invoice>(v).is_err());
        let mut v = invoice_json();
        v["amount"] = json!(4.99);
        assert!(serde_json::from_value::<Invoice>(v).is_err());
    }

    #[test]
    fn amount_money_is_exact_and_knows_its_limits() {
        let mut v = invoice_json();
        v["amount"] = json!("4.990000");
        let inv: Invoice = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inv.amount_money().map(|m| m.amount_minor), Ok(499));

        let mut v = invoice_json();
        v["currency_type"] = json!("crypto");
        v["asset"] = json!("TON");
        v["fiat"] = json!(null);
        v["amount"] = json!("1.5");
        let inv: Invoice = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inv.amount_money(),
            Ok(Money {
                amount_minor: 1_500_000_000,
                currency: Currency::Ton
            })
        );
        v["asset"] = json!("BTC");
        let inv: Invoice = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            inv.amount_money().is_err(),
            "BTC is not one of our currencies"
        );
        v["asset"] = json!("USDT");
        v["amount"] = json!("0.0000001");
        let inv: Invoice = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert!(inv.amount_money().is_err(), "USDT has 6 digits");
    }

    #[test]
    fn decimal_amounts_are_exact_and_short() {
        let m = |minor, currency| Money {
            amount_minor: minor,
            currency,
        };
        assert_eq!(decimal_amount(m(499, Currency::Usd)), "4.99");
        assert_eq!(decimal_amount(m(500, Currency::Usd)), "5");
        assert_eq!(decimal_amount(m(510, Currency::Rub)), "5.1");
        assert_eq!(decimal_amount(m(5, Currency::Eur)), "0.05");
        assert_eq!(decimal_amount(m(1_500_000_000, Currency::Ton)), "1.5");
        assert_eq!(decimal_amount(m(1, Currency::Usdt)), "0.000001");
        assert_eq!(decimal_amount(m(0, Currency::Usdt)), "0");
    }

    #[test]
    fn currencies_map_to_invoice_kinds() {
        assert_eq!(
            invoice_currency(Currency::Rub).ok(),
            Some((CurrencyType::Fiat, "RUB"))
        );
        assert_eq!(
            invoice_currency(Currency::Usdt).ok(),
            Some((CurrencyType::Crypto, "USDT"))
        );
        assert!(matches!(
            invoice_currency(Currency::Irr),
            Err(GatewayError::Refused { .. })
        ));
        assert!(invoice_currency(Currency::Xtr).is_err());
    }

    /// Vector computed outside Rust:
    /// `printf %s "$BODY" | openssl dgst -sha256 -mac HMAC -macopt hexkey:$(printf %s "$TOKEN" | sha256sum)`.
    #[test]
    fn signature_matches_an_independent_computation() {
        let body = br#"{"update_id":1,"update_type":"invoice_paid"}"#;
        let good = "18397e80e7097835de4f6896616e3ad45f3cbf0103d72a118072f6e6b9f1a053";
        assert!(verify_signature(TOKEN, body, good));
        assert!(verify_signature(TOKEN, body, &good.to_uppercase()));
        assert!(!verify_signature("other-token", body, good));
        assert!(!verify_signature(
            TOKEN,
            br#"{"update_id": 1, "update_type": "invoice_paid"}"#,
            good
        ));
        assert!(!verify_signature(TOKEN, body, ""));
        assert!(!verify_signature(TOKEN, body, "zz"));
        assert!(!verify_signature(TOKEN, body, &good[..62]));
    }

    #[test]
    fn parses_webhook_updates() {
        let body = serde_json::to_vec(&json!({
            "update_id": 77, "update_type": "invoice_paid",
            "request_date": "2025-01-01T10:05:01.000Z", "payload": invoice_json()
        }))
        .unwrap_or_default();
        let update = parse_webhook(&body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(update.update_id, 77);
        assert_eq!(update.update_type, "invoice_paid");
        assert_eq!(update.invoice.invoice_id, 528890);
        assert!(matches!(
            parse_webhook(b"{\"update_id\":1}"),
            Err(GatewayError::Unexpected { .. })
        ));
    }

    #[test]
    fn answers_map_to_errors() {
        let ok: Result<AppInfo, _> = interpret(
            200,
            br#"{"ok":true,"result":{"app_id":1,"name":"shop","payment_processing_bot_username":"CryptoBot"}}"#,
        );
        assert_eq!(ok.map(|a| a.app_id).ok(), Some(1));
        let refused: Result<AppInfo, _> = interpret(
            401,
            br#"{"ok":false,"error":{"code":401,"name":"UNAUTHORIZED"}}"#,
        );
        assert!(matches!(
            refused,
            Err(GatewayError::Refused { ref code, ref message, .. })
                if code == "401" && message == "UNAUTHORIZED"
        ));
        let unknown: Result<AppInfo, _> =
            interpret(502, br#"{"ok":false,"error":{"code":502,"name":"X"}}"#);
        assert!(matches!(unknown, Err(GatewayError::Unknown { .. })));
        let garbage: Result<AppInfo, _> = interpret(200, b"<html>hello</html>");
        assert!(matches!(garbage, Err(GatewayError::Unexpected { .. })));
        let wrong_shape: Result<AppInfo, _> = interpret(200, br#"{"ok":true,"result":[1]}"#);
        assert!(matches!(wrong_shape, Err(GatewayError::Unexpected { .. })));
        let empty: Result<AppInfo, _> = interpret(200, br#"{"ok":false}"#);
        assert!(matches!(empty, Err(GatewayError::Unexpected { .. })));
    }

    #[test]
    fn invoice_lists_parse_in_both_shapes() {
        let items: InvoiceList = serde_json::from_value(json!({"items": [invoice_json()]}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(items, InvoiceList::Items { ref items } if items.len() == 1));
        let bare: InvoiceList =
            serde_json::from_value(json!([invoice_json()])).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(bare, InvoiceList::Bare(ref items) if items.len() == 1));
    }
}
