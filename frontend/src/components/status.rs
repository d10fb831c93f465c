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

/// [`Loading`] as markup, for the parts of pages drawn as HTML strings.
pub fn loading_html(label: &str) -> String {
    format!(
        r#"<div class="loading" role="status" data-testid="loading"><span class="spinner" aria-hidden="true"></span><span>{}</span></div>"#,
        crate::format::html(label)
    )
}

/// [`ErrorNotice`] as markup; its "Try again" button (with `retry`) has
/// `data-action="retry"` for the page's delegated click handler.
pub fn error_html(error: &api::Error, retry: bool) -> String {
    let context = error.context().map_or_else(String::new, |c| {
        format!(
            r#"<p class="notice-context">{}</p>"#,
            crate::format::html(&c)
        )
    });
    let button = if retry {
        r#"<button type="button" class="button button-secondary button-small" data-action="retry">Try again</button>"#
    } else {
        ""
    };
    format!(
        r#"<div class="notice notice-error" role="alert" data-testid="error"><div class="notice-body"><p class="notice-detail" data-testid="error-detail">{}</p>{context}</div>{button}</div>"#,
        crate::format::html(&error.detail())
    )
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
