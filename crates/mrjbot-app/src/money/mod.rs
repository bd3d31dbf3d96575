//! The money path: order -> payment attempt -> (wallet) -> provisioning.
//!
//! Guarantees, and what gives them:
//! - **A payment is approved once.** Every transition is a guarded update; the database
//!   also allows one approved payment per order (partial unique index), so two admins,
//!   five webhook deliveries or a callback racing the reconciler approve it once.
//! - **Provisioning happens exactly once, even across crashes.** Approval and the outbox
//!   row that asks for provisioning commit in one transaction; the worker delivers in one
//!   transaction that also sets `fulfilled_at` only where it is still empty.
//! - **Money is never lost.** A second payment for an already paid order becomes a
//!   wallet top-up; an order that cannot be delivered before the give-up deadline is
//!   refunded to the wallet and the customer is told. Balances are sums of the
//!   append-only wallet ledger; each entry is unique per (cause, reason).
//! - **Callbacks are never trusted.** Gateways are asked again (verify / re-fetch /
//!   signature) before anything changes; every inbound event is recorded with its
//!   outcome, forged ones included.

pub mod card;
pub mod discounts;
pub mod gateways;
pub mod outbox;
pub mod report;
pub mod settings;

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::feed::Changed;
use crate::notify::{Notice, NoticeTarget};
use crate::{App, ListParams};
use mrjbot_db::money::{self as repo, Approval, LedgerRow, OrderRow, PaymentRow};
use mrjbot_db::{Conn, plans as plans_repo, subscriptions as subs_repo, users as users_repo};
use mrjbot_domain::payment::ConfirmedBy;
use mrjbot_domain::{
    Currency, ErrorCode, Money, OrderKind, OrderStatus, PaymentMethod, PaymentStatus, Permission,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use settings::PaymentSettings;

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub user_id: i64,
    pub kind: OrderKind,
    pub plan_id: Option<i64>,
    pub subscription_id: Option<i64>,
    /// Amount to pay in minor units of `currency` (after the discount).
    pub amount_minor: i64,
    pub currency: Currency,
    pub discount_code_id: Option<i64>,
    pub discount_minor: i64,
    pub status: OrderStatus,
    /// Extra traffic bought by an add-on order, in bytes.
    pub addon_bytes: Option<i64>,
    pub expires_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
    /// When the subscription was delivered (absent until then).
    pub fulfilled_at: Option<Timestamp>,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
}

impl TryFrom<OrderRow> for OrderView {
    type Error = AppError;
    fn try_from(o: OrderRow) -> AppResult<Self> {
        let details: serde_json::Value = o
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        Ok(Self {
            id: o.id,
            user_id: o.user_id,
            kind: OrderKind::parse(&o.kind)?,
            plan_id: o.plan_id,
            subscription_id: o.subscription_id,
            amount_minor: o.amount_minor,
            currency: Currency::parse(&o.currency)?,
            discount_code_id: o.discount_code_id,
            discount_minor: o.discount_minor,
            status: OrderStatus::parse(&o.status)?,
            addon_bytes: details.get("addon_bytes").and_then(|v| v.as_i64()),
            expires_at: o.expires_at.map(Timestamp::from_millis),
            paid_at: o.paid_at.map(Timestamp::from_millis),
            fulfilled_at: o.fulfilled_at.map(Timestamp::from_millis),
            failure_reason: o.failure_reason,
            created_at: Timestamp::from_millis(o.created_at),
        })
    }
}

/// What the customer must do to pay a card payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardInstructions {
    /// The full card number (16-19 digits) to transfer to.
    pub card_number: String,
    pub owner_name: String,
    pub bank: Option<String>,
    /// The exact amount, in rials.
    pub amount_minor: i64,
    /// Transfer and send the receipt before this time.
    pub expires_at: Option<Timestamp>,
}

/// A payment attempt as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: i64,
    pub order_id: i64,
    pub user_id: i64,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: Currency,
    /// The gateway's id of the payment (Zarinpal authority, YooKassa id, invoice id, charge id).
    pub gateway_ref: Option<String>,
    /// The settlement reference (Zarinpal ref_id, provider charge id).
    pub bank_ref: Option<String>,
    /// Where the customer pays (gateway page or invoice link).
    pub pay_url: Option<String>,
    /// For card payments: where to transfer.
    pub card: Option<CardInstructions>,
    pub card_id: Option<i64>,
    pub approved_by: Option<i64>,
    pub approved_at: Option<Timestamp>,
    pub rejected_reason: Option<String>,
    pub refunded_minor: i64,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl TryFrom<PaymentRow> for PaymentView {
    type Error = AppError;
    fn try_from(p: PaymentRow) -> AppResult<Self> {
        Ok(Self {
            id: p.id,
            order_id: p.order_id,
            user_id: p.user_id,
            method: PaymentMethod::parse(&p.method)?,
            status: PaymentStatus::parse(&p.status)?,
            amount_minor: p.amount_minor,
            currency: Currency::parse(&p.currency)?,
            gateway_ref: p.gateway_ref,
            bank_ref: p.bank_ref,
            pay_url: p.pay_url,
            card: None,
            card_id: p.card_id,
            approved_by: p.approved_by,
            approved_at: p.approved_at.map(Timestamp::from_millis),
            rejected_reason: p.rejected_reason,
            refunded_minor: p.refunded_minor,
            expires_at: p.expires_at.map(Timestamp::from_millis),
            created_at: Timestamp::from_millis(p.created_at),
        })
    }
}

/// Input for a new order.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// The customer (default: the caller).
    pub user_id: Option<i64>,
    pub kind: OrderKind,
    /// The plan bought (purchase) or renewed with (renewal; default: the subscription's).
    pub plan_id: Option<i64>,
    /// The subscription renewed or given extra traffic.
    pub subscription_id: Option<i64>,
    /// The currency to pay in (the plan must have a price in it).
    pub currency: Currency,
    /// Wallet top-up amount in minor units.
    pub amount_minor: Option<i64>,
    /// Extra traffic in whole GiB (add-on orders).
    pub addon_gib: Option<i64>,
    /// Discount code (not for top-ups).
    pub discount_code: Option<String>,
    /// Repeating a request with the same key returns the first order.
    pub idempotency_key: Option<String>,
}

/// Input for paying an order.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub method: PaymentMethod,
    /// Customer e-mail for the YooKassa fiscal receipt.
    pub email: Option<String>,
    /// Customer phone for the YooKassa fiscal receipt.
    pub phone: Option<String>,
}

/// Input for rejecting a payment.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    /// Shown to the customer.
    pub reason: String,
}

/// Where refunded money goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundDestination {
    /// Back to the payer through the gateway (Zarinpal within 30 minutes, YooKassa, Stars).
    Gateway,
    /// Into the customer's wallet.
    Wallet,
}

/// Input for a refund.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// Minor units (default: everything not yet refunded).
    pub amount_minor: Option<i64>,
    pub destination: RefundDestination,
    pub reason: String,
    /// Also disable the subscription the payment bought.
    #[serde(default)]
    pub revoke_service: bool,
}

/// A wallet adjustment by staff.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletAdjust {
    /// Positive credits, negative debits (never below zero).
    pub amount_minor: i64,
    pub currency: Currency,
    pub note: String,
}

/// A wallet: balances per currency and the latest entries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WalletView {
    pub user_id: i64,
    pub balances: Vec<Balance>,
    pub entries: Vec<LedgerEntry>,
    pub total_entries: i64,
}

/// A balance in one currency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub currency: Currency,
    pub amount_minor: i64,
}

/// One ledger entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub ref_type: Option<String>,
    pub ref_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

/// Filters for listing payments.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PaymentQuery {
    pub user_id: Option<i64>,
    pub order_id: Option<i64>,
    pub status: Option<PaymentStatus>,
    pub method: Option<PaymentMethod>,
    pub card_id: Option<i64>,
    /// Only card payments with a receipt waiting for a decision.
    pub awaiting_review: Option<bool>,
}

/// Filters for listing orders.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    pub user_id: Option<i64>,
    pub status: Option<OrderStatus>,
    pub kind: Option<OrderKind>,
}

/// Outcome of confirming money for a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// This call approved it.
    Now,
    /// It was approved before (a repeat): nothing changed.
    Already,
    /// The order was paid by another attempt: this money went to the wallet.
    ToWallet,
    /// The payment cannot be approved from its state (e.g. refunded).
    Refused,
}

pub(crate) fn order_not_found() -> AppError {
    AppError::not_found(ErrorCode::OrderNotFound, "order")
}

pub(crate) fn payment_not_found() -> AppError {
    AppError::not_found(ErrorCode::PaymentNotFound, "payment")
}

fn transition(msg: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidPaymentTransition, msg)
}

const MAX_TOPUP_MINOR: i64 = 1_000_000_000_000;

/// A wallet ledger entry for `user_id` caused by `cause` (type, id), without note or author.
pub(crate) fn ledger_entry(
    user_id: i64,
    amount_minor: i64,
    currency: &str,
    reason: &str,
    cause: Option<(&str, i64)>,
    now: i64,
) -> LedgerRow {
    LedgerRow {
        id: 0,
        user_id,
        amount_minor,
        currency: currency.to_owned(),
        reason: reason.to_owned(),
        ref_type: cause.map(|c| c.0.to_owned()),
        ref_id: cause.map(|c| c.1),
        note: None,
        created_by: None,
        created_at: now,
    }
}

impl App {
    /// The customer of an order: the caller, or anyone for staff with `payments.approve`
    /// or `subscriptions.write`.
    fn order_owner(&self, actor: &Actor, user_id: Option<i64>) -> AppResult<i64> {
        match user_id {
            None => actor.user_id.ok_or_else(AppError::denied),
            Some(u) if actor.is(u) => Ok(u),
            Some(u) => {
                if actor.can(Permission::SubscriptionsWrite)
                    || actor.can(Permission::PaymentsApprove)
                {
                    Ok(u)
                } else {
                    Err(AppError::denied())
                }
            }
        }
    }

    /// Prices and records an order. Repeating with the same idempotency key returns the
    /// first order instead of a second one.
    pub async fn create_order(&self, actor: &Actor, input: NewOrder) -> AppResult<OrderView> {
        let user_id = self.order_owner(actor, input.user_id)?;
        if let Some(k) = &input.idempotency_key {
            if k.is_empty() || k.len() > 100 {
                return Err(AppError::field("idempotency_key", "1 to 100 characters"));
            }
            if let Some(o) = repo::order_by_key(self.db().read().await?.conn(), k).await? {
                if o.user_id != user_id {
                    return Err(AppError::field("idempotency_key", "already used"));
                }
                return o.try_into();
            }
        }
        let now = self.now();
        let settings = self.payment_settings().await?;
        let mut tx = self.db().begin().await?;
        users_repo::get(tx.conn(), user_id)
            .await?
            .ok_or_else(|| AppError::field("user_id", "no such user"))?;
        let mut details = json!({});
        let (plan_id, subscription_id, price) = match input.kind {
            OrderKind::Topup => {
                let amount = input
                    .amount_minor
                    .filter(|a| (1..=MAX_TOPUP_MINOR).contains(a))
                    .ok_or_else(|| {
                        AppError::field(
                            "amount_minor",
                            "a positive amount is required for a top-up",
                        )
                    })?;
                if !PaymentMethod::Wallet.accepts(input.currency) {
                    return Err(AppError::field(
                        "currency",
                        "the wallet does not hold this currency",
                    ));
                }
                if input.discount_code.is_some() {
                    return Err(AppError::field("discount_code", "top-ups take no discount"));
                }
                (None, None, Money::new(amount, input.currency)?)
            }
            OrderKind::Purchase | OrderKind::Renewal => {
                let sub = match (input.kind, input.subscription_id) {
                    (OrderKind::Renewal, Some(s)) => {
                        Some(self.own_subscription(tx.conn(), user_id, s).await?)
                    }
                    (OrderKind::Renewal, None) => {
                        return Err(AppError::field(
                            "subscription_id",
                            "name the subscription to renew",
                        ));
                    }
                    (_, Some(_)) => {
                        return Err(AppError::field(
                            "subscription_id",
                            "a purchase creates a new subscription",
                        ));
                    }
                    _ => None,
                };
                let plan_id = input
                    .plan_id
                    .or_else(|| sub.as_ref().and_then(|s| s.plan_id))
                    .ok_or_else(|| AppError::field("plan_id", "name a plan"))?;
                let price = self.plan_price(tx.conn(), plan_id, input.currency).await?;
                (Some(plan_id), sub.map(|s| s.id), price)
            }
            OrderKind::Addon => {
                let sid = input
                    .subscription_id
                    .ok_or_else(|| AppError::field("subscription_id", "name the subscription"))?;
                let sub = self.own_subscription(tx.conn(), user_id, sid).await?;
                let gib = input
                    .addon_gib
                    .filter(|g| (1..=10_000).contains(g))
                    .ok_or_else(|| AppError::field("addon_gib", "1 to 10000 GiB"))?;
                let per = settings
                    .addon_price_per_gib
                    .get(input.currency.code())
                    .copied()
                    .ok_or_else(|| {
                        AppError::new(
                            ErrorCode::PlanUnavailable,
                            format!("extra traffic is not sold in {}", input.currency),
                        )
                    })?;
                let amount = per
                    .checked_mul(gib)
                    .ok_or_else(|| AppError::field("addon_gib", "too large"))?;
                details = json!({ "addon_bytes": gib * (1 << 30) });
                (
                    sub.plan_id,
                    Some(sub.id),
                    Money::new(amount, input.currency)?,
                )
            }
        };
        let (discount_code_id, discount) = match input
            .discount_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            Some(code) => {
                let (id, off) = self
                    .apply_discount(tx.conn(), code, user_id, plan_id, price, now)
                    .await?;
                (Some(id), off)
            }
            None => (None, 0),
        };
        let mut row = OrderRow {
            id: 0,
            user_id,
            plan_id,
            kind: input.kind.as_str().into(),
            subscription_id,
            amount_minor: price.amount_minor - discount,
            currency: price.currency.code().into(),
            discount_code_id,
            discount_minor: discount,
            status: OrderStatus::Created.as_str().into(),
            idempotency_key: input.idempotency_key.clone(),
            details: Some(details.to_string()),
            expires_at: Some(now.millis() + i64::from(settings.order_ttl_minutes) * 60_000),
            paid_at: None,
            fulfilled_at: None,
            failure_reason: None,
            created_at: now.millis(),
            updated_at: now.millis(),
        };
        row.id = repo::insert_order(tx.conn(), &row).await?;
        if let Some(code_id) = discount_code_id {
            repo::insert_redemption(tx.conn(), code_id, user_id, row.id, now.millis()).await?;
        }
        self.audit(
            tx.conn(),
            actor,
            "order.create",
            "order",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn own_subscription(
        &self,
        c: Conn<'_>,
        user_id: i64,
        id: i64,
    ) -> AppResult<mrjbot_db::subscriptions::SubscriptionRow> {
        subs_repo::get(c, id)
            .await?
            .filter(|s| s.user_id == user_id)
            .ok_or_else(|| {
                AppError::field("subscription_id", "no such subscription of this customer")
            })
    }

    async fn plan_price(
        &self,
        mut c: Conn<'_>,
        plan_id: i64,
        currency: Currency,
    ) -> AppResult<Money> {
        let plan = plans_repo::get(c.reborrow(), plan_id)
            .await?
            .ok_or_else(|| AppError::field("plan_id", "no such plan"))?;
        if !plan.is_active {
            return Err(AppError::new(
                ErrorCode::PlanUnavailable,
                "this plan is not sold any more",
            ));
        }
        let prices = plans_repo::prices(c, &[plan_id]).await?;
        let p = prices
            .iter()
            .find(|p| p.currency == currency.code())
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::PlanUnavailable,
                    format!("this plan has no price in {currency}"),
                )
            })?;
        Ok(Money::new(p.amount_minor, currency)?)
    }

    /// One order: one's own, or any with `payments.read`.
    pub async fn get_order(&self, actor: &Actor, id: i64) -> AppResult<OrderView> {
        let o = repo::get_order(self.db().read().await?.conn(), id, false)
            .await?
            .filter(|o| actor.is(o.user_id) || actor.can(Permission::PaymentsRead))
            .ok_or_else(order_not_found)?;
        o.try_into()
    }

    /// A page of orders: one's own, or anyone's with `payments.read`.
    pub async fn list_orders(
        &self,
        actor: &Actor,
        q: OrderQuery,
        page: ListParams,
    ) -> AppResult<(Vec<OrderView>, i64)> {
        let mut f = repo::OrderFilter {
            user_id: q.user_id,
            status: q.status.map(|s| s.as_str().into()),
            kind: q.kind.map(|k| k.as_str().into()),
        };
        if !actor.can(Permission::PaymentsRead) {
            f.user_id = Some(actor.user_id.ok_or_else(AppError::denied)?);
        }
        let page = page.page(&["id", "created_at", "amount_minor"], "id")?;
        let (rows, total) = repo::list_orders(self.db().read().await?.conn(), &f, page).await?;
        Ok((
            rows.into_iter()
                .map(OrderView::try_from)
                .collect::<AppResult<_>>()?,
            total,
        ))
    }

    /// Cancels an unpaid order (and its open attempts); its discount use is given back.
    pub async fn cancel_order(&self, actor: &Actor, id: i64) -> AppResult<OrderView> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        let o = repo::get_order(tx.conn(), id, true)
            .await?
            .filter(|o| actor.is(o.user_id) || actor.can(Permission::PaymentsApprove))
            .ok_or_else(order_not_found)?;
        if !repo::set_order_status(
            tx.conn(),
            id,
            &["created", "pending"],
            "cancelled",
            now.millis(),
        )
        .await?
        {
            return Err(transition(format!(
                "an order that is {} cannot be cancelled",
                o.status
            )));
        }
        for p in repo::payments_of_order(tx.conn(), id).await? {
            repo::close_payment(
                tx.conn(),
                p.id,
                &["created", "pending"],
                "rejected",
                Some("order cancelled"),
                None,
                now.millis(),
            )
            .await?;
        }
        repo::release_redemption(tx.conn(), id, now.millis()).await?;
        self.audit(
            tx.conn(),
            actor,
            "order.cancel",
            "order",
            Some(id),
            Some(&o),
            None::<&()>,
        )
        .await?;
        tx.commit().await?;
        self.get_order(actor, id).await
    }

    /// Starts paying an order with a method: reserves a card, asks the gateway for a
    /// payment page or an invoice, or pays from the wallet at once.
    pub async fn pay_order(
        &self,
        actor: &Actor,
        order_id: i64,
        req: PayRequest,
    ) -> AppResult<PaymentView> {
        let order = repo::get_order(self.db().read().await?.conn(), order_id, false)
            .await?
            .filter(|o| actor.is(o.user_id) || actor.can(Permission::PaymentsApprove))
            .ok_or_else(order_not_found)?;
        let status = OrderStatus::parse(&order.status)?;
        if !matches!(status, OrderStatus::Created | OrderStatus::Pending) {
            return Err(transition(format!(
                "the order is {status}; it cannot be paid"
            )));
        }
        if order.expires_at.is_some_and(|e| e <= self.now().millis()) {
            return Err(transition("the order expired; place a new one"));
        }
        let currency = Currency::parse(&order.currency)?;
        if !req.method.accepts(currency) {
            return Err(AppError::new(
                ErrorCode::PaymentMethodUnavailable,
                format!("{} does not take {currency}", req.method),
            ));
        }
        if order.kind == OrderKind::Topup.as_str() && req.method == PaymentMethod::Wallet {
            return Err(AppError::new(
                ErrorCode::PaymentMethodUnavailable,
                "a top-up cannot be paid from the wallet",
            ));
        }
        let view = match req.method {
            PaymentMethod::Wallet => self.pay_from_wallet(actor, &order).await?,
            PaymentMethod::Card => self.reserve_card(actor, &order).await?,
            m => self.start_gateway_payment(actor, &order, m, &req).await?,
        };
        Ok(view)
    }

    /// Inserts a new attempt for an order and marks the order pending.
    pub(crate) async fn new_attempt(
        &self,
        mut c: Conn<'_>,
        order: &OrderRow,
        method: PaymentMethod,
        expires_at: Option<i64>,
        card_id: Option<i64>,
    ) -> AppResult<PaymentRow> {
        let now = self.now().millis();
        let mut p = PaymentRow {
            id: 0,
            order_id: order.id,
            user_id: order.user_id,
            method: method.as_str().into(),
            status: PaymentStatus::Created.as_str().into(),
            amount_minor: order.amount_minor,
            currency: order.currency.clone(),
            gateway_ref: None,
            bank_ref: None,
            idempotency_key: Some(mrjbot_domain::SecretToken::generate().as_str()[..24].to_owned()),
            card_id,
            approved_by: None,
            approved_at: None,
            rejected_reason: None,
            refunded_minor: 0,
            raw: None,
            pay_url: None,
            created_at: now,
            updated_at: now,
            expires_at,
        };
        p.id = repo::insert_payment(c.reborrow(), &p).await?;
        repo::set_order_status(c, order.id, &["created"], "pending", now).await?;
        Ok(p)
    }

    async fn pay_from_wallet(&self, actor: &Actor, order: &OrderRow) -> AppResult<PaymentView> {
        let now = self.now();
        let mut tx = self.db().begin().await?;
        repo::lock_user(tx.conn(), order.user_id).await?;
        let balance = repo::balance(tx.conn(), order.user_id, &order.currency).await?;
        if balance < order.amount_minor {
            return Err(AppError::new(
                ErrorCode::InsufficientFunds,
                format!(
                    "the wallet holds {} and the order costs {}",
                    Money {
                        amount_minor: balance,
                        currency: Currency::parse(&order.currency)?
                    },
                    Money {
                        amount_minor: order.amount_minor,
                        currency: Currency::parse(&order.currency)?
                    }
                ),
            ));
        }
        let p = self
            .new_attempt(tx.conn(), order, PaymentMethod::Wallet, None, None)
            .await?;
        if order.amount_minor > 0 {
            repo::ledger_append(
                tx.conn(),
                &LedgerRow {
                    created_by: actor.user_id,
                    ..ledger_entry(
                        order.user_id,
                        -order.amount_minor,
                        &order.currency,
                        "order_payment",
                        Some(("payment", p.id)),
                        now.millis(),
                    )
                },
            )
            .await?;
        }
        let outcome = self
            .confirm(
                tx.conn(),
                p.id,
                ConfirmedBy::Gateway,
                &Approval {
                    by: actor.user_id,
                    ..Approval::default()
                },
            )
            .await?;
        if outcome != Confirmed::Now {
            return Err(transition("the order was paid meanwhile"));
        }
        self.audit(
            tx.conn(),
            actor,
            "payment.wallet",
            "payment",
            Some(p.id),
            None::<&()>,
            Some(&p),
        )
        .await?;
        tx.commit().await?;
        self.wake_outbox();
        self.payment_view(p.id).await
    }

    /// The heart of the money path: approves a payment and queues what follows, inside
    /// the caller's transaction. Safe to call any number of times for the same payment.
    pub(crate) async fn confirm(
        &self,
        mut c: Conn<'_>,
        payment_id: i64,
        by: ConfirmedBy,
        approval: &Approval<'_>,
    ) -> AppResult<Confirmed> {
        let now = self.now().millis();
        let p = repo::get_payment(c.reborrow(), payment_id, true)
            .await?
            .ok_or_else(payment_not_found)?;
        let status = PaymentStatus::parse(&p.status)?;
        if status.is_paid() {
            return Ok(if status == PaymentStatus::Approved {
                Confirmed::Already
            } else {
                Confirmed::Refused
            });
        }
        let from: Vec<&str> = PaymentStatus::approvable_from(by)
            .iter()
            .map(|s| s.as_str())
            .collect();
        if !from.contains(&p.status.as_str()) {
            return Ok(Confirmed::Refused);
        }
        let order = repo::get_order(c.reborrow(), p.order_id, true)
            .await?
            .ok_or_else(order_not_found)?;
        let already_paid = repo::payments_of_order(c.reborrow(), order.id)
            .await?
            .iter()
            .any(|q| q.id != p.id && (q.status == "approved" || q.status == "refunded"));
        let mut outcome = Confirmed::Now;
        let mut target = order.clone();
        if already_paid
            || !matches!(
                order.status.as_str(),
                "created" | "pending" | "expired" | "cancelled"
            )
        {
            // Money for an order that is already paid (or was given up on and refunded):
            // keep it as a top-up of the same customer rather than refusing real money.
            let mut topup = OrderRow {
                id: 0,
                plan_id: None,
                kind: OrderKind::Topup.as_str().into(),
                subscription_id: None,
                discount_code_id: None,
                discount_minor: 0,
                idempotency_key: None,
                details: Some(json!({ "surplus_of_order": order.id }).to_string()),
                expires_at: None,
                paid_at: None,
                fulfilled_at: None,
                failure_reason: None,
                status: OrderStatus::Pending.as_str().into(),
                amount_minor: p.amount_minor,
                currency: p.currency.clone(),
                created_at: now,
                updated_at: now,
                ..order.clone()
            };
            topup.id = repo::insert_order(c.reborrow(), &topup).await?;
            repo::move_payment(c.reborrow(), p.id, topup.id, now).await?;
            target = topup;
            outcome = Confirmed::ToWallet;
        }
        if !repo::approve_payment(c.reborrow(), p.id, &from, approval, now).await? {
            return Ok(Confirmed::Already);
        }
        if !repo::set_order_status(
            c.reborrow(),
            target.id,
            &["created", "pending", "expired", "cancelled"],
            "paid",
            now,
        )
        .await?
        {
            return Err(AppError::internal(std::io::Error::other(format!(
                "order {} could not be marked paid",
                target.id
            ))));
        }
        let method = PaymentMethod::parse(&p.method)?;
        if target.kind == OrderKind::Topup.as_str() {
            if method == PaymentMethod::Wallet {
                return Err(transition("a top-up cannot be paid from the wallet"));
            }
            repo::ledger_append(
                c.reborrow(),
                &LedgerRow {
                    note: (outcome == Confirmed::ToWallet)
                        .then(|| format!("second payment for order {}", order.id)),
                    ..ledger_entry(
                        target.user_id,
                        p.amount_minor,
                        &p.currency,
                        "topup",
                        Some(("payment", p.id)),
                        now,
                    )
                },
            )
            .await?;
            repo::set_order_fulfilled(c.reborrow(), target.id, None, now).await?;
        } else {
            repo::enqueue(
                c.reborrow(),
                outbox::PROVISION,
                &json!({ "order_id": target.id }).to_string(),
                &format!("provision:{}", target.id),
                now,
            )
            .await?;
        }
        let money = Money {
            amount_minor: p.amount_minor,
            currency: Currency::parse(&p.currency)?,
        };
        let key = if outcome == Confirmed::ToWallet {
            "pay-surplus-to-wallet"
        } else {
            "pay-approved"
        };
        outbox::enqueue_notice(
            c.reborrow(),
            NoticeTarget::Staff,
            &Notice::OrderPaid {
                order_id: target.id,
                payment_id: p.id,
            },
            &format!("staff:paid:{}", p.id),
            now,
        )
        .await?;
        self.notify(
            c,
            target.user_id,
            key,
            json!({ "amount": money.to_string(), "order": order.id, "payment": p.id, "method": p.method }),
            &format!("{key}:{}", p.id),
        )
        .await?;
        Ok(outcome)
    }

    /// Queues a message to a customer, once per `dedupe`.
    pub(crate) async fn notify(
        &self,
        c: Conn<'_>,
        user_id: i64,
        key: &str,
        args: serde_json::Value,
        dedupe: &str,
    ) -> AppResult<()> {
        outbox::enqueue_notice(
            c,
            NoticeTarget::Customer { user_id },
            &Notice::Text {
                key: key.to_owned(),
                args: outbox::text_args(&args),
            },
            &format!("notify:{dedupe}"),
            self.now().millis(),
        )
        .await?;
        Ok(())
    }

    /// Rejects an open payment (card receipt refused, or staff closing an attempt). Final:
    /// a rejected card payment is never approved later by staff.
    pub async fn reject_payment(
        &self,
        actor: &Actor,
        id: i64,
        req: RejectRequest,
    ) -> AppResult<PaymentView> {
        actor.require(Permission::PaymentsApprove)?;
        let reason = req.reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AppError::field("reason", "1 to 500 characters"));
        }
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let p = repo::get_payment(tx.conn(), id, true)
            .await?
            .ok_or_else(payment_not_found)?;
        if !repo::close_payment(
            tx.conn(),
            id,
            &["created", "pending"],
            "rejected",
            Some(reason),
            actor.user_id,
            now,
        )
        .await?
        {
            return Err(match p.status.as_str() {
                "approved" | "refunded" => AppError::new(
                    ErrorCode::PaymentAlreadyApproved,
                    "the payment was already approved",
                ),
                s => transition(format!("the payment is {s} already")),
            });
        }
        let mut changed = Vec::new();
        if p.method == "card" {
            changed.extend(self.end_temporary_service(tx.conn(), p.order_id).await?);
        }
        self.notify(
            tx.conn(),
            p.user_id,
            "pay-rejected",
            json!({ "reason": reason, "order": p.order_id }),
            &format!("pay-rejected:{id}"),
        )
        .await?;
        self.audit(
            tx.conn(),
            actor,
            "payment.reject",
            "payment",
            Some(id),
            Some(&p),
            Some(&json!({ "reason": reason })),
        )
        .await?;
        self.commit_changes(tx, &changed).await?;
        self.wake_outbox();
        self.payment_view(id).await
    }

    /// One payment: one's own, or any with `payments.read`.
    pub async fn get_payment(&self, actor: &Actor, id: i64) -> AppResult<PaymentView> {
        let p = repo::get_payment(self.db().read().await?.conn(), id, false)
            .await?
            .filter(|p| actor.is(p.user_id) || actor.can(Permission::PaymentsRead))
            .ok_or_else(payment_not_found)?;
        self.with_card(p.try_into()?).await
    }

    pub(crate) async fn payment_view(&self, id: i64) -> AppResult<PaymentView> {
        let p = repo::get_payment(self.db().read().await?.conn(), id, false)
            .await?
            .ok_or_else(payment_not_found)?;
        self.with_card(p.try_into()?).await
    }

    async fn with_card(&self, mut v: PaymentView) -> AppResult<PaymentView> {
        if let (Some(cid), PaymentMethod::Card, true) = (v.card_id, v.method, v.status.is_open())
            && let Some(card) = repo::get_card(self.db().read().await?.conn(), cid).await?
        {
            v.card = Some(CardInstructions {
                card_number: card.number,
                owner_name: card.owner_name,
                bank: card.bank,
                amount_minor: v.amount_minor,
                expires_at: v.expires_at,
            });
        }
        Ok(v)
    }

    /// A page of payments: one's own, or anyone's with `payments.read`.
    pub async fn list_payments(
        &self,
        actor: &Actor,
        q: PaymentQuery,
        page: ListParams,
    ) -> AppResult<(Vec<PaymentView>, i64)> {
        let mut f = repo::PaymentFilter {
            user_id: q.user_id,
            order_id: q.order_id,
            status: q.status.map(|s| s.as_str().into()),
            method: q.method.map(|m| m.as_str().into()),
            card_id: q.card_id,
            awaiting_review: q.awaiting_review.unwrap_or(false),
        };
        if !actor.can(Permission::PaymentsRead) {
            f.user_id = Some(actor.user_id.ok_or_else(AppError::denied)?);
            f.card_id = None;
        }
        let page = page.page(&["id", "created_at", "amount_minor", "approved_at"], "id")?;
        let (rows, total) = repo::list_payments(self.db().read().await?.conn(), &f, page).await?;
        Ok((
            rows.into_iter()
                .map(PaymentView::try_from)
                .collect::<AppResult<_>>()?,
            total,
        ))
    }

    /// The wallet of a customer: one's own, or anyone's with `payments.read`.
    pub async fn wallet(
        &self,
        actor: &Actor,
        user_id: i64,
        page: ListParams,
    ) -> AppResult<WalletView> {
        if !actor.is(user_id) {
            actor.require(Permission::PaymentsRead)?;
        }
        let mut c = self.db().read().await?;
        users_repo::get(c.conn(), user_id)
            .await?
            .ok_or_else(|| AppError::not_found(ErrorCode::UserNotFound, "user"))?;
        let balances = repo::balances(c.conn(), user_id)
            .await?
            .into_iter()
            .filter_map(|(cur, amount)| {
                Currency::parse(&cur).ok().map(|currency| Balance {
                    currency,
                    amount_minor: amount,
                })
            })
            .collect();
        let pg = page.page(&["id"], "id")?;
        let (rows, total) = repo::ledger_page(c.conn(), user_id, pg.limit, pg.offset).await?;
        Ok(WalletView {
            user_id,
            balances,
            total_entries: total,
            entries: rows
                .into_iter()
                .map(|r| LedgerEntry {
                    id: r.id,
                    amount_minor: r.amount_minor,
                    currency: r.currency,
                    reason: r.reason,
                    ref_type: r.ref_type,
                    ref_id: r.ref_id,
                    note: r.note,
                    created_at: Timestamp::from_millis(r.created_at),
                })
                .collect(),
        })
    }

    /// Staff credit or debit of a wallet (needs `payments.approve`); a debit never takes
    /// the balance below zero.
    pub async fn adjust_wallet(
        &self,
        actor: &Actor,
        user_id: i64,
        input: WalletAdjust,
    ) -> AppResult<WalletView> {
        actor.require(Permission::PaymentsApprove)?;
        let note = input.note.trim();
        if note.is_empty() || note.chars().count() > 500 {
            return Err(AppError::field("note", "1 to 500 characters"));
        }
        if input.amount_minor == 0
            || !(-MAX_TOPUP_MINOR..=MAX_TOPUP_MINOR).contains(&input.amount_minor)
        {
            return Err(AppError::field(
                "amount_minor",
                "a non-zero amount within limits",
            ));
        }
        if !PaymentMethod::Wallet.accepts(input.currency) {
            return Err(AppError::field(
                "currency",
                "the wallet does not hold this currency",
            ));
        }
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !repo::lock_user(tx.conn(), user_id).await? {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "user"));
        }
        let balance = repo::balance(tx.conn(), user_id, input.currency.code()).await?;
        if balance
            .checked_add(input.amount_minor)
            .is_none_or(|b| b < 0)
        {
            return Err(AppError::new(
                ErrorCode::InsufficientFunds,
                "the balance would go below zero",
            ));
        }
        let entry = LedgerRow {
            note: Some(note.into()),
            created_by: actor.user_id,
            ..ledger_entry(
                user_id,
                input.amount_minor,
                input.currency.code(),
                "adjustment",
                None,
                now,
            )
        };
        repo::ledger_append(tx.conn(), &entry).await?;
        self.audit(
            tx.conn(),
            actor,
            "wallet.adjust",
            "user",
            Some(user_id),
            None::<&()>,
            Some(&entry),
        )
        .await?;
        tx.commit().await?;
        self.wallet(actor, user_id, ListParams::default()).await
    }

    /// Returns money of an approved payment: through the gateway where it can, or into
    /// the wallet. Never more than was paid, whatever the number of calls.
    pub async fn refund_payment(
        &self,
        actor: &Actor,
        id: i64,
        req: RefundRequest,
    ) -> AppResult<PaymentView> {
        actor.require(Permission::PaymentsApprove)?;
        let reason = req.reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(AppError::field("reason", "1 to 500 characters"));
        }
        let p = repo::get_payment(self.db().read().await?.conn(), id, false)
            .await?
            .ok_or_else(payment_not_found)?;
        if !PaymentStatus::parse(&p.status)?.is_paid() {
            return Err(transition("only a received payment can be refunded"));
        }
        let left = p.amount_minor - p.refunded_minor;
        let amount = req.amount_minor.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(AppError::field(
                "amount_minor",
                format!("between 1 and {left}"),
            ));
        }
        let method = PaymentMethod::parse(&p.method)?;
        let gateway_ref = match req.destination {
            RefundDestination::Wallet => {
                if !PaymentMethod::Wallet.accepts(Currency::parse(&p.currency)?) {
                    return Err(AppError::new(
                        ErrorCode::PaymentMethodUnavailable,
                        "the wallet does not hold this currency",
                    ));
                }
                None
            }
            RefundDestination::Gateway => {
                if !method.refunds_at_gateway() {
                    return Err(AppError::new(
                        ErrorCode::PaymentMethodUnavailable,
                        format!("{method} cannot send money back by itself; refund to the wallet"),
                    ));
                }
                Some(self.refund_at_gateway(&p, amount, &reason).await?)
            }
        };
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !repo::add_refunded(tx.conn(), id, amount, now).await? {
            return Err(transition("this would refund more than was paid"));
        }
        let refund = repo::RefundRow {
            id: 0,
            payment_id: id,
            amount_minor: amount,
            currency: p.currency.clone(),
            destination: match req.destination {
                RefundDestination::Gateway => "gateway",
                RefundDestination::Wallet => "wallet",
            }
            .into(),
            gateway_ref,
            reason: reason.clone(),
            created_by: actor.user_id,
            created_at: now,
        };
        let rid = repo::insert_refund(tx.conn(), &refund).await?;
        if req.destination == RefundDestination::Wallet {
            repo::ledger_append(
                tx.conn(),
                &LedgerRow {
                    note: Some(reason.clone()),
                    created_by: actor.user_id,
                    ..ledger_entry(
                        p.user_id,
                        amount,
                        &p.currency,
                        "refund",
                        Some(("refund", rid)),
                        now,
                    )
                },
            )
            .await?;
        }
        let mut changed = Vec::new();
        if req.revoke_service
            && let Some(sid) = repo::get_order(tx.conn(), p.order_id, false)
                .await?
                .and_then(|o| o.subscription_id)
        {
            changed.extend(self.disable_subscription_in(tx.conn(), sid).await?);
        }
        let money = Money {
            amount_minor: amount,
            currency: Currency::parse(&p.currency)?,
        };
        self.notify(
            tx.conn(),
            p.user_id,
            if req.destination == RefundDestination::Wallet {
                "refund-to-wallet"
            } else {
                "refund-to-payer"
            },
            json!({ "amount": money.to_string(), "reason": reason }),
            &format!("refund:{rid}"),
        )
        .await?;
        self.audit(
            tx.conn(),
            actor,
            "payment.refund",
            "payment",
            Some(id),
            Some(&p),
            Some(&refund),
        )
        .await?;
        self.commit_changes(tx, &changed).await?;
        self.wake_outbox();
        self.payment_view(id).await
    }

    /// Disables a subscription inside a transaction (refund with revocation, rejected review).
    pub(crate) async fn disable_subscription_in(
        &self,
        mut c: Conn<'_>,
        sid: i64,
    ) -> AppResult<Option<Changed>> {
        let now = self.now();
        if let Some(mut row) = subs_repo::get_for_update(c.reborrow(), sid).await? {
            let st = crate::subscriptions::state_of(&row);
            if let Ok(next) = st.suspend() {
                crate::subscriptions::apply_state(&mut row, next);
                row.updated_at = now.millis();
                subs_repo::update_guarded(c, &row).await?;
                return Ok(Some(Changed::Sub(sid)));
            }
        }
        Ok(None)
    }
}
