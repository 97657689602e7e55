//! The HTTP server every process runs, tried as an attacker would: half-sent requests, idle
//! connections, more connections than allowed, a handler that never answers, made-up methods.
//! Real sockets against the real server loop (`component::serve_with`).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{Router, routing::get};
use ticketing_common::{
    CancellationToken,
    component::{self, Component},
    settings::HttpSettings,
    testing::session_keys,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use utoipa_axum::router::OpenApiRouter;

/// A server with a fast route (`/fast`), a 16 MiB answer (`/big`), a body echo (`/echo`) and
/// a route that never answers (`/stuck`), and the
/// operational routes, under `settings`; stops when the token is cancelled.
async fn server(settings: HttpSettings) -> (SocketAddr, CancellationToken) {
    let router = Router::new()
        .route("/fast", get(|| async { "ok" }))
        .route("/big", get(|| async { vec![b'x'; 16 * 1024 * 1024] }))
        .route(
            "/echo",
            axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        );
    let component = Component {
        name: "test",
        router: OpenApiRouter::from(router),
        tasks: Vec::new(),
        checks: Vec::new(),
        events: None,
    };
    let app = component::compose(vec![component], session_keys());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move { component::serve_with(listener, app, token, &settings).await });
    (addr, shutdown)
}

fn settings(header_timeout: u64, request_timeout: u64, max_connections: u64) -> HttpSettings {
    HttpSettings {
        http_header_timeout_seconds: header_timeout,
        http_request_timeout_seconds: request_timeout,
        http_max_connections: max_connections,
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Waits until the server closes `stream` (a read sees the end); `false` if it is still open
/// after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a response (408, or a previous request's)
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn three_hundred_half_sent_requests_neither_slow_healthz_nor_stay_open() {
    let (addr, _stop) = server(settings(2, 30, 10_000)).await;
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /fast HTTP/1.1\r\nHost: example\r\nX-Slow: ")
            .await
            .unwrap();
        half_open.push(stream);
    }
    let opened = Instant::now();

    let started = Instant::now();
    let health = client(Duration::from_secs(5))
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("/healthz answers beside 300 half-sent requests");
    let healthz = started.elapsed();

    assert_eq!(health.status(), 200);
    eprintln!("/healthz beside 300 half-sent requests: {healthz:?}");
    // Answered beside them, not after the header timeout had cleared them away.
    let newest = half_open.last_mut().unwrap();
    assert!(
        !closed_within(newest, Duration::from_millis(1)).await,
        "/healthz only answered once the half-sent requests were gone"
    );
    let mut still_open = 0;
    for stream in &mut half_open {
        if !closed_within(stream, Duration::from_secs(6)).await {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "half-sent requests outlived the header timeout"
    );
    eprintln!(
        "all 300 closed {:?} after they opened (header timeout 2 s)",
        opened.elapsed()
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let (addr, _stop) = server(settings(1, 30, 10_000)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /fast HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .unwrap();
    let mut response = vec![0u8; 4096];
    let read = stream.read(&mut response).await.unwrap();
    assert!(
        String::from_utf8_lossy(&response[..read]).starts_with("HTTP/1.1 200"),
        "the request is answered and the connection kept alive"
    );

    assert!(
        closed_within(&mut stream, Duration::from_secs(5)).await,
        "an idle keep-alive connection stayed open"
    );
}

#[tokio::test]
async fn beyond_the_connection_cap_clients_wait_until_a_place_frees() {
    let (addr, _stop) = server(settings(2, 30, 5)).await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }

    let while_full = client(Duration::from_millis(700))
        .get(format!("http://{addr}/fast"))
        .send()
        .await;
    let after = client(Duration::from_secs(10))
        .get(format!("http://{addr}/fast"))
        .send()
        .await;

    assert!(
        while_full.is_err(),
        "a sixth connection was served while five were open"
    );
    assert_eq!(
        after
            .expect("served once the silent ones timed out")
            .status(),
        200
    );
}

#[tokio::test]
async fn a_request_not_answered_in_time_is_503_with_retry_after() {
    let (addr, _stop) = server(settings(10, 1, 10_000)).await;

    let reply = client(Duration::from_secs(10))
        .get(format!("http://{addr}/stuck"))
        .send()
        .await
        .unwrap();

    assert_eq!(reply.status(), 503);
    assert_eq!(reply.headers()["retry-after"], "1");
    assert!(
        reply.headers().contains_key("x-request-id"),
        "answered inside the request's own span and metrics"
    );
    let body: serde_json::Value = reply.json().await.unwrap();
    assert!(
        body["errors"][0]["message"].as_str().is_some(),
        "the contract's error body: {body}"
    );
}

/// The `http_requests_total` series in a Prometheus text page.
fn request_series(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .map(|line| {
            line.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series() {
    let (addr, _stop) = server(settings(10, 30, 10_000)).await;
    let http = client(Duration::from_secs(5));
    for n in 0..120 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        let reply = http
            .request(method, format!("http://{addr}/fast"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 405);
    }

    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let series = request_series(&metrics);
    assert!(
        series.iter().all(|s| !s.contains("MADEUP")),
        "a made-up method became a label: {series:?}"
    );
    assert!(
        series
            .iter()
            .any(|s| s.contains("method=\"other\"") && s.contains("route=\"/fast\"")),
        "made-up methods count as other: {series:?}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_not_a_server_error() {
    let (addr, _stop) = server(settings(10, 1, 10_000)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: example\r\nContent-Length: 10\r\n\r\nhalf")
        .await
        .unwrap();

    let mut response = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut response))
        .await
        .expect("answered after the request timeout")
        .unwrap();

    let response = String::from_utf8_lossy(&response[..read]);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_loses_the_connection() {
    let (addr, _stop) = server(settings(10, 1, 10_000)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: example\r\n\r\n")
        .await
        .unwrap();
    // Read nothing while the server's writes block, longer than the timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut received = 0usize;
    let mut buffer = vec![0u8; 1 << 16];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received += n,
            }
        }
    })
    .await;

    assert!(ended.is_ok(), "the connection stayed open");
    assert!(
        received < 16 * 1024 * 1024,
        "the whole answer was still sent ({received} bytes)"
    );
}
