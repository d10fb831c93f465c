//! A "Copy" button that puts a text on the clipboard.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::clipboard;

/// Copies `text`; says "Copied" (or "Copy failed") for a moment.
#[component]
pub fn CopyButton(
    /// What to copy.
    #[prop(into)]
    text: String,
    /// Accessible name, e.g. "Copy the webhook URL".
    #[prop(optional, into)]
    label: Option<String>,
    /// `data-testid`.
    #[prop(optional)]
    test_id: Option<&'static str>,
) -> impl IntoView {
    let state = RwSignal::new(None::<bool>);
    let text = StoredValue::new(text);
    let click = move |_| {
        let text = text.get_value();
        spawn_local(async move {
            let ok = clipboard::copy(&text).await;
            state.set(Some(ok));
            set_timeout(
                move || state.set(None),
                std::time::Duration::from_millis(1500),
            );
        });
    };
    view! {
        <button
            type="button"
            class="button button-secondary button-small"
            aria-label=label.unwrap_or_else(|| "Copy".to_owned())
            data-testid=test_id.unwrap_or("copy")
            on:click=click
        >
            {move || match state.get() {
                None => "Copy",
                Some(true) => "Copied",
                Some(false) => "Copy failed",
            }}
        </button>
    }
}
