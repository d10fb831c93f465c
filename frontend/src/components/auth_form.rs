//! The email + password form of the sign-in and sign-up pages.

use leptos::prelude::*;

use crate::api;

/// What the form is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Existing account.
    SignIn,
    /// New account.
    SignUp,
}

/// Email and password fields and a submit button; `on_submit` gets
/// `(email, password)`.
#[component]
pub fn AuthForm(
    /// Sign in or sign up.
    purpose: Purpose,
    /// Called with the trimmed email and the password.
    #[prop(into)]
    on_submit: Callback<(String, String)>,
    /// True while the server is asked.
    #[prop(into)]
    busy: Signal<bool>,
    /// The server's refusal, if any.
    #[prop(into)]
    error: Signal<Option<api::Error>>,
) -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let (button, busy_text, autocomplete) = match purpose {
        Purpose::SignIn => ("Sign in", "Signing in…", "current-password"),
        Purpose::SignUp => ("Create account", "Creating account…", "new-password"),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !busy.get_untracked() {
            on_submit.run((
                email.get_untracked().trim().to_owned(),
                password.get_untracked(),
            ));
        }
    };
    view! {
        <form class="form" on:submit=submit data-testid="auth-form">
            <div class="field">
                <label for="auth-email">"Email"</label>
                <input
                    id="auth-email"
                    class="input"
                    type="email"
                    autocomplete="email"
                    required
                    data-testid="auth-email"
                    prop:value=move || email.get()
                    on:input=move |ev| email.set(event_target_value(&ev))
                />
            </div>
            <div class="field">
                <label for="auth-password">"Password"</label>
                <input
                    id="auth-password"
                    class="input"
                    type="password"
                    autocomplete=autocomplete
                    required
                    minlength=api::auth::MIN_PASSWORD_CHARS.to_string()
                    data-testid="auth-password"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))
                />
                {(purpose == Purpose::SignUp)
                    .then(|| {
                        view! {
                            <p class="field-hint">
                                {format!("At least {} characters.", api::auth::MIN_PASSWORD_CHARS)}
                            </p>
                        }
                    })}
            </div>
            {move || {
                error
                    .get()
                    .map(|e| {
                        view! {
                            <p class="form-error" role="alert" data-testid="auth-error">
                                {e.detail()}
                            </p>
                        }
                    })
            }}
            <button
                type="submit"
                class="button button-block"
                data-testid="auth-submit"
                disabled=move || busy.get()
            >
                {move || if busy.get() { busy_text } else { button }}
            </button>
        </form>
    }
}
