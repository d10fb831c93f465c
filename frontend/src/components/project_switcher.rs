//! The project picker in the header, with an inline "new project" form.

use leptos::prelude::*;

use crate::api::projects::Project;

/// A `<select>` of `projects` (the current one selected) and a "+" button
/// that swaps it for a name field; submitting calls `on_create`. The parent
/// closes the form (`creating`) once the project exists.
#[component]
pub fn ProjectSwitcher(
    /// The user's projects.
    #[prop(into)]
    projects: Signal<Vec<Project>>,
    /// Id of the project in use.
    #[prop(into)]
    current: Signal<Option<String>>,
    /// The user picked another project.
    #[prop(into)]
    on_select: Callback<String>,
    /// The user asked for a new project with this name.
    #[prop(into)]
    on_create: Callback<String>,
    /// Whether the "new project" form is open.
    creating: RwSignal<bool>,
    /// True while the project is being created.
    #[prop(into)]
    busy: Signal<bool>,
    /// Why creating failed, if it did.
    #[prop(into)]
    error: Signal<Option<String>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = name.get_untracked().trim().to_owned();
        if !value.is_empty() && !busy.get_untracked() {
            on_create.run(value);
        }
    };
    // Empty the field whenever the form closes.
    Effect::new(move |_| {
        if !creating.get() {
            name.set(String::new());
        }
    });
    view! {
        <div class="project-switcher" data-testid="project-switcher">
            <Show
                when=move || creating.get()
                fallback=move || {
                    view! {
                        <label class="visually-hidden" for="project-select">"Project"</label>
                        <select
                            id="project-select"
                            class="select project-select"
                            data-testid="project-select"
                            disabled=move || projects.with(Vec::is_empty)
                            on:change=move |ev| on_select.run(event_target_value(&ev))
                        >
                            {move || {
                                let list = projects.get();
                                if list.is_empty() {
                                    return view! { <option value="">"No project yet"</option> }
                                        .into_any();
                                }
                                let current = current.get();
                                list.into_iter()
                                    .map(|p| {
                                        let selected = current.as_deref() == Some(p.id.as_str());
                                        view! {
                                            <option value=p.id selected=selected>{p.name}</option>
                                        }
                                    })
                                    .collect_view()
                                    .into_any()
                            }}
                        </select>
                        <button
                            type="button"
                            class="icon-button"
                            title="New project"
                            aria-label="New project"
                            data-testid="project-new"
                            on:click=move |_| creating.set(true)
                        >
                            <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
                                <path d="M12 5v14M5 12h14"></path>
                            </svg>
                        </button>
                    }
                }
            >
                <form class="project-form" on:submit=submit>
                    <label class="visually-hidden" for="project-name">"New project name"</label>
                    <input
                        id="project-name"
                        class="input"
                        type="text"
                        placeholder="New project name"
                        maxlength="200"
                        required
                        autofocus
                        data-testid="project-name"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                        on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Escape" {
                                creating.set(false);
                            }
                        }
                    />
                    <button
                        type="submit"
                        class="button button-small"
                        data-testid="project-create"
                        disabled=move || busy.get()
                    >
                        {move || if busy.get() { "Creating…" } else { "Create" }}
                    </button>
                    <button
                        type="button"
                        class="button button-secondary button-small"
                        on:click=move |_| creating.set(false)
                    >
                        "Cancel"
                    </button>
                </form>
            </Show>
            {move || {
                error
                    .get()
                    .map(|e| view! { <p class="header-error" role="alert" data-testid="project-error">{e}</p> })
            }}
        </div>
    }
}
