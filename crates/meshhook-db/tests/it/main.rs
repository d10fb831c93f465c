//! meshhook-db integration tests: real PostgreSQL, a fresh database per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod embedded;
mod ingest;
mod migrations;
mod partitions;
mod queue;
mod retention;
