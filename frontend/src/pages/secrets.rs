//! `/secrets`: the project's secrets. Values are write-only: the list shows
//! a masked hint, and every value field is emptied once saved.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, projects::Project, secrets::Secret};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;

/// The secrets page.
#[component]
pub fn Secrets() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Secrets"</h1>
            <p class="page-lead">
                "Encrypted values your workflows use as " <code>"{{ secrets.NAME }}"</code>
                ". Once saved, a value is never shown again."
            </p>
        </div>
        {with_project(|project| view! { <SecretList project=project/> }.into_any())}
    }
}

#[component]
fn SecretList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = Fetch::new(move || {
        let pid = pid.get_value();
        async move { api::secrets::list(&pid).await }
    });

    // Add.
    let name = RwSignal::new(String::new());
    let value = RwSignal::new(String::new());
    let adding = RwSignal::new(false);
    let add_error = RwSignal::new(None::<api::Error>);
    let name_problem = move || {
        let name = name.get();
        (!name.is_empty() && !api::secrets::is_valid_name(&name))
            .then_some("Use letters, digits and _, starting with a letter or _ (e.g. STRIPE_KEY).")
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, v) = (
            name.get_untracked().trim().to_owned(),
            value.get_untracked(),
        );
        if n.is_empty() || v.is_empty() || adding.get_untracked() {
            return;
        }
        adding.set(true);
        add_error.set(None);
        spawn_local(async move {
            match api::secrets::create(&pid.get_value(), &n, &v).await {
                Ok(_) => {
                    name.set(String::new());
                    value.set(String::new());
                    list.refetch();
                }
                Err(e) => add_error.set(Some(e)),
            }
            adding.set(false);
        });
    };

    // Replace a value (one row at a time).
    let updating = RwSignal::new(None::<String>);
    let new_value = RwSignal::new(String::new());
    let update_busy = RwSignal::new(false);
    let update_error = RwSignal::new(None::<api::Error>);
    let saved = RwSignal::new(None::<String>);
    let close_update = move || {
        new_value.set(String::new());
        update_error.set(None);
        updating.set(None);
    };
    let save_update = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(id) = updating.get_untracked() else {
            return;
        };
        let v = new_value.get_untracked();
        if v.is_empty() || update_busy.get_untracked() {
            return;
        }
        update_busy.set(true);
        update_error.set(None);
        spawn_local(async move {
            match api::secrets::update(&id, &v).await {
                Ok(secret) => {
                    close_update();
                    saved.set(Some(secret.name));
                    list.refetch();
                }
                Err(e) => update_error.set(Some(e)),
            }
            update_busy.set(false);
        });
    };

    // Delete (after confirming).
    let deleting = RwSignal::new(None::<Secret>);
    let delete_busy = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<String>);
    let confirm_delete = move |()| {
        let Some(secret) = deleting.get_untracked() else {
            return;
        };
        delete_busy.set(true);
        delete_error.set(None);
        spawn_local(async move {
            match api::secrets::remove(&secret.id).await {
                Ok(()) => {
                    deleting.set(None);
                    list.refetch();
                }
                Err(e) => delete_error.set(Some(e.detail())),
            }
            delete_busy.set(false);
        });
    };

    let row = move |secret: Secret| {
        let id = secret.id.clone();
        let is_updating = {
            let id = id.clone();
            move || updating.get().as_deref() == Some(id.as_str())
        };
        let start_update = {
            let id = id.clone();
            move |_| {
                new_value.set(String::new());
                update_error.set(None);
                saved.set(None);
                updating.set(Some(id.clone()));
            }
        };
        let ask_delete = {
            let secret = secret.clone();
            move |_| {
                delete_error.set(None);
                deleting.set(Some(secret.clone()));
            }
        };
        let reference = format!("{{{{ secrets.{} }}}}", secret.name);
        view! {
            <tr data-testid="secret-row" data-name=secret.name.clone()>
                <td data-label="Name">
                    <span class="row-title" data-testid="secret-name">{secret.name.clone()}</span>
                    <code class="secret-ref">{reference}</code>
                </td>
                <td data-label="Value">
                    <code class="masked" data-testid="secret-masked">{secret.masked.clone()}</code>
                </td>
                <td data-label="Updated">
                    <time datetime=secret.updated_at.clone() title=format::local(&secret.updated_at)>
                        {format::relative(&secret.updated_at)}
                    </time>
                </td>
                <td class="row-actions">
                    {move || {
                        if is_updating() {
                            view! {
                                <form class="inline-form" on:submit=save_update>
                                    <label class="visually-hidden" for="secret-new-value">"New value"</label>
                                    <input
                                        id="secret-new-value"
                                        class="input"
                                        type="password"
                                        autocomplete="off"
                                        placeholder="New value"
                                        required
                                        autofocus
                                        data-testid="secret-new-value"
                                        prop:value=move || new_value.get()
                                        on:input=move |ev| new_value.set(event_target_value(&ev))
                                    />
                                    <button
                                        type="submit"
                                        class="button button-small"
                                        data-testid="secret-update-save"
                                        disabled=move || update_busy.get()
                                    >
                                        "Save"
                                    </button>
                                    <button
                                        type="button"
                                        class="button button-secondary button-small"
                                        on:click=move |_| close_update()
                                    >
                                        "Cancel"
                                    </button>
                                </form>
                                {move || update_error.get().map(|e| view! { <ErrorNotice error=e/> })}
                            }
                            .into_any()
                        } else {
                            view! {
                                <button
                                    type="button"
                                    class="button button-secondary button-small"
                                    data-testid="secret-update"
                                    on:click=start_update.clone()
                                >
                                    "Update value"
                                </button>
                                <button
                                    type="button"
                                    class="button button-danger-quiet button-small"
                                    data-testid="secret-delete"
                                    on:click=ask_delete.clone()
                                >
                                    "Delete"
                                </button>
                            }
                            .into_any()
                        }
                    }}
                </td>
            </tr>
        }
    };

    let table = move || match list.get() {
        None => view! { <Loading label="Loading secrets…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| list.refetch()/> }.into_any()
        }
        Some(Ok(all)) if all.is_empty() => view! {
            <EmptyState title="No secrets yet" test_id="secrets-empty">
                <p>"Add API tokens and passwords here instead of writing them into workflows."</p>
            </EmptyState>
        }
        .into_any(),
        Some(Ok(all)) => view! {
            <div class="card table-card">
                <table class="table" data-testid="secret-table">
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Value"</th>
                            <th scope="col">"Updated"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>{all.into_iter().map(row).collect_view()}</tbody>
                </table>
            </div>
        }
        .into_any(),
    };

    view! {
        <section class="card form-card">
            <h2 class="card-title">"Add a secret"</h2>
            <form class="form-grid" on:submit=add data-testid="secret-form">
                <div class="field">
                    <label for="secret-name">"Name"</label>
                    <input
                        id="secret-name"
                        class="input"
                        type="text"
                        placeholder="STRIPE_KEY"
                        autocomplete="off"
                        spellcheck="false"
                        maxlength="128"
                        required
                        data-testid="secret-name-input"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                    {move || name_problem().map(|p| view! { <p class="field-hint field-hint-error">{p}</p> })}
                </div>
                <div class="field">
                    <label for="secret-value">"Value"</label>
                    <input
                        id="secret-value"
                        class="input"
                        type="password"
                        autocomplete="off"
                        required
                        data-testid="secret-value-input"
                        prop:value=move || value.get()
                        on:input=move |ev| value.set(event_target_value(&ev))
                    />
                </div>
                <div class="field field-submit">
                    <button
                        type="submit"
                        class="button"
                        data-testid="secret-add"
                        disabled=move || adding.get() || name_problem().is_some()
                    >
                        {move || if adding.get() { "Saving…" } else { "Add secret" }}
                    </button>
                </div>
            </form>
            {move || add_error.get().map(|e| view! { <ErrorNotice error=e/> })}
        </section>
        {move || {
            saved
                .get()
                .map(|name| {
                    view! {
                        <p class="notice notice-ok" role="status" data-testid="secret-saved">
                            {format!("New value of {name} saved.")}
                        </p>
                    }
                })
        }}
        {table}
        {move || {
            deleting
                .get()
                .map(|secret| {
                    view! {
                        <ConfirmDialog
                            title=format!("Delete secret {}?", secret.name)
                            message="Workflows that use it fail at the step that needs it. This cannot be undone."
                            confirm_label="Delete secret"
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
