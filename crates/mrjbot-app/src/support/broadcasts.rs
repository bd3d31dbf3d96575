//! Broadcasts: one message from the seller to a segment of customers, sent through the
//! notifier (the bot) at a pace Telegram accepts.
//!
//! Guarantees, and what gives them:
//! - **Nobody gets it twice.** Creating a broadcast writes one `pending` delivery row per
//!   recipient in the same transaction. The sender flips a row `pending -> sent` with a
//!   guarded update and commits *before* sending, so a second sender (another replica)
//!   cannot take the same row and a crash between the commit and the send loses that one
//!   message rather than repeating it. After the send the row only moves to
//!   `failed`/`blocked` (the send failed) or back to `pending` when Telegram said it did
//!   not perform it (rate limited), also guarded.
//! - **A restart resumes.** Whatever is still `pending` is sent by whichever sender runs
//!   next; nothing lives only in memory.
//! - **Counters are true.** `sent`, `failed` and `blocked` on the broadcast change in the
//!   transaction that moves the delivery row, so `total = sent + failed + blocked +
//!   pending` at every moment (a row being sent right now counts as sent).
//! - **Telegram is not flooded.** One process sends at most `rate_per_sec` messages a
//!   second (default 25, below Telegram's 30); a `RetryAfter` pauses the whole sender
//!   for the time Telegram asked. The rate is per process: replicas that all send share
//!   the bot's limit, so run the sender on one of them when the rate is near the limit.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::notify::{Notice, NotifyError, Recipient};
use crate::support::body_text;
use crate::{App, ListParams};
use mrjbot_db::support::{self as repo, Audience, BroadcastRow, PendingDelivery, Undelivered};
use mrjbot_domain::{BuiltinRole, ErrorCode, Permission, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Messages a second one process sends by default (Telegram allows about 30).
pub const DEFAULT_RATE_PER_SEC: u32 = 25;

/// Rows the sender loop handles per step.
const STEP: usize = 100;

/// Longest wait for the notifier to deliver one message; a send that takes longer counts
/// as failed (it may have arrived, so it is not repeated).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the idle sender loop waits before looking for work again (it is also woken
/// when this process creates a broadcast).
const IDLE: Duration = Duration::from_secs(2);

/// Who receives a broadcast. Every segment is made of customers: active users with a
/// Telegram chat and no staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Every customer.
    All,
    /// Customers with a subscription that is active, on hold or temporary.
    Active,
    /// Customers who had subscriptions but have none of those any more.
    Expired,
    /// Customers who never paid an order.
    NoPurchase,
}

impl Segment {
    fn audience(self) -> Audience {
        match self {
            Segment::All => Audience::All,
            Segment::Active => Audience::Active,
            Segment::Expired => Audience::Expired,
            Segment::NoPurchase => Audience::NoPurchase,
        }
    }
}

/// What `broadcasts.audience` stores.
#[derive(Debug, Serialize, Deserialize)]
struct StoredAudience {
    segment: Segment,
}

/// Where a broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastStatus {
    /// Not yet handed to the sender.
    Draft,
    /// The sender is working through its recipients.
    Sending,
    /// Every recipient was tried.
    Done,
    /// Stopped by staff; the recipients not reached yet stay unsent.
    Cancelled,
}

impl BroadcastStatus {
    fn parse(s: &str) -> AppResult<Self> {
        Ok(match s {
            "draft" => BroadcastStatus::Draft,
            "sending" => BroadcastStatus::Sending,
            "done" => BroadcastStatus::Done,
            "cancelled" => BroadcastStatus::Cancelled,
            other => return Err(corrupt(format!("unknown broadcast status `{other}`"))),
        })
    }
}

fn corrupt(msg: String) -> AppError {
    AppError::internal(mrjbot_db::DbError::Decode(msg))
}

/// A broadcast and its progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BroadcastView {
    pub id: i64,
    pub segment: Segment,
    pub body: String,
    pub status: BroadcastStatus,
    /// Recipients when it was created.
    pub total: i64,
    /// Delivered (including a message being sent right now).
    pub sent: i64,
    /// Not delivered: an error other than a block.
    pub failed: i64,
    /// Not delivered: the customer blocked the bot.
    pub blocked: i64,
    /// Not tried yet (after a cancel: never will be).
    pub pending: i64,
    pub created_by: Option<i64>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl TryFrom<BroadcastRow> for BroadcastView {
    type Error = AppError;
    fn try_from(b: BroadcastRow) -> AppResult<Self> {
        let audience: StoredAudience = serde_json::from_str(&b.audience)
            .map_err(|e| corrupt(format!("broadcast {} audience: {e}", b.id)))?;
        Ok(Self {
            id: b.id,
            segment: audience.segment,
            status: BroadcastStatus::parse(&b.status)?,
            pending: (b.total - b.sent - b.failed - b.blocked).max(0),
            body: b.body,
            total: b.total,
            sent: b.sent,
            failed: b.failed,
            blocked: b.blocked,
            created_by: b.created_by,
            created_at: Timestamp::from_millis(b.created_at),
            started_at: b.started_at.map(Timestamp::from_millis),
            finished_at: b.finished_at.map(Timestamp::from_millis),
        })
    }
}

/// Input for a new broadcast.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBroadcast {
    pub segment: Segment,
    /// The text, 1 to 4000 characters, sent as written.
    #[schema(min_length = 1, max_length = 4000)]
    pub body: String,
}

/// The sender's state in one process: its pace and its wake-up call.
pub(crate) struct Sender {
    rate_per_sec: AtomicU32,
    /// The earliest moment the next message may go out; held for a whole step, so one
    /// process runs one step at a time.
    next_send: tokio::sync::Mutex<Option<Instant>>,
    wake: tokio::sync::Notify,
    /// Set on shutdown: the sender finishes the message in hand and stops, so a clean
    /// restart loses nobody's message (only a crash can lose the one in flight).
    stopping: std::sync::atomic::AtomicBool,
}

impl Default for Sender {
    fn default() -> Self {
        Self {
            rate_per_sec: AtomicU32::new(DEFAULT_RATE_PER_SEC),
            next_send: tokio::sync::Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Built-in roles that make their holder staff (custom roles do when they grant any
/// permission; the store checks that).
fn staff_roles() -> Vec<&'static str> {
    BuiltinRole::ALL
        .into_iter()
        .filter(|r| !r.permissions().is_empty())
        .map(BuiltinRole::name)
        .collect()
}

fn broadcast_not_found() -> AppError {
    AppError::not_found(ErrorCode::BroadcastNotFound, "broadcast")
}

/// Waits for the next sending slot and books the one after it.
async fn wait_turn(next: &mut Option<Instant>, rate_per_sec: u32) {
    if let Some(at) = *next
        && at > Instant::now()
    {
        tokio::time::sleep_until(at).await;
    }
    let gap = Duration::from_secs(1) / rate_per_sec.max(1);
    *next = Some(Instant::now() + gap);
}

impl App {
    /// Sets how many broadcast messages a second this process sends (at least 1).
    pub fn set_broadcast_rate(&self, per_sec: u32) {
        self.inner
            .broadcaster
            .rate_per_sec
            .store(per_sec.max(1), Ordering::Relaxed);
    }

    /// Broadcast messages a second this process sends.
    pub fn broadcast_rate(&self) -> u32 {
        self.inner.broadcaster.rate_per_sec.load(Ordering::Relaxed)
    }

    /// Creates a broadcast (needs `broadcasts.write`): body 1..=4000 characters. One
    /// pending delivery per recipient of the segment is written in the same transaction,
    /// the total set and the status `sending`; the sender takes it from there.
    pub async fn create_broadcast(
        &self,
        actor: &Actor,
        input: NewBroadcast,
    ) -> AppResult<BroadcastView> {
        actor.require(Permission::BroadcastsWrite)?;
        let body = body_text("body", &input.body, true)?;
        let audience = serde_json::to_string(&StoredAudience {
            segment: input.segment,
        })
        .map_err(AppError::internal)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let mut row = BroadcastRow {
            id: 0,
            created_by: actor.user_id,
            audience,
            body,
            media_file_id: None,
            status: "draft".into(),
            total: 0,
            sent: 0,
            failed: 0,
            blocked: 0,
            created_at: now,
            started_at: None,
            finished_at: None,
        };
        row.id = repo::insert_broadcast(tx.conn(), &row).await?;
        let total = repo::materialise(
            tx.conn(),
            row.id,
            input.segment.audience(),
            &staff_roles(),
            now,
        )
        .await?;
        if total == 0 {
            // Nobody to tell: finished as it starts.
            repo::finish_sent(tx.conn(), now).await?;
        }
        let row = repo::get_broadcast(tx.conn(), row.id)
            .await?
            .ok_or_else(broadcast_not_found)?;
        self.audit(
            tx.conn(),
            actor,
            "broadcast.create",
            "broadcast",
            Some(row.id),
            None::<&()>,
            Some(&row),
        )
        .await?;
        tx.commit().await?;
        self.inner.broadcaster.wake.notify_one();
        row.try_into()
    }

    /// How many customers a segment has now (needs `broadcasts.write`).
    pub async fn preview_broadcast(&self, actor: &Actor, segment: Segment) -> AppResult<i64> {
        actor.require(Permission::BroadcastsWrite)?;
        let mut c = self.db().read().await?;
        Ok(repo::count_audience(
            c.conn(),
            segment.audience(),
            &staff_roles(),
            self.now().millis(),
        )
        .await?)
    }

    /// One broadcast with its progress (needs `broadcasts.write`).
    pub async fn get_broadcast(&self, actor: &Actor, id: i64) -> AppResult<BroadcastView> {
        actor.require(Permission::BroadcastsWrite)?;
        repo::get_broadcast(self.db().read().await?.conn(), id)
            .await?
            .ok_or_else(broadcast_not_found)?
            .try_into()
    }

    /// A page of broadcasts (needs `broadcasts.write`); sortable by `id`, `created_at`.
    pub async fn list_broadcasts(
        &self,
        actor: &Actor,
        page: ListParams,
    ) -> AppResult<(Vec<BroadcastView>, i64)> {
        actor.require(Permission::BroadcastsWrite)?;
        let page = page.page(&["id", "created_at"], "id")?;
        let (rows, total) = repo::list_broadcasts(self.db().read().await?.conn(), page).await?;
        Ok((
            rows.into_iter()
                .map(BroadcastView::try_from)
                .collect::<AppResult<_>>()?,
            total,
        ))
    }

    /// Stops a broadcast (needs `broadcasts.write`): recipients not reached yet stay
    /// unsent. Cancelling a cancelled broadcast changes nothing; a finished one cannot be
    /// cancelled (`broadcast_finished`).
    pub async fn cancel_broadcast(&self, actor: &Actor, id: i64) -> AppResult<BroadcastView> {
        actor.require(Permission::BroadcastsWrite)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let before = repo::get_broadcast(tx.conn(), id)
            .await?
            .ok_or_else(broadcast_not_found)?;
        if !repo::cancel_broadcast(tx.conn(), id, now).await? {
            return match BroadcastStatus::parse(&before.status)? {
                BroadcastStatus::Cancelled => before.try_into(),
                _ => Err(AppError::new(
                    ErrorCode::BroadcastFinished,
                    "the broadcast has already been sent to everyone",
                )),
            };
        }
        let after = repo::get_broadcast(tx.conn(), id)
            .await?
            .ok_or_else(broadcast_not_found)?;
        self.audit(
            tx.conn(),
            actor,
            "broadcast.cancel",
            "broadcast",
            Some(id),
            Some(&before),
            Some(&after),
        )
        .await?;
        tx.commit().await?;
        after.try_into()
    }

    /// Asks the sender to stop after the message in hand (on shutdown).
    pub fn stop_broadcasts(&self) {
        self.inner
            .broadcaster
            .stopping
            .store(true, Ordering::Relaxed);
        self.inner.broadcaster.wake.notify_one();
    }

    /// The sender loop: while a broadcast is sending, sends its pending deliveries in id
    /// order through the notifier at this process's rate. Runs until stopped.
    pub async fn run_broadcasts(self) {
        while !self.inner.broadcaster.stopping.load(Ordering::Relaxed) {
            match self.broadcast_step(STEP).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "broadcasts: sending failed"),
            }
            let _ = tokio::time::timeout(IDLE, self.inner.broadcaster.wake.notified()).await;
        }
    }

    /// One batch of the sender: tries at most `max` deliveries (paced) and returns how
    /// many reached a final state (sent, failed or blocked). Does nothing without a
    /// notifier: the rows wait for one. Marks broadcasts with nothing left pending done.
    pub async fn broadcast_step(&self, max: usize) -> AppResult<usize> {
        let Some(notifier) = self.notifier().cloned() else {
            return Ok(0);
        };
        let sender = &self.inner.broadcaster;
        let mut next_send = sender.next_send.lock().await;
        let mut tried = 0usize;
        let mut finished = 0usize;
        'batches: while tried < max {
            let batch = self.pending_batch(max - tried).await?;
            if batch.is_empty() {
                break;
            }
            for d in batch {
                if tried >= max || sender.stopping.load(Ordering::Relaxed) {
                    break 'batches;
                }
                tried += 1;
                let chat = match d.telegram_id {
                    Some(chat) if d.user_status == "active" => chat,
                    _ => {
                        let why = if d.telegram_id.is_none() {
                            "the customer has no Telegram chat"
                        } else {
                            "the customer is disabled"
                        };
                        let mut tx = self.db().begin().await?;
                        if repo::fail_pending(tx.conn(), d.id, d.broadcast_id, why).await? {
                            finished += 1;
                        }
                        tx.commit().await?;
                        continue;
                    }
                };
                wait_turn(&mut next_send, self.broadcast_rate()).await;
                // Taken and committed before the send: never sent twice.
                let mut tx = self.db().begin().await?;
                let taken =
                    repo::claim_delivery(tx.conn(), d.id, d.broadcast_id, self.now().millis())
                        .await?;
                tx.commit().await?;
                if !taken {
                    continue;
                }
                let to = Recipient {
                    chat_id: chat,
                    lang: mrjbot_i18n::Lang::parse(&d.language).unwrap_or(mrjbot_i18n::Lang::Fa),
                    user_id: Some(d.user_id),
                };
                let notice = Notice::Broadcast {
                    broadcast_id: d.broadcast_id,
                    body: d.body.clone(),
                };
                let sent = tokio::time::timeout(SEND_TIMEOUT, notifier.notify(&to, &notice))
                    .await
                    .unwrap_or_else(|_| {
                        Err(NotifyError::Later(format!(
                            "no answer in {}s",
                            SEND_TIMEOUT.as_secs()
                        )))
                    });
                let outcome = match sent {
                    Ok(()) => {
                        finished += 1;
                        continue;
                    }
                    Err(NotifyError::RetryAfter(wait)) => {
                        let mut tx = self.db().begin().await?;
                        repo::unclaim_delivery(tx.conn(), d.id, d.broadcast_id).await?;
                        tx.commit().await?;
                        tracing::info!(?wait, "broadcasts: Telegram asked to slow down");
                        *next_send = Some(Instant::now() + wait);
                        // Fetch again: the row given back comes first.
                        continue 'batches;
                    }
                    Err(NotifyError::Blocked) => (Undelivered::Blocked, "blocked the bot".into()),
                    // Whether a message that failed "for now" arrived is unknown: it is
                    // not tried again, so that nobody receives it twice.
                    Err(NotifyError::Later(e)) | Err(NotifyError::Never(e)) => {
                        (Undelivered::Failed, e)
                    }
                };
                let mut tx = self.db().begin().await?;
                repo::settle_undelivered(tx.conn(), d.id, d.broadcast_id, outcome.0, &outcome.1)
                    .await?;
                tx.commit().await?;
                finished += 1;
            }
        }
        let mut tx = self.db().begin().await?;
        let done = repo::finish_sent(tx.conn(), self.now().millis()).await?;
        tx.commit().await?;
        if done > 0 {
            tracing::info!(broadcasts = done, "broadcasts finished");
        }
        Ok(finished)
    }

    /// Up to `limit` pending deliveries of the oldest sending broadcast that has any.
    async fn pending_batch(&self, limit: usize) -> AppResult<Vec<PendingDelivery>> {
        let limit = i64::try_from(limit.min(STEP)).unwrap_or(1);
        let mut c = self.db().read().await?;
        for id in repo::sending_broadcasts(c.conn()).await? {
            let batch = repo::pending_deliveries(c.conn(), id, limit).await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
        }
        Ok(Vec::new())
    }
}
