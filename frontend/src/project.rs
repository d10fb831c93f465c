//! The current project: the list of the user's projects, which one is
//! selected (remembered in `localStorage`), and the guard pages that need a
//! project render through ([`with_project`]).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, projects::Project};
use crate::components::status::{ErrorNotice, Loading};
use crate::load::Fetch;

/// `localStorage` key of the selected project's id.
const STORAGE_KEY: &str = "meshhook.project";

/// The projects context, provided by the signed-in shell.
#[derive(Clone, Copy)]
pub struct Projects {
    /// `GET /api/v1/projects`.
    pub list: Fetch<Result<Vec<Project>, api::Error>>,
    /// The id the user picked (may be stale; see [`Projects::current`]).
    chosen: RwSignal<Option<String>>,
    /// The project in use: the chosen one if it is in the list, else the
    /// first.
    pub current: Memo<Option<Project>>,
}

impl Projects {
    /// Loads the projects and provides the context.
    pub fn provide() -> Self {
        let list = Fetch::new(api::projects::list);
        let chosen = RwSignal::new(stored());
        let current = Memo::new(move |_| {
            let projects = list.get()?.ok()?;
            let chosen = chosen.get();
            projects
                .iter()
                .find(|p| Some(&p.id) == chosen.as_ref())
                .or_else(|| projects.first())
                .cloned()
        });
        let projects = Self {
            list,
            chosen,
            current,
        };
        provide_context(projects);
        projects
    }

    /// Switches to project `id` and remembers it.
    pub fn select(self, id: String) {
        if let Some(storage) = storage() {
            let _ = storage.set_item(STORAGE_KEY, &id);
        }
        self.chosen.set(Some(id));
    }

    /// Reloads the list and then switches to `project` (just created).
    pub fn created(self, project: &Project) {
        self.select(project.id.clone());
        self.list.refetch();
    }

    /// The loaded projects, empty while loading or failed (tracked).
    pub fn loaded(self) -> Vec<Project> {
        self.list.get().and_then(Result::ok).unwrap_or_default()
    }
}

/// The app's [`Projects`].
pub fn use_projects() -> Projects {
    expect_context::<Projects>()
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

fn stored() -> Option<String> {
    storage()?.get_item(STORAGE_KEY).ok()?
}

/// Renders `page` for the current project; rebuilt when the user switches
/// projects. Shows loading and error states while the list is not there,
/// and a "create your first project" form when the user has none.
///
/// `page` is a plain function returning an erased view so this (large)
/// closure is compiled once, not once per page.
pub fn with_project(page: fn(Project) -> AnyView) -> impl IntoView {
    let projects = use_projects();
    let id = Memo::new(move |_| projects.current.get().map(|p| p.id));
    move || match projects.list.get() {
        None => view! { <Loading label="Loading projects…"/> }.into_any(),
        Some(Err(error)) => view! {
            <ErrorNotice error=error on_retry=move |()| projects.list.refetch()/>
        }
        .into_any(),
        Some(Ok(list)) if list.is_empty() => view! { <FirstProject/> }.into_any(),
        Some(Ok(_)) => match id.get() {
            Some(_) => match projects.current.get_untracked() {
                Some(project) => page(project),
                None => view! { <Loading/> }.into_any(),
            },
            None => view! { <Loading/> }.into_any(),
        },
    }
}

/// The empty state of a user without projects: create one right here.
#[component]
pub fn FirstProject() -> impl IntoView {
    let projects = use_projects();
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = name.get_untracked().trim().to_owned();
        if value.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::projects::create(&value).await {
                Ok(project) => projects.created(&project),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="card empty-state first-project" data-testid="first-project">
            <h2 class="card-title">"Create your first project"</h2>
            <p>
                "Projects hold workflows, webhooks, secrets and members. "
                "Start with one; you can add more from the header."
            </p>
            <form class="inline-form" on:submit=submit>
                <label class="visually-hidden" for="first-project-name">"Project name"</label>
                <input
                    id="first-project-name"
                    class="input"
                    type="text"
                    placeholder="Project name"
                    maxlength="200"
                    required
                    data-testid="first-project-name"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <button
                    type="submit"
                    class="button"
                    data-testid="first-project-create"
                    disabled=move || busy.get()
                >
                    {move || if busy.get() { "Creating…" } else { "Create project" }}
                </button>
            </form>
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
        </section>
    }
}
