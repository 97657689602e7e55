//! `POST /api/users/signout`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::AuthReply as _;
use crate::helpers::{SetCookie, client, spawn_app};

fn assert_expires_the_session(cookie: Option<SetCookie>) {
    let cookie = cookie.expect("sign-out sets the session cookie to expire it");
    assert_eq!(cookie.attribute("Max-Age"), Some("0"), "{}", cookie.raw);
    assert!(cookie.value.is_empty(), "{}", cookie.raw);
    assert!(cookie.has("Path=/"), "{}", cookie.raw);
}

#[tokio::test]
async fn signing_out_answers_200_and_ends_the_session() {
    let app = spawn_app().await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    assert!(app.current_user(&app.client).await.is_some());

    let reply = app.signout(&app.client).await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), json!({}));
    assert_expires_the_session(reply.session_cookie());
    assert!(app.current_user(&app.client).await.is_none());
}

#[tokio::test]
async fn signing_out_without_a_session_answers_200() {
    let app = spawn_app().await;
    let anonymous = client();

    let reply = app.signout(&anonymous).await;

    reply.assert_status(StatusCode::OK);
    assert_eq!(reply.json(), json!({}));
    assert_expires_the_session(reply.session_cookie());
    assert!(app.current_user(&anonymous).await.is_none());
}

#[tokio::test]
async fn after_signing_out_signing_in_again_starts_a_new_session() {
    let app = spawn_app().await;
    let user = app
        .signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    app.signout(&app.client).await.assert_status(StatusCode::OK);

    app.signin(&app.client, "ann@example.com", "s3cret")
        .await
        .assert_status(StatusCode::OK);

    assert_eq!(
        app.current_user(&app.client)
            .await
            .expect("signed in again")
            .id,
        user.id
    );
}
