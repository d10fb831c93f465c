//! `/workflows`: the project's workflows: create, rename, delete, status,
//! last change, search.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, projects::Project, workflows::Workflow};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;
use crate::router;

/// The workflows page.
#[component]
pub fn Workflows() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Workflows"</h1>
            <p class="page-lead">
                "Triggers, transforms, HTTP calls, branches and delays; publish a version to make it live."
            </p>
        </div>
        {with_project(|project| view! { <WorkflowList project=project/> }.into_any())}
    }
}

/// Whether a workflow belongs in the results of search `query`: every word
/// of it appears in the name or the status, ignoring case.
fn matches(workflow: &Workflow, query: &str) -> bool {
    let haystack = format!("{} {}", workflow.name, workflow.status_label()).to_lowercase();
    query
        .to_lowercase()
        .split_whitespace()
        .all(|word| haystack.contains(word))
}

#[component]
fn WorkflowList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = Fetch::new(move || {
        let pid = pid.get_value();
        async move { api::workflows::list(&pid).await }
    });
    let query = RwSignal::new(String::new());

    // Create.
    let new_name = RwSignal::new(String::new());
    let creating = RwSignal::new(false);
    let create_error = RwSignal::new(None::<api::Error>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = new_name.get_untracked().trim().to_owned();
        if name.is_empty() || creating.get_untracked() {
            return;
        }
        creating.set(true);
        create_error.set(None);
        spawn_local(async move {
            match api::workflows::create(&pid.get_value(), &name).await {
                Ok(workflow) => router::navigate(&format!("/workflows/{}", workflow.id), false),
                Err(e) => {
                    create_error.set(Some(e));
                    creating.set(false);
                }
            }
        });
    };

    // Rename (one row at a time).
    let renaming = RwSignal::new(None::<String>);
    let rename_value = RwSignal::new(String::new());
    let rename_busy = RwSignal::new(false);
    let rename_error = RwSignal::new(None::<api::Error>);
    let save_rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(id) = renaming.get_untracked() else {
            return;
        };
        let name = rename_value.get_untracked().trim().to_owned();
        if name.is_empty() || rename_busy.get_untracked() {
            return;
        }
        rename_busy.set(true);
        rename_error.set(None);
        spawn_local(async move {
            match api::workflows::rename(&id, &name).await {
                Ok(_) => {
                    renaming.set(None);
                    list.refetch();
                }
                Err(e) => rename_error.set(Some(e)),
            }
            rename_busy.set(false);
        });
    };

    // Delete (after confirming).
    let deleting = RwSignal::new(None::<Workflow>);
    let delete_busy = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<String>);
    let confirm_delete = move |()| {
        let Some(workflow) = deleting.get_untracked() else {
            return;
        };
        delete_busy.set(true);
        delete_error.set(None);
        spawn_local(async move {
            match api::workflows::remove(&workflow.id).await {
                Ok(()) => {
                    deleting.set(None);
                    list.refetch();
                }
                Err(e) => delete_error.set(Some(e.detail())),
            }
            delete_busy.set(false);
        });
    };

    let row = move |workflow: Workflow| {
        let id = workflow.id.clone();
        let is_renaming = {
            let id = id.clone();
            move || renaming.get().as_deref() == Some(id.as_str())
        };
        let name_cell = {
            let workflow = workflow.clone();
            move || {
                if is_renaming() {
                    view! {
                        <form class="inline-form rename-form" on:submit=save_rename>
                            <label class="visually-hidden" for="rename-input">"New name"</label>
                            <input
                                id="rename-input"
                                class="input"
                                type="text"
                                maxlength="200"
                                required
                                autofocus
                                data-testid="workflow-rename-input"
                                prop:value=move || rename_value.get()
                                on:input=move |ev| rename_value.set(event_target_value(&ev))
                                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                    if ev.key() == "Escape" {
                                        renaming.set(None);
                                    }
                                }
                            />
                            <button
                                type="submit"
                                class="button button-small"
                                data-testid="workflow-rename-save"
                                disabled=move || rename_busy.get()
                            >
                                "Save"
                            </button>
                            <button
                                type="button"
                                class="button button-secondary button-small"
                                on:click=move |_| renaming.set(None)
                            >
                                "Cancel"
                            </button>
                        </form>
                        {move || rename_error.get().map(|e| view! { <ErrorNotice error=e/> })}
                    }
                    .into_any()
                } else {
                    let name = workflow.name.clone();
                    view! {
                        <a
                            href=format!("/workflows/{}", workflow.id)
                            class="row-title"
                            data-testid="workflow-name"
                        >
                            {name}
                        </a>
                    }
                    .into_any()
                }
            }
        };
        let status_class = if workflow.is_published() {
            "badge badge-ok"
        } else {
            "badge"
        };
        let start_rename = {
            let (id, name) = (workflow.id.clone(), workflow.name.clone());
            move |_| {
                rename_value.set(name.clone());
                rename_error.set(None);
                renaming.set(Some(id.clone()));
            }
        };
        let ask_delete = {
            let workflow = workflow.clone();
            move |_| {
                delete_error.set(None);
                deleting.set(Some(workflow.clone()));
            }
        };
        view! {
            <tr data-testid="workflow-row" data-id=id>
                <td data-label="Name">{name_cell}</td>
                <td data-label="Status">
                    <span class=status_class data-testid="workflow-status">
                        {workflow.status_label()}
                    </span>
                </td>
                <td data-label="Last change">
                    <time datetime=workflow.updated_at.clone() title=format::local(&workflow.updated_at)>
                        {format::relative(&workflow.updated_at)}
                    </time>
                </td>
                <td class="row-actions">
                    <button
                        type="button"
                        class="button button-secondary button-small"
                        data-testid="workflow-rename"
                        on:click=start_rename
                    >
                        "Rename"
                    </button>
                    <button
                        type="button"
                        class="button button-danger-quiet button-small"
                        data-testid="workflow-delete"
                        on:click=ask_delete
                    >
                        "Delete"
                    </button>
                </td>
            </tr>
        }
    };

    let table = move || match list.get() {
        None => view! { <Loading label="Loading workflows…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| list.refetch()/> }.into_any()
        }
        Some(Ok(all)) if all.is_empty() => view! {
            <EmptyState title="No workflows yet" test_id="workflows-empty">
                <p>"Name your first workflow above; you will build it in the editor next."</p>
            </EmptyState>
        }
        .into_any(),
        Some(Ok(all)) => {
            let q = query.get();
            let shown: Vec<Workflow> = all.into_iter().filter(|w| matches(w, &q)).collect();
            if shown.is_empty() {
                return view! {
                    <EmptyState title=format!("No workflow matches “{}”", q.trim()) test_id="workflows-no-match"/>
                }
                .into_any();
            }
            view! {
                <div class="card table-card">
                    <table class="table" data-testid="workflow-table">
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Status"</th>
                                <th scope="col">"Last change"</th>
                                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody>{shown.into_iter().map(row).collect_view()}</tbody>
                    </table>
                </div>
            }
            .into_any()
        }
    };

    view! {
        <div class="toolbar">
            <form class="inline-form grow" on:submit=create>
                <label class="visually-hidden" for="new-workflow-name">"New workflow name"</label>
                <input
                    id="new-workflow-name"
                    class="input"
                    type="text"
                    placeholder="New workflow name"
                    maxlength="200"
                    required
                    data-testid="workflow-new-name"
                    prop:value=move || new_name.get()
                    on:input=move |ev| new_name.set(event_target_value(&ev))
                />
                <button
                    type="submit"
                    class="button"
                    data-testid="workflow-create"
                    disabled=move || creating.get()
                >
                    {move || if creating.get() { "Creating…" } else { "Create workflow" }}
                </button>
            </form>
            <div class="search">
                <label class="visually-hidden" for="workflow-search">"Search workflows"</label>
                <input
                    id="workflow-search"
                    class="input"
                    type="search"
                    placeholder="Search"
                    data-testid="workflow-search"
                    prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev))
                />
            </div>
        </div>
        {move || create_error.get().map(|e| view! { <ErrorNotice error=e/> })}
        {table}
        {move || {
            deleting
                .get()
                .map(|workflow| {
                    view! {
                        <ConfirmDialog
                            title=format!("Delete workflow “{}”?", workflow.name)
                            message="Its versions, webhooks and run history go with it. This cannot be undone."
                            confirm_label="Delete workflow"
                            busy=delete_busy
                            error=delete_error
                            on_confirm=confirm_delete
                            on_cancel=move |()| deleting.set(None)
                        />
                    }
                })
        }}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(name: &str, status: &str, version: Option<i32>) -> Workflow {
        Workflow {
            id: "w".to_owned(),
            name: name.to_owned(),
            definition: serde_json::json!({}),
            status: status.to_owned(),
            latest_version: version,
            updated_at: String::new(),
        }
    }

    #[test]
    fn search_matches_every_word_of_name_or_status() {
        let w = workflow("Stripe billing sync", "published", Some(3));
        assert!(matches(&w, ""));
        assert!(matches(&w, "billing"));
        assert!(matches(&w, "STRIPE sync"));
        assert!(matches(&w, "v3"));
        assert!(!matches(&w, "github"));
        assert!(!matches(&w, "draft"));
    }

    #[test]
    fn status_labels() {
        assert_eq!(workflow("a", "draft", None).status_label(), "draft");
        assert_eq!(
            workflow("a", "published", Some(2)).status_label(),
            "published v2"
        );
        assert_eq!(
            workflow("a", "draft", Some(2)).status_label(),
            "draft · v2 live"
        );
    }
}
