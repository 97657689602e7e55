//! `payment.created` completes a live order; a payment for a cancelled order keeps it
//! cancelled (payments refunds that charge) and is logged and counted. `payment.refunded`
//! makes a paid order `refunded` and announces it, so the ticket goes back on sale.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use ticketing_common::testing::eventually;
use ticketing_events::{OrderCancelled, OrderRefunded, Subject};
use ticketing_orders::flows::PAYMENTS_FOR_CANCELLED;

use crate::helpers::OrderReply as _;
use crate::helpers::{
    counter, payment_created, payment_refunded, spawn_app, spawn_app_behind_gate,
};

#[tokio::test]
async fn payment_created_completes_a_live_order_once_and_its_ticket_stays_held() {
    let app = spawn_app().await;
    let buyer = app.user();
    let ticket = app.seed_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    let paid = payment_created(order.id);

    app.publish(&paid).await;

    app.wait_for_order(order.id, "paid", |row| row.status == "complete")
        .await;
    let shown = app.show(Some(&buyer), &order.id.to_string()).await.order();
    assert_eq!((shown.status.as_str(), shown.version), ("complete", 1));

    // A redelivery changes nothing.
    app.publish(&paid).await;
    app.settle().await;
    assert_eq!(app.order_state(order.id).await, ("complete".into(), 1));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 0);
    app.order(&app.user(), ticket)
        .await
        .assert_error(StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_payment_for_a_cancelled_order_keeps_it_cancelled_and_is_counted() {
    let app = spawn_app().await;
    let (buyer, next_buyer) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    app.cancel_order(&buyer, order.id).await;
    let next = app.create_order(&next_buyer, ticket).await;
    let counted_before = counter(PAYMENTS_FOR_CANCELLED);
    let paid = payment_created(order.id);

    app.publish(&paid).await;
    app.settle().await;

    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    assert!(counter(PAYMENTS_FOR_CANCELLED) > counted_before);
    // The ticket's new order is untouched, and nothing more was announced.
    assert_eq!(app.order_state(next.id).await, ("created".into(), 0));
    assert_eq!(app.outbox_count(Subject::OrderCancelled).await, 1);
    assert_eq!(app.order_events::<OrderCancelled>(order.id).await.len(), 1);
}

#[tokio::test]
async fn a_refund_makes_a_paid_order_refunded_once_announces_it_and_frees_the_ticket() {
    let app = spawn_app().await;
    let (buyer, next_buyer) = (app.user(), app.user());
    let ticket = app.insert_ticket("Concert", 1000).await;
    let order = app.create_order(&buyer, ticket).await;
    app.publish(&payment_created(order.id)).await;
    app.wait_for_order(order.id, "paid", |row| row.status == "complete")
        .await;
    let refunded = payment_refunded(order.id);

    app.publish(&refunded).await;
    app.wait_for_order(order.id, "refunded", |row| row.status == "refunded")
        .await;
    // A redelivery changes nothing.
    app.publish(&refunded).await;
    app.settle().await;

    assert_eq!(app.order_state(order.id).await, ("refunded".into(), 2));
    let shown = app.show(Some(&buyer), &order.id.to_string()).await.order();
    assert_eq!((shown.status.as_str(), shown.version), ("refunded", 2));
    let announced = app
        .wait_for_order_events::<OrderRefunded>(order.id, 1)
        .await;
    assert_eq!(
        announced,
        [json!({"id": order.id, "version": 2, "ticket": {"id": ticket}})]
    );
    app.cancel(Some(&buyer), &order.id.to_string())
        .await
        .assert_error(StatusCode::CONFLICT);
    // Anyone may order the ticket again.
    app.create_order(&next_buyer, ticket).await;
}

#[tokio::test]
async fn a_refund_of_a_cancelled_order_keeps_it_cancelled_and_announces_nothing() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;
    app.cancel_order(&buyer, order.id).await;

    app.publish(&payment_created(order.id)).await;
    app.publish(&payment_refunded(order.id)).await;
    app.settle().await;

    assert_eq!(app.order_state(order.id).await, ("cancelled".into(), 1));
    assert_eq!(app.outbox_count(Subject::OrderRefunded).await, 0);
}

#[tokio::test]
async fn a_refund_that_overtakes_its_payment_waits_for_it() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;

    app.publish(&payment_refunded(order.id)).await;
    // Not applied to an order that is not paid yet, and not dropped either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.order_state(order.id).await, ("created".into(), 0));
    app.publish(&payment_created(order.id)).await;

    app.wait_for_order(order.id, "refunded after its payment", |row| {
        row.status == "refunded"
    })
    .await;
    assert_eq!(app.order_state(order.id).await, ("refunded".into(), 2));
}

#[tokio::test]
async fn a_payment_created_during_a_long_database_outage_completes_the_order_when_it_returns() {
    let (app, gate) = spawn_app_behind_gate().await;
    let buyer = app.user();
    let order = app
        .create_order(&buyer, app.insert_ticket("Concert", 1000).await)
        .await;

    gate.close();
    app.publish(&payment_created(order.id)).await;
    // Far more tries than a handler gets for a mistake, each seen as the outage it is: an
    // outage is waited out, not parked.
    let waited = eventually(Duration::from_secs(60), || async {
        (tries("unavailable") > 5).then_some(())
    })
    .await;
    assert!(
        waited.is_some(),
        "the handler kept trying while the database was gone"
    );
    assert_eq!(tries("failed"), 0, "no try counted as a mistake");
    gate.open().await;

    // The next try comes within the retry delay reached (at most 30 s).
    let completed = eventually(Duration::from_secs(45), || async {
        app.order_row(order.id)
            .await
            .filter(|o| o.status == "complete")
    })
    .await
    .expect("completed once the database came back");
    assert_eq!(completed.version, 1);
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(parked, 0, "nothing was parked");
}

/// Tries of `payment.created` by orders in this process that ended with `outcome`.
fn tries(outcome: &str) -> u64 {
    ticketing_common::metrics::render()
        .lines()
        .filter(|line| {
            line.starts_with("events_consumed_total{")
                && line.contains("service=\"orders\"")
                && line.contains("subject=\"payment.created\"")
                && line.contains(&format!("outcome=\"{outcome}\""))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn while_the_database_is_away_requests_answer_503_with_retry_after_and_succeed_once_it_is_back()
 {
    let (app, gate) = spawn_app_behind_gate().await;
    let buyer = app.user();
    let ticket = app.insert_ticket("Concert", 1000).await;

    gate.close();
    let refused = app.order(&buyer, ticket).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.headers.contains_key("retry-after"),
        "{:?}",
        refused.headers
    );
    let listed = app.list(Some(&buyer)).await;
    listed.assert_error(StatusCode::SERVICE_UNAVAILABLE);

    gate.open().await;
    let ordered = eventually(Duration::from_secs(10), || async {
        let reply = app.order(&buyer, ticket).await;
        (reply.status == StatusCode::CREATED).then_some(reply)
    })
    .await;
    assert!(
        ordered.is_some(),
        "the order is taken once the database is back"
    );
}
