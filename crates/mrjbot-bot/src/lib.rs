//! The Telegram shop front: every screen a customer or a staff member sees in Telegram,
//! over the service layer in-process. Nothing here decides a business rule: a button
//! press becomes one service call as the person who pressed it (an [`Actor`] built from
//! their Telegram id), and the answer becomes a screen in their language.
//!
//! Guarantees:
//! - Updates of one chat are handled one at a time, in order; chats run in parallel.
//! - Long polling (default) is done by one replica at a time (a lease in the store);
//!   the others stand by and take over within the lease time. Webhook mode mounts a route
//!   on the API server and checks Telegram's secret header.
//! - The handled-update offset and every chat's dialogue are stored, so a restart neither
//!   replays old updates nor forgets that a customer was about to send a receipt.
//! - Inline keyboards edit their message in place; a button from an old message loads what
//!   it names afresh and says so when it no longer applies. Malformed updates, unknown
//!   commands and floods get a polite answer or are dropped, never a crash.
//! - The bot is also the [`Notifier`](mrjbot_app::notify::Notifier): reminders, payment
//!   results, receipts for review and ticket answers are rendered here.

pub mod cb;
mod customer;
mod notifier;
mod runtime;
mod staff;
mod state;
mod text;
mod ui;

pub use runtime::{BotConfig, BotMode, ShopBot};
