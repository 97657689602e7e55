//! A burst of orders through the public HTTP surface: `size` tickets listed, each ordered
//! once by one of [`BUYERS`] buyers, [`IN_FLIGHT`] requests at a time, optionally with
//! something killed once a third of the orders are in; then the checks that every order
//! reserved its ticket, expired, released it, and that each effect happened exactly once.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use ticketing_common::testing::{
    api::{User, send},
    eventually,
};
use ticketing_events::Subject;

use super::{Target, call, events, get_json, post, tally};

/// Buyers sharing a burst's orders.
pub const BUYERS: usize = 20;
/// Requests in flight at once during a burst.
pub const IN_FLIGHT: usize = 48;

/// What kills something in the middle of a burst, and says what it killed.
pub type Killer<'a> = Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>>;

/// What a burst made: tickets (id → its buyer's index) and the buyers.
pub struct Burst {
    pub buyers: Vec<User>,
    pub tickets: Vec<String>,
    /// order id → ticket id, from the buyers' own order lists.
    pub orders: HashMap<String, String>,
    /// Requests whose outcome the client could not know (a replica died under it).
    pub uncertain: usize,
    /// Order requests answered with a 5xx, or not answered at all, on the way.
    pub failed_requests: usize,
    /// What was killed, and how many orders had been accepted by then.
    pub killed: Option<(Vec<String>, usize)>,
}

/// Lists `size` tickets, then orders each once from [`BUYERS`] buyers, [`IN_FLIGHT`] at a
/// time. `kill` runs once a third of the orders are in.
pub async fn burst(target: &Target, size: usize, kill: Option<Killer<'_>>) -> Burst {
    let seller = target.user();
    let buyers: Vec<User> = (0..BUYERS).map(|_| target.user()).collect();
    let (client, base) = (target.client.clone(), target.base.clone());

    let tickets: Vec<String> = stream::iter(0..size)
        .map(|i| {
            let (client, base, seller) = (client.clone(), base.clone(), seller.clone());
            async move {
                let body = json!({"title": format!("Burst seat {i}"), "price": 10}).to_string();
                let reply = send(
                    &client,
                    Method::POST,
                    format!("{base}/api/tickets"),
                    Some(&seller),
                    Some((Some("application/json"), body)),
                )
                .await;
                assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
                reply.json()["id"].as_str().unwrap().to_owned()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;

    let accepted = Arc::new(AtomicUsize::new(0));
    let failed_requests = Arc::new(AtomicUsize::new(0));
    let orders =
        stream::iter(tickets.iter().enumerate())
            .map(|(i, ticket)| {
                let (client, base, accepted) = (client.clone(), base.clone(), accepted.clone());
                let failed = failed_requests.clone();
                let buyer = buyers[i % BUYERS].clone();
                async move {
                    order_until_known(&client, &base, &buyer, ticket, &accepted, &failed).await
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>();
    let done = AtomicBool::new(false);
    let orders = async {
        let outcomes = orders.await;
        done.store(true, Ordering::Relaxed);
        outcomes
    };
    // Kills once a third of the orders are in; gives up if the burst ends first.
    let killer = async {
        let kill = kill?;
        while !done.load(Ordering::Relaxed) {
            let in_so_far = accepted.load(Ordering::Relaxed);
            if in_so_far >= size / 3 {
                let killed = kill.await;
                return Some((killed, in_so_far));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    };
    let (outcomes, killed) = tokio::join!(orders, killer);
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} orders failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let uncertain = outcomes.iter().filter(|o| matches!(o, Ok(false))).count();

    // The buyers' own lists are the truth: every ticket has exactly one order.
    let mine: HashSet<&String> = tickets.iter().collect();
    let mut orders = HashMap::new();
    for buyer in &buyers {
        for order in all_orders(target, buyer).await {
            let ticket = order["ticket"]["id"].as_str().unwrap().to_owned();
            if mine.contains(&ticket) {
                let previous = orders.insert(order["id"].as_str().unwrap().to_owned(), ticket);
                assert!(previous.is_none(), "an order listed twice");
            }
        }
    }
    let per_ticket = tally(orders.values().map(String::as_str));
    assert_eq!(orders.len(), size, "one order per ticket");
    assert!(
        per_ticket.values().all(|n| *n == 1),
        "a ticket with two orders"
    );
    Burst {
        buyers,
        tickets,
        orders,
        uncertain,
        failed_requests: failed_requests.load(Ordering::Relaxed),
        killed,
    }
}

/// Orders `ticket` until the answer is known. `Ok(true)`: 201. `Ok(false)`: an earlier try
/// may have been taken before its replica died (the buyer's order list will tell). A 404 is
/// a ticket the orders service has not learnt yet: try again.
async fn order_until_known(
    client: &reqwest::Client,
    base: &str,
    buyer: &User,
    ticket: &str,
    accepted: &AtomicUsize,
    failed: &AtomicUsize,
) -> Result<bool, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut uncertain = false;
    let body = json!({"ticketId": ticket}).to_string();
    while Instant::now() < deadline {
        let response = client
            .post(format!("{base}/api/orders"))
            .header(header::COOKIE, &buyer.cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match response.map(|r| r.status()) {
            Ok(StatusCode::CREATED) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            Ok(StatusCode::CONFLICT) if uncertain => return Ok(false),
            Ok(StatusCode::NOT_FOUND) => {}
            Ok(status) if status.is_server_error() => {
                failed.fetch_add(1, Ordering::Relaxed);
                uncertain = true
            }
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
                uncertain = true
            }
            Ok(status) => return Err(format!("ticket {ticket}: {status}")),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("ticket {ticket}: no answer within 120 s"))
}

pub async fn all_orders(target: &Target, buyer: &User) -> Vec<Value> {
    let listed = eventually(Duration::from_secs(30), || async {
        let reply = call(target, Method::GET, "/api/orders", Some(buyer), None).await;
        (reply.status == StatusCode::OK).then(|| reply.json())
    })
    .await
    .expect("the buyer's orders");
    listed.as_array().unwrap().clone()
}

/// After the window: every order cancelled, every ticket free again with exactly one
/// reservation and one release behind it, one `order.created`, one `expiration.complete` and
/// one `order.cancelled` per order, and payments knowing each order is cancelled.
pub async fn assert_reserved_then_expired_exactly_once(target: &Target, burst: &Burst) {
    let size = burst.tickets.len();
    let patience = target.window + Duration::from_secs(120);
    let all_cancelled = eventually(patience, || async {
        let mut live = 0;
        for buyer in &burst.buyers {
            live += all_orders(target, buyer)
                .await
                .iter()
                .filter(|o| {
                    burst.orders.contains_key(o["id"].as_str().unwrap())
                        && o["status"] != "cancelled"
                })
                .count();
        }
        (live == 0).then_some(())
    })
    .await;
    assert!(
        all_cancelled.is_some(),
        "every order expired (killed: {:?})",
        burst.killed
    );

    let unsettled = || async {
        stream::iter(&burst.tickets)
            .map(|id| async move { get_json(target, &format!("/api/tickets/{id}"), None).await })
            .buffer_unordered(IN_FLIGHT)
            .filter(|t| std::future::ready(!(t["orderId"].is_null() && t["version"] == 2)))
            .collect::<Vec<Value>>()
            .await
    };
    let settled = eventually(Duration::from_secs(30), || async {
        unsettled().await.is_empty().then_some(())
    })
    .await;
    if settled.is_none() {
        let left = unsettled().await;
        panic!(
            "every ticket free again at version 2 (reserved once, released once); {} are not, e.g. {:?}",
            left.len(),
            &left[..left.len().min(3)]
        );
    }

    // Every effect once: read the events about this burst's tickets and orders.
    let counted = eventually(Duration::from_secs(30), || async {
        let seen = burst_events(target, burst).await;
        let complete = seen.updates.len() == 2 * size
            && seen.created.len() == size
            && seen.cancelled.len() == size
            && seen.expired.len() == size;
        complete.then_some(seen)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // room for a late duplicate
    let seen = burst_events(target, burst).await;
    assert!(
        counted.is_some(),
        "all events arrived: {} updates, {} created, {} cancelled, {} expired",
        seen.updates.len(),
        seen.created.len(),
        seen.cancelled.len(),
        seen.expired.len()
    );
    for (ticket, updates) in tally(seen.updates.iter().map(|(t, _, _)| t.as_str())) {
        assert_eq!(
            updates, 2,
            "ticket {ticket}: one reservation and one release"
        );
    }
    for (ticket, version, order) in &seen.updates {
        let expected = burst
            .orders
            .iter()
            .find(|(_, t)| *t == ticket)
            .map(|(o, _)| o.clone());
        match version {
            1 => assert_eq!(
                order, &expected,
                "ticket {ticket} reserved for its own order"
            ),
            2 => assert_eq!(order, &None, "ticket {ticket} released"),
            other => panic!("ticket {ticket} at version {other}: an effect applied twice"),
        }
    }
    for (name, ids) in [
        ("order.created", &seen.created),
        ("order.cancelled", &seen.cancelled),
        ("expiration.complete", &seen.expired),
    ] {
        let per_order = tally(ids.iter().map(String::as_str));
        assert_eq!(per_order.len(), size, "{name} for every order");
        assert!(
            per_order.values().all(|n| *n == 1),
            "{name} twice for an order"
        );
    }

    // Payments learnt every order and its cancellation: paying any of them is 409.
    let index: HashMap<&str, usize> = burst
        .tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let owner_of = |order: &str| &burst.buyers[index[burst.orders[order].as_str()] % BUYERS];
    let refused: Vec<(String, Option<StatusCode>)> = stream::iter(burst.orders.keys())
        .map(|order| async move {
            let status = eventually(Duration::from_secs(60), || async {
                let reply = post(
                    target,
                    "/api/payments",
                    Some(owner_of(order)),
                    Some(json!({"orderId": order, "token": "tok_visa"})),
                )
                .await;
                (reply.status != StatusCode::NOT_FOUND).then_some(reply.status)
            })
            .await;
            (order.clone(), status)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let wrong: Vec<_> = refused
        .iter()
        .filter(|(_, s)| *s != Some(StatusCode::CONFLICT))
        .collect();
    assert!(
        wrong.is_empty(),
        "paying a cancelled order must be 409: {:?}",
        &wrong[..wrong.len().min(5)]
    );
}

pub struct BurstEvents {
    /// (ticket, version, orderId) of every `ticket.updated` about the burst's tickets.
    updates: Vec<(String, i64, Option<String>)>,
    created: Vec<String>,
    cancelled: Vec<String>,
    expired: Vec<String>,
}

pub async fn burst_events(target: &Target, burst: &Burst) -> BurstEvents {
    let tickets: HashSet<&str> = burst.tickets.iter().map(String::as_str).collect();
    let mut seen = BurstEvents {
        updates: Vec::new(),
        created: Vec::new(),
        cancelled: Vec::new(),
        expired: Vec::new(),
    };
    let subjects = [
        Subject::TicketUpdated,
        Subject::OrderCreated,
        Subject::OrderCancelled,
        Subject::ExpirationComplete,
    ];
    for (subject, data) in events(target, &subjects).await {
        let order = |key: &str| {
            data[key]
                .as_str()
                .filter(|id| burst.orders.contains_key(*id))
                .map(str::to_owned)
        };
        match subject {
            Subject::TicketUpdated if tickets.contains(data["id"].as_str().unwrap_or_default()) => {
                seen.updates.push((
                    data["id"].as_str().unwrap().to_owned(),
                    data["version"].as_i64().unwrap(),
                    data["orderId"].as_str().map(str::to_owned),
                ))
            }
            Subject::OrderCreated => seen.created.extend(order("id")),
            Subject::OrderCancelled => seen.cancelled.extend(order("id")),
            Subject::ExpirationComplete => seen.expired.extend(order("orderId")),
            _ => {}
        }
    }
    seen
}
