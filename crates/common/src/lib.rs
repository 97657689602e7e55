//! The runtime every Ticketing service shares.
//!
//! - [`settings`]: typed settings from flags with environment fallbacks; [`secret`] keeps
//!   secrets out of logs.
//! - [`telemetry`]: `tracing` set-up, request ids, trace context for HTTP and NATS headers.
//! - [`error`], [`json`], [`ids`] and [`text`]: the contract's error body, the JSON and
//!   id readers (path and body) that use it, and the rule for free text.
//! - [`session`]: the JWT session cookie and the `CurrentUser` / `RequireAuth` extractors.
//! - [`cache`]: the read cache (process memory → Redis → database) with invalidation.
//! - [`db`]: one PostgreSQL database per service, created on demand; [`redis`]: connections.
//! - [`applied`]: what a flow says after applying an event (no NATS in it), and the version
//!   rule.
//! - [`bus`]: JetStream stream and consumers, the transactional outbox and its relay, the
//!   listener runner, the one publish path.
//! - [`http`], [`metrics`], [`ratelimit`], [`forwarded`]: the HTTP plumbing every process
//!   serves (health, readiness, Prometheus metrics, OpenAPI, 404 body, per-route metrics),
//!   attempt limits, and who the client is behind trusted proxies.
//! - [`component`]: what a service hands to the binary (router, tasks, readiness checks) and
//!   how the binary runs it until shutdown; [`server`]: the HTTP server loop and its limits.
//!
//! Services depend on this crate; this crate knows no service.

pub mod admin;
pub mod applied;
pub mod bus;
pub mod cache;
pub mod component;
pub mod db;
pub mod error;
pub mod forwarded;
pub mod http;
pub mod ids;
pub mod json;
pub mod metrics;
pub mod ratelimit;
pub mod redis;
pub mod secret;
pub mod server;
pub mod session;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;

pub use component::Component;
pub use error::ApiError;
pub use ids::PathId;
pub use json::Json;
pub use secret::Secret;
pub use session::{CurrentUser, RequireAuth, SessionUser};
pub use tokio_util::sync::CancellationToken;
