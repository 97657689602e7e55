//! The HTTP plumbing every process serves around its components' routes.
//!
//! [`finish`] adds `/healthz`, `/readyz`, `/metrics`, `/api/openapi.json`, the contract's 404
//! body for unknown routes, and the [`observe`] middleware: a request id on every request
//! (taken from `x-request-id` or made up, echoed in the response), a span per request whose
//! parent is an incoming `traceparent`, and per-route request counts and latencies.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    Extension, Router,
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::future::BoxFuture;
use serde_json::json;
use tracing::Instrument;
use utoipa::openapi::OpenApi;
use uuid::Uuid;

use crate::{
    error::ApiError, metrics as m, server::RequestDeadline, session::SessionKeys, telemetry,
};

/// A named readiness check: resolves `Ok` when the dependency answers.
#[derive(Clone)]
pub struct ReadyCheck {
    pub name: String,
    pub check: Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>,
    /// Reported but not required: the component works without it (a read cache).
    pub optional: bool,
}

impl ReadyCheck {
    pub fn new<F, Fut>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        ReadyCheck {
            name: name.into(),
            check: Arc::new(move || Box::pin(check())),
            optional: false,
        }
    }

    /// Reports the dependency without making readiness depend on it.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Checks a PostgreSQL pool with `SELECT 1`.
    pub fn postgres(name: impl Into<String>, pool: sqlx::PgPool) -> Self {
        ReadyCheck::new(name, move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1").execute(&pool).await?;
                Ok(())
            }
        })
    }

    /// Checks that the NATS connection is up.
    pub fn nats(bus: crate::bus::Bus) -> Self {
        ReadyCheck::new("nats", move || {
            let connected = bus.is_connected();
            async move {
                anyhow::ensure!(connected, "not connected");
                Ok(())
            }
        })
    }
}

/// The `key=value` pairs of a query string, as sent (a pair without `=` has an empty value).
/// The parameters our routes read are mostly plain words, numbers and ids, so nothing is
/// percent-decoded here; a route reading free text decodes it with [`decode_query_value`].
/// Each route checks the values it reads and names the field it refuses.
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (&str, &str)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// A query value a person typed (a search), decoded as a form sends it: `+` is a space and
/// `%XX` a byte. `None` if the bytes are not UTF-8 or an escape is broken.
pub fn decode_query_value(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Wraps component routes with the operational endpoints and middleware.
pub fn finish(
    router: Router,
    mut openapi: OpenApi,
    checks: Vec<ReadyCheck>,
    keys: Arc<SessionKeys>,
) -> Router {
    openapi.info.title = "Ticketing".into();
    openapi.info.description = Some(
        "The public HTTP API of Ticketing; see CONTRACT.md. Operations that need a session take \
         the `session` cookie set by sign-up and sign-in (401 without one). Any other method on \
         a documented path answers 405 with `Allow`; any operation may answer 503 with \
         `Retry-After` while a dependency is down or saturated."
            .into(),
    );
    document_sessions_and_unavailability(&mut openapi);
    openapi.info.version = env!("CARGO_PKG_VERSION").into();
    openapi.info.contact = None;
    openapi.info.license = Some(utoipa::openapi::License::new("MIT"));
    // Written once: anyone may ask for it, as often as they like.
    let openapi = axum::body::Bytes::from(
        serde_json::to_vec(&openapi).expect("the OpenAPI document serialises"),
    );
    // Make sure the recorder is installed before the first request records anything.
    let _ = m::handle();
    router
        .route(
            "/api/openapi.json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    openapi,
                )
            }),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz).with_state(Arc::new(checks)))
        .route("/metrics", get(|| async { m::render() }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(observe))
        .layer(Extension(keys))
}

/// What every operation has in common, said once here rather than on each: the `session`
/// cookie as a security scheme, required by every operation that can answer 401 (and
/// accepted by the others), and the 503 any operation may answer.
fn document_sessions_and_unavailability(openapi: &mut OpenApi) {
    use utoipa::openapi::{
        Ref, ResponseBuilder,
        content::ContentBuilder,
        security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme},
    };
    let components = openapi.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::session::COOKIE_NAME,
            "The session: a signed JWT set by sign-up and sign-in (HttpOnly).",
        ))),
    );
    let unavailable = ResponseBuilder::new()
        .description("A dependency is down or saturated (nothing was changed), or the request took too long. Retry after `Retry-After` seconds.")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in openapi.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let responses = &mut operation.responses.responses;
            if operation.security.is_none() {
                let needs_session = responses.contains_key("401");
                operation.security = Some(if needs_session {
                    vec![SecurityRequirement::new("session", Vec::<String>::new())]
                } else {
                    vec![
                        SecurityRequirement::default(),
                        SecurityRequirement::new("session", Vec::<String>::new()),
                    ]
                });
            }
            responses
                .entry("503".into())
                .or_insert_with(|| unavailable.clone().into());
        }
    }
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({"status": "ok"}))
}

/// Readiness per dependency. The body says which dependency is down but never why: a
/// dependency's own error text (host names, user names, versions) is for the log, and
/// `/readyz` answers anyone who can reach the process.
async fn readyz(State(checks): State<Arc<Vec<ReadyCheck>>>) -> Response {
    let results = futures::future::join_all(checks.iter().map(|c| async move {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), (c.check)()).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => {
                tracing::warn!(check = %c.name, error = format!("{error:#}"), "readiness check failed");
                Some("not reachable")
            }
            Err(_) => {
                tracing::warn!(check = %c.name, "readiness check timed out");
                Some("timed out")
            }
        };
        (c.name.clone(), error)
    }))
    .await;
    let ready = results
        .iter()
        .zip(checks.iter())
        .all(|((_, error), check)| error.is_none() || check.optional);
    let body: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, error)| (name, error.map_or(json!("ok"), |e| json!({"error": e}))))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(json!({"ready": ready, "checks": body}))).into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Route not found".into())
}

/// Runs the request, within the [`RequestDeadline`] the server set on it (none in tests that
/// call the router directly). Past it: 408 while the request's own body had not fully
/// arrived (the client was too slow), 503 with `Retry-After` otherwise. The handler's future
/// is dropped; work it spawned (a charge, a cache load, an invalidation) goes on.
async fn within_deadline(request: Request, next: Next) -> Response {
    let Some(RequestDeadline(limit)) = request.extensions().get::<RequestDeadline>().copied()
    else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let arrived = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
    let body = Body::new(Arrival {
        inner: body,
        arrived: arrived.clone(),
    });
    match tokio::time::timeout(limit, next.run(Request::from_parts(parts, body))).await {
        Ok(response) => response,
        Err(_) if !arrived.load(Ordering::Acquire) => {
            tracing::info!(?limit, "the request's body did not arrive in time");
            ApiError::RequestTimeout.into_response()
        }
        Err(_) => {
            tracing::warn!(?limit, "request timed out");
            ApiError::Unavailable("The request took too long; please try again".into())
                .into_response()
        }
    }
}

/// A request body that says when it has been read to its end.
struct Arrival {
    inner: Body,
    arrived: Arc<AtomicBool>,
}

impl http_body::Body for Arrival {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || this.inner.is_end_stream() {
            this.arrived.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Request id, span and metrics for every request.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(telemetry::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // A label from a closed set: a made-up method is `other`, not a series of its own.
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let span = tracing::info_span!(
        "http_request",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
        status = tracing::field::Empty,
    );
    telemetry::set_parent_from(
        &span,
        request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request
            .headers_mut()
            .insert(telemetry::REQUEST_ID_HEADER, value);
    }
    let answered = within_deadline(request, next);
    let mut response = telemetry::REQUEST_ID
        .scope(request_id.clone(), answered)
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.record("status", status.as_u16());
    let elapsed = started.elapsed();
    let _entered = span.enter();
    if status.is_server_error() {
        tracing::error!(
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request failed"
        );
    } else {
        tracing::debug!(
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    }
    metrics::counter!(m::HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    metrics::histogram!(m::HTTP_DURATION, "method" => method, "route" => route).record(elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response
            .headers_mut()
            .insert(telemetry::REQUEST_ID_HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_query_values_are_decoded_as_forms_send_them() {
        assert_eq!(
            decode_query_value("jazz+night").as_deref(),
            Some("jazz night")
        );
        assert_eq!(
            decode_query_value("jazz%20night").as_deref(),
            Some("jazz night")
        );
        assert_eq!(decode_query_value("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(decode_query_value("café").as_deref(), Some("café"));
        assert_eq!(decode_query_value("100%25").as_deref(), Some("100%"));
        for broken in ["%", "%4", "%zz", "%FF", "a%C3"] {
            assert_eq!(decode_query_value(broken), None, "{broken}");
        }
    }
}
