//! Support tickets: a customer asks, staff answer, in one thread per question.
//!
//! Who may do what: the owner reads, writes in and closes their own tickets; staff read
//! every ticket with `tickets.read` and answer or close with `tickets.write`. A ticket
//! someone may not read does not exist for them (`ticket_not_found`), so ids reveal
//! nothing.
//!
//! Status follows the last word: a customer message makes it `open` (waiting for staff),
//! a staff message `answered`; `closed` ends it. A customer cannot write in a closed
//! ticket (they open a new one), staff can (the ticket reopens as `answered`). A customer
//! has at most [`MAX_OPEN_TICKETS`] tickets that are not closed, counted under a lock on
//! the customer's row so parallel requests cannot pass the limit.
//!
//! Telling people goes through the outbox in the same transaction as the message
//! (`ticket_notice` items): staff hear of every customer message in the staff chat, the
//! customer of every answer in their own chat, once each, after the commit.

use crate::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::money::outbox::WorkError;
use crate::notify::{Notice, NotifyError, Recipient};
use crate::support::body_text;
use crate::{App, ListParams};
use mrjbot_db::money::{self as money_repo, OutboxRow};
use mrjbot_db::support::{self as repo, TicketFilter, TicketMessageRow, TicketRow};
use mrjbot_db::{Conn, users as users_repo};
use mrjbot_domain::{ErrorCode, Permission, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Outbox kind: tell someone about a ticket message. Payload
/// `{"ticket_id", "message_id", "to": "customer" | "staff"}`.
pub const TICKET_NOTICE: &str = "ticket_notice";

/// Open (not closed) tickets one customer may have.
pub const MAX_OPEN_TICKETS: i64 = 3;

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 120;

/// Attempts at a ticket notice before giving up (the recipient's chat keeps failing).
const MAX_NOTICE_ATTEMPTS: i64 = 10;

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// The customer wrote last: waiting for staff.
    Open,
    /// Staff wrote last: waiting for the customer.
    Answered,
    /// Done.
    Closed,
}

impl TicketStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Answered => "answered",
            TicketStatus::Closed => "closed",
        }
    }

    fn parse(s: &str) -> AppResult<Self> {
        match s {
            "open" => Ok(TicketStatus::Open),
            "answered" => Ok(TicketStatus::Answered),
            "closed" => Ok(TicketStatus::Closed),
            other => Err(AppError::internal(mrjbot_db::DbError::Decode(format!(
                "unknown ticket status `{other}`"
            )))),
        }
    }
}

/// A ticket as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketView {
    pub id: i64,
    /// The customer who opened it.
    pub user_id: i64,
    pub subject: String,
    pub status: TicketStatus,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// The staff member it is assigned to.
    pub assigned_to: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    /// When the newest message was written.
    pub last_message_at: Option<Timestamp>,
}

impl TryFrom<TicketRow> for TicketView {
    type Error = AppError;
    fn try_from(t: TicketRow) -> AppResult<Self> {
        Ok(Self {
            id: t.id,
            user_id: t.user_id,
            subject: t.subject,
            status: TicketStatus::parse(&t.status)?,
            priority: t.priority,
            assigned_to: t.assigned_to,
            created_at: Timestamp::from_millis(t.created_at),
            updated_at: Timestamp::from_millis(t.updated_at),
            closed_at: t.closed_at.map(Timestamp::from_millis),
            last_message_at: t.last_message_at.map(Timestamp::from_millis),
        })
    }
}

/// One message of a ticket.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketMessageView {
    pub id: i64,
    pub ticket_id: i64,
    /// Who wrote it (absent when that account was deleted).
    pub author_id: Option<i64>,
    /// Written by staff (as opposed to the customer).
    pub from_staff: bool,
    /// The text (empty when the message is only an attachment).
    pub body: String,
    /// A Telegram file id (photo or document) sent with the message.
    pub attachment_file_id: Option<String>,
    pub created_at: Timestamp,
}

impl From<TicketMessageRow> for TicketMessageView {
    fn from(m: TicketMessageRow) -> Self {
        Self {
            id: m.id,
            ticket_id: m.ticket_id,
            author_id: m.author_id,
            from_staff: m.from_staff,
            body: m.body,
            attachment_file_id: m.attachment_file_id,
            created_at: Timestamp::from_millis(m.created_at),
        }
    }
}

/// A ticket with its messages, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketThread {
    pub ticket: TicketView,
    pub messages: Vec<TicketMessageView>,
}

/// Input for a new ticket.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// 1 to 120 characters.
    #[schema(min_length = 1, max_length = 120)]
    pub subject: String,
    /// Up to 4000 characters; may be empty when an attachment is given.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub body: String,
    /// A Telegram file id (photo or document).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,256}$")]
    pub attachment_file_id: Option<String>,
}

/// Input for a message in a ticket.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicketMessage {
    /// Up to 4000 characters; may be empty when an attachment is given.
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub body: String,
    /// A Telegram file id (photo or document).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,256}$")]
    pub attachment_file_id: Option<String>,
}

/// Filters for listing tickets.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TicketQuery {
    /// Only this customer's (staff; a customer always sees only their own).
    pub user_id: Option<i64>,
    pub status: Option<TicketStatus>,
}

fn ticket_not_found() -> AppError {
    AppError::not_found(ErrorCode::TicketNotFound, "ticket")
}

/// Checks a Telegram file id: 1-256 characters of the URL-safe alphabet Telegram uses.
fn file_id(v: Option<String>) -> AppResult<Option<String>> {
    let Some(v) = v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > 256
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AppError::field(
            "attachment_file_id",
            "a Telegram file id: up to 256 letters, digits, - or _",
        ));
    }
    Ok(Some(v))
}

/// A message's text and attachment; at least one of them.
fn message_parts(body: &str, attachment: Option<String>) -> AppResult<(String, Option<String>)> {
    let attachment = file_id(attachment)?;
    let body = body_text("body", body, attachment.is_none())?;
    Ok((body, attachment))
}

impl App {
    /// A customer opens a ticket (for themselves): subject 1..=120 characters, a body of
    /// 1..=4000 characters or an attachment. At most [`MAX_OPEN_TICKETS`] open tickets
    /// per customer (`too_many_tickets`). The staff chat is told.
    pub async fn open_ticket(&self, actor: &Actor, input: NewTicket) -> AppResult<TicketThread> {
        let user_id = actor.user_id.ok_or_else(AppError::denied)?;
        let subject = input.subject.trim().to_owned();
        if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(AppError::field(
                "subject",
                format!("1 to {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        let (body, attachment) = message_parts(&input.body, input.attachment_file_id)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        if !money_repo::lock_user(tx.conn(), user_id).await? {
            return Err(AppError::not_found(ErrorCode::UserNotFound, "user"));
        }
        if repo::count_open_tickets(tx.conn(), user_id).await? >= MAX_OPEN_TICKETS {
            return Err(AppError::new(
                ErrorCode::TooManyTickets,
                format!(
                    "you have {MAX_OPEN_TICKETS} open tickets; close one or write in it instead"
                ),
            ));
        }
        let mut ticket = TicketRow {
            id: 0,
            user_id,
            subject,
            status: TicketStatus::Open.as_str().into(),
            priority: "normal".into(),
            assigned_to: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
            last_message_at: Some(now),
        };
        ticket.id = repo::insert_ticket(tx.conn(), &ticket).await?;
        let mut msg = TicketMessageRow {
            id: 0,
            ticket_id: ticket.id,
            author_id: Some(user_id),
            from_staff: false,
            body,
            attachment_file_id: attachment,
            created_at: now,
        };
        msg.id = repo::insert_message(tx.conn(), &msg).await?;
        self.queue_ticket_notice(tx.conn(), ticket.id, msg.id, "staff")
            .await?;
        tx.commit().await?;
        self.wake_outbox();
        Ok(TicketThread {
            ticket: ticket.try_into()?,
            messages: vec![msg.into()],
        })
    }

    /// Adds a message. The owner's message makes the ticket `open` again and tells staff
    /// (refused with `ticket_closed` on a closed ticket); a message by staff with
    /// `tickets.write` makes it `answered` (reopening a closed one) and tells the customer.
    pub async fn post_ticket_message(
        &self,
        actor: &Actor,
        ticket_id: i64,
        input: NewTicketMessage,
    ) -> AppResult<TicketMessageView> {
        let (body, attachment) = message_parts(&input.body, input.attachment_file_id)?;
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let mut ticket = repo::get_ticket(tx.conn(), ticket_id, true)
            .await?
            .ok_or_else(ticket_not_found)?;
        let from_staff = if actor.is(ticket.user_id) {
            if ticket.status == TicketStatus::Closed.as_str() {
                return Err(AppError::new(
                    ErrorCode::TicketClosed,
                    "the ticket is closed; open a new one",
                ));
            }
            false
        } else {
            if !actor.can(Permission::TicketsRead) {
                return Err(ticket_not_found());
            }
            actor.require(Permission::TicketsWrite)?;
            true
        };
        let before = ticket.clone();
        ticket.status = if from_staff {
            TicketStatus::Answered
        } else {
            TicketStatus::Open
        }
        .as_str()
        .into();
        ticket.closed_at = None;
        ticket.updated_at = now;
        ticket.last_message_at = Some(now);
        repo::update_ticket_status(tx.conn(), &ticket).await?;
        let mut msg = TicketMessageRow {
            id: 0,
            ticket_id,
            author_id: actor.user_id,
            from_staff,
            body,
            attachment_file_id: attachment,
            created_at: now,
        };
        msg.id = repo::insert_message(tx.conn(), &msg).await?;
        let to = if from_staff { "customer" } else { "staff" };
        self.queue_ticket_notice(tx.conn(), ticket_id, msg.id, to)
            .await?;
        if from_staff {
            self.audit(
                tx.conn(),
                actor,
                "ticket.answer",
                "ticket",
                Some(ticket_id),
                Some(&before),
                Some(&json!({ "status": ticket.status, "message_id": msg.id })),
            )
            .await?;
        }
        tx.commit().await?;
        self.wake_outbox();
        Ok(msg.into())
    }

    /// Closes a ticket: its owner, or staff with `tickets.write`. Closing a closed ticket
    /// changes nothing.
    pub async fn close_ticket(&self, actor: &Actor, ticket_id: i64) -> AppResult<TicketView> {
        let now = self.now().millis();
        let mut tx = self.db().begin().await?;
        let mut ticket = repo::get_ticket(tx.conn(), ticket_id, true)
            .await?
            .ok_or_else(ticket_not_found)?;
        if !actor.is(ticket.user_id) {
            if !actor.can(Permission::TicketsRead) {
                return Err(ticket_not_found());
            }
            actor.require(Permission::TicketsWrite)?;
        }
        if ticket.status == TicketStatus::Closed.as_str() {
            return ticket.try_into();
        }
        let before = ticket.clone();
        ticket.status = TicketStatus::Closed.as_str().into();
        ticket.closed_at = Some(now);
        ticket.updated_at = now;
        repo::update_ticket_status(tx.conn(), &ticket).await?;
        self.audit(
            tx.conn(),
            actor,
            "ticket.close",
            "ticket",
            Some(ticket_id),
            Some(&before),
            Some(&ticket),
        )
        .await?;
        tx.commit().await?;
        ticket.try_into()
    }

    /// A ticket with its messages, oldest first: one's own, or any with `tickets.read`.
    pub async fn get_ticket(&self, actor: &Actor, ticket_id: i64) -> AppResult<TicketThread> {
        let mut c = self.db().read().await?;
        let ticket = repo::get_ticket(c.conn(), ticket_id, false)
            .await?
            .filter(|t| actor.is(t.user_id) || actor.can(Permission::TicketsRead))
            .ok_or_else(ticket_not_found)?;
        let messages = repo::ticket_messages(c.conn(), ticket_id).await?;
        Ok(TicketThread {
            ticket: ticket.try_into()?,
            messages: messages.into_iter().map(Into::into).collect(),
        })
    }

    /// A page of tickets: one's own, or anyone's with `tickets.read` (filtered by
    /// customer and status). Sortable by `id`, `created_at`, `updated_at`,
    /// `last_message_at`.
    pub async fn list_tickets(
        &self,
        actor: &Actor,
        q: TicketQuery,
        page: ListParams,
    ) -> AppResult<(Vec<TicketView>, i64)> {
        let mut f = TicketFilter {
            user_id: q.user_id,
            status: q.status.map(|s| s.as_str().to_owned()),
        };
        if !actor.can(Permission::TicketsRead) {
            let me = actor.user_id.ok_or_else(AppError::denied)?;
            if f.user_id.is_some_and(|u| u != me) {
                return Ok((Vec::new(), 0));
            }
            f.user_id = Some(me);
        }
        let page = page.page(&["id", "created_at", "updated_at", "last_message_at"], "id")?;
        let (rows, total) = repo::list_tickets(self.db().read().await?.conn(), &f, page).await?;
        Ok((
            rows.into_iter()
                .map(TicketView::try_from)
                .collect::<AppResult<_>>()?,
            total,
        ))
    }

    /// Queues telling `to` ("customer" or "staff") about a message, once.
    async fn queue_ticket_notice(
        &self,
        c: Conn<'_>,
        ticket_id: i64,
        message_id: i64,
        to: &str,
    ) -> AppResult<()> {
        money_repo::enqueue(
            c,
            TICKET_NOTICE,
            &json!({ "ticket_id": ticket_id, "message_id": message_id, "to": to }).to_string(),
            &format!("{TICKET_NOTICE}:{message_id}:{to}"),
            self.now().millis(),
        )
        .await?;
        Ok(())
    }

    /// Outbox work: tells the customer or the staff chat about a ticket message through
    /// the notifier. Without a notifier, a customer chat or a staff chat the notice is
    /// recorded only.
    pub(crate) async fn deliver_ticket_notice(&self, item: &OutboxRow) -> Result<(), WorkError> {
        let payload: Value =
            serde_json::from_str(&item.payload).map_err(|e| WorkError::Never(e.to_string()))?;
        let field = |k: &str| {
            payload[k]
                .as_i64()
                .ok_or_else(|| WorkError::Never(format!("no {k}")))
        };
        let (ticket_id, message_id) = (field("ticket_id")?, field("message_id")?);
        let Some(notifier) = self.notifier().cloned() else {
            tracing::info!(
                ticket = ticket_id,
                message = message_id,
                "no notifier; ticket notice recorded only"
            );
            return Ok(());
        };
        let (to, notice) = match payload["to"].as_str() {
            Some("customer") => {
                let mut c = self.db().read().await?;
                let Some(ticket) = repo::get_ticket(c.conn(), ticket_id, false).await? else {
                    return Err(WorkError::Never(format!("ticket {ticket_id} is gone")));
                };
                let Some(user) = users_repo::get(c.conn(), ticket.user_id).await? else {
                    return Err(WorkError::Never("the customer is gone".into()));
                };
                let Some(chat) = user.telegram_id else {
                    tracing::info!(
                        ticket = ticket_id,
                        user = user.id,
                        "the customer has no Telegram chat; answer notice recorded only"
                    );
                    return Ok(());
                };
                let lang =
                    mrjbot_i18n::Lang::parse(&user.language).unwrap_or(mrjbot_i18n::Lang::Fa);
                (
                    Recipient {
                        chat_id: chat,
                        lang,
                        user_id: Some(user.id),
                    },
                    Notice::TicketAnswer {
                        ticket_id,
                        message_id,
                    },
                )
            }
            Some("staff") => {
                let Some((chat, lang)) = self.staff_chat() else {
                    tracing::info!(
                        ticket = ticket_id,
                        "no staff chat configured; ticket notice recorded only"
                    );
                    return Ok(());
                };
                (
                    Recipient {
                        chat_id: chat,
                        lang,
                        user_id: None,
                    },
                    Notice::TicketForStaff {
                        ticket_id,
                        message_id,
                    },
                )
            }
            other => return Err(WorkError::Never(format!("bad recipient {other:?}"))),
        };
        match notifier.notify(&to, &notice).await {
            Ok(()) => Ok(()),
            Err(NotifyError::RetryAfter(d)) => {
                let wait = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                Err(WorkError::RetryAt(
                    self.now().millis().saturating_add(wait),
                    format!("rate limited for {d:?}"),
                ))
            }
            Err(NotifyError::Blocked) => {
                tracing::info!(
                    ticket = ticket_id,
                    chat = to.chat_id,
                    "the recipient blocked the bot; ticket notice dropped"
                );
                Ok(())
            }
            Err(NotifyError::Later(e)) if item.attempts >= MAX_NOTICE_ATTEMPTS => Err(
                WorkError::Never(format!("gave up after {} attempts: {e}", item.attempts)),
            ),
            Err(NotifyError::Later(e)) => Err(WorkError::Later(e)),
            Err(NotifyError::Never(e)) => Err(WorkError::Never(e)),
        }
    }
}
