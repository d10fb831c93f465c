//! One module per route.

pub mod alerts;
pub mod auth_layout;
pub mod dead_letter;
pub mod insights;
pub mod not_found;
pub mod overview;
pub mod runs;
pub mod secrets;
pub mod settings;
pub mod sign_in;
pub mod sign_up;
pub mod webhooks;
pub mod workflow;
pub mod workflows;
