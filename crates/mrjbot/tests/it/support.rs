//! Support tickets and broadcasts end to end: a ticket thread between a customer and
//! staff with the notices each side gets, who can see what, the limits; broadcasts to
//! segments sent through a test notifier at most once per customer, across rate limits,
//! blocks, a sender killed midway, two senders at once and a cancel.

use crate::*;
use mrjbot_app::Actor;
use mrjbot_app::notify::{Notice, Notifier, NotifyError, NotifyFuture, Recipient};
use mrjbot_app::support::broadcasts::{BroadcastStatus, NewBroadcast, Segment};
use mrjbot_i18n::Lang;
use rstest::rstest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STAFF_CHAT: i64 = -100_777;

type Rule = Box<dyn Fn(usize, &Recipient) -> Result<(), NotifyError> + Send + Sync>;

/// One call the notifier received, with what it answered.
#[derive(Debug, Clone)]
struct Call {
    to: Recipient,
    notice: Notice,
    result: Result<(), NotifyError>,
}

/// A notifier that records every call and answers by a rule (call index, recipient).
struct Collector {
    calls: Mutex<Vec<Call>>,
    rule: Rule,
}

impl Collector {
    fn new(
        rule: impl Fn(usize, &Recipient) -> Result<(), NotifyError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            calls: Mutex::new(Vec::new()),
            rule: Box::new(rule),
        })
    }

    fn ok() -> Arc<Self> {
        Self::new(|_, _| Ok(()))
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `done` holds for the calls so far (or panics after `within`).
    async fn wait(&self, within: Duration, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let start = Instant::now();
        loop {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            assert!(
                start.elapsed() < within,
                "the notifier did not get the expected calls in {within:?}: {calls:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Notifier for Collector {
    fn notify<'a>(&'a self, to: &'a Recipient, notice: &'a Notice) -> NotifyFuture<'a> {
        Box::pin(async move {
            let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
            let result = (self.rule)(calls.len(), to);
            calls.push(Call {
                to: to.clone(),
                notice: notice.clone(),
                result: result.clone(),
            });
            result
        })
    }
}

/// A customer with a password, a Telegram chat and a language; returns (id, token).
async fn customer(t: &TestApp, name: &str, telegram_id: i64, lang: &str) -> (i64, String) {
    let (s, u) = t
        .post(
            "/api/v1/users",
            json!({"username": name, "password": "test-password-1", "telegram_id": telegram_id, "language": lang, "roles": ["user"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let token = t
        .login(name, "test-password-1")
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    (u["id"].as_i64().unwrap_or_default(), token)
}

async fn call(
    t: &TestApp,
    token: &str,
    m: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    t.call(m, path, Some(token), body).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ticket_thread_between_customer_and_staff(#[case] backend: Backend) {
    let t = app!(backend);
    let notes = Collector::ok();
    t.app.set_notifier(notes.clone());
    t.app.set_staff_chat(STAFF_CHAT, Lang::En);
    let (alice, alice_t) = customer(&t, "alice", 5_001, "ru").await;
    let (_, bob_t) = customer(&t, "bob", 5_002, "en").await;
    let (agent, agent_t) = t.user_with_role("agent", "support").await;

    // Alice asks; the staff chat hears of it.
    let (s, th) = call(
        &t,
        &alice_t,
        Method::POST,
        "/api/v1/tickets",
        Some(json!({"subject": "  No internet  ", "body": "The link stopped working."})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{th}");
    let id = th["ticket"]["id"].as_i64().unwrap_or_default();
    assert_eq!(th["ticket"]["subject"], "No internet");
    assert_eq!(th["ticket"]["status"], "open");
    assert_eq!(th["ticket"]["user_id"], alice);
    let first = th["messages"][0]["id"].as_i64().unwrap_or_default();
    assert_eq!(th["messages"][0]["from_staff"], false);
    let calls = notes.wait(Duration::from_secs(10), |c| !c.is_empty()).await;
    assert_eq!(
        calls[0].to,
        Recipient {
            chat_id: STAFF_CHAT,
            lang: Lang::En,
            user_id: None
        }
    );
    assert_eq!(
        calls[0].notice,
        Notice::TicketForStaff {
            ticket_id: id,
            message_id: first
        }
    );

    // Bob sees nothing of it, whatever the door.
    let path = format!("/api/v1/tickets/{id}");
    for (m, p, body) in [
        (Method::GET, path.clone(), None),
        (
            Method::POST,
            format!("{path}/messages"),
            Some(json!({"body": "me too"})),
        ),
        (Method::POST, format!("{path}/close"), None),
    ] {
        let (s, v) = call(&t, &bob_t, m, &p, body).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::NOT_FOUND, "ticket_not_found"),
            "{p}"
        );
    }
    let (_, v) = call(
        &t,
        &bob_t,
        Method::GET,
        &format!("/api/v1/tickets?user_id={alice}"),
        None,
    )
    .await;
    assert_eq!(v["total"], 0, "{v}");

    // Support answers; Alice is told in Russian in her own chat.
    let (s, ans) = call(
        &t,
        &agent_t,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"body": "Please update the subscription in your app."})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{ans}");
    assert_eq!(ans["from_staff"], true);
    assert_eq!(ans["author_id"], agent);
    let answer = ans["id"].as_i64().unwrap_or_default();
    let calls = notes.wait(Duration::from_secs(10), |c| c.len() >= 2).await;
    assert_eq!(
        calls[1].to,
        Recipient {
            chat_id: 5_001,
            lang: Lang::Ru,
            user_id: Some(alice)
        }
    );
    assert_eq!(
        calls[1].notice,
        Notice::TicketAnswer {
            ticket_id: id,
            message_id: answer
        }
    );
    let (_, v) = call(&t, &alice_t, Method::GET, &path, None).await;
    assert_eq!(v["ticket"]["status"], "answered");

    // Alice writes back (an attachment alone is a message): open again, staff told.
    let (s, m) = call(
        &t,
        &alice_t,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"attachment_file_id": "AgACAgIAAxkBAAIB-screenshot_1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    assert_eq!(m["body"], "");
    let calls = notes.wait(Duration::from_secs(10), |c| c.len() >= 3).await;
    assert_eq!(calls[2].to.chat_id, STAFF_CHAT);
    let (s, v) = call(&t, &alice_t, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["ticket"]["status"], "open");
    let staff_flags: Vec<bool> = v["messages"]
        .as_array()
        .map(|a| a.iter().map(|m| m["from_staff"] == true).collect())
        .unwrap_or_default();
    assert_eq!(staff_flags, [false, true, false], "oldest first: {v}");

    // Staff lists by status; a customer lists only their own.
    let (_, v) = call(
        &t,
        &agent_t,
        Method::GET,
        "/api/v1/tickets?status=open",
        None,
    )
    .await;
    assert_eq!(
        (v["total"].as_i64(), v["items"][0]["id"].as_i64()),
        (Some(1), Some(id)),
        "{v}"
    );
    let (_, v) = call(&t, &bob_t, Method::GET, "/api/v1/tickets", None).await;
    assert_eq!(v["total"], 0);

    // Closed: the customer cannot write any more, staff can (it reopens as answered).
    let (s, v) = call(&t, &alice_t, Method::POST, &format!("{path}/close"), None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{v}"
    );
    assert!(v["closed_at"].is_string());
    let (s, v) = call(&t, &alice_t, Method::POST, &format!("{path}/close"), None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "closing twice is fine"
    );
    let (s, v) = call(
        &t,
        &alice_t,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"body": "one more thing"})),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "ticket_closed"),
        "{v}"
    );
    let (s, _) = call(
        &t,
        &agent_t,
        Method::POST,
        &format!("{path}/messages"),
        Some(json!({"body": "Did it help?"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = call(&t, &alice_t, Method::GET, &path, None).await;
    assert_eq!(v["ticket"]["status"], "answered");
    assert!(v["ticket"]["closed_at"].is_null());
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(4));

    // A customer cannot answer as staff by writing in someone else's ticket, and a vip
    // (no ticket permissions) is a customer too.
    let (_, vip_t) = t.user_with_role("vip-1", "vip").await;
    let (s, _) = call(&t, &vip_t, Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Staff actions are audited.
    let (_, audit) = t.get("/api/v1/audit-log?action=ticket.answer").await;
    assert!(audit["total"].as_i64().unwrap_or_default() >= 2, "{audit}");
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ticket_limits_and_validation(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, tok) = customer(&t, "carol", 6_001, "fa").await;
    let open = |body: Value| {
        let t = &t;
        let tok = tok.clone();
        async move { call(t, &tok, Method::POST, "/api/v1/tickets", Some(body)).await }
    };
    let long = "x".repeat(4001);
    for (body, field) in [
        (json!({"subject": "", "body": "b"}), "subject"),
        (json!({"subject": "   ", "body": "b"}), "subject"),
        (json!({"subject": "s".repeat(121), "body": "b"}), "subject"),
        (json!({"subject": "s", "body": ""}), "body"),
        (json!({"subject": "s", "body": "  \n "}), "body"),
        (json!({"subject": "s", "body": long}), "body"),
        (
            json!({"subject": "s", "body": "b", "attachment_file_id": "not a file id"}),
            "attachment_file_id",
        ),
        (json!({"subject": "s", "body": "b", "extra": 1}), "extra"),
        (json!({"body": "b"}), "subject"),
    ] {
        let (s, v) = open(body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {v}");
        assert!(
            v["error"]["details"]["fields"][field].is_string(),
            "{body} -> {v}"
        );
    }
    // The limits are inclusive: 120 and 4000 characters (Persian letters count as one).
    let (s, v) = open(json!({"subject": "ش".repeat(120), "body": "ب".repeat(4000)})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let first = v["ticket"]["id"].as_i64().unwrap_or_default();
    for i in 2..=3 {
        let (s, v) = open(json!({"subject": format!("question {i}"), "body": "?"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, v) = open(json!({"subject": "question 4", "body": "?"})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "too_many_tickets"),
        "{v}"
    );
    // Closing one makes room; staff answering keeps it counted (it is not closed).
    let (s, _) = call(
        &t,
        &tok,
        Method::POST,
        &format!("/api/v1/tickets/{first}/close"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = open(json!({"subject": "question 4", "body": "?"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = t
        .post(
            &format!("/api/v1/tickets/{first}/messages"),
            json!({"body": "reopened by staff"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = open(json!({"subject": "question 5", "body": "?"})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "too_many_tickets"),
        "{v}"
    );

    // Messages: the same text rules; unknown ticket is 404; bad paging is 422.
    let (s, v) = t
        .post(
            &format!("/api/v1/tickets/{first}/messages"),
            json!({"body": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = t
        .post("/api/v1/tickets/999999/messages", json!({"body": "hi"}))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "ticket_not_found"));
    let (s, _) = t.get("/api/v1/tickets?sort=subject").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.get("/api/v1/tickets?status=pending").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, v) = t
        .get("/api/v1/tickets?sort=last_message_at&order=desc")
        .await;
    assert_eq!((s, v["total"].as_i64()), (StatusCode::OK, Some(4)), "{v}");
    // Without a staff chat or a notifier the notices are recorded and done, not stuck.
    let outbox = wait_outbox_done(&t, "ticket_notice").await;
    assert!(outbox >= 5, "{outbox}");
    t.stop().await;
}

/// Waits until no `kind` item is pending; returns how many are done.
async fn wait_outbox_done(t: &TestApp, kind: &str) -> i64 {
    let start = Instant::now();
    loop {
        let counts = {
            let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
            mrjbot_db::money::outbox_counts(c.conn())
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let of = |st: &str| {
            counts
                .iter()
                .filter(|(k, s, _)| k == kind && s == st)
                .map(|c| c.2)
                .sum::<i64>()
        };
        if of("pending") == 0 {
            assert_eq!(of("failed"), 0, "{counts:?}");
            return of("done");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "outbox still busy: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ticket_notice_waits_as_long_as_telegram_asks(#[case] backend: Backend) {
    let mut t = app!(backend);
    // The first try is rate limited for a minute; the customer (5_003) blocked the bot.
    let notes = Collector::new(|i, to| match (i, to.chat_id) {
        (0, _) => Err(NotifyError::RetryAfter(Duration::from_secs(60))),
        (_, 5_003) => Err(NotifyError::Blocked),
        _ => Ok(()),
    });
    t.app.set_notifier(notes.clone());
    t.app.set_staff_chat(STAFF_CHAT, Lang::Fa);
    let (_, tok) = customer(&t, "dave", 5_003, "en").await;
    let (s, th) = call(
        &t,
        &tok,
        Method::POST,
        "/api/v1/tickets",
        Some(json!({"subject": "s", "body": "b"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = th["ticket"]["id"].as_i64().unwrap_or_default();
    notes.wait(Duration::from_secs(10), |c| c.len() == 1).await;
    // Not before the minute is over (the clock is the app's)...
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(notes.calls().len(), 1);
    t.travel(Duration::from_secs(61)).await;
    let calls = notes.wait(Duration::from_secs(10), |c| c.len() == 2).await;
    assert_eq!(calls[1].result, Ok(()));
    assert_eq!(calls[1].notice, calls[0].notice);
    // ...and a blocked customer is not tried again.
    let (s, _) = t
        .post(
            &format!("/api/v1/tickets/{id}/messages"),
            json!({"body": "answer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let calls = notes.wait(Duration::from_secs(10), |c| c.len() == 3).await;
    assert_eq!(calls[2].result, Err(NotifyError::Blocked));
    assert_eq!(wait_outbox_done(&t, "ticket_notice").await, 2);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(notes.calls().len(), 3);
    t.stop().await;
}

// ---------------------------------------------------------------------------------------
// Broadcasts

/// Inserts `n` customers with chats `first..first+n` directly (fast); returns their ids.
async fn many_customers(t: &TestApp, first: i64, n: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    let now = t.app.now().millis();
    let mut tx = t.app.db().begin().await.unwrap_or_else(|e| panic!("{e}"));
    for tg in first..first + n {
        let (id,): (i64,) = mrjbot_db::on!(tx.conn(), c, D => {
            sqlx::query_as::<D, (i64,)>("INSERT INTO users (telegram_id, language, status, created_at, updated_at) \
                VALUES ($1, 'en', 'active', $2, $2) RETURNING id")
                .bind(tg).bind(now).fetch_one(&mut *c).await.unwrap_or_else(|e| panic!("{e}"))
        });
        ids.push(id);
    }
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    ids
}

async fn exec(t: &TestApp, sql: &str, args: &[mrjbot_db::Val]) {
    let mut tx = t.app.db().begin().await.unwrap_or_else(|e| panic!("{e}"));
    mrjbot_db::on!(tx.conn(), c, D => {
        mrjbot_db::bind_all!(sqlx::query::<D>(sqlx::AssertSqlSafe(sql)), args)
            .execute(&mut *c).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
}

/// Rows per delivery status, straight from the store.
async fn delivery_counts(t: &TestApp, id: i64) -> HashMap<String, i64> {
    let mut c = t.app.db().read().await.unwrap_or_else(|e| panic!("{e}"));
    mrjbot_db::support::delivery_counts(c.conn(), id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .collect()
}

fn broadcast_of(call: &Call) -> Option<i64> {
    match &call.notice {
        Notice::Broadcast { broadcast_id, .. } => Some(*broadcast_id),
        _ => None,
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn broadcast_segments_count_customers_only(#[case] backend: Backend) {
    let t = app!(backend, |c| c.broadcast_sender = false);
    let (_, plan) = t
        .post("/api/v1/plans", json!({"name": "p", "duration_days": 30}))
        .await;
    let plan = plan["id"].as_i64().unwrap_or_default();
    let user = |name: &'static str, tg: Option<i64>, role: &'static str| {
        let t = &t;
        async move {
            let mut body = json!({"username": name, "roles": [role]});
            if let Some(tg) = tg {
                body["telegram_id"] = json!(tg);
            }
            let (s, v) = t.post("/api/v1/users", body).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_i64().unwrap_or_default()
        }
    };
    let sub = |u: i64, status: &'static str| {
        let t = &t;
        async move {
            let (s, v) = t
                .post(
                    "/api/v1/subscriptions",
                    json!({"user_id": u, "plan_id": plan}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            let id = v["id"].as_i64().unwrap_or_default();
            exec(
                t,
                "UPDATE subscriptions SET status = $1 WHERE id = $2",
                &[status.into(), id.into()],
            )
            .await;
        }
    };
    let now = t.app.now().millis();
    let paid = "INSERT INTO orders (user_id, kind, amount_minor, currency, status, paid_at, created_at, updated_at) \
                VALUES ($1, 'topup', 1000, 'IRR', 'paid', $2, $2, $2)";
    let unpaid = "INSERT INTO orders (user_id, kind, amount_minor, currency, status, created_at, updated_at) \
                  VALUES ($1, 'topup', 1000, 'IRR', 'created', $2, $2)";

    let a1 = user("cust-a1", Some(1), "user").await;
    sub(a1, "active").await;
    let a2 = user("cust-a2", Some(2), "user").await;
    sub(a2, "on_hold").await;
    let e1 = user("cust-e1", Some(3), "user").await;
    sub(e1, "expired").await;
    exec(&t, paid, &[e1.into(), now.into()]).await;
    let e2 = user("cust-e2", Some(4), "user").await;
    sub(e2, "disabled").await;
    sub(e2, "limited").await;
    let _n1 = user("cust-n1", Some(5), "user").await;
    let n2 = user("cust-n2", Some(6), "user").await;
    exec(&t, unpaid, &[n2.into(), now.into()]).await;
    let p1 = user("cust-p1", Some(7), "user").await;
    exec(&t, paid, &[p1.into(), now.into()]).await;
    let _vip = user("cust-vip", Some(8), "vip").await;
    // A support role that ran out makes its holder a customer again.
    let ex_staff = user("cust-exstaff", Some(9), "support").await;
    exec(
        &t,
        "UPDATE user_roles SET expires_at = $1 WHERE user_id = $2",
        &[(now - 1).into(), ex_staff.into()],
    )
    .await;
    // Not customers: staff (built-in or custom role with a permission), disabled, no chat.
    let staff = user("cust-staff", Some(10), "support").await;
    sub(staff, "active").await;
    let (s, _) = t
        .post(
            "/api/v1/roles",
            json!({"name": "helper", "permissions": ["users.read"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let helper = user("cust-helper", Some(11), "user").await;
    let (s, _) = t
        .post(
            &format!("/api/v1/users/{helper}/roles"),
            json!({"role": "helper"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    sub(helper, "active").await;
    let off = user("cust-off", Some(12), "user").await;
    sub(off, "active").await;
    let (s, _) = t
        .patch(
            &format!("/api/v1/users/{off}"),
            json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let no_chat = user("cust-nochat", None, "user").await;
    sub(no_chat, "active").await;

    for (segment, n) in [
        ("all", 9),
        ("active", 2),
        ("expired", 2),
        ("no_purchase", 7),
    ] {
        let (s, v) = t
            .get(&format!("/api/v1/broadcasts/preview?segment={segment}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            (v["segment"].as_str(), v["recipients"].as_i64()),
            (Some(segment), Some(n)),
            "{segment}"
        );
    }
    // The broadcast takes exactly the previewed customers.
    let (s, b) = t
        .post(
            "/api/v1/broadcasts",
            json!({"segment": "expired", "body": "We miss you: 20% off today"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        (
            b["status"].as_str(),
            b["total"].as_i64(),
            b["pending"].as_i64()
        ),
        (Some("sending"), Some(2), Some(2))
    );
    assert_eq!(b["segment"], "expired");
    let notes = Collector::ok();
    t.app.set_notifier(notes.clone());
    assert_eq!(
        t.app
            .broadcast_step(100)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        2
    );
    let mut chats: Vec<i64> = notes.calls().iter().map(|c| c.to.chat_id).collect();
    chats.sort_unstable();
    assert_eq!(chats, [3, 4]);
    let (_, b) = t.get(&format!("/api/v1/broadcasts/{}", b["id"])).await;
    assert_eq!(
        (
            b["status"].as_str(),
            b["sent"].as_i64(),
            b["pending"].as_i64()
        ),
        (Some("done"), Some(2), Some(0)),
        "{b}"
    );
    assert!(b["finished_at"].is_string());
    // A segment with nobody in it finishes at once.
    let (_, p) = t.get("/api/v1/broadcasts/preview?segment=active").await;
    assert_eq!(p["recipients"], 2);
    exec(
        &t,
        "UPDATE subscriptions SET status = 'expired' WHERE user_id IN ($1, $2)",
        &[a1.into(), a2.into()],
    )
    .await;
    let (s, b) = t
        .post(
            "/api/v1/broadcasts",
            json!({"segment": "active", "body": "hi"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (b["status"].as_str(), b["total"].as_i64()),
        (Some("done"), Some(0)),
        "{b}"
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn broadcast_reaches_each_customer_once(#[case] backend: Backend) {
    // The sender is stepped by hand; the rate is high so the test is quick.
    let t = app!(backend, |c| {
        c.broadcast_sender = false;
        c.broadcast_rate_per_sec = 10_000;
    });
    const N: i64 = 2_000;
    const FIRST_CHAT: i64 = 1_000_000;
    let ids = many_customers(&t, FIRST_CHAT, N).await;
    // Every tenth customer blocked the bot; Telegram asks once to slow down (call 300).
    let rule = |i: usize, to: &Recipient| {
        if i == 300 {
            Err(NotifyError::RetryAfter(Duration::from_millis(200)))
        } else if (to.chat_id - FIRST_CHAT) % 10 == 7 {
            Err(NotifyError::Blocked)
        } else {
            Ok(())
        }
    };
    let notes = Collector::new(rule);
    t.app.set_notifier(notes.clone());
    let admin = Actor::system("test");
    let b = t
        .app
        .create_broadcast(
            &admin,
            NewBroadcast {
                segment: Segment::All,
                body: "Happy Nowruz! 🌸".into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (b.total, b.pending, b.status),
        (N, N, BroadcastStatus::Sending)
    );

    // Part of it, then this sender stops.
    let started = Instant::now();
    let done = t
        .app
        .broadcast_step(700)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the sender paused as asked"
    );
    assert_eq!(done, 699, "700 tries, one of them rate limited");
    let v = t
        .app
        .get_broadcast(&admin, b.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v.sent + v.failed + v.blocked, 699);
    assert_eq!(v.pending, N - 699);
    assert_eq!(v.blocked, 70, "{v:?}");

    // Another process takes over; it is killed in the middle of a step...
    let r = t.replica().await;
    r.app.set_notifier(notes.clone());
    let killed = tokio::spawn({
        let app = r.app.clone();
        async move { app.broadcast_step(N as usize).await }
    });
    notes
        .wait(Duration::from_secs(60), |c| c.len() >= 1_200)
        .await;
    killed.abort();
    let _ = killed.await;
    // ...and then both processes send the rest at the same time.
    let (x, y) = tokio::join!(
        t.app.broadcast_step(N as usize),
        r.app.broadcast_step(N as usize)
    );
    x.unwrap_or_else(|e| panic!("{e}"));
    y.unwrap_or_else(|e| panic!("{e}"));

    let calls = notes.calls();
    let mut per_chat: HashMap<i64, (usize, usize)> = HashMap::new();
    for c in &calls {
        assert_eq!(broadcast_of(c), Some(b.id));
        assert_eq!(c.to.user_id.map(|u| ids.contains(&u)), Some(true));
        let e = per_chat.entry(c.to.chat_id).or_default();
        match c.result {
            Err(NotifyError::RetryAfter(_)) => e.1 += 1,
            _ => e.0 += 1,
        }
    }
    let twice: Vec<_> = per_chat.iter().filter(|(_, n)| n.0 > 1).collect();
    assert!(twice.is_empty(), "sent twice: {twice:?}");
    let retried: Vec<_> = per_chat.iter().filter(|(_, n)| n.1 > 0).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(
        retried[0].1.0, 1,
        "the rate limited message went out afterwards"
    );
    // A kill can lose at most the one message being sent at that moment.
    let reached = per_chat.values().filter(|n| n.0 == 1).count() as i64;
    assert!(reached >= N - 1, "{reached} of {N} tried");

    let v = t
        .app
        .get_broadcast(&admin, b.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (v.status, v.pending, v.total),
        (BroadcastStatus::Done, 0, N),
        "{v:?}"
    );
    assert!(v.finished_at.is_some());
    let rows = delivery_counts(&t, b.id).await;
    let row = |s: &str| rows.get(s).copied().unwrap_or(0);
    assert_eq!(
        (v.sent, v.failed, v.blocked),
        (row("sent"), row("failed"), row("blocked")),
        "counters match the rows"
    );
    assert_eq!(row("pending"), 0);
    assert!((199..=200).contains(&v.blocked), "{v:?}");
    let delivered = calls.iter().filter(|c| c.result.is_ok()).count() as i64;
    assert!(
        (0..=1).contains(&(v.sent - delivered)),
        "sent {} vs delivered {delivered}",
        v.sent
    );
    assert_eq!(v.sent + v.blocked + v.failed, N);
    // Nothing left to do.
    assert_eq!(
        t.app
            .broadcast_step(100)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
        0
    );
    r.stop().await;
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn broadcast_sender_paces_and_cancel_stops_it(#[case] backend: Backend) {
    // The background sender at 40 messages a second.
    let t = app!(backend, |c| c.broadcast_rate_per_sec = 40);
    many_customers(&t, 2_000_000, 20).await;
    let notes = Collector::new(|_, to| {
        if to.chat_id == 2_000_003 {
            Err(NotifyError::Never("chat not found".into()))
        } else {
            Ok(())
        }
    });
    t.app.set_notifier(notes.clone());
    let started = Instant::now();
    let (s, b) = t
        .post(
            "/api/v1/broadcasts",
            json!({"segment": "no_purchase", "body": "New servers in Germany"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let path = format!("/api/v1/broadcasts/{}", b["id"]);
    let v = crate::money::wait_for(&t, &path, Duration::from_secs(20), |v| {
        v["status"] == "done"
    })
    .await;
    // 20 messages at 40/s: the last leaves at least 19 gaps of 25 ms after the first.
    assert!(
        started.elapsed() >= Duration::from_millis(19 * 25),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (
            v["sent"].as_i64(),
            v["failed"].as_i64(),
            v["pending"].as_i64()
        ),
        (Some(19), Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(notes.calls().len(), 20);
    let (s, v) = t.post(&format!("{path}/cancel"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "broadcast_finished"));

    // Cancel in the middle: at 40/s, 200 recipients take five seconds.
    many_customers(&t, 2_100_000, 180).await;
    let (s, b) = t
        .post(
            "/api/v1/broadcasts",
            json!({"segment": "all", "body": "second"}),
        )
        .await;
    assert_eq!(
        (s, b["total"].as_i64()),
        (StatusCode::CREATED, Some(200)),
        "{b}"
    );
    let id = b["id"].as_i64().unwrap_or_default();
    let second = |c: &[Call]| c.iter().filter(|c| broadcast_of(c) == Some(id)).count();
    notes
        .wait(Duration::from_secs(20), |c| second(c) >= 10)
        .await;
    let (s, v) = t
        .post(&format!("/api/v1/broadcasts/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled")),
        "{v}"
    );
    assert!(v["finished_at"].is_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent_then = second(&notes.calls());
    assert!(sent_then < 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        second(&notes.calls()),
        sent_then,
        "nothing is sent after a cancel"
    );
    let (_, v) = t.get(&format!("/api/v1/broadcasts/{id}")).await;
    assert_eq!(v["status"], "cancelled");
    // (The customer whose chat is gone is in this one too: failed, not sent.)
    let tried = v["sent"].as_i64().unwrap_or_default() + v["failed"].as_i64().unwrap_or_default();
    assert_eq!(tried, sent_then as i64, "{v}");
    assert_eq!(v["pending"].as_i64(), Some(200 - sent_then as i64), "{v}");
    let (s, again) = t
        .post(&format!("/api/v1/broadcasts/{id}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, again["pending"].clone()),
        (StatusCode::OK, v["pending"].clone())
    );

    // The list shows both, newest first when asked.
    let (s, l) = t.get("/api/v1/broadcasts?order=desc").await;
    assert_eq!(
        (s, l["total"].as_i64(), l["items"][0]["id"].as_i64()),
        (StatusCode::OK, Some(2), Some(id))
    );
    // Both actions are in the audit log.
    let (_, a) = t.get("/api/v1/audit-log?action=broadcast.cancel").await;
    assert_eq!(a["total"], 1, "{a}");
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn broadcast_rest_validation_and_permissions(#[case] backend: Backend) {
    let t = app!(backend, |c| c.broadcast_sender = false);
    let (_, seller) = t.user_with_role("seller-b", "seller").await;
    for (body, field) in [
        (json!({"segment": "all", "body": ""}), "body"),
        (json!({"segment": "all", "body": "   "}), "body"),
        (json!({"segment": "all", "body": "x".repeat(4001)}), "body"),
        (json!({"segment": "vip", "body": "hi"}), "segment"),
        (json!({"body": "hi"}), "segment"),
        (
            json!({"segment": "all", "body": "hi", "media": "x"}),
            "media",
        ),
    ] {
        let (s, v) = t.post("/api/v1/broadcasts", body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {v}");
        assert!(
            v["error"]["details"]["fields"][field].is_string(),
            "{body} -> {v}"
        );
    }
    let (s, v) = t
        .post(
            "/api/v1/broadcasts",
            json!({"segment": "all", "body": "x".repeat(4000)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for p in [
        "/api/v1/broadcasts/preview",
        "/api/v1/broadcasts/preview?segment=everyone",
    ] {
        let (s, v) = t.get(p).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p} -> {v}");
    }
    let (s, v) = t.get("/api/v1/broadcasts/424242").await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "broadcast_not_found")
    );
    let (s, v) = t.post("/api/v1/broadcasts/424242/cancel", json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "broadcast_not_found")
    );
    // Sellers answer tickets but do not broadcast.
    let (s, _) = call(
        &t,
        &seller,
        Method::POST,
        "/api/v1/broadcasts",
        Some(json!({"segment": "all", "body": "hi"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &t,
        &seller,
        Method::GET,
        "/api/v1/broadcasts/preview?segment=all",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    t.stop().await;
}
