//! Pages whose screens are not built yet: a title and what will live there.

use leptos::prelude::*;

/// A titled page saying what it will contain.
#[component]
pub fn Placeholder(
    /// Page title.
    title: &'static str,
    /// One sentence about what the page is for.
    summary: &'static str,
) -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">{title}</h1>
            <p class="page-lead">{summary}</p>
        </div>
        <section class="card empty-state" data-testid="placeholder">
            <p>"This screen is on its way."</p>
        </section>
    }
}
