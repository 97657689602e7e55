//! The web UI: server-rendered pages (askama templates, checked at compile time) that call
//! the public HTTP API with the visitor's cookie, like any other client of the API.
//!
//! The component owns no data and runs no tasks. [`pages`] holds one module per resource;
//! [`api`] is the only place that speaks HTTP to the API; [`csrf`] guards every form post;
//! [`headers`] adds the security headers; [`assets`] serves the style sheet and scripts, so
//! the binary needs no CDN.

pub mod api;
pub mod assets;
pub mod csrf;
pub mod headers;
pub mod pages;

use std::sync::Arc;

use axum::{Extension, Router, middleware};
use ticketing_common::Component;

pub use crate::api::Forwarding;
use utoipa_axum::router::OpenApiRouter;

/// The component's name.
pub const NAME: &str = "web";

/// Settings of the web component.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Base URL of the public HTTP API the pages call, without a trailing slash, e.g.
    /// `http://127.0.0.1:8080` in `up` (the process's own address) or the ingress in
    /// Kubernetes.
    pub api_base: String,
    /// Stripe's publishable key, set when payments use Stripe; the pages then load Stripe.js
    /// and its card element instead of offering the test cards.
    pub stripe_publishable_key: Option<String>,
    /// Who the visitors are behind trusted proxies, and how the pages vouch for them.
    pub forwarding: Forwarding,
}

/// The web pages at `/`: every path but `/api/...` (an unknown `/api/` path still answers
/// the API's JSON 404, see [`pages::layout`]).
pub fn component(settings: WebSettings) -> Component {
    let api = Arc::new(api::Api::new(&settings.api_base));
    let policy = headers::content_security_policy(settings.stripe_publishable_key.is_some());
    let router: Router = pages::router()
        .merge(assets::router())
        .layer(middleware::from_fn(csrf::check_origin))
        // Outside the CSRF guard, so its refusal is a page in the layout too.
        .layer(middleware::from_fn(pages::layout::layout))
        .layer(middleware::from_fn(move |request, next| {
            headers::secure(policy.clone(), request, next)
        }))
        .layer(Extension(settings.forwarding))
        .layer(Extension(pages::CardForm {
            stripe_publishable_key: settings.stripe_publishable_key,
        }))
        .with_state(api);
    Component {
        name: NAME,
        router: OpenApiRouter::from(router),
        tasks: Vec::new(),
        checks: Vec::new(),
        events: None,
    }
}
