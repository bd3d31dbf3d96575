//! The test side: typed handles that play Telegram users talking to the bot. A
//! [`TgUser`] writes, replies, sends photos and documents, presses buttons and pays; every
//! action is queued as an update exactly as Telegram would deliver it (full `Message`,
//! `callback_query` with the message and `chat_instance`). Reading helpers show the chat
//! as the user sees it now (after edits and deletes), and `wait_*` helpers wait for the
//! bot without sleeping blindly.

use super::markup::command_entities;
use super::state::{Inner, Shared, buttons};
use super::{CallbackAnswer, PayOutcome, SentMessage, payments};
use anyhow::{Context, bail, ensure};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A Telegram user, acting in their private chat with the bot or (see
/// [`TgUser::in_group`]) in a group.
#[derive(Debug, Clone)]
pub struct TgUser {
    shared: Arc<Shared>,
    id: i64,
    chat_id: i64,
}

/// A group chat the bot is in (an administrator, unless a test says otherwise).
#[derive(Debug, Clone)]
pub struct TgGroup {
    shared: Arc<Shared>,
    id: i64,
}

impl TgGroup {
    pub(super) fn new(shared: Arc<Shared>, id: i64) -> Self {
        Self { shared, id }
    }

    /// The chat id (negative).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// What the bot has posted in the group, oldest first.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent_messages(self.id)
    }
}

/// One line per bot message, for error messages.
fn describe(messages: &[SentMessage]) -> String {
    if messages.is_empty() {
        return "no bot messages".into();
    }
    messages
        .iter()
        .map(|m| {
            let buttons: Vec<&str> = m
                .buttons
                .iter()
                .flatten()
                .map(|b| b.text.as_str())
                .collect();
            let mut line = format!("#{} {:?}", m.message_id, m.text.as_deref().unwrap_or(""));
            if !buttons.is_empty() {
                line.push_str(&format!(" buttons {buttons:?}"));
            }
            if m.edits > 0 {
                line.push_str(&format!(" (edited {}x)", m.edits));
            }
            if m.deleted {
                line.push_str(" (deleted)");
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

impl TgUser {
    pub(super) fn new(shared: Arc<Shared>, id: i64) -> Self {
        Self {
            shared,
            id,
            chat_id: id,
        }
    }

    /// The user's id (also their private chat's id).
    pub fn id(&self) -> i64 {
        self.id
    }

    /// The chat this handle acts in: the private chat or a group.
    pub fn chat_id(&self) -> i64 {
        self.chat_id
    }

    /// The same user acting in `group` (joining it if they were not in it).
    pub fn in_group(&self, group: &TgGroup) -> TgUser {
        let mut st = self.shared.lock();
        if let Some(chat) = st.chats.get_mut(&group.id) {
            chat.members
                .entry(self.id)
                .or_insert_with(|| "member".into());
        }
        TgUser {
            shared: self.shared.clone(),
            id: self.id,
            chat_id: group.id,
        }
    }

    /// Queues a message from this user with `content`; returns its id.
    fn post(&self, content: Map<String, Value>) -> anyhow::Result<i64> {
        let id = {
            let mut st = self.shared.lock();
            if self.chat_id != self.id {
                let chat = st
                    .chats
                    .get(&self.chat_id)
                    .with_context(|| format!("no group {}", self.chat_id))?;
                let status = chat.members.get(&self.id).map_or("left", String::as_str);
                ensure!(
                    matches!(
                        status,
                        "member" | "administrator" | "creator" | "restricted"
                    ),
                    "user {} cannot write in group {} (status {status})",
                    self.id,
                    self.chat_id
                );
            }
            st.user_message(self.chat_id, self.id, content)
        };
        self.shared.notify();
        Ok(id)
    }

    fn text_content(text: &str) -> anyhow::Result<Map<String, Value>> {
        ensure!(
            !text.trim().is_empty(),
            "Telegram does not send empty messages"
        );
        let mut content = Map::new();
        content.insert("text".into(), json!(text));
        let entities = command_entities(text);
        if !entities.is_empty() {
            content.insert("entities".into(), Value::Array(entities));
        }
        Ok(content)
    }

    /// Sends `text` (`/commands` get `bot_command` entities). Returns the message id.
    pub async fn send(&self, text: &str) -> anyhow::Result<i64> {
        self.post(Self::text_content(text)?)
    }

    /// Replies to message `to_message_id` of this chat with `text`.
    pub async fn reply(&self, to_message_id: i64, text: &str) -> anyhow::Result<i64> {
        let mut content = Self::text_content(text)?;
        let target = {
            let st = self.shared.lock();
            let mut target = st
                .chats
                .get(&self.chat_id)
                .and_then(|c| c.messages.get(&to_message_id))
                .filter(|m| !m.deleted)
                .map(|m| m.json.clone())
                .with_context(|| format!("no message {to_message_id} in chat {}", self.chat_id))?;
            if let Some(t) = target.as_object_mut() {
                t.remove("reply_to_message");
            }
            target
        };
        content.insert("reply_to_message".into(), target);
        self.post(content)
    }

    /// Sends a photo (the bytes must be an image: PNG, JPEG or WebP); Telegram keeps it
    /// as two sizes. Returns the message id.
    pub async fn send_photo(&self, bytes: Vec<u8>, caption: Option<&str>) -> anyhow::Result<i64> {
        let sizes = self
            .shared
            .lock()
            .store_photo(bytes)
            .map_err(|e| anyhow::anyhow!("not an image Telegram would take: {e}"))?;
        let mut content = Map::new();
        content.insert("photo".into(), sizes);
        if let Some(c) = caption.filter(|c| !c.is_empty()) {
            content.insert("caption".into(), json!(c));
        }
        self.post(content)
    }

    /// Sends a file as a document. Returns the message id.
    pub async fn send_document(
        &self,
        bytes: Vec<u8>,
        file_name: &str,
        mime: &str,
    ) -> anyhow::Result<i64> {
        let doc = self.shared.lock().store_document(
            bytes,
            Some(file_name.to_owned()),
            Some(mime.to_owned()),
        );
        let mut content = Map::new();
        content.insert("document".into(), doc);
        self.post(content)
    }

    /// Shares the user's own phone number (what a `request_contact` button sends).
    pub async fn send_contact(&self, phone: &str) -> anyhow::Result<i64> {
        let first_name = self.shared.lock().user_json(self.id)["first_name"].clone();
        let mut content = Map::new();
        content.insert(
            "contact".into(),
            json!({ "phone_number": phone, "first_name": first_name, "user_id": self.id }),
        );
        self.post(content)
    }

    /// Presses the inline button with `callback_data` on message `message_id` (it must be
    /// on the message now). Queues a `callback_query`; returns its id.
    pub async fn press(&self, message_id: i64, callback_data: &str) -> anyhow::Result<String> {
        let id = self
            .shared
            .lock()
            .press(self.chat_id, self.id, message_id, callback_data)?;
        self.shared.notify();
        Ok(id)
    }

    /// Presses the first button whose text contains `button_text_contains` on the newest
    /// bot message in this chat that has one. Returns the callback query id.
    pub async fn click(&self, button_text_contains: &str) -> anyhow::Result<String> {
        let (message_id, data) = {
            let st = self.shared.lock();
            let found = st.chats.get(&self.chat_id).and_then(|chat| {
                chat.messages
                    .values()
                    .rev()
                    .filter(|m| m.by_bot && !m.deleted)
                    .find_map(|m| {
                        buttons(&m.json)
                            .into_iter()
                            .flatten()
                            .find(|b| b.text.contains(button_text_contains))
                            .map(|b| (m.json["message_id"].as_i64().unwrap_or(0), b))
                    })
            });
            let Some((message_id, button)) = found else {
                bail!(
                    "no button containing {button_text_contains:?} in chat {}:\n  {}",
                    self.chat_id,
                    describe(&st.sent_messages(self.chat_id))
                );
            };
            let Some(data) = button.callback_data else {
                bail!(
                    "button {:?} is not a callback button ({:?})",
                    button.text,
                    button.url
                );
            };
            (message_id, data)
        };
        self.press(message_id, &data).await
    }

    /// What the bot answered to callback query `query_id`, if it has.
    pub fn answer(&self, query_id: &str) -> Option<CallbackAnswer> {
        self.shared
            .lock()
            .callbacks
            .get(query_id)
            .and_then(|c| c.answer.clone())
    }

    /// The bot's messages in this chat as they are now, oldest first (deleted ones
    /// flagged).
    pub fn messages(&self) -> Vec<SentMessage> {
        self.shared.lock().sent_messages(self.chat_id)
    }

    /// The newest bot message in this chat that is not deleted.
    pub fn last(&self) -> Option<SentMessage> {
        self.messages().into_iter().rev().find(|m| !m.deleted)
    }

    /// Waits until a bot message in this chat (not deleted; already there, new or edited)
    /// matches `pred`, newest first. The error lists what the chat holds.
    pub async fn wait_for(
        &self,
        pred: impl Fn(&SentMessage) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<SentMessage> {
        let chat_id = self.chat_id;
        let found = self
            .shared
            .wait_bot(timeout, |st: &Inner| {
                st.sent_messages(chat_id)
                    .into_iter()
                    .rev()
                    .find(|m| !m.deleted && pred(m))
            })
            .await;
        found.with_context(|| {
            format!(
                "no matching bot message in chat {chat_id} after {timeout:?}; the chat holds:\n  {}",
                describe(&self.messages())
            )
        })
    }

    /// Waits until the bot answers callback query `query_id`.
    pub async fn wait_answer(
        &self,
        query_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<CallbackAnswer> {
        self.shared
            .wait_bot(timeout, |st: &Inner| {
                st.callbacks.get(query_id).and_then(|c| c.answer.clone())
            })
            .await
            .with_context(|| {
                format!("the bot did not answer callback query {query_id} within {timeout:?}")
            })
    }

    /// Pays the invoice sent with `payload_or_link` (see `FakeTelegram::pay_invoice`).
    pub async fn pay(&self, payload_or_link: &str) -> anyhow::Result<PayOutcome> {
        payments::pay_invoice(&self.shared, self.id, payload_or_link).await
    }

    /// The user blocks the bot.
    pub fn block(&self) {
        self.shared.lock().set_blocked(self.id, true);
        self.shared.notify();
    }
}
