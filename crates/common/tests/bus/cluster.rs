//! The bus on a 3-node NATS cluster of the test's own: a stream that already holds events
//! raised from one replica to three (its consumers too, their progress kept), never lowered
//! by a lower setting, and events still flowing to a listener after the node leading the
//! stream and its consumer is SIGKILLed.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use ticketing_common::{
    CancellationToken,
    bus::{
        Bus,
        listener::{Applied, Listener, Subscription},
        outbox::Relay,
    },
    testing::{cluster::NatsCluster, eventually, unique_namespace},
};
use ticketing_events::{Envelope, ExpirationComplete, Subject};
use uuid::Uuid;

use crate::helpers::World;

const SERVICE: &str = "clustered";

/// Commits `n` events to the outbox and relays them all.
async fn publish(world: &World, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(world.commit_event().await);
    }
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");
    let relayed = eventually(Duration::from_secs(30), || async {
        while relay.relay_once().await.ok()? > 0 {}
        (world.unsent().await == 0).then_some(())
    })
    .await;
    assert!(relayed.is_some(), "the relay published every event");
    ids
}

/// The service's consumer, once the cluster answers.
async fn consumer_on(bus: &Bus) -> async_nats::jetstream::consumer::PullConsumer {
    eventually(Duration::from_secs(30), || async {
        bus.consumer(SERVICE, Subject::ExpirationComplete)
            .await
            .ok()
    })
    .await
    .expect("the consumer")
}

/// The replicas a stream or consumer detail of `/jsz` reports: its leader and its peers
/// that are current.
fn current_peers(detail: &serde_json::Value) -> usize {
    let leader = usize::from(detail["cluster"]["leader"].is_string());
    let peers = detail["cluster"]["replicas"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|p| p["current"] == true).count());
    leader + peers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holding_events_is_raised_to_three_replicas_with_its_consumers_and_never_lowered()
{
    let mut cluster = NatsCluster::start(3).await;
    let namespace = unique_namespace();
    // Made with one replica, as every earlier release did.
    let world = World::with_bus_url(namespace.clone(), &cluster.url()).await;
    let stream = world.bus().stream_name().to_owned();
    publish(&world, 40).await;
    let consumer = world
        .bus()
        .consumer(SERVICE, Subject::ExpirationComplete)
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(15).messages().await.unwrap();
    let mut acked = 0;
    while let Some(Ok(message)) = batch.next().await {
        message.double_ack().await.unwrap();
        acked += 1;
    }
    assert_eq!(acked, 15);
    let before = cluster.stream(&stream).await.expect("the stream");
    assert_eq!(before["config"]["num_replicas"], 1, "{before}");
    let original = cluster.stream_leader(&stream).await.expect("its node");

    let raised = Bus::connect_with_replicas(&cluster.url(), &namespace, 3)
        .await
        .expect("the stream raised to 3 replicas");
    // The stream's raft group is busy growing: the first lookups may time out (the listener
    // retries them the same way).
    let mut consumer = consumer_on(&raised).await;

    let info = consumer.info().await.unwrap().clone();
    assert_eq!(
        info.config.num_replicas, 3,
        "the consumer follows the stream"
    );
    println!(
        "raised consumer: pending {}, deliver policy {:?}",
        info.num_pending, info.config.deliver_policy
    );
    let synced = eventually(Duration::from_secs(30), || async {
        let detail = cluster.stream(&stream).await?;
        let consumer = cluster
            .consumer(&stream, "clustered-expiration-complete")
            .await?;
        let copies = {
            let mut copies = Vec::new();
            for i in 0..3 {
                copies.push(cluster.local_state(i, &stream).await?["messages"].as_u64()?);
            }
            copies
        };
        (detail["config"]["num_replicas"] == 3
            && current_peers(&detail) == 3
            && current_peers(&consumer) == 3
            && copies == [40, 40, 40])
        .then_some(())
    })
    .await;
    assert!(
        synced.is_some(),
        "three current replicas of the stream and its consumer, each node holding all 40 events: {}",
        cluster.stream(&stream).await.unwrap_or_default()
    );

    // A process still configured for one replica leaves the stream at three.
    let lower = Bus::connect_with_replicas(&cluster.url(), &namespace, 1)
        .await
        .expect("a lower setting is refused, not fatal");
    consumer_on(&lower).await;
    let kept = cluster.stream(&stream).await.unwrap();
    assert_eq!(kept["config"]["num_replicas"], 3, "{kept}");
    assert_eq!(consumer.info().await.unwrap().config.num_replicas, 3);

    // The node that held the only copy before dies: the new replicas have the events and
    // the consumer's progress (nats-server 2.9's followers report a stale ack floor in
    // `/jsz`, but the one elected carries on from the real one).
    cluster.kill(original).await;
    let gone = cluster.nodes[original].name.clone();
    let carried_on = eventually(Duration::from_secs(30), || {
        let (mut consumer, gone) = (consumer.clone(), gone.clone());
        async move {
            let info = consumer.info().await.ok()?;
            let leader = info.cluster.as_ref()?.leader.clone()?;
            (leader != gone).then_some((info.num_pending, info.config.num_replicas))
        }
    })
    .await;
    assert_eq!(
        carried_on,
        Some((25, 3)),
        "after the original node died, the consumer has the same 25 events to deliver"
    );
    let next = eventually(Duration::from_secs(30), || async {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .ok()?;
        let message = batch.next().await?.ok()?;
        Some(message.info().ok()?.stream_sequence)
    })
    .await;
    assert_eq!(
        next,
        Some(16),
        "it goes on after the 15 acked before the raise"
    );
    let kept = eventually(Duration::from_secs(30), || async {
        let mut held = raised.jetstream().get_stream(&stream).await.ok()?;
        Some(held.info().await.ok()?.state.messages)
    })
    .await;
    assert_eq!(kept, Some(40), "every event survived the original node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_keeps_receiving_after_the_node_leading_its_stream_and_consumer_is_killed() {
    let mut cluster = NatsCluster::start(3).await;
    let namespace = unique_namespace();
    let world = World::with_bus_url(namespace.clone(), &cluster.url()).await;
    let bus = Bus::connect_with_replicas(&cluster.url(), &namespace, 3)
        .await
        .unwrap();
    let stream = bus.stream_name().to_owned();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let handled = seen.clone();
    let subscription = Subscription::handler(move |event: Envelope<ExpirationComplete>| {
        handled.lock().unwrap().insert(event.id);
        async { Ok(Applied::Now) }
    });
    let listener = Listener::new(&bus, SERVICE, subscription);
    listener.ensure_consumer().await.unwrap();
    let stop = CancellationToken::new();
    let running = tokio::spawn(listener.run(stop.clone()));

    let first = publish(&world, 20).await;
    let all_seen = |ids: Vec<Uuid>| {
        let seen = seen.clone();
        async move {
            eventually(Duration::from_secs(40), || {
                let seen = seen.clone();
                let ids = ids.clone();
                async move {
                    ids.iter()
                        .all(|id| seen.lock().unwrap().contains(id))
                        .then_some(())
                }
            })
            .await
        }
    };
    assert!(all_seen(first).await.is_some(), "the first events handled");

    // The node leading the stream (with the consumer, on a fresh cluster, as a rule) dies
    // while the listener waits on a pull it holds.
    let leader = cluster
        .stream_leader(&stream)
        .await
        .expect("a stream leader");
    cluster.kill(leader).await;
    let killed_at = std::time::Instant::now();
    let second = publish(&world, 20).await;
    let handled = all_seen(second).await;
    println!(
        "killed {} (stream leader); 20 more events published and handled {:.1?} after the kill",
        cluster.nodes[leader].name,
        killed_at.elapsed()
    );
    assert!(
        handled.is_some(),
        "events published after the leader died reach the listener (logs in {})",
        cluster.log_dir().display()
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}
