//! Orders' HTTP API, listeners and sweep against the real PostgreSQL and NATS, one rule of
//! `CONTRACT.md` (Orders, Errors, Events) per test. Each test spawns its own app over its own
//! database and stream.

mod cancel;
mod create;
mod expiration;
mod helpers;
mod hold_cap;
mod operations;
mod payments;
mod race;
mod replica;
mod show;
mod sweep;
mod withdrawal;
