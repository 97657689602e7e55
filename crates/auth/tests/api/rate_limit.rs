//! The per-address limit on sign-in and sign-up attempts, and the per-account limit on failed
//! sign-ins (counted in Redis, whatever the address).

use std::net::Ipv4Addr;

use reqwest::{StatusCode, header::RETRY_AFTER};
use serde_json::json;
use ticketing_common::settings::parse_proxy_range;

use crate::helpers::AuthReply as _;
use crate::helpers::{
    Options, Reply, TestApp, client_from, spawn, spawn_app, spawn_app_with_rate_limit,
};

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

/// A sign-in from `client_address`, as a trusted proxy forwards it.
async fn signin_via_proxy(
    app: &TestApp,
    client_address: &str,
    email: &str,
    password: &str,
) -> Reply {
    Reply::read(
        app.client
            .post(app.url("/api/users/signin"))
            .header("x-forwarded-for", client_address)
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("POST"),
    )
    .await
}

/// Auth behind a trusted proxy (127.0.0.0/8, where the tests connect from), with the
/// default per-address budget.
async fn behind_a_proxy() -> TestApp {
    spawn(Options {
        per_minute: 30,
        trusted_proxies: vec![parse_proxy_range("127.0.0.0/8").unwrap()],
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn thirty_wrong_passwords_from_thirty_addresses_get_429_after_the_tenth_for_an_account() {
    let app = behind_a_proxy().await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;

    let mut statuses = Vec::new();
    for i in 0..30 {
        let reply =
            signin_via_proxy(&app, &format!("203.0.113.{i}"), "Ann@Example.com", "guess").await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_too_many(&reply);
        }
        statuses.push(reply.status.as_u16());
    }

    assert_eq!(statuses[..10], [400; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 20], "{statuses:?}");
    // Locked for the rest of the minute, even with the right password and a fresh address;
    // other accounts are not.
    let right = signin_via_proxy(&app, "198.51.100.1", "ann@example.com", "s3cret").await;
    assert_too_many(&right);
    app.signed_up(&app.client, "bob@example.com", "s3cret")
        .await;
    signin_via_proxy(&app, "198.51.100.2", "bob@example.com", "s3cret")
        .await
        .assert_status(StatusCode::OK);
}

#[tokio::test]
async fn an_email_without_an_account_is_limited_the_same_so_the_answer_reveals_nothing() {
    let app = behind_a_proxy().await;

    let mut statuses = Vec::new();
    for i in 0..30 {
        let reply = signin_via_proxy(
            &app,
            &format!("203.0.113.{i}"),
            "nobody@example.com",
            "guess",
        )
        .await;
        statuses.push(reply.status.as_u16());
    }

    assert_eq!(statuses[..10], [400; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429; 20], "{statuses:?}");
    // Hashed e-mails only: no address in Redis.
    let keys = app.redis_keys().await;
    assert!(
        !keys.is_empty() && keys.iter().all(|k| !k.contains("nobody")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn parallel_guesses_cannot_overtake_the_per_account_count() {
    let app = behind_a_proxy().await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;

    let replies =
        futures::future::join_all((0..30).map(|i| {
            let app = &app;
            async move {
                signin_via_proxy(app, &format!("203.0.113.{i}"), "ann@example.com", "guess").await
            }
        }))
        .await;

    let wrong = replies
        .iter()
        .filter(|r| r.status == StatusCode::BAD_REQUEST)
        .count();
    let limited = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((wrong, limited), (10, 20));
}

#[tokio::test]
async fn successful_sign_ins_do_not_use_up_the_accounts_budget() {
    let app = behind_a_proxy().await;
    app.signed_up(&app.client, "ann@example.com", "s3cret")
        .await;

    for i in 0..15 {
        signin_via_proxy(&app, &format!("203.0.113.{i}"), "ann@example.com", "s3cret")
            .await
            .assert_status(StatusCode::OK);
    }
    for i in 0..9 {
        signin_via_proxy(&app, &format!("198.51.100.{i}"), "ann@example.com", "wrong")
            .await
            .assert_status(StatusCode::BAD_REQUEST);
    }
    signin_via_proxy(&app, "192.0.2.1", "ann@example.com", "s3cret")
        .await
        .assert_status(StatusCode::OK);
}
