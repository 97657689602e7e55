//! Tickets' HTTP API and order listeners against the real PostgreSQL, Redis and NATS, one rule
//! of `CONTRACT.md` (Tickets, Errors, Events) per test. Each test spawns its own app over its
//! own database, stream and Redis keys.

mod create;
mod freshness;
mod helpers;
mod hostile;
mod list;
mod listeners;
mod show;
mod status;
mod update;
mod versions;
mod withdraw;
