//! Fallback for paths no route matches.

use leptos::prelude::*;

/// The "page not found" page.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Page not found"</h1>
            <p class="page-lead">"There is nothing at this address."</p>
        </div>
        <a href="/" class="button">"Back to the overview"</a>
    }
}
