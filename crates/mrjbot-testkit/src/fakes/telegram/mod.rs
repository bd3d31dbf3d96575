//! A local Telegram Bot API (telegram.md §1.7, payments.md §3) that a real bot (teloxide
//! 0.17) runs against unmodified, plus typed test clients that play its users.
//!
//! Bot side: `/bot{token}/{method}` with method names case-insensitive and parameters
//! from the GET query, a JSON body, a form body or a multipart body (file uploads; JSON
//! fields arrive as strings there). Answers have Telegram's shapes: `{"ok":true,
//! "result":..}` or `{"ok":false,"error_code":..,"description":..,"parameters":
//! {"retry_after":..}}` with the HTTP status equal to `error_code`, and Telegram's wording
//! (teloxide maps descriptions to error variants): a wrong token gets 401 `Unauthorized`,
//! an unknown method 404 `Not Found`. Message ids count per chat, update ids and file ids
//! globally, all deterministic; dates are in seconds.
//!
//! Methods: `getMe`, `getUpdates`, `setWebhook`, `deleteWebhook`, `getWebhookInfo`,
//! `sendMessage`, `sendPhoto`, `sendDocument`, `editMessageText`, `editMessageCaption`,
//! `editMessageReplyMarkup`, `deleteMessage`, `answerCallbackQuery`, `sendChatAction`,
//! `setMyCommands`, `getMyCommands`, `deleteMyCommands`, `getChat`, `getChatMember`,
//! `copyMessage`, `forwardMessage`, `getFile` (+ `GET /file/bot{token}/{file_path}`),
//! `sendInvoice`, `createInvoiceLink`, `answerPreCheckoutQuery`, `refundStarPayment`,
//! `getStarTransactions` (Stars only).
//!
//! Chats are real: the bot can write to a private chat only once the user wrote to it
//! (or a test says they did earlier, [`FakeTelegram::open_chat`]), to a group once the
//! test created it; a user who blocked the bot gives 403. Flood control (off by
//! default) answers 429 like Telegram.
//!
//! Test side: [`FakeTelegram::user`] and [`FakeTelegram::group`] give [`TgUser`] and
//! [`TgGroup`] handles (send, reply, photos, documents, button presses, payments, waits);
//! knobs block users, set chat members, inject 429s and raw updates, and age callback
//! queries.

mod client;
mod files;
mod flood;
mod markup;
mod methods;
mod payments;
mod state;
mod webhook;

pub use client::{TgGroup, TgUser};
pub use payments::SUBSCRIPTION_PERIOD;

use super::params::Params;
use super::{Served, serve};
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use state::{ApiError, Chat, Inner, Shared, UserInfo};
use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Largest request body (Telegram takes documents up to 50 MB from bots).
const MAX_BODY: usize = 50 * 1024 * 1024;
/// Chat member statuses [`FakeTelegram::set_member`] takes.
const STATUSES: &[&str] = &[
    "creator",
    "administrator",
    "member",
    "restricted",
    "left",
    "kicked",
];

/// A running fake Bot API for one bot; stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    served: Served,
    shared: Arc<Shared>,
    webhook_worker: JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.webhook_worker.abort();
    }
}

/// A message the bot sent, as it is now (after edits), as recorded by the fake.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    /// Id within the chat.
    pub message_id: i64,
    /// Unix time in seconds.
    pub date: i64,
    /// Text of a text message, or the caption of a media message (as the user sees it:
    /// HTML tags parsed away).
    pub text: Option<String>,
    /// The `invoice` object of an invoice message.
    pub invoice: Option<Value>,
    /// Everything the bot sent in the request that created it (keyboards, parse mode...).
    pub request: Value,
    /// The chat it is in.
    pub chat_id: i64,
    /// The `parse_mode` it was sent with.
    pub parse_mode: Option<String>,
    /// Entities of the text or caption.
    pub entities: Vec<Value>,
    /// The inline keyboard, row by row.
    pub buttons: Vec<Vec<Button>>,
    /// A reply keyboard, `remove_keyboard` or `force_reply` sent with it.
    pub reply_keyboard: Option<Value>,
    /// The photo (largest size).
    pub photo: Option<FileRef>,
    /// The document.
    pub document: Option<FileRef>,
    /// How many times it was edited.
    pub edits: u32,
    /// The bot deleted it.
    pub deleted: bool,
    /// The message it replies to.
    pub reply_to: Option<i64>,
    /// The whole `Message` object as Telegram would return it now.
    pub json: Value,
}

impl SentMessage {
    /// The `callback_data` of the first button whose text contains `text`.
    pub fn button_data(&self, text: &str) -> Option<&str> {
        self.buttons
            .iter()
            .flatten()
            .find(|b| b.text.contains(text))
            .and_then(|b| b.callback_data.as_deref())
    }
}

/// An inline keyboard button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// The label.
    pub text: String,
    /// Sent back in the callback query when pressed.
    pub callback_data: Option<String>,
    /// Opened when pressed.
    pub url: Option<String>,
}

/// A file Telegram stores, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// The id to send it again or `getFile` it.
    pub file_id: String,
    /// The id that is the same for the same file.
    pub file_unique_id: String,
    /// The content.
    pub bytes: Vec<u8>,
    /// A document's name.
    pub file_name: Option<String>,
}

/// One message the bot posted (send*, copy*, forward*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRecord {
    /// Where.
    pub chat_id: i64,
    /// The new message.
    pub message_id: i64,
    /// The Bot API method, as named in the API (`sendMessage`).
    pub method: String,
    /// When, on the monotonic clock.
    pub at: Instant,
    /// When, in Unix milliseconds on the fake's clock.
    pub at_ms: i64,
}

/// What the bot said with `answerCallbackQuery`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    /// The notification or alert text.
    pub text: Option<String>,
    /// An alert instead of a notification.
    pub show_alert: bool,
    /// A URL to open.
    pub url: Option<String>,
}

/// How a checkout started with [`FakeTelegram::pay_invoice`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// The bot accepted; a `successful_payment` message was queued with this charge id.
    Paid {
        /// The new, unique `telegram_payment_charge_id`.
        charge_id: String,
    },
    /// The bot declined with this message.
    Declined {
        /// What the user was shown.
        error_message: String,
    },
    /// The bot did not answer in time; nothing was charged.
    TimedOut,
}

/// A PNG of `width` x `height` (a gradient), for tests that send photos.
pub fn sample_photo(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width.max(1), height.max(1), |x, y| {
        let r = u8::try_from(x * 255 / width.max(1)).unwrap_or(255);
        let g = u8::try_from(y * 255 / height.max(1)).unwrap_or(255);
        image::Rgb([r, g, 128])
    });
    let mut out = Vec::new();
    // Encoding an in-memory RGB image as PNG cannot fail.
    let _ = image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png);
    out
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return ApiError::not_found().into_response();
    };
    if token != shared.token {
        return ApiError::new(401, "Unauthorized").into_response();
    }
    let method = method.to_ascii_lowercase();
    let limited = {
        let mut st = shared.lock();
        *st.calls.entry(method.clone()).or_default() += 1;
        match st.rate_limit {
            Some((calls, secs)) if calls > 0 => {
                st.rate_limit = (calls > 1).then_some((calls - 1, secs));
                Some(secs)
            }
            _ => None,
        }
    };
    if let Some(secs) = limited {
        return ApiError::too_many(secs).into_response();
    }
    let params = match Params::from_any_request(&headers, query.as_deref(), body).await {
        Ok(p) => p,
        Err(e) => return ApiError::bad_request(&e).into_response(),
    };
    match methods::dispatch(&shared, &method, &params).await {
        Ok(result) => axum::Json(json!({"ok": true, "result": result})).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn fallback() -> Response {
    ApiError::not_found().into_response()
}

impl FakeTelegram {
    /// Starts the fake for the bot with `token` (`123456:ABC...`; the digits before the
    /// colon become the bot's user id).
    pub async fn start(token: &str) -> anyhow::Result<FakeTelegram> {
        let bot_id = token
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(1);
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            state: Mutex::new(Inner::new(bot_id)),
            updates_changed: Notify::new(),
            bot_changed: Notify::new(),
            http: mrjbot_app::pay::http_client(Duration::from_secs(5)),
        });
        let router = Router::new()
            .route("/{bot}/{method}", any(api))
            .route("/file/{bot}/{*path}", get(files::download))
            .fallback(fallback)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        let served = serve(router).await.context("starting the fake Telegram")?;
        let webhook_worker = tokio::spawn(webhook::deliver(shared.clone()));
        Ok(FakeTelegram {
            served,
            shared,
            webhook_worker,
        })
    }

    /// `http://127.0.0.1:PORT`: the `api_url` for the client.
    pub fn api_url(&self) -> &str {
        &self.served.base_url
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The bot's user id.
    pub fn bot_id(&self) -> i64 {
        self.shared.bot_id
    }

    /// What the bot has sent to `chat_id`, oldest first, as it is now (after edits;
    /// deleted ones flagged).
    pub fn messages(&self, chat_id: i64) -> Vec<SentMessage> {
        self.shared.lock().sent_messages(chat_id)
    }

    /// A user (private chat id == user id). Registers or renames them; their private chat
    /// exists for the bot once they send something.
    pub fn user(&self, id: i64, first_name: &str, language_code: Option<&str>) -> TgUser {
        let mut st = self.shared.lock();
        st.users.insert(
            id,
            UserInfo {
                first_name: first_name.to_owned(),
                language_code: language_code.map(str::to_owned),
            },
        );
        if let Some(chat) = st.chats.get_mut(&id) {
            chat.info["first_name"] = json!(first_name);
        }
        drop(st);
        TgUser::new(self.shared.clone(), id)
    }

    /// A group chat with the bot in it as an administrator (`chat_id` below
    /// -1 000 000 000 000 makes a supergroup).
    ///
    /// # Panics
    /// If `chat_id` is not negative.
    pub fn group(&self, chat_id: i64, title: &str) -> TgGroup {
        assert!(chat_id < 0, "a group chat id is negative, got {chat_id}");
        let kind = if chat_id <= -1_000_000_000_000 {
            "supergroup"
        } else {
            "group"
        };
        let mut st = self.shared.lock();
        let chat = st
            .chats
            .entry(chat_id)
            .or_insert_with(|| Chat::new(Value::Null));
        chat.info = json!({ "id": chat_id, "type": kind, "title": title });
        chat.exists = true;
        drop(st);
        TgGroup::new(self.shared.clone(), chat_id)
    }

    /// Sets what `getChatMember` says about `user_id` in `chat` (`"@channel"` or a chat
    /// id; an unknown `@name` becomes a channel, an unknown id a group). `status` is one
    /// of creator, administrator, member, restricted, left, kicked. Setting the bot's own
    /// id to left or kicked makes sends to the chat fail with 403.
    ///
    /// # Panics
    /// On an unknown status or a chat that is neither `@name` nor a negative id.
    pub fn set_member(&self, chat: &str, user_id: i64, status: &str) {
        assert!(
            STATUSES.contains(&status),
            "unknown chat member status {status:?}; use one of {STATUSES:?}"
        );
        let mut st = self.shared.lock();
        let chat_id = match chat.strip_prefix('@') {
            Some(name) => match st.resolve_chat(chat) {
                Ok(id) => id,
                Err(_) => {
                    let taken = st
                        .chats
                        .keys()
                        .filter(|id| **id <= -1_001_000_000_000)
                        .count();
                    let id = -1_001_000_000_000 - i64::try_from(taken).unwrap_or(0) - 1;
                    let mut c = Chat::new(json!({
                        "id": id, "type": "channel", "title": name, "username": name,
                    }));
                    c.exists = true;
                    st.chats.insert(id, c);
                    id
                }
            },
            None => {
                let id: i64 = chat
                    .trim()
                    .parse()
                    .ok()
                    .filter(|id| *id < 0)
                    .unwrap_or_else(|| panic!("a chat is `@name` or a negative id, got {chat:?}"));
                if !st.chats.get(&id).is_some_and(|c| c.exists) {
                    drop(st);
                    self.group(id, &format!("Group {id}"));
                    st = self.shared.lock();
                }
                id
            }
        };
        if user_id != st.bot_id {
            st.users.entry(user_id).or_insert_with(|| UserInfo {
                first_name: format!("User {user_id}"),
                language_code: Some("en".into()),
            });
        }
        if let Some(c) = st.chats.get_mut(&chat_id) {
            c.members.insert(user_id, status.to_owned());
        }
    }

    /// The user blocks the bot: sends to them fail with 403 until they write again; the
    /// bot gets a `my_chat_member` update.
    pub fn block(&self, user_id: i64) {
        self.shared.lock().set_blocked(user_id, true);
        self.shared.notify();
    }

    /// The user of private chat `chat_id` talked to the bot before the test began: the
    /// chat exists for the bot without queuing an update. (A negative id makes a group.)
    pub fn open_chat(&self, chat_id: i64) {
        if chat_id < 0 {
            if !self
                .shared
                .lock()
                .chats
                .get(&chat_id)
                .is_some_and(|c| c.exists)
            {
                self.group(chat_id, &format!("Group {chat_id}"));
            }
            return;
        }
        self.shared.lock().private_chat(chat_id).exists = true;
    }

    /// Flood control: at most `per_second` messages a second overall, about one a second
    /// per private chat (burst of 3), 20 a minute per group; `0` switches it off (the
    /// default). Counts only methods that post messages.
    pub fn flood_control(&self, per_second: u32) {
        self.shared.lock().flood.set(per_second);
    }

    /// How many times the bot called `method` (case-insensitive), errors included.
    pub fn calls(&self, method: &str) -> usize {
        self.shared
            .lock()
            .calls
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Every message the bot posted, in order.
    pub fn sends(&self) -> Vec<SendRecord> {
        self.shared.lock().sends.clone()
    }

    /// The webhook URL and secret token, if one is set.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.shared
            .lock()
            .webhook
            .as_ref()
            .map(|h| (h.url.clone(), h.secret.clone()))
    }

    /// A stored file by id, with its bytes.
    pub fn file(&self, file_id: &str) -> Option<FileRef> {
        self.shared.lock().files.get(file_id).map(|f| FileRef {
            file_id: f.file_id.clone(),
            file_unique_id: f.unique_id.clone(),
            bytes: f.bytes.clone(),
            file_name: f.file_name.clone(),
        })
    }

    /// The bot's commands for the default scope and `language_code`, as
    /// (command, description).
    pub fn commands(&self, language_code: Option<&str>) -> Vec<(String, String)> {
        let key = (
            json!({"type": "default"}).to_string(),
            language_code.unwrap_or("").to_owned(),
        );
        self.shared
            .lock()
            .commands
            .get(&key)
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|c| {
                        (
                            c["command"].as_str().unwrap_or_default().to_owned(),
                            c["description"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The chat actions (`typing`...) the bot sent to `chat_id`, oldest first.
    pub fn actions(&self, chat_id: i64) -> Vec<String> {
        self.shared
            .lock()
            .chats
            .get(&chat_id)
            .map(|c| c.actions.clone())
            .unwrap_or_default()
    }

    /// Moves the fake's clock forward (message dates, callback query age).
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let mut st = self.shared.lock();
        st.clock_offset_ms = st.clock_offset_ms.saturating_add(ms);
    }

    /// How long [`FakeTelegram::pay_invoice`] waits for `answerPreCheckoutQuery`
    /// (Telegram: 10 s).
    pub fn set_precheckout_timeout(&self, timeout: Duration) {
        self.shared.lock().precheckout_timeout = timeout;
    }

    /// The next `calls` API calls answer 429 with `retry_after` seconds.
    pub fn rate_limit_next(&self, calls: u32, retry_after_secs: u64) {
        self.shared.lock().rate_limit = (calls > 0).then_some((calls, retry_after_secs));
    }

    /// Queues a raw update (any JSON object; `update_id` is assigned). Returns its id. A
    /// message's private chat starts to exist for the bot.
    pub fn push_update(&self, update: Value) -> anyhow::Result<i64> {
        let Value::Object(mut map) = update else {
            anyhow::bail!("an update must be a JSON object");
        };
        map.remove("update_id");
        let mut st = self.shared.lock();
        if let Some(chat_id) = map
            .get("message")
            .and_then(|m| m["chat"]["id"].as_i64())
            .filter(|id| *id > 0)
        {
            st.private_chat(chat_id).exists = true;
        }
        let id = st.push_update(map);
        drop(st);
        self.shared.notify();
        Ok(id)
    }

    /// User `user_id` pays the invoice sent with `payload` (or the link from
    /// `createInvoiceLink`): a `pre_checkout_query` is queued and the bot has the
    /// pre-checkout timeout to answer. On `ok` a `successful_payment` message with a fresh
    /// charge id is queued; on a decline or no answer nothing is charged.
    pub async fn pay_invoice(
        &self,
        user_id: i64,
        payload_or_link: &str,
    ) -> anyhow::Result<PayOutcome> {
        payments::pay_invoice(&self.shared, user_id, payload_or_link).await
    }

    /// Telegram renews a Stars subscription first paid with `charge_id`: a new charge and
    /// a `successful_payment` with `is_recurring` and the next expiration date. Returns
    /// the new charge id.
    pub fn renew_subscription(&self, charge_id: &str) -> anyhow::Result<String> {
        payments::renew_subscription(&self.shared, charge_id)
    }
}
