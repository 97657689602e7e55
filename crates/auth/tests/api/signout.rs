//! `POST /api/users/signout`.

use reqwest::StatusCode;
use serde_json::json;

use std::time::{Duration, Instant};

use ticketing_common::testing::OwnRedis;

use crate::helpers::AuthReply as _;
use crate::helpers::{Options, SESSION_SECONDS, SetCookie, client, spawn, spawn_app};

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

/// Signs `email` in on a fresh client (a second browser): another session of the same user.
async fn second_session(app: &crate::helpers::TestApp, email: &str) -> reqwest::Client {
    let other = client();
    app.signin(&other, email, "s3cret")
        .await
        .assert_status(StatusCode::OK);
    other
}

#[tokio::test]
async fn a_copy_of_the_cookie_kept_from_before_sign_out_is_refused_and_other_sessions_stay() {
    let app = spawn_app().await;
    let signup = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;
    signup.assert_status(StatusCode::CREATED);
    let copied = signup.session_cookie().expect("a session cookie").value;
    let laptop = second_session(&app, "ann@example.com").await;
    assert!(app.current_user_with_token(&copied).await.is_some());

    app.signout(&app.client).await.assert_status(StatusCode::OK);

    assert!(
        app.current_user_with_token(&copied).await.is_none(),
        "the copied cookie still works after sign-out"
    );
    let still = app
        .current_user(&laptop)
        .await
        .expect("the user's other session stays");
    assert_eq!(still.email, "ann@example.com");
    // Signing out again with the copy changes nothing and still answers 200.
    let replay = reqwest::Client::new()
        .post(app.url("/api/users/signout"))
        .header(reqwest::header::COOKIE, format!("session={copied}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert!(app.current_user(&laptop).await.is_some());
}

#[tokio::test]
async fn another_replica_refuses_the_copy_within_a_second_and_the_revocation_expires_with_the_token()
 {
    let app = spawn_app().await;
    let replica = spawn(Options {
        redis_namespace: Some(app.namespace.clone()),
        ..Options::default()
    })
    .await;
    let signup = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;
    let copied = signup.session_cookie().expect("a session cookie").value;
    assert!(replica.current_user_with_token(&copied).await.is_some());

    app.signout(&app.client).await.assert_status(StatusCode::OK);
    let signed_out = Instant::now();

    let refused = replica
        .refuses_within(&copied, Duration::from_secs(1))
        .await;
    assert!(
        refused,
        "the other replica still accepted the copy {:?} after sign-out",
        signed_out.elapsed()
    );
    let keys = app.revoked_keys().await;
    assert_eq!(keys.len(), 1, "one revocation recorded: {keys:?}");
    let ttl = app.ttl(&keys[0]).await;
    assert!(
        (1..=SESSION_SECONDS).contains(&ttl),
        "kept for the token's remaining lifetime, not forever: {ttl}"
    );
}

#[tokio::test]
async fn while_the_queue_redis_is_down_sessions_are_believed_and_sign_outs_are_written_when_it_returns()
 {
    let mut redis = OwnRedis::start(&[]).await;
    let app = spawn(Options {
        redis_url: redis.url(),
        ..Options::default()
    })
    .await;
    let replica = spawn(Options {
        redis_url: redis.url(),
        redis_namespace: Some(app.namespace.clone()),
        ..Options::default()
    })
    .await;
    let signup = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;
    let copied = signup.session_cookie().expect("a session cookie").value;
    let laptop = second_session(&app, "ann@example.com").await;

    redis.kill().await;

    // Verification fails open: the system keeps answering.
    assert!(replica.current_user_with_token(&copied).await.is_some());
    app.signout(&app.client).await.assert_status(StatusCode::OK);
    assert!(
        app.current_user_with_token(&copied).await.is_none(),
        "the replica that signed out remembers it"
    );
    assert!(app.current_user(&laptop).await.is_some());

    redis.restart().await;

    let refused = replica
        .refuses_within(&copied, Duration::from_secs(15))
        .await;
    assert!(
        refused,
        "the sign-out taken during the outage never reached the other replica"
    );
    assert!(replica.current_user(&laptop).await.is_some());
}
