//! Traces you can follow: the binary, pointed at an OTLP/HTTP collector with
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, exports its spans there, and one order's trace (named by the
//! buyer's `traceparent`) holds its whole life, from the HTTP request that placed it to the
//! release of its ticket after it expired. The collector is a small axum server in the test
//! decoding what it receives with the official protobuf types (`opentelemetry-proto`).

mod support;

use std::{
    collections::BTreeSet,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::header, routing::post};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
    common::v1::{AnyValue, KeyValue, any_value::Value as Any},
};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::drop_namespace;
use ticketing_common::{
    session::SessionKeys,
    testing::{api::User, eventually, unique_namespace},
};
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_ticketing");
const KEY: &str = "tracing-test-key-tracing-test-key-0123";

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Received {
    service_name: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP collector on a random loopback port, keeping every span it is sent.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Received>>>,
    /// Requests that were not `application/x-protobuf` `ExportTraceServiceRequest`s.
    refused: Arc<Mutex<Vec<String>>>,
}

/// What the collector's handler shares with the test.
#[derive(Clone)]
struct Inbox {
    spans: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pairs(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

async fn export(
    State(state): State<Inbox>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) if content_type == "application/x-protobuf" => request,
        outcome => {
            state
                .refused
                .lock()
                .unwrap()
                .push(format!("{content_type}: {:?}", outcome.err()));
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain")],
                Vec::new(),
            );
        }
    };
    let mut spans = state.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = pairs(
            &resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let service_name = resource
            .iter()
            .find(|(k, _)| k == "service.name")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service_name: service_name.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: pairs(&span.attributes),
                });
            }
        }
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
}

impl Collector {
    async fn start() -> Collector {
        let state = Inbox {
            spans: Arc::default(),
            refused: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector {
            endpoint,
            spans: state.spans,
            refused: state.refused,
        }
    }

    fn of_trace(&self, trace_id: &str) -> Vec<Received> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|span| span.trace_id == trace_id)
            .cloned()
            .collect()
    }

    fn assert_nothing_refused(&self) {
        let refused = self.refused.lock().unwrap();
        assert!(
            refused.is_empty(),
            "the collector was sent requests it could not decode: {refused:?}"
        );
    }
}

/// A running `ticketing` and every line it printed on stdout.
struct Process {
    child: tokio::process::Child,
    base: String,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `ticketing <args>` exporting to `collector` and logging JSON at INFO, with
    /// `env` on top; returns once it printed its URL.
    async fn start(
        args: &[&str],
        namespace: &str,
        collector: &Collector,
        env: &[(&str, &str)],
    ) -> Process {
        let mut command = tokio::process::Command::new(BIN);
        command
            .args(args)
            .env("JWT_KEY", KEY)
            .env("TICKETING_NAMESPACE", namespace)
            .env("TICKETING_ADDR", "127.0.0.1:0")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
            .env_remove("OTEL_SERVICE_NAME")
            // Batches leave every 200 ms instead of every 5 s, so the test waits less.
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("DATABASE_POOL_SIZE", "4")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start ticketing");
        let stdout = child.stdout.take().expect("stdout");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let kept = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let announced = ["Ticketing is up at ", "is serving on "]
                    .iter()
                    .find_map(|marker| line.split_once(marker).map(|(_, rest)| rest.to_owned()));
                if let Some(rest) = announced {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(url.trim_end_matches('/').to_owned());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .ok()
            .flatten()
            .expect("ticketing printed its URL");
        Process {
            child,
            base,
            stdout: lines,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The JSON log lines printed so far.
    fn log(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// SIGTERM, and a clean exit (which sends the last spans).
    async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let exited = tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await;
        assert!(
            exited.is_ok_and(|status| status.is_ok_and(|s| s.success())),
            "ticketing exits cleanly on SIGTERM"
        );
    }
}

/// Whether a span is one step of a trace.
type Step<'a> = dyn Fn(&Received) -> bool + 'a;

/// The span id the buyer's client names as the parent of its requests.
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(trace_id: &str) -> String {
    format!("00-{trace_id}-{CLIENT_SPAN}-01")
}

/// A request as `user`, in the trace `trace_id`.
async fn send(
    client: &reqwest::Client,
    request: reqwest::RequestBuilder,
    user: &User,
    trace_id: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = request
        .header(header::COOKIE, &user.cookie)
        .header("traceparent", traceparent(trace_id));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = client.execute(request.build().unwrap()).await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn an_expired_orders_trace_runs_from_the_buyers_request_to_the_release_of_its_ticket() {
    let collector = Collector::start().await;
    let namespace = unique_namespace();
    let up = Process::start(
        &["up"],
        namespace.as_str(),
        &collector,
        &[("EXPIRATION_WINDOW_SECONDS", "2")],
    )
    .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let keys = SessionKeys::new(KEY.as_bytes(), false).unwrap();
    let (seller, buyer) = (User::signed_in(&keys), User::signed_in(&keys));
    let listing_trace = Uuid::new_v4().simple().to_string();
    let order_trace = Uuid::new_v4().simple().to_string();

    let (status, ticket) = send(
        &client,
        client.post(up.url("/api/tickets")),
        &seller,
        &listing_trace,
        Some(json!({"title": "Traced concert", "price": 30})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    // Orders answers 404 until it has learnt the ticket from its event.
    let order = eventually(Duration::from_secs(15), || async {
        let (status, order) = send(
            &client,
            client.post(up.url("/api/orders")),
            &buyer,
            &order_trace,
            Some(json!({"ticketId": ticket_id})),
        )
        .await;
        (status == StatusCode::CREATED).then_some(order)
    })
    .await
    .expect("the order is placed");
    let order_id = order["id"].as_str().unwrap().to_owned();
    // Two seconds later it expires; then tickets puts the ticket back on sale.
    eventually(Duration::from_secs(30), || async {
        let (_, order) = send(
            &client,
            client.get(up.url(&format!("/api/orders/{order_id}"))),
            &buyer,
            &Uuid::new_v4().simple().to_string(),
            None,
        )
        .await;
        (order["status"] == "cancelled").then_some(())
    })
    .await
    .expect("the order expired");
    eventually(Duration::from_secs(30), || async {
        let ticket: Value = client
            .get(up.url(&format!("/api/tickets/{ticket_id}")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        // Reserved (version 1), then released (version 2).
        (ticket["orderId"].is_null() && ticket["version"] == 2).then_some(())
    })
    .await
    .expect("the ticket is back on sale");

    // Every step of the order's life, as a predicate on the spans of its trace.
    let steps: [(&str, &Step<'_>); 5] = [
        ("orders' handling of POST /api/orders", &|s| {
            s.name == "http_request" && s.attribute("route") == Some("/api/orders")
        }),
        ("expiration scheduling the expiry (order.created)", &|s| {
            s.name == "handle_event"
                && s.attribute("service") == Some("expiration")
                && s.attribute("subject") == Some("order.created")
        }),
        ("the expiration job firing", &|s| {
            s.name == "fire_expiration" && s.attribute("order_id") == Some(order_id.as_str())
        }),
        ("orders cancelling the order (expiration.complete)", &|s| {
            s.name == "handle_event"
                && s.attribute("service") == Some("orders")
                && s.attribute("subject") == Some("expiration.complete")
        }),
        ("tickets releasing the ticket (order.cancelled)", &|s| {
            s.name == "handle_event"
                && s.attribute("service") == Some("tickets")
                && s.attribute("subject") == Some("order.cancelled")
        }),
    ];
    let missing = |spans: &[Received]| -> Vec<&str> {
        steps
            .iter()
            .filter(|(_, matches)| !spans.iter().any(matches))
            .map(|(step, _)| *step)
            .collect()
    };
    let complete = eventually(Duration::from_secs(20), || async {
        missing(&collector.of_trace(&order_trace))
            .is_empty()
            .then_some(())
    })
    .await;
    let spans = collector.of_trace(&order_trace);
    assert!(
        complete.is_some(),
        "steps missing from the order's trace: {:?}\nits spans: {:#?}",
        missing(&spans),
        spans
            .iter()
            .map(|s| (&s.name, s.attribute("service"), s.attribute("subject")))
            .collect::<Vec<_>>()
    );
    // One tree: every span hangs from the client's span or from another span of the trace,
    // none from a span that was never exported.
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for span in &spans {
        assert!(
            span.parent_span_id == CLIENT_SPAN || ids.contains(span.parent_span_id.as_str()),
            "{span:?} hangs from a span the trace does not hold"
        );
    }
    let names: BTreeSet<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["ticketing"]),
        "`up` names its spans `ticketing`"
    );
    assert!(
        collector
            .of_trace(&listing_trace)
            .iter()
            .all(|s| s.attribute("route") != Some("/api/orders")),
        "the listing's trace is its own"
    );
    collector.assert_nothing_refused();

    // The log lines of the order's life carry its trace id, beside a span id and request id.
    let log = up.log();
    let traced: Vec<&Value> = log
        .iter()
        .filter(|line| line["trace_id"] == order_trace.as_str())
        .collect();
    for message in [
        "order created",
        "order expired and cancelled",
        "ticket released",
    ] {
        let line = traced
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| {
                panic!("no log line {message:?} with trace_id {order_trace}: {traced:#?}")
            });
        let span_id = line["span_id"].as_str().unwrap_or_default();
        assert!(
            span_id.len() == 16 && span_id.chars().all(|c| c.is_ascii_hexdigit()),
            "{line}"
        );
        assert!(line["request_id"].is_string(), "{line}");
    }

    up.stop().await;
    drop_namespace(namespace.as_str()).await;
}

#[tokio::test]
async fn serve_names_its_spans_after_its_component_unless_otel_service_name_says_otherwise() {
    let collector = Collector::start().await;
    for (service_name, expected) in [(None, "ticketing-auth"), (Some("sign-in"), "sign-in")] {
        let namespace = unique_namespace();
        // No batch leaves on its own during the test: the spans arrive only because the
        // process sends the last batch when it stops.
        let mut env = vec![("OTEL_BSP_SCHEDULE_DELAY", "600000")];
        env.extend(service_name.map(|name| ("OTEL_SERVICE_NAME", name)));
        let auth = Process::start(&["serve", "auth"], namespace.as_str(), &collector, &env).await;
        let trace_id = Uuid::new_v4().simple().to_string();
        let response = reqwest::Client::new()
            .get(auth.url("/api/users/currentuser"))
            .header("traceparent", traceparent(&trace_id))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        auth.stop().await;
        let spans = collector.of_trace(&trace_id);
        assert!(
            spans.iter().any(|s| s.name == "http_request"),
            "no request span: {spans:#?}"
        );
        assert!(
            spans.iter().all(|s| s.service_name == expected),
            "service.name should be {expected}: {spans:#?}"
        );
        drop_namespace(namespace.as_str()).await;
    }
    collector.assert_nothing_refused();
}
