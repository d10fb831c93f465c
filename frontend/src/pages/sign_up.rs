//! `/signup`: create an account (signed in at once).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::components::auth_form::{AuthForm, Purpose};
use crate::pages::auth_layout::{AuthLayout, leave_when_signed_in};

/// The sign-up page.
#[component]
pub fn SignUp() -> impl IntoView {
    leave_when_signed_in();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let submit = move |(email, password): (String, String)| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            if let Err(e) = api::auth::sign_up(&email, &password).await {
                error.set(Some(e));
            }
            busy.set(false);
        });
    };
    // Keep `?next=` when switching to the sign-in page.
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    view! {
        <AuthLayout title="Create your account" lead="Webhook-first workflows in minutes.">
            <AuthForm purpose=Purpose::SignUp on_submit=submit busy=busy error=error/>
            <p class="auth-switch">
                "Already have an account? "
                <a href=format!("/signin{search}") data-testid="to-signin">"Sign in"</a>
            </p>
        </AuthLayout>
    }
}
