//! MeshHook's single-page app. This file only mounts [`app::App`]; see
//! `app.rs` for the layout and routes, `api.rs` for the only code that talks
//! HTTP, `pages/` for one file per route and `components/` for presentational
//! pieces that take props and never fetch.
//!
//! The crate targets `wasm32-unknown-unknown`; on the host it compiles (so
//! workspace-wide clippy covers it) but is not meant to run.

mod api;
mod app;
mod components;
mod pages;
mod theme;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
