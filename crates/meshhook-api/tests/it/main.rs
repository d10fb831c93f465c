//! meshhook-api integration tests: the API served on 127.0.0.1:0 against a
//! fresh migrated PostgreSQL database per test, driven over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod auth;
mod errors;
mod helpers;
mod input;
mod isolation;
mod live;
mod metrics;
mod openapi;
mod redaction;
mod retention;
mod runs;
mod secrets;
mod webhooks;
mod workflows;
