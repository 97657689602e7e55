//! `DELETE /api/tickets/:id`: the owner withdraws an available ticket. It answers 404 from
//! then on, leaves every list, is announced once as `ticket.withdrawn`, and an order that
//! arrives for it afterwards is acknowledged without reserving it.

use reqwest::StatusCode;
use serde_json::json;
use ticketing_events::{Subject, TicketWithdrawn};
use uuid::Uuid;

use crate::helpers::{order_completed, order_created, spawn_app, ticket_input};

#[tokio::test]
async fn the_owner_withdraws_an_available_ticket_and_it_is_gone_everywhere_at_once() {
    let app = spawn_app().await;
    let seller = app.user();
    let kept = app.create_ticket(&seller, "Kept", 10).await;
    let ticket = app.create_ticket(&seller, "Gone", 20).await;
    // Warm the cache, so that a stale copy would show.
    assert_eq!(app.show(ticket.id).await.id, ticket.id);
    assert_eq!(app.list("?limit=20").await.len(), 2);

    let reply = app
        .delete_ticket(Some(&seller), &ticket.id.to_string())
        .await;

    reply.assert_status(StatusCode::NO_CONTENT);
    app.get(&format!("/api/tickets/{}", ticket.id))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    assert_eq!(app.list("?limit=20").await, std::slice::from_ref(&kept));
    assert_eq!(app.list("").await, std::slice::from_ref(&kept));
    assert_eq!(app.mine(&seller, "").await, [kept]);
    let events = app
        .wait_for_events_about::<TicketWithdrawn>("id", ticket.id, 1)
        .await;
    assert_eq!(events[0], json!({"id": ticket.id, "version": 1}));

    // Gone for good: a second withdrawal and an edit are 404, and nothing more is announced.
    app.delete_ticket(Some(&seller), &ticket.id.to_string())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.put_ticket(
        Some(&seller),
        &ticket.id.to_string(),
        &ticket_input("Back", 5),
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::TicketWithdrawn).await, 1);
    assert_eq!(
        app.ticket_events::<TicketWithdrawn>(ticket.id).await.len(),
        1
    );
}

#[tokio::test]
async fn only_the_owner_may_withdraw_and_only_while_nobody_holds_the_ticket() {
    let app = spawn_app().await;
    let (seller, other) = (app.user(), app.user());
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    let id = ticket.id.to_string();

    app.delete_ticket(None, &id)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.delete_ticket(Some(&other), &id)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.delete_ticket(Some(&seller), &Uuid::now_v7().to_string())
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.delete_ticket(Some(&seller), "not-an-id")
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.wait_for_status(ticket.id, "reserved").await;
    let refused = app.delete_ticket(Some(&seller), &id).await;
    refused.assert_status(StatusCode::CONFLICT);
    assert!(
        refused.json()["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("withdrawn")),
        "{}",
        refused.json()
    );

    app.publish(&order_completed(ticket.id, order_id)).await;
    app.wait_for_status(ticket.id, "sold").await;
    app.delete_ticket(Some(&seller), &id)
        .await
        .assert_status(StatusCode::CONFLICT);

    let shown = app.show(ticket.id).await;
    assert_eq!((shown.status.as_str(), shown.version), ("sold", 2));
    assert_eq!(app.outbox_count(Subject::TicketWithdrawn).await, 0);
}

#[tokio::test]
async fn an_order_that_arrives_after_the_withdrawal_is_acknowledged_and_reserves_nothing() {
    let app = spawn_app().await;
    let seller = app.user();
    let ticket = app.create_ticket(&seller, "Concert", 20).await;
    app.delete_ticket(Some(&seller), &ticket.id.to_string())
        .await
        .assert_status(StatusCode::NO_CONTENT);

    let order_id = Uuid::now_v7();
    app.publish(&order_created(&ticket, order_id)).await;
    app.publish(&order_completed(ticket.id, order_id)).await;
    app.wait_until_handled(Subject::OrderCreated).await;
    app.wait_until_handled(Subject::OrderCompleted).await;
    app.settle().await;

    let row = app.row(ticket.id).await.unwrap();
    assert_eq!((row.order_id, row.version), (None, 1));
    assert_eq!(app.parked_count().await, 0, "nothing parked");
    assert_eq!(app.outbox_count(Subject::TicketUpdated).await, 0);
}

#[tokio::test]
async fn a_withdrawal_racing_reservations_either_wins_or_is_refused_never_both() {
    let app = spawn_app().await;
    let seller = app.user();
    for _ in 0..20 {
        let ticket = app.create_ticket(&seller, "Race", 20).await;
        let order_id = Uuid::now_v7();
        let (id, created) = (ticket.id.to_string(), order_created(&ticket, order_id));
        let (withdrawn, _) =
            tokio::join!(app.delete_ticket(Some(&seller), &id), app.publish(&created),);
        app.wait_until_handled(Subject::OrderCreated).await;
        let row = app.row(ticket.id).await.unwrap();
        match withdrawn.status {
            StatusCode::NO_CONTENT => {
                assert_eq!(row.order_id, None, "a withdrawn ticket was reserved");
                app.get(&format!("/api/tickets/{}", ticket.id))
                    .await
                    .assert_status(StatusCode::NOT_FOUND);
            }
            StatusCode::CONFLICT => {
                assert_eq!(row.order_id, Some(order_id));
                assert_eq!(app.show(ticket.id).await.status, "reserved");
            }
            other => panic!("withdrawal answered {other}: {}", withdrawn.text),
        }
    }
}

#[tokio::test]
async fn a_seller_sees_their_own_listings_in_every_state_newest_first_in_pages() {
    let app = spawn_app().await;
    let (seller, other) = (app.user(), app.user());
    let mut mine = Vec::new();
    for n in 0..5 {
        mine.push(app.create_ticket(&seller, &format!("Mine {n}"), 10).await);
        app.create_ticket(&other, &format!("Theirs {n}"), 10).await;
    }
    let (reserved, sold) = (mine[1].clone(), mine[2].clone());
    let withdrawn = app.create_ticket(&seller, "Withdrawn", 10).await;
    app.delete_ticket(Some(&seller), &withdrawn.id.to_string())
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let sold_order = Uuid::now_v7();
    app.publish(&order_created(&reserved, Uuid::now_v7())).await;
    app.publish(&order_created(&sold, sold_order)).await;
    app.publish(&order_completed(sold.id, sold_order)).await;
    app.wait_for_status(reserved.id, "reserved").await;
    app.wait_for_status(sold.id, "sold").await;

    let listed = app.mine(&seller, "").await;

    let ids: Vec<Uuid> = listed.iter().map(|t| t.id).collect();
    let expected: Vec<Uuid> = mine.iter().rev().map(|t| t.id).collect();
    assert_eq!(
        ids, expected,
        "own tickets only, newest first, none withdrawn"
    );
    let statuses: Vec<&str> = listed.iter().map(|t| t.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["available", "available", "sold", "reserved", "available"]
    );
    // The public list shows neither the held tickets nor the withdrawn one.
    assert_eq!(app.list("").await.len(), 3 + 5);

    // Paged both ways.
    let first = app.mine(&seller, "?limit=2").await;
    assert_eq!(
        first.iter().map(|t| t.id).collect::<Vec<_>>(),
        &expected[..2]
    );
    let next = app
        .mine(&seller, &format!("?limit=2&before={}", first[1].id))
        .await;
    assert_eq!(
        next.iter().map(|t| t.id).collect::<Vec<_>>(),
        &expected[2..4]
    );
    let back = app
        .mine(&seller, &format!("?limit=2&after={}", next[0].id))
        .await;
    assert_eq!(back, first);

    app.get("/api/tickets/mine")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let other_listed = app.mine(&other, "").await;
    assert_eq!(other_listed.len(), 5);
    assert!(other_listed.iter().all(|t| t.user_id == other.id));
}

#[tokio::test]
async fn after_gives_the_previous_page_of_the_public_list_newest_first() {
    let app = spawn_app().await;
    let seller = app.user();
    let mut created = Vec::new();
    for n in 0..7 {
        created.push(
            app.create_ticket(&seller, &format!("Show {n}"), 10)
                .await
                .id,
        );
    }
    created.reverse(); // newest first

    let first = app.list("?limit=3").await;
    let second = app.list(&format!("?limit=3&before={}", first[2].id)).await;
    let third = app.list(&format!("?limit=3&before={}", second[2].id)).await;
    assert_eq!(third.len(), 1);

    let back_to_second = app.list(&format!("?limit=3&after={}", third[0].id)).await;
    assert_eq!(back_to_second, second);
    let back_to_first = app.list(&format!("?limit=3&after={}", second[0].id)).await;
    assert_eq!(back_to_first, first);
    assert!(
        app.list(&format!("?limit=3&after={}", created[0]))
            .await
            .is_empty()
    );
    // Near the newest end, the previous page is short, never overlapping.
    let short = app.list(&format!("?limit=3&after={}", created[2])).await;
    assert_eq!(
        short.iter().map(|t| t.id).collect::<Vec<_>>(),
        &created[..2]
    );

    for bad in [
        "?after=nope".to_owned(),
        format!("?after={}&before={}", created[0], created[1]),
    ] {
        let reply = app.get(&format!("/api/tickets{bad}")).await;
        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["errors"][0]["field"], json!("after"), "{bad}");
    }
}
