//! The fake Telegram Bot API over raw HTTP: every method, Telegram's error shapes, files,
//! webhooks, flood control, and the user-side client.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mrjbot_testkit::fakes::telegram::{FakeTelegram, TgUser, sample_photo};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "777000:FAKE-token";
const WAIT: Duration = Duration::from_secs(5);

/// A raw Bot API client.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(fake: &FakeTelegram) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/bot{}", fake.api_url(), fake.token()),
        }
    }

    async fn answer(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("not JSON: {e}"));
        assert_eq!(
            body["ok"].as_bool(),
            Some(status == 200),
            "ok matches the status: {body}"
        );
        if status != 200 {
            assert_eq!(body["error_code"], status, "{body}");
        }
        (status, body)
    }

    /// POST JSON; returns (HTTP status, body).
    async fn raw(&self, method: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/{method}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        Self::answer(resp).await
    }

    /// A call that must succeed; returns `result`.
    async fn ok(&self, method: &str, body: Value) -> Value {
        let (status, v) = self.raw(method, body.clone()).await;
        assert_eq!(status, 200, "{method} {body}: {v}");
        v["result"].clone()
    }

    /// A call that must fail; returns (status, description).
    async fn err(&self, method: &str, body: Value) -> (u16, String) {
        let (status, v) = self.raw(method, body.clone()).await;
        assert_ne!(status, 200, "{method} {body} should fail: {v}");
        (
            status,
            v["description"].as_str().unwrap_or_default().to_owned(),
        )
    }

    async fn multipart(&self, method: &str, form: Form) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/{method}", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        Self::answer(resp).await
    }

    /// Takes every pending update (confirming them).
    async fn updates(&self) -> Vec<Value> {
        let list = self.ok("getUpdates", json!({"timeout": 0})).await;
        let list = list.as_array().cloned().unwrap_or_default();
        if let Some(last) = list.last().and_then(|u| u["update_id"].as_i64()) {
            self.ok("getUpdates", json!({"offset": last + 1, "timeout": 0}))
                .await;
        }
        list
    }
}

async fn start() -> (FakeTelegram, Api) {
    let fake = FakeTelegram::start(TOKEN)
        .await
        .unwrap_or_else(|e| panic!("fake: {e}"));
    let api = Api::new(&fake);
    (fake, api)
}

async fn started_user(fake: &FakeTelegram, api: &Api, id: i64) -> TgUser {
    let user = fake.user(id, "Ali", Some("fa"));
    user.send("/start")
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    api.updates().await;
    user
}

#[tokio::test]
async fn messages_have_telegram_shapes_and_errors() {
    let (fake, api) = start().await;
    let me = api.ok("getMe", json!({})).await;
    assert_eq!(me["id"], 777000);
    for field in [
        "is_bot",
        "can_join_groups",
        "can_read_all_group_messages",
        "supports_inline_queries",
        "can_connect_to_business",
        "has_main_web_app",
    ] {
        assert!(me[field].is_boolean(), "{field} in {me}");
    }

    assert_eq!(
        api.err("sendMessage", json!({"chat_id": 42, "text": "hi"}))
            .await,
        (400, "Bad Request: chat not found".into()),
        "a user who never wrote has no chat"
    );
    let ali = fake.user(42, "Ali", Some("fa"));
    let sent = ali.send("/start@mrjbot_test_bot now").await.unwrap_or(0);
    assert_eq!(sent, 1);
    let updates = api.updates().await;
    assert_eq!(updates.len(), 1);
    let m = &updates[0]["message"];
    assert_eq!(m["message_id"], 1);
    assert_eq!(
        m["from"],
        json!({"id": 42, "is_bot": false, "first_name": "Ali", "language_code": "fa"})
    );
    assert_eq!(
        m["chat"],
        json!({"id": 42, "type": "private", "first_name": "Ali"})
    );
    assert_eq!(
        m["entities"],
        json!([{"type": "bot_command", "offset": 0, "length": 22}])
    );
    assert!(
        m["date"]
            .as_i64()
            .is_some_and(|d| d > 1_600_000_000 && d < 10_000_000_000)
    );

    let keyboard = json!({"inline_keyboard": [[{"text": "Buy", "callback_data": "buy:1"}, {"text": "Site", "url": "https://example.com"}]]});
    let msg = api
        .ok(
            "sendMessage",
            json!({"chat_id": 42, "text": " <b>Plans</b> &amp; <i>prices</i> ", "parse_mode": "HTML", "reply_markup": keyboard}),
        )
        .await;
    assert_eq!(
        msg["message_id"], 2,
        "ids are per chat and shared with the user's"
    );
    assert_eq!(msg["from"]["id"], 777000);
    assert_eq!(msg["text"], "Plans & prices");
    assert_eq!(
        msg["entities"],
        json!([{"type": "bold", "offset": 0, "length": 5}, {"type": "italic", "offset": 8, "length": 6}])
    );
    assert_eq!(msg["reply_markup"], keyboard);

    // Reply keyboards are accepted but, like Telegram, not echoed.
    let msg = api
        .ok(
            "sendMessage",
            json!({"chat_id": "42", "text": "Share", "reply_to_message_id": 1,
                   "reply_markup": {"keyboard": [[{"text": "Phone", "request_contact": true}]], "resize_keyboard": true}}),
        )
        .await;
    assert!(msg.get("reply_markup").is_none(), "{msg}");
    assert_eq!(msg["reply_to_message"]["message_id"], 1);
    assert_eq!(
        msg["reply_to_message"]["text"],
        "/start@mrjbot_test_bot now"
    );
    api.ok(
        "sendMessage",
        json!({"chat_id": 42, "text": "Bye", "reply_markup": {"remove_keyboard": true}}),
    )
    .await;

    let cases = [
        (
            json!({"chat_id": 42, "text": "  "}),
            "Bad Request: message text is empty",
        ),
        (
            json!({"chat_id": 42, "text": "x".repeat(4097)}),
            "Bad Request: message is too long",
        ),
        (
            json!({"chat_id": 42, "text": "<b>x", "parse_mode": "HTML"}),
            "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
        ),
        (
            json!({"chat_id": 42, "text": "<blink>x</blink>", "parse_mode": "HTML"}),
            "Bad Request: can't parse entities: Unsupported start tag \"blink\" at byte offset 0",
        ),
        (
            json!({"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "d".repeat(65)}]]}}),
            "Bad Request: BUTTON_DATA_INVALID",
        ),
        (
            json!({"chat_id": 42, "text": "x", "reply_markup": {"inline_keyboard": [[{"text": "a"}]]}}),
            "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
        ),
        (
            json!({"chat_id": 42, "text": "x", "reply_to_message_id": 99}),
            "Bad Request: message to be replied not found",
        ),
        (
            json!({"chat_id": "@nobody", "text": "x"}),
            "Bad Request: chat not found",
        ),
    ];
    for (body, description) in cases {
        assert_eq!(
            api.err("sendMessage", body.clone()).await,
            (400, description.into()),
            "{body}"
        );
    }
    // 4096 characters after parsing are fine even if the HTML is longer.
    let long = format!("<b>{}</b>", "ы".repeat(4096));
    api.ok(
        "sendMessage",
        json!({"chat_id": 42, "text": long, "parse_mode": "html"}),
    )
    .await;

    // Edits.
    let edited = api
        .ok("editMessageText", json!({"chat_id": 42, "message_id": 2, "text": "Plans & prices", "entities": [{"type": "bold", "offset": 0, "length": 5}]}))
        .await;
    assert_eq!(edited["text"], "Plans & prices");
    assert!(
        edited.get("reply_markup").is_none(),
        "an edit without reply_markup drops the keyboard"
    );
    assert!(edited["edit_date"].is_i64());
    assert_eq!(
        api.err("editMessageText", json!({"chat_id": 42, "message_id": 2, "text": "<b>Plans</b> &amp; prices", "parse_mode": "HTML"}))
            .await,
        (400, "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message".into())
    );
    let with_kb = api
        .ok(
            "editMessageReplyMarkup",
            json!({"chat_id": 42, "message_id": 2, "reply_markup": keyboard}),
        )
        .await;
    assert_eq!(with_kb["reply_markup"], keyboard);
    assert_eq!(
        api.err(
            "editMessageReplyMarkup",
            json!({"chat_id": 42, "message_id": 2, "reply_markup": keyboard})
        )
        .await
        .1,
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
    );
    assert_eq!(
        api.err(
            "editMessageText",
            json!({"chat_id": 42, "message_id": 77, "text": "x"})
        )
        .await,
        (400, "Bad Request: message to edit not found".into())
    );
    assert_eq!(
        api.err(
            "editMessageText",
            json!({"chat_id": 42, "message_id": 1, "text": "x"})
        )
        .await,
        (400, "Bad Request: message can't be edited".into()),
        "the user's message"
    );
    assert_eq!(
        api.err(
            "editMessageCaption",
            json!({"chat_id": 42, "message_id": 2, "caption": "x"})
        )
        .await,
        (
            400,
            "Bad Request: there is no caption in the message to edit".into()
        )
    );

    // Deletes.
    assert_eq!(
        api.ok("deleteMessage", json!({"chat_id": 42, "message_id": 3}))
            .await,
        json!(true)
    );
    assert_eq!(
        api.err("deleteMessage", json!({"chat_id": 42, "message_id": 3}))
            .await,
        (400, "Bad Request: message to delete not found".into())
    );
    assert_eq!(
        api.err(
            "editMessageText",
            json!({"chat_id": 42, "message_id": 3, "text": "x"})
        )
        .await
        .1,
        "Bad Request: message to edit not found"
    );

    let seen = fake.messages(42);
    let summary: Vec<_> = seen
        .iter()
        .map(|m| {
            (
                m.message_id,
                m.text.clone().unwrap_or_default(),
                m.edits,
                m.deleted,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, "Plans & prices".into(), 2, false),
            (3, "Share".into(), 0, true),
            (4, "Bye".into(), 0, false),
            (5, "ы".repeat(4096), 0, false),
        ]
    );
    assert_eq!(
        seen[0].buttons[0][0].callback_data.as_deref(),
        Some("buy:1")
    );
    assert_eq!(
        seen[0].buttons[0][1].url.as_deref(),
        Some("https://example.com")
    );
    assert_eq!(seen[1].reply_to, Some(1));
    assert_eq!(
        seen[1]
            .reply_keyboard
            .as_ref()
            .map(|k| k["resize_keyboard"].clone()),
        Some(json!(true))
    );
    assert_eq!(seen[3].parse_mode.as_deref(), Some("html"));
    assert_eq!(ali.last().map(|m| m.message_id), Some(5));
    assert_eq!(fake.calls("SENDMESSAGE"), 13);
    assert_eq!(fake.calls("editMessageText"), 5);
    assert_eq!(
        fake.sends()
            .iter()
            .map(|s| (s.chat_id, s.message_id))
            .collect::<Vec<_>>(),
        vec![(42, 2), (42, 3), (42, 4), (42, 5)]
    );

    // Unknown methods and tokens.
    assert_eq!(
        api.err("sendSticker", json!({})).await,
        (404, "Not Found".into())
    );
    let resp = reqwest::get(format!("{}/bot1:wrong/getMe", fake.api_url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Api::answer(resp).await.0, 401);
}

#[tokio::test]
async fn callback_queries_are_answered_once_and_age() {
    let (fake, api) = start().await;
    let ali = started_user(&fake, &api, 42).await;
    let keyboard = json!({"inline_keyboard": [[{"text": "1 month", "callback_data": "plan:1"}], [{"text": "3 months", "callback_data": "plan:3"}]]});
    let msg = api
        .ok(
            "sendMessage",
            json!({"chat_id": 42, "text": "Pick", "reply_markup": keyboard}),
        )
        .await;
    let id = ali
        .click("3 months")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let updates = api.updates().await;
    let q = &updates[0]["callback_query"];
    assert_eq!(q["id"], id);
    assert_eq!(q["data"], "plan:3");
    assert_eq!(q["from"]["id"], 42);
    assert!(q["chat_instance"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(q["message"], msg, "the full message as it is now");
    assert!(ali.answer(&id).is_none());
    assert_eq!(
        api.ok(
            "answerCallbackQuery",
            json!({"callback_query_id": id, "text": "Saved", "show_alert": true})
        )
        .await,
        json!(true)
    );
    let answer = ali
        .wait_answer(&id, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.text.as_deref(), Some("Saved"));
    assert!(answer.show_alert);
    let too_old = (
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
            .to_owned(),
    );
    assert_eq!(
        api.err("answerCallbackQuery", json!({"callback_query_id": id}))
            .await,
        too_old,
        "answered twice"
    );
    assert_eq!(
        api.err("answerCallbackQuery", json!({"callback_query_id": "nope"}))
            .await,
        too_old
    );

    let late = ali
        .press(2, "plan:1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    fake.advance_clock(Duration::from_secs(16 * 60));
    assert_eq!(
        api.err("answerCallbackQuery", json!({"callback_query_id": late}))
            .await,
        too_old,
        "older than 15 min"
    );

    assert!(ali.press(2, "plan:9").await.is_err(), "no such button");
    assert!(ali.click("12 months").await.is_err());
    api.ok(
        "editMessageReplyMarkup",
        json!({"chat_id": 42, "message_id": 2}),
    )
    .await;
    let err = ali
        .press(2, "plan:1")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("no button"), "the keyboard is gone: {err}");
    let err = ali.wait_answer(&late, Duration::from_millis(50)).await;
    assert!(err.is_err());
}

#[tokio::test]
async fn files_upload_download_copy_and_forward() {
    let (fake, api) = start().await;
    let ali = started_user(&fake, &api, 42).await;
    let png = sample_photo(320, 200);

    // Multipart upload: a part named like the field; reply_markup as a JSON string.
    let form = Form::new()
        .text("chat_id", "42")
        .text("caption", "<b>QR</b> code")
        .text("parse_mode", "HTML")
        .text(
            "reply_markup",
            r#"{"inline_keyboard":[[{"text":"Copy","callback_data":"copy"}]]}"#,
        )
        .part(
            "photo",
            Part::bytes(png.clone())
                .file_name("qr.png")
                .mime_str("image/png")
                .unwrap_or_else(|e| panic!("{e}")),
        );
    let (status, v) = api.multipart("sendPhoto", form).await;
    assert_eq!(status, 200, "{v}");
    let msg = &v["result"];
    let sizes = msg["photo"].as_array().cloned().unwrap_or_default();
    assert_eq!(sizes.len(), 2, "{msg}");
    assert_eq!(sizes[0]["width"], 90, "a thumbnail that fits 90x90");
    assert!(sizes[0]["height"].as_u64().is_some_and(|h| h < 90));
    assert_eq!(
        (sizes[1]["width"].clone(), sizes[1]["height"].clone()),
        (json!(320), json!(200))
    );
    assert_eq!(msg["caption"], "QR code");
    assert_eq!(
        msg["caption_entities"],
        json!([{"type": "bold", "offset": 0, "length": 2}])
    );
    assert_eq!(
        msg["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "copy"
    );
    let big = sizes[1]["file_id"].as_str().unwrap_or_default().to_owned();
    assert_ne!(big, sizes[0]["file_id"].as_str().unwrap_or_default());

    let file = api.ok("getFile", json!({"file_id": big})).await;
    assert_eq!(file["file_size"], png.len());
    assert_eq!(file["file_unique_id"], sizes[1]["file_unique_id"]);
    let path = file["file_path"].as_str().unwrap_or_default();
    let resp = reqwest::get(format!("{}/file/bot{TOKEN}/{path}", fake.api_url()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
        png,
        "download = upload"
    );
    let resp = reqwest::get(format!(
        "{}/file/bot{TOKEN}/photos/nothing.png",
        fake.api_url()
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api.err("getFile", json!({"file_id": "nope"})).await,
        (400, "Bad Request: invalid file_id".into())
    );

    // teloxide's way: `attach://name`; a document keeps its name and type.
    let form = Form::new()
        .text("chat_id", "42")
        .text("document", "attach://f1")
        .part(
            "f1",
            Part::bytes(b"a,b\n1,2\n".to_vec()).file_name("report.csv"),
        );
    let (status, v) = api.multipart("sendDocument", form).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["document"]["file_name"], "report.csv");
    assert_eq!(v["result"]["document"]["mime_type"], "text/csv");
    let doc_id = v["result"]["document"]["file_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Again by file_id: the same file.
    let again = api
        .ok("sendPhoto", json!({"chat_id": 42, "photo": big}))
        .await;
    assert_eq!(again["photo"], msg["photo"]);
    assert_eq!(
        api.err("sendPhoto", json!({"chat_id": 42, "photo": doc_id}))
            .await
            .1,
        "Bad Request: type of file mismatch"
    );
    assert_eq!(
        api.err("sendPhoto", json!({"chat_id": 42, "photo": "AgACunknown"}))
            .await
            .1,
        "Bad Request: wrong file identifier/HTTP URL specified"
    );
    let form = Form::new().text("chat_id", "42").part(
        "photo",
        Part::bytes(b"not a picture".to_vec()).file_name("x.jpg"),
    );
    assert_eq!(
        api.multipart("sendPhoto", form).await.1["description"],
        "Bad Request: IMAGE_PROCESS_FAILED"
    );
    // By URL: fetched like Telegram does.
    let url = format!("{}/file/bot{TOKEN}/{path}", fake.api_url());
    let by_url = api
        .ok("sendDocument", json!({"chat_id": 42, "document": url}))
        .await;
    let by_url_id = by_url["document"]["file_id"].as_str().unwrap_or_default();
    assert_eq!(fake.file(by_url_id).map(|f| f.bytes), Some(png.clone()));
    assert_eq!(
        api.err(
            "sendPhoto",
            json!({"chat_id": 42, "photo": format!("{}/nothing", fake.api_url())})
        )
        .await
        .1,
        "Bad Request: failed to get HTTP URL content"
    );

    let sent = fake.messages(42);
    assert_eq!(
        sent[0].photo.as_ref().map(|p| p.bytes.clone()),
        Some(png.clone())
    );
    assert_eq!(sent[0].text.as_deref(), Some("QR code"));
    assert_eq!(
        sent[1]
            .document
            .as_ref()
            .and_then(|d| d.file_name.clone())
            .as_deref(),
        Some("report.csv")
    );
    assert_eq!(
        api.ok(
            "editMessageCaption",
            json!({"chat_id": 42, "message_id": sent[0].message_id, "caption": "New"})
        )
        .await["caption"],
        "New"
    );

    // A customer's receipt goes to the staff group.
    let receipt = sample_photo(64, 128);
    let rid = ali
        .send_photo(receipt.clone(), Some("paid 100"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ali.send_photo(b"junk".to_vec(), None).await.is_err());
    let updates = api.updates().await;
    let m = &updates[0]["message"];
    assert_eq!(m["message_id"], rid);
    assert_eq!(m["caption"], "paid 100");
    let user_sizes = m["photo"].as_array().cloned().unwrap_or_default();
    assert_eq!(user_sizes.len(), 2);
    let staff = fake.group(-100_500, "Staff");
    assert_eq!(
        api.err(
            "copyMessage",
            json!({"chat_id": -100_500, "from_chat_id": 42, "message_id": 999})
        )
        .await
        .1,
        "Bad Request: message to copy not found"
    );
    let copied = api
        .ok("copyMessage", json!({"chat_id": -100_500, "from_chat_id": 42, "message_id": rid, "caption": "Receipt from Ali",
                                   "reply_markup": {"inline_keyboard": [[{"text": "Approve", "callback_data": "ok:1"}]]}}))
        .await;
    assert_eq!(copied, json!({"message_id": 1}));
    let in_group = staff.messages();
    assert_eq!(
        in_group[0].photo.as_ref().map(|p| p.bytes.clone()),
        Some(receipt.clone())
    );
    assert_eq!(in_group[0].text.as_deref(), Some("Receipt from Ali"));
    assert_eq!(in_group[0].button_data("Approve"), Some("ok:1"));
    let fwd = api
        .ok(
            "forwardMessage",
            json!({"chat_id": -100_500, "from_chat_id": 42, "message_id": rid}),
        )
        .await;
    assert_eq!(fwd["forward_origin"]["type"], "user");
    assert_eq!(fwd["forward_origin"]["sender_user"]["id"], 42);
    assert_eq!(fwd["photo"], m["photo"]);
    assert_eq!(
        fwd["chat"],
        json!({"id": -100_500, "type": "group", "title": "Staff"})
    );
    let big_user = user_sizes[1]["file_id"].as_str().unwrap_or_default();
    let f = api.ok("getFile", json!({"file_id": big_user})).await;
    assert_eq!(f["file_size"], receipt.len());

    let did = ali
        .send_document(b"%PDF-1.4".to_vec(), "receipt.pdf", "application/pdf")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let updates = api.updates().await;
    assert_eq!(updates[0]["message"]["message_id"], did);
    assert_eq!(
        updates[0]["message"]["document"]["mime_type"],
        "application/pdf"
    );
    assert_eq!(
        fake.sends()
            .iter()
            .filter(|s| s.method == "copyMessage")
            .count(),
        1
    );
}

/// One delivery: the secret token header and the update.
type Delivery = (Option<String>, Value);

/// A webhook receiver that fails its first `fail_first` requests with 500.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    fail_first: Arc<Mutex<usize>>,
}

async fn receive(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> StatusCode {
    {
        let mut fail = r.fail_first.lock().unwrap_or_else(|e| e.into_inner());
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let secret = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    r.got
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((secret, body.0));
    StatusCode::OK
}

#[tokio::test]
async fn webhooks_deliver_in_order_with_secret_and_retry() {
    let (fake, api) = start().await;
    let receiver = Receiver {
        fail_first: Arc::new(Mutex::new(2)),
        ..Receiver::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(receiver.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let ali = fake.user(42, "Ali", None);
    ali.send("queued before")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!("http://{addr}/hook");
    assert_eq!(
        api.err(
            "setWebhook",
            json!({"url": url, "secret_token": "bad secret!"})
        )
        .await
        .1,
        "Bad Request: secret token contains unallowed characters"
    );
    api.ok(
        "setWebhook",
        json!({"url": url, "secret_token": "s3cr3t_-X", "drop_pending_updates": true}),
    )
    .await;
    assert_eq!(
        fake.webhook(),
        Some((url.clone(), Some("s3cr3t_-X".into())))
    );
    assert_eq!(
        api.err("getUpdates", json!({})).await,
        (409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into())
    );
    for text in ["one", "two", "three"] {
        ali.send(text).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if receiver.got.lock().unwrap_or_else(|e| e.into_inner()).len() >= 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook deliveries did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = receiver
        .got
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let texts: Vec<_> = got
        .iter()
        .map(|(_, u)| u["message"]["text"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![json!("one"), json!("two"), json!("three")],
        "in order, the dropped one never"
    );
    assert!(got.iter().all(|(s, _)| s.as_deref() == Some("s3cr3t_-X")));
    let ids: Vec<_> = got
        .iter()
        .filter_map(|(_, u)| u["update_id"].as_i64())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let info = api.ok("getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], url);
    assert_eq!(info["pending_update_count"], 0);
    assert_eq!(
        info["last_error_message"],
        "Wrong response from the webhook: 500 Internal Server Error"
    );
    assert!(info["last_error_date"].is_i64());

    // A receiver that is gone: updates wait, errors are recorded, nothing crashes.
    server.abort();
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().unwrap_or_else(|e| panic!("{e}"))
    };
    api.ok(
        "setWebhook",
        json!({"url": format!("http://{closed}/hook")}),
    )
    .await;
    assert_eq!(fake.webhook().and_then(|w| w.1), None);
    ali.send("four").await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = api.ok("getWebhookInfo", json!({})).await;
    assert_eq!(info["pending_update_count"], 1);
    assert_eq!(info["last_error_message"], "Connection refused");

    api.ok("deleteWebhook", json!({})).await;
    assert_eq!(fake.webhook(), None);
    let info = api.ok("getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], "");
    let updates = api.updates().await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["message"]["text"], "four");
}

#[tokio::test]
async fn chats_members_blocking_and_commands() {
    let (fake, api) = start().await;
    let ali = started_user(&fake, &api, 42).await;
    fake.block(42);
    assert_eq!(
        api.err("sendMessage", json!({"chat_id": 42, "text": "hi"}))
            .await,
        (403, "Forbidden: bot was blocked by the user".into())
    );
    assert_eq!(
        api.err("sendChatAction", json!({"chat_id": 42, "action": "typing"}))
            .await
            .0,
        403
    );
    let updates = api.updates().await;
    let change = &updates[0]["my_chat_member"];
    assert_eq!(change["old_chat_member"]["status"], "member");
    assert_eq!(change["new_chat_member"]["status"], "kicked");
    assert_eq!(change["new_chat_member"]["user"]["id"], 777000);
    ali.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    let updates = api.updates().await;
    assert_eq!(
        updates[0]["my_chat_member"]["new_chat_member"]["status"],
        "member"
    );
    assert_eq!(updates[1]["message"]["text"], "/start");
    api.ok(
        "sendMessage",
        json!({"chat_id": 42, "text": "welcome back"}),
    )
    .await;

    // Forced channel membership checks.
    fake.set_member("@vpn_news", 42, "member");
    fake.set_member("@vpn_news", 43, "kicked");
    fake.user(44, "Sara", None);
    let status = |v: Value| v["status"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        status(
            api.ok(
                "getChatMember",
                json!({"chat_id": "@vpn_news", "user_id": 42})
            )
            .await
        ),
        "member"
    );
    let kicked = api
        .ok(
            "getChatMember",
            json!({"chat_id": "@vpn_news", "user_id": 43}),
        )
        .await;
    assert_eq!(status(kicked.clone()), "kicked");
    assert_eq!(kicked["until_date"], 0);
    assert_eq!(
        status(
            api.ok(
                "getChatMember",
                json!({"chat_id": "@VPN_NEWS", "user_id": 44})
            )
            .await
        ),
        "left"
    );
    assert_eq!(
        status(
            api.ok(
                "getChatMember",
                json!({"chat_id": "@vpn_news", "user_id": 777000})
            )
            .await
        ),
        "administrator"
    );
    assert_eq!(
        api.err("getChatMember", json!({"chat_id": "@other", "user_id": 42}))
            .await,
        (400, "Bad Request: chat not found".into())
    );
    assert_eq!(
        api.err(
            "getChatMember",
            json!({"chat_id": "@vpn_news", "user_id": 5})
        )
        .await
        .1,
        "Bad Request: user not found"
    );
    let channel = api.ok("getChat", json!({"chat_id": "@vpn_news"})).await;
    assert_eq!(channel["type"], "channel");
    assert_eq!(channel["username"], "vpn_news");
    let cid = channel["id"].as_i64().unwrap_or_default();
    fake.set_member(&cid.to_string(), 42, "restricted");
    assert_eq!(
        status(
            api.ok("getChatMember", json!({"chat_id": cid, "user_id": 42}))
                .await
        ),
        "restricted"
    );
    let private = api.ok("getChat", json!({"chat_id": 42})).await;
    assert_eq!(private["first_name"], "Ali");
    assert_eq!(private["type"], "private");
    assert_eq!(
        api.err("getChat", json!({"chat_id": 44})).await.1,
        "Bad Request: chat not found"
    );

    // A group the bot was removed from.
    let group = fake.group(-1_001_234_567_890, "Shop chat");
    let in_group = ali.in_group(&group);
    in_group
        .send("hello group")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let updates = api.updates().await;
    assert_eq!(updates[0]["message"]["chat"]["type"], "supergroup");
    assert_eq!(updates[0]["message"]["from"]["id"], 42);
    api.ok(
        "sendMessage",
        json!({"chat_id": group.id(), "text": "hi all", "reply_to_message_id": 1}),
    )
    .await;
    assert_eq!(group.messages().len(), 1);
    assert_eq!(
        api.ok(
            "deleteMessage",
            json!({"chat_id": group.id(), "message_id": 1})
        )
        .await,
        json!(true)
    );
    fake.set_member(&group.id().to_string(), 777000, "kicked");
    assert_eq!(
        api.err("sendMessage", json!({"chat_id": group.id(), "text": "x"}))
            .await,
        (
            403,
            "Forbidden: bot was kicked from the supergroup chat".into()
        )
    );

    // Commands and chat actions.
    let cmds = json!([{"command": "start", "description": "Start"}, {"command": "buy", "description": "Buy a plan"}]);
    assert_eq!(
        api.ok("setMyCommands", json!({"commands": cmds})).await,
        json!(true)
    );
    api.ok(
        "setMyCommands",
        json!({"commands": [{"command": "start", "description": "شروع"}], "language_code": "fa"}),
    )
    .await;
    assert_eq!(api.ok("getMyCommands", json!({})).await, cmds);
    assert_eq!(
        api.ok("getMyCommands", json!({"language_code": "fa"}))
            .await[0]["description"],
        "شروع"
    );
    assert_eq!(fake.commands(None).len(), 2);
    assert_eq!(
        api.err(
            "setMyCommands",
            json!({"commands": [{"command": "Bad-Cmd", "description": "x"}]})
        )
        .await
        .1,
        "Bad Request: BOT_COMMAND_INVALID"
    );
    api.ok("deleteMyCommands", json!({})).await;
    assert_eq!(api.ok("getMyCommands", json!({})).await, json!([]));
    assert_eq!(
        api.ok("sendChatAction", json!({"chat_id": 42, "action": "typing"}))
            .await,
        json!(true)
    );
    assert_eq!(
        api.err(
            "sendChatAction",
            json!({"chat_id": 42, "action": "dancing"})
        )
        .await
        .1,
        "Bad Request: wrong parameter action in request"
    );
    assert_eq!(fake.actions(42), vec!["typing".to_owned()]);
}

#[tokio::test]
async fn flood_control_answers_429_with_retry_after() {
    let (fake, api) = start().await;
    started_user(&fake, &api, 42).await;
    let group = fake.group(-5, "Staff");
    for i in 0..10 {
        api.ok(
            "sendMessage",
            json!({"chat_id": 42, "text": format!("fast {i}")}),
        )
        .await;
    }
    fake.flood_control(30);
    for i in 0..3 {
        api.ok(
            "sendMessage",
            json!({"chat_id": 42, "text": format!("burst {i}")}),
        )
        .await;
    }
    let (status, body) = api
        .raw(
            "sendMessage",
            json!({"chat_id": 42, "text": "one too many"}),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(body["description"], "Too Many Requests: retry after 1");
    assert_eq!(body["parameters"]["retry_after"], 1);
    assert_eq!(
        api.ok("sendChatAction", json!({"chat_id": 42, "action": "typing"}))
            .await,
        json!(true),
        "not a message"
    );
    for i in 0..20 {
        api.ok(
            "sendMessage",
            json!({"chat_id": group.id(), "text": format!("g{i}")}),
        )
        .await;
    }
    let (status, body) = api
        .raw("sendMessage", json!({"chat_id": group.id(), "text": "g20"}))
        .await;
    assert_eq!(status, 429);
    let retry = body["parameters"]["retry_after"].as_u64().unwrap_or(0);
    assert!((50..=60).contains(&retry), "20 a minute to a group: {body}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    api.ok(
        "sendMessage",
        json!({"chat_id": 42, "text": "after a second"}),
    )
    .await;
    assert_eq!(
        fake.sends().len(),
        10 + 3 + 20 + 1,
        "refused sends are not sends"
    );
    fake.flood_control(0);
    for i in 0..10 {
        api.ok(
            "sendMessage",
            json!({"chat_id": group.id(), "text": format!("off {i}")}),
        )
        .await;
    }
}

/// A tiny bot on raw HTTP: answers /start with a keyboard, edits on a press.
async fn toy_bot(api: Api) {
    let mut offset = 0;
    loop {
        let updates = api
            .ok("getUpdates", json!({"offset": offset, "timeout": 5}))
            .await;
        for u in updates.as_array().cloned().unwrap_or_default() {
            offset = u["update_id"].as_i64().unwrap_or(0) + 1;
            if let Some(text) = u["message"]["text"].as_str() {
                let chat = u["message"]["chat"]["id"].clone();
                if text.starts_with("/start") {
                    api.ok("sendMessage", json!({"chat_id": chat, "text": "Welcome! Pick a plan",
                        "reply_markup": {"inline_keyboard": [[{"text": "💎 1 month", "callback_data": "plan:1"}]]}}))
                        .await;
                }
            }
            if u["callback_query"].is_object() {
                let q = &u["callback_query"];
                api.ok(
                    "answerCallbackQuery",
                    json!({"callback_query_id": q["id"], "text": "Chosen"}),
                )
                .await;
                api.ok("editMessageText", json!({"chat_id": q["message"]["chat"]["id"], "message_id": q["message"]["message_id"],
                    "text": format!("You chose {}", q["data"].as_str().unwrap_or_default())}))
                    .await;
            }
        }
    }
}

#[tokio::test]
async fn client_helpers_wait_for_the_bot() {
    let (fake, api) = start().await;
    let bot = tokio::spawn(toy_bot(api));
    let ali = fake.user(42, "Ali", Some("fa"));
    ali.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    let welcome = ali
        .wait_for(
            |m| m.text.as_deref().is_some_and(|t| t.starts_with("Welcome")),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(welcome.button_data("1 month"), Some("plan:1"));
    let q = ali.click("1 month").await.unwrap_or_else(|e| panic!("{e}"));
    let answer = ali
        .wait_answer(&q, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.text.as_deref(), Some("Chosen"));
    let edited = ali
        .wait_for(|m| m.edits == 1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(edited.message_id, welcome.message_id);
    assert_eq!(edited.text.as_deref(), Some("You chose plan:1"));
    assert!(edited.buttons.is_empty());

    let err = ali
        .wait_for(
            |m| m.text.as_deref() == Some("never"),
            Duration::from_millis(100),
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("You chose plan:1"),
        "the error shows the chat: {err}"
    );

    let group = fake.group(-77, "Resellers");
    let in_group = ali.in_group(&group);
    in_group
        .send("/start")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    in_group
        .wait_for(
            |m| m.text.as_deref().is_some_and(|t| t.starts_with("Welcome")),
            WAIT,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let reply_id = in_group
        .reply(1, "thanks")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply_id, 3);
    assert_eq!(group.messages().len(), 1);
    assert_eq!(ali.messages().len(), 1, "the private chat is separate");
    assert_eq!(fake.calls("answerCallbackQuery"), 1);
    bot.abort();
}
