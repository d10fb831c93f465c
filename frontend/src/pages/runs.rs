//! `/runs`: the project's runs, newest first, filtered by status, a page at
//! a time; `/runs/:id`: one run with its steps, output and event log, and
//! the cancel and resume-from-step actions.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::{self, projects::Project, runs};
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::project::with_project;

const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
];

/// The runs page.
#[component]
pub fn Runs() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Runs"</h1>
            <p class="page-lead">
                "Every webhook delivery and test run becomes a run. Open one to see each step's output and the full event log."
            </p>
        </div>
        {with_project(|project| view! { <RunList project=project/> }.into_any())}
    }
}

#[component]
fn RunList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let status = RwSignal::new(String::new());
    let cursor = RwSignal::new(None::<String>);
    let page = LocalResource::new(move || {
        let (pid, status, cursor) = (pid.get_value(), status.get(), cursor.get());
        async move { runs::list(&pid, &status, cursor.as_deref()).await }
    });
    let on_status = move |ev: leptos::ev::Event| {
        cursor.set(None);
        status.set(event_target_value(&ev));
    };
    view! {
        <section class="card">
            <div class="card-header">
                <label class="inline-field">
                    <span>"Status"</span>
                    <select data-testid="run-status-filter" on:change=on_status>
                        <option value="">"All"</option>
                        {STATUSES.map(|s| view! { <option value=s>{s}</option> }).collect_view()}
                    </select>
                </label>
                <div class="button-row">
                    <A href="/dead-letter" attr:class="button button-secondary button-small" attr:data-testid="to-dead-letter">
                        "Dead letters"
                    </A>
                    <button class="button button-secondary button-small" data-testid="runs-refresh"
                        on:click=move |_| page.refetch()>
                        "Refresh"
                    </button>
                </div>
            </div>
            {move || match page.get() {
                None => view! { <Loading label="Loading runs…"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorNotice error=error on_retry=move |()| page.refetch()/> }.into_any(),
                Some(Ok(p)) if p.items.is_empty() => view! {
                    <EmptyState title="No runs yet" test_id="runs-empty">
                        <p>"Publish a workflow and send a request to its webhook, or start a test run."</p>
                    </EmptyState>
                }.into_any(),
                Some(Ok(p)) => {
                    let next = p.next_cursor.clone();
                    view! {
                        <table class="table" data-testid="run-table">
                            <thead><tr>
                                <th>"Run"</th><th>"Status"</th><th>"Trigger"</th><th>"Version"</th><th>"Started"</th><th>"Finished"</th>
                            </tr></thead>
                            <tbody>
                                {p.items.into_iter().map(|r| {
                                    let short = short_id(&r.id);
                                    view! {
                                        <tr data-testid="run-row">
                                            <td data-label="Run"><A href=format!("/runs/{}", r.id)><code>{short}</code></A></td>
                                            <td data-label="Status"><span class=runs::badge(&r.status)>{r.status.clone()}</span></td>
                                            <td data-label="Trigger">{r.trigger_kind.clone()}</td>
                                            <td data-label="Version">{r.version.map_or_else(|| "draft".to_owned(), |v| format!("v{v}"))}</td>
                                            <td data-label="Started">{format::relative(&r.created_at)}</td>
                                            <td data-label="Finished">{r.finished_at.as_deref().map_or_else(|| "–".to_owned(), format::relative)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        {next.map(|c| view! {
                            <button class="button button-secondary" data-testid="runs-more"
                                on:click=move |_| cursor.set(Some(c.clone()))>
                                "Older runs"
                            </button>
                        })}
                    }.into_any()
                }
            }}
        </section>
    }
}

/// The random tail of a run id (UUIDv7 ids start with their time, so
/// runs made together share their first characters).
pub(crate) fn short_id(id: &str) -> String {
    let tail: String = id.chars().rev().take(12).collect();
    tail.chars().rev().collect()
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// The run page.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let run = LocalResource::new(move || {
        let id = id.get();
        async move { runs::fetch(&id).await }
    });
    let events = LocalResource::new(move || {
        let id = id.get();
        async move { runs::events(&id).await }
    });
    let refresh = move || {
        run.refetch();
        events.refetch();
    };
    // Follow an unfinished run until it ends.
    let ticker = set_interval_with_handle(
        move || {
            if run
                .get_untracked()
                .and_then(Result::ok)
                .is_some_and(|r| r.is_open())
            {
                refresh();
            }
        },
        std::time::Duration::from_secs(1),
    )
    .ok();
    on_cleanup(move || {
        if let Some(t) = ticker {
            t.clear();
        }
    });
    let action_error = RwSignal::new(None::<api::Error>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let cancel = move |_| {
        busy.set(true);
        spawn_local(async move {
            match runs::cancel(&id.get_untracked()).await {
                Ok(_) => action_error.set(None),
                Err(e) => action_error.set(Some(e)),
            }
            busy.set(false);
            refresh();
        });
    };
    let resume_from = RwSignal::new(String::new());
    let resume = move |_| {
        let node = resume_from.get_untracked();
        if node.is_empty() {
            return;
        }
        busy.set(true);
        let navigate = navigate.clone();
        spawn_local(async move {
            match runs::resume(&id.get_untracked(), &node).await {
                Ok(new_id) => {
                    action_error.set(None);
                    navigate(&format!("/runs/{new_id}"), Default::default());
                }
                Err(e) => action_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <p class="back-link"><A href="/runs">"← All runs"</A></p>
        {move || match run.get() {
            None => view! { <Loading label="Loading the run…"/> }.into_any(),
            Some(Err(error)) => view! {
                <div class="page-header"><h1 data-testid="page-title">"Run"</h1></div>
                <ErrorNotice error=error on_retry=move |()| run.refetch()/>
            }.into_any(),
            Some(Ok(r)) => {
                let nodes: Vec<String> = r.steps.iter().map(|s| s.node_id.clone()).collect();
                view! {
                    <div class="page-header page-header-row">
                        <h1 data-testid="page-title">"Run " <code title=r.id.clone()>{short_id(&r.id)}</code></h1>
                        <span class=runs::badge(&r.status) data-testid="run-status">{r.status.clone()}</span>
                    </div>
                    <section class="card">
                        <dl class="facts">
                            <div><dt>"Workflow"</dt><dd><A href=format!("/workflows/{}", r.workflow_id)>"open"</A></dd></div>
                            <div><dt>"Version"</dt><dd>{r.version.map_or_else(|| "draft".to_owned(), |v| format!("v{v}"))}</dd></div>
                            <div><dt>"Trigger"</dt><dd>{r.trigger_kind.clone()}</dd></div>
                            <div><dt>"Started"</dt><dd>{format::local(&r.created_at)}</dd></div>
                            <div><dt>"Finished"</dt><dd>{r.finished_at.as_deref().map_or_else(|| "–".to_owned(), format::local)}</dd></div>
                            {r.parent_run_id.clone().map(|p| view! {
                                <div><dt>"Resumed from"</dt><dd><A href=format!("/runs/{p}")><code>{short_id(&p)}</code></A></dd></div>
                            })}
                        </dl>
                        <div class="button-row">
                            {r.is_open().then(|| view! {
                                <button class="button button-danger button-small" data-testid="run-cancel"
                                    disabled=move || busy.get() on:click=cancel>"Cancel run"</button>
                            })}
                            {(!r.is_open() && !nodes.is_empty()).then(|| view! {
                                <label class="inline-field">
                                    <span>"Resume from"</span>
                                    <select data-testid="run-resume-node"
                                        on:change=move |ev| resume_from.set(event_target_value(&ev))>
                                        <option value="">"choose a step"</option>
                                        {nodes.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                                <button class="button button-secondary button-small" data-testid="run-resume"
                                    disabled=move || busy.get() || resume_from.get().is_empty() on:click=resume.clone()>
                                    "Resume"
                                </button>
                            })}
                        </div>
                        {move || action_error.get().map(|e| view! { <ErrorNotice error=e/> })}
                    </section>
                    <section class="card">
                        <h2 class="card-title">"Steps"</h2>
                        <table class="table" data-testid="step-table">
                            <thead><tr><th>"Step"</th><th>"Status"</th><th>"Attempts"</th><th>"Output"</th></tr></thead>
                            <tbody>
                                {r.steps.iter().map(|s| {
                                    let shown = s.error.clone().or_else(|| s.output.as_ref().map(pretty)).unwrap_or_default();
                                    view! {
                                        <tr data-testid="step-row">
                                            <td data-label="Step"><code>{s.node_id.clone()}</code></td>
                                            <td data-label="Status"><span class=runs::badge(&s.status)>{s.status.clone()}</span></td>
                                            <td data-label="Attempts">{s.attempts}</td>
                                            <td data-label="Output"><pre class="code-block code-small">{shown}</pre></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <section class="card">
                        <h2 class="card-title">"Trigger and result"</h2>
                        <details><summary>"Trigger"</summary><pre class="code-block" data-testid="run-trigger">{pretty(&r.trigger)}</pre></details>
                        {r.output.as_ref().map(|o| view! { <h3>"Output"</h3><pre class="code-block" data-testid="run-output">{pretty(o)}</pre> })}
                        {r.error.as_ref().map(|e| view! { <h3>"Error"</h3><pre class="code-block" data-testid="run-error">{pretty(e)}</pre> })}
                    </section>
                }.into_any()
            }
        }}
        <section class="card">
            <h2 class="card-title">"Event log"</h2>
            {move || match events.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Err(error)) => view! { <ErrorNotice error=error/> }.into_any(),
                Some(Ok(list)) => view! {
                    <ol class="timeline" data-testid="event-log">
                        {list.into_iter().map(|e| view! {
                            <li data-testid="event">
                                <details>
                                    <summary><span class="timeline-seq">{e.seq}</span>" "<code>{e.kind.clone()}</code>" · "{format::local(&e.at)}</summary>
                                    <pre class="code-block code-small">{pretty(&e.data)}</pre>
                                </details>
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any(),
            }}
        </section>
    }
}
