//! `POST /api/users/signup`.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_common::session::SessionKeys;

use crate::helpers::AuthReply as _;
use crate::helpers::{SESSION_SECONDS, TEST_KEY, client, spawn_app, spawn_app_with_keys};

const SIGNUP: &str = "/api/users/signup";

#[tokio::test]
async fn signing_up_answers_201_with_the_user_and_stores_them() {
    let app = spawn_app().await;

    let reply = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;

    reply.assert_status(StatusCode::CREATED);
    let user = reply.user();
    assert_eq!(user.email, "ann@example.com");
    let rows = app.users_with_email("ann@example.com").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, user.id);
    assert_eq!(rows[0].email, "ann@example.com");
    assert!(
        rows[0].password_hash.starts_with("$argon2id$"),
        "{}",
        rows[0].password_hash
    );
    assert!(!rows[0].password_hash.contains("s3cret"));
}

#[tokio::test]
async fn signing_up_sets_an_http_only_lax_site_wide_session_cookie_naming_the_user() {
    let app = spawn_app().await;

    let reply = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;

    reply.assert_status(StatusCode::CREATED);
    let user = reply.user();
    let cookie = reply.session_cookie().expect("a session cookie is set");
    cookie.assert_contract_flags();
    assert!(
        !cookie.has("Secure"),
        "test keys turn Secure off: {}",
        cookie.raw
    );
    assert_eq!(
        cookie.attribute("Max-Age"),
        Some(SESSION_SECONDS.to_string().as_str()),
        "{}",
        cookie.raw
    );
    let claims = app
        .keys
        .verify(&cookie.value)
        .expect("the cookie holds a token signed by the app");
    assert_eq!(
        (claims.id, claims.email.as_str()),
        (user.id, "ann@example.com")
    );
    let current = app
        .current_user(&app.client)
        .await
        .expect("the client is now signed in");
    assert_eq!(current.id, user.id);
}

#[tokio::test]
async fn the_session_cookie_is_secure_unless_turned_off() {
    let app = spawn_app_with_keys(SessionKeys::new(TEST_KEY, true).unwrap()).await;

    let reply = app
        .post_signup(&app.client, "ann@example.com", "s3cret")
        .await;

    reply.assert_status(StatusCode::CREATED);
    let cookie = reply.session_cookie().expect("a session cookie is set");
    assert!(cookie.has("Secure"), "{}", cookie.raw);
    cookie.assert_contract_flags();
}

#[tokio::test]
async fn an_email_is_stored_lower_cased() {
    let app = spawn_app().await;

    let user = app
        .signed_up(&app.client, "Ann@Example.COM", "s3cret")
        .await;

    assert_eq!(user.email, "ann@example.com");
    let rows = app.users_with_email("ann@example.com").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].email, "ann@example.com");
    assert_eq!(
        app.current_user(&app.client).await.unwrap().email,
        "ann@example.com"
    );
}

#[tokio::test]
async fn a_non_ascii_email_is_lower_cased_and_stored() {
    let app = spawn_app().await;

    let user = app
        .signed_up(&app.client, "ÅSA@Exämple.COM", "s3cret")
        .await;

    assert_eq!(user.email, "åsa@exämple.com");
    let rows = app.users_with_email("åsa@exämple.com").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].email, "åsa@exämple.com");
}

#[tokio::test]
async fn an_invalid_email_is_refused_with_a_400_naming_email() {
    let app = spawn_app().await;
    let invalid = [
        "",
        "   ",
        "ann",
        "ann@",
        "@example.com",
        "ann@example",
        "ann @example.com",
        "ann@@example.com",
        "ann@.example.com",
        "ann@example..com",
    ];

    for email in invalid {
        let reply = app.post_signup(&app.client, email, "s3cret").await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.error_fields(),
            ["email"],
            "for {email:?}: {}",
            reply.text
        );
        assert!(reply.session_cookie().is_none());
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_password_shorter_than_4_or_longer_than_20_characters_is_refused_naming_password() {
    let app = spawn_app().await;

    for (i, password) in ["", "abc", "ééé", &"x".repeat(21), &"é".repeat(21)]
        .into_iter()
        .enumerate()
    {
        let reply = app
            .post_signup(&app.client, &format!("user{i}@example.com"), password)
            .await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.error_fields(),
            ["password"],
            "for {password:?}: {}",
            reply.text
        );
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn passwords_of_exactly_4_and_20_characters_are_accepted() {
    let app = spawn_app().await;

    for (i, password) in ["abcd", "éééé", &"x".repeat(20)].into_iter().enumerate() {
        let reply = app
            .post_signup(&client(), &format!("user{i}@example.com"), password)
            .await;

        reply.assert_status(StatusCode::CREATED);
    }
    assert_eq!(app.user_count().await, 3);
}

#[tokio::test]
async fn an_empty_body_or_object_is_refused_naming_both_email_and_password() {
    let app = spawn_app().await;
    let bodies = [
        (None, ""),
        (Some("application/json"), ""),
        (Some("application/json"), "{}"),
        (Some("application/json"), "  \n "),
    ];

    for (content_type, body) in bodies {
        let reply = app.post_raw(&app.client, SIGNUP, content_type, body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.error_fields(),
            ["email", "password"],
            "for {content_type:?} {body:?}"
        );
    }
    let reply = app
        .post_json(
            &app.client,
            SIGNUP,
            &json!({"email": null, "password": null}),
        )
        .await;
    reply.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_fields(), ["email", "password"]);
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn malformed_json_is_a_400_in_the_error_body() {
    let app = spawn_app().await;
    let malformed = [
        r#"{"email": "ann@example.com", "password": "#,
        r#"{"email": "ann@example.com" "password": "s3cret"}"#,
        "{",
        "not json",
    ];

    for body in malformed {
        let reply = app
            .post_raw(&app.client, SIGNUP, Some("application/json"), body)
            .await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        reply.error();
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_wrong_content_type_is_a_400_in_the_error_body() {
    let app = spawn_app().await;
    let credentials = r#"{"email": "ann@example.com", "password": "s3cret"}"#;
    let requests = [
        (Some("text/plain"), credentials),
        (None, credentials),
        (
            Some("application/x-www-form-urlencoded"),
            "email=ann%40example.com&password=s3cret",
        ),
        (Some("application/xml"), "<user/>"),
    ];

    for (content_type, body) in requests {
        let reply = app.post_raw(&app.client, SIGNUP, content_type, body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert!(
            reply.error().errors[0].message.contains("Content-Type"),
            "for {content_type:?}: {}",
            reply.text
        );
        assert!(reply.session_cookie().is_none());
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn wrong_json_types_are_a_400_naming_the_field_never_a_500() {
    let app = spawn_app().await;
    let cases = [
        (json!({"email": 5, "password": "s3cret"}), "email"),
        (
            json!({"email": ["ann@example.com"], "password": "s3cret"}),
            "email",
        ),
        (
            json!({"email": {"address": "ann@example.com"}, "password": "s3cret"}),
            "email",
        ),
        (json!({"email": true, "password": "s3cret"}), "email"),
        (
            json!({"email": "ann@example.com", "password": 1234}),
            "password",
        ),
        (
            json!({"email": "ann@example.com", "password": ["s3cret"]}),
            "password",
        ),
    ];

    for (body, field) in cases {
        let reply = app.post_json(&app.client, SIGNUP, &body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        assert!(
            reply.error_fields().contains(&field.to_owned()),
            "for {body}: {}",
            reply.text
        );
    }
    for body in [json!([1]), json!("ann@example.com"), json!(42), json!(null)] {
        let reply = app.post_json(&app.client, SIGNUP, &body).await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        reply.error();
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_registered_email_is_refused_with_409_and_no_session() {
    let app = spawn_app().await;
    let first = app
        .signed_up(&app.client, "ann@example.com", "first-password")
        .await;
    let other = client();

    let reply = app
        .post_signup(&other, "ann@example.com", "second-password")
        .await;

    reply.assert_status(StatusCode::CONFLICT);
    reply.error();
    assert!(reply.session_cookie().is_none(), "{:?}", reply.headers);
    assert!(app.current_user(&other).await.is_none());
    let rows = app.users_with_email("ann@example.com").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, first.id);
    app.signin(&client(), "ann@example.com", "first-password")
        .await
        .assert_status(StatusCode::OK);
    app.signin(&client(), "ann@example.com", "second-password")
        .await
        .assert_status(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_registered_email_differing_only_in_case_is_refused_with_409() {
    let app = spawn_app().await;
    app.signed_up(&app.client, "bob@example.com", "s3cret")
        .await;
    let other = client();

    let reply = app.post_signup(&other, "BOB@Example.com", "s3cret").await;

    reply.assert_status(StatusCode::CONFLICT);
    reply.error();
    assert!(reply.session_cookie().is_none());
    assert!(app.current_user(&other).await.is_none());
    assert_eq!(app.users_with_email("bob@example.com").await.len(), 1);
}

#[tokio::test]
async fn a_refused_sign_up_starts_no_session() {
    let app = spawn_app().await;

    let reply = app.post_signup(&app.client, "ann@example.com", "abc").await;

    reply.assert_status(StatusCode::BAD_REQUEST);
    assert!(reply.session_cookie().is_none());
    assert!(app.current_user(&app.client).await.is_none());
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_refused_sign_up_leaves_an_existing_session_as_it_was() {
    let app = spawn_app().await;
    let ann = app
        .signed_up(&app.client, "ann@example.com", "s3cret")
        .await;
    app.signed_up(&client(), "bob@example.com", "s3cret").await;

    let invalid = app
        .post_signup(&app.client, "carol@example.com", "abc")
        .await;
    let taken = app
        .post_signup(&app.client, "bob@example.com", "s3cret")
        .await;

    invalid.assert_status(StatusCode::BAD_REQUEST);
    taken.assert_status(StatusCode::CONFLICT);
    assert!(invalid.session_cookie().is_none() && taken.session_cookie().is_none());
    assert_eq!(app.current_user(&app.client).await.unwrap().id, ann.id);
}

#[tokio::test]
async fn json_followed_by_anything_else_is_malformed() {
    let app = spawn_app().await;
    let bodies = [
        r#"{"email": "ann@example.com", "password": "s3cret"} trailing"#,
        r#"{"email": "ann@example.com", "password": "s3cret"}{"email": "bob@example.com"}"#,
    ];

    for body in bodies {
        let reply = app
            .post_raw(&app.client, SIGNUP, Some("application/json"), body)
            .await;

        reply.assert_status(StatusCode::BAD_REQUEST);
        reply.error();
    }
    assert_eq!(app.user_count().await, 0);
}
