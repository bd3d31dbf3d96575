//! Zarinpal (Iran) REST API v4 client (specs/payments.md §1): payment request, the
//! StartPay redirect, verify, the list of unverified payments, inquiry and reverse.
//!
//! Guarantees:
//! - Amounts always go out as `currency: "IRR"` with an integer number of rials, so the
//!   amount given to `verify` is in the same unit as the one given to `request`.
//! - Every answer is read through the v4 envelope whatever its HTTP status: `data` and
//!   `errors` may each be `[]`, `{}`, `null` or an object. A gateway error code becomes
//!   [`GatewayError::Refused`] (`-12`, "too many attempts", becomes
//!   [`GatewayError::RateLimited`]); an answer with neither becomes
//!   [`GatewayError::Unknown`] on a 5xx (nothing definite was said) and
//!   [`GatewayError::Unexpected`] otherwise.
//! - Fields the money path decides on (codes, authority, `ref_id`, status) are checked
//!   strictly; informational fields (fees, card mask, dates) are optional, so a payment
//!   the bank confirmed is never reported as an error because of a cosmetic field.

use super::{ConfigError, GatewayError, parse_base_url, read_body, retry_after, url_with};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use std::time::Duration;
use time::PrimitiveDateTime;

const GATEWAY: &str = "zarinpal";

/// Production host of the payment gateway (API and StartPay).
pub const DEFAULT_BASE_URL: &str = "https://payment.zarinpal.com";

/// How long a rate-limited caller (code `-12`) should wait when the gateway says nothing.
const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(10);

/// Settings of a Zarinpal terminal.
#[derive(Debug, Clone)]
pub struct ZarinpalConfig {
    /// The terminal's merchant id (36-char UUID); it is the only credential.
    pub merchant_id: String,
    /// Gateway host, [`DEFAULT_BASE_URL`] in production, a fake's URL in tests.
    pub base_url: String,
    /// Bound on each call, connection included.
    pub timeout: Duration,
}

impl ZarinpalConfig {
    /// Production settings for `merchant_id` with a 15-second timeout.
    pub fn new(merchant_id: impl Into<String>) -> Self {
        Self {
            merchant_id: merchant_id.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Optional payer details sent as `metadata` with a payment request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZarinpalMeta {
    /// Our order id, shown in the Zarinpal panel.
    pub order_id: Option<String>,
    /// Payer's mobile number (Zarinpal offers saved cards for it).
    pub mobile: Option<String>,
    /// Payer's email.
    pub email: Option<String>,
}

/// Who pays the gateway fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeType {
    /// The merchant (deducted from the settlement).
    Merchant,
    /// The payer (added to the amount on the bank page).
    Payer,
}

impl FeeType {
    fn parse(v: Option<&Value>) -> Option<Self> {
        match v.and_then(Value::as_str) {
            Some("Merchant") => Some(FeeType::Merchant),
            Some("Payer") => Some(FeeType::Payer),
            _ => None,
        }
    }
}

/// A created payment: send the payer to [`Zarinpal::start_pay_url`] with `authority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The payment's id at Zarinpal (36 chars, `A...`; `S...` in the sandbox).
    pub authority: String,
    /// Who pays the fee, when the gateway said.
    pub fee_type: Option<FeeType>,
    /// The fee in rials, when the gateway said.
    pub fee: Option<i64>,
}

/// A verified payment: the money is ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// True for code 101: verified earlier, this is an idempotent repeat with the same
    /// `ref_id`. Never provision twice because of it.
    pub already: bool,
    /// The bank reference, unique per payment; shown to the payer.
    pub ref_id: String,
    /// The payer's masked card (`502229******5995`).
    pub card_pan: Option<String>,
    /// SHA-256 (hex) of the payer's card number.
    pub card_hash: Option<String>,
    /// Who paid the fee.
    pub fee_type: Option<FeeType>,
    /// The fee in rials.
    pub fee: Option<i64>,
}

/// A payment the bank confirmed but nobody verified yet (from `unVerified.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// The payment's authority.
    pub authority: String,
    /// The amount in the unit of the request (rials for payments we created).
    pub amount: i64,
    /// The callback URL given with the request.
    pub callback_url: String,
    /// When it was paid, in Zarinpal's local time (`2020-07-01 17:33:25`).
    pub date: Option<PrimitiveDateTime>,
}

/// A payment's state according to `inquiry.json` (informational only: it never replaces
/// verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InquiryStatus {
    /// Verified.
    Verified,
    /// Paid at the bank, not verified yet.
    Paid,
    /// The payer has not finished at the bank.
    InBank,
    /// Failed or cancelled.
    Failed,
    /// Reversed (money returned to the payer).
    Reversed,
}

/// What the payer's browser brought back to our callback URL. `ok` comes from the browser
/// and proves nothing: `true` means "verify now", `false` means "mark failed, do not
/// verify".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The payment's authority.
    pub authority: String,
    /// `Status=OK`.
    pub ok: bool,
}

/// A Zarinpal terminal.
#[derive(Debug, Clone)]
pub struct Zarinpal {
    merchant_id: String,
    base: url::Url,
    http: reqwest::Client,
}

impl Zarinpal {
    /// A client for one terminal; fails only on an unusable base URL. An empty merchant
    /// id is allowed here and makes every call answer [`GatewayError::NotConfigured`].
    pub fn new(cfg: ZarinpalConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            base: parse_base_url(GATEWAY, &cfg.base_url)?,
            merchant_id: cfg.merchant_id,
            http: super::http_client(cfg.timeout),
        })
    }

    /// Creates a payment of `amount_rial` rials (`POST /pg/v4/payment/request.json`).
    pub async fn request(
        &self,
        amount_rial: i64,
        description: &str,
        callback_url: &str,
        meta: &ZarinpalMeta,
    ) -> Result<Requested, GatewayError> {
        let mut metadata = Map::new();
        for (k, v) in [
            ("order_id", &meta.order_id),
            ("mobile", &meta.mobile),
            ("email", &meta.email),
        ] {
            if let Some(v) = v {
                metadata.insert(k.into(), json!(v));
            }
        }
        let mut body = json!({
            "merchant_id": self.merchant_id,
            "amount": amount_rial,
            "currency": "IRR",
            "description": description,
            "callback_url": callback_url,
        });
        if !metadata.is_empty() {
            body["metadata"] = Value::Object(metadata);
        }
        let (_, data) = self.call("request.json", body, &[100]).await?;
        Ok(Requested {
            authority: authority_field(&data, "authority")?,
            fee_type: FeeType::parse(data.get("fee_type")),
            fee: data.get("fee").and_then(Value::as_i64),
        })
    }

    /// Where to send the payer for `authority` (`{base}/pg/StartPay/{authority}`).
    pub fn start_pay_url(&self, authority: &str) -> String {
        url_with(&self.base, &["pg", "StartPay", authority]).into()
    }

    /// Verifies a payment (`verify.json`). `amount_rial` must be the amount of the
    /// request, taken from our store, never from the callback. Code 101 (already
    /// verified) is a success with `already = true`.
    pub async fn verify(
        &self,
        amount_rial: i64,
        authority: &str,
    ) -> Result<Verified, GatewayError> {
        let body = json!({
            "merchant_id": self.merchant_id,
            "amount": amount_rial,
            "authority": authority,
        });
        let (code, data) = self.call("verify.json", body, &[100, 101]).await?;
        let ref_id = match data.get("ref_id") {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.clone()
            }
            _ => {
                return Err(unexpected_data(
                    "verify answer without a numeric ref_id",
                    &data,
                ));
            }
        };
        let text = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Verified {
            already: code == 101,
            ref_id,
            card_pan: text("card_pan"),
            card_hash: text("card_hash"),
            fee_type: FeeType::parse(data.get("fee_type")),
            fee: data.get("fee").and_then(Value::as_i64),
        })
    }

    /// Payments paid at the bank but never verified (`unVerified.json`, the 100 most
    /// recent), for the reconciliation job.
    pub async fn unverified(&self) -> Result<Vec<Unverified>, GatewayError> {
        let body = json!({ "merchant_id": self.merchant_id });
        let (_, data) = self.call("unVerified.json", body, &[100]).await?;
        let items = match data.get("authorities") {
            Some(Value::Array(a)) => a.as_slice(),
            // An empty list has been seen as `null` or an empty object as well.
            None | Some(Value::Null) => &[],
            Some(Value::Object(o)) if o.is_empty() => &[],
            Some(_) => return Err(unexpected_data("`authorities` is not a list", &data)),
        };
        let date_format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        items
            .iter()
            .map(|item| {
                let Value::Object(o) = item else {
                    return Err(unexpected_data(
                        "an unverified entry is not an object",
                        &data,
                    ));
                };
                let amount = o.get("amount").and_then(Value::as_i64).ok_or_else(|| {
                    unexpected_data("an unverified entry without an amount", &data)
                })?;
                Ok(Unverified {
                    authority: authority_field(o, "authority")?,
                    amount,
                    callback_url: o
                        .get("callback_url")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    date: o
                        .get("date")
                        .and_then(Value::as_str)
                        .and_then(|d| PrimitiveDateTime::parse(d, &date_format).ok()),
                })
            })
            .collect()
    }

    /// A payment's state (`inquiry.json`); informational, never a substitute for verify.
    pub async fn inquiry(&self, authority: &str) -> Result<InquiryStatus, GatewayError> {
        let body = json!({ "merchant_id": self.merchant_id, "authority": authority });
        let (_, data) = self.call("inquiry.json", body, &[100]).await?;
        match data.get("status").and_then(Value::as_str) {
            Some("VERIFIED") => Ok(InquiryStatus::Verified),
            Some("PAID") => Ok(InquiryStatus::Paid),
            Some("IN_BANK") => Ok(InquiryStatus::InBank),
            Some("FAILED") => Ok(InquiryStatus::Failed),
            Some("REVERSED") => Ok(InquiryStatus::Reversed),
            _ => Err(unexpected_data(
                "inquiry answer without a known status",
                &data,
            )),
        }
    }

    /// Returns a verified payment's money to the payer (`reverse.json`); only within 30
    /// minutes of payment (`-63` after) and once (`-61` again).
    pub async fn reverse(&self, authority: &str) -> Result<(), GatewayError> {
        let body = json!({ "merchant_id": self.merchant_id, "authority": authority });
        self.call("reverse.json", body, &[100]).await.map(|_| ())
    }

    /// POSTs `body` to `/pg/v4/payment/{endpoint}` and returns the success code and
    /// `data`; a `data.code` outside `success` is a refusal.
    async fn call(
        &self,
        endpoint: &str,
        body: Value,
        success: &[i64],
    ) -> Result<(i64, Map<String, Value>), GatewayError> {
        if self.merchant_id.trim().is_empty() {
            return Err(GatewayError::NotConfigured { gateway: GATEWAY });
        }
        let url = url_with(&self.base, &["pg", "v4", "payment", endpoint]);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(|e| GatewayError::transport(GATEWAY, e))?;
        let status = resp.status();
        let pause = retry_after(resp.headers());
        let bytes = read_body(GATEWAY, resp).await?;
        let data = parse_envelope(status, pause, &bytes)?;
        let code = code_of(data.get("code"))
            .ok_or_else(|| unexpected_data("`data` without a numeric code", &data))?;
        if success.contains(&code) {
            return Ok((code, data));
        }
        Err(refusal(code, data.get("message")))
    }
}

/// Reads the v4 envelope (§1.2) of an answer with HTTP `status`: the `data` object on
/// success, the error otherwise.
fn parse_envelope(
    status: StatusCode,
    pause: Duration,
    body: &[u8],
) -> Result<Map<String, Value>, GatewayError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(GatewayError::RateLimited {
            gateway: GATEWAY,
            retry_after: pause,
        });
    }
    // Without an envelope a 5xx said nothing definite (a proxy page, a crash): the call
    // may have been performed.
    let no_answer = |what: &str| {
        if status.is_server_error() {
            let excerpt: String = String::from_utf8_lossy(body).chars().take(300).collect();
            GatewayError::Unknown {
                gateway: GATEWAY,
                message: format!("HTTP {status}, {what}: {excerpt}"),
            }
        } else {
            GatewayError::unexpected(GATEWAY, &format!("HTTP {status}, {what}"), body)
        }
    };
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(body) else {
        return Err(no_answer("not a JSON object"));
    };
    match envelope.remove("errors") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Object(e)) if e.is_empty() => {}
        Some(Value::Object(e)) => {
            let Some(code) = code_of(e.get("code")) else {
                return Err(GatewayError::unexpected(
                    GATEWAY,
                    "`errors` without a code",
                    body,
                ));
            };
            if code == -12 {
                return Err(GatewayError::RateLimited {
                    gateway: GATEWAY,
                    retry_after: pause.max(RATE_LIMIT_PAUSE),
                });
            }
            let mut err = refusal(code, e.get("message"));
            if let (GatewayError::Refused { message, .. }, Some(v)) =
                (&mut err, e.get("validations"))
            {
                let details = validations(v);
                if !details.is_empty() {
                    message.push_str(": ");
                    message.push_str(&details);
                }
            }
            return Err(err);
        }
        Some(_) => {
            return Err(GatewayError::unexpected(
                GATEWAY,
                "`errors` is neither empty nor an object",
                body,
            ));
        }
    }
    match envelope.remove("data") {
        Some(Value::Object(d)) if !d.is_empty() => Ok(d),
        None | Some(Value::Null) => Err(no_answer("neither data nor errors")),
        Some(Value::Array(a)) if a.is_empty() => Err(no_answer("neither data nor errors")),
        Some(Value::Object(_)) => Err(no_answer("neither data nor errors")),
        Some(_) => Err(GatewayError::unexpected(
            GATEWAY,
            "`data` is neither empty nor an object",
            body,
        )),
    }
}

/// A code as an integer; some integrations have seen it as a numeric string.
fn code_of(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn refusal(code: i64, message: Option<&Value>) -> GatewayError {
    GatewayError::Refused {
        gateway: GATEWAY,
        code: code.to_string(),
        message: message
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned(),
    }
}

/// `validations` (`[{"field": "text"}, ...]` or anything else) as one line.
fn validations(v: &Value) -> String {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => format!("{k}: {s}"),
                        other => format!("{k}: {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn unexpected_data(what: &str, data: &Map<String, Value>) -> GatewayError {
    GatewayError::unexpected(
        GATEWAY,
        what,
        Value::Object(data.clone()).to_string().as_bytes(),
    )
}

/// An authority is a short run of ASCII letters and digits; anything else is refused so
/// it can go into URLs and logs unescaped.
fn valid_authority(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn authority_field(o: &Map<String, Value>, key: &str) -> Result<String, GatewayError> {
    match o.get(key).and_then(Value::as_str) {
        Some(a) if valid_authority(a) => Ok(a.to_owned()),
        _ => Err(unexpected_data("missing or malformed authority", o)),
    }
}

/// Reads the query string of a callback (`Authority=...&Status=OK|NOK`, with or without
/// the leading `?`). A missing or malformed authority or a status other than `OK`/`NOK`
/// is [`GatewayError::Unexpected`].
pub fn parse_callback(query: &str) -> Result<Callback, GatewayError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut authority = None;
    let mut status = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "Authority" => authority = Some(v.into_owned()),
            "Status" => status = Some(v.into_owned()),
            _ => {}
        }
    }
    let bad = |what: &str| GatewayError::unexpected(GATEWAY, what, query.as_bytes());
    let authority = authority.ok_or_else(|| bad("callback without Authority"))?;
    if !valid_authority(&authority) {
        return Err(bad("callback with a malformed Authority"));
    }
    let ok = match status.as_deref() {
        Some("OK") => true,
        Some("NOK") => false,
        _ => return Err(bad("callback Status is neither OK nor NOK")),
    };
    Ok(Callback { authority, ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(status: u16, body: &str) -> Result<Map<String, Value>, GatewayError> {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        parse_envelope(status, Duration::from_secs(1), body.as_bytes())
    }

    fn refused_code(r: Result<Map<String, Value>, GatewayError>) -> String {
        match r {
            Err(GatewayError::Refused { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn success_envelopes_with_every_empty_errors_shape() {
        for errors in ["[]", "{}", "null"] {
            let body = format!(
                r#"{{"data":{{"code":100,"message":"Success","authority":"A0000000000000000000000000000wwOGYpd","fee_type":"Merchant","fee":100}},"errors":{errors}}}"#
            );
            let Ok(data) = envelope(200, &body) else {
                panic!("success envelope with errors={errors} refused");
            };
            assert_eq!(code_of(data.get("code")), Some(100));
        }
        let Ok(data) = envelope(200, r#"{"data":{"code":100,"message":"ok"}}"#) else {
            panic!("success envelope without errors refused");
        };
        assert_eq!(data.get("message"), Some(&json!("ok")));
    }

    #[test]
    fn failure_envelopes_with_every_empty_data_shape_and_any_status() {
        for data in ["[]", "{}", "null"] {
            for status in [200, 422, 400, 500] {
                let body = format!(
                    r#"{{"data":{data},"errors":{{"code":-9,"message":"The input params invalid, validation error.","validations":[{{"description":"The description must not be greater than 500 characters."}}]}}}}"#
                );
                match envelope(status, &body) {
                    Err(GatewayError::Refused { code, message, .. }) => {
                        assert_eq!(code, "-9");
                        assert!(
                            message.contains("description: The description"),
                            "{message}"
                        );
                    }
                    other => panic!("data={data} status={status}: {other:?}"),
                }
            }
        }
        assert_eq!(
            refused_code(envelope(
                200,
                r#"{"data":[],"errors":{"code":"-51","message":"x"}}"#
            )),
            "-51"
        );
    }

    #[test]
    fn answers_without_an_envelope() {
        assert!(matches!(
            envelope(502, "<html>Bad Gateway</html>"),
            Err(GatewayError::Unknown { .. })
        ));
        assert!(matches!(
            envelope(500, r#"{"data":[],"errors":[]}"#),
            Err(GatewayError::Unknown { .. })
        ));
        assert!(matches!(
            envelope(200, "<html>maintenance</html>"),
            Err(GatewayError::Unexpected { .. })
        ));
        assert!(matches!(
            envelope(200, r#"{"data":{},"errors":[]}"#),
            Err(GatewayError::Unexpected { .. })
        ));
        assert!(matches!(
            envelope(200, r#"{"data":"x","errors":[]}"#),
            Err(GatewayError::Unexpected { .. })
        ));
        assert!(matches!(
            envelope(200, r#"{"data":[],"errors":{"message":"no code"}}"#),
            Err(GatewayError::Unexpected { .. })
        ));
        assert!(matches!(
            envelope(429, ""),
            Err(GatewayError::RateLimited { .. })
        ));
        assert!(matches!(
            envelope(
                200,
                r#"{"data":[],"errors":{"code":-12,"message":"too many"}}"#
            ),
            Err(GatewayError::RateLimited { .. })
        ));
    }

    #[test]
    fn callbacks() {
        let a = "A0000000000000000000000000000wwOGYpd";
        assert_eq!(
            parse_callback(&format!("?Authority={a}&Status=OK")).ok(),
            Some(Callback {
                authority: a.into(),
                ok: true
            })
        );
        assert_eq!(
            parse_callback(&format!("Status=NOK&Authority={a}&x=1"))
                .map(|c| c.ok)
                .ok(),
            Some(false)
        );
        for bad in [
            "Status=OK".to_owned(),
            format!("Authority={a}"),
            format!("Authority={a}&Status=ok"),
            "Authority=A%2F..%2Fx&Status=OK".to_owned(),
            "Authority=&Status=OK".to_owned(),
        ] {
            assert!(
                matches!(parse_callback(&bad), Err(GatewayError::Unexpected { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn validations_render_as_one_line() {
        assert_eq!(
            validations(&json!([{"amount": "too small"}, {"callback_url": "required"}])),
            "amount: too small; callback_url: required"
        );
        assert_eq!(validations(&json!(null)), "");
    }
}
