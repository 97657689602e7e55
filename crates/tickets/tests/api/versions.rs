//! A ticket's version starts at 0 and grows by exactly one per accepted change, whatever
//! made the change, and every event carries the version it produced.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::{TicketCreated, TicketUpdated};
use uuid::Uuid;

use crate::helpers::TicketReply as _;
use crate::helpers::{order_cancelled, order_created, spawn_app, ticket_input};

#[tokio::test]
async fn the_version_grows_by_one_per_accepted_change_across_edit_reserve_and_release() {
    let app = spawn_app().await;
    let seller = app.user();
    let order_id = Uuid::now_v7();

    let created = app.create_ticket(&seller, "Concert", 20).await;
    assert_eq!(created.version, 0);

    let edited = app
        .put_ticket(
            Some(&seller),
            &created.id.to_string(),
            &ticket_input("Opera", 25),
        )
        .await;
    edited.assert_status(StatusCode::OK);
    assert_eq!(edited.ticket().version, 1);

    app.publish(&order_created(&edited.ticket(), order_id))
        .await;
    let reserved = app
        .wait_for_row(created.id, "reserved", |row| row.order_id.is_some())
        .await;
    assert_eq!(reserved.version, 2);
    // A refused edit in between is not a change.
    app.put_ticket(
        Some(&seller),
        &created.id.to_string(),
        &ticket_input("Ballet", 30),
    )
    .await
    .assert_status(StatusCode::CONFLICT);

    app.publish(&order_cancelled(created.id, order_id)).await;
    let released = app
        .wait_for_row(created.id, "released", |row| row.order_id.is_none())
        .await;
    assert_eq!(released.version, 3);
    app.settle().await;

    let shown = app.show(created.id).await;
    assert_eq!(
        (shown.title.as_str(), shown.version, shown.order_id),
        ("Opera", 3, None)
    );
    let created_events = app.ticket_events::<TicketCreated>(created.id).await;
    assert_eq!(created_events.len(), 1);
    assert_eq!(created_events[0]["version"], json!(0));
    let updated: Vec<_> = app
        .ticket_events::<TicketUpdated>(created.id)
        .await
        .into_iter()
        .map(|data| {
            (
                data["version"].clone(),
                data["title"].clone(),
                data["orderId"].clone(),
            )
        })
        .collect();
    assert_eq!(
        updated,
        [
            (json!(1), json!("Opera"), json!(null)),
            (json!(2), json!("Opera"), json!(order_id)),
            (json!(3), json!("Opera"), json!(null)),
        ]
    );
}
