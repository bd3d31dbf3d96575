//! The fake Telegram against the real client the bot uses (teloxide 0.17): every answer
//! must parse into teloxide's types, and errors must map to its `ApiError` variants.

use mrjbot_testkit::fakes::telegram::{FakeTelegram, sample_photo};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{
    BotCommand, ChatAction, ChatMemberStatus, InlineKeyboardButton, InlineKeyboardMarkup,
    InputFile, MessageId, ParseMode, UpdateKind,
};

fn api_error<T: std::fmt::Debug>(r: Result<T, RequestError>) -> ApiError {
    match r {
        Err(RequestError::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn teloxide_runs_against_the_fake() -> anyhow::Result<()> {
    let fake = FakeTelegram::start("123456:TELOXIDE-token").await?;
    let bot = Bot::new(fake.token()).set_api_url(fake.api_url().parse()?);
    let me = bot.get_me().await?;
    assert_eq!(me.id, UserId(123456));
    assert_eq!(me.username(), "mrjbot_test_bot");

    let ali = fake.user(42, "Ali", Some("fa"));
    assert_eq!(
        api_error(bot.send_message(ChatId(42), "hi").await),
        ApiError::ChatNotFound
    );
    ali.send("/start").await?;
    let png = sample_photo(200, 100);
    let photo_id = ali.send_photo(png.clone(), Some("receipt")).await?;
    let updates = bot.get_updates().await?;
    assert_eq!(updates.len(), 2);
    let UpdateKind::Message(start) = &updates[0].kind else {
        panic!("not a message: {:?}", updates[0].kind);
    };
    assert_eq!(start.text(), Some("/start"));
    assert_eq!(
        start.from.as_ref().map(|u| u.first_name.as_str()),
        Some("Ali")
    );
    let UpdateKind::Message(photo) = &updates[1].kind else {
        panic!("not a message: {:?}", updates[1].kind);
    };
    assert_eq!(photo.id, MessageId(i32::try_from(photo_id)?));
    assert_eq!(photo.caption(), Some("receipt"));
    let sizes = photo.photo().map(<[_]>::to_vec).unwrap_or_default();
    assert_eq!(sizes.len(), 2);
    let largest = &sizes[1];
    assert_eq!((largest.width, largest.height), (200, 100));
    let file = bot.get_file(largest.file.id.clone()).await?;
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded).await?;
    assert_eq!(downloaded, png, "the user's photo downloads intact");

    // A keyboard, a press, an answer, an edit.
    let keyboard = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback(
        "Buy 1 month",
        "buy:1",
    )]]);
    let menu = bot
        .send_message(ChatId(42), "<b>Plans</b> for you")
        .parse_mode(ParseMode::Html)
        .reply_markup(keyboard.clone())
        .await?;
    assert_eq!(menu.text(), Some("Plans for you"));
    assert_eq!(menu.reply_markup(), Some(&keyboard));
    let query_id = ali.click("Buy").await?;
    let updates = bot.get_updates().offset(updates[1].id.as_offset()).await?;
    let UpdateKind::CallbackQuery(q) = &updates[0].kind else {
        panic!("not a callback query: {:?}", updates[0].kind);
    };
    assert_eq!(q.id.0, query_id);
    assert_eq!(q.data.as_deref(), Some("buy:1"));
    assert_eq!(q.message.as_ref().map(|m| m.id()), Some(menu.id));
    bot.answer_callback_query(q.id.clone())
        .text("Saved")
        .await?;
    assert_eq!(
        ali.answer(&query_id).and_then(|a| a.text).as_deref(),
        Some("Saved")
    );
    // teloxide spells this description with a lower-case "id"; Telegram and the fake say
    // "ID", so teloxide reports it as `Unknown`.
    let again = api_error(bot.answer_callback_query(q.id.clone()).await);
    assert!(
        matches!(&again, ApiError::Unknown(d) if d.contains("query is too old")),
        "{again:?}"
    );
    let edited = bot
        .edit_message_text(ChatId(42), menu.id, "You chose 1 month")
        .await?;
    assert_eq!(edited.text(), Some("You chose 1 month"));
    assert!(edited.edit_date().is_some());
    assert_eq!(
        api_error(
            bot.edit_message_text(ChatId(42), menu.id, "You chose 1 month")
                .await
        ),
        ApiError::MessageNotModified
    );
    assert_eq!(
        api_error(bot.edit_message_text(ChatId(42), MessageId(999), "x").await),
        ApiError::MessageToEditNotFound
    );
    bot.edit_message_reply_markup(ChatId(42), menu.id)
        .reply_markup(keyboard.clone())
        .await?;

    // Files the bot sends.
    let qr = sample_photo(300, 300);
    let sent = bot
        .send_photo(
            ChatId(42),
            InputFile::memory(qr.clone()).file_name("qr.png"),
        )
        .caption("Your QR")
        .await?;
    let sizes = sent.photo().map(<[_]>::to_vec).unwrap_or_default();
    assert_eq!(sizes.len(), 2);
    let file = bot.get_file(sizes[1].file.id.clone()).await?;
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded).await?;
    assert_eq!(downloaded, qr);
    bot.edit_message_caption(ChatId(42), sent.id)
        .caption("Your new QR")
        .await?;
    let doc = bot
        .send_document(
            ChatId(42),
            InputFile::memory(b"vless://example".to_vec()).file_name("config.txt"),
        )
        .await?;
    assert_eq!(
        doc.document().and_then(|d| d.file_name.as_deref()),
        Some("config.txt")
    );
    let again = bot
        .send_photo(ChatId(42), InputFile::file_id(sizes[1].file.id.clone()))
        .await?;
    assert_eq!(again.photo().map(<[_]>::len), Some(2));

    // The receipt goes to staff.
    let staff = fake.group(-4242, "Staff");
    let copy = bot
        .copy_message(ChatId(-4242), ChatId(42), photo.id)
        .caption("Receipt from Ali")
        .await?;
    assert_eq!(copy, MessageId(1));
    let fwd = bot
        .forward_message(ChatId(-4242), ChatId(42), photo.id)
        .await?;
    assert!(fwd.forward_origin().is_some());
    assert_eq!(staff.messages().len(), 2);
    assert_eq!(
        staff.messages()[0].photo.as_ref().map(|p| p.bytes.clone()),
        Some(png.clone())
    );

    // Chats, members, commands, actions, webhook info.
    let chat = bot.get_chat(ChatId(42)).await?;
    assert!(chat.is_private());
    let group = bot.get_chat(ChatId(-4242)).await?;
    assert!(group.is_group());
    fake.set_member("@vpn_news", 42, "member");
    fake.set_member("@vpn_news", 43, "left");
    let member = bot
        .get_chat_member(
            teloxide::types::Recipient::ChannelUsername("@vpn_news".into()),
            UserId(42),
        )
        .await?;
    assert_eq!(member.status(), ChatMemberStatus::Member);
    let left = bot
        .get_chat_member(
            teloxide::types::Recipient::ChannelUsername("@vpn_news".into()),
            UserId(43),
        )
        .await?;
    assert_eq!(left.status(), ChatMemberStatus::Left);
    for status in ["creator", "administrator", "restricted", "kicked"] {
        fake.set_member("@vpn_news", 44, status);
        bot.get_chat_member(
            teloxide::types::Recipient::ChannelUsername("@vpn_news".into()),
            UserId(44),
        )
        .await?;
    }
    bot.set_my_commands(vec![
        BotCommand::new("start", "Start"),
        BotCommand::new("buy", "Buy"),
    ])
    .await?;
    assert_eq!(bot.get_my_commands().await?.len(), 2);
    bot.delete_my_commands().await?;
    bot.send_chat_action(ChatId(42), ChatAction::Typing).await?;
    let info = bot.get_webhook_info().await?;
    assert!(info.url.is_none());
    assert_eq!(
        info.pending_update_count, 1,
        "the callback query is not confirmed yet"
    );

    // Deleting, blocking.
    bot.delete_message(ChatId(42), doc.id).await?;
    assert_eq!(
        api_error(bot.delete_message(ChatId(42), doc.id).await),
        ApiError::MessageToDeleteNotFound
    );
    fake.block(42);
    assert_eq!(
        api_error(bot.send_message(ChatId(42), "still there?").await),
        ApiError::BotBlocked
    );
    let updates = bot.get_updates().offset(updates[0].id.as_offset()).await?;
    assert!(
        matches!(updates[0].kind, UpdateKind::MyChatMember(_)),
        "{:?}",
        updates[0].kind
    );
    Ok(())
}
