//! Simultaneous payments for one order: one attempt, one provider call, one charge, one
//! `payment.created`, and every request answers the same payment.

use std::{sync::Arc, time::Duration};

use reqwest::StatusCode;
use tokio::{sync::Barrier, task::JoinSet};
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{POOL_SIZE, Reply, TestApp, User, spawn_app, spawn_app_with_slow_provider};

const RACERS: usize = 20;

/// `RACERS` payments of `order` by its buyer with `token`, released together.
async fn race(app: &Arc<TestApp>, buyer: &User, order: Uuid, token: &'static str) -> Vec<Reply> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut racers = JoinSet::new();
    for _ in 0..RACERS {
        let (app, barrier, buyer) = (app.clone(), barrier.clone(), buyer.clone());
        racers.spawn(async move {
            barrier.wait().await;
            app.pay(&buyer, order, token).await
        });
    }
    racers.join_all().await
}

/// Asserts the database and the stream hold exactly one payment of `order`, charged once,
/// announced once, and returns its id.
async fn assert_charged_once(app: &TestApp, order: Uuid) -> Uuid {
    let row = app.payment_row(order).await.expect("payment stored");
    assert_eq!(row.state, "succeeded", "{row:?}");
    let calls: Vec<_> = app
        .dev()
        .calls()
        .into_iter()
        .filter(|c| c.order_id == order)
        .collect();
    assert_eq!(calls.len(), 1, "provider calls for the order: {calls:?}");
    let charges: Vec<_> = app
        .dev()
        .charges()
        .into_iter()
        .filter(|c| c.order_id == order)
        .collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(row.charge_id.as_deref(), Some(charges[0].id.as_str()));
    let outbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE subject = 'payment.created'
         AND payload::jsonb #>> '{data,orderId}' = $1",
    )
    .bind(order.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(outbox, 1, "payment.created rows for the order");
    assert_eq!(app.wait_for_payment_events(order, 1).await.len(), 1);
    assert_eq!(app.order_state(order).await.0, "complete");
    row.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_payments_for_one_order_make_one_charge_and_all_answer_the_same_payment()
 {
    assert!(RACERS > POOL_SIZE as usize);
    // The charge takes a second, so every racer arrives while it is in flight.
    let app = Arc::new(spawn_app_with_slow_provider(Duration::from_secs(1)).await);
    for round in 0..3 {
        let buyer = app.user();
        let order = app.insert_order(&buyer, 1999 + round).await;

        let replies = race(&app, &buyer, order, "tok_visa").await;

        let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "round {round}: {statuses:?}"
        );
        let payment_id = assert_charged_once(&app, order).await;
        for reply in &replies {
            assert_eq!(reply.payment_id(), payment_id);
        }
        // Once paid, a late request is refused.
        app.pay(&buyer, order, "tok_visa")
            .await
            .assert_error(StatusCode::CONFLICT);
    }
    assert_eq!(app.dev().calls().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_payments_with_a_declined_card_make_one_call_and_all_answer_402() {
    let app = Arc::new(spawn_app_with_slow_provider(Duration::from_secs(1)).await);
    let buyer = app.user();
    let order = app.insert_order(&buyer, 1000).await;

    let replies = race(&app, &buyer, order, "tok_chargeDeclined").await;

    for reply in &replies {
        reply.assert_error(StatusCode::PAYMENT_REQUIRED);
        assert_eq!(reply.error_message(), "Your card was declined.");
    }
    assert_eq!(app.dev().calls().len(), 1);
    let row = app.payment_row(order).await.unwrap();
    assert_eq!((row.state.as_str(), row.attempt), ("declined", 1));
    assert_eq!(app.order_state(order).await, ("created".into(), 0));
    assert_eq!(
        app.outbox_count(ticketing_events::Subject::PaymentCreated)
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_payments_against_a_fast_provider_still_charge_once_and_never_disagree() {
    // No delay: some racers may come after the payment was recorded. They get 409, never a
    // second charge, a 5xx, or another payment. Repeated so a rare interleaving shows.
    const ROUNDS: i64 = 25;
    let app = Arc::new(spawn_app().await);
    for round in 0..ROUNDS {
        let buyer = app.user();
        let order = app.insert_order(&buyer, 500 + round).await;

        let replies = race(&app, &buyer, order, "tok_visa").await;

        let payment_id = assert_charged_once(&app, order).await;
        let mut created = 0;
        for reply in &replies {
            match reply.status {
                StatusCode::CREATED => {
                    created += 1;
                    assert_eq!(reply.payment_id(), payment_id);
                }
                StatusCode::CONFLICT => {
                    assert_eq!(reply.error_message(), "The order is already paid")
                }
                other => panic!("round {round}: unexpected {other}: {}", reply.text),
            }
        }
        assert!(
            created >= 1,
            "round {round}: nobody was answered the payment"
        );
    }
    assert_eq!(app.payment_count().await, ROUNDS);
}
