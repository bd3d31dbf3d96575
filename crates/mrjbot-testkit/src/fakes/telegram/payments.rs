//! Invoices and Telegram Stars (payments.md §3): `sendInvoice`, `createInvoiceLink`,
//! `answerPreCheckoutQuery`, `refundStarPayment`, `getStarTransactions`, and the user's
//! side of a checkout (a `pre_checkout_query`, then `successful_payment`). Stars only:
//! other currencies need a payment provider the fake does not model.

use super::PayOutcome;
use super::methods::{chat_id, reply_markup, reply_to};
use super::state::{ApiError, Inner, Post, Shared};
use crate::fakes::params::Params;
use anyhow::Context;
use rand::Rng;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The only subscription period the Bot API accepts (30 days).
pub const SUBSCRIPTION_PERIOD: i64 = 2_592_000;

#[derive(Debug, Clone)]
pub(super) struct InvoiceRecord {
    payload: String,
    link: Option<String>,
    currency: String,
    amount: i64,
    subscription_period: Option<i64>,
}

#[derive(Debug, Clone)]
pub(super) struct Charge {
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
pub(super) struct CheckoutAnswer {
    ok: bool,
    error_message: Option<String>,
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Inner {
    /// A service message from `user_id` in their private chat, queued as an update.
    fn push_user_message(&mut self, user_id: i64, field: &str, content: Value) -> i64 {
        let mut map = Map::new();
        map.insert(field.into(), content);
        self.user_message(user_id, user_id, map)
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
            "user": self.user_json(user_id),
            "invoice_payload": invoice.payload,
        });
        if let Some(period) = invoice.subscription_period {
            source["subscription_period"] = json!(period);
        }
        let date = self.now();
        self.transactions.push(json!({
            "id": charge_id,
            "amount": invoice.amount,
            "date": date,
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

pub(super) fn send_invoice(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let (record, invoice) = parse_invoice(p)?;
    let markup = reply_markup(p)?;
    let mut st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    let mut content = Map::new();
    content.insert("invoice".into(), invoice);
    if let Some(m) = markup.as_ref().and_then(|m| m.echoed()) {
        content.insert("reply_markup".into(), m);
    }
    let message = st.post(Post {
        method: "sendInvoice",
        chat_id,
        content,
        request: p.to_value(),
        reply_keyboard: None,
        reply_to: reply_to(p)?,
        me: shared.me(),
    })?;
    st.invoices.push(record);
    Ok(message)
}

pub(super) fn create_invoice_link(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
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

pub(super) fn answer_pre_checkout_query(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let id = p
        .str("pre_checkout_query_id")?
        .ok_or_else(|| ApiError::required("pre_checkout_query_id"))?;
    let ok = p.bool("ok")?.ok_or_else(|| ApiError::required("ok"))?;
    let error_message = p.str("error_message")?.filter(|m| !m.trim().is_empty());
    if !ok && error_message.is_none() {
        return Err(ApiError::bad_request("ERROR_MESSAGE_EMPTY"));
    }
    // Sent under the lock, so `pay_invoice` sees either the answer or the pending query.
    let mut st = shared.lock();
    let tx = st
        .pending_checkouts
        .remove(&id)
        .ok_or_else(ApiError::query_too_old)?;
    tx.send(CheckoutAnswer { ok, error_message })
        .map_err(|_| ApiError::query_too_old())?;
    Ok(json!(true))
}

pub(super) fn refund_star_payment(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
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
    let date = st.now();
    let user = st.user_json(user_id);
    st.transactions.push(json!({
        "id": format!("refund-{charge_id}"),
        "amount": charge.amount,
        "date": date,
        "receiver": {"type": "user", "user": user, "invoice_payload": charge.payload},
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

pub(super) fn get_star_transactions(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
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

/// User `user_id` pays the invoice with `payload_or_link` (see `FakeTelegram::pay_invoice`).
pub(super) async fn pay_invoice(
    shared: &Arc<Shared>,
    user_id: i64,
    payload_or_link: &str,
) -> anyhow::Result<PayOutcome> {
    anyhow::ensure!(user_id > 0, "a user id is positive");
    let (mut rx, query_id, invoice, timeout) = {
        let mut st = shared.lock();
        let invoice = st
            .find_invoice(payload_or_link)
            .with_context(|| format!("no invoice with payload or link `{payload_or_link}`"))?;
        st.next_query += 1;
        let query_id = format!("{}{:08}", shared.bot_id, st.next_query);
        let (tx, rx) = oneshot::channel();
        st.pending_checkouts.insert(query_id.clone(), tx);
        let from = st.user_json(user_id);
        st.push(
            "pre_checkout_query",
            json!({
                "id": query_id,
                "from": from,
                "currency": invoice.currency,
                "total_amount": invoice.amount,
                "invoice_payload": invoice.payload,
            }),
        );
        (rx, query_id, invoice, st.precheckout_timeout)
    };
    shared.notify();
    let answer = match tokio::time::timeout(timeout, &mut rx).await {
        Ok(Ok(answer)) => answer,
        _ => {
            let mut st = shared.lock();
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
    let charge_id = {
        let mut st = shared.lock();
        let recurring = invoice
            .subscription_period
            .map(|period| (true, st.now() + period));
        st.charge(user_id, &invoice, recurring)
    };
    shared.notify();
    Ok(PayOutcome::Paid { charge_id })
}

/// Charges a Stars subscription again (see `FakeTelegram::renew_subscription`).
pub(super) fn renew_subscription(shared: &Shared, charge_id: &str) -> anyhow::Result<String> {
    let mut st = shared.lock();
    let charge = st
        .charges
        .get(charge_id)
        .cloned()
        .with_context(|| format!("no charge `{charge_id}`"))?;
    anyhow::ensure!(!charge.refunded, "charge `{charge_id}` was refunded");
    let (Some(period), Some(expires)) = (charge.subscription_period, charge.subscription_expires)
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
    shared.notify();
    Ok(new_id)
}
