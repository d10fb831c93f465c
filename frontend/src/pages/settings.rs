//! `/settings`: the project's members (list, add by email and role) and API
//! keys (list, create with the key shown once, revoke).

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api;
use crate::api::projects::{ApiKey, Project, ROLES};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::shown_once::ShownOnce;
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;

/// The settings page.
#[component]
pub fn Settings() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Settings"</h1>
            <p class="page-lead">"Who can work on this project, and keys for scripts and CI."</p>
        </div>
        {with_project(|project| {
            view! {
                <div class="stack">
                    <ProjectFacts project=project.clone()/>
                    <Members project=project.clone()/>
                    <ApiKeys project=project/>
                </div>
            }
            .into_any()
        })}
    }
}

#[component]
fn ProjectFacts(project: Project) -> impl IntoView {
    view! {
        <section class="card">
            <h2 class="card-title">"Project"</h2>
            <dl class="facts">
                <div>
                    <dt>"Name"</dt>
                    <dd data-testid="project-name-label">{project.name}</dd>
                </div>
                <div>
                    <dt>"Your role"</dt>
                    <dd>{project.role.unwrap_or_else(|| "–".to_owned())}</dd>
                </div>
                <div>
                    <dt>"Id"</dt>
                    <dd><code>{project.id}</code></dd>
                </div>
            </dl>
        </section>
    }
}

/// A `<select>` of roles; `from` skips the stronger ones (keys are at most
/// admin).
fn role_options(from: usize, selected: &'static str) -> impl IntoView {
    ROLES[from..]
        .iter()
        .map(|role| view! { <option value=*role selected={*role == selected}>{*role}</option> })
        .collect_view()
}

#[component]
fn Members(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = Fetch::new(move || {
        let pid = pid.get_value();
        async move { api::projects::members(&pid).await }
    });
    let email = RwSignal::new(String::new());
    let role = RwSignal::new("editor".to_owned());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (e, r) = (
            email.get_untracked().trim().to_owned(),
            role.get_untracked(),
        );
        if e.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::projects::add_member(&pid.get_value(), &e, &r).await {
                Ok(_) => {
                    email.set(String::new());
                    list.refetch();
                }
                Err(err) => error.set(Some(err)),
            }
            busy.set(false);
        });
    };
    let rows = move || {
        match list.get() {
        None => view! { <Loading label="Loading members…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| list.refetch()/> }.into_any()
        }
        Some(Ok(members)) => view! {
            <table class="table table-compact" data-testid="member-table">
                <thead>
                    <tr>
                        <th scope="col">"Email"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Added"</th>
                    </tr>
                </thead>
                <tbody>
                    {members
                        .into_iter()
                        .map(|m| {
                            view! {
                                <tr data-testid="member-row">
                                    <td data-label="Email" class="wrap">{m.email}</td>
                                    <td data-label="Role"><span class="badge">{m.role}</span></td>
                                    <td data-label="Added">
                                        <time datetime=m.created_at.clone() title=format::local(&m.created_at)>
                                            {format::relative(&m.created_at)}
                                        </time>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    };
    view! {
        <section class="card" data-testid="members">
            <h2 class="card-title">"Members"</h2>
            {rows}
            <form class="inline-form add-row" on:submit=add data-testid="member-form">
                <label class="visually-hidden" for="member-email">"Email of the person to add"</label>
                <input
                    id="member-email"
                    class="input grow"
                    type="email"
                    placeholder="colleague@example.com"
                    required
                    data-testid="member-email"
                    prop:value=move || email.get()
                    on:input=move |ev| email.set(event_target_value(&ev))
                />
                <label class="visually-hidden" for="member-role">"Role"</label>
                <select
                    id="member-role"
                    class="select"
                    data-testid="member-role"
                    on:change=move |ev| role.set(event_target_value(&ev))
                >
                    {role_options(0, "editor")}
                </select>
                <button type="submit" class="button" data-testid="member-add" disabled=move || busy.get()>
                    {move || if busy.get() { "Adding…" } else { "Add member" }}
                </button>
            </form>
            <p class="field-hint">"They need a MeshHook account first."</p>
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
        </section>
    }
}

#[component]
fn ApiKeys(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = Fetch::new(move || {
        let pid = pid.get_value();
        async move { api::projects::api_keys(&pid).await }
    });
    let name = RwSignal::new(String::new());
    let role = RwSignal::new("editor".to_owned());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let new_key = RwSignal::new(None::<String>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, r) = (name.get_untracked().trim().to_owned(), role.get_untracked());
        if n.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::projects::create_api_key(&pid.get_value(), &n, &r).await {
                Ok(created) => {
                    name.set(String::new());
                    new_key.set(Some(created.key));
                    list.refetch();
                }
                Err(err) => error.set(Some(err)),
            }
            busy.set(false);
        });
    };

    let revoking = RwSignal::new(None::<ApiKey>);
    let revoke_busy = RwSignal::new(false);
    let revoke_error = RwSignal::new(None::<String>);
    let confirm_revoke = move |()| {
        let Some(key) = revoking.get_untracked() else {
            return;
        };
        revoke_busy.set(true);
        revoke_error.set(None);
        spawn_local(async move {
            match api::projects::delete_api_key(&pid.get_value(), &key.id).await {
                Ok(()) => {
                    revoking.set(None);
                    list.refetch();
                }
                Err(e) => revoke_error.set(Some(e.detail())),
            }
            revoke_busy.set(false);
        });
    };

    let rows = move || {
        match list.get() {
        None => view! { <Loading label="Loading API keys…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| list.refetch()/> }.into_any()
        }
        Some(Ok(keys)) if keys.is_empty() => view! {
            <EmptyState title="No API keys" test_id="api-keys-empty">
                <p>"Create one for scripts and CI: it acts on this project with the role you give it."</p>
            </EmptyState>
        }
        .into_any(),
        Some(Ok(keys)) => view! {
            <table class="table table-compact" data-testid="api-key-table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Key"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {keys
                        .into_iter()
                        .map(|key| {
                            let revoked = key.revoked_at.is_some();
                            let ask = {
                                let key = key.clone();
                                move |_| {
                                    revoke_error.set(None);
                                    revoking.set(Some(key.clone()));
                                }
                            };
                            view! {
                                <tr data-testid="api-key-row" class:revoked=revoked>
                                    <td data-label="Name">{key.name.clone()}</td>
                                    <td data-label="Key"><code>{format!("{}…", key.prefix)}</code></td>
                                    <td data-label="Role"><span class="badge">{key.role.clone()}</span></td>
                                    <td data-label="Last used">
                                        {key.last_used_at.as_deref().map_or_else(|| "never".to_owned(), format::relative)}
                                    </td>
                                    <td class="row-actions">
                                        {if revoked {
                                            view! { <span class="badge badge-off">"revoked"</span> }.into_any()
                                        } else {
                                            view! {
                                                <button
                                                    type="button"
                                                    class="button button-danger-quiet button-small"
                                                    data-testid="api-key-delete"
                                                    on:click=ask
                                                >
                                                    "Revoke"
                                                </button>
                                            }
                                            .into_any()
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    };

    view! {
        <section class="card" data-testid="api-keys">
            <h2 class="card-title">"API keys"</h2>
            {move || {
                new_key
                    .get()
                    .map(|key| {
                        view! { <ShownOnce title="New API key" value=key on_dismiss=move |()| new_key.set(None)/> }
                    })
            }}
            {rows}
            <form class="inline-form add-row" on:submit=create data-testid="api-key-form">
                <label class="visually-hidden" for="api-key-name">"Key name"</label>
                <input
                    id="api-key-name"
                    class="input grow"
                    type="text"
                    placeholder="Key name, e.g. CI deploy"
                    maxlength="200"
                    required
                    data-testid="api-key-name"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))
                />
                <label class="visually-hidden" for="api-key-role">"Role"</label>
                <select
                    id="api-key-role"
                    class="select"
                    data-testid="api-key-role"
                    on:change=move |ev| role.set(event_target_value(&ev))
                >
                    {role_options(1, "editor")}
                </select>
                <button type="submit" class="button" data-testid="api-key-create" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create key" }}
                </button>
            </form>
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
            {move || {
                revoking
                    .get()
                    .map(|key| {
                        view! {
                            <ConfirmDialog
                                title=format!("Revoke API key “{}”?", key.name)
                                message="Scripts using it get 401 from now on. This cannot be undone."
                                confirm_label="Revoke key"
                                busy=revoke_busy
                                error=revoke_error
                                on_confirm=confirm_revoke
                                on_cancel=move |()| revoking.set(None)
                            />
                        }
                    })
            }}
        </section>
    }
}
