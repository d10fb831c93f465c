//! Presentational components: they take props and signals and never fetch.

pub mod auth_form;
pub mod chart;
pub mod confirm_dialog;
pub mod copy_button;
pub mod project_switcher;
pub mod readiness_card;
pub mod shown_once;
pub mod status;
pub mod theme_toggle;
