//! The authorization matrix: every endpoint x every built-in role x anonymous, each call
//! against fresh fixtures, expecting allow (2xx) or deny (401 anonymous; 403, or 404
//! where a resource must not even be seen to exist). Plus: nobody reaches another user's
//! data by changing an id.

use crate::*;
use rstest::rstest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

static SEQ: AtomicI64 = AtomicI64::new(1);

const ROLES: [&str; 6] = ["admin", "seller", "support", "vip", "user", "anonymous"];

struct Fixtures {
    ids: HashMap<&'static str, i64>,
}

async fn fixtures(t: &TestApp, money: bool, support: bool) -> Fixtures {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let mut ids = HashMap::new();
    let (_, u) = t
        .post(
            "/api/v1/users",
            json!({"username": format!("target{n}"), "telegram_id": 7_000_000 + n}),
        )
        .await;
    ids.insert("user", u["id"].as_i64().unwrap_or_default());
    let (_, p) = t
        .post(
            "/api/v1/plans",
            json!({"name": format!("plan {n}"), "duration_days": 30}),
        )
        .await;
    ids.insert("plan", p["id"].as_i64().unwrap_or_default());
    let (_, nd) = t
        .post(
            "/api/v1/nodes",
            json!({"name": format!("node-{n}"), "kind": "agent", "address": "10.0.0.1"}),
        )
        .await;
    ids.insert("node", nd["id"].as_i64().unwrap_or_default());
    let (_, ib) = t
        .post(
            &format!("/api/v1/nodes/{}/inbounds", ids["node"]),
            json!({"tag": "t", "protocol": "trojan", "port": 443}),
        )
        .await;
    ids.insert("inbound", ib["id"].as_i64().unwrap_or_default());
    let (_, s) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": ids["user"], "plan_id": ids["plan"]}),
        )
        .await;
    ids.insert("sub", s["id"].as_i64().unwrap_or_default());
    let (_, r) = t
        .post(
            "/api/v1/roles",
            json!({"name": format!("custom{n}"), "permissions": ["users.read"]}),
        )
        .await;
    ids.insert("role", r["id"].as_i64().unwrap_or_default());
    let (_, r) = t
        .post(
            &format!("/api/v1/users/{}/roles", ids["user"]),
            json!({"role": format!("custom{n}")}),
        )
        .await;
    assert!(r.is_array(), "{r}");
    if support {
        // A ticket of the target customer (who has no password: opened through the
        // service as them) and a broadcast still sending.
        let customer = mrjbot_app::Actor {
            user_id: Some(ids["user"]),
            label: format!("target{n}"),
            permissions: Default::default(),
            roles: vec!["user".into()],
            session_id: None,
            request_id: None,
        };
        let ticket = t
            .app
            .open_ticket(
                &customer,
                mrjbot_app::support::tickets::NewTicket {
                    subject: "help".into(),
                    body: "it does not connect".into(),
                    attachment_file_id: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("ticket fixture: {e}"));
        ids.insert("ticket", ticket.ticket.id);
        let (_, b) = t
            .post(
                "/api/v1/broadcasts",
                json!({"segment": "no_purchase", "body": "fixture"}),
            )
            .await;
        ids.insert("broadcast", b["id"].as_i64().unwrap_or_default());
    }
    if !money {
        return Fixtures { ids };
    }
    // Money: a card, an order with an open card payment, a paid order, a discount code.
    let card_number = card_number(n);
    let (_, c) = t
        .post(
            "/api/v1/cards",
            json!({"number": card_number, "owner_name": "Owner"}),
        )
        .await;
    ids.insert("card", c["id"].as_i64().unwrap_or_default());
    ids.insert("card_number", card_number.parse().unwrap_or_default());
    let (_, c) = t
        .post("/api/v1/cards", json!({"number": self::card_number(n + 500_000), "owner_name": "Spare", "is_active": false}))
        .await;
    ids.insert("spare_card", c["id"].as_i64().unwrap_or_default());
    for key in ["order", "paid"] {
        let (_, o) = t
            .post("/api/v1/orders", json!({"user_id": ids["user"], "kind": "topup", "amount_minor": 1000, "currency": "IRR"}))
            .await;
        ids.insert(key, o["id"].as_i64().unwrap_or_default());
    }
    let (_, p) = t
        .post(
            &format!("/api/v1/orders/{}/pay", ids["order"]),
            json!({"method": "card"}),
        )
        .await;
    ids.insert("payment", p["id"].as_i64().unwrap_or_default());
    let (_, p) = t
        .post(
            &format!("/api/v1/orders/{}/pay", ids["paid"]),
            json!({"method": "card"}),
        )
        .await;
    let paid = p["id"].as_i64().unwrap_or_default();
    let (s, _) = t
        .post(&format!("/api/v1/payments/{paid}/approve"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    ids.insert("paid_payment", paid);
    let (_, d) = t
        .post(
            "/api/v1/discount-codes",
            json!({"code": format!("FIX{n}"), "kind": "percent", "value": 10}),
        )
        .await;
    ids.insert("discount", d["id"].as_i64().unwrap_or_default());
    for (k, v) in &ids {
        assert!(*v > 0, "fixture {k} was not created");
    }
    Fixtures { ids }
}

/// A valid (Luhn) 16-digit card number unique to `n`.
fn card_number(n: i64) -> String {
    let body = format!("603799{:09}", n);
    format!("{body}{}", mrjbot_domain::payment::luhn_check_digit(&body))
}

fn fill(path: &str, f: &Fixtures) -> String {
    let mut p = path.to_owned();
    for (k, v) in &f.ids {
        p = p.replace(&format!("{{{k}}}"), &v.to_string());
    }
    p
}

struct Case {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static [&'static str],
}

fn case(
    method: Method,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static [&'static str],
) -> Case {
    Case {
        method,
        path,
        body,
        allowed,
    }
}

const ANY_USER: &[&str] = &["admin", "seller", "support", "vip", "user"];
const EVERYONE: &[&str] = &["admin", "seller", "support", "vip", "user", "anonymous"];
const STAFF_READ: &[&str] = &["admin", "seller", "support"];
const SALES: &[&str] = &["admin", "seller"];
const ADMIN: &[&str] = &["admin"];

fn cases() -> Vec<Case> {
    use Method as M;
    vec![
        case(M::GET, "/healthz", None, EVERYONE),
        case(M::GET, "/readyz", None, EVERYONE),
        case(M::GET, "/api/v1/openapi.json", None, EVERYONE),
        case(M::GET, "/api/v1/auth/me", None, ANY_USER),
        case(M::POST, "/api/v1/auth/logout", None, ANY_USER),
        case(M::GET, "/api/v1/permissions", None, ANY_USER),
        case(M::GET, "/api/v1/users", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/users",
            Some(json!({"telegram_id": 0})),
            SALES,
        ),
        case(M::GET, "/api/v1/users/{user}", None, STAFF_READ),
        case(
            M::PATCH,
            "/api/v1/users/{user}",
            Some(json!({"display_name": "changed"})),
            SALES,
        ),
        case(
            M::POST,
            "/api/v1/users/{user}/password",
            Some(json!({"password": "another-pass-1"})),
            SALES,
        ),
        case(M::GET, "/api/v1/users/{user}/roles", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/users/{user}/roles",
            Some(json!({"role": "vip"})),
            ADMIN,
        ),
        case(M::DELETE, "/api/v1/users/{user}/roles/{role}", None, ADMIN),
        case(M::GET, "/api/v1/roles", None, ADMIN),
        case(
            M::POST,
            "/api/v1/roles",
            Some(json!({"name": "", "permissions": []})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/roles/{role}", None, ADMIN),
        case(
            M::PATCH,
            "/api/v1/roles/{role}",
            Some(json!({"description": "x"})),
            ADMIN,
        ),
        case(M::DELETE, "/api/v1/roles/{role}", None, ADMIN),
        case(M::GET, "/api/v1/plans", None, ANY_USER),
        case(
            M::POST,
            "/api/v1/plans",
            Some(json!({"name": "", "duration_days": 30})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/plans/{plan}", None, ANY_USER),
        case(
            M::PATCH,
            "/api/v1/plans/{plan}",
            Some(json!({"description": "x"})),
            ADMIN,
        ),
        case(M::DELETE, "/api/v1/plans/{plan}", None, ADMIN),
        case(M::GET, "/api/v1/nodes", None, SALES),
        case(
            M::POST,
            "/api/v1/nodes",
            Some(json!({"name": "", "kind": "agent", "address": "n.example"})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/nodes/{node}", None, SALES),
        case(
            M::PATCH,
            "/api/v1/nodes/{node}",
            Some(json!({"capacity": 10})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/nodes/{node}/health", None, SALES),
        case(M::POST, "/api/v1/nodes/{node}/rotate-secret", None, ADMIN),
        case(M::DELETE, "/api/v1/nodes/{node}", None, ADMIN),
        case(M::GET, "/api/v1/nodes/{node}/inbounds", None, SALES),
        case(
            M::POST,
            "/api/v1/nodes/{node}/inbounds",
            Some(json!({"tag": "new", "protocol": "vmess", "port": 80})),
            ADMIN,
        ),
        case(
            M::GET,
            "/api/v1/nodes/{node}/inbounds/{inbound}",
            None,
            SALES,
        ),
        case(
            M::PUT,
            "/api/v1/nodes/{node}/inbounds/{inbound}",
            Some(json!({"tag": "t2", "protocol": "trojan", "port": 443})),
            ADMIN,
        ),
        case(
            M::DELETE,
            "/api/v1/nodes/{node}/inbounds/{inbound}",
            None,
            ADMIN,
        ),
        case(M::GET, "/api/v1/subscriptions", None, ANY_USER),
        case(
            M::POST,
            "/api/v1/subscriptions",
            Some(json!({"user_id": 0, "plan_id": 0})),
            SALES,
        ),
        case(M::GET, "/api/v1/subscriptions/{sub}", None, STAFF_READ),
        case(
            M::PATCH,
            "/api/v1/subscriptions/{sub}",
            Some(json!({"note": "n"})),
            SALES,
        ),
        case(M::DELETE, "/api/v1/subscriptions/{sub}", None, SALES),
        case(M::POST, "/api/v1/subscriptions/{sub}/renew", None, SALES),
        case(
            M::POST,
            "/api/v1/subscriptions/{sub}/extend",
            Some(json!({"days": 1})),
            SALES,
        ),
        case(
            M::POST,
            "/api/v1/subscriptions/{sub}/add-data",
            Some(json!({"bytes": 1000})),
            SALES,
        ),
        case(M::POST, "/api/v1/subscriptions/{sub}/suspend", None, SALES),
        case(M::POST, "/api/v1/subscriptions/{sub}/activate", None, SALES),
        case(
            M::POST,
            "/api/v1/subscriptions/{sub}/reset-traffic",
            None,
            SALES,
        ),
        case(
            M::POST,
            "/api/v1/subscriptions/{sub}/rotate-token",
            None,
            SALES,
        ),
        case(
            M::POST,
            "/api/v1/subscriptions/{sub}/revoke-token",
            None,
            SALES,
        ),
        case(M::GET, "/api/v1/audit-log", None, ADMIN),
        case(M::GET, "/api/v1/orders", None, ANY_USER),
        case(
            M::POST,
            "/api/v1/orders",
            Some(json!({"kind": "topup", "amount_minor": 1000, "currency": "IRR"})),
            ANY_USER,
        ),
        case(M::GET, "/api/v1/orders/{order}", None, STAFF_READ),
        case(M::POST, "/api/v1/orders/{order}/cancel", None, SALES),
        case(
            M::POST,
            "/api/v1/orders/{order}/pay",
            Some(json!({"method": "card"})),
            SALES,
        ),
        case(M::GET, "/api/v1/payments", None, ANY_USER),
        case(M::GET, "/api/v1/payments/methods", None, ANY_USER),
        case(M::GET, "/api/v1/payments/{payment}", None, STAFF_READ),
        case(
            M::GET,
            "/api/v1/payments/{payment}/receipts",
            None,
            STAFF_READ,
        ),
        case(M::POST, "/api/v1/payments/{payment}/approve", None, SALES),
        case(
            M::POST,
            "/api/v1/payments/{payment}/reject",
            Some(json!({"reason": "no transfer"})),
            SALES,
        ),
        case(
            M::POST,
            "/api/v1/payments/{paid_payment}/refund",
            Some(json!({"destination": "wallet", "reason": "r"})),
            SALES,
        ),
        case(M::GET, "/api/v1/users/{user}/wallet", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/users/{user}/wallet/adjust",
            Some(json!({"amount_minor": 100, "currency": "IRR", "note": "n"})),
            SALES,
        ),
        case(M::GET, "/api/v1/cards", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/cards",
            Some(json!({"number": "", "owner_name": "New"})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/cards/{card}", None, STAFF_READ),
        case(
            M::PUT,
            "/api/v1/cards/{card}",
            Some(json!({"number": "{card_number}", "owner_name": "Renamed"})),
            ADMIN,
        ),
        case(M::DELETE, "/api/v1/cards/{spare_card}", None, ADMIN),
        case(M::GET, "/api/v1/discount-codes", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/discount-codes",
            Some(json!({"code": "", "kind": "percent", "value": 5})),
            ADMIN,
        ),
        case(
            M::GET,
            "/api/v1/discount-codes/{discount}",
            None,
            STAFF_READ,
        ),
        case(
            M::PUT,
            "/api/v1/discount-codes/{discount}",
            Some(json!({"code": "", "kind": "percent", "value": 7})),
            ADMIN,
        ),
        case(M::DELETE, "/api/v1/discount-codes/{discount}", None, ADMIN),
        case(M::GET, "/api/v1/reports/revenue", None, SALES),
        case(M::GET, "/api/v1/tickets", None, ANY_USER),
        case(
            M::POST,
            "/api/v1/tickets",
            Some(json!({"subject": "s", "body": "b"})),
            ANY_USER,
        ),
        case(M::GET, "/api/v1/tickets/{ticket}", None, STAFF_READ),
        case(
            M::POST,
            "/api/v1/tickets/{ticket}/messages",
            Some(json!({"body": "an answer"})),
            STAFF_READ,
        ),
        case(M::POST, "/api/v1/tickets/{ticket}/close", None, STAFF_READ),
        case(M::GET, "/api/v1/broadcasts", None, ADMIN),
        case(
            M::POST,
            "/api/v1/broadcasts",
            Some(json!({"segment": "all", "body": "hello"})),
            ADMIN,
        ),
        case(
            M::GET,
            "/api/v1/broadcasts/preview?segment=all",
            None,
            ADMIN,
        ),
        case(M::GET, "/api/v1/broadcasts/{broadcast}", None, ADMIN),
        case(
            M::POST,
            "/api/v1/broadcasts/{broadcast}/cancel",
            None,
            ADMIN,
        ),
        case(M::GET, "/api/v1/settings/payments", None, ADMIN),
        case(
            M::PUT,
            "/api/v1/settings/payments",
            Some(json!({"order_ttl_minutes": 30})),
            ADMIN,
        ),
        case(M::GET, "/api/v1/settings/shop", None, ADMIN),
        case(
            M::PUT,
            "/api/v1/settings/shop",
            Some(json!({"user_rate_per_minute": 20})),
            ADMIN,
        ),
    ]
}

/// Bodies that need fresh unique values or ids get them here.
fn body_for(c: &Case, f: &Fixtures) -> Option<Value> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let mut b = c.body.clone()?;
    if b.get("telegram_id").is_some() {
        b["telegram_id"] = json!(9_000_000 + n);
    }
    if b.get("user_id").is_some() {
        b["user_id"] = json!(f.ids["user"]);
        b["plan_id"] = json!(f.ids["plan"]);
    }
    if b.get("name").is_some_and(|v| v == "") {
        b["name"] = json!(format!("n{n}"));
    }
    if b.get("code").is_some_and(|v| v == "") {
        b["code"] = json!(format!("CODE{n}"));
    }
    match b.get("number").and_then(Value::as_str) {
        Some("") => b["number"] = json!(card_number(1_000_000 + n)),
        Some("{card_number}") => b["number"] = json!(format!("{:016}", f.ids["card_number"])),
        _ => {}
    }
    Some(b)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn every_endpoint_by_every_role(#[case] backend: Backend) {
    let t = app!(backend);
    for role in &ROLES[1..5] {
        t.user_with_role(&format!("as-{role}"), role).await;
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut tokens: HashMap<&str, String> = HashMap::new();
    for c in cases() {
        for role in ROLES {
            // Suspend/activate need the matching starting state.
            let money = [
                "{order}",
                "{payment}",
                "{paid_payment}",
                "{card}",
                "{spare_card}",
                "{discount}",
            ]
            .iter()
            .any(|k| c.path.contains(k));
            let support = ["{ticket}", "{broadcast}"]
                .iter()
                .any(|k| c.path.contains(k));
            let f = fixtures(&t, money, support).await;
            if c.path.ends_with("/activate") {
                t.post(&fill("/api/v1/subscriptions/{sub}/suspend", &f), json!({}))
                    .await;
            }
            // One session per role, signed in again only after the logout case ends it.
            if role != "anonymous" && !tokens.contains_key(role) {
                let token = match role {
                    "admin" => t.login("admin", &t.admin_password).await,
                    r => t.login(&format!("as-{r}"), "test-password-1").await,
                };
                tokens.insert(role, token.unwrap_or_default());
            }
            let token = tokens.get(role).cloned();
            let path = fill(c.path, &f);
            let (status, body) = t
                .call(c.method.clone(), &path, token.as_deref(), body_for(&c, &f))
                .await;
            if c.path.ends_with("/logout") {
                tokens.remove(role);
            }
            let allowed = c.allowed.contains(&role);
            let ok = if allowed {
                status.is_success()
            } else if role == "anonymous" {
                status == StatusCode::UNAUTHORIZED
            } else {
                status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND
            };
            checked += 1;
            if !ok {
                failures.push(format!(
                    "{role:9} {} {} -> {status} {body}",
                    c.method, c.path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn no_access_to_other_users_data_by_id(#[case] backend: Backend) {
    let t = app!(backend);
    let (me, token) = t.user_with_role("alice", "user").await;
    let (other, _) = t.user_with_role("bob", "vip").await;
    let (_, plan) = t
        .post("/api/v1/plans", json!({"name": "p", "duration_days": 30}))
        .await;
    let pid = plan["id"].as_i64().unwrap_or_default();
    let (_, mine) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": me, "plan_id": pid}),
        )
        .await;
    let (_, theirs) = t
        .post(
            "/api/v1/subscriptions",
            json!({"user_id": other, "plan_id": pid}),
        )
        .await;
    let (mine, theirs) = (
        mine["id"].as_i64().unwrap_or_default(),
        theirs["id"].as_i64().unwrap_or_default(),
    );

    let get = |p: String| {
        let t = &t;
        let token = token.clone();
        async move { t.call(Method::GET, &p, Some(&token), None).await }
    };
    assert_eq!(
        get(format!("/api/v1/subscriptions/{mine}")).await.0,
        StatusCode::OK
    );
    let (s, v) = get(format!("/api/v1/subscriptions/{theirs}")).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("subscription_not_found"))
    );
    let (_, v) = get("/api/v1/subscriptions".into()).await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["id"], mine);
    let (_, v) = get(format!("/api/v1/subscriptions?user_id={other}")).await;
    assert_eq!(v["total"], 0);
    assert_eq!(get(format!("/api/v1/users/{me}")).await.0, StatusCode::OK);
    assert_eq!(
        get(format!("/api/v1/users/{other}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(format!("/api/v1/users/{other}/roles")).await.0,
        StatusCode::NOT_FOUND
    );

    // Own profile: name and language yes; status, note or someone else's profile no.
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{me}"),
            Some(&token),
            Some(json!({"display_name": "Alice"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{me}"),
            Some(&token),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{other}"),
            Some(&token),
            Some(json!({"display_name": "x"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = t
        .call(
            Method::POST,
            &format!("/api/v1/subscriptions/{mine}/extend"),
            Some(&token),
            Some(json!({"days": 30})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = t.get(&format!("/api/v1/users/{other}")).await;
    assert_eq!(v["display_name"], Value::Null, "bob is unchanged");

    // A seller cannot take over or lock out an admin, nor mint admins.
    let (_, seller) = t.user_with_role("sam", "seller").await;
    let (s, _) = t
        .call(
            Method::POST,
            "/api/v1/users/1/password",
            Some(&seller),
            Some(json!({"password": "hijacked-pass-1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .call(
            Method::PATCH,
            "/api/v1/users/1",
            Some(&seller),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let body = json!({"username": "evil", "password": "evil-pass-123", "roles": ["admin"]});
    assert_eq!(
        t.call(Method::POST, "/api/v1/users", Some(&seller), Some(body))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert!(t.login("admin", &t.admin_password).await.is_ok());
    t.stop().await;
}
