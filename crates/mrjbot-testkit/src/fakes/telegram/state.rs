//! The fake's state behind one mutex: users, chats with every message in them (the bot's
//! and the users'), uploaded files, the update queue, callback queries, the webhook, and
//! the test knobs. Bot-side methods and the test client both work through [`Inner`], so
//! what a test plays and what the bot sees are always the same chat.

use super::flood::Flood;
use super::payments::{Charge, CheckoutAnswer, InvoiceRecord};
use super::{Button, CallbackAnswer, FileRef, SendRecord, SentMessage};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// Longest message text, in characters.
pub(super) const MAX_TEXT: usize = 4096;
/// Longest media caption, in characters.
pub(super) const MAX_CAPTION: usize = 1024;
/// How long a callback query can be answered (Telegram: 15 minutes).
pub(super) const CALLBACK_TTL_MS: i64 = 15 * 60 * 1000;
/// Update types Telegram leaves out unless asked for them explicitly.
const OPT_IN_UPDATES: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

/// A Bot API error; HTTP status = `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) code: u16,
    pub(super) description: String,
    pub(super) retry_after: Option<u64>,
}

impl ApiError {
    pub(super) fn new(code: u16, description: &str) -> Self {
        Self {
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    pub(super) fn bad_request(what: &str) -> Self {
        Self::new(400, &format!("Bad Request: {what}"))
    }

    pub(super) fn required(param: &str) -> Self {
        Self::bad_request(&format!("parameter \"{param}\" is required"))
    }

    pub(super) fn forbidden(what: &str) -> Self {
        Self::new(403, &format!("Forbidden: {what}"))
    }

    pub(super) fn not_found() -> Self {
        Self::new(404, "Not Found")
    }

    pub(super) fn too_many(secs: u64) -> Self {
        Self {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs),
        }
    }

    pub(super) fn chat_not_found() -> Self {
        Self::bad_request("chat not found")
    }

    pub(super) fn query_too_old() -> Self {
        Self::bad_request("query is too old and response timeout expired or query ID is invalid")
    }
}

impl From<super::super::params::BadParam> for ApiError {
    fn from(e: super::super::params::BadParam) -> Self {
        ApiError::bad_request(&format!("invalid {} specified", e.0))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::BAD_REQUEST);
        let mut body = json!({
            "ok": false,
            "error_code": self.code,
            "description": self.description,
        });
        if let Some(secs) = self.retry_after {
            body["parameters"] = json!({ "retry_after": secs });
        }
        (status, axum::Json(body)).into_response()
    }
}

/// Everything the router, the webhook worker and the test client share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) token: String,
    pub(super) bot_id: i64,
    pub(super) state: Mutex<Inner>,
    /// Woken whenever an update is queued (long polls and the webhook worker wait on it).
    pub(super) updates_changed: Notify,
    /// Woken whenever the bot changes what a chat shows or answers a callback query.
    pub(super) bot_changed: Notify,
    /// For webhook deliveries and photos sent by URL.
    pub(super) http: reqwest::Client,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn me(&self) -> Value {
        me_json(self.bot_id)
    }

    /// Wakes long polls and the webhook worker.
    pub(super) fn notify(&self) {
        self.updates_changed.notify_waiters();
    }

    /// Wakes test clients waiting for the bot.
    pub(super) fn bot_did_something(&self) {
        self.bot_changed.notify_waiters();
    }

    /// Waits until `check` finds something, up to `timeout`; `None` on timeout.
    pub(super) async fn wait_bot<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Inner) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.bot_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check(&self.lock()) {
                return Some(found);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return check(&self.lock());
            }
        }
    }
}

/// The bot's `@username`.
pub(super) const BOT_USERNAME: &str = "mrjbot_test_bot";

/// The bot's `User` object, as `getMe` returns it.
pub(super) fn me_json(bot_id: i64) -> Value {
    json!({
        "id": bot_id,
        "is_bot": true,
        "first_name": "MRJBot Test",
        "username": BOT_USERNAME,
        "can_join_groups": true,
        "can_read_all_group_messages": false,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false,
    })
}

/// A user the fake knows.
#[derive(Debug, Clone)]
pub(super) struct UserInfo {
    pub(super) first_name: String,
    pub(super) language_code: Option<String>,
}

/// One chat: private (id = the user's id), group, supergroup or channel.
#[derive(Debug)]
pub(super) struct Chat {
    /// The Telegram `Chat` object.
    pub(super) info: Value,
    /// Private: the user wrote to the bot; groups: the test created it.
    pub(super) exists: bool,
    /// Private only: the user blocked the bot.
    pub(super) blocked: bool,
    pub(super) last_message_id: i64,
    pub(super) messages: BTreeMap<i64, Msg>,
    /// `getChatMember` statuses set by tests.
    pub(super) members: BTreeMap<i64, String>,
    /// `sendChatAction` actions, oldest first.
    pub(super) actions: Vec<String>,
}

impl Chat {
    pub(super) fn kind(&self) -> &str {
        self.info["type"].as_str().unwrap_or("private")
    }

    pub(super) fn is_private(&self) -> bool {
        self.kind() == "private"
    }
}

/// A message in a chat as it is now.
#[derive(Debug, Clone)]
pub(super) struct Msg {
    /// The Telegram `Message` object (after edits).
    pub(super) json: Value,
    pub(super) by_bot: bool,
    pub(super) deleted: bool,
    pub(super) edits: u32,
    /// The request that created it (bot messages).
    pub(super) request: Value,
    /// A reply keyboard sent with it (Telegram does not echo those in the Message).
    pub(super) reply_keyboard: Option<Value>,
}

/// A file Telegram stores: uploaded by a user or the bot.
#[derive(Debug, Clone)]
pub(super) struct StoredFile {
    pub(super) file_id: String,
    pub(super) unique_id: String,
    pub(super) bytes: Vec<u8>,
    pub(super) file_name: Option<String>,
    pub(super) mime: Option<String>,
    /// The `file_path` for download.
    pub(super) path: String,
    /// For photos: the whole `PhotoSize` array this size belongs to.
    pub(super) photo_set: Option<Value>,
}

/// A callback query a test user sent.
#[derive(Debug, Clone)]
pub(super) struct CallbackRecord {
    pub(super) created_ms: i64,
    pub(super) answer: Option<CallbackAnswer>,
}

/// The webhook set with `setWebhook`.
#[derive(Debug, Clone)]
pub(super) struct Webhook {
    pub(super) url: String,
    pub(super) secret: Option<String>,
    pub(super) max_connections: i64,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// The bot's user id (its own entry in group memberships).
    pub(super) bot_id: i64,
    pub(super) next_update_id: i64,
    pub(super) queue: VecDeque<Value>,
    pub(super) allowed_updates: Vec<String>,
    pub(super) users: BTreeMap<i64, UserInfo>,
    pub(super) chats: BTreeMap<i64, Chat>,
    pub(super) files: HashMap<String, StoredFile>,
    pub(super) next_file: u64,
    pub(super) callbacks: HashMap<String, CallbackRecord>,
    pub(super) invoices: Vec<InvoiceRecord>,
    pub(super) pending_checkouts: HashMap<String, oneshot::Sender<CheckoutAnswer>>,
    pub(super) next_query: u64,
    pub(super) charges: BTreeMap<String, Charge>,
    pub(super) next_charge: u64,
    pub(super) transactions: Vec<Value>,
    pub(super) rate_limit: Option<(u32, u64)>,
    pub(super) precheckout_timeout: Duration,
    /// Added to the wall clock (tests age callback queries with it).
    pub(super) clock_offset_ms: i64,
    /// Calls per lower-cased method name.
    pub(super) calls: HashMap<String, usize>,
    pub(super) sends: Vec<SendRecord>,
    pub(super) flood: Flood,
    pub(super) webhook: Option<Webhook>,
    pub(super) webhook_error: Option<(i64, String)>,
    /// `setMyCommands` lists by (scope JSON, language code).
    pub(super) commands: BTreeMap<(String, String), Value>,
}

/// The update type: its one key besides `update_id`.
pub(super) fn update_type(update: &Value) -> &str {
    update
        .as_object()
        .and_then(|m| m.keys().find(|k| k.as_str() != "update_id"))
        .map_or("", String::as_str)
}

/// A stable `chat_instance` for callback queries from `chat_id`.
fn chat_instance(chat_id: i64) -> String {
    chat_id
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        .to_string()
}

impl Inner {
    pub(super) fn new(bot_id: i64) -> Self {
        Inner {
            bot_id,
            next_update_id: 1,
            precheckout_timeout: Duration::from_secs(10),
            ..Inner::default()
        }
    }

    /// The fake's clock in Unix milliseconds.
    pub(super) fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        wall.saturating_add(self.clock_offset_ms)
    }

    /// The fake's clock in Unix seconds (Telegram's `date`).
    pub(super) fn now(&self) -> i64 {
        self.now_ms() / 1000
    }

    pub(super) fn push_update(&mut self, mut update: Map<String, Value>) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        update.insert("update_id".into(), json!(id));
        self.queue.push_back(Value::Object(update));
        id
    }

    pub(super) fn push(&mut self, kind: &str, content: Value) -> i64 {
        let mut update = Map::new();
        update.insert(kind.into(), content);
        self.push_update(update)
    }

    pub(super) fn is_allowed(&self, kind: &str) -> bool {
        if self.allowed_updates.is_empty() {
            !OPT_IN_UPDATES.contains(&kind)
        } else {
            kind.is_empty() || self.allowed_updates.iter().any(|a| a == kind)
        }
    }

    /// Telegram never delivers (or keeps) updates the bot did not ask for.
    pub(super) fn drop_unwanted(&mut self) {
        let queue = std::mem::take(&mut self.queue);
        self.queue = queue
            .into_iter()
            .filter(|u| self.is_allowed(update_type(u)))
            .collect();
    }

    pub(super) fn user_json(&self, user_id: i64) -> Value {
        match self.users.get(&user_id) {
            Some(u) => {
                let mut v = json!({ "id": user_id, "is_bot": false, "first_name": u.first_name });
                if let Some(lang) = &u.language_code {
                    v["language_code"] = json!(lang);
                }
                v
            }
            None => json!({
                "id": user_id,
                "is_bot": false,
                "first_name": format!("User {user_id}"),
                "language_code": "en",
            }),
        }
    }

    /// The private chat with `user_id`, created (not yet existing for the bot) if new.
    pub(super) fn private_chat(&mut self, user_id: i64) -> &mut Chat {
        if !self.chats.contains_key(&user_id) {
            let first_name = self.user_json(user_id)["first_name"].clone();
            self.chats.insert(
                user_id,
                Chat::new(json!({ "id": user_id, "type": "private", "first_name": first_name })),
            );
        }
        self.chats
            .entry(user_id)
            .or_insert_with(|| Chat::new(Value::Null))
    }

    /// A chat the bot can see, or Telegram's "chat not found".
    pub(super) fn visible_chat(&self, chat_id: i64) -> Result<&Chat, ApiError> {
        self.chats
            .get(&chat_id)
            .filter(|c| c.exists)
            .ok_or_else(ApiError::chat_not_found)
    }

    /// Resolves `chat_id` given as a number or `@username`.
    pub(super) fn resolve_chat(&self, raw: &str) -> Result<i64, ApiError> {
        let raw = raw.trim();
        if let Some(name) = raw.strip_prefix('@') {
            return self
                .chats
                .iter()
                .find(|(_, c)| {
                    c.exists
                        && c.info["username"]
                            .as_str()
                            .is_some_and(|u| u.eq_ignore_ascii_case(name))
                })
                .map(|(id, _)| *id)
                .ok_or_else(ApiError::chat_not_found);
        }
        raw.parse::<i64>()
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(ApiError::chat_not_found)
    }

    /// The bot may post in `chat_id`: it exists, the user has not blocked the bot, the
    /// bot was not removed from the group.
    pub(super) fn check_writable(&self, chat_id: i64) -> Result<&Chat, ApiError> {
        let chat = self.visible_chat(chat_id)?;
        if chat.blocked {
            return Err(ApiError::forbidden("bot was blocked by the user"));
        }
        if !chat.is_private() {
            let kind = chat.kind();
            match chat.members.get(&self.bot_id).map(String::as_str) {
                Some("kicked") => {
                    return Err(ApiError::forbidden(&format!(
                        "bot was kicked from the {kind} chat"
                    )));
                }
                Some("left") => {
                    return Err(ApiError::forbidden(&format!(
                        "bot is not a member of the {kind} chat"
                    )));
                }
                _ => {}
            }
        }
        Ok(chat)
    }

    /// A message from a user in `chat_id` (their private chat or a group), queued as an
    /// update and kept in the chat. Writing makes a private chat exist and unblocks the
    /// bot. Returns the message id.
    pub(super) fn user_message(
        &mut self,
        chat_id: i64,
        user_id: i64,
        content: Map<String, Value>,
    ) -> i64 {
        let from = self.user_json(user_id);
        let date = self.now();
        if chat_id == user_id {
            self.private_chat(user_id).exists = true;
            self.set_blocked(user_id, false);
        }
        let Some(chat) = self.chats.get_mut(&chat_id) else {
            return 0;
        };
        chat.last_message_id += 1;
        let id = chat.last_message_id;
        let mut message = json!({
            "message_id": id,
            "from": from,
            "chat": chat.info,
            "date": date,
        });
        if let Some(m) = message.as_object_mut() {
            m.extend(content);
        }
        chat.messages.insert(
            id,
            Msg {
                json: message.clone(),
                by_bot: false,
                deleted: false,
                edits: 0,
                request: Value::Null,
                reply_keyboard: None,
            },
        );
        self.push("message", message);
        id
    }

    /// The user blocks (or unblocks) the bot; the bot gets a `my_chat_member` update.
    pub(super) fn set_blocked(&mut self, user_id: i64, blocked: bool) {
        let date = self.now();
        let from = self.user_json(user_id);
        let me = me_json(self.bot_id);
        let chat = self.private_chat(user_id);
        chat.exists = true;
        if chat.blocked == blocked {
            return;
        }
        chat.blocked = blocked;
        let info = chat.info.clone();
        let (old, new) = if blocked {
            ("member", "kicked")
        } else {
            ("kicked", "member")
        };
        self.push(
            "my_chat_member",
            json!({
                "chat": info,
                "from": from,
                "date": date,
                "old_chat_member": super::methods::chat_member(me.clone(), old),
                "new_chat_member": super::methods::chat_member(me, new),
            }),
        );
    }

    /// A message of the bot in `chat_id` (created by send*, copy*, forward*): the chat
    /// must be writable, the reply target must exist, flood control must let it through.
    /// Returns the Message object.
    pub(super) fn post(&mut self, post: Post) -> Result<Value, ApiError> {
        let Post {
            method,
            chat_id,
            content,
            request,
            reply_keyboard,
            reply_to,
            me,
        } = post;
        let chat = self.check_writable(chat_id)?;
        let private = chat.is_private();
        let reply = match reply_to {
            Some(r) => match chat.messages.get(&r.message_id).filter(|m| !m.deleted) {
                Some(m) => {
                    let mut target = m.json.clone();
                    if let Some(t) = target.as_object_mut() {
                        t.remove("reply_to_message");
                    }
                    Some(target)
                }
                None if r.allow_missing => None,
                None => return Err(ApiError::bad_request("message to be replied not found")),
            },
            None => None,
        };
        self.flood
            .admit(chat_id, private, Instant::now())
            .map_err(ApiError::too_many)?;
        let date = self.now();
        let at_ms = self.now_ms();
        let Some(chat) = self.chats.get_mut(&chat_id) else {
            return Err(ApiError::chat_not_found());
        };
        chat.last_message_id += 1;
        let id = chat.last_message_id;
        let mut message = json!({ "message_id": id });
        if chat.kind() == "channel" {
            message["sender_chat"] = chat.info.clone();
        } else {
            message["from"] = me;
        }
        message["chat"] = chat.info.clone();
        message["date"] = json!(date);
        if let Some(reply) = reply {
            message["reply_to_message"] = reply;
        }
        if let Some(m) = message.as_object_mut() {
            m.extend(content);
        }
        chat.messages.insert(
            id,
            Msg {
                json: message.clone(),
                by_bot: true,
                deleted: false,
                edits: 0,
                request,
                reply_keyboard,
            },
        );
        self.sends.push(SendRecord {
            chat_id,
            message_id: id,
            method: method.to_owned(),
            at: Instant::now(),
            at_ms,
        });
        Ok(message)
    }

    /// A queued callback query: user `user_id` pressed a button on message `message_id`.
    pub(super) fn press(
        &mut self,
        chat_id: i64,
        user_id: i64,
        message_id: i64,
        data: &str,
    ) -> anyhow::Result<String> {
        let from = self.user_json(user_id);
        let message = {
            let chat = self
                .chats
                .get(&chat_id)
                .ok_or_else(|| anyhow::anyhow!("no chat {chat_id}"))?;
            let msg = chat
                .messages
                .get(&message_id)
                .filter(|m| !m.deleted)
                .ok_or_else(|| anyhow::anyhow!("no message {message_id} in chat {chat_id}"))?;
            let datas: Vec<String> = buttons(&msg.json)
                .into_iter()
                .flatten()
                .filter_map(|b| b.callback_data)
                .collect();
            anyhow::ensure!(
                datas.iter().any(|d| d == data),
                "message {message_id} in chat {chat_id} has no button with callback_data `{data}` (it has {datas:?})"
            );
            msg.json.clone()
        };
        self.next_query += 1;
        let id = format!("{}{:08}", self.bot_id, self.next_query);
        self.callbacks.insert(
            id.clone(),
            CallbackRecord {
                created_ms: self.now_ms(),
                answer: None,
            },
        );
        self.push(
            "callback_query",
            json!({
                "id": id,
                "from": from,
                "message": message,
                "chat_instance": chat_instance(chat_id),
                "data": data,
            }),
        );
        Ok(id)
    }

    /// The bot's messages in `chat_id` as tests see them.
    pub(super) fn sent_messages(&self, chat_id: i64) -> Vec<SentMessage> {
        self.chats
            .get(&chat_id)
            .map(|c| {
                c.messages
                    .values()
                    .filter(|m| m.by_bot)
                    .map(|m| self.sent_message(chat_id, m))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn file_ref(&self, file: &Value) -> Option<FileRef> {
        let id = file["file_id"].as_str()?;
        let stored = self.files.get(id);
        Some(FileRef {
            file_id: id.to_owned(),
            file_unique_id: file["file_unique_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            bytes: stored.map(|f| f.bytes.clone()).unwrap_or_default(),
            file_name: stored.and_then(|f| f.file_name.clone()),
        })
    }

    fn sent_message(&self, chat_id: i64, m: &Msg) -> SentMessage {
        let j = &m.json;
        let text = j["text"]
            .as_str()
            .or_else(|| j["caption"].as_str())
            .map(str::to_owned);
        let entities = j
            .get("entities")
            .or_else(|| j.get("caption_entities"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        SentMessage {
            message_id: j["message_id"].as_i64().unwrap_or(0),
            date: j["date"].as_i64().unwrap_or(0),
            text,
            invoice: j.get("invoice").cloned(),
            request: m.request.clone(),
            chat_id,
            parse_mode: m.request["parse_mode"].as_str().map(str::to_owned),
            entities,
            buttons: buttons(j),
            reply_keyboard: m.reply_keyboard.clone(),
            photo: j["photo"]
                .as_array()
                .and_then(|sizes| sizes.last())
                .and_then(|p| self.file_ref(p)),
            document: j.get("document").and_then(|d| self.file_ref(d)),
            edits: m.edits,
            deleted: m.deleted,
            reply_to: j["reply_to_message"]["message_id"].as_i64(),
            json: j.clone(),
        }
    }

    /// Every file id, unique id and path are new and deterministic.
    pub(super) fn next_file_ids(
        &mut self,
        prefix: &str,
        dir: &str,
        ext: &str,
    ) -> (String, String, String) {
        self.next_file += 1;
        let n = self.next_file;
        (
            format!("{prefix}AACfake{n:08}"),
            format!("AQAD{n:08}"),
            format!("{dir}/file_{n}.{ext}"),
        )
    }
}

impl Chat {
    pub(super) fn new(info: Value) -> Self {
        Chat {
            info,
            exists: false,
            blocked: false,
            last_message_id: 0,
            messages: BTreeMap::new(),
            members: BTreeMap::new(),
            actions: Vec::new(),
        }
    }
}

/// What a reply points at.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReplyTo {
    pub(super) message_id: i64,
    pub(super) allow_missing: bool,
}

/// A message the bot posts.
#[derive(Debug)]
pub(super) struct Post<'a> {
    pub(super) method: &'a str,
    pub(super) chat_id: i64,
    pub(super) content: Map<String, Value>,
    pub(super) request: Value,
    pub(super) reply_keyboard: Option<Value>,
    pub(super) reply_to: Option<ReplyTo>,
    /// The bot user (the message's `from`).
    pub(super) me: Value,
}

/// The inline keyboard of a Message object.
pub(super) fn buttons(message: &Value) -> Vec<Vec<Button>> {
    message["reply_markup"]["inline_keyboard"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|bs| {
                            bs.iter()
                                .map(|b| Button {
                                    text: b["text"].as_str().unwrap_or_default().to_owned(),
                                    callback_data: b["callback_data"].as_str().map(str::to_owned),
                                    url: b["url"].as_str().map(str::to_owned),
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default()
}
