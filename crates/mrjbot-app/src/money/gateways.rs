//! Online gateways on the money path: starting a payment, the callbacks and webhooks,
//! Telegram Stars checkout, refunds through the gateway, and the reconciliation job that
//! asks each gateway about attempts still open (lost callbacks, closed browser tabs).
//!
//! Rules kept everywhere here: the attempt row exists before the gateway is called; a
//! callback is only a hint, so the gateway is asked again (Zarinpal verify, YooKassa
//! re-fetch, Crypto Pay signature plus re-fetch) and the amount compared with ours before
//! anything changes; every inbound event is recorded with its outcome, forged or not;
//! an answer whose outcome is unknown changes nothing and is retried later.

use crate::App;
use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::money::outbox::WorkError;
use crate::money::{Confirmed, PayRequest, PaymentView, payment_not_found};
use crate::pay::GatewayError;
use crate::pay::cryptopay::{self, CryptoPayClient, InvoiceStatus};
use crate::pay::telegram::{StarsInvoice, TelegramClient, UpdateKind};
use crate::pay::yookassa::{self, Yookassa};
use crate::pay::zarinpal::{self, InquiryStatus, Zarinpal, ZarinpalMeta};
use mrjbot_db::money::{self as repo, Approval, OrderRow, PaymentRow};
use mrjbot_db::users as users_repo;
use mrjbot_domain::payment::ConfirmedBy;
use mrjbot_domain::{Currency, ErrorCode, Money, PaymentMethod};
use serde_json::json;
use sha2::Digest;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The configured gateways and helpers of the money path (all optional).
#[derive(Clone, Default)]
pub struct Gateways {
    pub zarinpal: Option<Arc<Zarinpal>>,
    pub yookassa: Option<Arc<Yookassa>>,
    pub cryptopay: Option<Arc<CryptoPayClient>>,
    /// The Crypto Pay app token (webhook signatures are keyed with its hash).
    pub cryptopay_token: Option<String>,
    /// The Bot API: Stars invoices and messages to customers.
    pub telegram: Option<Arc<TelegramClient>>,
    /// Receipt OCR (absent: receipts are judged on duplicates only and read by staff).
    pub ocr: Option<Arc<crate::receipt::Ocr>>,
    /// Public base URL of this server, for gateway callbacks (`https://shop.example`).
    pub public_url: Option<String>,
}

/// What the customer's browser is shown after the Zarinpal callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Paid and confirmed.
    Paid {
        payment_id: i64,
        bank_ref: Option<String>,
    },
    /// Cancelled or failed at the bank.
    Failed,
    /// Not known yet (the gateway did not answer); the shop checks again on its own.
    Unknown,
}

static NO_GATEWAYS: std::sync::LazyLock<Gateways> = std::sync::LazyLock::new(Gateways::default);

fn unavailable(what: &str) -> AppError {
    AppError::new(
        ErrorCode::PaymentMethodUnavailable,
        format!("{what} is not enabled in this shop"),
    )
}

fn gateway_failed(e: &GatewayError) -> AppError {
    AppError::new(
        ErrorCode::GatewayFailed,
        format!(
            "the payment gateway refused or did not answer ({e}); nothing was charged, try again"
        ),
    )
}

fn money_of(p: &PaymentRow) -> AppResult<Money> {
    Ok(Money {
        amount_minor: p.amount_minor,
        currency: Currency::parse(&p.currency)?,
    })
}

/// Our invoice payload for Stars and Crypto Pay: the payment id.
fn payload_of(payment_id: i64) -> String {
    format!("mrjbot:p{payment_id}")
}

fn payment_of_payload(s: &str) -> Option<i64> {
    s.strip_prefix("mrjbot:p")?.parse().ok()
}

impl App {
    /// Installs the gateways (once, at start).
    pub fn set_gateways(&self, g: Gateways) {
        let _ = self.inner.gateways.set(g);
    }

    /// The configured gateways.
    pub fn gateways(&self) -> &Gateways {
        self.inner.gateways.get().unwrap_or(&NO_GATEWAYS)
    }

    /// The methods this shop takes now (cards: when an active card exists).
    pub async fn enabled_methods(&self) -> AppResult<Vec<PaymentMethod>> {
        let g = self.gateways();
        let mut out = vec![PaymentMethod::Wallet];
        if repo::list_cards(self.db().read().await?.conn())
            .await?
            .iter()
            .any(|c| c.is_active)
        {
            out.push(PaymentMethod::Card);
        }
        if g.zarinpal.is_some() {
            out.push(PaymentMethod::Zarinpal);
        }
        if g.yookassa.is_some() {
            out.push(PaymentMethod::Yookassa);
        }
        if g.telegram.is_some() {
            out.push(PaymentMethod::Stars);
        }
        if g.cryptopay.is_some() {
            out.push(PaymentMethod::Cryptopay);
        }
        Ok(out)
    }

    fn callback_url(&self, gateway: &str) -> AppResult<String> {
        let base = self.gateways().public_url.as_deref().ok_or_else(|| {
            AppError::new(
                ErrorCode::PaymentMethodUnavailable,
                "the shop's public URL is not configured (public_url)",
            )
        })?;
        Ok(format!(
            "{}/api/v1/payments/callbacks/{gateway}",
            base.trim_end_matches('/')
        ))
    }

    async fn description_of(&self, order: &OrderRow) -> AppResult<String> {
        let plan = match order.plan_id {
            Some(p) => mrjbot_db::plans::get(self.db().read().await?.conn(), p)
                .await?
                .map(|p| p.name),
            None => None,
        };
        Ok(match (order.kind.as_str(), plan) {
            ("topup", _) => format!("Wallet top-up, order {}", order.id),
            ("addon", _) => format!("Extra traffic, order {}", order.id),
            (_, Some(name)) => format!("{name}, order {}", order.id),
            _ => format!("Order {}", order.id),
        })
    }

    /// Creates the attempt, asks the gateway for a payment page / invoice, and records it.
    pub(crate) async fn start_gateway_payment(
        &self,
        actor: &Actor,
        order: &OrderRow,
        method: PaymentMethod,
        req: &PayRequest,
    ) -> AppResult<PaymentView> {
        let g = self.gateways().clone();
        match method {
            PaymentMethod::Zarinpal if g.zarinpal.is_none() => return Err(unavailable("Zarinpal")),
            PaymentMethod::Yookassa if g.yookassa.is_none() => return Err(unavailable("YooKassa")),
            PaymentMethod::Cryptopay if g.cryptopay.is_none() => {
                return Err(unavailable("Crypto Pay"));
            }
            PaymentMethod::Stars if g.telegram.is_none() => {
                return Err(unavailable("Telegram Stars"));
            }
            _ => {}
        }
        let description = self.description_of(order).await?;
        let settings = self.payment_settings().await?;
        let p = {
            let mut tx = self.db().begin().await?;
            let p = self
                .new_attempt(tx.conn(), order, method, order.expires_at, None)
                .await?;
            self.audit(
                tx.conn(),
                actor,
                "payment.start",
                "payment",
                Some(p.id),
                None::<&()>,
                Some(&json!({ "method": method })),
            )
            .await?;
            tx.commit().await?;
            p
        };
        let amount = money_of(&p)?;
        let mut raw: Option<String> = None;
        let started: Result<(Option<String>, String), GatewayError> = match method {
            PaymentMethod::Zarinpal => {
                let zp = g.zarinpal.as_ref().ok_or_else(|| unavailable("Zarinpal"))?;
                let callback = self.callback_url("zarinpal")?;
                let meta = ZarinpalMeta {
                    order_id: Some(order.id.to_string()),
                    mobile: req.phone.clone(),
                    email: req.email.clone(),
                };
                zp.request(p.amount_minor, &description, &callback, &meta)
                    .await
                    .map(|r| (Some(r.authority.clone()), zp.start_pay_url(&r.authority)))
            }
            PaymentMethod::Yookassa => {
                let yk = g.yookassa.as_ref().ok_or_else(|| unavailable("YooKassa"))?;
                let account_email = users_repo::get(self.db().read().await?.conn(), order.user_id)
                    .await?
                    .and_then(|u| u.email);
                let return_url = settings
                    .return_url
                    .clone()
                    .or_else(|| g.public_url.clone())
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::PaymentMethodUnavailable,
                            "no return URL is configured for YooKassa",
                        )
                    })?;
                let create = yookassa::CreatePayment {
                    amount,
                    description: description.clone(),
                    return_url,
                    metadata: BTreeMap::from([
                        ("payment_id".to_owned(), p.id.to_string()),
                        ("order_id".to_owned(), order.id.to_string()),
                    ]),
                    // 54-FZ receipts need a contact: the one given now, else the account's.
                    customer_email: req.email.clone().or(account_email),
                    customer_phone: req.phone.clone(),
                    item_description: description.clone(),
                };
                // Kept with the attempt: a refund's receipt goes to the same contact.
                raw = Some(
                    json!({ "receipt_email": create.customer_email, "receipt_phone": create.customer_phone })
                        .to_string(),
                );
                let key = p
                    .idempotency_key
                    .clone()
                    .unwrap_or_else(|| format!("mrjbot-payment-{}", p.id));
                yk.create_payment(&create, &key)
                    .await
                    .and_then(|y| match y.confirmation_url {
                        Some(u) => Ok((Some(y.id), u)),
                        None => Err(GatewayError::Unexpected {
                            gateway: "yookassa",
                            message: "no confirmation_url".into(),
                        }),
                    })
            }
            PaymentMethod::Cryptopay => {
                let cp = g
                    .cryptopay
                    .as_ref()
                    .ok_or_else(|| unavailable("Crypto Pay"))?;
                let expires_in = order
                    .expires_at
                    .map(|e| ((e - self.now().millis()) / 1000).clamp(60, 2_678_400) as u32);
                let create = cryptopay::CreateInvoice {
                    amount,
                    description: description.clone(),
                    payload: payload_of(p.id),
                    expires_in,
                    accepted_assets: None,
                    paid_btn_url: settings.return_url.clone(),
                };
                cp.create_invoice(&create)
                    .await
                    .map(|i| (Some(i.invoice_id.to_string()), i.pay_url))
            }
            PaymentMethod::Stars => {
                let tg = g
                    .telegram
                    .as_ref()
                    .ok_or_else(|| unavailable("Telegram Stars"))?;
                let title: String = description.chars().take(32).collect();
                let invoice = StarsInvoice {
                    title,
                    description: description.clone(),
                    payload: payload_of(p.id),
                    amount_stars: p.amount_minor,
                    subscription_period: None,
                };
                tg.create_invoice_link(&invoice)
                    .await
                    .map(|link| (None, link))
            }
            PaymentMethod::Card | PaymentMethod::Wallet => return Err(unavailable("this method")),
        };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        match started {
            Ok((gref, url)) => {
                repo::set_payment_started(
                    tx.conn(),
                    p.id,
                    gref.as_deref(),
                    Some(&url),
                    raw.as_deref(),
                    now,
                )
                .await?;
                tx.commit().await?;
                self.payment_view(p.id).await
            }
            Err(e) => {
                // The customer never got a link, so nothing can be paid on this attempt.
                tracing::warn!(payment = p.id, error = %e, "starting a gateway payment failed");
                repo::close_payment(
                    tx.conn(),
                    p.id,
                    &["created"],
                    "rejected",
                    Some(&format!("gateway: {e}")),
                    None,
                    now,
                )
                .await?;
                tx.commit().await?;
                Err(gateway_failed(&e))
            }
        }
    }

    /// Confirms money the gateway vouched for, in its own transaction.
    async fn confirm_from_gateway(
        &self,
        payment_id: i64,
        approval: &Approval<'_>,
    ) -> AppResult<Confirmed> {
        // Two attempts of one order confirmed at the same instant on PostgreSQL: the loser
        // hits the one-approval-per-order index; run again, it then sees the order paid and
        // keeps its money as a top-up.
        let mut tries = 0;
        loop {
            match self.confirm_once(payment_id, approval).await {
                Err(e) if e.code == ErrorCode::AlreadyExists && tries < 2 => {
                    tries += 1;
                    tracing::info!(
                        payment = payment_id,
                        "another attempt of the order was approved at the same time; retrying"
                    );
                }
                other => return other,
            }
        }
    }

    async fn confirm_once(&self, payment_id: i64, approval: &Approval<'_>) -> AppResult<Confirmed> {
        let mut tx = self.db().begin().await?;
        let outcome = self
            .confirm(tx.conn(), payment_id, ConfirmedBy::Gateway, approval)
            .await?;
        let actor = Actor::system("payment gateway");
        if outcome != Confirmed::Already {
            self.audit(
                tx.conn(),
                &actor,
                "payment.gateway_confirm",
                "payment",
                Some(payment_id),
                None::<&()>,
                Some(&json!({ "outcome": format!("{outcome:?}") })),
            )
            .await?;
        }
        tx.commit().await?;
        self.wake_outbox();
        Ok(outcome)
    }

    async fn record(
        &self,
        source: &str,
        event_id: &str,
        payment_id: Option<i64>,
        payload: &str,
        status: &str,
        error: Option<&str>,
    ) -> AppResult<bool> {
        let mut tx = self.db().begin().await?;
        let payload: String = payload.chars().take(20_000).collect();
        let e = repo::Event {
            source,
            event_id,
            payment_id,
            payload: &payload,
            status,
            error,
        };
        let new = repo::record_event(tx.conn(), &e, self.now().millis()).await?;
        if !new {
            repo::finish_event(tx.conn(), &e, self.now().millis()).await?;
        }
        tx.commit().await?;
        if status == "failed" {
            tracing::warn!(
                source,
                event_id,
                error = error.unwrap_or(""),
                "payment event rejected"
            );
        }
        Ok(new)
    }

    async fn gateway_close(&self, payment_id: i64, to: &str, reason: &str) -> AppResult<bool> {
        let mut tx = self.db().begin().await?;
        let done = repo::close_payment(
            tx.conn(),
            payment_id,
            &["created", "pending"],
            to,
            Some(reason),
            None,
            self.now().millis(),
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Verifies a Zarinpal payment with the amount from our store and confirms it.
    async fn zarinpal_verify(&self, zp: &Zarinpal, p: &PaymentRow) -> AppResult<CallbackOutcome> {
        let Some(authority) = p.gateway_ref.as_deref() else {
            return Ok(CallbackOutcome::Unknown);
        };
        match zp.verify(p.amount_minor, authority).await {
            Ok(v) => {
                let raw =
                    json!({ "ref_id": v.ref_id, "card_pan": v.card_pan, "already": v.already })
                        .to_string();
                self.confirm_from_gateway(
                    p.id,
                    &Approval {
                        by: None,
                        gateway_ref: None,
                        bank_ref: Some(&v.ref_id),
                        raw: Some(&raw),
                    },
                )
                .await?;
                Ok(CallbackOutcome::Paid {
                    payment_id: p.id,
                    bank_ref: Some(v.ref_id),
                })
            }
            Err(GatewayError::Refused { code, message, .. })
                if code == "-51" || code == "-50" || code == "-54" || code == "-55" =>
            {
                self.gateway_close(p.id, "rejected", &format!("zarinpal {code}: {message}"))
                    .await?;
                Ok(CallbackOutcome::Failed)
            }
            Err(e) => {
                tracing::warn!(payment = p.id, error = %e, "zarinpal verify failed; reconciliation retries");
                Ok(CallbackOutcome::Unknown)
            }
        }
    }

    /// The browser came back from Zarinpal (`?Authority=..&Status=OK|NOK`). Status proves
    /// nothing: OK means "verify now"; the verdict is verify's.
    pub async fn zarinpal_callback(&self, query: &str) -> AppResult<CallbackOutcome> {
        let zp = self
            .gateways()
            .zarinpal
            .clone()
            .ok_or_else(|| unavailable("Zarinpal"))?;
        let cb = match zarinpal::parse_callback(query) {
            Ok(cb) => cb,
            Err(e) => {
                let digest = hex::encode(sha2::Sha256::digest(query.as_bytes()));
                self.record(
                    "zarinpal",
                    &format!("bad:{digest}"),
                    None,
                    query,
                    "failed",
                    Some(&e.to_string()),
                )
                .await?;
                return Err(AppError::field("Authority", "not a Zarinpal callback"));
            }
        };
        let event = format!(
            "callback:{}:{}",
            cb.authority,
            if cb.ok { "OK" } else { "NOK" }
        );
        let Some(p) =
            repo::payment_by_ref(self.db().read().await?.conn(), "zarinpal", &cb.authority).await?
        else {
            self.record(
                "zarinpal",
                &event,
                None,
                query,
                "failed",
                Some("unknown authority"),
            )
            .await?;
            return Err(payment_not_found());
        };
        if !cb.ok {
            self.gateway_close(p.id, "rejected", "cancelled at the gateway")
                .await?;
            self.record("zarinpal", &event, Some(p.id), query, "processed", None)
                .await?;
            return Ok(CallbackOutcome::Failed);
        }
        let out = self.zarinpal_verify(&zp, &p).await?;
        let status = if out == CallbackOutcome::Unknown {
            "pending"
        } else {
            "processed"
        };
        self.record("zarinpal", &event, Some(p.id), query, status, None)
            .await?;
        Ok(out)
    }

    /// A YooKassa notification. Trusted only from the allowed addresses, and even then only
    /// as a hint: the payment is fetched again and its fetched status and amount decide.
    /// `Err(Unavailable)` asks YooKassa to deliver again later.
    pub async fn yookassa_webhook(&self, source: IpAddr, body: &[u8]) -> AppResult<()> {
        let yk = self
            .gateways()
            .yookassa
            .clone()
            .ok_or_else(|| unavailable("YooKassa"))?;
        let text = String::from_utf8_lossy(body).into_owned();
        let digest = hex::encode(sha2::Sha256::digest(body));
        if !yk.source_allowed(source) {
            self.record(
                "yookassa",
                &format!("forged:{digest}"),
                None,
                &text,
                "failed",
                Some(&format!("source {source} not allowed")),
            )
            .await?;
            return Err(AppError::new(
                ErrorCode::PermissionDenied,
                "notifications are accepted from YooKassa only",
            ));
        }
        let n = match yookassa::parse_notification(body) {
            Ok(n) => n,
            Err(e) => {
                self.record(
                    "yookassa",
                    &format!("bad:{digest}"),
                    None,
                    &text,
                    "failed",
                    Some(&e.to_string()),
                )
                .await?;
                return Err(AppError::new(
                    ErrorCode::MalformedRequest,
                    "not a YooKassa notification",
                ));
            }
        };
        let event = format!("{}:{}", n.object_id, n.event);
        if !n.event.starts_with("payment.") {
            self.record("yookassa", &event, None, &text, "ignored", None)
                .await?;
            return Ok(());
        }
        let fetched = match yk.get_payment(&n.object_id).await {
            Ok(f) => f,
            Err(e) if e.is_retryable() => {
                self.record(
                    "yookassa",
                    &event,
                    None,
                    &text,
                    "pending",
                    Some(&e.to_string()),
                )
                .await?;
                return Err(AppError::new(
                    ErrorCode::Unavailable,
                    "YooKassa did not answer; deliver again later",
                ));
            }
            Err(e) => {
                self.record(
                    "yookassa",
                    &event,
                    None,
                    &text,
                    "failed",
                    Some(&format!("re-fetch refused: {e}")),
                )
                .await?;
                return Err(AppError::new(
                    ErrorCode::PaymentNotFound,
                    "YooKassa does not know this payment",
                ));
            }
        };
        let Some(p) =
            repo::payment_by_ref(self.db().read().await?.conn(), "yookassa", &fetched.id).await?
        else {
            self.record(
                "yookassa",
                &event,
                None,
                &text,
                "ignored",
                Some("not a payment of this shop"),
            )
            .await?;
            return Ok(());
        };
        self.yookassa_apply(&p, &fetched, &event, &text).await
    }

    async fn yookassa_apply(
        &self,
        p: &PaymentRow,
        fetched: &yookassa::Payment,
        event: &str,
        text: &str,
    ) -> AppResult<()> {
        match fetched.status {
            yookassa::PaymentStatus::Succeeded => {
                if fetched.amount != money_of(p)? {
                    self.record(
                        "yookassa",
                        event,
                        Some(p.id),
                        text,
                        "failed",
                        Some(&format!(
                            "amount {} differs from ours {}",
                            fetched.amount,
                            money_of(p)?
                        )),
                    )
                    .await?;
                    return Ok(());
                }
                self.confirm_from_gateway(p.id, &Approval::default())
                    .await?;
                self.record("yookassa", event, Some(p.id), text, "processed", None)
                    .await?;
            }
            yookassa::PaymentStatus::Canceled => {
                let reason = fetched
                    .cancellation_reason
                    .clone()
                    .unwrap_or_else(|| "canceled".into());
                self.gateway_close(p.id, "rejected", &format!("yookassa: {reason}"))
                    .await?;
                self.record("yookassa", event, Some(p.id), text, "processed", None)
                    .await?;
            }
            _ => {
                self.record(
                    "yookassa",
                    event,
                    Some(p.id),
                    text,
                    "ignored",
                    Some("not final yet"),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// A Crypto Pay webhook: the signature over the raw body must match, then the invoice
    /// is fetched again and its amount compared with ours.
    pub async fn cryptopay_webhook(&self, signature: Option<&str>, body: &[u8]) -> AppResult<()> {
        let cp = self
            .gateways()
            .cryptopay
            .clone()
            .ok_or_else(|| unavailable("Crypto Pay"))?;
        let text = String::from_utf8_lossy(body).into_owned();
        let digest = hex::encode(sha2::Sha256::digest(body));
        let token = self.gateways().cryptopay_token.clone().unwrap_or_default();
        if !signature.is_some_and(|s| cryptopay::verify_signature(&token, body, s)) {
            // The signature is part of the key: each forged variant is recorded.
            let sig: String = signature.unwrap_or("none").chars().take(64).collect();
            self.record(
                "cryptopay",
                &format!("forged:{digest}:{sig}"),
                None,
                &text,
                "failed",
                Some("bad or missing signature"),
            )
            .await?;
            return Err(AppError::new(ErrorCode::Unauthenticated, "bad signature"));
        }
        let u = match cryptopay::parse_webhook(body) {
            Ok(u) => u,
            Err(e) => {
                self.record(
                    "cryptopay",
                    &format!("bad:{digest}"),
                    None,
                    &text,
                    "failed",
                    Some(&e.to_string()),
                )
                .await?;
                return Err(AppError::new(
                    ErrorCode::MalformedRequest,
                    "not a Crypto Pay update",
                ));
            }
        };
        let event = u.update_id.to_string();
        let Some(p) = repo::payment_by_ref(
            self.db().read().await?.conn(),
            "cryptopay",
            &u.invoice.invoice_id.to_string(),
        )
        .await?
        else {
            self.record(
                "cryptopay",
                &event,
                None,
                &text,
                "failed",
                Some("unknown invoice"),
            )
            .await?;
            return Ok(());
        };
        if u.update_type != "invoice_paid" {
            self.record("cryptopay", &event, Some(p.id), &text, "ignored", None)
                .await?;
            return Ok(());
        }
        let fetched = match cp.get_invoices(&[u.invoice.invoice_id], None).await {
            Ok(mut v) if !v.is_empty() => v.remove(0),
            Ok(_) => {
                self.record(
                    "cryptopay",
                    &event,
                    Some(p.id),
                    &text,
                    "failed",
                    Some("Crypto Pay does not know the invoice"),
                )
                .await?;
                return Ok(());
            }
            Err(e) => {
                self.record(
                    "cryptopay",
                    &event,
                    Some(p.id),
                    &text,
                    "pending",
                    Some(&e.to_string()),
                )
                .await?;
                return Err(AppError::new(
                    ErrorCode::Unavailable,
                    "Crypto Pay did not answer; deliver again later",
                ));
            }
        };
        self.cryptopay_apply(&p, &fetched, &event, &text).await
    }

    async fn cryptopay_apply(
        &self,
        p: &PaymentRow,
        inv: &cryptopay::Invoice,
        event: &str,
        text: &str,
    ) -> AppResult<()> {
        match inv.status {
            InvoiceStatus::Paid => {
                let ok = inv
                    .amount_money()
                    .is_ok_and(|m| m == money_of(p).unwrap_or(m))
                    && inv.payload.as_deref().and_then(payment_of_payload) == Some(p.id);
                if !ok {
                    self.record(
                        "cryptopay",
                        event,
                        Some(p.id),
                        text,
                        "failed",
                        Some("amount or payload differs from ours"),
                    )
                    .await?;
                    return Ok(());
                }
                let raw = json!({ "paid_asset": inv.paid_asset, "paid_amount": inv.paid_amount, "paid_at": inv.paid_at }).to_string();
                self.confirm_from_gateway(
                    p.id,
                    &Approval {
                        raw: Some(&raw),
                        ..Approval::default()
                    },
                )
                .await?;
                self.record("cryptopay", event, Some(p.id), text, "processed", None)
                    .await?;
            }
            InvoiceStatus::Expired => {
                self.gateway_close(p.id, "expired", "the invoice expired")
                    .await?;
                self.record("cryptopay", event, Some(p.id), text, "processed", None)
                    .await?;
            }
            InvoiceStatus::Active => {
                self.record(
                    "cryptopay",
                    event,
                    Some(p.id),
                    text,
                    "ignored",
                    Some("not paid yet"),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Answers a Stars pre-checkout query: yes only for an open attempt of this customer
    /// with exactly this amount. Must run within Telegram's 10 seconds, so it only reads.
    pub async fn stars_pre_checkout(
        &self,
        id: &str,
        from_id: i64,
        currency: &str,
        total: i64,
        payload: &str,
    ) -> AppResult<()> {
        let tg = self
            .gateways()
            .telegram
            .clone()
            .ok_or_else(|| unavailable("Telegram Stars"))?;
        let verdict = self.check_stars(from_id, currency, total, payload).await;
        let (ok, msg) = match &verdict {
            Ok(_) => (true, None),
            Err(e) => (false, Some(e.message.as_str())),
        };
        tg.answer_pre_checkout_query(id, ok, msg)
            .await
            .map_err(|e| gateway_failed(&e))?;
        Ok(())
    }

    async fn check_stars(
        &self,
        from_id: i64,
        currency: &str,
        total: i64,
        payload: &str,
    ) -> AppResult<PaymentRow> {
        let pid = payment_of_payload(payload).ok_or_else(|| {
            AppError::new(ErrorCode::PaymentNotFound, "This invoice is not ours.")
        })?;
        let mut c = self.db().read().await?;
        let p = repo::get_payment(c.conn(), pid, false)
            .await?
            .ok_or_else(payment_not_found)?;
        let user = users_repo::get(c.conn(), p.user_id).await?;
        if p.method != "stars" || user.and_then(|u| u.telegram_id) != Some(from_id) {
            return Err(AppError::new(
                ErrorCode::PaymentNotFound,
                "This invoice belongs to someone else.",
            ));
        }
        if !(p.status == "pending" || p.status == "created") {
            return Err(AppError::new(
                ErrorCode::InvalidPaymentTransition,
                "This invoice is no longer open; please start again.",
            ));
        }
        if currency != "XTR" || total != p.amount_minor {
            return Err(AppError::new(
                ErrorCode::InvalidPaymentTransition,
                "The price changed; please start again.",
            ));
        }
        Ok(p)
    }

    /// A `successful_payment` for Stars: the only signal to deliver on.
    pub async fn stars_paid(
        &self,
        from_id: i64,
        currency: &str,
        total: i64,
        payload: &str,
        charge_id: &str,
        provider_charge_id: &str,
    ) -> AppResult<()> {
        let text = json!({ "from": from_id, "currency": currency, "total": total, "payload": payload, "charge": charge_id }).to_string();
        let pid = payment_of_payload(payload);
        let p = match pid {
            Some(pid) => repo::get_payment(self.db().read().await?.conn(), pid, false).await?,
            None => None,
        };
        let Some(p) = p.filter(|p| p.method == "stars") else {
            self.record(
                "stars",
                charge_id,
                None,
                &text,
                "failed",
                Some("unknown payload"),
            )
            .await?;
            return Ok(());
        };
        if currency != "XTR" || total != p.amount_minor {
            // Telegram took the money; never lose it: keep it as a failed event for staff.
            self.record(
                "stars",
                charge_id,
                Some(p.id),
                &text,
                "failed",
                Some("amount differs from ours"),
            )
            .await?;
            return Ok(());
        }
        let provider = (!provider_charge_id.is_empty()).then_some(provider_charge_id);
        self.confirm_from_gateway(
            p.id,
            &Approval {
                by: None,
                gateway_ref: Some(charge_id),
                bank_ref: provider,
                raw: Some(&text),
            },
        )
        .await?;
        self.record("stars", charge_id, Some(p.id), &text, "processed", None)
            .await?;
        Ok(())
    }

    /// Polls the Bot API for payment updates (pre-checkout queries and successful
    /// payments) while no Telegram bot front runs in this process. Handlers are
    /// idempotent, so updates re-read after a restart do no harm.
    pub async fn run_payment_updates(self) {
        let Some(tg) = self.gateways().telegram.clone() else {
            return;
        };
        let mut offset = 0i64;
        loop {
            match tg
                .get_updates(offset, 25, &["pre_checkout_query", "message"])
                .await
            {
                Ok(updates) => {
                    for u in updates {
                        offset = offset.max(u.update_id + 1);
                        if let Err(e) = self.handle_payment_update(u.kind).await {
                            tracing::warn!(update = u.update_id, error = %e, "payment update failed");
                        }
                    }
                }
                Err(GatewayError::RateLimited { retry_after, .. }) => {
                    tokio::time::sleep(retry_after).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "getUpdates failed");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Handles one Bot API update that concerns payments; others are ignored here.
    pub async fn handle_payment_update(&self, kind: UpdateKind) -> AppResult<()> {
        match kind {
            UpdateKind::PreCheckoutQuery {
                id,
                from_id,
                currency,
                total_amount,
                invoice_payload,
            } => {
                self.stars_pre_checkout(&id, from_id, &currency, total_amount, &invoice_payload)
                    .await
            }
            UpdateKind::SuccessfulPayment {
                from_id,
                currency,
                total_amount,
                invoice_payload,
                telegram_payment_charge_id,
                provider_payment_charge_id,
                ..
            } => {
                self.stars_paid(
                    from_id,
                    &currency,
                    total_amount,
                    &invoice_payload,
                    &telegram_payment_charge_id,
                    &provider_payment_charge_id,
                )
                .await
            }
            _ => Ok(()),
        }
    }

    /// Sends money back through the gateway; returns the gateway's refund reference.
    pub(crate) async fn refund_at_gateway(
        &self,
        p: &PaymentRow,
        amount: i64,
        reason: &str,
    ) -> AppResult<String> {
        let g = self.gateways().clone();
        let full = amount == p.amount_minor - p.refunded_minor && p.refunded_minor == 0;
        let gref = p.gateway_ref.clone().ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidPaymentTransition,
                "the payment has no gateway reference",
            )
        })?;
        match PaymentMethod::parse(&p.method)? {
            PaymentMethod::Zarinpal => {
                let zp = g.zarinpal.ok_or_else(|| unavailable("Zarinpal"))?;
                if !full {
                    return Err(AppError::field(
                        "amount_minor",
                        "Zarinpal only reverses a whole payment",
                    ));
                }
                zp.reverse(&gref).await.map_err(|e| gateway_failed(&e))?;
                Ok(format!("reverse:{gref}"))
            }
            PaymentMethod::Yookassa => {
                let yk = g.yookassa.ok_or_else(|| unavailable("YooKassa"))?;
                let started: serde_json::Value = p
                    .raw
                    .as_deref()
                    .and_then(|r| serde_json::from_str(r).ok())
                    .unwrap_or_default();
                let contact = |k: &str| started[k].as_str().map(str::to_owned);
                let req = yookassa::CreateRefund {
                    payment_id: gref,
                    amount: Money {
                        amount_minor: amount,
                        currency: Currency::parse(&p.currency)?,
                    },
                    description: reason.chars().take(250).collect(),
                    customer_email: contact("receipt_email"),
                    customer_phone: contact("receipt_phone"),
                    item_description: format!("Refund of payment {}", p.id),
                };
                // The same refund asked twice (a retry after a timeout) keeps one key.
                let key = format!("mrjbot-refund-{}-{}", p.id, p.refunded_minor);
                let r = yk
                    .create_refund(&req, &key)
                    .await
                    .map_err(|e| gateway_failed(&e))?;
                Ok(r.id)
            }
            PaymentMethod::Stars => {
                let tg = g.telegram.ok_or_else(|| unavailable("Telegram Stars"))?;
                if !full {
                    return Err(AppError::field(
                        "amount_minor",
                        "Stars payments are refunded whole",
                    ));
                }
                let user = users_repo::get(self.db().read().await?.conn(), p.user_id)
                    .await?
                    .and_then(|u| u.telegram_id)
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::InvalidPaymentTransition,
                            "the customer has no Telegram account",
                        )
                    })?;
                tg.refund_star_payment(user, &gref)
                    .await
                    .map_err(|e| gateway_failed(&e))?;
                Ok(gref)
            }
            m => Err(AppError::new(
                ErrorCode::PaymentMethodUnavailable,
                format!("{m} cannot refund by itself"),
            )),
        }
    }

    /// Asks every gateway about attempts still open, expires what ran out, and applies the
    /// card auto-accept rule. Safe to run on several replicas at once.
    pub async fn reconcile_payments(&self) -> AppResult<usize> {
        let now = self.now().millis();
        let mut changed = 0usize;
        {
            let mut tx = self.db().begin().await?;
            changed += repo::expire_payments(tx.conn(), now).await?.len();
            for order in repo::expire_orders(tx.conn(), now).await? {
                repo::release_redemption(tx.conn(), order, now).await?;
                changed += 1;
            }
            tx.commit().await?;
        }
        let g = self.gateways().clone();
        if let Some(zp) = &g.zarinpal {
            changed += counted("zarinpal", self.reconcile_zarinpal(zp).await);
        }
        if let Some(yk) = &g.yookassa {
            changed += counted("yookassa", self.reconcile_yookassa(yk).await);
        }
        if let Some(cp) = &g.cryptopay {
            changed += counted("crypto pay", self.reconcile_cryptopay(cp).await);
        }
        if let Some(tg) = &g.telegram {
            changed += counted("stars", self.reconcile_stars(tg).await);
        }
        changed += self.auto_accept_due().await?;
        Ok(changed)
    }

    /// Open attempts of `method` older than `age_ms` (younger ones may still get their
    /// callback), at most 100 per run.
    async fn stale_open(&self, method: &str, age_ms: i64) -> AppResult<Vec<PaymentRow>> {
        let before = self.now().millis() - age_ms;
        Ok(repo::open_payments(self.db().read().await?.conn(), &[method], before, 100).await?)
    }

    /// Fetches every stale open YooKassa payment again and acts on what YooKassa says.
    async fn reconcile_yookassa(&self, yk: &Yookassa) -> AppResult<usize> {
        let mut n = 0;
        for p in self.stale_open("yookassa", 60_000).await? {
            let Some(id) = p.gateway_ref.clone() else {
                continue;
            };
            match yk.get_payment(&id).await {
                Ok(f) => {
                    let event = format!("{id}:reconcile:{}", f.status.as_str());
                    self.yookassa_apply(&p, &f, &event, "reconciliation")
                        .await?;
                    n += 1;
                }
                Err(e) => {
                    tracing::info!(payment = p.id, error = %e, "yookassa reconciliation: no answer")
                }
            }
        }
        Ok(n)
    }

    /// Asks Crypto Pay about every stale open invoice in one call.
    async fn reconcile_cryptopay(&self, cp: &CryptoPayClient) -> AppResult<usize> {
        let open = self.stale_open("cryptopay", 60_000).await?;
        let ids: Vec<i64> = open
            .iter()
            .filter_map(|p| p.gateway_ref.as_deref()?.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let invoices = match cp.get_invoices(&ids, None).await {
            Ok(i) => i,
            Err(e) => {
                tracing::info!(error = %e, "crypto pay reconciliation: no answer");
                return Ok(0);
            }
        };
        let mut n = 0;
        for inv in invoices {
            let id = inv.invoice_id.to_string();
            if let Some(p) = open
                .iter()
                .find(|p| p.gateway_ref.as_deref() == Some(id.as_str()))
            {
                let event = format!("reconcile:{id}:{}", inv.status.as_str());
                self.cryptopay_apply(p, &inv, &event, "reconciliation")
                    .await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Finds paid Stars invoices whose `successful_payment` never reached us in the bot's
    /// Star transactions (chronological; the first 2,000 are read) and confirms them.
    async fn reconcile_stars(&self, tg: &TelegramClient) -> AppResult<usize> {
        let open = self.stale_open("stars", 60_000).await?;
        if open.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        let mut offset = 0u32;
        for _ in 0..20 {
            let page = match tg.get_star_transactions(offset, 100).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::info!(error = %e, "stars reconciliation: no answer");
                    break;
                }
            };
            for tx in &page {
                let Some(p) = tx
                    .invoice_payload
                    .as_deref()
                    .and_then(payment_of_payload)
                    .and_then(|pid| open.iter().find(|p| p.id == pid))
                else {
                    continue;
                };
                let payer = users_repo::get(self.db().read().await?.conn(), p.user_id)
                    .await?
                    .and_then(|u| u.telegram_id);
                if tx.amount != p.amount_minor
                    || tx.source_user_id.is_none()
                    || tx.source_user_id != payer
                {
                    self.record(
                        "stars",
                        &tx.id,
                        Some(p.id),
                        "reconciliation",
                        "failed",
                        Some("the transaction does not match the invoice"),
                    )
                    .await?;
                    continue;
                }
                let raw = json!({ "transaction": tx.id, "date": tx.date }).to_string();
                self.confirm_from_gateway(
                    p.id,
                    &Approval {
                        by: None,
                        gateway_ref: Some(&tx.id),
                        bank_ref: None,
                        raw: Some(&raw),
                    },
                )
                .await?;
                self.record(
                    "stars",
                    &tx.id,
                    Some(p.id),
                    "reconciliation",
                    "processed",
                    None,
                )
                .await?;
                n += 1;
            }
            if page.len() < 100 {
                break;
            }
            offset += 100;
        }
        Ok(n)
    }

    async fn reconcile_zarinpal(&self, zp: &Zarinpal) -> AppResult<usize> {
        let mut n = 0;
        // Paid at the bank but never verified (the browser never came back).
        if let Ok(list) = zp.unverified().await {
            for u in list {
                let Some(p) =
                    repo::payment_by_ref(self.db().read().await?.conn(), "zarinpal", &u.authority)
                        .await?
                else {
                    continue;
                };
                if !matches!(p.status.as_str(), "approved" | "refunded")
                    && self.zarinpal_verify(zp, &p).await? != CallbackOutcome::Unknown
                {
                    n += 1;
                }
            }
        }
        let open = self.stale_open("zarinpal", 120_000).await?;
        for p in open {
            let Some(authority) = p.gateway_ref.clone() else {
                continue;
            };
            match zp.inquiry(&authority).await {
                Ok(InquiryStatus::Paid | InquiryStatus::Verified) => {
                    if self.zarinpal_verify(zp, &p).await? != CallbackOutcome::Unknown {
                        n += 1;
                    }
                }
                Ok(InquiryStatus::Failed | InquiryStatus::Reversed) => {
                    if self
                        .gateway_close(p.id, "rejected", "failed at the bank")
                        .await?
                    {
                        n += 1;
                    }
                }
                Ok(InquiryStatus::InBank) => {}
                Err(e) => tracing::info!(payment = p.id, error = %e, "zarinpal inquiry: no answer"),
            }
        }
        Ok(n)
    }
}

/// The count of a gateway's reconciliation, or 0 with a warning when it failed (the other
/// gateways still run).
fn counted(gateway: &str, r: AppResult<usize>) -> usize {
    r.unwrap_or_else(|e| {
        tracing::warn!(gateway, error = %e, "reconciliation failed");
        0
    })
}

impl From<WorkError> for AppError {
    fn from(e: WorkError) -> Self {
        match e {
            WorkError::Later(m) | WorkError::Never(m) | WorkError::RetryAt(_, m) => {
                AppError::new(ErrorCode::Internal, m)
            }
            WorkError::RetryAfter(d) => {
                AppError::new(ErrorCode::Unavailable, format!("try again after {d:?}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn payloads_round_trip_and_reject_strangers() {
        assert_eq!(super::payment_of_payload(&super::payload_of(42)), Some(42));
        assert_eq!(super::payment_of_payload("p42"), None);
        assert_eq!(super::payment_of_payload("mrjbot:p4x"), None);
    }
}
