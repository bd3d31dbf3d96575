//! Sign-in, tokens, sessions, lockout and rate limiting.

use crate::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rstest::rstest;
use std::time::Duration;

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn login_me_refresh_logout(#[case] backend: Backend) {
    let t = app!(backend);
    let (s, v) = t
        .call(Method::GET, "/api/v1/auth/me", Some(&t.admin_token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["username"], "admin");
    assert!(
        v["permissions"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "roles.write"))
    );

    let (s, pair) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "admin", "password": t.admin_password})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let refresh = pair["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Refresh rotates: the new pair works, the old refresh token is refused and ends the session.
    let (s, next) = t
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{next}");
    let access = next["access_token"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&access), None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("refresh_token_reused"))
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&access), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Logout revokes the access token at once, not at expiry.
    let token = t
        .login("admin", &t.admin_password)
        .await
        .unwrap_or_default();
    assert_eq!(
        t.call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
            .await
            .0,
        StatusCode::OK
    );
    let (s, v) = t
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn access_tokens_expire_and_forgeries_fail(#[case] backend: Backend) {
    let t = app!(backend);
    let token = t.admin_token.clone();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut claims: Value =
        serde_json::from_slice(&B64.decode(parts[1]).unwrap_or_default()).unwrap_or_default();
    claims["sub"] = json!(999);
    let forged_payload = B64.encode(claims.to_string());
    let wrong_sig = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    let alg_none = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    let hs512 = format!(
        "{}.{}.{}",
        B64.encode(r#"{"alg":"HS512","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    for bad in [
        wrong_sig.as_str(),
        alg_none.as_str(),
        hs512.as_str(),
        "garbage",
        "",
    ] {
        let (s, v) = t.call(Method::GET, "/api/v1/users", Some(bad), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "token {bad:?} gave {v}");
        assert_eq!(v["error"]["code"], "unauthenticated");
    }
    assert_eq!(
        t.call(Method::GET, "/api/v1/users", None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    t.clock.advance(Duration::from_secs(901));
    let (s, v) = t
        .call(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired")),
        "{v}"
    );
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn lockout_after_repeated_failures(#[case] backend: Backend) {
    let t = app!(backend);
    let (_, _) = t.user_with_role("clerk", "seller").await;
    for _ in 0..5 {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": "clerk", "password": "wrong-password-9"})),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
        );
    }
    // Locked: even the right password is refused until the lock ends.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "clerk", "password": "test-password-1"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::LOCKED, Some("account_locked"))
    );
    // Unknown users get the same answer as wrong passwords.
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "nobody", "password": "x"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_credentials"))
    );
    t.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert!(t.login("clerk", "test-password-1").await.is_ok());
    t.stop().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn password_change_ends_other_sessions(#[case] backend: Backend) {
    let t = app!(backend);
    let (id, first) = t.user_with_role("agent1", "support").await;
    let second = t
        .login("agent1", "test-password-1")
        .await
        .unwrap_or_default();
    let body = json!({"current_password": "nope-nope-1", "new_password": "brand-new-pass-2"});
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&first),
            Some(body),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_password"))
    );
    let body = json!({"current_password": "test-password-1", "new_password": "short"});
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&first),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["details"]["fields"]["new_password"].is_string());
    let body = json!({"current_password": "test-password-1", "new_password": "brand-new-pass-2"});
    assert_eq!(
        t.call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&first),
            Some(body)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&first), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&second), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert!(t.login("agent1", "test-password-1").await.is_err());
    assert!(t.login("agent1", "brand-new-pass-2").await.is_ok());
    // An admin reset ends every session of the user.
    let (s, _) = t
        .post(
            &format!("/api/v1/users/{id}/password"),
            json!({"password": "admin-set-pass-3"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&first), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Disabling a user ends their sessions too.
    let token = t
        .login("agent1", "admin-set-pass-3")
        .await
        .unwrap_or_default();
    assert_eq!(
        t.patch(
            &format!("/api/v1/users/{id}"),
            json!({"status": "disabled"})
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/auth/me", Some(&token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = t
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "agent1", "password": "admin-set-pass-3"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_disabled"))
    );
    t.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let t = app!(Backend::Sqlite, |c: &mut mrjbot::config::Config| {
        c.auth.login_per_minute = 6;
        c.auth.login_burst = 3;
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (s, v) = t
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"username": "x-user", "password": "y"})),
            )
            .await;
        if s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(v["error"]["code"], "rate_limited");
        }
        statuses.push(s.as_u16());
    }
    // The bootstrap login in spawn used one token of the burst.
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 3,
        "{statuses:?}"
    );
    // Other endpoints are not limited.
    assert_eq!(t.get("/api/v1/users").await.0, StatusCode::OK);
    t.stop().await;
}
