use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use ticketing_common::{
    CancellationToken,
    bus::{
        listener::{Applied, Applying, Listener, ListenerSettings, NotApplied, Subscription},
        outbox::Relay,
        parked::{self, Parking, Replayed},
    },
    testing::eventually,
};
use ticketing_events::{Envelope, ExpirationComplete, Subject};
use uuid::Uuid;

use crate::helpers::World;

fn quick() -> ListenerSettings {
    ListenerSettings {
        max_failures: 3,
        not_yet_delay: Duration::from_millis(50),
        retry_delay: Duration::from_millis(50),
        max_retry_delay: Duration::from_millis(200),
        ..ListenerSettings::default()
    }
}

/// The world's `parked_events` table.
fn parking(world: &World) -> Parking {
    Parking::Postgres(world.pool().clone())
}

/// Publishes `n` events through the outbox; returns their ids.
async fn publish(world: &World, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(world.commit_event().await);
    }
    let relay = Relay::new(world.pool().clone(), world.bus().clone(), "probe");
    while relay.relay_once().await.unwrap() > 0 {}
    ids
}

/// The consumer's count of messages neither acked nor terminated.
async fn outstanding(world: &World, service: &str) -> u64 {
    let mut consumer = world
        .bus()
        .consumer(service, Subject::ExpirationComplete)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    info.num_pending + info.num_ack_pending as u64
}

fn metric_value(service: &str, name: &str) -> f64 {
    ticketing_common::metrics::render()
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(&format!("service=\"{service}\"")))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn service_name() -> String {
    format!("svc{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// A handler that counts its calls and answers what `answer` says to each (numbered from 0).
fn counting<A>(answer: A) -> (Arc<AtomicUsize>, Subscription)
where
    A: Fn(usize) -> Applying + Send + Sync + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen, answer) = (calls.clone(), Arc::new(answer));
    let subscription = Subscription::handler(move |_: Envelope<ExpirationComplete>| {
        let call = seen.fetch_add(1, Ordering::SeqCst);
        let answer = answer.clone();
        async move { answer(call) }
    });
    (calls, subscription)
}

/// A handler that answers "too early" until `ready` is set, then applies; it counts its
/// tries and its applications.
fn waiting_for(ready: &Arc<AtomicBool>) -> (Arc<AtomicUsize>, Arc<AtomicUsize>, Subscription) {
    let applied = Arc::new(AtomicUsize::new(0));
    let (ready, done) = (ready.clone(), applied.clone());
    let (tries, subscription) = counting(move |_| {
        if !ready.load(Ordering::SeqCst) {
            return Err(NotApplied::TooEarly("version 1 not applied yet".into()));
        }
        done.fetch_add(1, Ordering::SeqCst);
        Ok(Applied::Now)
    });
    (tries, applied, subscription)
}

/// Which replicas handled each event.
type Handled = Arc<Mutex<HashMap<Uuid, Vec<usize>>>>;

/// A handler that notes in `handled` that `replica` took the event, then waits `work`.
fn recording(handled: &Handled, replica: usize, work: Duration) -> Subscription {
    let handled = handled.clone();
    Subscription::handler(move |envelope: Envelope<ExpirationComplete>| {
        let handled = handled.clone();
        async move {
            handled
                .lock()
                .unwrap()
                .entry(envelope.id)
                .or_default()
                .push(replica);
            tokio::time::sleep(work).await;
            Ok(Applied::Now)
        }
    })
}

#[tokio::test]
async fn a_handled_event_is_acked_and_not_delivered_again() {
    let world = World::new().await;
    let service = service_name();
    let (calls, subscription) = counting(|_| Ok(Applied::Now));
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription).with_settings(quick());
    let running = tokio::spawn(listener.run(stop.clone()));

    publish(&world, 3).await;
    let done = eventually(Duration::from_secs(10), || async {
        (calls.load(Ordering::SeqCst) == 3 && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(done.is_some(), "three events handled and acked");
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_failing_handler_is_redelivered_until_it_succeeds() {
    let world = World::new().await;
    let service = service_name();
    let (calls, subscription) = counting(|call| {
        if call < 2 {
            return Err(NotApplied::Failed(anyhow::anyhow!("database hiccup")));
        }
        Ok(Applied::Now)
    });
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription).with_settings(quick());
    let running = tokio::spawn(listener.run(stop.clone()));

    publish(&world, 1).await;
    let done = eventually(Duration::from_secs(10), || async {
        (calls.load(Ordering::SeqCst) == 3 && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(
        done.is_some(),
        "two failures, then success on the third delivery"
    );
    assert_eq!(metric_value(&service, "events_redelivered_total"), 2.0);
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_early_event_is_nakked_with_a_delay_and_applied_once_its_predecessor_arrives() {
    let world = World::new().await;
    let service = service_name();
    let predecessor_applied = Arc::new(AtomicBool::new(false));
    let (attempts, applied, subscription) = waiting_for(&predecessor_applied);
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription).with_settings(quick());
    let running = tokio::spawn(listener.run(stop.clone()));

    publish(&world, 1).await;
    // More "not yet" answers than max_failures: waiting is not failing.
    let waited = eventually(Duration::from_secs(10), || async {
        (attempts.load(Ordering::SeqCst) >= 5).then_some(())
    })
    .await;
    assert!(waited.is_some(), "the early event keeps coming back");
    assert_eq!(applied.load(Ordering::SeqCst), 0);
    predecessor_applied.store(true, Ordering::SeqCst);
    let finished = eventually(Duration::from_secs(10), || async {
        (applied.load(Ordering::SeqCst) == 1 && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(finished.is_some(), "applied once its predecessor was");
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 1);
}

/// Publishes a message that is not an envelope on the listener's subject.
async fn publish_garbage(world: &World) {
    world
        .bus()
        .jetstream()
        .publish(
            world.bus().subject(Subject::ExpirationComplete),
            "not json".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_event_that_keeps_failing_or_cannot_be_read_is_parked_and_counted_not_dropped() {
    let world = World::new().await;
    let service = service_name();
    let (calls, subscription) =
        counting(|_| Err(NotApplied::Failed(anyhow::anyhow!("always broken"))));
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription)
        .with_settings(quick())
        .with_parking(parking(&world));
    listener.ensure_consumer().await.unwrap();
    let running = tokio::spawn(listener.run(stop.clone()));

    let ids = publish(&world, 1).await;
    publish_garbage(&world).await;
    let settled = eventually(Duration::from_secs(10), || async {
        (metric_value(&service, "events_parked_total") == 2.0
            && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(settled.is_some(), "both messages parked and counted");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the failing event was tried max_failures times"
    );
    let parked = parking(&world).list().await.unwrap();
    assert_eq!(parked.len(), 2, "{parked:?}");
    let failing = parked.iter().find(|p| p.event_id == Some(ids[0])).unwrap();
    assert!(failing.error.contains("always broken"), "{failing:?}");
    assert_eq!(failing.subject, "expiration.complete");
    let garbage = parked.iter().find(|p| p.event_id.is_none()).unwrap();
    assert_eq!(garbage.payload, b"not json");
    assert!(garbage.error.starts_with("undecodable"), "{garbage:?}");
    // Parked messages are not redelivered, however long we wait past the retry delay.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_transient_failure_is_retried_for_as_long_as_it_lasts() {
    let world = World::new().await;
    let service = service_name();
    let (calls, subscription) = counting(|call| {
        // A database that is down for a good while: many more tries than max_failures, each
        // a connection refused.
        if call < 12 {
            let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(NotApplied::Failed(
                anyhow::Error::new(sqlx::Error::Io(refused)).context("cannot apply"),
            ));
        }
        Ok(Applied::Now)
    });
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription)
        .with_settings(quick())
        .with_parking(parking(&world));
    let running = tokio::spawn(listener.run(stop.clone()));

    publish(&world, 1).await;
    let done = eventually(Duration::from_secs(20), || async {
        (calls.load(Ordering::SeqCst) == 13 && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(done.is_some(), "applied once the outage ended");
    assert!(
        parking(&world).list().await.unwrap().is_empty(),
        "nothing parked"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_event_too_early_past_the_deadline_is_parked_and_replayed_once_it_can_apply() {
    let world = World::new().await;
    let service = service_name();
    let predecessor_applied = Arc::new(AtomicBool::new(false));
    let (_, applied, subscription) = waiting_for(&predecessor_applied);
    let stop = CancellationToken::new();
    let listener = Listener::new(world.bus(), &service, subscription.clone())
        .with_settings(ListenerSettings {
            not_yet_deadline: Duration::from_secs(1),
            ..quick()
        })
        .with_parking(parking(&world));
    let running = tokio::spawn(listener.run(stop.clone()));

    let ids = publish(&world, 1).await;
    let parked = eventually(Duration::from_secs(10), || async {
        let parked = parking(&world).list().await.unwrap();
        (parked.len() == 1 && outstanding(&world, &service).await == 0).then_some(parked)
    })
    .await
    .expect("parked once past the deadline");
    stop.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(parked[0].event_id, Some(ids[0]));
    assert!(parked[0].error.contains("too early"), "{:?}", parked[0]);

    // Still too early: the replay keeps it, with the new error.
    let again = parked::replay(
        &parking(&world),
        std::slice::from_ref(&subscription),
        &parked[0],
    )
    .await
    .unwrap();
    assert!(matches!(again, Replayed::Refused(_)), "{again:?}");
    assert_eq!(parking(&world).list().await.unwrap()[0].replays, 1);
    // Its predecessor came: the replay applies it through the same handler, once.
    predecessor_applied.store(true, Ordering::SeqCst);
    let replayed = parked::replay(&parking(&world), &[subscription], &parked[0])
        .await
        .unwrap();
    assert_eq!(replayed, Replayed::Applied);
    assert_eq!(applied.load(Ordering::SeqCst), 1);
    assert!(parking(&world).list().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_durable_consumer_share_the_work_and_handle_each_event_once() {
    let world = World::new().await;
    let service = service_name();
    let handled = Handled::default();
    let stop = CancellationToken::new();
    let settings = ListenerSettings {
        concurrency: 4,
        ..quick()
    };
    let mut replicas = Vec::new();
    for replica in 0..2 {
        // Each event takes a transaction's worth of work.
        let subscription = recording(&handled, replica, Duration::from_millis(2));
        let listener =
            Listener::new(world.bus(), &service, subscription).with_settings(settings.clone());
        replicas.push(tokio::spawn(listener.run(stop.clone())));
    }

    let ids = publish(&world, 300).await;
    let all = eventually(Duration::from_secs(20), || async {
        (handled.lock().unwrap().len() == ids.len() && outstanding(&world, &service).await == 0)
            .then_some(())
    })
    .await;

    assert!(all.is_some(), "every event handled");
    stop.cancel();
    for replica in replicas {
        replica.await.unwrap().unwrap();
    }
    let handled = handled.lock().unwrap();
    assert!(
        handled.values().all(|by| by.len() == 1),
        "no event handled twice"
    );
    let by_first = handled.values().filter(|by| by[0] == 0).count();
    assert!(
        by_first > 0 && by_first < ids.len(),
        "both replicas took part ({by_first} of {} by the first)",
        ids.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_stopping_as_events_arrive_stops_promptly_and_another_replica_gets_them_soon() {
    let world = World::new().await;
    let service = service_name();
    let handled = Handled::default();
    let start = |replica: usize, stop: CancellationToken| {
        let subscription = recording(&handled, replica, Duration::ZERO);
        let listener = Listener::new(world.bus(), &service, subscription).with_settings(quick());
        tokio::spawn(listener.run(stop))
    };
    let first_stop = CancellationToken::new();
    let first = start(0, first_stop.clone());
    publish(&world, 1).await;
    let warm = eventually(Duration::from_secs(10), || async {
        (handled.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(warm.is_some(), "the first replica handles events");

    // Events arrive while the first replica is stopping: its pull is still open and hands
    // them to it after it stopped handling. It must hand them back and stop, not bounce them.
    first_stop.cancel();
    let ids = publish(&world, 5).await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), first).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "a stopping listener finishes cleanly within 5 s: {stopped:?}"
    );

    let second_stop = CancellationToken::new();
    let second = start(1, second_stop.clone());
    let all = eventually(Duration::from_secs(15), || async {
        let handled = handled.lock().unwrap();
        ids.iter().all(|id| handled.contains_key(id)).then_some(())
    })
    .await;
    second_stop.cancel();
    second.await.unwrap().unwrap();
    assert!(
        all.is_some(),
        "the events the stopping replica held are handled by the next well before the 30 s ack wait"
    );
    assert!(
        handled.lock().unwrap().values().all(|by| by.len() == 1),
        "each handled once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_ack_wait_keeps_its_event_and_it_is_handled_once() {
    let world = World::new().await;
    let service = service_name();
    let handled = Handled::default();
    let stop = CancellationToken::new();
    // A database failing over, say: longer than the ack wait.
    let slow = ticketing_common::bus::ACK_WAIT + Duration::from_secs(2);
    let mut replicas = Vec::new();
    for replica in 0..2 {
        let subscription = recording(&handled, replica, slow);
        let listener = Listener::new(world.bus(), &service, subscription).with_settings(quick());
        replicas.push(tokio::spawn(listener.run(stop.clone())));
    }

    let ids = publish(&world, 1).await;
    let done = eventually(slow + Duration::from_secs(10), || async {
        (outstanding(&world, &service).await == 0).then_some(())
    })
    .await;
    stop.cancel();
    for replica in replicas {
        replica.await.unwrap().unwrap();
    }

    assert!(done.is_some(), "the event was handled and acked");
    let handled = handled.lock().unwrap();
    assert_eq!(
        handled.get(&ids[0]).map(Vec::len),
        Some(1),
        "taken once, not redelivered to the other replica while still being handled: {handled:?}"
    );
}

#[tokio::test]
async fn a_consumer_made_with_an_older_ack_wait_is_brought_up_to_date() {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    let world = World::new().await;
    let service = service_name();
    let bus = world.bus();
    let durable = format!("{service}-expiration-complete");
    let stream = bus.jetstream().get_stream(bus.stream_name()).await.unwrap();
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.clone()),
            filter_subject: bus.subject(Subject::ExpirationComplete),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            ..Default::default()
        })
        .await
        .unwrap();

    let mut consumer = bus
        .consumer(&service, Subject::ExpirationComplete)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();

    assert_eq!(info.name, durable, "the same durable consumer");
    assert_eq!(info.config.ack_wait, ticketing_common::bus::ACK_WAIT);
}
