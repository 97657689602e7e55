//! Logs and traces.
//!
//! `tracing` writes human lines by default and JSON when asked. Every span also becomes an
//! OpenTelemetry span (no exporter is needed for that), so trace context can travel in W3C
//! `traceparent` headers: from an HTTP request into the outbox row it writes, from the outbox
//! row into the NATS message, and from the message into the listener span that handles it.
//! One purchase can then be followed across services by its trace id, and by its request id,
//! which travels the same way. JSON log lines carry both, and the current span's id, as
//! top-level fields.
//!
//! With an [`Export`] (`OTEL_EXPORTER_OTLP_ENDPOINT`), [`init`] also sends the spans in
//! batches over OTLP/HTTP from a task on the tokio runtime; [`Telemetry::shutdown`] sends the
//! last batch when the process stops. Without one, nothing is exported and nothing more runs.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Duration,
};

use anyhow::Context as _;
use opentelemetry::{
    propagation::TextMapPropagator,
    trace::{SpanId, TraceContextExt, TraceId, TracerProvider as _},
};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    propagation::TraceContextPropagator,
    runtime,
    trace::{
        SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
        span_processor_with_async_runtime::BatchSpanProcessor,
    },
};
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
};

use crate::settings::LogFormat;

/// The header carrying the request id, in HTTP and in NATS messages.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The default filter when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

/// Which spans are exported when exporting, whatever `RUST_LOG` lets into the log: an
/// operator who quiets the log still gets whole traces.
pub const EXPORT_FILTER: &str = "info,sqlx=warn,async_nats=warn";

/// The name of our OpenTelemetry tracer (the instrumentation scope of every span).
const TRACER: &str = "ticketing";

/// How long the last batch of spans may take to leave when the process stops.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

tokio::task_local! {
    /// The id of the request (or of the request that caused the event) being handled.
    pub static REQUEST_ID: String;
}

/// The request id of the work in progress, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Where spans are exported: an OTLP/HTTP collector, and the name this process gives itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// The collector's base URL, without a trailing slash; spans go to `<endpoint>/v1/traces`.
    pub endpoint: String,
    /// The resource's `service.name`.
    pub service_name: String,
}

/// The default `service.name`: `ticketing-<component>` for a process serving one component,
/// `ticketing` for `up` (every component) and the operators' commands.
pub fn service_name(component: Option<&str>) -> String {
    match component {
        Some(component) => format!("{TRACER}-{component}"),
        None => TRACER.to_owned(),
    }
}

/// What [`init`] set up. Call [`Telemetry::shutdown`] when the process stops, so the spans
/// still waiting for their batch are sent.
#[derive(Debug)]
#[must_use = "shut it down when the process stops, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// The exporter `export` asks for, or nothing at all (no exporter, no task) without one.
    /// Exporting needs the tokio runtime: its batch task is spawned here.
    pub fn start(export: Option<&Export>) -> anyhow::Result<Telemetry> {
        Ok(Telemetry {
            provider: export.map(exporting_provider).transpose()?,
        })
    }

    /// Whether spans are exported (an exporter and its batch task exist).
    pub fn is_exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends the spans still waiting and stops the exporter, giving up after a few seconds
    /// if the collector does not answer. Call it with the runtime still running (its batch
    /// task does the sending), from outside it: after `block_on` returns, not in a task.
    pub fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let (done, outcome) = mpsc::channel();
        // The processor's shutdown blocks its caller until the batch task has answered; a
        // thread of its own lets us stop waiting.
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = done.send(provider.shutdown());
            });
        if spawned.is_err() {
            tracing::warn!("cannot start the thread that sends the last spans; they are lost");
            return;
        }
        match outcome.recv_timeout(SHUTDOWN_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "the last spans could not be exported"),
            Err(_) => tracing::warn!(
                timeout_s = SHUTDOWN_TIMEOUT.as_secs(),
                "the OpenTelemetry collector did not take the last spans in time; they are lost"
            ),
        }
    }
}

/// Builds the subscriber of a process that exports nothing: `filter` decides which spans and
/// events exist, formatted output goes to `writer`, and the OpenTelemetry layer gives every
/// span a trace and span id so context can be propagated.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    Registry::default()
        .with(filter)
        .with(fmt_layer(format, writer))
        .with(otel_layer())
}

/// Builds the subscriber of a process that exports: `filter` decides what is logged to
/// `writer`, [`EXPORT_FILTER`] which spans (and their events) go to `provider`.
pub fn exporting_subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    provider: &SdkTracerProvider,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let spans = spans_layer(provider).with_filter(EnvFilter::new(EXPORT_FILTER));
    Registry::default()
        .with(fmt_layer(format, writer).with_filter(filter))
        .with(spans)
}

/// The formatted output: human lines, or one JSON object per line carrying the trace id,
/// span id and request id of the work in progress as top-level fields.
fn fmt_layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Human => tracing_subscriber::fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(WithTraceIds)
            .with_writer(writer)
            .boxed(),
    }
}

/// The OpenTelemetry layer of a process that exports nothing: gives every span a trace and
/// span id so context can be propagated.
pub fn otel_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    spans_layer(&SdkTracerProvider::builder().build())
}

/// The OpenTelemetry layer making spans for `provider`, without the attributes nobody reads
/// here (thread, source location, busy and idle times): each costs on every span or every
/// poll, together about a tenth of a cached read's throughput when exporting (wrk against
/// `GET /api/tickets/:id`, 54k against 48k requests/s).
fn spans_layer<S>(provider: &SdkTracerProvider) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(TRACER))
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false)
}

/// The exporter's provider: batches of spans sent by a task on the current tokio runtime.
fn exporting_provider(export: &Export) -> anyhow::Result<SdkTracerProvider> {
    tokio::runtime::Handle::try_current()
        .context("spans are exported by a task: start telemetry inside the tokio runtime")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!(
            "{}/v1/traces",
            export.endpoint.trim_end_matches('/')
        ))
        .build()
        .with_context(|| {
            format!(
                "cannot set up the span exporter to {} (OTEL_EXPORTER_OTLP_ENDPOINT)",
                export.endpoint
            )
        })?;
    let exporter = Reported {
        inner: exporter,
        endpoint: export.endpoint.clone(),
        failing: AtomicBool::new(false),
    };
    // The SDK's default batch processor is a thread blocking on each export, which the async
    // HTTP client cannot serve; this one is a task, and a span's end only queues it
    // (dropped, counted, when the queue is full: never a wait on the request path).
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio).build();
    let resource = Resource::builder()
        .with_service_name(export.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build())
}

/// A span exporter that says in the log when the collector stops taking spans and when it
/// takes them again (the SDK itself stays silent: its own logs are off). Batches that fail
/// are dropped; requests never wait for the collector.
#[derive(Debug)]
struct Reported<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E: SpanExporter> SpanExporter for Reported<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => tracing::warn!(
                endpoint = %self.endpoint,
                %error,
                spans,
                "the OpenTelemetry collector does not take spans: they are dropped until it does"
            ),
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(endpoint = %self.endpoint, "the OpenTelemetry collector takes spans again")
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Installs the process-wide subscriber, writing to stdout (`RUST_LOG` overrides the log
/// filter), and the span exporter if `export` names one. Exporting needs the tokio runtime:
/// call it inside (`Runtime::enter`).
pub fn init(format: LogFormat, export: Option<&Export>) -> anyhow::Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let telemetry = Telemetry::start(export)?;
    let _ = match &telemetry.provider {
        None => {
            tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stdout))
        }
        Some(provider) => tracing::subscriber::set_global_default(exporting_subscriber(
            format,
            filter,
            std::io::stdout,
            provider,
        )),
    };
    Ok(telemetry)
}

/// The trace and span id of the span entered on this thread, if it has a valid context.
/// The OpenTelemetry layer makes a span's context current when the span is entered.
fn current_ids() -> Option<(TraceId, SpanId)> {
    opentelemetry::Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        context
            .is_valid()
            .then(|| (context.trace_id(), context.span_id()))
    })
}

/// A JSON event format that adds `trace_id`, `span_id` and `request_id` to each line of the
/// format it wraps (which writes one object per line).
struct WithTraceIds<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(512);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let ids = current_ids();
        let request_id = current_request_id();
        let object = line.trim_end_matches('\n').strip_suffix('}');
        let (Some(object), true) = (object, ids.is_some() || request_id.is_some()) else {
            return writer.write_str(&line);
        };
        writer.write_str(object)?;
        if let Some((trace_id, span_id)) = ids {
            write!(writer, r#","trace_id":"{trace_id}","span_id":"{span_id}""#)?;
        }
        if let Some(request_id) = request_id {
            let quoted = serde_json::to_string(&request_id).map_err(|_| fmt::Error)?;
            write!(writer, r#","request_id":{quoted}"#)?;
        }
        writer.write_str("}\n")
    }
}

/// The trace context of a span as W3C headers (`traceparent`), plus the current request id.
pub fn context_headers(span: &tracing::Span) -> HashMap<String, String> {
    let mut headers = HashMap::new();
    let mut context = span.context();
    // A span the export filter leaves out (a DEBUG span when `RUST_LOG` shows them) has no
    // OpenTelemetry context: the innermost entered span that has one stands in for it, so
    // the trace is not cut there.
    if !context.span().span_context().is_valid() {
        context = opentelemetry::Context::current();
    }
    TraceContextPropagator::new().inject_context(&context, &mut headers);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// Log output kept in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
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
        /// Every line, parsed as JSON (panics on one that is not).
        fn lines(&self) -> Vec<Value> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
                .collect()
        }

        fn line(&self, message: &str) -> Value {
            self.lines()
                .into_iter()
                .find(|line| line["message"] == message)
                .unwrap_or_else(|| panic!("no line {message:?}"))
        }
    }

    fn span_id(span: &tracing::Span) -> String {
        span.context().span().span_context().span_id().to_string()
    }

    #[test]
    fn without_an_endpoint_no_exporter_exists_and_nothing_is_started() {
        // Outside any runtime: nothing is spawned, so nothing needs one.
        let telemetry = Telemetry::start(None).unwrap();
        assert!(!telemetry.is_exporting());
        telemetry.shutdown();
        // An exporter would need the runtime for its batch task.
        let export = Export {
            endpoint: "http://127.0.0.1:9".into(),
            service_name: "ticketing".into(),
        };
        assert!(Telemetry::start(Some(&export)).is_err());
    }

    #[test]
    fn components_name_themselves_after_their_component() {
        assert_eq!(service_name(Some("orders")), "ticketing-orders");
        assert_eq!(service_name(None), "ticketing");
    }

    #[tokio::test]
    async fn json_lines_carry_the_trace_span_and_request_ids_as_top_level_fields() {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(
            LogFormat::Json,
            EnvFilter::new("info"),
            captured.clone(),
        ));
        tracing::info!("outside");
        let outer = tracing::info_span!("request");
        let inner = tracing::info_span!(parent: &outer, "flow");
        let work = async {
            tracing::info!("inside");
        };
        REQUEST_ID
            .scope(
                "req-ids-1".to_owned(),
                tracing::Instrument::instrument(work, inner.clone()),
            )
            .await;

        let inside = captured.line("inside");
        assert_eq!(inside["trace_id"], trace_id(&outer).as_str(), "{inside}");
        assert_eq!(inside["span_id"], span_id(&inner).as_str(), "{inside}");
        assert_ne!(span_id(&inner), span_id(&outer));
        assert_eq!(inside["request_id"], "req-ids-1", "{inside}");
        assert_eq!(inside["span"]["name"], "flow", "the usual fields stay");
        let outside = captured.line("outside");
        for field in ["trace_id", "span_id", "request_id"] {
            assert!(outside.get(field).is_none(), "{outside}");
        }
    }

    /// An exporter whose collector answers as told.
    #[derive(Debug, Default)]
    struct Collector {
        down: AtomicBool,
    }

    impl SpanExporter for Collector {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            if self.down.load(Ordering::Relaxed) {
                Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                    "connection refused".into(),
                ))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_collector_that_stops_taking_spans_is_logged_once_when_it_stops_and_once_when_it_is_back()
     {
        let captured = Captured::default();
        let _guard = tracing::subscriber::set_default(subscriber(
            LogFormat::Json,
            EnvFilter::new("info"),
            captured.clone(),
        ));
        let exporter = Reported {
            inner: Collector::default(),
            endpoint: "http://collector:4318".into(),
            failing: AtomicBool::new(false),
        };
        let messages = || -> Vec<String> {
            captured
                .lines()
                .iter()
                .map(|line| line["message"].as_str().unwrap().to_owned())
                .collect()
        };
        exporter.export(vec![]).await.unwrap();
        assert!(messages().is_empty());
        exporter.inner.down.store(true, Ordering::Relaxed);
        for _ in 0..3 {
            assert!(exporter.export(vec![]).await.is_err());
        }
        exporter.inner.down.store(false, Ordering::Relaxed);
        for _ in 0..2 {
            exporter.export(vec![]).await.unwrap();
        }
        assert_eq!(
            messages(),
            [
                "the OpenTelemetry collector does not take spans: they are dropped until it does",
                "the OpenTelemetry collector takes spans again"
            ]
        );
        assert_eq!(
            captured.line("the OpenTelemetry collector takes spans again")["endpoint"],
            "http://collector:4318"
        );
    }

    #[tokio::test]
    async fn an_exporting_process_traces_spans_the_log_filter_leaves_out_and_never_cuts_a_trace() {
        use tracing::Instrument;
        let provider = SdkTracerProvider::builder().build();
        let captured = Captured::default();
        // With RUST_LOG=warn the INFO spans are still traced (and exported), and a warning
        // inside one carries its trace id; with RUST_LOG=debug a DEBUG span (logged, not
        // exported) does not cut the trace that leaves from inside it.
        for log_filter in ["warn", "debug"] {
            let _guard = tracing::subscriber::set_default(exporting_subscriber(
                LogFormat::Json,
                EnvFilter::new(log_filter),
                captured.clone(),
                &provider,
            ));
            let request = tracing::info_span!("request");
            let detail = tracing::debug_span!(parent: &request, "detail");
            let headers = async {
                tracing::warn!(filter = log_filter, "warned");
                context_headers(&tracing::Span::current())
            }
            .instrument(detail)
            .instrument(request.clone())
            .await;
            let trace = trace_id(&request);
            assert_ne!(trace, TraceId::INVALID.to_string());
            let traceparent = headers.get("traceparent").expect("a traceparent");
            assert!(
                traceparent.contains(&trace),
                "{traceparent} is not in {trace}"
            );
            let warned = captured
                .lines()
                .into_iter()
                .find(|line| line["filter"] == log_filter)
                .unwrap();
            assert_eq!(warned["trace_id"], trace.as_str(), "{warned}");
        }
    }
}
