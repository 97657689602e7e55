//! Prometheus metrics: one process-wide recorder, rendered at `GET /metrics`.
//!
//! Metric names used across services are kept here so dashboards have one place to look.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const OUTBOX_BACKLOG: &str = "outbox_backlog";
pub const EVENTS_PUBLISHED: &str = "events_published_total";
pub const EVENTS_CONSUMED: &str = "events_consumed_total";
pub const EVENTS_REDELIVERED: &str = "events_redelivered_total";
pub const EVENTS_POISONED: &str = "events_poisoned_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder on first call and returns the handle that renders it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )
            .expect("bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours then renders empty,
        // which is better than refusing to start.
        let _ = metrics::set_global_recorder(recorder);
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("spawn metrics upkeep thread");
        handle
    })
}

/// The current metrics in Prometheus' text format.
pub fn render() -> String {
    handle().render()
}
