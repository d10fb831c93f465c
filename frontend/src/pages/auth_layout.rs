//! The frame of the sign-in and sign-up pages (no navigation: the visitor
//! is signed out), and their redirect once signed in.

use leptos::prelude::*;

use crate::app::{Logo, ThemeSwitch};
use crate::router;
use crate::session::{self, use_auth};

/// Centered card with the brand and the theme switch.
#[component]
pub fn AuthLayout(
    /// Page heading.
    title: &'static str,
    /// One line under it.
    lead: &'static str,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="auth-page">
            <header class="auth-top" data-testid="app-header">
                <span class="brand">
                    <Logo/>
                    <span class="brand-name">"MeshHook"</span>
                </span>
                <ThemeSwitch/>
            </header>
            <main class="auth-main">
                <section class="card auth-card">
                    <h1 data-testid="page-title">{title}</h1>
                    <p class="page-lead">{lead}</p>
                    {children()}
                </section>
            </main>
        </div>
    }
}

/// Sends a signed-in visitor on to `?next=` (or `/`): at once when they
/// arrive signed in, else as soon as signing in succeeds.
pub fn leave_when_signed_in() {
    let auth = use_auth();
    Effect::new(move |_| {
        if auth.signed_in() {
            router::navigate(&session::next_page(), true);
        }
    });
}
