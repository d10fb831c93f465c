//! The card that says whether the server can reach its database.

use leptos::prelude::*;

/// What the last readiness check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// No answer yet.
    Checking,
    /// `GET /readyz` succeeded.
    Ready,
    /// The check failed; the text says why.
    NotReady(String),
}

impl Readiness {
    /// Stable value for the card's `data-state` attribute (used by styles and
    /// tests).
    fn key(&self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Ready => "ready",
            Self::NotReady(_) => "error",
        }
    }

    fn headline(&self) -> &'static str {
        match self {
            Self::Checking => "Checking…",
            Self::Ready => "Database ready",
            Self::NotReady(_) => "Not ready",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Checking => "Asking the server whether its database is reachable.".to_owned(),
            Self::Ready => {
                "The server reaches its database and all migrations are applied.".to_owned()
            }
            Self::NotReady(reason) => reason.clone(),
        }
    }
}

/// Shows `state`; the "Check again" button calls `on_retry`.
#[component]
pub fn ReadinessCard(
    /// Result of the latest check.
    #[prop(into)]
    state: Signal<Readiness>,
    /// Called when the user asks for a new check.
    #[prop(into)]
    on_retry: Callback<()>,
) -> impl IntoView {
    view! {
        <section
            class="card status-card"
            data-testid="readiness"
            data-state=move || state.read().key()
            aria-live="polite"
        >
            <div class="card-header">
                <h2 class="card-title">"System status"</h2>
                <button
                    type="button"
                    class="button button-secondary"
                    data-testid="readiness-retry"
                    on:click=move |_| on_retry.run(())
                >
                    "Check again"
                </button>
            </div>
            <div class="status-line">
                <span class="status-dot" aria-hidden="true"></span>
                <div>
                    <p class="status-headline" data-testid="readiness-headline">
                        {move || state.read().headline()}
                    </p>
                    <p class="status-detail" data-testid="readiness-detail">
                        {move || state.read().detail()}
                    </p>
                </div>
            </div>
            <p class="card-footnote">
                "Checked with " <code>"GET /readyz"</code> "."
            </p>
        </section>
    }
}
