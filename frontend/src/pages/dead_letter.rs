//! `/dead-letter`: the project's failed runs with why and where they
//! failed; pick some (or all) and resume each from the step that failed it.

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{self, projects::Project, runs};
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;

/// The dead-letter page.
#[component]
pub fn DeadLetter() -> impl IntoView {
    view! {
        <p class="back-link"><a href="/runs">"← All runs"</a></p>
        <div class="page-header">
            <h1 data-testid="page-title">"Dead letters"</h1>
            <p class="page-lead">
                "Failed runs, with the reason and the step that failed them. Fix the cause (a secret, the remote service), then resume them from that step."
            </p>
        </div>
        {with_project(|project| view! { <DeadLetterList project=project/> }.into_any())}
    }
}

#[component]
fn DeadLetterList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = Fetch::new(move || {
        let pid = pid.get_value();
        async move { runs::dead_letters(&pid).await }
    });
    let selected = RwSignal::new(BTreeSet::<String>::new());
    let busy = RwSignal::new(false);
    let outcome = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<api::Error>);
    let resume_selected = move |_| {
        let Some(Ok(rows)) = list.get_untracked() else {
            return;
        };
        let picked: Vec<(String, String)> = rows
            .into_iter()
            .filter(|d| selected.with_untracked(|s| s.contains(&d.run_id)))
            .filter_map(|d| Some((d.run_id, d.last_step?)))
            .collect();
        if picked.is_empty() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let mut resumed = 0;
            for (run, step) in &picked {
                match runs::resume(run, step).await {
                    Ok(_) => resumed += 1,
                    Err(e) => error.set(Some(e)),
                }
            }
            outcome.set(Some(format!(
                "Resumed {resumed} of {} run(s) from their failed step.",
                picked.len()
            )));
            selected.set(BTreeSet::new());
            busy.set(false);
            list.refetch();
        });
    };
    view! {
        <section class="card">
            {move || outcome.get().map(|o| view! { <p class="notice" data-testid="dead-letter-outcome">{o}</p> })}
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
            {move || match list.get() {
                None => view! { <Loading label="Loading failed runs…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorNotice error=e on_retry=move |()| list.refetch()/> }.into_any(),
                Some(Ok(rows)) if rows.is_empty() => view! {
                    <EmptyState title="No failed runs" test_id="dead-letter-empty"/>
                }.into_any(),
                Some(Ok(rows)) => {
                    let all: Vec<String> = rows.iter().filter(|d| d.last_step.is_some()).map(|d| d.run_id.clone()).collect();
                    view! {
                        <div class="button-row">
                            <button class="button button-secondary button-small" data-testid="dead-letter-select-all"
                                on:click=move |_| selected.update(|s| { s.clear(); for id in &all { s.insert(id.clone()); } })>
                                "Select all"
                            </button>
                            <button class="button button-small" data-testid="dead-letter-resume"
                                disabled=move || busy.get() || selected.with(BTreeSet::is_empty)
                                on:click=resume_selected>
                                {move || format!("Resume selected ({})", selected.with(BTreeSet::len))}
                            </button>
                        </div>
                        <table class="table" data-testid="dead-letter-table">
                            <thead><tr><th></th><th>"Run"</th><th>"Failed step"</th><th>"Reason"</th><th>"Failed"</th></tr></thead>
                            <tbody>
                                {rows.into_iter().map(|d| {
                                    let id = d.run_id.clone();
                                    let id_check = id.clone();
                                    let can = d.last_step.is_some();
                                    view! {
                                        <tr data-testid="dead-letter-row">
                                            <td data-label="Pick">
                                                <input type="checkbox" disabled=!can
                                                    prop:checked=move || selected.with(|s| s.contains(&id_check))
                                                    on:change=move |ev| {
                                                        let on = event_target_checked(&ev);
                                                        let id = id.clone();
                                                        selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                                                    }/>
                                            </td>
                                            <td data-label="Run"><a href=format!("/runs/{}", d.run_id)><code>{super::runs::short_id(&d.run_id)}</code></a></td>
                                            <td data-label="Failed step"><code>{d.last_step.clone().unwrap_or_else(|| "–".into())}</code></td>
                                            <td data-label="Reason">{d.reason.clone().unwrap_or_default()}</td>
                                            <td data-label="Failed">{d.failed_at.as_deref().map_or_else(|| "–".to_owned(), format::relative)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }
            }}
        </section>
    }
}
