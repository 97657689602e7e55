//! Simultaneous sign-ups with one e-mail: the unique index decides, exactly one wins.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio::{sync::Barrier, task::JoinSet};

use crate::helpers::AuthReply as _;
use crate::helpers::{POOL_SIZE, Reply, client, spawn_app};

const RACERS: usize = 20;
const ROUNDS: usize = 10;

/// The same address written differently, so lower-casing is part of the race.
fn spelling(email: &str, racer: usize) -> String {
    match racer % 3 {
        0 => email.to_owned(),
        1 => email.to_uppercase(),
        _ => email
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_sign_ups_with_one_email_create_exactly_one_user() {
    assert!(RACERS > POOL_SIZE as usize);
    let app = Arc::new(spawn_app().await);

    for round in 0..ROUNDS {
        let email = format!("racer{round}@example.com");
        let barrier = Arc::new(Barrier::new(RACERS));
        let mut racers = JoinSet::new();
        for racer in 0..RACERS {
            let (app, barrier, email) = (app.clone(), barrier.clone(), spelling(&email, racer));
            racers.spawn(async move {
                let client = client();
                barrier.wait().await;
                app.post_signup(&client, &email, "s3cret").await
            });
        }
        let replies: Vec<Reply> = racers.join_all().await;

        let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
        let winners: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::CREATED)
            .collect();
        let losers: Vec<&Reply> = replies
            .iter()
            .filter(|r| r.status == StatusCode::CONFLICT)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {statuses:?}");
        assert_eq!(losers.len(), RACERS - 1, "round {round}: {statuses:?}");
        let winner = winners[0].user();
        assert_eq!(winner.email, email);
        assert!(winners[0].session_cookie().is_some());
        for loser in losers {
            loser.error();
            assert!(
                loser.session_cookie().is_none(),
                "a loser got a session: {:?}",
                loser.headers
            );
        }
        let rows = app.users_with_email(&email).await;
        assert_eq!(
            rows.len(),
            1,
            "round {round}: {} rows for {email}",
            rows.len()
        );
        assert_eq!(
            (rows[0].id, rows[0].email.as_str()),
            (winner.id, email.as_str())
        );
    }
    assert_eq!(app.user_count().await, ROUNDS as i64);
}
