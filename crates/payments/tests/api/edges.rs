//! The edges around a payment: paying the instant an order is answered (payments waits for
//! the order), card testing (429 after 5 declines in 10 minutes), a deadline that passed
//! before its cancellation arrived, a charge that lands on an order cancelled meanwhile
//! (refunded automatically), and an attempt whose answer was lost and that nobody came back
//! for (the reconciler settles it).

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::Subject;
use ticketing_payments::flows;
use uuid::Uuid;

use crate::helpers::PaymentReply as _;
use crate::helpers::{order_cancelled, order_created, spawn_app, spawn_app_with_slow_provider};

#[tokio::test]
async fn twenty_buyers_paying_before_the_replica_knows_their_orders_all_get_201() {
    let app = spawn_app().await;
    let buyers: Vec<_> = (0..20).map(|_| app.user()).collect();
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();

    // Every payment is on its way before its order.created is published.
    let payments = join_all(
        buyers
            .iter()
            .zip(&orders)
            .map(|(buyer, order)| app.pay(buyer, *order, "tok_visa")),
    );
    let announce = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (buyer, order) in buyers.iter().zip(&orders) {
            app.publish(&order_created(*order, buyer.id, 1000)).await;
        }
    };
    let (replies, ()) = tokio::join!(payments, announce);

    for reply in &replies {
        reply.created();
    }
    assert_eq!(app.dev().charges().len(), 20);
}

#[tokio::test]
async fn an_order_that_never_arrives_is_404_after_the_wait() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();

    app.pay(&app.user(), Uuid::now_v7(), "tok_visa")
        .await
        .assert_error(StatusCode::NOT_FOUND);

    assert!(started.elapsed() >= Duration::from_secs(2), "it waited");
    assert!(app.dev().calls().is_empty());
}

#[tokio::test]
async fn after_five_declines_in_ten_minutes_a_buyer_is_refused_429_without_the_provider() {
    let app = spawn_app().await;
    let buyer = app.user();
    for _ in 0..5 {
        let order = app.seed_order(&buyer, 1000).await;
        app.pay(&buyer, order, "tok_chargeDeclined")
            .await
            .assert_error(StatusCode::PAYMENT_REQUIRED);
    }
    let calls = app.dev().calls().len();
    let order = app.seed_order(&buyer, 1000).await;

    let refused = app.pay(&buyer, order, "tok_visa").await;

    refused.assert_error(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    assert_eq!(app.dev().calls().len(), calls, "the provider was not asked");
    // Another buyer is not affected.
    let other = app.user();
    let theirs = app.seed_order(&other, 1000).await;
    app.pay(&other, theirs, "tok_visa").await.created();
}

#[tokio::test]
async fn a_charge_is_refused_once_the_orders_deadline_passed_even_before_its_cancellation() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = Uuid::now_v7();
    let mut created = order_created(order, buyer.id, 1000);
    created.data.expires_at = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    app.publish(&created).await;
    app.wait_for_order(order, "learnt", |_| true).await;

    let refused = app.pay(&buyer, order, "tok_visa").await;

    refused.assert_error(StatusCode::CONFLICT);
    assert!(
        refused.error_message().contains("expired"),
        "{}",
        refused.text
    );
    assert!(app.dev().calls().is_empty());
}

#[tokio::test]
async fn a_charge_landing_on_an_order_cancelled_meanwhile_is_refunded_automatically() {
    let app = spawn_app_with_slow_provider(Duration::from_millis(500)).await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 1200).await;

    let paying = app.pay(&buyer, order, "tok_visa");
    let cancelling = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        app.publish(&order_cancelled(order, 1)).await;
        app.wait_for_order(order, "cancelled", |row| row.status == "cancelled")
            .await;
    };
    let (reply, _) = tokio::join!(paying, cancelling);

    reply.assert_error(StatusCode::CONFLICT);
    app.wait_for_payment(order, "refunded", |row| row.state == "refunded")
        .await;
    assert_eq!(app.order_state(order).await, ("cancelled".into(), 1));
    let (made, _) = app.dev().refunds();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].0.amount_cents, 1200);
    let refund = app.refund_row(order).await.unwrap();
    assert_eq!(
        (refund.0.as_str(), refund.1.as_str()),
        ("succeeded", "cancelled_order")
    );
    // Announced as a refunded payment, never as an order.refunded (orders keeps it cancelled).
    assert_eq!(app.wait_for_refund_events(order, 1).await.len(), 1);
    assert_eq!(app.outbox_count(Subject::OrderRefunded).await, 0);
}

#[tokio::test]
async fn the_reconciler_settles_an_attempt_whose_answer_was_lost_and_a_refund_left_pending() {
    let app = spawn_app().await;
    let buyer = app.user();
    let order = app.seed_order(&buyer, 3000).await;
    // The provider was down for the buyer's only try, and they never came back.
    app.dev().set_unavailable(true);
    app.pay(&buyer, order, "tok_visa")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);
    app.dev().set_unavailable(false);
    // Old enough to count as abandoned.
    sqlx::query("UPDATE payments SET updated_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();

    flows::reconcile_once(&app.payments).await.unwrap();

    let row = app.payment_row(order).await.unwrap();
    assert_eq!(row.state, "succeeded");
    assert_eq!(app.dev().charges().len(), 1);
    assert_eq!(app.order_state(order).await.0, "complete");
    assert_eq!(
        app.wait_for_payment_events(order, 1).await[0]["id"],
        json!(row.id)
    );

    // A refund whose call got no answer is settled by the next round.
    let operator = app.operator();
    app.dev().set_unavailable(true);
    app.refund(Some(&operator), order)
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE);
    app.dev().set_unavailable(false);
    flows::reconcile_once(&app.payments).await.unwrap();
    assert_eq!(app.refund_row(order).await.unwrap().0, "succeeded");
    assert_eq!(app.order_state(order).await.0, "refunded");
}
