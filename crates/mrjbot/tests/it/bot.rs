//! The Telegram shop front end to end: the real bot inside `mrjbot serve` against the fake
//! Bot API, driven by scripted customers and staff. Texts are looked up through the same
//! fluent files the bot uses, so the scripts check the right language without copying it.

use crate::money::picture;
use crate::*;
use mrjbot_i18n::{Lang, t as tr};
use mrjbot_testkit::fakes::telegram::{FakeTelegram, SentMessage, TgUser};
use rstest::rstest;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

const TOKEN: &str = "777000111:AAbot-test-token";
const STAFF_CHAT: i64 = -1_001_234_567;
const ADMIN_TG: i64 = 5_000_001;
const ADMIN2_TG: i64 = 5_000_002;
const PUBLIC: &str = "http://shop.test";
const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct BotShop {
    pub t: TestApp,
    pub tg: FakeTelegram,
    pub admin: TgUser,
    pub admin2: TgUser,
    pub plan: i64,
}

/// A shop with the bot running: one node in `de`, a 30-day plan in rials, stars and
/// rubles, a destination card, two admins with Telegram accounts in the staff group.
pub(crate) async fn bot_shop(
    backend: Backend,
    adjust: impl FnOnce(&mut mrjbot::config::Config),
) -> Option<BotShop> {
    let tg = FakeTelegram::start(TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (url, token) = (tg.api_url().to_owned(), tg.token().to_owned());
    let t = TestApp::spawn_with(backend, |c| {
        c.telegram_token = Some(token);
        c.telegram_api_url = url;
        c.telegram_admin_chat = Some(STAFF_CHAT);
        c.public_url = Some(PUBLIC.into());
        c.ocr = false;
        adjust(c);
    })
    .await?;
    let (s, n) = t
        .post(
            "/api/v1/nodes",
            json!({"name": "de-1", "kind": "agent", "address": "10.9.0.1", "region": "de"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let node = n["id"].as_i64().unwrap_or_default();
    let (s, v) = t
        .post(&format!("/api/v1/nodes/{node}/inbounds"), json!({"tag": "vless", "protocol": "vless", "port": 443, "network": "tcp", "security": "none"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, p) = t
        .post(
            "/api/v1/plans",
            json!({"name": "Germany 30", "duration_days": 30, "data_limit_bytes": 50i64 << 30, "device_limit": 2, "region": "de",
                   "prices": [{"currency": "IRR", "amount_minor": 1_500_000}, {"currency": "XTR", "amount_minor": 150}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (s, c) = t
        .post(
            "/api/v1/cards",
            json!({"number": "6037-9975-9951-4529", "owner_name": "Ali Rezaei", "bank": "Melli"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    for (name, tg_id) in [("boss", ADMIN_TG), ("boss2", ADMIN2_TG)] {
        let (s, u) = t
            .post(
                "/api/v1/users",
                json!({"username": name, "password": "test-password-1", "telegram_id": tg_id, "roles": ["admin"], "language": "en"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{u}");
    }
    let group = tg.group(STAFF_CHAT, "Shop staff");
    let admin = tg.user(ADMIN_TG, "Boss", Some("en")).in_group(&group);
    let admin2 = tg.user(ADMIN2_TG, "Boss Two", Some("en")).in_group(&group);
    wait_until(|| tg.calls("getUpdates") > 0, "the bot polls").await;
    Some(BotShop {
        t,
        tg,
        admin,
        admin2,
        plan: p["id"].as_i64().unwrap_or_default(),
    })
}

/// A button's kind: its callback data with every number blanked.
fn kind(data: &str) -> String {
    let mut out = String::new();
    for c in data.chars() {
        if c.is_ascii_digit() {
            if !out.ends_with('#') {
                out.push('#');
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The seller's per-customer flood limit (read by the bot on every update).
async fn set_user_rate(shop: &BotShop, per_minute: u32) {
    let (s, v) = shop
        .t
        .call(
            Method::PUT,
            "/api/v1/settings/shop",
            Some(&shop.t.admin_token),
            Some(json!({"user_rate_per_minute": per_minute})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

pub(crate) async fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let end = std::time::Instant::now() + WAIT;
    while !cond() {
        assert!(std::time::Instant::now() < end, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn text(m: &SentMessage) -> &str {
    m.text.as_deref().unwrap_or_default()
}

fn has(m: &SentMessage, needle: &str) -> bool {
    text(m).contains(needle)
}

/// Waits for a bot message containing `needle` (HTML tags removed from the expectation).
pub(crate) async fn see(u: &TgUser, needle: &str) -> SentMessage {
    let plain = strip_tags(needle);
    u.wait_for(|m| strip_tags(text(m)).contains(&plain), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        match c {
            '<' => inside = true,
            '>' if inside => inside = false,
            c if !inside => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The fixed start of a translated message (up to its first argument), read from the
/// bot's fluent file: messages with arguments cannot be looked up without them.
fn line(lang: Lang, key: &str) -> String {
    let path = format!(
        "{}/../mrjbot-i18n/locales/{}/bot.ftl",
        env!("CARGO_MANIFEST_DIR"),
        lang.code()
    );
    let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = src.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix(&format!("{key} =")) else {
            continue;
        };
        let mut value = rest.trim().to_owned();
        if value.is_empty() {
            value = lines.next().unwrap_or_default().trim().to_owned();
        }
        let fixed = value.split('{').next().unwrap_or_default().trim();
        return strip_tags(fixed);
    }
    panic!("{key} is not in {path}")
}

/// Presses the button whose label contains `label` on the newest message that has it and
/// waits for the bot to answer the press.
pub(crate) async fn click(u: &TgUser, label: &str) -> Option<String> {
    see_button(u, label).await;
    let q = u.click(label).await.unwrap_or_else(|e| panic!("{e:#}"));
    let a = u
        .wait_answer(&q, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    a.text
}

async fn start_in(tg: &FakeTelegram, id: i64, lang: Lang) -> TgUser {
    let u = tg.user(id, &format!("Customer{id}"), Some("de"));
    u.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    see(&u, &line(Lang::En, "bot-welcome-choose-language")).await;
    let label = match lang {
        Lang::Fa => "فارسی",
        Lang::En => "English",
        Lang::Ru => "Русский",
    };
    click(&u, label).await;
    see_button(&u, &tr(lang, "bot-btn-buy")).await;
    u
}

/// Waits for a bot message with a button labelled `label`.
pub(crate) async fn see_button(u: &TgUser, label: &str) -> SentMessage {
    u.wait_for(
        |m| m.buttons.iter().flatten().any(|b| b.text.contains(label)),
        WAIT,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Walks the catalog to the plan's checkout and picks a payment method.
async fn buy_with(u: &TgUser, lang: Lang, method_key: &str) {
    let buy = tr(lang, "bot-btn-buy");
    let newest = u
        .messages()
        .into_iter()
        .rev()
        .find(|m| !m.buttons.is_empty());
    if !newest.is_some_and(|m| m.buttons.iter().flatten().any(|b| b.text.contains(&buy))) {
        click(u, &tr(lang, "bot-btn-menu")).await;
        see_button(u, &buy).await;
    }
    click(u, &tr(lang, "bot-btn-buy")).await;
    see(u, &tr(lang, "bot-choose-location")).await;
    click(u, "DE").await;
    click(u, &tr(lang, "bot-ip-dynamic")).await;
    see(u, &tr(lang, "bot-choose-duration")).await;
    click(u, &mrjbot_i18n::format_days_left(30, lang)).await;
    see(u, &tr(lang, "bot-choose-plan")).await;
    click(u, &mrjbot_i18n::format_bytes(50 << 30, lang)).await;
    see(u, "Germany 30").await;
    click(u, &tr(lang, method_key)).await;
}

/// The subscription link in a delivered message's caption, as a path on the test server.
fn link_path(m: &SentMessage) -> String {
    let plain = strip_tags(text(m));
    let at = plain
        .find(PUBLIC)
        .unwrap_or_else(|| panic!("no link in {plain}"));
    plain[at + PUBLIC.len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn delivered_link(shop: &BotShop, u: &TgUser, lang: Lang) -> String {
    let m = u
        .wait_for(|m| m.photo.is_some() && has(m, PUBLIC), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{lang}: {e:#}"));
    let path = link_path(&m);
    let (s, _, body) = shop.t.fetch(&path, &[]).await;
    assert_eq!(s, StatusCode::OK, "{path}: {body}");
    assert!(!body.is_empty());
    path
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_customer_in_each_language_buys_by_card_and_by_wallet(#[case] backend: Backend) {
    let Some(shop) = bot_shop(backend, |_| {}).await else {
        return;
    };
    for (i, lang) in Lang::ALL.into_iter().enumerate() {
        let id = 7_000_100 + i as i64;
        let u = start_in(&shop.tg, id, lang).await;

        // Card to card: instructions, receipt photo, staff approve in the group.
        buy_with(&u, lang, "bot-method-card").await;
        let card = see(&u, "6037997599514529").await;
        assert!(
            has(&card, &line(lang, "bot-card-instructions")) || lang != Lang::En,
            "{}",
            text(&card)
        );
        u.send_photo(picture(40 + i as u64), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        see(&u, &line(lang, "bot-receipt-received")).await;
        // The staff alert waits for the receipt's analysis; its retry is on the app's
        // clock, which the test moves by hand.
        let end = std::time::Instant::now() + WAIT;
        let review = loop {
            let found = shop
                .admin
                .messages()
                .into_iter()
                .rev()
                .find(|m| m.photo.is_some() && has(m, "#R") && !m.buttons.is_empty());
            if let Some(m) = found {
                break m;
            }
            assert!(std::time::Instant::now() < end, "no receipt for staff");
            shop.t.clock.advance(Duration::from_secs(3));
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let pid: i64 = text(&review)
            .split("#R")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no payment id in {}", text(&review)));
        // Both admins tap Approve at once: one approval, the other told it was decided.
        let data = format!("ap:{pid}");
        let (q1, q2) = tokio::join!(
            shop.admin.press(review.message_id, &data),
            shop.admin2.press(review.message_id, &data)
        );
        let (q1, q2) = (
            q1.unwrap_or_else(|e| panic!("{e}")),
            q2.unwrap_or_else(|e| panic!("{e}")),
        );
        let a1 = shop
            .admin
            .wait_answer(&q1, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let a2 = shop
            .admin2
            .wait_answer(&q2, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let alerts = [a1.show_alert, a2.show_alert]
            .iter()
            .filter(|a| **a)
            .count();
        assert_eq!(alerts, 1, "one approval and one refusal: {a1:?} {a2:?}");
        let path = delivered_link(&shop, &u, lang).await;
        assert!(path.starts_with("/sub/"), "{path}");
        let (_, subs) = shop.t.get("/api/v1/subscriptions?limit=500").await;
        let mine = subs["items"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or_default();
        assert!(mine > i, "{subs}");

        // Wallet: staff credit the wallet, the customer pays with it.
        let (_, users) = shop.t.get(&format!("/api/v1/users?q=Customer{id}")).await;
        let uid = users["items"][0]["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("{users}"));
        let (s, w) = shop
            .t
            .post(
                &format!("/api/v1/users/{uid}/wallet/adjust"),
                json!({"amount_minor": 2_000_000, "currency": "IRR", "note": "gift"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
        let before = u.messages().iter().filter(|m| m.photo.is_some()).count();
        buy_with(&u, lang, "bot-method-wallet").await;
        see(&u, &line(lang, "bot-paid-from-wallet")).await;
        wait_until(
            || u.messages().iter().filter(|m| m.photo.is_some()).count() > before,
            "second delivery",
        )
        .await;
        let last = u
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.photo.is_some())
            .unwrap_or_else(|| panic!("no photo"));
        let (s, _, _) = shop.t.fetch(&link_path(&last), &[]).await;
        assert_eq!(s, StatusCode::OK);
        // Persian digits and toman for fa.
        if lang == Lang::Fa {
            assert!(
                u.messages()
                    .iter()
                    .any(|m| has(m, "تومان") && has(m, "۱۵۰٬۰۰۰")),
                "toman with Persian digits"
            );
        }
    }
    shop.t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn trial_once_renewal_and_a_ticket_round_trip(#[case] backend: Backend) {
    let Some(shop) = bot_shop(backend, |_| {}).await else {
        return;
    };
    let l = Lang::En;
    let u = start_in(&shop.tg, 7_100_001, l).await;

    // Trial: once, and only once.
    click(&u, &tr(l, "bot-btn-trial")).await;
    click(&u, &tr(l, "bot-btn-trial-take")).await;
    delivered_link(&shop, &u, l).await;
    click(&u, &tr(l, "bot-btn-menu")).await;
    click(&u, &tr(l, "bot-btn-trial")).await;
    see(&u, &tr(l, "bot-trial-used")).await;
    // Pressing the old "take" button again is refused, not a second trial.
    let take = u.messages().iter().find_map(|m| {
        m.button_data(&tr(l, "bot-btn-trial-take"))
            .map(|d| (m.message_id, d.to_owned()))
    });
    if let Some((mid, data)) = take {
        let q = u.press(mid, &data).await.unwrap_or_else(|e| panic!("{e}"));
        let a = u
            .wait_answer(&q, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(a.show_alert, "{a:?}");
    }
    let (_, subs) = shop.t.get("/api/v1/subscriptions?limit=50").await;
    assert_eq!(subs["total"], 1, "one trial: {subs}");

    // Renew the bought subscription from "My services" with the wallet.
    let (_, users) = shop.t.get("/api/v1/users?q=Customer7100001").await;
    let uid = users["items"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{users}"));
    shop.t
        .post(
            &format!("/api/v1/users/{uid}/wallet/adjust"),
            json!({"amount_minor": 5_000_000, "currency": "IRR", "note": "gift"}),
        )
        .await;
    buy_with(&u, l, "bot-method-wallet").await;
    see(&u, &line(l, "bot-paid-from-wallet")).await;
    wait_until(
        || u.messages().iter().filter(|m| m.photo.is_some()).count() >= 2,
        "delivery",
    )
    .await;
    let (_, subs) = shop
        .t
        .get(&format!("/api/v1/subscriptions?user_id={uid}&limit=50"))
        .await;
    let bought = subs["items"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["plan_id"] == shop.plan).cloned())
        .unwrap_or_else(|| panic!("{subs}"));
    let sid = bought["id"].as_i64().unwrap_or_default();
    let expires = bought["expires_at"].as_str().unwrap_or_default().to_owned();
    click(&u, &tr(l, "bot-btn-menu")).await;
    click(&u, &tr(l, "bot-btn-services")).await;
    click(&u, &format!("#{sid}")).await;
    click(&u, &tr(l, "bot-btn-renew")).await;
    click(&u, &tr(l, "bot-method-wallet")).await;
    see(&u, &line(l, "bot-paid-from-wallet")).await;
    let end = std::time::Instant::now() + WAIT;
    loop {
        let (_, s) = shop.t.get(&format!("/api/v1/subscriptions/{sid}")).await;
        if s["expires_at"].as_str().unwrap_or_default() > expires.as_str() {
            break;
        }
        assert!(std::time::Instant::now() < end, "not renewed: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ticket: customer writes, staff answer by replying in the group, customer replies.
    click(&u, &tr(l, "bot-btn-menu")).await;
    click(&u, &tr(l, "bot-btn-support")).await;
    click(&u, &tr(l, "bot-btn-ticket-new")).await;
    u.send("My link does not connect on iPhone")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    see(&u, &line(l, "bot-ticket-opened")).await;
    let relayed = shop
        .admin
        .wait_for(|m| has(m, "#T") && has(m, "does not connect"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    shop.admin
        .reply(
            relayed.message_id,
            "Please update Streisand and import again.",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    see(&u, "Please update Streisand").await;
    click(&u, &tr(l, "bot-btn-reply")).await;
    u.send("Works now, thanks!")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    shop.admin
        .wait_for(|m| has(m, "Works now"), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, tickets) = shop.t.get("/api/v1/tickets").await;
    assert_eq!(tickets["total"], 1, "{tickets}");
    let tid = tickets["items"][0]["id"].as_i64().unwrap_or_default();
    let (_, thread) = shop.t.get(&format!("/api/v1/tickets/{tid}")).await;
    assert_eq!(
        thread["messages"].as_array().map(Vec::len),
        Some(3),
        "{thread}"
    );
    shop.t.stop().await;
}

/// A crawler presses every callback button reachable from the customer's and the staff's
/// menus; each press must be answered and must change something (a new screen, an edit,
/// or a message), and none may fall through to "out of date".
#[tokio::test]
async fn every_button_leads_somewhere() {
    let Some(shop) = bot_shop(Backend::Sqlite, |_| {}).await else {
        return;
    };
    // Hundreds of presses a minute: the per-person flood limit is lifted for the walk.
    set_user_rate(&shop, 10_000).await;
    let l = Lang::En;
    let stale = tr(l, "bot-stale-button");
    let customer = start_in(&shop.tg, 7_200_001, l).await;
    // Give the customer something behind every button: a wallet, a subscription, a ticket.
    let (_, users) = shop.t.get("/api/v1/users?q=Customer7200001").await;
    let uid = users["items"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{users}"));
    shop.t
        .post(
            &format!("/api/v1/users/{uid}/wallet/adjust"),
            json!({"amount_minor": 50_000_000, "currency": "IRR", "note": "gift"}),
        )
        .await;
    buy_with(&customer, l, "bot-method-wallet").await;
    wait_until(
        || customer.messages().iter().any(|m| m.photo.is_some()),
        "delivery",
    )
    .await;
    let staff = shop.tg.user(ADMIN_TG, "Boss", Some("en"));
    staff.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    see_button(&staff, &tr(l, "bot-btn-admin")).await;

    let generic = line(l, "bot-error-generic");
    let internal = tr(l, "bot-error-internal");
    for who in [&customer, &staff] {
        // Every kind of button seen (ids blanked: `sv:12` and `sv:13` are one kind), with
        // the kinds of the presses that lead to it from a fresh menu.
        let mut paths: HashMap<String, Vec<String>> = HashMap::new();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut pressed: BTreeSet<String> = BTreeSet::new();
        let mut presses = 0;
        let discover = |msgs: &[SentMessage],
                        via: &[String],
                        paths: &mut HashMap<String, Vec<String>>,
                        queue: &mut VecDeque<String>| {
            for m in msgs {
                for b in m.buttons.iter().flatten() {
                    if let Some(d) = &b.callback_data
                        && !paths.contains_key(&kind(d))
                    {
                        paths.insert(kind(d), via.to_vec());
                        queue.push_back(kind(d));
                    }
                }
            }
        };
        who.send("/menu").await.unwrap_or_else(|e| panic!("{e}"));
        see_button(who, &tr(l, "bot-btn-buy")).await;
        discover(&who.messages(), &[], &mut paths, &mut queue);
        // Buttons that end the walk's premises are pressed last.
        let last_words = [
            "sK:", "ax:", "oc:", "kx:", "rY", "tY", "bY", "pp:", "pr:", "pa:", "pt:",
        ];
        let mut deferred = 0;
        while let Some(target) = queue.pop_front() {
            if presses > 1_500 {
                break;
            }
            // Switching language is covered by the purchase test; the walk stays in English.
            if target.starts_with("l:") && target != "l:en" {
                pressed.insert(target);
                continue;
            }
            if last_words.iter().any(|p| target.starts_with(p))
                && deferred < 200
                && queue
                    .iter()
                    .any(|d| !last_words.iter().any(|p| d.starts_with(p)))
            {
                deferred += 1;
                queue.push_back(target);
                continue;
            }
            // Walk there from a fresh menu, then press it.
            let mut chain = paths.get(&target).cloned().unwrap_or_default();
            chain.push(target.clone());
            who.send("/menu").await.unwrap_or_else(|e| panic!("{e}"));
            see_button(who, &tr(l, "bot-btn-buy")).await;
            let mut walked = Vec::new();
            for step in chain {
                let found = who.messages().into_iter().rev().find_map(|m| {
                    m.buttons
                        .iter()
                        .flatten()
                        .filter_map(|b| b.callback_data.clone())
                        .find(|d| kind(d) == step)
                        .map(|d| (m.message_id, d))
                });
                let Some((mid, data)) = found else { break };
                let count_before = who.messages().len();
                let edits_before: u32 = who.messages().iter().map(|m| m.edits).sum();
                let q = who
                    .press(mid, &data)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let a = who
                    .wait_answer(&q, WAIT)
                    .await
                    .unwrap_or_else(|e| panic!("{data}: {e:#}"));
                presses += 1;
                if let Some(t) = &a.text {
                    assert!(
                        !t.contains(&generic) && !t.contains(&internal),
                        "{data} failed: {t}"
                    );
                    if step != "bY" {
                        assert_ne!(t, &stale, "{data} fell through to out of date");
                    }
                }
                // Something happened: a new message, an edit, or a toast / alert.
                let end = std::time::Instant::now() + Duration::from_secs(3);
                while a.text.is_none()
                    && who.messages().len() == count_before
                    && who.messages().iter().map(|m| m.edits).sum::<u32>() == edits_before
                    && std::time::Instant::now() < end
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                pressed.insert(step.clone());
                walked.push(step);
                discover(&who.messages(), &walked, &mut paths, &mut queue);
            }
        }
        eprintln!(
            "crawler: {} kinds of buttons, {presses} presses",
            pressed.len()
        );
        assert!(
            pressed.len() >= 25,
            "the crawler reached only {} buttons: {pressed:?}",
            pressed.len()
        );
        let unreached: Vec<&String> = paths.keys().filter(|d| !pressed.contains(*d)).collect();
        assert!(unreached.is_empty(), "never pressed: {unreached:?}");
    }
    shop.t.stop().await;
}

#[tokio::test]
async fn malformed_updates_unknown_commands_stale_buttons_and_floods() {
    let Some(shop) = bot_shop(Backend::Sqlite, |_| {}).await else {
        return;
    };
    set_user_rate(&shop, 20).await;
    let l = Lang::En;
    let u = start_in(&shop.tg, 7_300_001, l).await;
    // Garbage of every kind: no crash, no answer to the unreadable ones.
    for raw in [
        json!({"message": {"message_id": 1, "date": 1, "chat": {"id": 7_300_001, "type": "private"}}}),
        json!({"callback_query": {"id": "x1", "from": {"id": 7_300_001, "is_bot": false, "first_name": "C"}, "chat_instance": "1", "data": "zz:9:9"}}),
        json!({"message": "not an object"}),
        json!({"edited_message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}, "text": "hi"}}),
        json!({"something_new": {"x": 1}}),
    ] {
        shop.tg.push_update(raw).unwrap_or_else(|e| panic!("{e}"));
    }
    u.send("/frobnicate")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    see(&u, &tr(l, "bot-unknown-command")).await;
    u.send(&"long ".repeat(2000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    see(&u, &tr(l, "bot-use-buttons")).await;
    // Forged or stale buttons (data we never wrote, a plan that does not exist): the bot
    // answers with the menu instead of failing.
    let menus_before = u.messages().len();
    for data in ["bp:999999", "no-such-button", "ap:1", "sv:424242"] {
        shop.tg
            .push_update(json!({"callback_query": {"id": format!("forged-{data}"), "chat_instance": "1",
                "from": {"id": 7_300_001, "is_bot": false, "first_name": "C"},
                "message": {"message_id": 1, "date": 1, "chat": {"id": 7_300_001, "type": "private"}, "text": "old"},
                "data": data}}))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    wait_until(
        || u.messages().len() > menus_before,
        "an answer to stale buttons",
    )
    .await;
    // A flood from a new customer: asked to slow down once, the rest dropped.
    let flooder = start_in(&shop.tg, 7_300_003, l).await;
    let slow = tr(l, "bot-slow-down");
    for i in 0..40 {
        flooder
            .send(&format!("spam {i}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    see(&flooder, &slow).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let told = flooder.messages().iter().filter(|m| has(m, &slow)).count();
    assert_eq!(told, 1, "told once");
    let answered = flooder
        .messages()
        .iter()
        .filter(|m| has(m, &tr(l, "bot-use-buttons")))
        .count();
    assert!(answered < 20, "the limit held: {answered} answers");
    // The bot still works for others meanwhile.
    let other = start_in(&shop.tg, 7_300_002, Lang::Ru).await;
    click(&other, &tr(Lang::Ru, "bot-btn-help")).await;
    see(&other, &line(Lang::Ru, "bot-help")).await;
    shop.t.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_the_dialogue_and_replays_nothing() {
    let Some(shop) = bot_shop(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let l = Lang::En;
    let u = start_in(&shop.tg, 7_400_001, l).await;
    buy_with(&u, l, "bot-method-card").await;
    see(&u, "6037997599514529").await;
    // The server restarts while the customer is about to send the receipt.
    let replica = shop.t.replica().await;
    let BotShop { t, tg, admin, .. } = shop;
    t.stop().await;
    let sent_before = u.messages().len();
    u.send_photo(picture(77), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    see(&u, &line(l, "bot-receipt-received")).await;
    // The staff alert waits for the receipt's analysis; a retry is scheduled on the app's
    // clock, which this test moves by hand.
    let end = std::time::Instant::now() + 2 * WAIT;
    while !admin
        .messages()
        .iter()
        .any(|m| m.photo.is_some() && has(m, "#R"))
    {
        assert!(std::time::Instant::now() < end, "no receipt for staff");
        replica.clock.advance(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing before the restart was answered twice.
    let menus = u
        .messages()
        .iter()
        .filter(|m| has(m, &line(l, "bot-receipt-received")))
        .count();
    assert_eq!(menus, 1);
    assert!(
        u.messages().len() <= sent_before + 2,
        "{:?}",
        u.messages().len()
    );
    let _ = tg.calls("getUpdates");
    replica.stop().await;
}

/// Customers straight into the store (10,000 sign-ups through the bot would take minutes
/// and test nothing new): Telegram id, English, no roles. Their chats are opened in the fake.
async fn many_customers(shop: &BotShop, first_tg: i64, n: i64) {
    let now = shop.t.app.now().millis();
    let mut tx = shop
        .t
        .app
        .db()
        .begin()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mrjbot_db::Conn::Sqlite(c) = tx.conn() else {
        panic!("SQLite only")
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO users (telegram_id, language, display_name, created_at, updated_at) VALUES ",
        );
        let rows: Vec<String> = chunk
            .iter()
            .map(|i| format!("({}, 'en', 'Bulk {i}', {now}, {now})", first_tg + i))
            .collect();
        sql.push_str(&rows.join(","));
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *c)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    for i in 0..n {
        shop.tg.open_chat(first_tg + i);
    }
}

/// A broadcast to 10,000 customers from the staff's Telegram: Telegram's flood control
/// (here 300 messages a second, answered with 429 and retry_after) is respected, the server
/// is replaced halfway (a second replica takes over, the first stops), and every customer
/// gets the message exactly once.
#[tokio::test]
async fn a_broadcast_to_ten_thousand_survives_a_restart_without_duplicates() {
    let Some(shop) = bot_shop(Backend::Sqlite, |c| c.broadcast_rate_per_sec = 400).await else {
        return;
    };
    let l = Lang::En;
    const N: i64 = 10_000;
    const FIRST: i64 = 8_000_000;
    many_customers(&shop, FIRST, N).await;
    shop.tg.flood_control(300);

    // Staff write the broadcast in their private chat with the bot.
    let staff = shop.tg.user(ADMIN_TG, "Boss", Some("en"));
    staff
        .send("/broadcast")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    click(&staff, &tr(l, "bot-seg-all")).await;
    see(&staff, &tr(l, "bot-broadcast-ask")).await;
    let body = "Nowruz sale: 20% off every plan until Friday!";
    staff.send(body).await.unwrap_or_else(|e| panic!("{e}"));
    see(&staff, &line(l, "bot-broadcast-confirm")).await;
    let started = std::time::Instant::now();
    click(&staff, &tr(l, "bot-btn-send")).await;
    see(&staff, &line(l, "bot-broadcast-progress")).await;

    let delivered = |tg: &FakeTelegram| {
        tg.sends()
            .iter()
            .filter(|s| s.chat_id >= FIRST && s.chat_id < FIRST + N)
            .count()
    };
    // Halfway, a second replica starts and the first one stops.
    let end = std::time::Instant::now() + Duration::from_secs(120);
    while delivered(&shop.tg) < 3_000 {
        assert!(
            std::time::Instant::now() < end,
            "the broadcast did not get going"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replica = shop.t.replica().await;
    let BotShop { t, tg, .. } = shop;
    t.stop().await;
    let at_restart = delivered(&tg);
    while delivered(&tg) < N as usize {
        assert!(
            std::time::Instant::now() < end,
            "stuck at {} of {N}",
            delivered(&tg)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sends = tg.sends();
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    for s in sends
        .iter()
        .filter(|s| s.chat_id >= FIRST && s.chat_id < FIRST + N)
    {
        *per_chat.entry(s.chat_id).or_default() += 1;
    }
    assert_eq!(per_chat.len(), N as usize, "everyone got it");
    assert!(per_chat.values().all(|n| *n == 1), "nobody got it twice");
    // Never more than Telegram allowed in any second.
    let mut times: Vec<_> = sends.iter().map(|s| s.at).collect();
    times.sort();
    let mut worst = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= Duration::from_secs(1) {
            lo += 1;
        }
        worst = worst.max(hi - lo + 1);
    }
    assert!(worst <= 300, "{worst} messages in one second");
    let refused = tg.calls("sendMessage").saturating_sub(sends.len());
    eprintln!(
        "broadcast: {N} customers in {took:.1?}, {at_restart} before the restart, busiest second {worst}, {refused} sends refused with 429"
    );
    let (_, list) = replica.get("/api/v1/broadcasts").await;
    let b = &list["items"][0];
    assert_eq!(b["sent"], N, "{b}");
    assert_eq!(b["pending"], 0, "{b}");
    replica.stop().await;
}

/// Webhook mode: Telegram posts updates to `/telegram/webhook` with the secret header;
/// nobody polls, and a request without the secret is refused.
#[tokio::test]
async fn webhook_mode_takes_updates_with_the_secret_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let tg = FakeTelegram::start(TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (url, token) = (tg.api_url().to_owned(), tg.token().to_owned());
    let Some(t) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.listen = format!("127.0.0.1:{port}");
        c.public_url = Some(format!("http://127.0.0.1:{port}"));
        c.telegram_token = Some(token);
        c.telegram_api_url = url;
        c.telegram_webhook = true;
        c.ocr = false;
    })
    .await
    else {
        return;
    };
    wait_until(|| tg.webhook().is_some(), "setWebhook").await;
    let (hook, secret) = tg.webhook().unwrap_or_default();
    assert_eq!(hook, format!("http://127.0.0.1:{port}/telegram/webhook"));
    assert!(
        secret.as_deref().is_some_and(|s| s.len() >= 32),
        "{secret:?}"
    );
    let u = tg.user(7_500_001, "Hooked", Some("ru"));
    u.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    see(&u, &line(Lang::Ru, "bot-welcome-choose-language")).await;
    click(&u, "Русский").await;
    see_button(&u, &tr(Lang::Ru, "bot-btn-buy")).await;
    assert_eq!(tg.calls("getUpdates"), 0, "nobody polls in webhook mode");
    // Without (or with a wrong) secret: refused.
    let update = json!({"update_id": 999, "message": {"message_id": 9, "date": 1, "text": "/start",
        "chat": {"id": 7_500_002, "type": "private"}, "from": {"id": 7_500_002, "is_bot": false, "first_name": "Forger"}}});
    for header in [None, Some("wrong")] {
        let mut req = t
            .http
            .post(format!("{}/telegram/webhook", t.base))
            .json(&update);
        if let Some(h) = header {
            req = req.header("x-telegram-bot-api-secret-token", h);
        }
        let r = req.send().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(tg.messages(7_500_002).is_empty());
    t.stop().await;
}

/// The seller requires channel membership: a customer who has not joined sees the join
/// screen (with the channel link) until Telegram says they are a member; staff are never
/// stopped.
#[tokio::test]
async fn customers_must_join_the_sellers_channel_when_required() {
    let Some(shop) = bot_shop(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let l = Lang::En;
    let (s, v) = shop
        .t
        .call(
            Method::PUT,
            "/api/v1/settings/shop",
            Some(&shop.t.admin_token),
            Some(json!({"required_channel": "@my_vpn_news"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = 7_600_001;
    shop.tg.set_member("@my_vpn_news", id, "left");
    let u = shop.tg.user(id, "Joiner", Some("en"));
    u.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    click(&u, "English").await;
    let gate = see(&u, &line(l, "bot-join-required")).await;
    assert!(
        gate.buttons
            .iter()
            .flatten()
            .any(|b| b.url.as_deref() == Some("https://t.me/my_vpn_news")),
        "{gate:?}"
    );
    let refused = click(&u, &tr(l, "bot-btn-joined")).await;
    assert_eq!(
        refused.as_deref(),
        Some(tr(l, "bot-not-joined-yet").as_str())
    );
    u.send("/buy").await.unwrap_or_else(|e| panic!("{e}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !u.messages()
            .iter()
            .any(|m| has(m, &tr(l, "bot-choose-location"))),
        "the catalog stays closed"
    );
    shop.tg.set_member("@my_vpn_news", id, "member");
    let thanks = click(&u, &tr(l, "bot-btn-joined")).await;
    assert_eq!(thanks.as_deref(), Some(tr(l, "bot-thanks-joined").as_str()));
    see_button(&u, &tr(l, "bot-btn-buy")).await;
    // Staff are not asked to join.
    let staff = shop.tg.user(ADMIN_TG, "Boss", Some("en"));
    staff.send("/start").await.unwrap_or_else(|e| panic!("{e}"));
    see_button(&staff, &tr(l, "bot-btn-admin")).await;
    shop.t.stop().await;
}

/// Reminders reach the customer through the bot once, with the button that acts on them.
#[tokio::test]
async fn an_expiry_reminder_arrives_once_with_a_renew_button() {
    let Some(shop) = bot_shop(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let l = Lang::En;
    let u = start_in(&shop.tg, 7_700_001, l).await;
    click(&u, &tr(l, "bot-btn-trial")).await;
    click(&u, &tr(l, "bot-btn-trial-take")).await;
    delivered_link(&shop, &u, l).await;
    // The 24-hour trial ends within a day: the 1-day reminder is due.
    for _ in 0..3 {
        shop.t
            .app
            .scan_reminders()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let fixed = line(l, "bot-remind-expiry");
    let m = see(&u, &fixed).await;
    assert!(
        m.buttons
            .iter()
            .flatten()
            .any(|b| b.text == tr(l, "bot-btn-renew")),
        "{m:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = u.messages().iter().filter(|m| has(m, &fixed)).count();
    assert_eq!(n, 1, "one reminder however often the scan runs");
    shop.t.stop().await;
}

/// Two replicas on PostgreSQL: one polls (the lease), so every update is answered once.
/// (The takeover when the polling replica stops is `a_restart_keeps_the_dialogue...`; here
/// stopping the first server would drop the test database under the replica.)
#[tokio::test]
async fn two_replicas_poll_one_at_a_time() {
    let Some(shop) = bot_shop(Backend::Postgres, |_| {}).await else {
        return;
    };
    let replica = shop.t.replica().await;
    let l = Lang::En;
    for i in 0..5 {
        let u = start_in(&shop.tg, 7_800_000 + i, l).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let welcomes = u
            .messages()
            .iter()
            .filter(|m| has(m, &line(Lang::En, "bot-welcome-choose-language")) || m.edits > 0)
            .count();
        assert_eq!(welcomes, 1, "answered once: {:?}", u.messages());
    }
    replica.stop().await;
    shop.t.stop().await;
}
