//! Presentational components: they take props and signals and never fetch.

pub mod readiness_card;
pub mod theme_toggle;
