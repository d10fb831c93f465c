//! The application shell (header, navigation, theme) and the routes.

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::components::theme_toggle::ThemeToggle;
use crate::pages::{not_found::NotFound, overview::Overview, placeholder::Placeholder};
use crate::theme;

/// A top-level section of the app: one navigation entry and one route.
struct Section {
    href: &'static str,
    title: &'static str,
    summary: &'static str,
    test_id: &'static str,
}

const WORKFLOWS: Section = Section {
    href: "/workflows",
    title: "Workflows",
    summary: "Design workflows from triggers, transforms, HTTP calls, branches and delays; validate and publish versions.",
    test_id: "nav-workflows",
};
const RUNS: Section = Section {
    href: "/runs",
    title: "Runs",
    summary: "Follow runs live, inspect every step's input and output, resume or cancel.",
    test_id: "nav-runs",
};
const WEBHOOKS: Section = Section {
    href: "/webhooks",
    title: "Webhooks",
    summary: "Webhook URLs, signature verification, rate limits and the delivery log.",
    test_id: "nav-webhooks",
};
const SECRETS: Section = Section {
    href: "/secrets",
    title: "Secrets",
    summary: "Encrypted values your workflows reference as {{ secrets.NAME }}; never shown again once saved.",
    test_id: "nav-secrets",
};
const SETTINGS: Section = Section {
    href: "/settings",
    title: "Settings",
    summary: "Project members, roles and API keys.",
    test_id: "nav-settings",
};

const SECTIONS: [Section; 5] = [WORKFLOWS, RUNS, WEBHOOKS, SECRETS, SETTINGS];

/// The whole application.
#[component]
pub fn App() -> impl IntoView {
    let theme = theme::init();
    let toggle_theme = move |()| theme::choose(theme, theme.get_untracked().toggled());

    view! {
        <Router>
            <div class="shell">
                <header class="topbar" data-testid="app-header">
                    <A href="/" attr:class="brand" attr:data-testid="brand">
                        <Logo/>
                        <span class="brand-name">"MeshHook"</span>
                    </A>
                    <ThemeToggle theme=theme on_toggle=toggle_theme/>
                </header>
                <nav class="sidebar" aria-label="Main" data-testid="nav">
                    <ul class="nav-list">
                        <li>
                            <A href="/" exact=true attr:class="nav-link" attr:data-testid="nav-overview">
                                "Overview"
                            </A>
                        </li>
                        {SECTIONS
                            .iter()
                            .map(|section| {
                                view! {
                                    <li>
                                        <A
                                            href=section.href
                                            attr:class="nav-link"
                                            attr:data-testid=section.test_id
                                        >
                                            {section.title}
                                        </A>
                                    </li>
                                }
                            })
                            .collect_view()}
                    </ul>
                </nav>
                <main class="content" data-testid="content">
                    <Routes fallback=NotFound>
                        <Route path=path!("/") view=Overview/>
                        <Route path=path!("/workflows") view=|| section_page(&WORKFLOWS)/>
                        <Route path=path!("/runs") view=|| section_page(&RUNS)/>
                        <Route path=path!("/webhooks") view=|| section_page(&WEBHOOKS)/>
                        <Route path=path!("/secrets") view=|| section_page(&SECRETS)/>
                        <Route path=path!("/settings") view=|| section_page(&SETTINGS)/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

fn section_page(section: &'static Section) -> impl IntoView {
    view! { <Placeholder title=section.title summary=section.summary/> }
}

/// The MeshHook mark: three linked nodes.
#[component]
fn Logo() -> impl IntoView {
    view! {
        <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
            <path class="logo-edge" d="M9 22 L16 9 L23 22 Z"></path>
            <circle class="logo-node" cx="16" cy="9" r="4"></circle>
            <circle class="logo-node" cx="9" cy="22" r="4"></circle>
            <circle class="logo-node logo-node-accent" cx="23" cy="22" r="4"></circle>
        </svg>
    }
}
