//! The notifier port: how the services reach people in Telegram without knowing how a
//! message looks. The outbox and the job loops decide *that* someone is told something
//! (durably, once); the bot crate implements [`Notifier`] and decides *how* it looks in
//! the reader's language, with which buttons.
//!
//! Without a notifier (the bot is off) keyed text notices still go out as plain text
//! through the Bot API client when a token is configured; everything else is recorded
//! only.

use mrjbot_i18n::Lang;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Who reads a notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Telegram chat to send to (the customer's private chat, or the staff chat).
    pub chat_id: i64,
    /// Language to render in.
    pub lang: Lang,
    /// Our user, when the chat is one customer's.
    pub user_id: Option<i64>,
}

/// What to tell. Variants carry ids, not text: the notifier loads what it shows, so a
/// notice retried an hour later shows the state of then.
///
/// Queued notices are stored as JSON tagged by `type` (`{"type":"expiry_reminder",...}`);
/// renaming a variant or a field breaks notices already queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Notice {
    /// A fluent message key with string arguments (payment results, refunds...).
    Text {
        /// Fluent message id.
        key: String,
        /// Its arguments.
        args: Vec<(String, String)>,
    },
    /// The subscription ends in `days_left` days.
    ExpiryReminder {
        /// The subscription.
        subscription_id: i64,
        /// Whole days left (0: today).
        days_left: i64,
    },
    /// The subscription used `percent` of its data cap (100: cap reached).
    DataWarning {
        /// The subscription.
        subscription_id: i64,
        /// 1..=100.
        percent: u8,
    },
    /// Staff answered a ticket (to the customer).
    TicketAnswer {
        /// The ticket.
        ticket_id: i64,
        /// The answer.
        message_id: i64,
    },
    /// A customer wrote in a ticket (to the staff chat).
    TicketForStaff {
        /// The ticket.
        ticket_id: i64,
        /// The customer's message.
        message_id: i64,
    },
    /// A card receipt waits for review (to the staff chat, with Approve / Reject).
    ReceiptForReview {
        /// The card payment.
        payment_id: i64,
    },
    /// An order was paid (to the staff chat).
    OrderPaid {
        /// The order.
        order_id: i64,
        /// The payment that paid it.
        payment_id: i64,
    },
    /// One message of a broadcast.
    Broadcast {
        /// The broadcast.
        broadcast_id: i64,
        /// Its text, as the seller wrote it.
        body: String,
    },
}

/// Why a notice was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// Telegram asked to slow down: try again after this long.
    #[error("rate limited; retry after {0:?}")]
    RetryAfter(Duration),
    /// The person blocked the bot or deleted the chat: do not try again.
    #[error("the recipient blocked the bot")]
    Blocked,
    /// Not now (network, Telegram 5xx, the thing shown is not ready): try again later.
    #[error("{0}")]
    Later(String),
    /// Never deliverable (bad chat, the notice's subject is gone).
    #[error("{0}")]
    Never(String),
}

/// Boxed future a [`Notifier`] returns (the trait stays object safe).
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Renders and sends notices. Implemented by the bot.
pub trait Notifier: Send + Sync + 'static {
    /// Delivers one notice to one chat.
    fn notify<'a>(&'a self, to: &'a Recipient, notice: &'a Notice) -> NotifyFuture<'a>;
}

/// A shared notifier.
pub type SharedNotifier = Arc<dyn Notifier>;

/// Who a queued notice is for: one customer (their private chat, in their language) or
/// the staff chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum NoticeTarget {
    /// A customer, by user id.
    Customer {
        /// The user.
        user_id: i64,
    },
    /// The staff chat (`App::staff_chat`).
    Staff,
}
