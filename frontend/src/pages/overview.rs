//! `/`: the landing page, for now the server's readiness.

use std::time::Duration;

use leptos::prelude::*;

use crate::api;
use crate::components::readiness_card::{Readiness, ReadinessCard};
use crate::load::Fetch;

/// How often to check again while the server is not ready.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// The overview page.
#[component]
pub fn Overview() -> impl IntoView {
    let check = Fetch::new(api::readiness);
    let state = Signal::derive(move || match check.get() {
        None => Readiness::Checking,
        Some(Ok(())) => Readiness::Ready,
        Some(Err(error)) => Readiness::NotReady(error.to_string()),
    });

    // While the server is starting (or its database is down), keep checking
    // so the card turns green on its own.
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if matches!(check.try_get_untracked(), Some(Some(Err(_)))) {
                check.refetch();
            }
        },
        RETRY_EVERY,
    ) {
        on_cleanup(move || handle.clear());
    }

    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Overview"</h1>
            <p class="page-lead">"Webhook-first workflows: receive, transform, call out, branch, retry."</p>
        </div>
        <div class="grid">
            <ReadinessCard state=state on_retry=move |()| check.refetch()/>
            <section class="card">
                <h2 class="card-title">"Get started"</h2>
                <ol class="steps">
                    <li>"Create a workflow and add its nodes."</li>
                    <li>"Attach a webhook and copy its URL."</li>
                    <li>"Send an event and follow the run live."</li>
                </ol>
            </section>
        </div>
    }
}
