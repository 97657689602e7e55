//! The per-address limit on sign-in and sign-up attempts.

use std::net::Ipv4Addr;

use reqwest::{StatusCode, header::RETRY_AFTER};

use crate::helpers::AuthReply as _;
use crate::helpers::{Reply, client_from, spawn_app, spawn_app_with_rate_limit};

fn assert_too_many(reply: &Reply) {
    reply.assert_status(StatusCode::TOO_MANY_REQUESTS);
    reply.error();
    assert!(reply.session_cookie().is_none());
    let retry_after: u64 = reply
        .headers
        .get(RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
}

#[tokio::test]
async fn the_fourth_sign_in_within_a_minute_is_refused_with_429() {
    let app = spawn_app_with_rate_limit(3).await;

    for _ in 0..3 {
        app.signin(&app.client, "nobody@example.com", "guess")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    let fourth = app.signin(&app.client, "nobody@example.com", "guess").await;
    let fifth = app.signin(&app.client, "nobody@example.com", "guess").await;

    assert_too_many(&fourth);
    assert_too_many(&fifth);
}

#[tokio::test]
async fn sign_ups_and_sign_ins_share_one_budget_and_a_refused_sign_up_stores_nothing() {
    let app = spawn_app_with_rate_limit(3).await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    app.signed_up(&app.client, "bob@example.com", "s3cret")
        .await;
    app.signin(&app.client, "ann@example.com", "s3cret")
        .await
        .assert_status(StatusCode::OK);

    let fourth = app
        .post_signup(&app.client, "carol@example.com", "s3cret")
        .await;

    assert_too_many(&fourth);
    assert!(app.users_with_email("carol@example.com").await.is_empty());
    assert_eq!(
        app.current_user(&app.client)
            .await
            .expect("still signed in")
            .email,
        "ann@example.com"
    );
}

#[tokio::test]
async fn the_current_user_and_sign_out_are_not_limited() {
    let app = spawn_app_with_rate_limit(3).await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    for _ in 0..2 {
        app.signin(&app.client, "ann@example.com", "wrong")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    assert_too_many(&app.signin(&app.client, "ann@example.com", "s3cret").await);

    for _ in 0..10 {
        assert!(app.current_user(&app.client).await.is_some());
    }
    app.signout(&app.client).await.assert_status(StatusCode::OK);
    assert!(app.current_user(&app.client).await.is_none());
}

#[tokio::test]
async fn another_client_address_has_its_own_budget() {
    let app = spawn_app_with_rate_limit(3).await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    for _ in 0..2 {
        app.signin(&app.client, "ann@example.com", "wrong")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    assert_too_many(&app.signin(&app.client, "ann@example.com", "s3cret").await);
    let elsewhere = client_from(Ipv4Addr::new(127, 0, 0, 2));

    let reply = app.signin(&elsewhere, "ann@example.com", "s3cret").await;

    reply.assert_status(StatusCode::OK);
}

#[tokio::test]
async fn a_limit_of_zero_lets_every_attempt_through() {
    let app = spawn_app().await;

    for _ in 0..12 {
        app.signin(&app.client, "nobody@example.com", "guess")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
}
