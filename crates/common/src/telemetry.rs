//! Logs and traces.
//!
//! `tracing` writes human lines by default and JSON when asked. Every span also becomes an
//! OpenTelemetry span (no exporter is needed for that), so trace context can travel in W3C
//! `traceparent` headers: from an HTTP request into the outbox row it writes, from the outbox
//! row into the NATS message, and from the message into the listener span that handles it.
//! One purchase can then be followed across services by its trace id, and by its request id,
//! which travels the same way.

use std::collections::HashMap;

use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, fmt::MakeWriter, layer::SubscriberExt, registry::LookupSpan,
};

use crate::settings::LogFormat;

/// The header carrying the request id, in HTTP and in NATS messages.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The default filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

tokio::task_local! {
    /// The id of the request (or of the request that caused the event) being handled.
    pub static REQUEST_ID: String;
}

/// The request id of the work in progress, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Builds the subscriber: filter, formatted output to `writer`, and the OpenTelemetry layer.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    };
    Registry::default()
        .with(filter)
        .with(fmt)
        .with(otel_layer())
}

/// The OpenTelemetry layer: gives every span a trace and span id so context can be propagated.
pub fn otel_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let tracer = provider.tracer("ticketing");
    tracing_opentelemetry::layer().with_tracer(tracer)
}

/// Installs the process-wide subscriber, writing to stdout. `RUST_LOG` overrides the filter.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stdout));
}

/// The trace context of a span as W3C headers (`traceparent`), plus the current request id.
pub fn context_headers(span: &tracing::Span) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut headers);
    if let Some(request_id) = current_request_id() {
        headers.insert(REQUEST_ID_HEADER.to_owned(), request_id);
    }
    headers
}

/// Makes `span` a child of the trace named in `headers`, if they carry one. Only the W3C
/// fields are kept, so a request's other headers (cookies among them) are not copied.
pub fn set_parent_from<'a>(
    span: &tracing::Span,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let carrier: HashMap<String, String> = headers
        .into_iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case("traceparent") || k.eq_ignore_ascii_case("tracestate")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    let parent = TraceContextPropagator::new().extract(&carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Runs `work` inside `span`, as part of the trace and the request that `headers` name (as
/// [`context_headers`] wrote them): for work that was stored and picked up later. The
/// request id goes in the span's `request_id` field, which the caller declares empty.
pub async fn continuing<F: Future>(
    span: tracing::Span,
    headers: &HashMap<String, String>,
    work: F,
) -> F::Output {
    set_parent_from(
        &span,
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let request_id = headers.get(REQUEST_ID_HEADER);
    span.record("request_id", request_id.map_or("", String::as_str));
    let work = tracing::Instrument::instrument(work, span);
    match request_id {
        Some(id) => REQUEST_ID.scope(id.clone(), work).await,
        None => work.await,
    }
}

/// The trace id of a span, as 32 hex digits (all zeros without the OpenTelemetry layer).
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}
