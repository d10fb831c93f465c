//! Loading, error and empty states, the same on every page.

use leptos::prelude::*;

use crate::api;

/// A spinner with a short text.
#[component]
pub fn Loading(
    /// What is loading.
    #[prop(optional, into)]
    label: Option<String>,
) -> impl IntoView {
    view! {
        <div class="loading" role="status" data-testid="loading">
            <span class="spinner" aria-hidden="true"></span>
            <span>{label.unwrap_or_else(|| "Loading…".to_owned())}</span>
        </div>
    }
}

/// An API error: its `detail` first, then the status and code, and a retry
/// button when `on_retry` is given.
#[component]
pub fn ErrorNotice(
    /// What went wrong.
    error: api::Error,
    /// Called by the "Try again" button (no button without it).
    #[prop(optional, into)]
    on_retry: Option<Callback<()>>,
) -> impl IntoView {
    let context = error.context();
    view! {
        <div class="notice notice-error" role="alert" data-testid="error">
            <div class="notice-body">
                <p class="notice-detail" data-testid="error-detail">{error.detail()}</p>
                {context.map(|c| view! { <p class="notice-context">{c}</p> })}
            </div>
            {on_retry
                .map(|retry| {
                    view! {
                        <button
                            type="button"
                            class="button button-secondary button-small"
                            on:click=move |_| retry.run(())
                        >
                            "Try again"
                        </button>
                    }
                })}
        </div>
    }
}

/// A dashed box saying there is nothing here yet, with what to do about it.
#[component]
pub fn EmptyState(
    /// One line: what is missing.
    #[prop(into)]
    title: String,
    /// Explanation or actions.
    #[prop(optional)]
    children: Option<Children>,
    /// `data-testid` of the box.
    #[prop(optional)]
    test_id: Option<&'static str>,
) -> impl IntoView {
    view! {
        <div class="card empty-state" data-testid=test_id.unwrap_or("empty")>
            <p class="empty-title">{title}</p>
            {children.map(|children| children())}
        </div>
    }
}
