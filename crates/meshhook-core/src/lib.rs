//! MeshHook's domain model: workflow definitions and their validation,
//! node-type JSON Schemas, `{{ }}` templates over JMESPath, run events, and the
//! pure `fold`/`decide` state machine that drives every run.
//!
//! This crate performs no I/O and must not depend on tokio, sqlx, axum or
//! reqwest: it builds for `wasm32-unknown-unknown` so the SPA reuses it.
//!
//! Map:
//! - [`definition`]: the workflow JSON as Rust types; [`validate`] checks
//!   untrusted JSON and reports every issue with a JSON pointer;
//!   [`node_types`] holds each node type's config JSON Schema.
//! - [`expr`] (JMESPath) and [`template`] (`{{ expr }}` in strings, symbolic
//!   secrets).
//! - [`event`] (the run log), [`state`] (`fold`: log -> state) and
//!   [`decide`](mod@decide) (state + now -> events + commands); [`replay`] checks a log
//!   against `decide` and builds resumed runs.
//! - [`backoff`] and [`breaker`]: pure retry timing and circuit breaking for
//!   the HTTP executor.
//! - [`redact`]: a project's PII redaction rules, applied to what the API
//!   shows (never to what the engine reads).

pub mod backoff;
pub mod breaker;
pub mod decide;
pub mod definition;
pub mod event;
pub mod expr;
pub mod node_types;
pub mod redact;
pub mod replay;
pub mod state;
pub mod template;
pub mod validate;

#[cfg(test)]
mod fixtures;

pub use decide::{Command, Decision, decide};
pub use definition::Definition;
pub use event::{Event, Recorded};
pub use state::{RunState, fold};
