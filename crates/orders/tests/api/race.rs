//! Simultaneous orders for one ticket: the partial unique index decides, exactly one wins, and
//! the losers leave nothing behind.

use std::sync::Arc;

use reqwest::StatusCode;
use ticketing_events::{OrderCreated, Subject};
use tokio::{sync::Barrier, task::JoinSet};
use uuid::Uuid;

use crate::helpers::OrderReply as _;
use crate::helpers::{POOL_SIZE, Reply, TestApp, User, spawn_app};

const RACERS: usize = 100;

/// `RACERS` requests for `ticket`, one per user, released together; the replies in the order
/// of `users`.
async fn race(app: &Arc<TestApp>, users: &[User], ticket: Uuid) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(users.len()));
    let mut racers = JoinSet::new();
    for (n, user) in users.iter().enumerate() {
        let (app, barrier, user) = (app.clone(), barrier.clone(), user.clone());
        racers.spawn(async move {
            barrier.wait().await;
            (n, app.order(&user, ticket).await)
        });
    }
    let mut replies = racers.join_all().await;
    replies.sort_by_key(|(n, _)| *n);
    replies.into_iter().map(|(_, reply)| reply).collect()
}

/// Asserts one 201 and only 409s otherwise, and that the database holds exactly the winner's
/// order and its one event; returns the winner's index and order id.
async fn assert_one_winner(app: &TestApp, replies: &[Reply], ticket: Uuid) -> (usize, Uuid) {
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "server errors: {statuses:?}"
    );
    let winners: Vec<usize> = (0..replies.len())
        .filter(|&n| replies[n].status == StatusCode::CREATED)
        .collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    let losers = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .inspect(|r| {
            r.error();
        })
        .count();
    assert_eq!(losers, replies.len() - 1, "{statuses:?}");

    let winner = replies[winners[0]].order();
    let rows = app.orders_of_ticket(ticket).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].id, rows[0].status.as_str()),
        (winner.id, "created")
    );
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE subject = $1 AND payload::jsonb #>> '{data,ticket,id}' = $2",
    )
    .bind(Subject::OrderCreated.as_str())
    .bind(ticket.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(events, 1, "order.created events for the ticket");
    (winners[0], winner.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_buyers_racing_for_one_ticket_produce_exactly_one_order() {
    assert!(RACERS > POOL_SIZE as usize);
    let app = Arc::new(spawn_app().await);
    let ticket = app.insert_ticket("Concert", 5000).await;
    let users: Vec<User> = (0..RACERS).map(|_| app.user()).collect();

    let replies = race(&app, &users, ticket).await;

    let (winner, order_id) = assert_one_winner(&app, &replies, ticket).await;
    assert_eq!(app.order_count().await, 1);
    assert_eq!(
        app.wait_for_order_events::<OrderCreated>(order_id, 1)
            .await
            .len(),
        1
    );
    // Losers have nothing to show for it.
    let loser = &users[(winner + 1) % RACERS];
    assert!(app.list(Some(loser)).await.orders().is_empty());

    // Once the winner cancels, a loser gets the ticket at once.
    app.cancel_order(&users[winner], order_id).await;
    let second = app.create_order(loser, ticket).await;
    assert_eq!(second.user_id, loser.id);
    let rows = app.orders_of_ticket(ticket).await;
    assert_eq!(
        rows.iter()
            .map(|r| (r.id, r.status.as_str()))
            .collect::<Vec<_>>(),
        [(order_id, "cancelled"), (second.id, "created")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn races_repeated_over_several_tickets_each_have_exactly_one_winner() {
    const ROUNDS: usize = 5;
    let app = Arc::new(spawn_app().await);
    let users: Vec<User> = (0..RACERS).map(|_| app.user()).collect();

    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let ticket = app
            .insert_ticket(&format!("Show {round}"), 1000 + round as i64)
            .await;
        let replies = race(&app, &users, ticket).await;
        winners.push(assert_one_winner(&app, &replies, ticket).await);
    }

    assert_eq!(app.order_count().await, ROUNDS as i64);
    assert_eq!(app.outbox_count(Subject::OrderCreated).await, ROUNDS as i64);
    let listed: usize = {
        let mut total = 0;
        for user in &users {
            total += app.list(Some(user)).await.orders().len();
        }
        total
    };
    assert_eq!(listed, ROUNDS, "winners: {winners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_buyer_sending_the_same_order_many_times_at_once_gets_one_order() {
    const COPIES: usize = 30;
    let app = Arc::new(spawn_app().await);
    let ticket = app.insert_ticket("Concert", 1000).await;
    let buyer = app.user();
    let users = vec![buyer.clone(); COPIES];

    let replies = race(&app, &users, ticket).await;

    let (_, order_id) = assert_one_winner(&app, &replies, ticket).await;
    let listed = app.list(Some(&buyer)).await.orders();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, order_id);
}
