//! The shop front's services as the bot calls them (in process): Telegram customers,
//! referrals and points, free trials, the shop settings over REST, reminders with the
//! test clock, and notices reaching the right chat through a notifier that sometimes
//! says "slow down" or "blocked".

use crate::*;
use mrjbot_app::Actor;
use mrjbot_app::money::card::ReceiptUpload;
use mrjbot_app::money::{NewOrder, PayRequest, WalletAdjust};
use mrjbot_app::notify::{Notice, Notifier, NotifyError, NotifyFuture, Recipient};
use mrjbot_app::shop::TelegramProfile;
use mrjbot_domain::{Currency, ErrorCode, OrderKind, PaymentMethod};
use mrjbot_i18n::Lang;
use rstest::rstest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DAY: Duration = Duration::from_secs(86_400);
const GB: i64 = 1_000_000_000;

fn staff() -> Actor {
    Actor::system("test")
}

fn profile(id: i64, first: &str, username: Option<&str>, lang: Option<&str>) -> TelegramProfile {
    TelegramProfile {
        id,
        first_name: first.into(),
        last_name: None,
        username: username.map(str::to_owned),
        language_code: lang.map(str::to_owned),
    }
}

/// A customer who wrote to the bot, and their actor.
async fn customer(t: &TestApp, tg: i64, start: Option<&str>) -> (i64, Actor) {
    let c = t
        .app
        .telegram_customer(&profile(tg, &format!("User {tg}"), None, Some("en")), start)
        .await
        .unwrap_or_else(|e| panic!("telegram_customer: {e}"));
    let actor = t
        .app
        .actor_for_telegram(tg)
        .await
        .unwrap_or_else(|e| panic!("actor_for_telegram: {e}"))
        .unwrap_or_else(|| panic!("no actor for {tg}"));
    (c.user_id, actor)
}

/// A node in `region` (serving: enabled, not down) and a 30-day 50 GB plan sold there.
async fn node_and_plan(t: &TestApp, name: &str, region: &str) -> (i64, i64) {
    let (s, n) = t
        .post("/api/v1/nodes", json!({"name": format!("{name}-node"), "kind": "agent", "address": "10.2.0.1", "region": region}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{n}");
    let (s, p) = t
        .post(
            "/api/v1/plans",
            json!({"name": format!("{name} plan"), "duration_days": 30, "data_limit_bytes": 50 * GB, "region": region,
                   "prices": [{"currency": "IRR", "amount_minor": 1_500_000}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    (
        n["id"].as_i64().unwrap_or_default(),
        p["id"].as_i64().unwrap_or_default(),
    )
}

/// Buys the plan from the wallet (topped up by staff first) and waits for delivery.
async fn buy_and_wait(t: &TestApp, who: &Actor, user_id: i64, plan: i64) -> i64 {
    t.app
        .adjust_wallet(
            &staff(),
            user_id,
            WalletAdjust {
                amount_minor: 1_500_000,
                currency: Currency::Irr,
                note: "test credit".into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("adjust_wallet: {e}"));
    let order = t
        .app
        .create_order(
            who,
            NewOrder {
                user_id: None,
                kind: OrderKind::Purchase,
                plan_id: Some(plan),
                subscription_id: None,
                currency: Currency::Irr,
                amount_minor: None,
                addon_gib: None,
                discount_code: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create_order: {e}"));
    t.app
        .pay_order(
            who,
            order.id,
            PayRequest {
                method: PaymentMethod::Wallet,
                email: None,
                phone: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("pay_order: {e}"));
    let start = Instant::now();
    loop {
        let o = t
            .app
            .get_order(&staff(), order.id)
            .await
            .unwrap_or_else(|e| panic!("get_order: {e}"));
        if o.fulfilled_at.is_some() {
            return order.id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "order {} was not delivered",
            order.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A number from the store.
async fn count(t: &TestApp, sql: &str) -> i64 {
    let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
    let r: (i64,) = mrjbot_db::on!(c.conn(), c, D => {
        sqlx::query_as::<D, (i64,)>(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    });
    r.0
}

/// Waits until `sql` counts `expected` (the outbox worker commits after the notifier
/// answers).
async fn eventually(t: &TestApp, sql: &str, expected: i64) {
    let start = Instant::now();
    loop {
        let n = count(t, sql).await;
        if n == expected {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{sql} stayed at {n}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a statement against the store.
async fn exec(t: &TestApp, sql: &str) {
    let mut tx = t.app.db().begin().await.unwrap_or_else(|e| panic!("{e}"));
    mrjbot_db::on!(tx.conn(), c, D => {
        sqlx::query::<D>(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
}

async fn put_shop(t: &TestApp, body: Value) -> (StatusCode, Value) {
    t.call(
        Method::PUT,
        "/api/v1/settings/shop",
        Some(&t.admin_token),
        Some(body),
    )
    .await
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn telegram_customers_are_created_once(#[case] backend: Backend) {
    let t = app!(backend);
    // Ten updates of a new person at once: one user, one of the calls made it.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let app = t.app.clone();
        tasks.push(tokio::spawn(async move {
            app.telegram_customer(
                &profile(5_550_001, "Sara", Some("@Sara_K"), Some("ru-RU")),
                None,
            )
            .await
        }));
    }
    let mut made = Vec::new();
    for task in tasks {
        made.push(
            task.await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("telegram_customer: {e}")),
        );
    }
    assert!(made.iter().all(|c| c.user_id == made[0].user_id));
    assert_eq!(made.iter().filter(|c| c.is_new).count(), 1);
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM users WHERE telegram_id = 5550001").await,
        1
    );
    let c = &made[0];
    assert_eq!(
        (
            c.telegram_id,
            c.language,
            c.display_name.as_str(),
            c.disabled
        ),
        (5_550_001, Lang::Ru, "Sara", false)
    );
    // A customer like any other: the `user` role, no staff powers.
    let actor = t
        .app
        .actor_for_telegram(5_550_001)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no actor"));
    assert_eq!(actor.user_id, Some(c.user_id));
    assert_eq!(actor.roles, vec!["user".to_owned()]);
    assert!(actor.permissions.is_empty());
    assert!(
        t.app
            .actor_for_telegram(5_550_999)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_none()
    );

    // The name and @username follow Telegram; the chosen language stays.
    t.app
        .set_language(&actor, Lang::Fa)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let again = t
        .app
        .telegram_customer(
            &TelegramProfile {
                last_name: Some("Karimi".into()),
                ..profile(5_550_001, "Sara", Some("sara_new"), Some("en"))
            },
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (again.is_new, again.language, again.display_name.as_str()),
        (false, Lang::Fa, "Sara Karimi")
    );
    // Unknown languages fall back to Persian.
    let other = t
        .app
        .telegram_customer(&profile(5_550_002, "Hans", None, Some("de")), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.language, Lang::Fa);
    let bad = t
        .app
        .telegram_customer(&profile(0, "Nobody", None, None), None)
        .await;
    assert_eq!(bad.err().map(|e| e.code), Some(ErrorCode::ValidationFailed));

    // Staff find them by id, Telegram id, @username and name.
    let uid = c.user_id;
    for q in [
        uid.to_string(),
        "5550001".to_owned(),
        "tg:5550001".to_owned(),
        "@SARA_NEW".to_owned(),
        "karim".to_owned(),
    ] {
        let found = t
            .app
            .lookup_customers(&staff(), &q)
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(
            found.iter().map(|c| c.user_id).collect::<Vec<_>>(),
            vec![uid],
            "{q}"
        );
        assert_eq!(found[0].telegram_username.as_deref(), Some("sara_new"));
        assert_eq!(found[0].language, Lang::Fa);
    }
    assert!(
        t.app
            .lookup_customers(&staff(), "@nobody_here")
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty()
    );
    let denied = t.app.lookup_customers(&actor, "Sara").await;
    assert_eq!(
        denied.err().map(|e| e.code),
        Some(ErrorCode::PermissionDenied)
    );

    // Banned: the bot gets account_disabled for them; unbanned: back.
    t.app
        .set_banned(&staff(), uid, true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let banned = t.app.actor_for_telegram(5_550_001).await;
    assert_eq!(
        banned.err().map(|e| e.code),
        Some(ErrorCode::AccountDisabled)
    );
    let seen = t
        .app
        .telegram_customer(&profile(5_550_001, "Sara", None, None), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(seen.disabled);
    let denied = t.app.set_banned(&actor, other.user_id, true).await;
    assert_eq!(
        denied.err().map(|e| e.code),
        Some(ErrorCode::PermissionDenied)
    );
    t.app
        .set_banned(&staff(), uid, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(t.app.actor_for_telegram(5_550_001).await.is_ok());
    assert_eq!(
        count(
            &t,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE entity_id = {uid} AND action IN ('user.ban','user.unban')"
            )
        )
        .await,
        2
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn referrals_are_recorded_once_and_rewarded_once(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, plan) = node_and_plan(&t, "ref", "de").await;
    let (alice, alice_actor) = customer(&t, 6_000_001, None).await;
    let summary = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.code.len(), 8);
    assert_ne!(summary.code, alice.to_string());
    assert_eq!((summary.invited, summary.points), (0, 0));
    assert!(!summary.can_redeem);
    // The code is stable.
    let again = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.code, summary.code);
    let link = format!("ref_{}", summary.code);

    // Bob comes through Alice's link; Alice using her own link, Bob coming again with it,
    // and Carol with a made-up code change nothing.
    let (bob, bob_actor) = customer(&t, 6_000_002, Some(&link)).await;
    customer(&t, 6_000_001, Some(&link)).await;
    customer(&t, 6_000_002, Some(&link)).await;
    customer(&t, 6_000_003, Some("ref_aaaaaaaa")).await;
    let s = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.invited, s.rewarded, s.points), (1, 0, 0));
    assert_eq!(count(&t, "SELECT COUNT(*) FROM referrals").await, 1);

    // Bob's first delivered order rewards Alice; his second does not.
    buy_and_wait(&t, &bob_actor, bob, plan).await;
    let s = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.invited, s.rewarded, s.points), (1, 1, 10));
    assert!(s.can_redeem);
    assert_eq!(
        s.point_value.map(|m| (m.amount_minor, m.currency)),
        Some((10_000, Currency::Irr))
    );
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'referral:rewarded:%' AND payload LIKE '%referral-rewarded%'"
        )
        .await,
        1
    );
    buy_and_wait(&t, &bob_actor, bob, plan).await;
    let s = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.rewarded, s.points), (1, 10));

    // Five taps on "redeem" at once: one credit of 10 x 10,000 rials.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let app = t.app.clone();
        let a = alice_actor.clone();
        tasks.push(tokio::spawn(async move { app.redeem_points(&a).await }));
    }
    let mut credited = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(m) => credited.push(m),
            Err(e) if e.code == ErrorCode::PointsNotRedeemable => refused += 1,
            Err(e) => panic!("redeem: {e}"),
        }
    }
    assert_eq!(credited.len(), 1, "{credited:?}");
    assert_eq!(refused, 4);
    assert_eq!(
        (credited[0].amount_minor, credited[0].currency),
        (100_000, Currency::Irr)
    );
    let wallet = t
        .app
        .wallet(&staff(), alice, mrjbot_app::ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        wallet
            .balances
            .iter()
            .map(|b| (b.currency, b.amount_minor))
            .collect::<Vec<_>>(),
        vec![(Currency::Irr, 100_000)]
    );
    let s = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.points, s.can_redeem), (0, false));

    // With the programme off, a newcomer's first order rewards nobody.
    let (s, v) = put_shop(&t, json!({"referral": {"enabled": false}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (dan, dan_actor) = customer(&t, 6_000_004, Some(&link)).await;
    buy_and_wait(&t, &dan_actor, dan, plan).await;
    let s = t
        .app
        .referral_summary(&alice_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((s.invited, s.rewarded, s.points), (2, 1, 0));
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM referrals WHERE reward_status = 'void'"
        )
        .await,
        1
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn one_trial_per_customer_even_when_racing(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, actor) = customer(&t, 7_000_001, None).await;
    // No node at all: the trial stays unused.
    let none = t.app.claim_trial(&actor).await;
    assert_eq!(none.err().map(|e| e.code), Some(ErrorCode::NoServingNode));
    let (node, _) = node_and_plan(&t, "trial", "nl").await;
    let offer = t
        .app
        .trial_offer(&actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (offer.enabled, offer.used, offer.data_bytes, offer.hours),
        (true, false, 1 << 30, 24)
    );

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = t.app.clone();
        let a = actor.clone();
        tasks.push(tokio::spawn(async move { app.claim_trial(&a).await }));
    }
    let mut subs = Vec::new();
    let mut used = 0;
    for task in tasks {
        match task.await.unwrap_or_else(|e| panic!("{e}")) {
            Ok(s) => subs.push(s),
            Err(e) if e.code == ErrorCode::TrialUsed => used += 1,
            Err(e) => panic!("claim_trial: {e}"),
        }
    }
    assert_eq!((subs.len(), used), (1, 7));
    let sub = &subs[0];
    let now = t.app.now().millis();
    assert_eq!(sub.status.as_str(), "active");
    assert_eq!(sub.data_limit_bytes, Some(1 << 30));
    assert_eq!(
        sub.expires_at.map(|e| e.millis()),
        Some(now + 24 * 3_600_000)
    );
    assert!(sub.subscription_url.is_some());
    assert_eq!(sub.node_id, None);
    assert!(
        t.app
            .trial_offer(&actor)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .used
    );
    assert_eq!(count(&t, "SELECT COUNT(*) FROM trials").await, 1);

    // A trial region pins the trial to a node there; a region without nodes has none.
    let (s, v) = put_shop(&t, json!({"trial": {"region": "xx", "hours": 48}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, second) = customer(&t, 7_000_002, None).await;
    let none = t.app.claim_trial(&second).await;
    assert_eq!(none.err().map(|e| e.code), Some(ErrorCode::NoServingNode));
    let (s, v) = put_shop(&t, json!({"trial": {"region": "nl", "hours": 48}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pinned = t
        .app
        .claim_trial(&second)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pinned.node_id, Some(node));
    assert_eq!(
        pinned.expires_at.map(|e| e.millis()),
        Some(t.app.now().millis() + 48 * 3_600_000)
    );

    // Trials switched off.
    let (s, v) = put_shop(&t, json!({"trial": {"enabled": false}})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, third) = customer(&t, 7_000_003, None).await;
    let off = t.app.claim_trial(&third).await;
    assert_eq!(off.err().map(|e| e.code), Some(ErrorCode::TrialDisabled));
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn shop_settings_are_validated_and_round_trip(#[case] backend: Backend) {
    let t = app!(backend);
    let (s, d) = t.get("/api/v1/settings/shop").await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(
        d["trial"],
        json!({"enabled": true, "data_bytes": 1_073_741_824i64, "hours": 24, "region": null})
    );
    assert_eq!(
        d["referral"],
        json!({"enabled": true, "points_per_referral": 10, "point_value_minor": 10_000, "currency": "IRR"})
    );
    assert_eq!(
        d["reminders"],
        json!({"expiry_days": [3, 1], "data_percents": [80, 100]})
    );
    assert_eq!(d["user_rate_per_minute"], 30);
    let apps: Vec<&str> = d["app_guides"]
        .as_array()
        .map(|a| a.iter().filter_map(|g| g["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        apps,
        ["v2rayNG", "Hiddify", "Streisand", "v2rayN", "sing-box"]
    );

    for (body, field) in [
        (
            json!({"required_channel": "my channel"}),
            "required_channel",
        ),
        (json!({"required_channel": "@abc"}), "required_channel"),
        (
            json!({"faq": [{"question": {"en": "Why?"}, "answer": {"fa": " ", "en": ""}}]}),
            "faq[0]",
        ),
        (
            json!({"reminders": {"data_percents": [0, 80]}}),
            "reminders.data_percents",
        ),
        (
            json!({"reminders": {"data_percents": [101]}}),
            "reminders.data_percents",
        ),
        (
            json!({"reminders": {"expiry_days": [0]}}),
            "reminders.expiry_days",
        ),
        (json!({"trial": {"hours": 0}}), "trial.hours"),
        (
            json!({"referral": {"currency": "XTR"}}),
            "referral.currency",
        ),
        (
            json!({"app_guides": [{"name": "x", "platforms": "", "url": "http://x.example"}]}),
            "app_guides[0].url",
        ),
        (json!({"user_rate_per_minute": 0}), "user_rate_per_minute"),
    ] {
        let (s, v) = put_shop(&t, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {v}");
        assert!(
            v["error"]["details"]["fields"].get(field).is_some(),
            "{body} -> {v}"
        );
    }
    let (s, v) = put_shop(&t, json!({"surprise": 1})).await;
    assert!(s.is_client_error(), "{v}");

    let full = json!({
        "trial": {"enabled": true, "data_bytes": 2_147_483_648i64, "hours": 12, "region": " de "},
        "referral": {"enabled": true, "points_per_referral": 5, "point_value_minor": 20_000, "currency": "IRR"},
        "required_channel": "@my_vpn_news",
        "faq": [{"question": {"fa": "چطور وصل شوم؟", "en": "How do I connect?", "ru": ""},
                 "answer": {"fa": "لینک را در برنامه وارد کنید.", "en": "Paste the link into your app.", "ru": ""}}],
        "support_note": {"fa": "پشتیبانی: @help", "en": "Support: @help", "ru": "Поддержка: @help"},
        "reminders": {"expiry_days": [1, 7, 3, 1], "data_percents": [100, 90]},
        "app_guides": [{"name": "Hiddify", "platforms": "Android, iOS", "url": "https://github.com/hiddify/hiddify-app"}],
        "user_rate_per_minute": 20
    });
    let (s, stored) = put_shop(&t, full.clone()).await;
    assert_eq!(s, StatusCode::OK, "{stored}");
    assert_eq!(stored["trial"]["region"], "de");
    assert_eq!(
        stored["reminders"],
        json!({"expiry_days": [7, 3, 1], "data_percents": [90, 100]})
    );
    let (s, read) = t.get("/api/v1/settings/shop").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(read, stored);
    let own = t
        .app
        .shop_settings()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(own.required_channel.as_deref(), Some("@my_vpn_news"));
    assert_eq!(own.faq[0].question.get(Lang::Ru), "How do I connect?");
    assert_eq!(own.support_note.get(Lang::Ru), "Поддержка: @help");
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'settings.shop'"
        )
        .await,
        1
    );
    // A customer cannot read or change them.
    let (_, token) = t.user_with_role("shopper", "user").await;
    let (s, _) = t
        .call(Method::GET, "/api/v1/settings/shop", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn reminders_go_out_once_per_threshold(#[case] backend: Backend) {
    let mut t = app!(backend);
    let (_, plan) = node_and_plan(&t, "remind", "de").await;
    let (uid, _) = customer(&t, 8_000_001, None).await;
    let (s, sub) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": uid, "plan_id": plan}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    let sid = sub["id"].as_i64().unwrap_or_default();
    // A customer without Telegram gets no reminders.
    let (_, web) = t
        .post("/api/v1/users", json!({"username": "webonly"}))
        .await;
    let (s, v) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": web["id"], "plan_id": plan}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let expiry = "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'remind:expiry:%'";
    let data = "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'remind:data:%'";

    let scan = |t: &TestApp| {
        let app = t.app.clone();
        async move {
            app.scan_reminders()
                .await
                .unwrap_or_else(|e| panic!("scan_reminders: {e}"))
        }
    };
    scan(&t).await;
    assert_eq!((count(&t, expiry).await, count(&t, data).await), (0, 0));

    // Three days before the end: one reminder; scanning again adds none.
    t.travel(DAY * 27).await;
    scan(&t).await;
    assert_eq!(count(&t, expiry).await, 1);
    assert_eq!(scan(&t).await, 0);
    assert_eq!(count(&t, expiry).await, 1);
    assert_eq!(
        count(
            &t,
            &format!("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'remind:expiry:{sid}:%:3'")
        )
        .await,
        1
    );
    // One day before: another one.
    t.travel(DAY * 2).await;
    scan(&t).await;
    assert_eq!(count(&t, expiry).await, 2);
    assert_eq!(scan(&t).await, 0);

    // 80% of the data: one warning; 100%: one more.
    exec(
        &t,
        &format!(
            "UPDATE subscriptions SET used_bytes = {} WHERE id = {sid}",
            40 * GB
        ),
    )
    .await;
    scan(&t).await;
    assert_eq!(count(&t, data).await, 1);
    assert_eq!(scan(&t).await, 0);
    exec(
        &t,
        &format!(
            "UPDATE subscriptions SET used_bytes = {} WHERE id = {sid}",
            50 * GB
        ),
    )
    .await;
    scan(&t).await;
    assert_eq!(count(&t, data).await, 2);
    assert_eq!(scan(&t).await, 0);

    // A renewal moves the end: the next period is reminded again.
    let (s, v) = t
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{sid}/renew"),
            Some(&t.admin_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    t.travel(DAY * 28).await;
    scan(&t).await;
    assert_eq!(count(&t, expiry).await, 3);
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM outbox WHERE payload LIKE '%expiry_reminder%' AND payload LIKE '%\"to\":\"customer\"%'"
        )
        .await,
        3
    );
    t.stop().await;
}

/// What the test notifier answered.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Delivered,
    SlowDown,
    Blocked,
}

/// A notifier that records every call; the first call to `slow_chat` is answered
/// "retry after 2 s", every call to `blocked_chat` "blocked".
struct Recorder {
    calls: Mutex<Vec<(Recipient, Notice, Answer)>>,
    slow_chat: i64,
    blocked_chat: i64,
}

impl Notifier for Recorder {
    fn notify<'a>(&'a self, to: &'a Recipient, notice: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async move {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let answer = if to.chat_id == self.blocked_chat {
                Answer::Blocked
            } else if to.chat_id == self.slow_chat
                && !calls.iter().any(|(r, _, _)| r.chat_id == self.slow_chat)
            {
                Answer::SlowDown
            } else {
                Answer::Delivered
            };
            calls.push((to.clone(), notice.clone(), answer.clone()));
            match answer {
                Answer::Delivered => Ok(()),
                Answer::SlowDown => Err(NotifyError::RetryAfter(Duration::from_secs(2))),
                Answer::Blocked => Err(NotifyError::Blocked),
            }
        })
    }
}

impl Recorder {
    fn calls(&self) -> Vec<(Recipient, Notice, Answer)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[(Recipient, Notice, Answer)]) -> bool) {
        let start = Instant::now();
        loop {
            let calls = self.calls();
            if done(&calls) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what} did not happen; calls: {calls:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn notices_reach_the_right_chat_through_the_notifier(#[case] backend: Backend) {
    const STAFF_CHAT: i64 = -100_777;
    let t = app!(backend, |c| {
        c.ocr = false;
        c.telegram_admin_chat = Some(STAFF_CHAT);
        c.telegram_admin_lang = "en".into();
    });
    assert_eq!(t.app.staff_chat(), Some((STAFF_CHAT, Lang::En)));
    let recorder = Arc::new(Recorder {
        calls: Mutex::new(Vec::new()),
        slow_chat: 9_000_001,
        blocked_chat: 9_000_002,
    });
    t.app.set_notifier(recorder.clone());
    let (_, plan) = node_and_plan(&t, "notify", "de").await;
    let (carol, carol_actor) = customer(&t, 9_000_001, None).await;
    let (dave, dave_actor) = customer(&t, 9_000_002, None).await;
    t.app
        .set_language(&dave_actor, Lang::Ru)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Trials end within a day: both get an expiry reminder at once.
    let carol_trial = t
        .app
        .claim_trial(&carol_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dave_trial = t
        .app
        .claim_trial(&dave_actor)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    t.app
        .scan_reminders()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    recorder
        .wait_for("the first reminder calls", |c| {
            c.iter()
                .any(|(r, _, a)| r.chat_id == 9_000_001 && *a == Answer::SlowDown)
                && c.iter()
                    .any(|(r, _, a)| r.chat_id == 9_000_002 && *a == Answer::Blocked)
        })
        .await;
    let calls = recorder.calls();
    let (to_dave, notice, _) = calls
        .iter()
        .find(|(r, _, _)| r.chat_id == 9_000_002)
        .cloned()
        .unwrap_or_else(|| panic!("no call for Dave"));
    assert_eq!(
        to_dave,
        Recipient {
            chat_id: 9_000_002,
            lang: Lang::Ru,
            user_id: Some(dave)
        }
    );
    assert_eq!(
        notice,
        Notice::ExpiryReminder {
            subscription_id: dave_trial.id,
            days_left: 1
        }
    );
    // Blocked: done, never asked again. Rate limited: waits for the time it was told.
    let reminder_of = |sid: i64| {
        format!("SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'remind:expiry:{sid}:%'")
    };
    let done = |sid: i64| format!("{} AND status = 'done'", reminder_of(sid));
    eventually(&t, &done(dave_trial.id), 1).await;
    eventually(
        &t,
        &format!(
            "{} AND status = 'pending' AND last_error LIKE 'rate limited%'",
            reminder_of(carol_trial.id)
        ),
        1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let to_carol = |c: &[(Recipient, Notice, Answer)]| {
        c.iter().filter(|(r, _, _)| r.chat_id == 9_000_001).count()
    };
    assert_eq!(to_carol(&recorder.calls()), 1, "retried before its time");
    t.clock.advance(Duration::from_secs(3));
    recorder
        .wait_for("Carol's reminder after the wait", |c| {
            c.iter().any(|(r, n, a)| {
                r.chat_id == 9_000_001
                    && *a == Answer::Delivered
                    && *n
                        == Notice::ExpiryReminder {
                            subscription_id: carol_trial.id,
                            days_left: 1,
                        }
            })
        })
        .await;
    eventually(&t, &done(carol_trial.id), 1).await;

    // A card receipt: the staff chat is asked to review it; approval tells staff the
    // order is paid and Carol that her payment is confirmed.
    let (s, card) = t
        .post(
            "/api/v1/cards",
            json!({"number": "6037-9975-9951-4529", "owner_name": "Ali Rezaei"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{card}");
    let order = t
        .app
        .create_order(
            &carol_actor,
            NewOrder {
                user_id: None,
                kind: OrderKind::Purchase,
                plan_id: Some(plan),
                subscription_id: None,
                currency: Currency::Irr,
                amount_minor: None,
                addon_gib: None,
                discount_code: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let payment = t
        .app
        .pay_order(
            &carol_actor,
            order.id,
            PayRequest {
                method: PaymentMethod::Card,
                email: None,
                phone: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    t.app
        .submit_receipt(
            &carol_actor,
            payment.id,
            ReceiptUpload {
                bytes: crate::money::picture(4242),
                telegram_file_id: None,
                telegram_file_unique_id: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let staff_chat = Recipient {
        chat_id: STAFF_CHAT,
        lang: Lang::En,
        user_id: None,
    };
    recorder
        .wait_for("the receipt alert", |c| {
            c.iter().any(|(r, n, _)| {
                *r == staff_chat
                    && *n
                        == Notice::ReceiptForReview {
                            payment_id: payment.id,
                        }
            })
        })
        .await;
    t.app
        .approve_payment(&staff(), payment.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    recorder
        .wait_for("the paid alert and the customer's confirmation", |c| {
            c.iter().any(|(r, n, _)| {
                *r == staff_chat
                    && *n
                        == Notice::OrderPaid {
                            order_id: order.id,
                            payment_id: payment.id,
                        }
            }) && c.iter().any(|(r, n, a)| {
                r.user_id == Some(carol)
                    && r.lang == Lang::En
                    && *a == Answer::Delivered
                    && matches!(n, Notice::Text { key, .. } if key == "pay-approved")
            })
        })
        .await;
    // Each alert once, and Dave was never asked again.
    let calls = recorder.calls();
    let alerts: HashMap<&str, usize> = calls.iter().filter(|(r, _, _)| *r == staff_chat).fold(
        HashMap::new(),
        |mut m, (_, n, _)| {
            let k = match n {
                Notice::ReceiptForReview { .. } => "receipt",
                Notice::OrderPaid { .. } => "paid",
                _ => "other",
            };
            *m.entry(k).or_default() += 1;
            m
        },
    );
    assert_eq!(alerts.get("receipt"), Some(&1), "{calls:#?}");
    assert_eq!(alerts.get("paid"), Some(&1), "{calls:#?}");
    assert_eq!(
        calls
            .iter()
            .filter(|(r, _, _)| r.chat_id == 9_000_002)
            .count(),
        1
    );
    t.stop().await;
}
