//! The support tables: tickets with their messages, and broadcasts with one delivery row
//! per recipient.
//!
//! A broadcast's deliveries are materialised when it is created, so the sender only ever
//! moves rows between states with guarded updates: `pending -> sent` is taken (and
//! committed) before the message goes out, so two senders never send the same row and a
//! crash never sends one twice. The counters on the broadcast row change in the same
//! transaction as the delivery row they count, so they always agree with the rows.

use crate::{Conn, DbError, Page, Sql, bind_all, on};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------
// Tickets

/// A stored ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TicketRow {
    pub id: i64,
    pub user_id: i64,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub assigned_to: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub last_message_at: Option<i64>,
}

const TICKET_COLS: &str = "id, user_id, subject, status, priority, assigned_to, created_at, updated_at, closed_at, last_message_at";

/// A stored ticket message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct TicketMessageRow {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: Option<i64>,
    #[serde(deserialize_with = "crate::sql::de_bool")]
    pub from_staff: bool,
    pub body: String,
    pub attachment_file_id: Option<String>,
    pub created_at: i64,
}

const MESSAGE_COLS: &str =
    "id, ticket_id, author_id, from_staff, body, attachment_file_id, created_at";

fn lock(c: &Conn<'_>) -> &'static str {
    match c {
        Conn::Pg(_) => " FOR UPDATE",
        Conn::Sqlite(_) => "",
    }
}

/// Inserts a ticket; returns its id.
pub async fn insert_ticket(c: Conn<'_>, t: &TicketRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO tickets (user_id, subject, status, priority, assigned_to, \
        created_at, updated_at, closed_at, last_message_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id")
        .bind(t.user_id).bind(&t.subject).bind(&t.status).bind(&t.priority).bind(t.assigned_to)
        .bind(t.created_at).bind(t.updated_at).bind(t.closed_at).bind(t.last_message_at).fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// One ticket; `for_update` locks it on PostgreSQL (SQLite has one writer anyway).
pub async fn get_ticket(
    c: Conn<'_>,
    id: i64,
    for_update: bool,
) -> Result<Option<TicketRow>, DbError> {
    let sql = format!(
        "SELECT {TICKET_COLS} FROM tickets WHERE id = $1{}",
        if for_update { lock(&c) } else { "" }
    );
    Ok(
        on!(c, c, D => sqlx::query_as::<D, TicketRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// Tickets of a customer that are not closed.
pub async fn count_open_tickets(c: Conn<'_>, user_id: i64) -> Result<i64, DbError> {
    let r: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT COUNT(*) FROM tickets WHERE user_id = $1 AND status <> 'closed'")
        .bind(user_id).fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Writes a ticket's status and times (after a message or a close).
pub async fn update_ticket_status(c: Conn<'_>, t: &TicketRow) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE tickets SET status = $1, updated_at = $2, closed_at = $3, last_message_at = $4 WHERE id = $5")
        .bind(&t.status).bind(t.updated_at).bind(t.closed_at).bind(t.last_message_at).bind(t.id)
        .execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// Filters for listing tickets.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    /// Only this customer's.
    pub user_id: Option<i64>,
    /// Only in this status.
    pub status: Option<String>,
}

/// A page of tickets.
pub async fn list_tickets(
    c: Conn<'_>,
    f: &TicketFilter,
    page: Page,
) -> Result<(Vec<TicketRow>, i64), DbError> {
    let mut w = Sql::new(" FROM tickets WHERE 1 = 1");
    if let Some(u) = f.user_id {
        w.and("user_id = ?", u);
    }
    if let Some(s) = &f.status {
        w.and("status = ?", s.as_str());
    }
    crate::sql::fetch_page::<TicketRow>(c, TICKET_COLS, &w, page, None).await
}

/// Inserts a message; returns its id.
pub async fn insert_message(c: Conn<'_>, m: &TicketMessageRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO ticket_messages (ticket_id, author_id, from_staff, body, \
        attachment_file_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
        .bind(m.ticket_id).bind(m.author_id).bind(m.from_staff).bind(&m.body).bind(&m.attachment_file_id).bind(m.created_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Every message of a ticket, oldest first.
pub async fn ticket_messages(
    c: Conn<'_>,
    ticket_id: i64,
) -> Result<Vec<TicketMessageRow>, DbError> {
    let sql = format!(
        "SELECT {MESSAGE_COLS} FROM ticket_messages WHERE ticket_id = $1 ORDER BY created_at, id"
    );
    Ok(
        on!(c, c, D => sqlx::query_as::<D, TicketMessageRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(ticket_id).fetch_all(&mut *c).await?),
    )
}

// ---------------------------------------------------------------------------------------
// Broadcasts

/// A stored broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct BroadcastRow {
    pub id: i64,
    pub created_by: Option<i64>,
    pub audience: String,
    pub body: String,
    pub media_file_id: Option<String>,
    pub status: String,
    pub total: i64,
    pub sent: i64,
    pub failed: i64,
    pub blocked: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const BROADCAST_COLS: &str = "id, created_by, audience, body, media_file_id, status, total, sent, failed, blocked, \
    created_at, started_at, finished_at";

/// Who a broadcast goes to. Every audience is made of *customers*: active users with a
/// Telegram chat who hold no unexpired role that grants a permission (staff are not
/// marketed to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every customer.
    All,
    /// Customers with a subscription that serves or will serve (active, on hold, temporary).
    Active,
    /// Customers who had subscriptions but have none that serves.
    Expired,
    /// Customers who never paid an order.
    NoPurchase,
}

const SERVING: &str = "('active', 'on_hold', 'temporary')";

/// Appends ` FROM users u WHERE <u is a customer in the audience>`.
fn audience_filter(s: &mut Sql, a: Audience, staff_roles: &[&str], now: i64) {
    s.push(
        " FROM users u WHERE u.telegram_id IS NOT NULL AND u.status = 'active' \
         AND NOT EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
         WHERE ur.user_id = u.id AND (ur.expires_at IS NULL OR ur.expires_at > ",
    )
    .bind(now)
    .push(") AND (EXISTS (SELECT 1 FROM role_permissions rp WHERE rp.role_id = r.id)");
    if !staff_roles.is_empty() {
        s.push(" OR r.name IN (");
        for (i, name) in staff_roles.iter().enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.bind(*name);
        }
        s.push(")");
    }
    s.push("))");
    let serving = format!(
        "EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id AND s.status IN {SERVING})"
    );
    match a {
        Audience::All => {}
        Audience::Active => {
            s.push(" AND ").push(&serving);
        }
        Audience::Expired => {
            s.push(" AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = u.id) AND NOT ")
                .push(&serving);
        }
        Audience::NoPurchase => {
            s.push(
                " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id \
                 AND (o.status = 'paid' OR o.paid_at IS NOT NULL))",
            );
        }
    }
}

/// How many customers an audience has now.
pub async fn count_audience(
    c: Conn<'_>,
    a: Audience,
    staff_roles: &[&str],
    now: i64,
) -> Result<i64, DbError> {
    let mut s = Sql::new("SELECT COUNT(*)");
    audience_filter(&mut s, a, staff_roles, now);
    let r: (i64,) = on!(c, c, D => bind_all!(sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args)
        .fetch_one(&mut *c).await?);
    Ok(r.0)
}

/// Inserts a broadcast; returns its id.
pub async fn insert_broadcast(c: Conn<'_>, b: &BroadcastRow) -> Result<i64, DbError> {
    let id: (i64,) = on!(c, c, D => sqlx::query_as::<D, (i64,)>("INSERT INTO broadcasts (created_by, audience, body, media_file_id, status, \
        total, sent, failed, blocked, created_at, started_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")
        .bind(b.created_by).bind(&b.audience).bind(&b.body).bind(&b.media_file_id).bind(&b.status).bind(b.total)
        .bind(b.sent).bind(b.failed).bind(b.blocked).bind(b.created_at).bind(b.started_at).bind(b.finished_at)
        .fetch_one(&mut *c).await?);
    Ok(id.0)
}

/// Adds one pending delivery per customer of the audience to a broadcast and sets its
/// total (with `status = 'sending'` and `started_at`); returns the number of recipients.
pub async fn materialise(
    mut c: Conn<'_>,
    broadcast_id: i64,
    a: Audience,
    staff_roles: &[&str],
    now: i64,
) -> Result<i64, DbError> {
    let mut s =
        Sql::new("INSERT INTO broadcast_deliveries (broadcast_id, user_id, status) SELECT ");
    s.bind(broadcast_id).push(", u.id, 'pending'");
    audience_filter(&mut s, a, staff_roles, now);
    s.push(" ORDER BY u.id");
    let n = on!(c.reborrow(), c, D => bind_all!(sqlx::query::<D>(sqlx::AssertSqlSafe(s.text.as_str())), &s.args)
        .execute(&mut *c).await?.rows_affected());
    let total = i64::try_from(n).map_err(|e| DbError::Decode(e.to_string()))?;
    on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET total = $1, status = 'sending', started_at = $2 WHERE id = $3")
        .bind(total).bind(now).bind(broadcast_id).execute(&mut *c).await.map(|_| ())?);
    Ok(total)
}

/// One broadcast.
pub async fn get_broadcast(c: Conn<'_>, id: i64) -> Result<Option<BroadcastRow>, DbError> {
    let sql = format!("SELECT {BROADCAST_COLS} FROM broadcasts WHERE id = $1");
    Ok(
        on!(c, c, D => sqlx::query_as::<D, BroadcastRow>(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *c).await?),
    )
}

/// A page of broadcasts.
pub async fn list_broadcasts(c: Conn<'_>, page: Page) -> Result<(Vec<BroadcastRow>, i64), DbError> {
    let w = Sql::new(" FROM broadcasts WHERE 1 = 1");
    crate::sql::fetch_page::<BroadcastRow>(c, BROADCAST_COLS, &w, page, None).await
}

/// Stops a broadcast that is still sending (its pending rows stay unsent); false when it
/// was not sending.
pub async fn cancel_broadcast(c: Conn<'_>, id: i64, now: i64) -> Result<bool, DbError> {
    let n = on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET status = 'cancelled', finished_at = $1 \
        WHERE id = $2 AND status IN ('draft', 'sending')")
        .bind(now).bind(id).execute(&mut *c).await?.rows_affected());
    Ok(n == 1)
}

/// A delivery waiting to be sent, with what sending it needs.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PendingDelivery {
    pub id: i64,
    pub broadcast_id: i64,
    pub user_id: i64,
    pub telegram_id: Option<i64>,
    pub language: String,
    pub user_status: String,
    pub body: String,
}

/// Broadcasts that are sending, oldest first.
pub async fn sending_broadcasts(c: Conn<'_>) -> Result<Vec<i64>, DbError> {
    let rows: Vec<(i64,)> = on!(c, c, D => sqlx::query_as::<D, (i64,)>("SELECT id FROM broadcasts WHERE status = 'sending' ORDER BY id")
        .fetch_all(&mut *c).await?);
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Up to `limit` pending deliveries of one broadcast, in id order.
pub async fn pending_deliveries(
    c: Conn<'_>,
    broadcast_id: i64,
    limit: i64,
) -> Result<Vec<PendingDelivery>, DbError> {
    let sql = "SELECT d.id, d.broadcast_id, d.user_id, u.telegram_id, u.language, u.status AS user_status, b.body \
        FROM broadcast_deliveries d JOIN users u ON u.id = d.user_id JOIN broadcasts b ON b.id = d.broadcast_id \
        WHERE d.broadcast_id = $1 AND d.status = 'pending' ORDER BY d.id LIMIT $2";
    Ok(
        on!(c, c, D => sqlx::query_as::<D, PendingDelivery>(sql).bind(broadcast_id).bind(limit).fetch_all(&mut *c).await?),
    )
}

/// How a delivery ended when it was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// Any failure but a block.
    Failed,
    /// The person blocked the bot.
    Blocked,
}

impl Undelivered {
    fn column(self) -> &'static str {
        match self {
            Undelivered::Failed => "failed",
            Undelivered::Blocked => "blocked",
        }
    }
}

/// Takes a pending delivery for sending: `pending -> sent` while its broadcast is still
/// sending, counted as sent. False when another sender took it or the broadcast stopped.
pub async fn claim_delivery(
    mut c: Conn<'_>,
    id: i64,
    broadcast_id: i64,
    now: i64,
) -> Result<bool, DbError> {
    let n = on!(c.reborrow(), c, D => sqlx::query::<D>("UPDATE broadcast_deliveries SET status = 'sent', sent_at = $1 \
        WHERE id = $2 AND status = 'pending' AND broadcast_id = $3 \
        AND EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = $3 AND b.status = 'sending')")
        .bind(now).bind(id).bind(broadcast_id).execute(&mut *c).await?.rows_affected());
    if n == 1 {
        on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET sent = sent + 1 WHERE id = $1")
            .bind(broadcast_id).execute(&mut *c).await.map(|_| ())?);
    }
    Ok(n == 1)
}

/// Records that a taken delivery did not arrive: `sent -> failed|blocked` with the error,
/// moving it between the counters.
pub async fn settle_undelivered(
    mut c: Conn<'_>,
    id: i64,
    broadcast_id: i64,
    how: Undelivered,
    error: &str,
) -> Result<bool, DbError> {
    let n = on!(c.reborrow(), c, D => sqlx::query::<D>("UPDATE broadcast_deliveries SET status = $1, error = $2, sent_at = NULL \
        WHERE id = $3 AND status = 'sent'")
        .bind(how.column()).bind(error).bind(id).execute(&mut *c).await?.rows_affected());
    if n == 1 {
        let col = how.column();
        let sql = format!("UPDATE broadcasts SET sent = sent - 1, {col} = {col} + 1 WHERE id = $1");
        on!(c, c, D => sqlx::query::<D>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(broadcast_id).execute(&mut *c).await.map(|_| ())?);
    }
    Ok(n == 1)
}

/// Fails a delivery that cannot be attempted at all (the customer has no chat any more):
/// `pending -> failed` with the reason.
pub async fn fail_pending(
    mut c: Conn<'_>,
    id: i64,
    broadcast_id: i64,
    error: &str,
) -> Result<bool, DbError> {
    let n = on!(c.reborrow(), c, D => sqlx::query::<D>("UPDATE broadcast_deliveries SET status = 'failed', error = $1 \
        WHERE id = $2 AND status = 'pending'")
        .bind(error).bind(id).execute(&mut *c).await?.rows_affected());
    if n == 1 {
        on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET failed = failed + 1 WHERE id = $1")
            .bind(broadcast_id).execute(&mut *c).await.map(|_| ())?);
    }
    Ok(n == 1)
}

/// Gives a taken delivery back (`sent -> pending`) because Telegram said it did not
/// perform the send (rate limited).
pub async fn unclaim_delivery(
    mut c: Conn<'_>,
    id: i64,
    broadcast_id: i64,
) -> Result<bool, DbError> {
    let n = on!(c.reborrow(), c, D => sqlx::query::<D>("UPDATE broadcast_deliveries SET status = 'pending', sent_at = NULL \
        WHERE id = $1 AND status = 'sent'")
        .bind(id).execute(&mut *c).await?.rows_affected());
    if n == 1 {
        on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET sent = sent - 1 WHERE id = $1")
            .bind(broadcast_id).execute(&mut *c).await.map(|_| ())?);
    }
    Ok(n == 1)
}

/// Marks every sending broadcast without a pending row `done`; returns how many finished.
pub async fn finish_sent(c: Conn<'_>, now: i64) -> Result<u64, DbError> {
    Ok(
        on!(c, c, D => sqlx::query::<D>("UPDATE broadcasts SET status = 'done', finished_at = $1 WHERE status = 'sending' \
        AND NOT EXISTS (SELECT 1 FROM broadcast_deliveries d WHERE d.broadcast_id = broadcasts.id AND d.status = 'pending')")
        .bind(now).execute(&mut *c).await?.rows_affected()),
    )
}

/// Deliveries of a broadcast by status (for tests and the dashboard).
pub async fn delivery_counts(
    c: Conn<'_>,
    broadcast_id: i64,
) -> Result<Vec<(String, i64)>, DbError> {
    Ok(
        on!(c, c, D => sqlx::query_as::<D, (String, i64)>("SELECT status, COUNT(*) FROM broadcast_deliveries WHERE broadcast_id = $1 \
        GROUP BY status ORDER BY status")
        .bind(broadcast_id).fetch_all(&mut *c).await?),
    )
}
