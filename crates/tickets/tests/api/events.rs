//! `/api/events`: events with many seats. Each seat is a ticket whose id every service derives
//! from the event id and the seat label; an event travels as one `event.created`; `available`
//! follows the seats' reservations within a second, read from the cache.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ticketing_common::testing::api::Reply;
use ticketing_events::{EventCreated, EventUpdated, Subject, TicketCreated, seat_id};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

use crate::helpers::{
    TestApp, TicketBody, order_cancelled, order_completed, order_created, order_refunded,
    spawn_app, ticket_of,
};

fn in_days(days: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(days))
        .replace_nanosecond(0)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

fn event_input(title: &str, seats: i64, days: i64) -> Value {
    json!({"title": title, "venue": "Town hall", "startsAt": in_days(days), "price": 25,
           "seats": seats, "description": "Doors at 19:00.\nBring a coat."})
}

async fn post_event(
    app: &TestApp,
    user: &ticketing_common::testing::api::User,
    body: &Value,
) -> Reply {
    app.send_json(Method::POST, "/api/events", Some(user), body)
        .await
}

async fn create_event(
    app: &TestApp,
    user: &ticketing_common::testing::api::User,
    body: Value,
) -> Value {
    let reply = post_event(app, user, &body).await;
    reply.assert_status(StatusCode::CREATED);
    reply.json()
}

async fn event(app: &TestApp, id: &Value) -> Value {
    let reply = app
        .get(&format!("/api/events/{}", id.as_str().unwrap()))
        .await;
    reply.assert_status(StatusCode::OK);
    reply.json()
}

async fn seats(app: &TestApp, event_id: &Value, limit: usize) -> Vec<TicketBody> {
    let reply = app
        .get(&format!(
            "/api/tickets?eventId={}&limit={limit}",
            event_id.as_str().unwrap()
        ))
        .await;
    reply.assert_status(StatusCode::OK);
    reply
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(seat_of)
        .collect()
}

/// A seat's JSON: a ticket's keys plus `eventId` and `seat`.
fn seat_of(value: &Value) -> TicketBody {
    let mut plain = value.clone();
    let object = plain.as_object_mut().unwrap();
    assert!(
        object.remove("eventId").is_some_and(|e| e.is_string()),
        "{value}"
    );
    assert!(
        object.remove("seat").is_some_and(|s| s.is_string()),
        "{value}"
    );
    ticket_of(&plain)
}

#[tokio::test]
async fn an_organiser_creates_an_event_whose_seats_are_tickets_announced_in_one_message() {
    let app = spawn_app().await;
    let organiser = app.user();

    let created = create_event(&app, &organiser, event_input(" Winter concert ", 5, 10)).await;

    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "available",
            "description",
            "id",
            "maxPerBuyer",
            "price",
            "seats",
            "startsAt",
            "title",
            "userId",
            "venue",
            "version"
        ]
    );
    assert_eq!(created["title"], "Winter concert");
    assert_eq!(
        (created["seats"].clone(), created["available"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(
        (created["maxPerBuyer"].clone(), created["version"].clone()),
        (json!(4), json!(0))
    );
    assert_eq!(created["price"], json!(25));
    assert_eq!(created["userId"], json!(organiser.id));
    assert_eq!(event(&app, &created["id"]).await, created);

    let event_id = Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    let listed = seats(&app, &created["id"], 100).await;
    let labels: Vec<Uuid> = listed.iter().map(|t| t.id).collect();
    let expected: Vec<Uuid> = (1..=5).map(|n| seat_id(event_id, &n.to_string())).collect();
    assert_eq!(
        labels, expected,
        "seat ids are the UUID v5 of the event id and the label"
    );
    let raw = app
        .get(&format!("/api/tickets/{}", expected[2]))
        .await
        .json();
    assert_eq!(
        (raw["eventId"].clone(), raw["seat"].clone()),
        (json!(event_id), json!("3"))
    );
    assert_eq!(raw["status"], "available");

    // Seats stay out of the resale list and out of "my listings".
    assert!(app.list("").await.is_empty());
    assert!(app.mine(&organiser, "").await.is_empty());

    // One message for the event, none per seat.
    let events = app
        .wait_for_events_about::<EventCreated>("id", event_id, 1)
        .await;
    assert_eq!(
        events[0],
        json!({"id": event_id, "version": 0, "title": "Winter concert", "price": 25,
               "seats": 5, "userId": organiser.id, "startsAt": created["startsAt"],
               "maxPerBuyer": 4})
    );
    app.settle().await;
    assert_eq!(app.outbox_count(Subject::TicketCreated).await, 0);
    assert!(app.published::<TicketCreated>().await.is_empty());
}

#[tokio::test]
async fn every_refused_field_is_named_and_nothing_is_created() {
    let app = spawn_app().await;
    let organiser = app.user();
    app.send_json(
        Method::POST,
        "/api/events",
        None,
        &event_input("Show", 5, 1),
    )
    .await
    .assert_status(StatusCode::UNAUTHORIZED);

    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"venue": "x".repeat(201)}), "venue"),
        (json!({"description": "x".repeat(5001)}), "description"),
        (json!({"startsAt": in_days(-1)}), "startsAt"),
        (json!({"startsAt": "next tuesday"}), "startsAt"),
        (json!({"price": 0}), "price"),
        (json!({"seats": 0}), "seats"),
        (json!({"seats": 100001}), "seats"),
        (json!({"maxPerBuyer": 11}), "maxPerBuyer"),
        (json!({"maxPerBuyer": 0}), "maxPerBuyer"),
    ];
    for (change, field) in cases {
        let mut body = event_input("Show", 5, 1);
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let reply = post_event(&app, &organiser, &body).await;
        reply.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(
            reply.json()["errors"][0]["field"],
            json!(field),
            "{change}: {}",
            reply.text
        );
    }
    let all = post_event(&app, &organiser, &json!({})).await;
    all.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(
        all.json()["errors"].as_array().unwrap().len(),
        5,
        "{}",
        all.text
    );
    app.get("/api/events").await.assert_status(StatusCode::OK);
    assert_eq!(app.get("/api/events").await.json(), json!([]));
}

#[tokio::test]
async fn upcoming_events_are_listed_soonest_first_paged_and_searchable() {
    let app = spawn_app().await;
    let organiser = app.user();
    let later = create_event(&app, &organiser, event_input("Jazz night", 2, 30)).await;
    let soon = create_event(&app, &organiser, event_input("Opera gala", 2, 3)).await;
    let mut middle_input = event_input("Rock show", 2, 10);
    middle_input["venue"] = json!("Harbour Arena");
    middle_input["description"] = json!("Café concert. Bring a coat.");
    let middle = create_event(&app, &organiser, middle_input).await;
    // One that has started: never listed.
    sqlx::query("UPDATE events SET starts_at = now() - interval '1 hour' WHERE id = $1")
        .bind(Uuid::parse_str(later["id"].as_str().unwrap()).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let gone = later;
    let ids = |list: Value| -> Vec<Value> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].clone())
            .collect()
    };

    let listed = ids(app.get("/api/events?limit=50").await.json());
    assert_eq!(listed, [soon["id"].clone(), middle["id"].clone()]);
    assert!(!listed.contains(&gone["id"]));

    let first = ids(app.get("/api/events?limit=1").await.json());
    assert_eq!(first, [soon["id"].clone()]);
    let next = ids(app
        .get(&format!(
            "/api/events?limit=1&after={}",
            soon["id"].as_str().unwrap()
        ))
        .await
        .json());
    assert_eq!(next, [middle["id"].clone()]);

    let found = ids(app.get("/api/events?q=ARENA").await.json());
    assert_eq!(found, [middle["id"].clone()], "venue words, any case");
    let found = ids(app.get("/api/events?q=opera").await.json());
    assert_eq!(found, [soon["id"].clone()]);
    let found = ids(app.get("/api/events?q=rock%20SHOW").await.json());
    assert_eq!(found, [middle["id"].clone()], "percent-encoded words");
    let found = ids(app.get("/api/events?q=harbour+arena").await.json());
    assert_eq!(found, [middle["id"].clone()], "form-encoded words");
    app.get("/api/events?q=%FF")
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    let found = ids(app.get("/api/events?q=caf%C3%A9").await.json());
    assert_eq!(found, [middle["id"].clone()], "words beyond ASCII");
    let found = ids(app.get("/api/events?q=coat").await.json());
    assert_eq!(found.len(), 2, "description words");
    assert_eq!(
        app.get("/api/events?q=nothing-like-it").await.json(),
        json!([])
    );

    for bad in [
        "limit=0",
        "limit=101",
        "after=x",
        &format!("q={}", "x".repeat(201)),
    ] {
        let reply = app.get(&format!("/api/events?{bad}")).await;
        reply.assert_status(StatusCode::BAD_REQUEST);
    }
    app.get(&format!("/api/events/{}", Uuid::now_v7()))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    app.get("/api/events/not-an-id")
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let mine = app
        .send(Method::GET, "/api/events/mine", Some(&organiser), None)
        .await;
    mine.assert_status(StatusCode::OK);
    assert_eq!(mine.json().as_array().unwrap().len(), 3, "started ones too");
    app.get("/api/events/mine")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let newest = mine.json()[0]["id"].as_str().unwrap().to_owned();
    let older = app
        .send(
            Method::GET,
            &format!("/api/events/mine?limit=5&after={newest}"),
            Some(&organiser),
            None,
        )
        .await;
    assert_eq!(
        older.json().as_array().unwrap().len(),
        2,
        "the next page of mine"
    );
    let other = app
        .send(Method::GET, "/api/events/mine", Some(&app.user()), None)
        .await;
    assert_eq!(other.json(), json!([]));
}

#[tokio::test]
async fn the_organiser_edits_text_and_start_but_never_price_seats_or_limit() {
    let app = spawn_app().await;
    let (organiser, other) = (app.user(), app.user());
    let created = create_event(&app, &organiser, event_input("Show", 3, 5)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/api/events/{id}");
    // Warm the cache.
    assert_eq!(event(&app, &created["id"]).await["version"], 0);

    let mut edit = json!({"title": "Show (moved)", "venue": "Park", "description": "",
                          "startsAt": in_days(6), "price": 25, "seats": 3});
    let reply = app
        .send_json(Method::PUT, &path, Some(&organiser), &edit)
        .await;
    reply.assert_status(StatusCode::OK);
    let edited = reply.json();
    assert_eq!(
        (edited["title"].clone(), edited["version"].clone()),
        (json!("Show (moved)"), json!(1))
    );
    assert_eq!(event(&app, &created["id"]).await, edited, "fresh at once");
    let event_id = Uuid::parse_str(&id).unwrap();
    let updates = app
        .wait_for_events_about::<EventUpdated>("id", event_id, 1)
        .await;
    assert_eq!(
        (updates[0]["version"].clone(), updates[0]["title"].clone()),
        (json!(1), json!("Show (moved)"))
    );

    for (field, value) in [
        ("price", json!(30)),
        ("seats", json!(4)),
        ("maxPerBuyer", json!(2)),
    ] {
        let mut changed = edit.clone();
        changed[field] = value;
        app.send_json(Method::PUT, &path, Some(&organiser), &changed)
            .await
            .assert_status(StatusCode::CONFLICT);
    }
    app.send_json(Method::PUT, &path, Some(&other), &edit)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.send_json(Method::PUT, &path, None, &edit)
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    app.send_json(
        Method::PUT,
        &format!("/api/events/{}", Uuid::now_v7()),
        Some(&organiser),
        &edit,
    )
    .await
    .assert_status(StatusCode::NOT_FOUND);
    edit["startsAt"] = json!(in_days(-2));
    let bad = app
        .send_json(Method::PUT, &path, Some(&organiser), &edit)
        .await;
    bad.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["errors"][0]["field"], "startsAt");
    assert_eq!(
        event(&app, &created["id"]).await["version"],
        1,
        "refused edits change nothing"
    );

    // Its seats carry the new title (their versions do not move).
    let seat_ticket = app.show(seat_id(event_id, "2")).await;
    assert_eq!(
        (seat_ticket.title.as_str(), seat_ticket.version),
        ("Show (moved)", 0)
    );

    // A seat cannot be edited or withdrawn on its own.
    let seat = seat_id(event_id, "1").to_string();
    app.put_ticket(
        Some(&organiser),
        &seat,
        &json!({"title": "Mine", "price": 1}),
    )
    .await
    .assert_status(StatusCode::CONFLICT);
    app.delete_ticket(Some(&organiser), &seat)
        .await
        .assert_status(StatusCode::CONFLICT);
}

#[tokio::test]
async fn available_counts_down_with_orders_and_back_up_with_cancellations_and_refunds() {
    let app = spawn_app().await;
    let organiser = app.user();
    let created = create_event(&app, &organiser, event_input("Show", 4, 5)).await;
    let event_id = Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    let seat = |n: u32| ticket_of_seat(event_id, n);
    let available = || async {
        event(&app, &created["id"]).await["available"]
            .as_i64()
            .unwrap()
    };
    let wait_available = |expected: i64| async move {
        ticketing_common::testing::app::wait_for(
            &format!("available never {expected}"),
            || async { Some(available().await) },
            |n| *n == expected,
        )
        .await
    };
    assert_eq!(available().await, 4); // cached from here

    let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    app.publish(&order_created(&seat(1), first)).await;
    app.publish(&order_created(&seat(2), second)).await;
    app.publish(&order_created(&seat(3), third)).await;
    wait_available(1).await;
    assert_eq!(
        seats(&app, &created["id"], 10)
            .await
            .iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [seat(4).id]
    );

    app.publish(&order_cancelled(seat(1).id, first)).await; // cancelled or expired
    wait_available(2).await;
    app.publish(&order_completed(seat(2).id, second)).await;
    app.wait_for_status(seat(2).id, "sold").await;
    assert_eq!(available().await, 2, "a sale keeps the seat held");
    app.publish(&order_refunded(seat(2).id, second)).await;
    wait_available(3).await;
    app.settle().await;
    assert_eq!(available().await, 3);
}

/// Seat `n` of an event, as `order_created` needs it.
fn ticket_of_seat(event_id: Uuid, n: u32) -> TicketBody {
    TicketBody {
        id: seat_id(event_id, &n.to_string()),
        title: "Show".into(),
        price: 25.0,
        user_id: Uuid::nil(),
        version: 0,
        order_id: None,
        status: "available".into(),
        event_id: Some(event_id),
        seat: Some(n.to_string()),
    }
}

#[tokio::test]
async fn unknown_events_searches_and_later_pages_leave_no_key_in_redis() {
    let app = spawn_app().await;
    let organiser = app.user();
    let created = create_event(&app, &organiser, event_input("Show", 2, 5)).await;
    // What ordinary readers share is cached: the first page and the event.
    app.get("/api/events").await.assert_status(StatusCode::OK);
    event(&app, &created["id"]).await;
    let before = app.redis_keys().await;
    assert!(
        !before.is_empty(),
        "the first page and the event are cached"
    );

    for n in 0..30 {
        app.get(&format!("/api/events/{}", Uuid::now_v7()))
            .await
            .assert_status(StatusCode::NOT_FOUND);
        app.get(&format!("/api/events?q=word{n}"))
            .await
            .assert_status(StatusCode::OK);
        app.get(&format!("/api/events?after={}", Uuid::now_v7()))
            .await
            .assert_status(StatusCode::OK);
        app.get(&format!("/api/events?limit={}", 60 + n))
            .await
            .assert_status(StatusCode::OK);
        app.get(&format!("/api/tickets?eventId={}", Uuid::now_v7()))
            .await
            .assert_status(StatusCode::NOT_FOUND);
    }

    assert_eq!(
        app.redis_keys().await,
        before,
        "nothing an anonymous client names is kept"
    );
}
