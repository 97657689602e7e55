use std::time::Duration;

use ticketing_common::{bus::outbox::Relay, testing::eventually};
use ticketing_events::{Envelope, ExpirationComplete};
use uuid::Uuid;

use crate::helpers::{OwnNats, World};

#[tokio::test]
async fn an_event_written_in_a_committed_transaction_is_published_once() {
    let world = World::new().await;
    world.commit_event().await;
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");

    assert_eq!(relay.relay_once().await.unwrap(), 1);
    assert_eq!(
        relay.relay_once().await.unwrap(),
        0,
        "a sent row is not sent again"
    );

    assert_eq!(world.stream_messages().await, 1);
    assert_eq!(world.unsent().await, 0);
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let world = World::new().await;
    let mut tx = world.pool().begin().await.unwrap();
    let envelope = Envelope::new(ExpirationComplete {
        order_id: Uuid::now_v7(),
    });
    ticketing_common::bus::outbox::enqueue(&mut tx, &envelope)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");

    assert_eq!(relay.relay_once().await.unwrap(), 0);
    assert_eq!(world.stream_messages().await, 0);
}

#[tokio::test]
async fn a_relay_killed_between_publish_and_marking_sent_still_publishes_each_event_once() {
    let world = World::new().await;
    for _ in 0..5 {
        world.commit_event().await;
    }
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");

    // The first relay publishes and dies before its transaction marks the rows sent.
    assert_eq!(relay.publish_then_crash().await.unwrap(), 5);
    assert_eq!(world.unsent().await, 5, "the crash left the rows unsent");
    // Its successor publishes them again; JetStream drops the copies by message id.
    assert_eq!(relay.relay_once().await.unwrap(), 5);

    assert_eq!(world.stream_messages().await, 5);
    assert_eq!(world.unsent().await, 0);
}

#[tokio::test]
async fn the_relay_wakes_on_commit_without_waiting_for_its_poll() {
    let world = World::new().await;
    // A poll far longer than the test: only the commit notification can wake it.
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe")
        .with_poll_interval(Duration::from_secs(3600));
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(relay.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await; // let it reach its idle wait

    for _ in 0..20 {
        world.commit_event().await;
    }
    let published = eventually(Duration::from_secs(5), || async {
        (world.stream_messages().await == 20).then_some(())
    })
    .await;

    assert!(
        published.is_some(),
        "the running relay published every event"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_nats_down_writes_commit_and_the_backlog_is_published_once_when_it_returns() {
    let mut nats = OwnNats::start().await;
    let world =
        World::with_bus_url(ticketing_common::testing::unique_namespace(), &nats.url()).await;
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(relay.clone().run(stop.clone()));
    for _ in 0..3 {
        world.commit_event().await;
    }
    let first = eventually(Duration::from_secs(10), || async {
        (world.stream_messages().await == 3).then_some(())
    })
    .await;
    assert!(first.is_some(), "events published while NATS is up");

    nats.kill().await;
    for _ in 0..7 {
        world.commit_event().await; // commits although NATS is gone
    }
    assert_eq!(
        relay.backlog().await.unwrap(),
        7,
        "events wait in the outbox"
    );
    // Keep the outage long enough for the running relay to fail and back off at least once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        relay.backlog().await.unwrap(),
        7,
        "nothing is marked sent while NATS is down"
    );

    nats.restart().await;
    let drained = eventually(Duration::from_secs(30), || async {
        let stored = world.stream_messages().await;
        (world.unsent().await == 0 && stored >= 10).then_some(stored)
    })
    .await;

    assert_eq!(
        drained,
        Some(10),
        "every event published exactly once after NATS came back"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}
