//! The box that shows a secret (signing secret, API key) the one time the
//! server returns it.

use leptos::prelude::*;

use crate::components::copy_button::CopyButton;

/// Shows `value` with a copy button until dismissed.
#[component]
pub fn ShownOnce(
    /// Heading, e.g. "Signing secret".
    #[prop(into)]
    title: String,
    /// The secret.
    #[prop(into)]
    value: String,
    /// Called by "I have saved it".
    #[prop(into)]
    on_dismiss: Callback<()>,
) -> impl IntoView {
    view! {
        <div class="notice notice-secret" role="status" data-testid="shown-once">
            <div class="notice-body">
                <p class="notice-title">{title}</p>
                <p class="notice-context">
                    "Shown only this once: copy it now and keep it somewhere safe."
                </p>
                <div class="secret-row">
                    <code class="secret-value" data-testid="shown-once-value">{value.clone()}</code>
                    <CopyButton text=value label="Copy the secret" test_id="shown-once-copy"/>
                </div>
            </div>
            <button
                type="button"
                class="button button-secondary button-small"
                data-testid="shown-once-dismiss"
                on:click=move |_| on_dismiss.run(())
            >
                "I have saved it"
            </button>
        </div>
    }
}
