//! End to end through the public HTTP surface only: accounts, tickets, orders that expire,
//! payments, the web pages, and a burst of 1,000 orders with and without replicas killed in
//! the middle of it.
//!
//! The same tests run against a `ticketing up` each test starts, and against a running
//! system such as the distributed `scripts/stack` (see `support` for the variables);
//! `scripts/test.sh` runs them both ways.

mod support;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{
    Target,
    burst::{assert_reserved_then_expired_exactly_once, burst},
    call, events, get_json, list_and_order, post,
};
use ticketing_common::testing::{
    api::{Reply, User},
    eventually,
};
use ticketing_events::Subject;
use uuid::Uuid;

/// How many tickets and orders a burst makes.
const BURST: usize = 1_000;
/// The order window the kill test needs: longer than JetStream's ack wait plus the burst.
const KILL_WINDOW: Duration = Duration::from_secs(25);

fn unique_email(what: &str) -> String {
    format!("{what}-{}@example.com", Uuid::now_v7().simple())
}

#[tokio::test]
async fn accounts_sign_up_in_and_out_through_the_public_address() {
    let target = Target::start().await;
    let email = unique_email("account");
    let credentials = json!({"email": email, "password": "s3cret"});

    let signup = post(
        &target,
        "/api/users/signup",
        None,
        Some(credentials.clone()),
    )
    .await;
    let again = post(
        &target,
        "/api/users/signup",
        None,
        Some(credentials.clone()),
    )
    .await;
    let cookie = signup.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let session = User {
        id: Uuid::parse_str(signup.json()["id"].as_str().unwrap()).unwrap(),
        cookie: cookie.split(';').next().unwrap().to_owned(),
    };
    // The cookie set by auth is accepted by every other service.
    let me = get_json(&target, "/api/users/currentuser", Some(&session)).await;
    let listed = post(
        &target,
        "/api/tickets",
        Some(&session),
        Some(json!({"title": "Mine", "price": "12.50"})),
    )
    .await;
    let signin = post(&target, "/api/users/signin", None, Some(credentials)).await;
    let wrong = post(
        &target,
        "/api/users/signin",
        None,
        Some(json!({"email": email, "password": "wrong1"})),
    )
    .await;
    let signout = post(&target, "/api/users/signout", Some(&session), None).await;
    let anonymous = get_json(&target, "/api/users/currentuser", None).await;
    target.stop().await;

    assert_eq!(signup.status, StatusCode::CREATED, "{}", signup.text);
    assert_eq!(signup.json()["email"], json!(email));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert_eq!(again.status, StatusCode::CONFLICT);

    assert_eq!(me["currentUser"]["email"], json!(email));
    assert_eq!(
        listed.status,
        StatusCode::CREATED,
        "tickets accepts auth's cookie: {}",
        listed.text
    );
    assert_eq!(listed.json()["userId"], json!(session.id.to_string()));
    assert_eq!(listed.json()["price"], json!(12.5));
    assert_eq!(signin.status, StatusCode::OK);
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(signout.status, StatusCode::OK);
    let cleared = signout.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.contains("Max-Age=0") || cleared.contains("Expires="),
        "{cleared}"
    );
    assert_eq!(anonymous, json!({"currentUser": null}));
}

/// The session a `Set-Cookie` of auth's starts, as a user of the test API.
fn session_of(reply: &Reply) -> User {
    let cookie = reply.headers[header::SET_COOKIE].to_str().unwrap();
    User {
        id: Uuid::parse_str(reply.json()["id"].as_str().unwrap()).unwrap(),
        cookie: cookie.split(';').next().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn a_cookie_kept_from_before_sign_out_is_refused_everywhere_and_the_other_session_stays() {
    let target = Target::start().await;
    let email = unique_email("revoked");
    let credentials = json!({"email": email, "password": "s3cret"});
    let phone = session_of(
        &post(
            &target,
            "/api/users/signup",
            None,
            Some(credentials.clone()),
        )
        .await,
    );
    let laptop = session_of(&post(&target, "/api/users/signin", None, Some(credentials)).await);
    // An order of the user's, for payments to refuse or accept.
    let (_, order) = list_and_order(&target, &target.user(), &phone, "Revocation").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let pay = json!({"orderId": order_id, "token": "tok_visa"});
    let ticket = json!({"title": "Mine", "price": 5});

    let signout = post(&target, "/api/users/signout", Some(&phone), None).await;
    let signed_out = Instant::now();
    // Every service refuses the copy of the phone's cookie within a second.
    let refused = eventually(Duration::from_secs(1), || async {
        let tickets = post(&target, "/api/tickets", Some(&phone), Some(ticket.clone())).await;
        let orders = call(&target, Method::GET, "/api/orders", Some(&phone), None).await;
        let payments = post(&target, "/api/payments", Some(&phone), Some(pay.clone())).await;
        let me = get_json(&target, "/api/users/currentuser", Some(&phone)).await;
        let statuses = [tickets.status, orders.status, payments.status];
        (statuses == [StatusCode::UNAUTHORIZED; 3] && me["currentUser"].is_null()).then_some(())
    })
    .await;
    let refused_after = signed_out.elapsed();
    let listed = post(&target, "/api/tickets", Some(&laptop), Some(ticket.clone())).await;
    let orders = get_json(&target, "/api/orders", Some(&laptop)).await;
    let paid = post(&target, "/api/payments", Some(&laptop), Some(pay.clone())).await;
    target.stop().await;

    assert_eq!(signout.status, StatusCode::OK);
    assert!(
        refused.is_some(),
        "tickets, orders and payments still accepted the signed-out cookie {refused_after:?} later"
    );
    assert_eq!(listed.status, StatusCode::CREATED, "{}", listed.text);
    assert!(
        orders
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == json!(order_id)),
        "{orders}"
    );
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
}

#[tokio::test]
async fn the_seed_reports_singular_list_path_reaches_tickets() {
    let target = Target::start().await;
    let seller = target.user();
    let listed = post(
        &target,
        "/api/tickets",
        Some(&seller),
        Some(json!({"title": "Singular", "price": 3})),
    )
    .await;
    let id = listed.json()["id"].clone();
    let found = eventually(Duration::from_secs(5), || async {
        let page = get_json(&target, "/api/ticket?limit=1000", None).await;
        page.as_array()?
            .iter()
            .any(|t| t["id"] == id)
            .then_some(page)
    })
    .await;
    let refused = call(&target, Method::GET, "/api/ticket?limit=0", None, None).await;
    target.stop().await;

    assert_eq!(listed.status, StatusCode::CREATED, "{}", listed.text);
    assert!(
        found.is_some(),
        "the new ticket never showed at /api/ticket"
    );
    // Answered by tickets (its validation), not by the web pages' 404.
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.json()["errors"][0]["field"], json!("limit"));
}

#[tokio::test]
async fn a_seller_edits_a_ticket_and_every_reader_sees_it_within_a_second() {
    let target = Target::start().await;
    let (seller, stranger) = (target.user(), target.user());
    let created = post(
        &target,
        "/api/tickets",
        Some(&seller),
        Some(json!({"title": "Front row", "price": 40})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let after = Uuid::from_u128(Uuid::parse_str(&id).unwrap().as_u128() + 1);
    // Warm every replica's cache with the old value first.
    for _ in 0..8 {
        get_json(&target, &format!("/api/tickets/{id}"), None).await;
    }
    let updated = call(
        &target,
        Method::PUT,
        &format!("/api/tickets/{id}"),
        Some(&seller),
        Some(json!({"title": "Front row, aisle", "price": 45})),
    )
    .await;
    let answered = Instant::now();
    let foreign = call(
        &target,
        Method::PUT,
        &format!("/api/tickets/{id}"),
        Some(&stranger),
        Some(json!({"title": "Mine now", "price": 1})),
    )
    .await;
    let mut stale_after_a_second = Vec::new();
    let mut fresh = false;
    while answered.elapsed() < Duration::from_secs(3) {
        let ticket = get_json(&target, &format!("/api/tickets/{id}"), None).await;
        // The list page that starts at this ticket (ids grow with time; `before` is exclusive),
        // so other tests' tickets on a shared system cannot push it off the page.
        let listed = get_json(
            &target,
            &format!("/api/tickets?limit=1&before={after}"),
            None,
        )
        .await;
        let in_list = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == json!(id))
            .cloned();
        let both_fresh =
            ticket["title"] == "Front row, aisle" && in_list.is_some_and(|t| t["version"] == 1);
        fresh |= both_fresh;
        if !both_fresh && answered.elapsed() > Duration::from_secs(1) {
            stale_after_a_second.push(ticket);
        }
    }
    target.stop().await;

    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.json()["version"], 1);
    assert_eq!(
        foreign.status,
        StatusCode::UNAUTHORIZED,
        "only the owner edits"
    );
    assert!(fresh, "the edit became visible");
    assert!(
        stale_after_a_second.is_empty(),
        "stale reads more than a second after the write: {stale_after_a_second:?}"
    );
}

#[tokio::test]
async fn an_unpaid_order_expires_after_its_window_frees_the_ticket_and_is_cancelled_once() {
    let target = Target::start().await;
    let (seller, buyer) = (target.user(), target.user());
    let (ticket_id, order) = list_and_order(&target, &seller, &buyer, "Expiring seat").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    let reserved = eventually(Duration::from_secs(10), || async {
        let t = get_json(&target, &format!("/api/tickets/{ticket_id}"), None).await;
        (t["orderId"] == json!(order_id) && t["status"] == "reserved").then_some(())
    })
    .await;
    let patience = target.window + Duration::from_secs(20);
    let cancelled = eventually(patience, || async {
        let o = get_json(&target, &format!("/api/orders/{order_id}"), Some(&buyer)).await;
        (o["status"] == "cancelled").then_some(())
    })
    .await;
    let freed = eventually(Duration::from_secs(10), || async {
        let t = get_json(&target, &format!("/api/tickets/{ticket_id}"), None).await;
        (t["orderId"].is_null() && t["status"] == "available").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // room for a wrong second cancellation
    let cancellations = events(&target, &[Subject::OrderCancelled])
        .await
        .into_iter()
        .filter(|(_, data)| data["id"] == json!(order_id))
        .count();
    target.stop().await;

    assert_eq!(order["status"], "created");
    assert!(reserved.is_some(), "the ticket is reserved for the order");
    assert!(
        cancelled.is_some(),
        "the unpaid order was cancelled after its window"
    );
    assert!(freed.is_some(), "the ticket is back on sale");
    assert_eq!(cancellations, 1, "order.cancelled published once");
}

#[tokio::test]
async fn a_paid_order_completes_and_stays_complete_and_paying_an_expired_order_is_refused() {
    let target = Target::start().await;
    let (seller, buyer) = (target.user(), target.user());
    let mut orders = Vec::new();
    for title in ["Paid seat", "Expiring seat"] {
        let (ticket_id, order) = list_and_order(&target, &seller, &buyer, title).await;
        orders.push((ticket_id, order["id"].as_str().unwrap().to_owned()));
    }
    let pay = |order_id: String| {
        let target = &target;
        let buyer = &buyer;
        async move {
            post(
                target,
                "/api/payments",
                Some(buyer),
                Some(json!({"orderId": order_id, "token": "tok_visa"})),
            )
            .await
        }
    };

    // Payments learns the order from its event; until then paying it is 404.
    let (paid_ticket, paid_order) = orders[0].clone();
    let paid = eventually(Duration::from_secs(10), || async {
        (pay(paid_order.clone()).await.status == StatusCode::CREATED).then_some(())
    })
    .await;
    let complete = eventually(Duration::from_secs(10), || async {
        let order = get_json(&target, &format!("/api/orders/{paid_order}"), Some(&buyer)).await;
        (order["status"] == "complete").then_some(())
    })
    .await;
    // Past its window, the paid order stays complete and its ticket held.
    let (expired_ticket, expired_order) = orders[1].clone();
    let expired = eventually(target.window + Duration::from_secs(20), || async {
        let order = get_json(
            &target,
            &format!("/api/orders/{expired_order}"),
            Some(&buyer),
        )
        .await;
        (order["status"] == "cancelled").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paid_after_window =
        get_json(&target, &format!("/api/orders/{paid_order}"), Some(&buyer)).await;
    let paid_ticket_after = get_json(&target, &format!("/api/tickets/{paid_ticket}"), None).await;
    let late = eventually(Duration::from_secs(10), || async {
        let status = pay(expired_order.clone()).await.status;
        (status != StatusCode::NOT_FOUND).then_some(status)
    })
    .await;
    let freed = eventually(Duration::from_secs(10), || async {
        let t = get_json(&target, &format!("/api/tickets/{expired_ticket}"), None).await;
        t["orderId"].is_null().then_some(())
    })
    .await;
    let payments: Vec<Value> = events(&target, &[Subject::PaymentCreated])
        .await
        .into_iter()
        .map(|(_, data)| data)
        .filter(|data| {
            [&paid_order, &expired_order]
                .contains(&&data["orderId"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    target.stop().await;

    assert!(paid.is_some(), "payment accepted");
    assert!(complete.is_some(), "the paid order became complete");
    assert!(expired.is_some(), "the unpaid order expired");
    assert_eq!(
        paid_after_window["status"], "complete",
        "still complete after its window"
    );
    assert_eq!(
        paid_ticket_after["orderId"],
        json!(paid_order),
        "its ticket stays sold"
    );
    assert_eq!(paid_ticket_after["status"], "sold", "{paid_ticket_after}");
    assert_eq!(
        late,
        Some(StatusCode::CONFLICT),
        "paying an expired order is refused"
    );
    assert!(
        freed.is_some(),
        "the expired order's ticket is back on sale"
    );
    assert_eq!(
        payments.len(),
        1,
        "one payment.created, none for the expired order: {payments:?}"
    );
    assert_eq!(payments[0]["orderId"], json!(paid_order));
}

#[tokio::test]
async fn buyers_paying_the_instant_their_order_is_answered_all_get_201_and_a_refund_frees_the_ticket()
 {
    const BUYERS_AT_ONCE: usize = 20;
    let target = Target::start().await;
    let seller = target.user();
    let buyers: Vec<User> = (0..BUYERS_AT_ONCE).map(|_| target.user()).collect();
    // Tickets on sale, one per buyer.
    let mut fresh = Vec::new();
    for n in 0..BUYERS_AT_ONCE {
        let ticket = post(
            &target,
            "/api/tickets",
            Some(&seller),
            Some(json!({"title": format!("Instant {n}"), "price": 12.5})),
        )
        .await;
        fresh.push(ticket.json()["id"].as_str().unwrap().to_owned());
    }
    for ticket_id in &fresh {
        eventually(Duration::from_secs(15), || async {
            let reply = get_json(&target, &format!("/api/tickets/{ticket_id}"), None).await;
            Some(reply).filter(|t| t["id"] == json!(ticket_id))
        })
        .await
        .expect("the ticket is listed");
    }

    // Each buyer orders (retrying only while orders has not learnt the ticket) and pays the
    // moment the order is answered, all at once.
    let answers = futures::future::join_all(buyers.iter().zip(&fresh).map(|(buyer, ticket)| {
        let target = &target;
        async move {
            let order = eventually(Duration::from_secs(15), || async {
                let reply = post(
                    target,
                    "/api/orders",
                    Some(buyer),
                    Some(json!({"ticketId": ticket})),
                )
                .await;
                (reply.status == StatusCode::CREATED).then(|| reply.json())
            })
            .await
            .expect("ordered");
            let paid = post(
                target,
                "/api/payments",
                Some(buyer),
                Some(json!({"orderId": order["id"], "token": "tok_visa"})),
            )
            .await;
            (order["id"].as_str().unwrap().to_owned(), paid)
        }
    }))
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|(_, paid)| paid.status).collect();

    // Every paid ticket reads "sold".
    let all_sold = eventually(Duration::from_secs(15), || async {
        for ticket_id in &fresh {
            let t = get_json(&target, &format!("/api/tickets/{ticket_id}"), None).await;
            if t["status"] != "sold" {
                return None;
            }
        }
        Some(())
    })
    .await;

    // An operator refunds the first one: the order becomes refunded and its ticket is on
    // sale again, for anyone.
    let (refunded_order, _) = &answers[0];
    let operator = target.operator();
    let refund = post(
        &target,
        "/api/payments/refunds",
        Some(&operator),
        Some(json!({"orderId": refunded_order})),
    )
    .await;
    let refunded = eventually(Duration::from_secs(15), || async {
        let order = get_json(
            &target,
            &format!("/api/orders/{refunded_order}"),
            Some(&buyers[0]),
        )
        .await;
        (order["status"] == "refunded").then_some(())
    })
    .await;
    let back_on_sale = eventually(Duration::from_secs(15), || async {
        let t = get_json(&target, &format!("/api/tickets/{}", fresh[0]), None).await;
        (t["orderId"].is_null() && t["status"] == "available").then_some(())
    })
    .await;
    let reordered = post(
        &target,
        "/api/orders",
        Some(&target.user()),
        Some(json!({"ticketId": fresh[0]})),
    )
    .await;
    target.stop().await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "every instant payment is 201: {statuses:?}"
    );
    assert!(all_sold.is_some(), "every paid ticket reads sold");
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text);
    assert!(refunded.is_some(), "the order became refunded");
    assert!(back_on_sale.is_some(), "its ticket is free again");
    assert_eq!(reordered.status, StatusCode::CREATED, "{}", reordered.text);
}

#[tokio::test]
async fn a_withdrawal_racing_an_order_wins_and_the_order_ends_cancelled() {
    const ROUNDS: usize = 20;
    let target = Target::start().await;
    let (seller, buyer) = (target.user(), target.user());
    let mut outcomes: HashMap<(u16, u16), usize> = HashMap::new();
    let mut lost_orders = Vec::new();
    let mut violations = Vec::new();
    for round in 0..ROUNDS {
        // A ticket orders knows (an order for it was placed and cancelled), then an order and
        // its withdrawal at the same instant.
        let (ticket_id, probe) =
            list_and_order(&target, &seller, &buyer, &format!("Race {round}")).await;
        let probe_id = probe["id"].as_str().unwrap().to_owned();
        let cancelled = call(
            &target,
            Method::DELETE,
            &format!("/api/orders/{probe_id}"),
            Some(&buyer),
            None,
        )
        .await;
        assert_eq!(
            cancelled.status,
            StatusCode::NO_CONTENT,
            "{}",
            cancelled.text
        );
        eventually(Duration::from_secs(10), || async {
            let t = get_json(&target, &format!("/api/tickets/{ticket_id}"), None).await;
            (t["status"] == "available").then_some(())
        })
        .await
        .expect("the probe's cancellation freed the ticket");
        let ticket_path = format!("/api/tickets/{ticket_id}");
        let (order, withdrawal) = tokio::join!(
            post(
                &target,
                "/api/orders",
                Some(&buyer),
                Some(json!({"ticketId": ticket_id}))
            ),
            call(&target, Method::DELETE, &ticket_path, Some(&seller), None),
        );
        *outcomes
            .entry((order.status.as_u16(), withdrawal.status.as_u16()))
            .or_default() += 1;
        match (order.status, withdrawal.status) {
            (StatusCode::CREATED, StatusCode::NO_CONTENT) => {
                lost_orders.push(order.json()["id"].as_str().unwrap().to_owned())
            }
            (StatusCode::CREATED, StatusCode::CONFLICT)
            | (StatusCode::NOT_FOUND, StatusCode::NO_CONTENT) => {}
            other => violations.push(format!("{other:?}: {} / {}", order.text, withdrawal.text)),
        }
        if withdrawal.status == StatusCode::NO_CONTENT {
            // Whoever reads, on whichever replica, sees a write within one second (each
            // replica's memory layer drops the entry when the invalidation reaches it).
            let path = format!("/api/tickets/{ticket_id}");
            let gone = eventually(Duration::from_secs(1), || async {
                let reply = call(&target, Method::GET, &path, None, None).await;
                (reply.status == StatusCode::NOT_FOUND).then_some(())
            })
            .await;
            if gone.is_none() {
                violations.push(format!(
                    "withdrawn ticket {ticket_id} still answers after 1 s"
                ));
            }
        }
    }
    // Every order that lost to a withdrawal ends cancelled.
    let mut still_live = Vec::new();
    for order_id in &lost_orders {
        let ended = eventually(Duration::from_secs(15), || async {
            let o = get_json(&target, &format!("/api/orders/{order_id}"), Some(&buyer)).await;
            (o["status"] == "cancelled").then_some(())
        })
        .await;
        if ended.is_none() {
            still_live.push(order_id.clone());
        }
    }
    target.stop().await;

    eprintln!("(order, withdrawal) outcomes over {ROUNDS} rounds: {outcomes:?}");
    assert!(violations.is_empty(), "{violations:?}");
    assert!(
        still_live.is_empty(),
        "orders for withdrawn tickets left live: {still_live:?}"
    );
    assert!(
        !lost_orders.is_empty(),
        "no round had an accepted order lose to the withdrawal: {outcomes:?}"
    );
}

/// Pays an order with `tok_visa` as soon as payments knows it (it learns orders from their
/// event; until then paying is 404). The answer's status; `None` if it stayed 404.
async fn pay_once_known(target: &Target, buyer: &User, order_id: &str) -> Option<StatusCode> {
    eventually(Duration::from_secs(10), || async {
        let body = json!({"orderId": order_id, "token": "tok_visa"});
        let reply = post(target, "/api/payments", Some(buyer), Some(body)).await;
        (reply.status != StatusCode::NOT_FOUND).then_some(reply.status)
    })
    .await
}

/// `startsAt` a week from now, RFC 3339.
fn next_week() -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(7))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Creates an event and waits until orders knows it (an order for its last seat is no longer
/// 404; that probe order is cancelled at once). Returns the event's JSON.
async fn create_event(target: &Target, organiser: &User, seats: u32, max_per_buyer: u32) -> Value {
    let created = post(
        target,
        "/api/events",
        Some(organiser),
        Some(
            json!({"title": "Show", "venue": "Arena", "startsAt": next_week(), "price": 30,
                    "seats": seats, "maxPerBuyer": max_per_buyer}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let event = created.json();
    let event_id = Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
    let last = ticketing_events::seat_id(event_id, &seats.to_string());
    let prober = target.user();
    let probe = eventually(Duration::from_secs(30), || async {
        let reply = post(
            target,
            "/api/orders",
            Some(&prober),
            Some(json!({"ticketId": last})),
        )
        .await;
        (reply.status == StatusCode::CREATED).then(|| reply.json())
    })
    .await
    .expect("orders learnt the event");
    let cancelled = call(
        target,
        Method::DELETE,
        &format!("/api/orders/{}", probe["id"].as_str().unwrap()),
        Some(&prober),
        None,
    )
    .await;
    assert_eq!(
        cancelled.status,
        StatusCode::NO_CONTENT,
        "{}",
        cancelled.text
    );
    event
}

/// Waits until the event reads `available` seats left; `None` if it never does.
async fn event_reads_available(target: &Target, event: &Value, available: i64) -> Option<()> {
    let path = format!("/api/events/{}", event["id"].as_str().unwrap());
    eventually(Duration::from_secs(10), || async {
        let e = get_json(target, &path, None).await;
        (e["available"] == json!(available)).then_some(())
    })
    .await
}

#[tokio::test]
async fn an_event_sells_its_best_seats_and_available_follows_every_order_cancellation_expiry_and_refund()
 {
    let target = Target::start().await;
    let (organiser, alice, bob) = (target.user(), target.user(), target.user());
    let event = create_event(&target, &organiser, 4, 2).await;
    let event_id = event["id"].as_str().unwrap().to_owned();
    let order_event = |buyer: &User| {
        let (target, buyer, event_id) = (&target, buyer.clone(), event_id.clone());
        async move {
            post(
                target,
                "/api/orders",
                Some(&buyer),
                Some(json!({"eventId": event_id})),
            )
            .await
        }
    };

    let paid = order_event(&alice).await;
    let expiring = order_event(&alice).await;
    let refused = order_event(&alice).await;
    let cancelled = order_event(&bob).await;
    let after_three = event_reads_available(&target, &event, 1).await;
    let seats: Vec<Value> = [&paid, &expiring, &cancelled]
        .iter()
        .map(|r| r.json()["ticket"]["seat"].clone())
        .collect();

    let paid_id = paid.json()["id"].as_str().unwrap().to_owned();
    let payment = pay_once_known(&target, &alice, &paid_id).await;
    let cancelled_id = cancelled.json()["id"].as_str().unwrap().to_owned();
    let cancel = call(
        &target,
        Method::DELETE,
        &format!("/api/orders/{cancelled_id}"),
        Some(&bob),
        None,
    )
    .await;
    let after_cancel = event_reads_available(&target, &event, 2).await;
    let last_seat = order_event(&bob).await; // seat 3 again, the lowest free one
    let sold_out_probe = order_event(&target.user()).await; // seat 4
    let sold_out = order_event(&target.user()).await;
    let after_expiry = eventually(target.window + Duration::from_secs(20), || async {
        let e = get_json(&target, &format!("/api/events/{event_id}"), None).await;
        (e["available"] == json!(3)).then_some(())
    })
    .await;
    let complete = eventually(Duration::from_secs(10), || async {
        let o = get_json(&target, &format!("/api/orders/{paid_id}"), Some(&alice)).await;
        (o["status"] == "complete").then_some(())
    })
    .await;
    let refund = post(
        &target,
        "/api/payments/refunds",
        Some(&target.operator()),
        Some(json!({"orderId": paid_id})),
    )
    .await;
    let after_refund = event_reads_available(&target, &event, 4).await;
    target.stop().await;

    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text);
    assert_eq!(
        seats,
        [json!("1"), json!("2"), json!("3")],
        "best seats first"
    );
    assert_eq!(paid.json()["ticket"]["eventId"], json!(event_id));
    assert_eq!(
        refused.status,
        StatusCode::CONFLICT,
        "the third try is over the limit: {}",
        refused.text
    );
    assert!(after_three.is_some(), "available 1 after three orders");
    assert_eq!(payment, Some(StatusCode::CREATED));
    assert_eq!(cancel.status, StatusCode::NO_CONTENT);
    assert!(after_cancel.is_some(), "available 2 after a cancellation");
    assert_eq!(
        last_seat.json()["ticket"]["seat"],
        json!("3"),
        "{}",
        last_seat.text
    );
    assert_eq!(
        sold_out_probe.json()["ticket"]["seat"],
        json!("4"),
        "{}",
        sold_out_probe.text
    );
    assert_eq!(sold_out.status, StatusCode::CONFLICT, "{}", sold_out.text);
    assert!(sold_out.text.contains("Sold out"), "{}", sold_out.text);
    assert!(
        after_expiry.is_some(),
        "the unpaid orders expired: available 1 (the paid seat... and the expired ones freed)"
    );
    assert!(complete.is_some());
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.text);
    assert!(after_refund.is_some(), "every seat free after the refund");
}

#[tokio::test]
async fn a_100000_seat_event_sells_its_last_seat_through_orders_and_payments() {
    let target = Target::start().await;
    let (organiser, buyer) = (target.user(), target.user());
    let started = Instant::now();
    let event = create_event(&target, &organiser, 100_000, 4).await;
    eprintln!(
        "100,000-seat event created and learnt by orders in {:.2?}",
        started.elapsed()
    );
    let event_id = Uuid::parse_str(event["id"].as_str().unwrap()).unwrap();
    let last = ticketing_events::seat_id(event_id, "100000");

    let order = post(
        &target,
        "/api/orders",
        Some(&buyer),
        Some(json!({"ticketId": last})),
    )
    .await;
    let order_id = order.json()["id"].as_str().unwrap_or_default().to_owned();
    let paid = pay_once_known(&target, &buyer, &order_id).await;
    let sold = eventually(Duration::from_secs(15), || async {
        let t = get_json(&target, &format!("/api/tickets/{last}"), None).await;
        (t["status"] == "sold").then_some(t)
    })
    .await;
    let available = event_reads_available(&target, &event, 99_999).await;
    target.stop().await;

    assert_eq!(order.status, StatusCode::CREATED, "{}", order.text);
    assert_eq!(order.json()["ticket"]["seat"], json!("100000"));
    assert_eq!(
        paid,
        Some(StatusCode::CREATED),
        "payments learnt the seat's order and charged it"
    );
    assert!(sold.is_some(), "the last seat reads sold");
    assert!(available.is_some(), "99,999 seats left");
}

/// Posts a form to the web pages from `origin`; returns the status and where it redirects.
async fn post_form(
    browser: &reqwest::Client,
    target: &Target,
    origin: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Option<String>) {
    let response = browser
        .post(target.url(path))
        .header(header::ORIGIN, origin)
        .form(form)
        .send()
        .await
        .unwrap();
    let location = response.headers().get(header::LOCATION);
    let location = location.map(|l| l.to_str().unwrap().to_owned());
    (response.status(), location)
}

#[tokio::test]
async fn the_web_pages_are_served_at_the_same_address_and_call_the_api() {
    let target = Target::start().await;
    let browser = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let email = unique_email("web");
    let home = browser.get(target.url("/")).send().await.unwrap();
    let home_type = home.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let home_page = home.text().await.unwrap();
    let account = [("email", email.as_str()), ("password", "secret1")];
    let signup_form = [&account[..], &[("next", "/tickets/new")]].concat();
    let (forged, _) = post_form(
        &browser,
        &target,
        "http://evil.example",
        "/signup",
        &signup_form,
    )
    .await;
    let (signup, location) =
        post_form(&browser, &target, &target.base, "/signup", &signup_form).await;
    // The page posts to the API through the public address with the visitor's cookie.
    let sell_form = [("title", "Sold from the web"), ("price", "15")];
    let (sell, ticket_page) =
        post_form(&browser, &target, &target.base, "/tickets/new", &sell_form).await;
    let me: Value = browser
        .get(target.url("/api/users/currentuser"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(browser);
    target.stop().await;

    assert!(home_type.starts_with("text/html"), "{home_type}");
    assert!(home_page.contains("Ticketing"), "{home_page}");
    assert_eq!(
        forged,
        StatusCode::FORBIDDEN,
        "a cross-site form post is refused"
    );
    assert_eq!(signup, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/tickets/new"));
    assert_eq!(
        me["currentUser"]["email"],
        json!(email),
        "the web sign-up set the API's session"
    );
    assert_eq!(sell, StatusCode::SEE_OTHER);
    assert!(
        ticket_page.is_some_and(|p| p.starts_with("/tickets/")),
        "sent to the new ticket's page"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_orders_reserves_and_expires_each_exactly_once() {
    let target = Target::start().await;
    let started = Instant::now();
    let burst = burst(&target, BURST, None).await;
    println!(
        "{BURST} tickets listed and ordered in {:.1?}",
        started.elapsed()
    );
    assert_eq!(
        burst.uncertain, 0,
        "no replica died, so every answer was known"
    );
    assert_reserved_then_expired_exactly_once(&target, &burst).await;
    println!("all expired and released after {:.1?}", started.elapsed());
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_replicas_in_the_middle_of_a_burst_loses_nothing() {
    // Events a killed replica had taken are redelivered after JetStream's ack wait (10 s);
    // orders must outlive that to be seen reserved before they expire.
    let target = Target::start_with_window(KILL_WINDOW).await;
    let started = Instant::now();
    let burst = burst(&target, BURST, Some(Box::pin(target.kill_replicas()))).await;
    let (killed, accepted_before) = burst.killed.clone().expect("replicas killed mid-burst");
    println!(
        "killed {killed:?} after {accepted_before} of {BURST} orders; {} answered uncertainly; burst done in {:.1?}",
        burst.uncertain,
        started.elapsed()
    );
    assert!(
        accepted_before < BURST,
        "the kill landed in the middle of the burst"
    );
    assert_reserved_then_expired_exactly_once(&target, &burst).await;
    println!("all expired and released after {:.1?}", started.elapsed());
    target.restore();
    target.stop().await;
}
