//! A modal "are you sure?" dialog for destructive actions.

use leptos::html;
use leptos::prelude::*;

/// Asks to confirm `title`. Escape, the backdrop and "Cancel" call
/// `on_cancel`; the danger button calls `on_confirm`. Render it only while
/// the question is open.
#[component]
pub fn ConfirmDialog(
    /// The question, e.g. "Delete workflow “billing”?".
    #[prop(into)]
    title: String,
    /// What happens, e.g. "Its webhooks stop accepting deliveries.".
    #[prop(into)]
    message: String,
    /// Label of the confirming button, e.g. "Delete".
    #[prop(into)]
    confirm_label: String,
    /// True while the action runs (buttons disabled).
    #[prop(into)]
    busy: Signal<bool>,
    /// Why the action failed, if it did.
    #[prop(into)]
    error: Signal<Option<String>>,
    /// The user confirmed.
    #[prop(into)]
    on_confirm: Callback<()>,
    /// The user backed out.
    #[prop(into)]
    on_cancel: Callback<()>,
) -> impl IntoView {
    let cancel_ref = NodeRef::<html::Button>::new();
    // Focus the safe choice, so Enter does not destroy anything by accident.
    Effect::new(move |_| {
        if let Some(button) = cancel_ref.get() {
            let _ = button.focus();
        }
    });
    let cancel = move || {
        if !busy.get_untracked() {
            on_cancel.run(());
        }
    };
    view! {
        <div
            class="dialog-backdrop"
            on:click=move |_| cancel()
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    cancel();
                }
            }
        >
            <div
                class="dialog card"
                role="alertdialog"
                aria-modal="true"
                aria-labelledby="dialog-title"
                aria-describedby="dialog-message"
                data-testid="confirm-dialog"
                on:click=|ev| ev.stop_propagation()
            >
                <h2 id="dialog-title" class="card-title">{title}</h2>
                <p id="dialog-message" class="dialog-message">{message}</p>
                {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
                <div class="dialog-actions">
                    <button
                        type="button"
                        class="button button-secondary"
                        node_ref=cancel_ref
                        data-testid="confirm-cancel"
                        disabled=move || busy.get()
                        on:click=move |_| cancel()
                    >
                        "Cancel"
                    </button>
                    <button
                        type="button"
                        class="button button-danger"
                        data-testid="confirm-ok"
                        disabled=move || busy.get()
                        on:click=move |_| on_confirm.run(())
                    >
                        {move || if busy.get() { "Working…".to_owned() } else { confirm_label.clone() }}
                    </button>
                </div>
            </div>
        </div>
    }
}
