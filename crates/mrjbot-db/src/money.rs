//! The money tables: orders, payment attempts, refunds, the append-only wallet ledger,
//! gateway events, the outbox, destination cards, receipts and discount codes.
//!
//! Every state change here is a guarded update (`... WHERE status IN (...)`) that
//! returns whether it happened; the caller treats "not changed" as "someone else got
//! there first". Inserts that must happen once use the unique indexes of 0002/0003 with
//! `ON CONFLICT DO NOTHING` and report whether the row is new.

use crate::{Conn, DbError, Page, Sql, bind_all, on};
use serde::{Deserialize, Serialize};

fn lock(c: &Conn<'_>) -> &'static str {
    match c {
        Conn::Pg(_) => " FOR UPDATE",
        Conn::Sqlite(_) => "",
    }
}

fn in_list(s: &mut Sql, values: &[&str]) {
    s.push("(");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            s.push(", ");
        }
        s.bind(*v);
    }
    s.push(")");
}

// ---------------------------------------------------------------------------------------
// Orders

/// A stored order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub plan_id: Option<i64>,
    pub kind: String,
    pub subscription_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: String,
    pub discount_code_id: Option<i64>,
    pub discount_minor: i64,
    pub status: String,
    pub idempotency_key: Option<String>,
    pub details: Option<String>,
    pub expires_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub fulfilled_at: Option<i64>,
    pub failure_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const ORDER_COLS: &str = "id, user_id, plan_id, kind, subscription_id, amount_minor, currency, discount_code_id, \
    discount_minor, status, idempotency_key, details, expires_at, paid_at, fulfilled_at, failure_reason, created_at, updated_at";

/// Inserts an order and returns its id.
pub async fn insert_order(c: Conn<'_>, o: &OrderRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO orders (user_id, plan_id, kind, subscription_id, amount_minor, currency, discount_code_id, \
               discount_minor, status, idempotency_key, details, expires_at, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(o.user_id).bind(o.plan_id).bind(&o.kind).bind(o.subscription_id).bind(o.amount_minor).bind(&o.currency)
        .bind(o.discount_code_id).bind(o.discount_minor).bind(&o.status).bind(&o.idempotency_key).bind(&o.details)
        .bind(o.expires_at).bind(o.created_at).bind(o.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// One order; with `for_update` the row is locked until the transaction ends (PostgreSQL;
/// SQLite transactions are serialized by the single writer anyway).
pub async fn get_order(
    c: Conn<'_>,
    id: i64,
    for_update: bool,
) -> Result<Option<OrderRow>, DbError> {
    let l = if for_update { lock(&c) } else { "" };
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE id = $1{l}");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, OrderRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// The order created with this idempotency key.
pub async fn order_by_key(c: Conn<'_>, key: &str) -> Result<Option<OrderRow>, DbError> {
    let sql = format!("SELECT {ORDER_COLS} FROM orders WHERE idempotency_key = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, OrderRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(key).fetch_optional(&mut *c).await?),
    )
}

/// Filters for listing orders.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<i64>,
    pub status: Option<String>,
    pub kind: Option<String>,
}

/// A page of orders.
pub async fn list_orders(
    c: Conn<'_>,
    f: &OrderFilter,
    page: Page,
) -> Result<(Vec<OrderRow>, i64), DbError> {
    let mut w = Sql::new(" FROM orders WHERE 1 = 1");
    if let Some(u) = f.user_id {
        w.and("user_id = ?", u);
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    if let Some(k) = &f.kind {
        w.and("kind = ?", k.as_str());
    }
    crate::sql::fetch_page::<OrderRow>(c, ORDER_COLS, &w, page, None).await
}

/// Moves an order from one of `from` to `to`; true when it moved.
pub async fn set_order_status(
    c: Conn<'_>,
    id: i64,
    from: &[&str],
    to: &str,
    now: i64,
) -> Result<bool, DbError> {
    let mut s = Sql::new("UPDATE orders SET status = ");
    s.bind(to).push(", updated_at = ").bind(now);
    if to == "paid" {
        s.push(", paid_at = ").bind(now);
    }
    s.push(" WHERE id = ").bind(id).push(" AND status IN ");
    in_list(&mut s, from);
    let n = on!(c, c, D => bind_all!(sqlx::query::<D>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Marks a paid order delivered, once: true only for the caller that did it.
pub async fn set_order_fulfilled(
    c: Conn<'_>,
    id: i64,
    subscription_id: Option<i64>,
    now: i64,
) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE orders SET fulfilled_at = $1, subscription_id = COALESCE($2, subscription_id), updated_at = $1 \
        WHERE id = $3 AND status = 'paid' AND fulfilled_at IS NULL")
        .bind(now).bind(subscription_id).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Marks a paid, undelivered order failed with a reason, once.
pub async fn set_order_failed(
    c: Conn<'_>,
    id: i64,
    reason: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE orders SET status = 'failed', failure_reason = $1, updated_at = $2 \
        WHERE id = $3 AND status = 'paid' AND fulfilled_at IS NULL")
        .bind(reason).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Links an order to a subscription (e.g. the temporary one issued during review).
pub async fn set_order_subscription(
    c: Conn<'_>,
    id: i64,
    subscription_id: i64,
    now: i64,
) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE orders SET subscription_id = $1, updated_at = $2 WHERE id = $3")
        .bind(subscription_id).bind(now).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Unpaid orders whose time ran out; returns their ids (so discount uses can be released).
pub async fn expire_orders(c: Conn<'_>, now: i64) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("UPDATE orders SET status = 'expired', updated_at = $1 \
        WHERE status IN ('created','pending') AND expires_at IS NOT NULL AND expires_at <= $1 \
        AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.order_id = orders.id AND p.status IN ('created','pending') \
                        AND (p.expires_at IS NULL OR p.expires_at > $1 OR EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = p.id))) \
        RETURNING id")
        .bind(now).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

// ---------------------------------------------------------------------------------------
// Payments

/// A stored payment attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: i64,
    pub order_id: i64,
    pub user_id: i64,
    pub method: String,
    pub status: String,
    pub amount_minor: i64,
    pub currency: String,
    pub gateway_ref: Option<String>,
    pub bank_ref: Option<String>,
    pub idempotency_key: Option<String>,
    pub card_id: Option<i64>,
    pub approved_by: Option<i64>,
    pub approved_at: Option<i64>,
    pub rejected_reason: Option<String>,
    pub refunded_minor: i64,
    pub raw: Option<String>,
    pub pay_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
}

const PAYMENT_COLS: &str = "id, order_id, user_id, method, status, amount_minor, currency, gateway_ref, bank_ref, \
    idempotency_key, card_id, approved_by, approved_at, rejected_reason, refunded_minor, raw, pay_url, created_at, updated_at, expires_at";

/// Inserts a payment attempt and returns its id.
pub async fn insert_payment(c: Conn<'_>, p: &PaymentRow) -> Result<i64, DbError> {
    let sql = "INSERT INTO payments (order_id, user_id, method, status, amount_minor, currency, gateway_ref, bank_ref, \
               idempotency_key, card_id, approved_by, approved_at, raw, pay_url, created_at, updated_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id";
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sql)
        .bind(p.order_id).bind(p.user_id).bind(&p.method).bind(&p.status).bind(p.amount_minor).bind(&p.currency)
        .bind(&p.gateway_ref).bind(&p.bank_ref).bind(&p.idempotency_key).bind(p.card_id).bind(p.approved_by)
        .bind(p.approved_at).bind(&p.raw).bind(&p.pay_url).bind(p.created_at).bind(p.updated_at).bind(p.expires_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// One payment (optionally locked, see [`get_order`]).
pub async fn get_payment(
    c: Conn<'_>,
    id: i64,
    for_update: bool,
) -> Result<Option<PaymentRow>, DbError> {
    let l = if for_update { lock(&c) } else { "" };
    let sql = format!("SELECT {PAYMENT_COLS} FROM payments WHERE id = $1{l}");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PaymentRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// The payment a gateway knows by `gateway_ref`.
pub async fn payment_by_ref(
    c: Conn<'_>,
    method: &str,
    gateway_ref: &str,
) -> Result<Option<PaymentRow>, DbError> {
    let sql = format!("SELECT {PAYMENT_COLS} FROM payments WHERE method = $1 AND gateway_ref = $2");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PaymentRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(method).bind(gateway_ref).fetch_optional(&mut *c).await?),
    )
}

/// Payments of one order, oldest first.
pub async fn payments_of_order(c: Conn<'_>, order_id: i64) -> Result<Vec<PaymentRow>, DbError> {
    let sql = format!("SELECT {PAYMENT_COLS} FROM payments WHERE order_id = $1 ORDER BY id");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PaymentRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(order_id).fetch_all(&mut *c).await?),
    )
}

/// Open attempts of some methods created before `before` (for reconciliation), oldest first.
pub async fn open_payments(
    c: Conn<'_>,
    methods: &[&str],
    before: i64,
    limit: i64,
) -> Result<Vec<PaymentRow>, DbError> {
    let mut s = Sql::new(&format!(
        "SELECT {PAYMENT_COLS} FROM payments WHERE status IN ('created','pending') AND created_at <= "
    ));
    s.bind(before).push(" AND method IN ");
    in_list(&mut s, methods);
    s.push(" ORDER BY id LIMIT ").bind(limit);
    Ok(
        on!(c, c, D => bind_all!(sqlx::query_as::<D, PaymentRow>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args).fetch_all(&mut *c).await?),
    )
}

/// Filters for listing payments.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub user_id: Option<i64>,
    pub order_id: Option<i64>,
    pub status: Option<String>,
    pub method: Option<String>,
    pub card_id: Option<i64>,
    /// Card payments with a receipt waiting for a decision.
    pub awaiting_review: bool,
}

/// A page of payments.
pub async fn list_payments(
    c: Conn<'_>,
    f: &PaymentFilter,
    page: Page,
) -> Result<(Vec<PaymentRow>, i64), DbError> {
    let mut w = Sql::new(" FROM payments WHERE 1 = 1");
    if let Some(u) = f.user_id {
        w.and("user_id = ?", u);
    }
    if let Some(o) = f.order_id {
        w.and("order_id = ?", o);
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    if let Some(m) = &f.method {
        w.and("method = ?", m.as_str());
    }
    if let Some(cid) = f.card_id {
        w.and("card_id = ?", cid);
    }
    if f.awaiting_review {
        w.push(" AND status = 'pending' AND method = 'card' AND EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = payments.id)");
    }
    crate::sql::fetch_page::<PaymentRow>(c, PAYMENT_COLS, &w, page, None).await
}

/// Records the gateway's reference and the customer's payment link of a new attempt.
pub async fn set_payment_started(
    c: Conn<'_>,
    id: i64,
    gateway_ref: Option<&str>,
    pay_url: Option<&str>,
    raw: Option<&str>,
    now: i64,
) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE payments SET status = 'pending', gateway_ref = COALESCE($1, gateway_ref), \
        pay_url = COALESCE($2, pay_url), raw = COALESCE($3, raw), updated_at = $4 WHERE id = $5 AND status IN ('created','pending')")
        .bind(gateway_ref).bind(pay_url).bind(raw).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// What an approval records.
#[derive(Debug, Clone, Default)]
pub struct Approval<'a> {
    pub by: Option<i64>,
    pub gateway_ref: Option<&'a str>,
    pub bank_ref: Option<&'a str>,
    pub raw: Option<&'a str>,
}

/// Approves a payment that is in one of `from`; true for the one caller that did it.
pub async fn approve_payment(
    c: Conn<'_>,
    id: i64,
    from: &[&str],
    a: &Approval<'_>,
    now: i64,
) -> Result<bool, DbError> {
    let mut s = Sql::new("UPDATE payments SET status = 'approved', approved_at = ");
    s.bind(now).push(", approved_by = ").bind(a.by);
    s.push(", gateway_ref = COALESCE(")
        .bind(a.gateway_ref.map(str::to_owned))
        .push(", gateway_ref)");
    s.push(", bank_ref = COALESCE(")
        .bind(a.bank_ref.map(str::to_owned))
        .push(", bank_ref)");
    s.push(", raw = COALESCE(")
        .bind(a.raw.map(str::to_owned))
        .push(", raw)");
    s.push(", rejected_reason = NULL, updated_at = ").bind(now);
    s.push(" WHERE id = ").bind(id).push(" AND status IN ");
    in_list(&mut s, from);
    let n = on!(c, c, D => bind_all!(sqlx::query::<D>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Rejects (or expires, with `to = "expired"`) a payment that is in one of `from`.
pub async fn close_payment(
    c: Conn<'_>,
    id: i64,
    from: &[&str],
    to: &str,
    reason: Option<&str>,
    by: Option<i64>,
    now: i64,
) -> Result<bool, DbError> {
    let mut s = Sql::new("UPDATE payments SET status = ");
    s.bind(to)
        .push(", rejected_reason = ")
        .bind(reason.map(str::to_owned));
    s.push(", approved_by = COALESCE(")
        .bind(by)
        .push(", approved_by), updated_at = ")
        .bind(now);
    s.push(" WHERE id = ").bind(id).push(" AND status IN ");
    in_list(&mut s, from);
    let n = on!(c, c, D => bind_all!(sqlx::query::<D>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Moves a payment to another order (a second payment of an already paid order becomes
/// a wallet top-up instead of being lost).
pub async fn move_payment(c: Conn<'_>, id: i64, order_id: i64, now: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE payments SET order_id = $1, updated_at = $2 WHERE id = $3")
        .bind(order_id).bind(now).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Counts `amount` as returned; false when it would exceed what was paid.
pub async fn add_refunded(c: Conn<'_>, id: i64, amount: i64, now: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE payments SET refunded_minor = refunded_minor + $1, status = 'refunded', updated_at = $2 \
        WHERE id = $3 AND status IN ('approved','refunded') AND refunded_minor + $1 <= amount_minor")
        .bind(amount).bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Open attempts past their deadline that no receipt is waiting on; returns their ids.
pub async fn expire_payments(c: Conn<'_>, now: i64) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("UPDATE payments SET status = 'expired', updated_at = $1 \
        WHERE status IN ('created','pending') AND expires_at IS NOT NULL AND expires_at <= $1 \
        AND NOT EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = payments.id) RETURNING id")
        .bind(now).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Card payments of a customer by status: (approved, rejected).
pub async fn card_history(c: Conn<'_>, user_id: i64, except: i64) -> Result<(i64, i64), DbError> {
    let r: (i64, i64) = on!(c, c, D => sqlx::query_as::<D, (i64, i64)>("SELECT \
        COALESCE(SUM(CASE WHEN status IN ('approved','refunded') THEN 1 ELSE 0 END), 0), \
        COALESCE(SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), 0) \
        FROM payments WHERE user_id = $1 AND method = 'card' AND id <> $2")
        .bind(user_id).bind(except).fetch_one(&mut *c).await?);
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// Refunds

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct RefundRow {
    pub id: i64,
    pub payment_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub destination: String,
    pub gateway_ref: Option<String>,
    pub reason: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// Inserts a refund record and returns its id.
pub async fn insert_refund(c: Conn<'_>, r: &RefundRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO refunds (payment_id, amount_minor, currency, destination, gateway_ref, reason, created_by, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
        .bind(r.payment_id).bind(r.amount_minor).bind(&r.currency).bind(&r.destination).bind(&r.gateway_ref)
        .bind(&r.reason).bind(r.created_by).bind(r.created_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Refunds of a payment.
pub async fn refunds_of(c: Conn<'_>, payment_id: i64) -> Result<Vec<RefundRow>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, RefundRow>("SELECT id, payment_id, amount_minor, currency, destination, gateway_ref, reason, created_by, created_at \
        FROM refunds WHERE payment_id = $1 ORDER BY id").bind(payment_id).fetch_all(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Wallet ledger

/// One wallet ledger entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub user_id: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub ref_type: Option<String>,
    pub ref_id: Option<i64>,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: i64,
}

/// Appends an entry; false when an entry for the same (ref, reason) exists already,
/// which makes "credit this payment" idempotent.
pub async fn ledger_append(c: Conn<'_>, e: &LedgerRow) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("INSERT INTO wallet_ledger (user_id, amount_minor, currency, reason, ref_type, ref_id, note, created_by, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING")
        .bind(e.user_id).bind(e.amount_minor).bind(&e.currency).bind(&e.reason).bind(&e.ref_type).bind(e.ref_id)
        .bind(&e.note).bind(e.created_by).bind(e.created_at).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Balance per currency: the sum of the ledger.
pub async fn balances(c: Conn<'_>, user_id: i64) -> Result<Vec<(String, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, i64)>("SELECT currency, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM wallet_ledger \
        WHERE user_id = $1 GROUP BY currency ORDER BY currency").bind(user_id).fetch_all(&mut *c).await?),
    )
}

/// Balance in one currency.
pub async fn balance(c: Conn<'_>, user_id: i64, currency: &str) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM wallet_ledger \
        WHERE user_id = $1 AND currency = $2").bind(user_id).bind(currency).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Locks the user's row so balance checks and debits of one customer run one at a time.
pub async fn lock_user(c: Conn<'_>, user_id: i64) -> Result<bool, DbError> {
    let sql = format!("SELECT id FROM users WHERE id = $1{}", lock(&c));
    let r: Option<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).fetch_optional(&mut *c).await?);
    Ok(r.is_some())
}

/// A page of a user's ledger, newest first.
pub async fn ledger_page(
    c: Conn<'_>,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LedgerRow>, i64), DbError> {
    let mut w = Sql::new(" FROM wallet_ledger WHERE user_id = ");
    w.bind(user_id);
    let page = Page {
        limit,
        offset,
        sort: "id",
        order: crate::Order::Desc,
    };
    crate::sql::fetch_page::<LedgerRow>(
        c,
        "id, user_id, amount_minor, currency, reason, ref_type, ref_id, note, created_by, created_at",
        &w,
        page,
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Gateway events (inbound dedupe and audit)

/// An inbound gateway event as recorded.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub source: &'a str,
    pub event_id: &'a str,
    pub payment_id: Option<i64>,
    pub payload: &'a str,
    pub status: &'a str,
    pub error: Option<&'a str>,
}

/// Records an inbound event; false when (source, event_id) was seen before.
pub async fn record_event(c: Conn<'_>, e: &Event<'_>, now: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("INSERT INTO gateway_events (source, event_id, payment_id, payload, status, error, received_at, processed_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $5 = 'pending' THEN NULL ELSE $7 END) ON CONFLICT DO NOTHING")
        .bind(e.source).bind(e.event_id).bind(e.payment_id).bind(e.payload).bind(e.status).bind(e.error).bind(now)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Sets the outcome of a recorded event.
pub async fn finish_event(c: Conn<'_>, e: &Event<'_>, now: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE gateway_events SET status = $1, error = $2, payment_id = COALESCE($3, payment_id), processed_at = $4 \
        WHERE source = $5 AND event_id = $6")
        .bind(e.status).bind(e.error).bind(e.payment_id).bind(now).bind(e.source).bind(e.event_id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Counts events by source and status (for tests and metrics).
pub async fn event_counts(c: Conn<'_>) -> Result<Vec<(String, String, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, String, i64)>("SELECT source, status, COUNT(*) FROM gateway_events GROUP BY source, status ORDER BY source, status")
        .fetch_all(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Outbox

/// A unit of work to do exactly once after a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub dedupe_key: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

/// Adds work unless work with the same key exists; true when added.
pub async fn enqueue(
    c: Conn<'_>,
    kind: &str,
    payload: &str,
    dedupe_key: &str,
    now: i64,
) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("INSERT INTO outbox (kind, payload, dedupe_key, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $4) \
        ON CONFLICT DO NOTHING")
        .bind(kind).bind(payload).bind(dedupe_key).bind(now).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Which items a worker takes: those of one kind, or all the others.
#[derive(Debug, Clone, Copy)]
pub struct Lane<'a> {
    pub kind: &'a str,
    /// True: only items of `kind`; false: every item of another kind.
    pub only: bool,
}

/// Claims the oldest due item of a lane for `lease_ms`: the re-checked lease condition in
/// the outer WHERE makes two workers racing for the same row get it once.
pub async fn claim(
    c: Conn<'_>,
    lane: Lane<'_>,
    worker: &str,
    now: i64,
    lease_ms: i64,
) -> Result<Option<OutboxRow>, DbError> {
    let sql = "UPDATE outbox SET locked_by = $1, locked_until = $2, attempts = attempts + 1 \
        WHERE id = (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 \
                    AND (locked_until IS NULL OR locked_until < $3) \
                    AND (CASE WHEN kind = $4 THEN 1 ELSE 0 END) = $5 \
                    ORDER BY next_attempt_at, id LIMIT 1) \
        AND status = 'pending' AND (locked_until IS NULL OR locked_until < $3) \
        RETURNING id, kind, payload, dedupe_key, status, attempts, next_attempt_at, last_error, created_at";
    let only = i32::from(lane.only);
    Ok(
        on!(c, c, D => sqlx::query_as::<D, OutboxRow>(sql).bind(worker).bind(now + lease_ms).bind(now).bind(lane.kind).bind(only).fetch_optional(&mut *c).await?),
    )
}

/// Marks an item done.
pub async fn outbox_done(c: Conn<'_>, id: i64, now: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE outbox SET status = 'done', done_at = $1, locked_by = NULL, locked_until = NULL WHERE id = $2")
        .bind(now).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Puts an item back for a later attempt (or gives up with `failed`).
pub async fn outbox_retry(
    c: Conn<'_>,
    id: i64,
    error: &str,
    next_at: i64,
    give_up: bool,
) -> Result<(), DbError> {
    let status = if give_up { "failed" } else { "pending" };
    on!(c, c, D => sqlx::query::<D>("UPDATE outbox SET status = $1, last_error = $2, next_attempt_at = $3, locked_by = NULL, locked_until = NULL WHERE id = $4")
        .bind(status).bind(error).bind(next_at).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Items by kind and status (for tests, metrics and the dashboard).
pub async fn outbox_counts(c: Conn<'_>) -> Result<Vec<(String, String, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, String, i64)>("SELECT kind, status, COUNT(*) FROM outbox GROUP BY kind, status ORDER BY kind, status")
        .fetch_all(&mut *c).await?),
    )
}

/// The earliest time an item is due (to sleep until then).
pub async fn outbox_next_due(c: Conn<'_>, lane: Lane<'_>) -> Result<Option<i64>, DbError> {
    let sql = "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending' \
        AND (CASE WHEN kind = $1 THEN 1 ELSE 0 END) = $2";
    let only = i32::from(lane.only);
    let r: (Option<i64>,) = on!(c, c, D => sqlx::query_as::<D, (Option<i64>,)>(sql)
        .bind(lane.kind).bind(only).fetch_one(&mut *c).await?);
    Ok(r.0)
}

// ---------------------------------------------------------------------------------------
// Cards

/// A destination card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct CardRow {
    pub id: i64,
    pub number: String,
    pub owner_name: String,
    pub bank: Option<String>,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub is_active: bool,
    pub weight: i64,
    pub daily_cap_minor: Option<i64>,
    pub monthly_cap_minor: Option<i64>,
    pub monthly_tx_cap: Option<i64>,
    pub currency: String,
    pub sort_order: i64,
    pub disabled_reason: Option<String>,
    pub note: Option<String>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const CARD_COLS: &str = "id, number, owner_name, bank, is_active, weight, daily_cap_minor, monthly_cap_minor, monthly_tx_cap, \
    currency, sort_order, disabled_reason, note, last_used_at, created_at, updated_at";

/// Inserts a card.
pub async fn insert_card(c: Conn<'_>, r: &CardRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO cards (number, owner_name, bank, is_active, weight, daily_cap_minor, \
        monthly_cap_minor, monthly_tx_cap, currency, sort_order, disabled_reason, note, created_at, updated_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id")
        .bind(&r.number).bind(&r.owner_name).bind(&r.bank).bind(r.is_active).bind(r.weight).bind(r.daily_cap_minor)
        .bind(r.monthly_cap_minor).bind(r.monthly_tx_cap).bind(&r.currency).bind(r.sort_order).bind(&r.disabled_reason)
        .bind(&r.note).bind(r.created_at).bind(r.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column.
pub async fn update_card(c: Conn<'_>, r: &CardRow) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE cards SET number = $1, owner_name = $2, bank = $3, is_active = $4, weight = $5, \
        daily_cap_minor = $6, monthly_cap_minor = $7, monthly_tx_cap = $8, sort_order = $9, disabled_reason = $10, note = $11, updated_at = $12 WHERE id = $13")
        .bind(&r.number).bind(&r.owner_name).bind(&r.bank).bind(r.is_active).bind(r.weight).bind(r.daily_cap_minor)
        .bind(r.monthly_cap_minor).bind(r.monthly_tx_cap).bind(r.sort_order).bind(&r.disabled_reason).bind(&r.note)
        .bind(r.updated_at).bind(r.id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One card.
pub async fn get_card(c: Conn<'_>, id: i64) -> Result<Option<CardRow>, DbError> {
    let sql = format!("SELECT {CARD_COLS} FROM cards WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, CardRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// Every card, in display order.
pub async fn list_cards(c: Conn<'_>) -> Result<Vec<CardRow>, DbError> {
    let sql = format!("SELECT {CARD_COLS} FROM cards ORDER BY sort_order, id");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, CardRow>(sqlx::AssertSqlSafe(sql.as_str())).fetch_all(&mut *c).await?),
    )
}

/// Deletes a card (refused by the database while payments point at it).
pub async fn delete_card(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM cards WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Marks a card handed out now (round robin).
pub async fn touch_card(c: Conn<'_>, id: i64, now: i64) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE cards SET last_used_at = $1 WHERE id = $2").bind(now).bind(id).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Per card: (id, approved today, approved this month, transfers this month, open
/// reservations sum, open reservations count). Open reservations are pending card
/// payments still inside their window or waiting on a receipt review.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CardUse {
    pub card_id: i64,
    pub today_minor: i64,
    pub month_minor: i64,
    pub month_count: i64,
    pub reserved_minor: i64,
    pub reserved_count: i64,
}

/// Usage of every card since `day_start` / `month_start` (epoch ms, in the shop's zone).
pub async fn card_use(
    c: Conn<'_>,
    day_start: i64,
    month_start: i64,
    now: i64,
) -> Result<Vec<CardUse>, DbError> {
    let sql = "SELECT card_id, \
        CAST(COALESCE(SUM(CASE WHEN status IN ('approved','refunded') AND approved_at >= $1 THEN amount_minor ELSE 0 END), 0) AS BIGINT), \
        CAST(COALESCE(SUM(CASE WHEN status IN ('approved','refunded') AND approved_at >= $2 THEN amount_minor ELSE 0 END), 0) AS BIGINT), \
        CAST(COALESCE(SUM(CASE WHEN status IN ('approved','refunded') AND approved_at >= $2 THEN 1 ELSE 0 END), 0) AS BIGINT), \
        CAST(COALESCE(SUM(CASE WHEN status IN ('created','pending') AND (expires_at > $3 OR EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = payments.id)) THEN amount_minor ELSE 0 END), 0) AS BIGINT), \
        CAST(COALESCE(SUM(CASE WHEN status IN ('created','pending') AND (expires_at > $3 OR EXISTS (SELECT 1 FROM receipts r WHERE r.payment_id = payments.id)) THEN 1 ELSE 0 END), 0) AS BIGINT) \
        FROM payments WHERE card_id IS NOT NULL AND (created_at >= $2 OR status IN ('created','pending')) GROUP BY card_id";
    let rows: Vec<(i64, i64, i64, i64, i64, i64)> = on!(c, c, D => sqlx::query_as::<D, (i64, i64, i64, i64, i64, i64)>(sql)
        .bind(day_start).bind(month_start).bind(now).fetch_all(&mut *c).await?);
    Ok(rows
        .into_iter()
        .map(|r| CardUse {
            card_id: r.0,
            today_minor: r.1,
            month_minor: r.2,
            month_count: r.3,
            reserved_minor: r.4,
            reserved_count: r.5,
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// Receipts

/// A stored receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReceiptRow {
    pub id: i64,
    pub payment_id: i64,
    pub telegram_file_id: String,
    pub telegram_file_unique_id: Option<String>,
    pub image_sha256: String,
    pub phash: Option<i64>,
    pub ocr_text: Option<String>,
    pub ocr_amount_minor: Option<i64>,
    pub ocr_amount_unit: Option<String>,
    pub ocr_tracking_no: Option<String>,
    pub ocr_reference_no: Option<String>,
    pub ocr_card_last4: Option<String>,
    pub ocr_dest_card_last4: Option<String>,
    pub ocr_date: Option<String>,
    pub risk_score: Option<i64>,
    pub risk_verdict: Option<String>,
    pub risk_reasons: Option<String>,
    pub analyzed_at: Option<i64>,
    pub created_at: i64,
}

const RECEIPT_COLS: &str = "id, payment_id, telegram_file_id, telegram_file_unique_id, image_sha256, phash, ocr_text, \
    ocr_amount_minor, ocr_amount_unit, ocr_tracking_no, ocr_reference_no, ocr_card_last4, ocr_dest_card_last4, ocr_date, \
    risk_score, risk_verdict, risk_reasons, analyzed_at, created_at";

/// Inserts a receipt with its image.
pub async fn insert_receipt(
    c: Conn<'_>,
    r: &ReceiptRow,
    content_type: &str,
    bytes: &[u8],
) -> Result<i64, DbError> {
    on!(c, c, D => {
        let id: (i64,) = sqlx::query_as::<D, (i64,)>("INSERT INTO receipts (payment_id, telegram_file_id, telegram_file_unique_id, image_sha256, phash, created_at) \
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
            .bind(r.payment_id).bind(&r.telegram_file_id).bind(&r.telegram_file_unique_id).bind(&r.image_sha256).bind(r.phash).bind(r.created_at)
            .fetch_one(&mut *c).await?;
        sqlx::query::<D>("INSERT INTO receipt_images (receipt_id, content_type, bytes) VALUES ($1, $2, $3)")
            .bind(id.0).bind(content_type).bind(bytes).execute(&mut *c).await?;
        Ok(id.0)
    })
}

/// One receipt.
pub async fn get_receipt(c: Conn<'_>, id: i64) -> Result<Option<ReceiptRow>, DbError> {
    let sql = format!("SELECT {RECEIPT_COLS} FROM receipts WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, ReceiptRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// Receipts of a payment, oldest first.
pub async fn receipts_of(c: Conn<'_>, payment_id: i64) -> Result<Vec<ReceiptRow>, DbError> {
    let sql = format!("SELECT {RECEIPT_COLS} FROM receipts WHERE payment_id = $1 ORDER BY id");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, ReceiptRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(payment_id).fetch_all(&mut *c).await?),
    )
}

/// The receipt with this exact image or Telegram file, if any.
pub async fn receipt_same_file(
    c: Conn<'_>,
    sha256: &str,
    file_unique_id: Option<&str>,
) -> Result<Option<ReceiptRow>, DbError> {
    let sql = format!(
        "SELECT {RECEIPT_COLS} FROM receipts WHERE image_sha256 = $1 OR (telegram_file_unique_id IS NOT NULL AND telegram_file_unique_id = $2) ORDER BY id LIMIT 1"
    );
    Ok(
        on!(c, c, D => sqlx::query_as::<D, ReceiptRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(sha256).bind(file_unique_id).fetch_optional(&mut *c).await?),
    )
}

/// (id, phash) of every other receipt, for the near-duplicate search.
pub async fn receipt_hashes(c: Conn<'_>, except: i64) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (i64, i64)>("SELECT id, phash FROM receipts WHERE phash IS NOT NULL AND id <> $1 ORDER BY id")
        .bind(except).fetch_all(&mut *c).await?),
    )
}

/// Other receipts that carry this tracking or reference number.
pub async fn receipts_with_numbers(
    c: Conn<'_>,
    except: i64,
    tracking: Option<&str>,
    reference: Option<&str>,
) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT id FROM receipts WHERE id <> $1 AND \
        ((ocr_tracking_no IS NOT NULL AND ocr_tracking_no = $2) OR (ocr_reference_no IS NOT NULL AND ocr_reference_no = $3)) ORDER BY id")
        .bind(except).bind(tracking).bind(reference).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// What the analysis of a receipt found.
#[derive(Debug, Clone, Default)]
pub struct ReceiptAnalysis {
    pub ocr_text: Option<String>,
    pub amount: Option<i64>,
    pub amount_unit: Option<String>,
    pub tracking_no: Option<String>,
    pub reference_no: Option<String>,
    pub src_card_last4: Option<String>,
    pub dest_card_last4: Option<String>,
    pub date: Option<String>,
    pub risk_score: i64,
    pub risk_verdict: String,
    pub risk_reasons: String,
}

/// Stores the analysis. A tracking/reference number that another receipt already holds
/// is kept out of the unique columns (the duplicate is in the reasons instead).
pub async fn set_receipt_analysis(
    c: Conn<'_>,
    id: i64,
    a: &ReceiptAnalysis,
    now: i64,
) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("UPDATE receipts SET ocr_text = $1, ocr_amount_minor = $2, ocr_amount_unit = $3, ocr_tracking_no = $4, \
        ocr_reference_no = $5, ocr_card_last4 = $6, ocr_dest_card_last4 = $7, ocr_date = $8, risk_score = $9, risk_verdict = $10, \
        risk_reasons = $11, analyzed_at = $12 WHERE id = $13")
        .bind(&a.ocr_text).bind(a.amount).bind(&a.amount_unit).bind(&a.tracking_no).bind(&a.reference_no).bind(&a.src_card_last4)
        .bind(&a.dest_card_last4).bind(&a.date).bind(a.risk_score).bind(&a.risk_verdict).bind(&a.risk_reasons).bind(now).bind(id)
        .execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// The image of a receipt: (content type, bytes).
pub async fn receipt_image(c: Conn<'_>, id: i64) -> Result<Option<(String, Vec<u8>)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, Vec<u8>)>("SELECT content_type, bytes FROM receipt_images WHERE receipt_id = $1")
        .bind(id).fetch_optional(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Discount codes

/// A discount code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct DiscountRow {
    pub id: i64,
    pub code: String,
    pub kind: String,
    pub value: i64,
    pub currency: Option<String>,
    pub starts_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
    pub used_count: i64,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub is_active: bool,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

const DISCOUNT_COLS: &str = "id, code, kind, value, currency, starts_at, expires_at, max_uses, max_uses_per_user, used_count, \
    is_active, created_by, created_at, updated_at";

/// Inserts a code.
pub async fn insert_discount(c: Conn<'_>, d: &DiscountRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO discount_codes (code, kind, value, currency, starts_at, expires_at, \
        max_uses, max_uses_per_user, is_active, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")
        .bind(&d.code).bind(&d.kind).bind(d.value).bind(&d.currency).bind(d.starts_at).bind(d.expires_at).bind(d.max_uses)
        .bind(d.max_uses_per_user).bind(d.is_active).bind(d.created_by).bind(d.created_at).bind(d.updated_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Writes every editable column.
pub async fn update_discount(c: Conn<'_>, d: &DiscountRow) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE discount_codes SET code = $1, kind = $2, value = $3, currency = $4, starts_at = $5, \
        expires_at = $6, max_uses = $7, max_uses_per_user = $8, is_active = $9, updated_at = $10 WHERE id = $11")
        .bind(&d.code).bind(&d.kind).bind(d.value).bind(&d.currency).bind(d.starts_at).bind(d.expires_at).bind(d.max_uses)
        .bind(d.max_uses_per_user).bind(d.is_active).bind(d.updated_at).bind(d.id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// One code by id.
pub async fn get_discount(c: Conn<'_>, id: i64) -> Result<Option<DiscountRow>, DbError> {
    let sql = format!("SELECT {DISCOUNT_COLS} FROM discount_codes WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, DiscountRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// One code by its text (case-insensitive: codes are stored upper-case).
pub async fn discount_by_code(c: Conn<'_>, code: &str) -> Result<Option<DiscountRow>, DbError> {
    let sql = format!("SELECT {DISCOUNT_COLS} FROM discount_codes WHERE code = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, DiscountRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(code).fetch_optional(&mut *c).await?),
    )
}

/// A page of codes.
pub async fn list_discounts(
    c: Conn<'_>,
    q: Option<&str>,
    page: Page,
) -> Result<(Vec<DiscountRow>, i64), DbError> {
    let mut w = Sql::new(" FROM discount_codes WHERE 1 = 1");
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        w.and_search(&["code"], q);
    }
    crate::sql::fetch_page::<DiscountRow>(c, DISCOUNT_COLS, &w, page, None).await
}

/// Deletes a code (refused while orders point at it).
pub async fn delete_discount(c: Conn<'_>, id: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("DELETE FROM discount_codes WHERE id = $1").bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Plans a code is restricted to (empty: every plan).
pub async fn discount_plans(c: Conn<'_>, id: i64) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT plan_id FROM discount_code_plans WHERE code_id = $1 ORDER BY plan_id")
        .bind(id).fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Replaces the plan restriction of a code.
pub async fn set_discount_plans(c: Conn<'_>, id: i64, plans: &[i64]) -> Result<(), DbError> {
    on!(c, c, D => {
        sqlx::query::<D>("DELETE FROM discount_code_plans WHERE code_id = $1").bind(id).execute(&mut *c).await?;
        for p in plans {
            sqlx::query::<D>("INSERT INTO discount_code_plans (code_id, plan_id) VALUES ($1, $2)").bind(id).bind(*p).execute(&mut *c).await?;
        }
    });
    Ok(())
}

/// Takes one use of a code if any is left; true when taken.
pub async fn take_discount_use(c: Conn<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE discount_codes SET used_count = used_count + 1, updated_at = $1 \
        WHERE id = $2 AND is_active = TRUE AND (max_uses IS NULL OR used_count < max_uses)")
        .bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Uses of a code by one customer (orders not expired or cancelled).
pub async fn discount_uses_by(c: Conn<'_>, code_id: i64, user_id: i64) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM discount_redemptions WHERE code_id = $1 AND user_id = $2")
        .bind(code_id).bind(user_id).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Records that an order used a code.
pub async fn insert_redemption(
    c: Conn<'_>,
    code_id: i64,
    user_id: i64,
    order_id: i64,
    now: i64,
) -> Result<(), DbError> {
    on!(c, c, D => sqlx::query::<D>("INSERT INTO discount_redemptions (code_id, user_id, order_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(code_id).bind(user_id).bind(order_id).bind(now).execute(&mut *c).await.map(|_| ())?);
    Ok(())
}

/// Gives the use of an unpaid order back to its code.
pub async fn release_redemption(c: Conn<'_>, order_id: i64, now: i64) -> Result<(), DbError> {
    on!(c, c, D => {
        let code: Option<(i64,)> = sqlx::query_as::<D, (i64,)>("DELETE FROM discount_redemptions WHERE order_id = $1 RETURNING code_id")
            .bind(order_id).fetch_optional(&mut *c).await?;
        if let Some((code_id,)) = code {
            sqlx::query::<D>("UPDATE discount_codes SET used_count = used_count - 1, updated_at = $1 WHERE id = $2 AND used_count > 0")
                .bind(now).bind(code_id).execute(&mut *c).await?;
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reports

/// One received payment as the financial report sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevenueRow {
    pub payment_id: i64,
    pub approved_at: i64,
    pub method: String,
    pub card_id: Option<i64>,
    pub plan_id: Option<i64>,
    pub kind: String,
    pub amount_minor: i64,
    pub refunded_minor: i64,
    pub currency: String,
}

/// Received payments approved in `[from, to)`, wallet payments excluded (they spend money
/// received earlier and would count it twice).
pub async fn revenue_rows(c: Conn<'_>, from: i64, to: i64) -> Result<Vec<RevenueRow>, DbError> {
    let sql = "SELECT p.id AS payment_id, p.approved_at AS approved_at, p.method AS method, p.card_id AS card_id, o.plan_id AS plan_id, \
         o.kind AS kind, p.amount_minor AS amount_minor, p.refunded_minor AS refunded_minor, p.currency AS currency \
         FROM payments p JOIN orders o ON o.id = p.order_id \
         WHERE p.status IN ('approved','refunded') AND p.method <> 'wallet' AND p.approved_at >= $1 AND p.approved_at < $2 ORDER BY p.approved_at, p.id";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, RevenueRow>(sql).bind(from).bind(to).fetch_all(&mut *c).await?),
    )
}

/// Refunds made in `[from, to)`: (currency, destination, sum).
pub async fn refund_totals(
    c: Conn<'_>,
    from: i64,
    to: i64,
) -> Result<Vec<(String, String, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, String, i64)>("SELECT currency, destination, CAST(SUM(amount_minor) AS BIGINT) FROM refunds \
        WHERE created_at >= $1 AND created_at < $2 GROUP BY currency, destination ORDER BY currency, destination")
        .bind(from).bind(to).fetch_all(&mut *c).await?),
    )
}

/// Open payment attempts now: (currency, method, count, sum).
pub async fn pending_totals(c: Conn<'_>) -> Result<Vec<(String, String, i64, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, String, i64, i64)>("SELECT currency, method, COUNT(*), CAST(SUM(amount_minor) AS BIGINT) FROM payments \
        WHERE status IN ('created','pending') GROUP BY currency, method ORDER BY currency, method")
        .fetch_all(&mut *c).await?),
    )
}
