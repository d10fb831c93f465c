//! `/signin`: email and password; afterwards back to the page the guard
//! came from (`?next=`).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::components::auth_form::{AuthForm, Purpose};
use crate::pages::auth_layout::{AuthLayout, leave_when_signed_in};

/// The sign-in page.
#[component]
pub fn SignIn() -> impl IntoView {
    leave_when_signed_in();
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let submit = move |(email, password): (String, String)| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            // On success the stored session changes and
            // `leave_when_signed_in` moves on.
            if let Err(e) = api::auth::sign_in(&email, &password).await {
                error.set(Some(e));
            }
            busy.set(false);
        });
    };
    view! {
        <AuthLayout title="Sign in" lead="Welcome back to MeshHook.">
            <AuthForm purpose=Purpose::SignIn on_submit=submit busy=busy error=error/>
            <p class="auth-switch">
                "No account yet? "
                <a href=signup_link() data-testid="to-signup">"Create one"</a>
            </p>
        </AuthLayout>
    }
}

/// `/signup`, keeping `?next=`.
fn signup_link() -> String {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    format!("/signup{search}")
}
