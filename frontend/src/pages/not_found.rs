//! Fallback for paths no route matches.

use leptos::prelude::*;
use leptos_router::components::A;

/// The "page not found" page.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Page not found"</h1>
            <p class="page-lead">"There is nothing at this address."</p>
        </div>
        <A href="/" attr:class="button">"Back to the overview"</A>
    }
}
