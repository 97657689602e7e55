//! `POST /api/users/signin`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::AuthReply as _;
use crate::helpers::{SESSION_SECONDS, client, median, ms, spawn_app};

const SIGNIN: &str = "/api/users/signin";

#[tokio::test]
async fn signing_in_answers_200_with_the_user_and_sets_the_session() {
    let app = spawn_app().await;
    let signed_up = app.signed_up(&client(), "ann@example.com", "s3cret").await;

    let reply = app.signin(&app.client, "ann@example.com", "s3cret").await;

    reply.assert_status(StatusCode::OK);
    let user = reply.user();
    assert_eq!(
        (user.id, user.email.as_str()),
        (signed_up.id, "ann@example.com")
    );
    let cookie = reply.session_cookie().expect("a session cookie is set");
    cookie.assert_contract_flags();
    assert_eq!(
        cookie.attribute("Max-Age"),
        Some(SESSION_SECONDS.to_string().as_str())
    );
    assert_eq!(
        app.keys.verify(&cookie.value).expect("a valid token").id,
        user.id
    );
    assert_eq!(
        app.current_user(&app.client).await.expect("signed in").id,
        user.id
    );
}

#[tokio::test]
async fn signing_in_takes_the_email_in_any_case() {
    let app = spawn_app().await;
    let signed_up = app
        .signed_up(&client(), "Carol@Example.com", "s3cret")
        .await;

    let reply = app
        .signin(&app.client, "  CAROL@EXAMPLE.COM ", "s3cret")
        .await;

    reply.assert_status(StatusCode::OK);
    let user = reply.user();
    assert_eq!(
        (user.id, user.email.as_str()),
        (signed_up.id, "carol@example.com")
    );
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_400() {
    let app = spawn_app().await;
    app.signed_up(&client(), "ann@example.com", "s3cret").await;

    let unknown = app
        .signin(&app.client, "nobody@example.com", "s3cret")
        .await;
    let wrong = app.signin(&app.client, "ann@example.com", "S3CRET").await;

    unknown.assert_status(StatusCode::BAD_REQUEST);
    wrong.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error(), wrong.error());
    assert_eq!(unknown.text, wrong.text);
    assert!(
        unknown.error_fields().is_empty(),
        "naming a field would say which was wrong: {}",
        unknown.text
    );
    assert!(unknown.session_cookie().is_none() && wrong.session_cookie().is_none());
    assert!(app.current_user(&app.client).await.is_none());
}

#[tokio::test]
async fn a_missing_password_is_a_400_naming_password() {
    let app = spawn_app().await;
    app.signed_up(&client(), "ann@example.com", "s3cret").await;

    for body in [
        json!({"email": "ann@example.com"}),
        json!({"email": "ann@example.com", "password": ""}),
    ] {
        let reply = app.post_json(&app.client, SIGNIN, &body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(reply.error_fields(), ["password"], "for {body}");
        assert!(reply.session_cookie().is_none());
    }
}

#[tokio::test]
async fn a_missing_or_invalid_email_is_a_400_naming_email() {
    let app = spawn_app().await;

    for body in [
        json!({"password": "s3cret"}),
        json!({"email": "ann", "password": "s3cret"}),
        json!({"email": 5, "password": "s3cret"}),
    ] {
        let reply = app.post_json(&app.client, SIGNIN, &body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(reply.error_fields(), ["email"], "for {body}");
    }
    let reply = app.post_raw(&app.client, SIGNIN, None, "").await;
    reply.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_fields(), ["email", "password"]);
}

#[tokio::test]
async fn a_malformed_or_non_json_sign_in_is_a_400_in_the_error_body() {
    let app = spawn_app().await;
    app.signed_up(&client(), "ann@example.com", "s3cret").await;

    let malformed = app
        .post_raw(
            &app.client,
            SIGNIN,
            Some("application/json"),
            r#"{"email": "ann@example.com", "#,
        )
        .await;
    let plain = app
        .post_raw(
            &app.client,
            SIGNIN,
            Some("text/plain"),
            r#"{"email": "ann@example.com", "password": "s3cret"}"#,
        )
        .await;

    malformed.assert_status(StatusCode::BAD_REQUEST);
    malformed.error();
    plain.assert_status(StatusCode::BAD_REQUEST);
    plain.error();
    assert!(app.current_user(&app.client).await.is_none());
}

/// Sign-in times for an unknown e-mail and for a wrong password, interleaved so that load
/// from elsewhere on the machine falls on both alike.
async fn sign_in_medians(app: &crate::helpers::TestApp, attempts: usize) -> (Duration, Duration) {
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    for i in 0..attempts {
        for unknown_first in [i % 2 == 0, i % 2 != 0] {
            let (email, samples) = if unknown_first {
                ("nobody@example.com", &mut unknown)
            } else {
                ("dave@example.com", &mut wrong)
            };
            let started = Instant::now();
            let reply = app.signin(&app.client, email, "not-the-password").await;
            samples.push(started.elapsed());
            reply.assert_status(StatusCode::BAD_REQUEST);
        }
    }
    (median(unknown), median(wrong))
}

#[tokio::test]
async fn signing_in_with_an_unknown_email_takes_as_long_as_with_a_wrong_password() {
    let app = spawn_app().await;
    app.signed_up(&client(), "dave@example.com", "the-password")
        .await;
    // Warm up: connections, and the dummy hash made on first use.
    sign_in_medians(&app, 1).await;

    // Without the dummy hash an unknown e-mail answers in about a hundredth of the time, so
    // half is a wide margin; a noisy round is measured again rather than failed.
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let (unknown, wrong) = sign_in_medians(&app, 7).await;
        rounds.push((ms(unknown), ms(wrong)));
        if unknown.as_secs_f64() >= 0.5 * wrong.as_secs_f64() {
            println!(
                "sign-in median: unknown e-mail {:.1} ms, wrong password {:.1} ms",
                ms(unknown),
                ms(wrong)
            );
            return;
        }
    }
    panic!(
        "an unknown e-mail signs in much faster than a wrong password (medians in ms, unknown vs wrong): {rounds:?}"
    );
}
