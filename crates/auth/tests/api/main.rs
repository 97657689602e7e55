//! Auth's HTTP API against the real PostgreSQL, one rule of `CONTRACT.md` (Users, Session,
//! Errors, Operations) per test. Each test spawns its own app over its own database.

mod helpers;
mod latency;
mod operations;
mod rate_limit;
mod session;
mod signin;
mod signout;
mod signup;
mod signup_race;
