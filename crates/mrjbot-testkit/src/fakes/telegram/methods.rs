//! The bot-side methods: messages (send, edit, delete, copy, forward), media, callback
//! answers, chat actions, commands, chats and members, and the method table. Each takes
//! the request's parameters and answers with a `result` or a Telegram-worded error.

use super::files::{self, Kind};
use super::markup::{self, Formatted, Markup};
use super::state::{
    ApiError, CALLBACK_TTL_MS, Inner, MAX_CAPTION, MAX_TEXT, Msg, Post, ReplyTo, Shared,
};
use super::{CallbackAnswer, payments, webhook};
use crate::fakes::params::Params;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Chat actions `sendChatAction` takes.
const ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// Message fields a copy or a forward carries over.
const CONTENT_FIELDS: &[&str] = &[
    "text",
    "entities",
    "photo",
    "document",
    "caption",
    "caption_entities",
    "contact",
    "location",
    "sticker",
    "video",
    "audio",
    "voice",
    "animation",
];

/// The chat named by parameter `key` (a number or `@username`).
fn chat_param(st: &Inner, p: &Params, key: &str) -> Result<i64, ApiError> {
    match p.str(key)? {
        None => Err(ApiError::bad_request(&format!("{key} is empty"))),
        Some(raw) => st.resolve_chat(&raw),
    }
}

/// The `chat_id` parameter.
pub(super) fn chat_id(st: &Inner, p: &Params) -> Result<i64, ApiError> {
    chat_param(st, p, "chat_id")
}

fn message_id(p: &Params) -> Result<i64, ApiError> {
    p.i64("message_id")?
        .ok_or_else(|| ApiError::required("message_id"))
}

/// The validated `reply_markup`, if any.
pub(super) fn reply_markup(p: &Params) -> Result<Option<Markup>, ApiError> {
    match p.json("reply_markup") {
        Ok(None) => Ok(None),
        Ok(Some(v)) => markup::parse_markup(&v).map(Some),
        Err(_) => Err(ApiError::bad_request(
            "can't parse reply keyboard markup JSON object",
        )),
    }
}

/// `reply_parameters` (or the older `reply_to_message_id`).
pub(super) fn reply_to(p: &Params) -> Result<Option<ReplyTo>, ApiError> {
    let allow = p.bool("allow_sending_without_reply")?.unwrap_or(false);
    if let Some(params) = p.json("reply_parameters")? {
        let Some(message_id) = params["message_id"].as_i64() else {
            return Err(ApiError::bad_request(
                "can't parse reply parameters JSON object",
            ));
        };
        return Ok(Some(ReplyTo {
            message_id,
            allow_missing: params["allow_sending_without_reply"]
                .as_bool()
                .unwrap_or(allow),
        }));
    }
    Ok(p.i64("reply_to_message_id")?.map(|message_id| ReplyTo {
        message_id,
        allow_missing: allow,
    }))
}

/// The formatted `text` of a text message.
fn message_text(p: &Params) -> Result<Formatted, ApiError> {
    let raw = p.str("text")?.unwrap_or_default();
    let f = markup::format(&raw, p.str("parse_mode")?.as_deref(), p.json("entities")?)?;
    if f.text.is_empty() {
        return Err(ApiError::bad_request("message text is empty"));
    }
    if f.text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request("message is too long"));
    }
    Ok(f)
}

/// The formatted `caption`, if given.
fn caption(p: &Params) -> Result<Option<Formatted>, ApiError> {
    let Some(raw) = p.str("caption")? else {
        return Ok(None);
    };
    let f = markup::format(
        &raw,
        p.str("parse_mode")?.as_deref(),
        p.json("caption_entities")?,
    )?;
    if f.text.chars().count() > MAX_CAPTION {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    Ok(Some(f))
}

/// Puts text and entities into a Message under `text_key`/`entities_key`.
fn put_text(m: &mut Map<String, Value>, f: Option<Formatted>, text_key: &str, entities_key: &str) {
    m.remove(text_key);
    m.remove(entities_key);
    if let Some(f) = f.filter(|f| !f.text.is_empty()) {
        m.insert(text_key.into(), json!(f.text));
        if !f.entities.is_empty() {
            m.insert(entities_key.into(), Value::Array(f.entities));
        }
    }
}

fn put_markup(m: &mut Map<String, Value>, markup: Option<&Markup>) {
    match markup.and_then(Markup::echoed) {
        Some(v) => {
            m.insert("reply_markup".into(), v);
        }
        None => {
            m.remove("reply_markup");
        }
    }
}

fn reply_keyboard(markup: Option<&Markup>) -> Option<Value> {
    match markup {
        Some(Markup::Reply(v) | Markup::Other(v)) => Some(v.clone()),
        _ => None,
    }
}

fn send_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let text = message_text(p)?;
    let markup = reply_markup(p)?;
    let reply_to = reply_to(p)?;
    let mut st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    let mut content = Map::new();
    put_text(&mut content, Some(text), "text", "entities");
    put_markup(&mut content, markup.as_ref());
    let message = st.post(Post {
        method: "sendMessage",
        chat_id,
        content,
        request: p.to_value(),
        reply_keyboard: reply_keyboard(markup.as_ref()),
        reply_to,
        me: shared.me(),
    })?;
    drop(st);
    shared.bot_did_something();
    Ok(message)
}

async fn send_media(shared: &Shared, p: &Params, kind: Kind) -> Result<Value, ApiError> {
    let input = files::input(p, kind.field())?;
    let caption = caption(p)?;
    let markup = reply_markup(p)?;
    let reply_to = reply_to(p)?;
    {
        // Refuse before fetching a URL for a chat the bot cannot write to.
        let st = shared.lock();
        st.check_writable(chat_id(&st, p)?)?;
    }
    let input = files::fetch(shared, input).await?;
    let mut st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    st.check_writable(chat_id)?;
    let media = st.media(kind, input)?;
    let mut content = Map::new();
    content.insert(kind.field().into(), media);
    put_text(&mut content, caption, "caption", "caption_entities");
    put_markup(&mut content, markup.as_ref());
    let method = match kind {
        Kind::Photo => "sendPhoto",
        Kind::Document => "sendDocument",
    };
    let message = st.post(Post {
        method,
        chat_id,
        content,
        request: p.to_value(),
        reply_keyboard: reply_keyboard(markup.as_ref()),
        reply_to,
        me: shared.me(),
    })?;
    drop(st);
    shared.bot_did_something();
    Ok(message)
}

/// The bot's live message `message_id` in `chat_id`, for an edit.
fn editable<'a>(st: &'a mut Inner, p: &Params) -> Result<&'a mut Msg, ApiError> {
    if p.get("inline_message_id").is_some() {
        // Inline mode is not modelled: there are no inline messages to edit.
        return Err(ApiError::bad_request("message to edit not found"));
    }
    let chat_id = chat_id(st, p)?;
    let message_id = message_id(p)?;
    st.check_writable(chat_id)?;
    let msg = st
        .chats
        .get_mut(&chat_id)
        .and_then(|c| c.messages.get_mut(&message_id))
        .filter(|m| !m.deleted)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    if !msg.by_bot {
        return Err(ApiError::bad_request("message can't be edited"));
    }
    Ok(msg)
}

/// The inline keyboard an edit sets (edits take no other kind).
fn edit_markup(p: &Params) -> Result<Option<Markup>, ApiError> {
    let markup = reply_markup(p)?;
    if markup
        .as_ref()
        .is_some_and(|m| !matches!(m, Markup::Inline(_)))
    {
        return Err(ApiError::bad_request("inline keyboard expected"));
    }
    Ok(markup)
}

/// Which part of a message an edit replaces.
enum Edit {
    Text(Formatted),
    Caption(Option<Formatted>),
    Markup,
}

fn edit(shared: &Shared, p: &Params, what: Edit) -> Result<Value, ApiError> {
    let markup = edit_markup(p)?;
    let mut st = shared.lock();
    let now = st.now();
    let msg = editable(&mut st, p)?;
    let Some(current) = msg.json.as_object() else {
        return Err(ApiError::bad_request("message to edit not found"));
    };
    let mut next = current.clone();
    match what {
        Edit::Text(text) => {
            if !current.contains_key("text") {
                return Err(ApiError::bad_request(
                    "there is no text in the message to edit",
                ));
            }
            put_text(&mut next, Some(text), "text", "entities");
        }
        Edit::Caption(caption) => {
            if !["photo", "document", "video", "audio", "animation"]
                .iter()
                .any(|k| current.contains_key(*k))
            {
                return Err(ApiError::bad_request(
                    "there is no caption in the message to edit",
                ));
            }
            put_text(&mut next, caption, "caption", "caption_entities");
        }
        Edit::Markup => {}
    }
    put_markup(&mut next, markup.as_ref());
    next.remove("edit_date");
    let mut unchanged = current.clone();
    unchanged.remove("edit_date");
    if next == unchanged {
        return Err(ApiError::bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    next.insert("edit_date".into(), json!(now));
    msg.json = Value::Object(next);
    msg.edits += 1;
    let result = msg.json.clone();
    drop(st);
    shared.bot_did_something();
    Ok(result)
}

fn delete_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let mut st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    let message_id = message_id(p)?;
    let bot_id = st.bot_id;
    let chat = st.visible_chat(chat_id)?;
    let admin = chat.is_private()
        || matches!(
            chat.members.get(&bot_id).map(String::as_str),
            None | Some("administrator" | "creator")
        );
    let not_found = || ApiError::bad_request("message to delete not found");
    let msg = st
        .chats
        .get_mut(&chat_id)
        .and_then(|c| c.messages.get_mut(&message_id))
        .filter(|m| !m.deleted)
        .ok_or_else(not_found)?;
    if !msg.by_bot && !admin {
        return Err(ApiError::bad_request("message can't be deleted"));
    }
    msg.deleted = true;
    drop(st);
    shared.bot_did_something();
    Ok(json!(true))
}

fn answer_callback_query(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let id = p
        .str("callback_query_id")?
        .ok_or_else(|| ApiError::required("callback_query_id"))?;
    let text = p.str("text")?;
    if text.as_ref().is_some_and(|t| t.chars().count() > 200) {
        return Err(ApiError::bad_request("MESSAGE_TOO_LONG"));
    }
    let answer = CallbackAnswer {
        text,
        show_alert: p.bool("show_alert")?.unwrap_or(false),
        url: p.str("url")?,
    };
    let mut st = shared.lock();
    let now = st.now_ms();
    let record = st
        .callbacks
        .get_mut(&id)
        .filter(|r| r.answer.is_none() && now - r.created_ms <= CALLBACK_TTL_MS)
        .ok_or_else(ApiError::query_too_old)?;
    record.answer = Some(answer);
    drop(st);
    shared.bot_did_something();
    Ok(json!(true))
}

fn send_chat_action(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let action = p
        .str("action")?
        .ok_or_else(|| ApiError::required("action"))?;
    let mut st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    st.check_writable(chat_id)?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad_request("wrong parameter action in request"));
    }
    if let Some(chat) = st.chats.get_mut(&chat_id) {
        chat.actions.push(action);
    }
    Ok(json!(true))
}

/// The key `setMyCommands` and friends store a list under.
fn commands_key(p: &Params) -> Result<(String, String), ApiError> {
    let scope = p
        .json("scope")
        .map_err(|_| ApiError::bad_request("can't parse BotCommandScope JSON object"))?
        .unwrap_or_else(|| json!({"type": "default"}));
    if scope["type"].as_str().is_none() {
        return Err(ApiError::bad_request(
            "can't parse BotCommandScope JSON object",
        ));
    }
    let lang = p.str("language_code")?.unwrap_or_default();
    Ok((scope.to_string(), lang))
}

fn set_my_commands(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let commands = p
        .json("commands")
        .map_err(|_| ApiError::bad_request("can't parse commands JSON object"))?
        .ok_or_else(|| ApiError::required("commands"))?;
    let Some(list) = commands.as_array() else {
        return Err(ApiError::bad_request("can't parse commands JSON object"));
    };
    if list.len() > 100 {
        return Err(ApiError::bad_request("too many commands"));
    }
    let mut clean = Vec::new();
    for c in list {
        let command = c["command"].as_str().unwrap_or_default();
        let description = c["description"].as_str().unwrap_or_default();
        let command_ok = (1..=32).contains(&command.len())
            && command
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
        if !command_ok {
            return Err(ApiError::bad_request("BOT_COMMAND_INVALID"));
        }
        if !(1..=256).contains(&description.chars().count()) {
            return Err(ApiError::bad_request("BOT_COMMAND_DESCRIPTION_INVALID"));
        }
        clean.push(json!({ "command": command, "description": description }));
    }
    let key = commands_key(p)?;
    shared.lock().commands.insert(key, Value::Array(clean));
    Ok(json!(true))
}

fn get_my_commands(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let key = commands_key(p)?;
    Ok(shared
        .lock()
        .commands
        .get(&key)
        .cloned()
        .unwrap_or_else(|| json!([])))
}

fn delete_my_commands(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let key = commands_key(p)?;
    shared.lock().commands.remove(&key);
    Ok(json!(true))
}

fn get_chat(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let st = shared.lock();
    let chat = st.visible_chat(chat_id(&st, p)?)?;
    let mut info = chat.info.clone();
    info["accent_color_id"] = json!(0);
    info["max_reaction_count"] = json!(11);
    info["accepted_gift_types"] = json!({
        "unlimited_gifts": true,
        "limited_gifts": true,
        "unique_gifts": true,
        "premium_subscription": true,
    });
    Ok(info)
}

/// A `ChatMember` object with `status`.
pub(super) fn chat_member(user: Value, status: &str) -> Value {
    let mut m = json!({ "status": status, "user": user });
    match status {
        "creator" => m["is_anonymous"] = json!(false),
        "administrator" => {
            for (k, v) in [
                ("can_be_edited", false),
                ("is_anonymous", false),
                ("can_manage_chat", true),
                ("can_delete_messages", true),
                ("can_manage_video_chats", true),
                ("can_restrict_members", true),
                ("can_promote_members", false),
                ("can_change_info", true),
                ("can_invite_users", true),
                ("can_post_stories", false),
                ("can_edit_stories", false),
                ("can_delete_stories", false),
                ("can_pin_messages", true),
            ] {
                m[k] = json!(v);
            }
        }
        "restricted" => {
            m["is_member"] = json!(true);
            m["until_date"] = json!(0);
            for k in [
                "can_send_messages",
                "can_send_audios",
                "can_send_documents",
                "can_send_photos",
                "can_send_videos",
                "can_send_video_notes",
                "can_send_voice_notes",
                "can_send_polls",
                "can_send_other_messages",
                "can_add_web_page_previews",
                "can_change_info",
                "can_invite_users",
                "can_pin_messages",
                "can_manage_topics",
            ] {
                m[k] = json!(false);
            }
        }
        "kicked" => m["until_date"] = json!(0),
        _ => {}
    }
    m
}

fn get_chat_member(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let user_id = p
        .i64("user_id")?
        .ok_or_else(|| ApiError::required("user_id"))?;
    let st = shared.lock();
    let chat_id = chat_id(&st, p)?;
    let chat = st.visible_chat(chat_id)?;
    let user_not_found = || ApiError::bad_request("user not found");
    let user = if user_id == st.bot_id {
        shared.me()
    } else if st.users.contains_key(&user_id) || st.chats.contains_key(&user_id) {
        st.user_json(user_id)
    } else {
        return Err(user_not_found());
    };
    let status = if chat.is_private() {
        if user_id != chat_id && user_id != st.bot_id {
            return Err(user_not_found());
        }
        "member".to_owned()
    } else {
        chat.members.get(&user_id).cloned().unwrap_or_else(|| {
            if user_id == st.bot_id {
                "administrator".into()
            } else {
                "left".into()
            }
        })
    };
    Ok(chat_member(user, &status))
}

/// The source message of a copy or forward, and its content.
fn source(st: &Inner, p: &Params, verb: &str) -> Result<(Value, Map<String, Value>), ApiError> {
    let from_chat = chat_param(st, p, "from_chat_id")?;
    let chat = st.visible_chat(from_chat)?;
    let message_id = message_id(p)?;
    let msg = chat
        .messages
        .get(&message_id)
        .filter(|m| !m.deleted)
        .ok_or_else(|| ApiError::bad_request(&format!("message to {verb} not found")))?;
    let content: Map<String, Value> = CONTENT_FIELDS
        .iter()
        .filter_map(|k| msg.json.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    if content.is_empty() {
        let past = if verb == "copy" {
            "copied"
        } else {
            "forwarded"
        };
        return Err(ApiError::bad_request(&format!("message can't be {past}")));
    }
    Ok((msg.json.clone(), content))
}

fn copy_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let caption = caption(p)?;
    let markup = reply_markup(p)?;
    let reply_to = reply_to(p)?;
    let mut st = shared.lock();
    let (_, mut content) = source(&st, p, "copy")?;
    let chat_id = chat_id(&st, p)?;
    let has_media = content.keys().any(|k| k != "text" && k != "entities");
    if has_media && (caption.is_some() || p.bool("remove_caption")? == Some(true)) {
        put_text(&mut content, caption, "caption", "caption_entities");
    }
    put_markup(&mut content, markup.as_ref());
    let message = st.post(Post {
        method: "copyMessage",
        chat_id,
        content,
        request: p.to_value(),
        reply_keyboard: reply_keyboard(markup.as_ref()),
        reply_to,
        me: shared.me(),
    })?;
    drop(st);
    shared.bot_did_something();
    Ok(json!({ "message_id": message["message_id"] }))
}

fn forward_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let mut st = shared.lock();
    let (original, mut content) = source(&st, p, "forward")?;
    let chat_id = chat_id(&st, p)?;
    let origin = match original.get("sender_chat") {
        Some(channel) if channel["type"] == "channel" => json!({
            "type": "channel",
            "chat": channel,
            "message_id": original["message_id"],
            "date": original["date"],
        }),
        _ => json!({
            "type": "user",
            "sender_user": original["from"],
            "date": original["date"],
        }),
    };
    content.insert(
        "forward_origin".into(),
        original.get("forward_origin").cloned().unwrap_or(origin),
    );
    let message = st.post(Post {
        method: "forwardMessage",
        chat_id,
        content,
        request: p.to_value(),
        reply_keyboard: None,
        reply_to: None,
        me: shared.me(),
    })?;
    drop(st);
    shared.bot_did_something();
    Ok(message)
}

/// The method table. A new Bot API method is one more arm here.
pub(super) async fn dispatch(
    shared: &Arc<Shared>,
    method: &str,
    p: &Params,
) -> Result<Value, ApiError> {
    match method {
        "getme" => Ok(shared.me()),
        "getupdates" => webhook::get_updates(shared, p).await,
        "setwebhook" => webhook::set_webhook(shared, p),
        "deletewebhook" => webhook::delete_webhook(shared, p),
        "getwebhookinfo" => webhook::get_webhook_info(shared),
        "sendmessage" => send_message(shared, p),
        "sendphoto" => send_media(shared, p, Kind::Photo).await,
        "senddocument" => send_media(shared, p, Kind::Document).await,
        "editmessagetext" => edit(shared, p, Edit::Text(message_text(p)?)),
        "editmessagecaption" => edit(shared, p, Edit::Caption(caption(p)?)),
        "editmessagereplymarkup" => edit(shared, p, Edit::Markup),
        "deletemessage" => delete_message(shared, p),
        "answercallbackquery" => answer_callback_query(shared, p),
        "sendchataction" => send_chat_action(shared, p),
        "setmycommands" => set_my_commands(shared, p),
        "getmycommands" => get_my_commands(shared, p),
        "deletemycommands" => delete_my_commands(shared, p),
        "getchat" => get_chat(shared, p),
        "getchatmember" => get_chat_member(shared, p),
        "copymessage" => copy_message(shared, p),
        "forwardmessage" => forward_message(shared, p),
        "getfile" => files::get_file(shared, p),
        "sendinvoice" => payments::send_invoice(shared, p),
        "createinvoicelink" => payments::create_invoice_link(shared, p),
        "answerprecheckoutquery" => payments::answer_pre_checkout_query(shared, p),
        "refundstarpayment" => payments::refund_star_payment(shared, p),
        "getstartransactions" => payments::get_star_transactions(shared, p),
        _ => Err(ApiError::not_found()),
    }
}
