//! meshhook-db integration tests: real PostgreSQL, a fresh database per test.

mod embedded;
mod migrations;
mod partitions;
mod queue;
