//! MeshHook's single-page app. This file only mounts [`app::App`]; see
//! `app.rs` for the layout and routes, `api.rs` for the only code that talks
//! HTTP, `session.rs` and `project.rs` for the app-wide state (who is signed
//! in, which project is open), `pages/` for one file per route and
//! `components/` for presentational pieces that take props and never fetch.
//!
//! The crate targets `wasm32-unknown-unknown`; on the host it compiles (so
//! workspace-wide clippy covers it, and the pure helpers' unit tests run)
//! but is not meant to run.

mod api;
mod app;
mod clipboard;
mod components;
mod editor;
mod format;
mod load;
mod pages;
mod project;
mod router;
mod session;
mod sort;
mod theme;
mod timeline;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
