//! `/runs`: the project's runs, newest first, filtered by status, a page at
//! a time; `/runs/:id`: one run with its steps, output and event log, and
//! the cancel and resume-from-step actions.

use leptos::prelude::*;
use leptos::task::spawn_local;

use send_wrapper::SendWrapper;

use crate::api::{self, live, projects::Project, runs};
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::editor::run_dag::RunDag;
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;
use crate::router;
use crate::timeline;

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

/// The "Since" filter's choices: label and hours back (0: any time).
const SINCE: [(&str, u32); 4] = [
    ("Any time", 0),
    ("Last hour", 1),
    ("Last 24 hours", 24),
    ("Last 7 days", 24 * 7),
];

/// `hours` before now as RFC 3339 (empty for 0: no bound).
fn hours_ago(hours: u32) -> String {
    if hours == 0 {
        return String::new();
    }
    let now = js_sys::Date::now();
    let then = js_sys::Date::new(&(now - f64::from(hours) * 3_600_000.0).into());
    then.to_iso_string().into()
}

#[component]
fn RunList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    // `?status=failed&workflow_id=...` (links from the metrics page).
    let location = crate::router::use_location();
    let from_query = move |key: &str| location.param_untracked(key).unwrap_or_default();
    let status = RwSignal::new(from_query("status"));
    let workflow = RwSignal::new(from_query("workflow_id"));
    let since_hours = RwSignal::new(0_u32);
    let cursor = RwSignal::new(None::<String>);
    let page = RwSignal::new(None::<Result<runs::RunPage, api::Error>>);
    // Answers to superseded requests are dropped.
    let generation = StoredValue::new(0_u64);
    // Reads the page for the current filters; `quiet` (a live refresh)
    // keeps the rows shown until the answer is there, and keeps them when
    // the refresh fails.
    let load = move |quiet: bool| {
        let filters = runs::Filters {
            status: status.get_untracked(),
            workflow: workflow.get_untracked(),
            since: hours_ago(since_hours.get_untracked()),
        };
        let at = cursor.get_untracked();
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        if !quiet {
            page.set(None);
        }
        spawn_local(async move {
            let answer = runs::list(&pid.get_value(), &filters, at.as_deref()).await;
            if generation.get_value() != mine || (quiet && answer.is_err()) {
                return;
            }
            page.set(Some(answer));
        });
    };
    Effect::new(move |_| {
        status.track();
        workflow.track();
        since_hours.track();
        cursor.track();
        load(false);
    });
    // Live rows: the project feed says which runs moved; the first page
    // re-reads on any of them (new runs appear on top), later pages when
    // one of their rows moved — at most about once a second.
    let live_state = RwSignal::new(None::<live::State>);
    let reload_due = StoredValue::new(false);
    let on_frames = move |frames: Vec<live::Frame>| {
        let relevant = cursor.get_untracked().is_none()
            || page.with_untracked(|p| match p {
                Some(Ok(p)) => frames
                    .iter()
                    .any(|f| p.items.iter().any(|r| r.id == f.run_id)),
                _ => false,
            });
        if !relevant || reload_due.get_value() {
            return;
        }
        reload_due.set_value(true);
        set_timeout(
            move || {
                reload_due.set_value(false);
                load(true);
            },
            std::time::Duration::from_millis(900),
        );
    };
    let feed = live::Live::open(
        move || format!("/api/v1/projects/{}/live", pid.get_value()),
        on_frames,
        move |s| live_state.set(Some(s)),
    );
    let feed = StoredValue::new(Some(SendWrapper::new(feed)));
    on_cleanup(move || feed.update_value(|f| drop(f.take())));

    let on_status = move |ev: leptos::ev::Event| {
        cursor.set(None);
        status.set(event_target_value(&ev));
    };
    let on_since = move |ev: leptos::ev::Event| {
        cursor.set(None);
        since_hours.set(event_target_value(&ev).parse().unwrap_or(0));
    };
    view! {
        <section class="card">
            <div class="card-header">
                <label class="inline-field">
                    <span>"Status"</span>
                    <select data-testid="run-status-filter" on:change=on_status>
                        <option value="">"All"</option>
                        {STATUSES.map(|s| view! { <option value=s selected={status.get_untracked() == s}>{s}</option> }).collect_view()}
                    </select>
                </label>
                <label class="inline-field">
                    <span>"Since"</span>
                    <select data-testid="run-since-filter" on:change=on_since>
                        {SINCE.map(|(label, hours)| view! { <option value=hours.to_string()>{label}</option> }).collect_view()}
                    </select>
                </label>
                <Show when=move || !workflow.get().is_empty()>
                    <button class="button button-secondary button-small" data-testid="runs-workflow-filter"
                        title="Show every workflow's runs"
                        on:click=move |_| { cursor.set(None); workflow.set(String::new()); }>
                        "One workflow ×"
                    </button>
                </Show>
                <div class="button-row">
                    <LiveBadge state=live_state/>
                    <a href="/dead-letter" class="button button-secondary button-small" data-testid="to-dead-letter">
                        "Dead letters"
                    </a>
                    <button class="button button-secondary button-small" data-testid="runs-refresh"
                        on:click=move |_| load(false)>
                        "Refresh"
                    </button>
                </div>
            </div>
            {move || match page.get() {
                None => view! { <Loading label="Loading runs…"/> }.into_any(),
                Some(Err(error)) => view! { <ErrorNotice error=error on_retry=move |()| load(false)/> }.into_any(),
                Some(Ok(p)) if p.items.is_empty() => view! {
                    <EmptyState title="No runs yet" test_id="runs-empty">
                        <p>"Publish a workflow and send a request to its webhook, or start a test run. New runs appear here as they start."</p>
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
                                        <tr data-testid="run-row" data-run-id=r.id.clone() data-status=r.status.clone()>
                                            <td data-label="Run"><a href=format!("/runs/{}", r.id)><code>{short}</code></a></td>
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
                        <div class="button-row">
                            {cursor.get_untracked().is_some().then(|| view! {
                                <button class="button button-secondary" data-testid="runs-newest"
                                    on:click=move |_| cursor.set(None)>
                                    "Newest runs"
                                </button>
                            })}
                            {next.map(|c| view! {
                                <button class="button button-secondary" data-testid="runs-more"
                                    on:click=move |_| cursor.set(Some(c.clone()))>
                                    "Older runs"
                                </button>
                            })}
                        </div>
                    }.into_any()
                }
            }}
        </section>
    }
}

/// Where a live feed is, as a small badge.
#[component]
fn LiveBadge(state: RwSignal<Option<live::State>>) -> impl IntoView {
    move || {
        state.get().map(|s| {
            let class = match s {
                live::State::Live => "badge badge-ok live-badge",
                live::State::Closed => "badge live-badge",
                _ => "badge badge-off live-badge",
            };
            view! {
                <span class=class data-testid="live-state" data-state=s.label()
                    title="Updates arrive over the live feed as events are recorded">
                    {s.label()}
                </span>
            }
        })
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
    let id = crate::router::use_id();
    let run = Fetch::new(move || {
        let id = id.get();
        async move { runs::fetch(&id).await }
    });
    // The event log: read once, then followed over the run's live feed
    // (resuming after its last seq) until the run ends.
    let events = RwSignal::new(None::<Result<Vec<runs::Event>, api::Error>>);
    let live_state = RwSignal::new(None::<live::State>);
    let feed = StoredValue::new(None::<SendWrapper<live::Live>>);
    let stop_feed = move || feed.update_value(|f| drop(f.take()));
    Effect::new(move |_| {
        let wanted = id.get();
        stop_feed();
        events.set(None);
        live_state.set(None);
        spawn_local(async move {
            let answer = runs::events(&wanted).await;
            if id.get_untracked() != wanted {
                return;
            }
            let ended =
                matches!(&answer, Ok(list) if list.last().is_some_and(|e| runs::ends_run(&e.kind)));
            events.set(Some(answer));
            // The run may have moved since it was read (a fast run can end
            // before its log is read, and then no frame would follow).
            run.refetch();
            if !ended {
                let follow = follow_run(wanted, events, live_state, run, feed);
                feed.set_value(Some(SendWrapper::new(follow)));
            }
        });
    });
    on_cleanup(stop_feed);
    // Loading, failed or there: the timeline's frame re-renders only when
    // this changes; its rows are keyed by seq, so new events only append.
    let log_status =
        Memo::new(move |_| events.with(|e| e.as_ref().map(|r| r.as_ref().err().cloned())));
    let refresh = move || run.refetch();
    let action_error = RwSignal::new(None::<api::Error>);
    let busy = RwSignal::new(false);
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
    // The node picked on the DAG, in the step table or the resume list.
    let picked = RwSignal::new(None::<String>);
    let start_from = move |node: String| {
        busy.set(true);
        spawn_local(async move {
            match runs::resume(&id.get_untracked(), &node).await {
                Ok(new_id) => {
                    action_error.set(None);
                    router::navigate(&format!("/runs/{new_id}"), false);
                }
                Err(e) => action_error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let resume = {
        move |_| {
            if let Some(node) = picked.get_untracked() {
                start_from(node);
            }
        }
    };
    // Rerun: the same trigger and version, from the entry node.
    let entry = RwSignal::new(None::<String>);
    let rerun = move |_| {
        let entry = entry.get_untracked().or_else(|| {
            events
                .get_untracked()
                .and_then(Result::ok)
                .and_then(|list| {
                    list.iter()
                        .find(|e| e.kind == "step_started")
                        .and_then(|e| {
                            e.data
                                .get("node_id")
                                .and_then(serde_json::Value::as_str)
                                .map(str::to_owned)
                        })
                })
        });
        match entry {
            Some(node) => start_from(node),
            None => action_error.set(Some(api::Error::Status {
                status: 409,
                code: None,
                detail: "This run never started a step, so there is nothing to rerun.".into(),
            })),
        }
    };
    let replay = RwSignal::new(None::<Result<runs::Replay, api::Error>>);
    let check_replay = move |_| {
        replay.set(None);
        spawn_local(async move {
            replay.set(Some(runs::replay(&id.get_untracked()).await));
        });
    };
    let steps = Signal::derive(move || {
        run.get()
            .and_then(Result::ok)
            .map(|r| r.steps)
            .unwrap_or_default()
    });
    let dag_of = Memo::new(move |_| {
        run.get()
            .and_then(Result::ok)
            .map(|r| (r.workflow_id, r.version))
    });

    view! {
        <p class="back-link"><a href="/runs">"← All runs"</a></p>
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
                            <div><dt>"Workflow"</dt><dd><a href=format!("/workflows/{}", r.workflow_id)>"open"</a></dd></div>
                            <div><dt>"Version"</dt><dd>{r.version.map_or_else(|| "draft".to_owned(), |v| format!("v{v}"))}</dd></div>
                            <div><dt>"Trigger"</dt><dd>{r.trigger_kind.clone()}</dd></div>
                            <div><dt>"Started"</dt><dd>{format::local(&r.created_at)}</dd></div>
                            <div><dt>"Finished"</dt><dd>{r.finished_at.as_deref().map_or_else(|| "–".to_owned(), format::local)}</dd></div>
                            {r.parent_run_id.clone().map(|p| view! {
                                <div><dt>"Resumed from"</dt><dd><a href=format!("/runs/{p}")><code>{short_id(&p)}</code></a></dd></div>
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
                                        prop:value=move || picked.get().unwrap_or_default()
                                        on:change=move |ev| {
                                            let v = event_target_value(&ev);
                                            picked.set((!v.is_empty()).then_some(v));
                                        }>
                                        <option value="">"choose a step (or click it on the DAG)"</option>
                                        {nodes.iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                                    </select>
                                </label>
                                <button class="button button-secondary button-small" data-testid="run-resume"
                                    disabled=move || busy.get() || picked.get().is_none() on:click=resume>
                                    {move || picked.get().map_or_else(|| "Resume".to_owned(), |n| format!("Resume from {n}"))}
                                </button>
                                <button class="button button-secondary button-small" data-testid="run-rerun"
                                    title="A new run with the same payload and version"
                                    disabled=move || busy.get() on:click=rerun>"Rerun"</button>
                            })}
                            <button class="button button-secondary button-small" data-testid="run-replay"
                                title="Re-run every decision of this run's log and compare"
                                on:click=check_replay>"Replay check"</button>
                        </div>
                        {move || replay.get().map(|r| match r {
                            Ok(r) if r.deterministic => view! {
                                <p class="notice notice-ok" data-testid="replay-result">"Deterministic: replaying the log makes the same decisions."</p>
                            }.into_any(),
                            Ok(r) => view! {
                                <div class="notice notice-error" data-testid="replay-result">
                                    <p>"Not deterministic:"</p>
                                    <ul>{r.mismatches.into_iter().map(|m| view! { <li><code>{m}</code></li> }).collect_view()}</ul>
                                </div>
                            }.into_any(),
                            Err(e) => view! { <ErrorNotice error=e/> }.into_any(),
                        })}
                        {move || action_error.get().map(|e| view! { <ErrorNotice error=e/> })}
                    </section>
                }.into_any()
            }
        }}
        {move || dag_of.get().map(|(wid, version)| view! {
            <section class="card">
                <h2 class="card-title">"Workflow"</h2>
                <RunDag workflow_id=wid version=version steps=steps picked=picked entry=entry/>
            </section>
        })}
        {move || picked.get().map(|node| view! { <StepDetail node=node run=run events=events/> })}
        {move || match run.get() {
            Some(Ok(r)) => {
                view! {
                    <section class="card">
                        <h2 class="card-title">"Steps"</h2>
                        <p class="card-footnote">"Click a step (here or on the DAG) to see its detail and to resume from it."</p>
                        <table class="table" data-testid="step-table">
                            <thead><tr><th>"Step"</th><th>"Status"</th><th>"Attempts"</th><th>"Output"</th></tr></thead>
                            <tbody>
                                {r.steps.iter().map(|s| {
                                    let shown = s.error.clone().or_else(|| s.output.as_ref().map(pretty)).unwrap_or_default();
                                    view! {
                                        <tr data-testid="step-row" class="clickable" class:picked={
                                            let n = s.node_id.clone();
                                            move || picked.get().as_deref() == Some(n.as_str())
                                        } on:click={
                                            let n = s.node_id.clone();
                                            move |_| picked.set(Some(n.clone()))
                                        }>
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
            _ => ().into_any(),
        }}
        <section class="card">
            <div class="card-header">
                <h2 class="card-title">"Timeline"</h2>
                <LiveBadge state=live_state/>
            </div>
            {move || match log_status.get() {
                None => view! { <Loading/> }.into_any(),
                Some(Some(error)) => view! { <ErrorNotice error=error/> }.into_any(),
                Some(None) => view! {
                    <ol class="timeline" data-testid="event-log">
                        <For each=move || {
                            events.with(|e| match e {
                                Some(Ok(list)) => timeline::rows(list),
                                _ => Vec::new(),
                            })
                        } key=|e| e.seq let:e>
                            <li data-testid="event" data-seq=e.seq>
                                <details>
                                    <summary>
                                        <span class="timeline-seq">{e.seq}</span>" "
                                        <span class="timeline-offset" title=format::local(&e.at)>
                                            {e.offset_ms.map(|o| format!("+{}", timeline::duration(o))).unwrap_or_default()}
                                        </span>" "
                                        <code>{e.kind.clone()}</code>
                                        {e.node.clone().map(|n| view! { " · "<span class="timeline-node">{n}</span> })}
                                        {e.attempt.map(|a| view! { " · attempt "{a} })}
                                        {e.duration_ms.map(|d| view! { " · "<span class="timeline-duration" data-testid="event-duration">{timeline::duration(d)}</span> })}
                                    </summary>
                                    <p class="field-help">{format::local(&e.at)}</p>
                                    <pre class="code-block code-small">{pretty(&e.data)}</pre>
                                </details>
                            </li>
                        </For>
                    </ol>
                }.into_any(),
            }}
        </section>
    }
}

/// Follows run `id`'s live feed from the last event in `events`: appends
/// the frames that continue the log (reading the log again after a gap),
/// re-reads the run so its steps and status move, and stops after the
/// event that ends the run.
fn follow_run(
    id: String,
    events: RwSignal<Option<Result<Vec<runs::Event>, api::Error>>>,
    live_state: RwSignal<Option<live::State>>,
    run: Fetch<Result<runs::Run, api::Error>>,
    feed: StoredValue<Option<SendWrapper<live::Live>>>,
) -> live::Live {
    let last_seq = move || {
        events.with_untracked(|e| match e {
            Some(Ok(list)) => list.last().map_or(0, |e| e.seq),
            _ => 0,
        })
    };
    let path = {
        let id = id.clone();
        move || format!("/api/v1/runs/{id}/live?after={}", last_seq())
    };
    let on_frames = move |frames: Vec<live::Frame>| {
        match live::continuation(last_seq(), &frames) {
            Some(new) if new.is_empty() => return,
            Some(new) => {
                let ended = new.iter().any(|f| runs::ends_run(&f.kind));
                let new: Vec<runs::Event> = new
                    .into_iter()
                    .cloned()
                    .map(live::Frame::into_event)
                    .collect();
                events.update(|e| {
                    if let Some(Ok(list)) = e {
                        list.extend(new);
                    }
                });
                if ended {
                    // Nothing follows the run's last event.
                    feed.update_value(|f| drop(f.take()));
                    live_state.set(None);
                }
            }
            None => {
                let id = id.clone();
                spawn_local(async move {
                    if let Ok(list) = runs::events(&id).await {
                        events.set(Some(Ok(list)));
                    }
                });
            }
        }
        run.refetch();
    };
    live::Live::open(path, on_frames, move |s| live_state.set(Some(s)))
}

/// The picked step: status, output or error, and its HTTP exchanges.
#[component]
fn StepDetail(
    node: String,
    run: Fetch<Result<runs::Run, api::Error>>,
    events: RwSignal<Option<Result<Vec<runs::Event>, api::Error>>>,
) -> impl IntoView {
    let n = node.clone();
    let step = move || {
        run.get()
            .and_then(Result::ok)
            .and_then(|r| r.steps.into_iter().find(|s| s.node_id == n))
    };
    let n = node.clone();
    let input = move || {
        let r = run.get()?.ok()?;
        events.with(|e| match e {
            Some(Ok(list)) => timeline::input_of(
                list,
                &n,
                &r.trigger,
                serde_json::json!({"id": r.id, "workflow_id": r.workflow_id, "version": r.version}),
            ),
            _ => None,
        })
    };
    let n = node.clone();
    let exchanges = move || {
        events
            .get()
            .and_then(Result::ok)
            .map(|list| timeline::exchanges(&list, &n))
            .unwrap_or_default()
    };
    view! {
        <section class="card" data-testid="step-detail">
            <h2 class="card-title">"Step "<code>{node.clone()}</code></h2>
            {move || match step() {
                None => view! { <p class="panel-hint">"Not reached (yet)."</p> }.into_any(),
                Some(s) => view! {
                    <dl class="facts">
                        <div><dt>"Status"</dt><dd><span class=runs::badge(&s.status) data-testid="step-detail-status">{s.status.clone()}</span></dd></div>
                        <div><dt>"Attempts"</dt><dd>{s.attempts}</dd></div>
                        <div><dt>"Started"</dt><dd>{s.started_at.as_deref().map_or_else(|| "–".to_owned(), format::local)}</dd></div>
                        <div><dt>"Finished"</dt><dd>{s.finished_at.as_deref().map_or_else(|| "–".to_owned(), format::local)}</dd></div>
                    </dl>
                    {input().map(|i| view! {
                        <details data-testid="step-detail-input">
                            <summary>"Input (the run context it saw)"</summary>
                            <pre class="code-block code-small">{pretty(&i)}</pre>
                        </details>
                    })}
                    {s.error.clone().map(|e| view! { <h3>"Error"</h3><pre class="code-block" data-testid="step-detail-error">{e}</pre> })}
                    {s.output.as_ref().map(|o| view! { <h3>"Output"</h3><pre class="code-block" data-testid="step-detail-output">{pretty(o)}</pre> })}
                }.into_any(),
            }}
            {move || {
                let list = exchanges();
                (!list.is_empty()).then(|| view! {
                    <h3>"HTTP"</h3>
                    {list.into_iter().map(|x| view! {
                        <div class="exchange" data-testid="http-exchange">
                            <h4>{format!("Attempt {}", x.attempt)}</h4>
                            <div class="exchange-grid">
                                <div>
                                    <h5>"Request"</h5>
                                    <pre class="code-block code-small" data-testid="http-request">{x.request.as_ref().map(pretty).unwrap_or_else(|| "—".into())}</pre>
                                </div>
                                <div>
                                    <h5>{if x.failure.is_some() { "Failure" } else { "Response" }}</h5>
                                    <pre class="code-block code-small" data-testid="http-response">
                                        {x.response.as_ref().or(x.failure.as_ref()).map(pretty).unwrap_or_else(|| "waiting…".into())}
                                    </pre>
                                </div>
                            </div>
                        </div>
                    }).collect_view()}
                })
            }}
        </section>
    }
}
