//! The application shell (header with project switcher and account,
//! navigation, theme), the route guard and the routes.
//!
//! `/signin` and `/signup` stand alone; every other page is a child of
//! [`Shell`], which sends signed-out visitors to `/signin?next=<page>`.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::components::project_switcher::ProjectSwitcher;
use crate::components::theme_toggle::ThemeToggle;
use crate::load::Fetch;
use crate::pages::{
    alerts::Alerts,
    dead_letter::DeadLetter,
    insights::Insights,
    not_found::NotFound,
    overview::Overview,
    runs::{RunPage, Runs},
    secrets::Secrets,
    settings::Settings,
    sign_in::SignIn,
    sign_up::SignUp,
    webhooks::Webhooks,
    workflow::WorkflowPage,
    workflows::Workflows,
};
use crate::project::Projects;
use crate::router;
use crate::session::{self, Auth, use_auth};
use crate::theme::{self, Theme};

/// A top-level section of the app: one navigation entry.
struct Section {
    href: &'static str,
    title: &'static str,
    test_id: &'static str,
}

const SECTIONS: [Section; 7] = [
    Section {
        href: "/workflows",
        title: "Workflows",
        test_id: "nav-workflows",
    },
    Section {
        href: "/runs",
        title: "Runs",
        test_id: "nav-runs",
    },
    // `/metrics` is the server's Prometheus endpoint.
    Section {
        href: "/insights",
        title: "Metrics",
        test_id: "nav-insights",
    },
    Section {
        href: "/alerts",
        title: "Alerts",
        test_id: "nav-alerts",
    },
    Section {
        href: "/webhooks",
        title: "Webhooks",
        test_id: "nav-webhooks",
    },
    Section {
        href: "/secrets",
        title: "Secrets",
        test_id: "nav-secrets",
    },
    Section {
        href: "/settings",
        title: "Settings",
        test_id: "nav-settings",
    },
];

/// The app's pages: the router's table ([`Page::of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    SignIn,
    SignUp,
    Overview,
    Workflows,
    Workflow,
    Runs,
    Run,
    DeadLetter,
    Insights,
    Alerts,
    Webhooks,
    Secrets,
    Settings,
    NotFound,
}

impl Page {
    /// The page at `path` (a trailing slash is ignored).
    pub fn of(path: &str) -> Self {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [] => Self::Overview,
            ["signin"] => Self::SignIn,
            ["signup"] => Self::SignUp,
            ["workflows"] => Self::Workflows,
            ["workflows", _] => Self::Workflow,
            ["runs"] => Self::Runs,
            ["runs", _] => Self::Run,
            ["dead-letter"] => Self::DeadLetter,
            ["insights"] => Self::Insights,
            ["alerts"] => Self::Alerts,
            ["webhooks"] => Self::Webhooks,
            ["secrets"] => Self::Secrets,
            ["settings"] => Self::Settings,
            _ => Self::NotFound,
        }
    }

    /// Whether the page stands alone (no shell, no sign-in needed).
    fn is_auth(self) -> bool {
        matches!(self, Self::SignIn | Self::SignUp)
    }

    fn view(self) -> AnyView {
        match self {
            Self::SignIn => view! { <SignIn/> }.into_any(),
            Self::SignUp => view! { <SignUp/> }.into_any(),
            Self::Overview => view! { <Overview/> }.into_any(),
            Self::Workflows => view! { <Workflows/> }.into_any(),
            Self::Workflow => view! { <WorkflowPage/> }.into_any(),
            Self::Runs => view! { <Runs/> }.into_any(),
            Self::Run => view! { <RunPage/> }.into_any(),
            Self::DeadLetter => view! { <DeadLetter/> }.into_any(),
            Self::Insights => view! { <Insights/> }.into_any(),
            Self::Alerts => view! { <Alerts/> }.into_any(),
            Self::Webhooks => view! { <Webhooks/> }.into_any(),
            Self::Secrets => view! { <Secrets/> }.into_any(),
            Self::Settings => view! { <Settings/> }.into_any(),
            Self::NotFound => view! { <NotFound/> }.into_any(),
        }
    }
}

/// The whole application.
#[component]
pub fn App() -> impl IntoView {
    provide_context(theme::init());
    Auth::provide();
    let location = router::provide();
    // A page is built anew only when the route changes, not its `:id` or
    // query (pages follow those themselves).
    let page = Memo::new(move |_| location.path.with(|p| Page::of(p)));
    let auth_page = Memo::new(move |_| page.get().is_auth().then(|| page.get()));

    move || match auth_page.get() {
        Some(p) => p.view(),
        None => view! { <Shell page=page/> }.into_any(),
    }
}

/// The route guard: signed out, the visitor goes to `/signin?next=...`;
/// signed in, the layout around the page.
#[component]
fn Shell(page: Memo<Page>) -> impl IntoView {
    let auth = use_auth();
    let signed_in = Memo::new(move |_| auth.signed_in());
    Effect::new(move |_| {
        if !signed_in.get() {
            router::navigate(&session::sign_in_url(), true);
        }
    });
    view! {
        <Show when=move || signed_in.get()>
            <SignedIn page=page/>
        </Show>
    }
}

/// Header, navigation and the page, for a signed-in user.
#[component]
fn SignedIn(page: Memo<Page>) -> impl IntoView {
    let auth = use_auth();
    let projects = Projects::provide();
    let me = Fetch::new(api::auth::me);
    let email = move || {
        me.get()
            .and_then(Result::ok)
            .and_then(|me| me.email)
            .or_else(|| auth.email())
            .unwrap_or_default()
    };

    let creating = RwSignal::new(false);
    let create_busy = RwSignal::new(false);
    let create_error = RwSignal::new(None::<String>);
    let create = move |name: String| {
        create_busy.set(true);
        create_error.set(None);
        spawn_local(async move {
            match api::projects::create(&name).await {
                Ok(project) => {
                    projects.created(&project);
                    creating.set(false);
                }
                Err(e) => create_error.set(Some(e.detail())),
            }
            create_busy.set(false);
        });
    };
    // A list that failed to load says so in the header too.
    let header_error = Signal::derive(move || {
        create_error.get().or_else(|| match projects.list.get() {
            Some(Err(e)) => Some(format!("Projects: {}", e.detail())),
            _ => None,
        })
    });
    let sign_out = move |_| {
        // Leave first, so the guard has no page to come back to.
        router::navigate("/signin", false);
        spawn_local(api::auth::sign_out());
    };

    view! {
        <div class="shell">
            <header class="topbar" data-testid="app-header">
                <a href="/" class="brand" data-testid="brand">
                    <Logo/>
                    <span class="brand-name">"MeshHook"</span>
                </a>
                <ProjectSwitcher
                    projects=Signal::derive(move || projects.loaded())
                    current=Signal::derive(move || projects.current.get().map(|p| p.id))
                    on_select=move |id| projects.select(id)
                    on_create=create
                    creating=creating
                    busy=create_busy
                    error=header_error
                />
                <div class="topbar-end">
                    <span class="user-email" data-testid="user-email" title=email>
                        {email}
                    </span>
                    <button
                        type="button"
                        class="icon-button sign-out"
                        title="Sign out"
                        data-testid="sign-out"
                        on:click=sign_out
                    >
                        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
                            <path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9"></path>
                        </svg>
                        <span class="sign-out-text">"Sign out"</span>
                    </button>
                    <ThemeSwitch/>
                </div>
            </header>
            <nav class="sidebar" aria-label="Main" data-testid="nav">
                <ul class="nav-list">
                    <li>
                        <a href="/" class="nav-link" data-testid="nav-overview" aria-current=current("/", true)>
                            "Overview"
                        </a>
                    </li>
                    {SECTIONS
                        .iter()
                        .map(|section| {
                            view! {
                                <li>
                                    <a
                                        href=section.href
                                        class="nav-link"
                                        data-testid=section.test_id
                                        aria-current=current(section.href, false)
                                    >
                                        {section.title}
                                    </a>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <main class="content" data-testid="content">
                {move || page.get().view()}
            </main>
        </div>
    }
}

/// `aria-current="page"` for a navigation link to `href` while the path is
/// `href` (or, unless `exact`, below it).
fn current(href: &'static str, exact: bool) -> impl Fn() -> Option<&'static str> {
    let location = router::use_location();
    move || {
        location.path.with(|p| {
            let here =
                p == href || (!exact && p.starts_with(href) && p[href.len()..].starts_with('/'));
            here.then_some("page")
        })
    }
}

/// The theme toggle wired to the app's theme (from context).
#[component]
pub fn ThemeSwitch() -> impl IntoView {
    let theme = expect_context::<RwSignal<Theme>>();
    view! {
        <ThemeToggle
            theme=theme
            on_toggle=move |()| theme::choose(theme, theme.get_untracked().toggled())
        />
    }
}

/// The MeshHook mark: three linked nodes.
#[component]
pub fn Logo() -> impl IntoView {
    view! {
        <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
            <path class="logo-edge" d="M9 22 L16 9 L23 22 Z"></path>
            <circle class="logo-node" cx="16" cy="9" r="4"></circle>
            <circle class="logo-node" cx="9" cy="22" r="4"></circle>
            <circle class="logo-node logo-node-accent" cx="23" cy="22" r="4"></circle>
        </svg>
    }
}
