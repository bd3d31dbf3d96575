//! Text formatting and keyboards the way the Bot API checks them: `parse_mode=HTML` is
//! parsed into plain text plus entities (offsets in UTF-16 code units, as Telegram
//! counts), with Telegram's "can't parse entities" errors for unknown, unclosed or
//! mismatched tags; user text gets `bot_command` entities; `reply_markup` is validated
//! (inline buttons need exactly one action, `callback_data` is 1..=64 bytes).
//!
//! Markdown and MarkdownV2 are accepted but not parsed: the text is kept as sent, without
//! entities. Bots here format with HTML.

use super::state::ApiError;
use serde_json::{Value, json};

/// Text after formatting: what the user sees, and its entities.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Formatted {
    pub(super) text: String,
    pub(super) entities: Vec<Value>,
}

/// Inline button fields of which exactly one must be set.
const BUTTON_ACTIONS: &[&str] = &[
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
];

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// An entity under construction: the open tag and where its text starts.
struct Open {
    tag: String,
    kind: Option<Value>,
    start: usize,
}

/// Parses Telegram's HTML subset. Errors are the text after "can't parse entities: ".
pub(super) fn parse_html(src: &str) -> Result<Formatted, String> {
    let mut text = String::new();
    let mut len16 = 0usize;
    let mut stack: Vec<Open> = Vec::new();
    let mut entities = Vec::new();
    let mut i = 0usize;
    while i < src.len() {
        let rest = &src[i..];
        let Some(ch) = rest.chars().next() else { break };
        if ch == '<' {
            let Some(close) = rest.find('>') else {
                return Err(format!("Unsupported start tag \"\" at byte offset {i}"));
            };
            let inner = &rest[1..close];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_ascii_lowercase();
                let Some(top) = stack.pop() else {
                    return Err(format!("Unexpected end tag at byte offset {i}"));
                };
                if top.tag != name {
                    return Err(format!(
                        "Unmatched end tag at byte offset {i}, expected \"</{}>\", found \"</{name}>\"",
                        top.tag
                    ));
                }
                close_entity(top, len16, &mut entities, &mut stack);
            } else {
                let (name, attrs) = split_tag(inner);
                let kind = entity_for(&name, &attrs, i)?;
                stack.push(Open {
                    tag: name,
                    kind,
                    start: len16,
                });
            }
            i += close + 1;
        } else if ch == '&' {
            let (decoded, used) = decode_entity(rest);
            text.push(decoded);
            len16 += decoded.len_utf16();
            i += used;
        } else {
            text.push(ch);
            len16 += ch.len_utf16();
            i += ch.len_utf8();
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.tag
        ));
    }
    entities.sort_by_key(|e| {
        (
            e["offset"].as_u64().unwrap_or(0),
            std::cmp::Reverse(e["length"].as_u64().unwrap_or(0)),
        )
    });
    Ok(Formatted { text, entities })
}

fn close_entity(open: Open, end: usize, entities: &mut Vec<Value>, stack: &mut [Open]) {
    let Some(mut kind) = open.kind else { return };
    let language = if open.tag == "code" {
        kind.as_object_mut().and_then(|m| m.remove("language"))
    } else {
        None
    };
    // `<pre><code class="language-x">` is one `pre` entity with a language.
    if open.tag == "code"
        && let Some(pre) = stack.last_mut().filter(|o| o.tag == "pre")
    {
        if let (Some(lang), Some(k)) = (language, pre.kind.as_mut()) {
            k["language"] = lang;
        }
        return;
    }
    if end > open.start {
        kind["offset"] = json!(open.start);
        kind["length"] = json!(end - open.start);
        entities.push(kind);
    }
}

/// `b class="x" href='y'` -> ("b", [("class","x"),("href","y")]).
fn split_tag(inner: &str) -> (String, Vec<(String, String)>) {
    let inner = inner.trim();
    let name_end = inner
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(inner.len());
    let name = inner[..name_end].to_ascii_lowercase();
    let mut attrs = Vec::new();
    let mut rest = inner[name_end..].trim_start();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
            let (raw, next) = match quote {
                Some(q) => {
                    let body = &after[1..];
                    let end = body.find(q).unwrap_or(body.len());
                    (&body[..end], body.get(end + 1..).unwrap_or(""))
                }
                None => {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = decode_all(raw);
            rest = next.trim_start();
        }
        if !key.is_empty() && key != "/" {
            attrs.push((key, value));
        }
    }
    (name, attrs)
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn entity_for(name: &str, attrs: &[(String, String)], at: usize) -> Result<Option<Value>, String> {
    let simple = |t: &str| Ok(Some(json!({ "type": t })));
    match name {
        "b" | "strong" => simple("bold"),
        "i" | "em" => simple("italic"),
        "u" | "ins" => simple("underline"),
        "s" | "strike" | "del" => simple("strikethrough"),
        "tg-spoiler" => simple("spoiler"),
        "span" if attr(attrs, "class") == Some("tg-spoiler") => simple("spoiler"),
        "span" => Err("Tag \"span\" must have class \"tg-spoiler\"".into()),
        "code" => Ok(Some(
            match attr(attrs, "class").and_then(|c| c.strip_prefix("language-")) {
                Some(lang) => json!({ "type": "code", "language": lang }),
                None => json!({ "type": "code" }),
            },
        )),
        "pre" => simple("pre"),
        "blockquote" if attrs.iter().any(|(k, _)| k == "expandable") => {
            simple("expandable_blockquote")
        }
        "blockquote" => simple("blockquote"),
        "a" => Ok(attr(attrs, "href")
            .filter(|h| !h.is_empty())
            .map(|h| json!({ "type": "text_link", "url": h }))),
        "tg-emoji" => match attr(attrs, "emoji-id") {
            Some(id) => Ok(Some(
                json!({ "type": "custom_emoji", "custom_emoji_id": id }),
            )),
            None => Err("Tag \"tg-emoji\" must have attribute \"emoji-id\"".into()),
        },
        _ => Err(format!(
            "Unsupported start tag \"{name}\" at byte offset {at}"
        )),
    }
}

/// Decodes one `&...;` at the start of `s`; an unknown one is a literal `&`.
fn decode_entity(s: &str) -> (char, usize) {
    let Some(end) = s.find(';').filter(|e| *e <= 12) else {
        return ('&', 1);
    };
    let name = &s[1..end];
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => name.strip_prefix('#').and_then(|n| {
            let code = match n.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => n.parse().ok(),
            };
            code.and_then(char::from_u32)
        }),
    };
    match decoded {
        Some(c) => (c, end + 1),
        None => ('&', 1),
    }
}

fn decode_all(s: &str) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let Some(ch) = rest.chars().next() else { break };
        if ch == '&' {
            let (c, used) = decode_entity(rest);
            out.push(c);
            i += used;
        } else {
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Telegram strips surrounding whitespace from message text; entity offsets follow.
pub(super) fn trim(f: Formatted) -> Formatted {
    let lead = utf16_len(&f.text) - utf16_len(f.text.trim_start());
    let text = f.text.trim().to_owned();
    let total = utf16_len(&text);
    let entities = f
        .entities
        .into_iter()
        .filter_map(|mut e| {
            let start = usize::try_from(e["offset"].as_u64()?).ok()?;
            let len = usize::try_from(e["length"].as_u64()?).ok()?;
            let s = start.saturating_sub(lead).min(total);
            let end = (start + len).saturating_sub(lead).min(total);
            (end > s).then(|| {
                e["offset"] = json!(s);
                e["length"] = json!(end - s);
                e
            })
        })
        .collect();
    Formatted { text, entities }
}

/// Formats `raw` with `parse_mode`, or takes explicit `entities` as given.
pub(super) fn format(
    raw: &str,
    parse_mode: Option<&str>,
    entities: Option<Value>,
) -> Result<Formatted, ApiError> {
    if let Some(list) = entities {
        let Value::Array(list) = list else {
            return Err(ApiError::bad_request("can't parse entities JSON object"));
        };
        return Ok(trim(Formatted {
            text: raw.to_owned(),
            entities: list,
        }));
    }
    let plain = || Formatted {
        text: raw.to_owned(),
        entities: Vec::new(),
    };
    let parsed = match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("markdown") | Some("markdownv2") => plain(),
        Some("html") => parse_html(raw)
            .map_err(|e| ApiError::bad_request(&format!("can't parse entities: {e}")))?,
        Some(_) => return Err(ApiError::bad_request("unsupported parse_mode")),
    };
    Ok(trim(parsed))
}

/// `bot_command` entities for `/cmd` and `/cmd@botname` words in user text.
pub(super) fn command_entities(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut offset16 = 0usize;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, ch)) = chars.next() {
        if ch == '/' && prev.is_none_or(char::is_whitespace) {
            let word: String = text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '@')
                .collect();
            let (name, bot) = word.split_once('@').unwrap_or((&word, ""));
            let valid_bot = !word.contains('@')
                || (!bot.is_empty() && bot.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
            if (1..=32).contains(&name.len()) && valid_bot {
                let len = 1 + word.len();
                out.push(json!({ "type": "bot_command", "offset": offset16, "length": len }));
                for _ in 0..word.chars().count() {
                    chars.next();
                }
                offset16 += len;
                prev = word.chars().last();
                continue;
            }
        }
        offset16 += ch.len_utf16();
        prev = Some(ch);
    }
    out
}

/// A validated `reply_markup`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Markup {
    /// An inline keyboard: `{"inline_keyboard": [[button]]}` as it is echoed back.
    Inline(Value),
    /// A reply keyboard (not part of the Message object Telegram returns).
    Reply(Value),
    /// `remove_keyboard` or `force_reply`.
    Other(Value),
}

impl Markup {
    /// The `reply_markup` field of the returned Message (inline keyboards only).
    pub(super) fn echoed(&self) -> Option<Value> {
        match self {
            Markup::Inline(v) => Some(v.clone()),
            _ => None,
        }
    }
}

/// Validates a `reply_markup` object.
pub(super) fn parse_markup(v: &Value) -> Result<Markup, ApiError> {
    let unparsable = || ApiError::bad_request("can't parse reply keyboard markup JSON object");
    let Some(obj) = v.as_object() else {
        return Err(unparsable());
    };
    if let Some(rows) = obj.get("inline_keyboard") {
        let not_rows = || {
            ApiError::bad_request(
                "field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array of Arrays",
            )
        };
        let rows = rows.as_array().ok_or_else(not_rows)?;
        for row in rows {
            for button in row.as_array().ok_or_else(not_rows)? {
                check_inline_button(button)?;
            }
        }
        return Ok(Markup::Inline(json!({ "inline_keyboard": rows })));
    }
    if let Some(rows) = obj.get("keyboard") {
        let rows = rows.as_array().ok_or_else(unparsable)?;
        for row in rows {
            for button in row.as_array().ok_or_else(unparsable)? {
                let text = button
                    .as_str()
                    .or_else(|| button.get("text").and_then(Value::as_str));
                if text.is_none_or(|t| t.trim().is_empty()) {
                    return Err(ApiError::bad_request(
                        "can't parse keyboard button: Text must be non-empty",
                    ));
                }
            }
        }
        return Ok(Markup::Reply(v.clone()));
    }
    if obj.get("remove_keyboard").and_then(Value::as_bool) == Some(true)
        || obj.get("force_reply").and_then(Value::as_bool) == Some(true)
    {
        return Ok(Markup::Other(v.clone()));
    }
    Err(unparsable())
}

fn check_inline_button(button: &Value) -> Result<(), ApiError> {
    let cant =
        |why: &str| ApiError::bad_request(&format!("can't parse inline keyboard button: {why}"));
    let Some(obj) = button.as_object() else {
        return Err(cant("InlineKeyboardButton must be an Object"));
    };
    match obj.get("text").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => {}
        Some(_) => return Err(ApiError::bad_request("BUTTON_TEXT_INVALID")),
        None => return Err(cant("Field \"text\" must be of type String")),
    }
    let actions: Vec<&str> = BUTTON_ACTIONS
        .iter()
        .copied()
        .filter(|k| obj.get(*k).is_some_and(|v| !v.is_null()))
        .collect();
    match actions.as_slice() {
        [] => return Err(cant("Text buttons are unallowed in the inline keyboard")),
        [_] => {}
        _ => {
            return Err(cant(&format!(
                "only one of the fields {} can be used in a button",
                actions.join(", ")
            )));
        }
    }
    if let Some(data) = obj.get("callback_data") {
        let ok = data.as_str().is_some_and(|d| (1..=64).contains(&d.len()));
        if !ok {
            return Err(ApiError::bad_request("BUTTON_DATA_INVALID"));
        }
    }
    if let Some(url) = obj.get("url") {
        let ok = url.as_str().is_some_and(|u| {
            ["http://", "https://", "tg://"]
                .iter()
                .any(|s| u.len() > s.len() && u.to_ascii_lowercase().starts_with(s))
        });
        if !ok {
            return Err(ApiError::bad_request("BUTTON_URL_INVALID"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(s: &str) -> Formatted {
        parse_html(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn html_becomes_text_and_utf16_entities() {
        let f = html("<b>Hi</b> 😀 <a href=\"https://x.y/?a=1&amp;b=2\">link</a> &lt;3 &#1575;");
        assert_eq!(f.text, "Hi 😀 link <3 ا");
        assert_eq!(
            f.entities,
            vec![
                json!({"type": "bold", "offset": 0, "length": 2}),
                json!({"type": "text_link", "offset": 6, "length": 4, "url": "https://x.y/?a=1&b=2"}),
            ]
        );
        let f =
            html("<pre><code class=\"language-rust\">fn x</code></pre><tg-spoiler>s</tg-spoiler>");
        assert_eq!(f.text, "fn xs");
        assert_eq!(
            f.entities,
            vec![
                json!({"type": "pre", "offset": 0, "length": 4, "language": "rust"}),
                json!({"type": "spoiler", "offset": 4, "length": 1}),
            ]
        );
        assert_eq!(
            html("<blockquote expandable>q</blockquote>").entities[0]["type"],
            "expandable_blockquote"
        );
        assert_eq!(html("a & b &foo; <i></i>").text, "a & b &foo; ");
    }

    #[test]
    fn bad_html_is_refused_like_telegram() {
        let err = |s: &str| parse_html(s).err().unwrap_or_default();
        assert_eq!(
            err("<b>x"),
            "Can't find end tag corresponding to start tag \"b\""
        );
        assert_eq!(
            err("<x>y</x>"),
            "Unsupported start tag \"x\" at byte offset 0"
        );
        assert_eq!(
            err("<b><i>x</b></i>"),
            "Unmatched end tag at byte offset 7, expected \"</i>\", found \"</b>\""
        );
        assert_eq!(err("x</b>"), "Unexpected end tag at byte offset 1");
        assert_eq!(err("1 <2"), "Unsupported start tag \"\" at byte offset 2");
        assert!(err("<span>x</span>").contains("tg-spoiler"));
    }

    #[test]
    fn trimming_moves_entities() {
        let f = trim(html("  <b>x</b> y "));
        assert_eq!(f.text, "x y");
        assert_eq!(
            f.entities,
            vec![json!({"type": "bold", "offset": 0, "length": 1})]
        );
    }

    #[test]
    fn commands_are_found() {
        assert_eq!(
            command_entities("/start"),
            vec![json!({"type": "bot_command", "offset": 0, "length": 6})]
        );
        assert_eq!(
            command_entities("😀 /buy@shop_bot now /x"),
            vec![
                json!({"type": "bot_command", "offset": 3, "length": 13}),
                json!({"type": "bot_command", "offset": 21, "length": 2}),
            ]
        );
        assert!(command_entities("a/b / http://x").is_empty());
    }

    #[test]
    fn keyboards_are_validated() {
        let msg = |v: Value| {
            parse_markup(&v)
                .err()
                .map(|e| e.description)
                .unwrap_or_default()
        };
        assert!(matches!(
            parse_markup(&json!({"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]})),
            Ok(Markup::Inline(_))
        ));
        assert_eq!(
            msg(json!({"inline_keyboard": [[{"text": "a", "callback_data": "x".repeat(65)}]]})),
            "Bad Request: BUTTON_DATA_INVALID"
        );
        assert_eq!(
            msg(json!({"inline_keyboard": [[{"text": "a", "callback_data": ""}]]})),
            "Bad Request: BUTTON_DATA_INVALID"
        );
        assert!(
            msg(json!({"inline_keyboard": [[{"text": "a"}]]}))
                .contains("Text buttons are unallowed")
        );
        assert!(msg(json!({"inline_keyboard": [[{"text": "a", "url": "https://a", "callback_data": "b"}]]}))
            .contains("only one"));
        assert_eq!(
            msg(json!({"inline_keyboard": [[{"text": "a", "url": "ftp://x"}]]})),
            "Bad Request: BUTTON_URL_INVALID"
        );
        assert!(matches!(
            parse_markup(
                &json!({"keyboard": [["Buy", {"text": "Phone", "request_contact": true}]], "resize_keyboard": true})
            ),
            Ok(Markup::Reply(_))
        ));
        assert!(matches!(
            parse_markup(&json!({"remove_keyboard": true})),
            Ok(Markup::Other(_))
        ));
        assert!(msg(json!({"nothing": 1})).contains("can't parse reply keyboard markup"));
    }
}
