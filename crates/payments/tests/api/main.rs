//! Payments against the real PostgreSQL and NATS, one rule of `CONTRACT.md` (Payments,
//! Errors, Events) per test, with the development provider; the Stripe client and the app
//! charging through Stripe against a local mock of Stripe's API (wiremock). Each test spawns
//! its own app over its own database and stream.

mod edges;
mod helpers;
mod localstripe;
mod operations;
mod pay;
mod race;
mod recovery;
mod refunds;
mod replica;
mod stripe_api;
mod stripe_client;
mod webhook;
