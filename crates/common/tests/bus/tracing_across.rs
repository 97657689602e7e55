use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::State, routing::post};
use serde_json::{Value, json};
use sqlx::PgPool;
use ticketing_common::{
    CancellationToken, Component,
    bus::{
        listener::{Applied, Listener, Subscription},
        outbox::{self, Relay},
    },
    settings::LogFormat,
    telemetry,
    testing::{TestServer, eventually, session_keys},
};
use ticketing_events::{Envelope, ExpirationComplete};
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use crate::helpers::World;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

/// A route that writes an event the way a flow does, inside the request.
async fn emit(State(pool): State<PgPool>) -> axum::Json<Value> {
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(
        &mut tx,
        &Envelope::new(ExpirationComplete {
            order_id: Uuid::now_v7(),
        }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    tracing::info!("event written");
    axum::Json(json!({ "traceId": telemetry::trace_id(&tracing::Span::current()) }))
}

// Current-thread runtime: the thread-local subscriber sees every task of the test.
#[tokio::test]
async fn the_listener_span_continues_the_trace_and_request_id_of_the_http_request_that_wrote_the_event()
 {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(telemetry::subscriber(
        LogFormat::Json,
        EnvFilter::new("info"),
        captured.clone(),
    ));
    let world = World::new().await;
    let probe = Component {
        name: "probe",
        router: OpenApiRouter::new()
            .route("/emit", post(emit))
            .with_state(world.pool().clone()),
        tasks: vec![],
        checks: vec![],
        events: None,
    };
    let server = TestServer::start(vec![probe], session_keys()).await;
    let handled_trace: Arc<Mutex<Option<String>>> = Arc::default();
    let stop = CancellationToken::new();
    let seen = handled_trace.clone();
    let listener = Listener::new(
        world.bus(),
        "tracer",
        Subscription::handler(move |_: Envelope<ExpirationComplete>| {
            let seen = seen.clone();
            async move {
                tracing::info!("event handled");
                *seen.lock().unwrap() = Some(telemetry::trace_id(&tracing::Span::current()));
                Ok(Applied::Now)
            }
        }),
    );
    let running = tokio::spawn(listener.run(stop.clone()));

    let response = reqwest::Client::new()
        .post(server.url("/emit"))
        .header("x-request-id", "req-trace-probe-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-trace-probe-1");
    let request_trace = response.json::<Value>().await.unwrap()["traceId"]
        .as_str()
        .unwrap()
        .to_owned();
    Relay::new(world.pool().clone(), world.bus().clone(), "probe")
        .relay_once()
        .await
        .unwrap();
    let listener_trace = eventually(Duration::from_secs(10), || async {
        handled_trace.lock().unwrap().clone()
    })
    .await;
    stop.cancel();
    running.await.unwrap().unwrap();

    assert_ne!(
        request_trace, "00000000000000000000000000000000",
        "the request had a trace"
    );
    assert_eq!(
        listener_trace.as_deref(),
        Some(request_trace.as_str()),
        "the listener continued the request's trace"
    );
    let lines = captured.lines();
    let line = |message: &str| {
        lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no log line {message:?} in {lines:#?}"))
            .to_string()
    };
    assert!(
        line("event written").contains("req-trace-probe-1"),
        "request id in the HTTP log line"
    );
    assert!(
        line("event handled").contains("req-trace-probe-1"),
        "request id in the listener log line"
    );
}
