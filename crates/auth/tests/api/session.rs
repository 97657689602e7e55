//! `GET /api/users/currentuser` and which cookies count as a session.

use reqwest::StatusCode;
use ticketing_common::session::SessionKeys;

use crate::helpers::AuthReply as _;
use crate::helpers::{SESSION_SECONDS, TEST_KEY, UserBody, client, spawn_app};

/// Signs up and returns the user with the token from the session cookie.
async fn signed_up_token(app: &crate::helpers::TestApp) -> (UserBody, String) {
    let reply = app
        .post_signup(&client(), "ann@example.com", "s3cret")
        .await;
    reply.assert_status(StatusCode::CREATED);
    let token = reply.session_cookie().expect("a session cookie").value;
    (reply.user(), token)
}

/// `token` with the character at `index` replaced by another base64url character.
fn altered(token: &str, index: usize) -> String {
    let mut bytes = token.as_bytes().to_vec();
    assert_ne!(
        bytes[index], b'.',
        "alter a part of the token, not a separator"
    );
    bytes[index] = if bytes[index] == b'Q' { b'R' } else { b'Q' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn without_a_cookie_the_current_user_is_null() {
    let app = spawn_app().await;

    let reply = app.get(&app.client, "/api/users/currentuser").await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({"currentUser": null}));
}

#[tokio::test]
async fn with_the_session_cookie_the_current_user_is_id_email_iat_and_exp() {
    let app = spawn_app().await;
    let user = app
        .signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let current = app.current_user(&app.client).await.expect("a current user");

    assert_eq!(
        (current.id, current.email.as_str()),
        (user.id, "ann@example.com")
    );
    assert!(
        (current.iat - now).abs() <= 60,
        "iat {} is not about now ({now})",
        current.iat
    );
    assert_eq!(current.exp - current.iat, SESSION_SECONDS);
}

#[tokio::test]
async fn the_session_cookie_is_found_among_other_cookies() {
    let app = spawn_app().await;
    let (user, token) = signed_up_token(&app).await;

    let current = app
        .current_user_with_cookie(&format!("theme=dark; session={token}; lang=en"))
        .await;

    assert_eq!(current.expect("a current user").id, user.id);
}

#[tokio::test]
async fn a_tampered_cookie_counts_as_no_session() {
    let app = spawn_app().await;
    let (user, token) = signed_up_token(&app).await;
    assert_eq!(
        app.current_user_with_token(&token)
            .await
            .expect("the untouched token works")
            .id,
        user.id
    );
    let header_end = token.find('.').unwrap();
    let payload_end = token.rfind('.').unwrap();

    for index in [
        header_end / 2,
        (header_end + payload_end) / 2,
        payload_end + 10,
    ] {
        let tampered = altered(&token, index);

        assert!(
            app.current_user_with_token(&tampered).await.is_none(),
            "accepted {tampered} (changed at {index})"
        );
    }
    let without_signature = &token[..=payload_end];
    assert!(
        app.current_user_with_token(without_signature)
            .await
            .is_none()
    );
    assert!(app.current_user_with_token("not-a-token").await.is_none());
}

#[tokio::test]
async fn a_token_signed_with_the_test_key_is_accepted() {
    let app = spawn_app().await;
    let (user, _) = signed_up_token(&app).await;
    let token = SessionKeys::new(TEST_KEY, false)
        .unwrap()
        .issue(user.id, &user.email)
        .unwrap();

    let current = app.current_user_with_token(&token).await;

    assert_eq!(
        current
            .expect("a token signed with TEST_KEY is the app's")
            .id,
        user.id
    );
}

#[tokio::test]
async fn a_cookie_signed_with_another_key_counts_as_no_session() {
    let app = spawn_app().await;
    let (user, _) = signed_up_token(&app).await;
    let other = SessionKeys::new(b"another-key-another-key-another-key!", false).unwrap();
    let token = other.issue(user.id, &user.email).unwrap();

    assert!(app.current_user_with_token(&token).await.is_none());
}

#[tokio::test]
async fn an_expired_cookie_counts_as_no_session() {
    let app = spawn_app().await;
    let (user, _) = signed_up_token(&app).await;
    let expired = SessionKeys::new(TEST_KEY, false)
        .unwrap()
        .with_lifetime(time::Duration::seconds(-10));
    let token = expired.issue(user.id, &user.email).unwrap();

    assert!(app.current_user_with_token(&token).await.is_none());
}
