//! `/insights` ("Metrics"; `/metrics` is the server's Prometheus endpoint):
//! how the project's runs went over the last hour, day or week — headline
//! numbers, the success rate over time, step latency p50/p95 per node and
//! the nodes that failed runs, for all workflows or one.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::metrics::{self, Bucket, Metrics, WINDOWS};
use crate::api::projects::Project;
use crate::api::workflows::{self, Workflow};
use crate::components::chart::{LatencyBar, RateChart, RatePoint};
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::project::with_project;

/// Rows shown in the latency and failure lists.
const TOP: usize = 10;
const HOUR_MS: f64 = 3_600_000.0;

/// The metrics page.
#[component]
pub fn Insights() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Metrics"</h1>
            <p class="page-lead">"How runs went: success rate over time, slow steps and the nodes that fail runs."</p>
        </div>
        {with_project(|project| view! { <Dashboard project=project/> }.into_any())}
    }
}

/// The project's workflows, for names and node types.
struct Names(Vec<Workflow>);

impl Names {
    fn name(&self, id: &str) -> String {
        self.0
            .iter()
            .find(|w| w.id == id)
            .map_or_else(|| super::runs::short_id(id), |w| w.name.clone())
    }

    /// The type of `node` in the workflow's draft, if it is still there.
    fn node_type(&self, workflow: &str, node: &str) -> Option<String> {
        let w = self.0.iter().find(|w| w.id == workflow)?;
        w.definition["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["id"] == node)?["type"]
            .as_str()
            .map(str::to_owned)
    }
}

#[component]
fn Dashboard(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let window = RwSignal::new("24h");
    let only = RwSignal::new(String::new());
    let data = LocalResource::new(move || {
        let (pid, w) = (pid.get_value(), window.get());
        async move { metrics::fetch(&pid, w).await }
    });
    let flows = LocalResource::new(move || {
        let pid = pid.get_value();
        async move { workflows::list(&pid).await }
    });
    let names = Memo::new(move |_| {
        flows
            .get()
            .and_then(Result::ok)
            .map(|list| list.into_iter().map(|w| (w.id, w.name)).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    view! {
        <div class="toolbar">
            <div class="segmented" role="group" aria-label="Window">
                {WINDOWS.map(|w| view! {
                    <button type="button" class="segment" data-testid=format!("window-{w}")
                        aria-pressed=move || (window.get() == w).to_string()
                        on:click=move |_| window.set(w)>{w}</button>
                }).collect_view()}
            </div>
            <label class="inline-field">
                <span>"Workflow"</span>
                <select class="select" data-testid="metrics-workflow" on:change=move |ev| only.set(event_target_value(&ev))>
                    <option value="">"All workflows"</option>
                    {move || names.get().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                </select>
            </label>
            <button type="button" class="button button-secondary button-small" data-testid="metrics-refresh"
                on:click=move |_| data.refetch()>"Refresh"</button>
        </div>
        {move || match data.get() {
            None => view! { <Loading label="Loading metrics…"/> }.into_any(),
            Some(Err(e)) => view! { <ErrorNotice error=e on_retry=move |()| data.refetch()/> }.into_any(),
            Some(Ok(m)) => {
                let list = flows.get().and_then(Result::ok).unwrap_or_default();
                report(m, &only.get(), &Names(list))
            }
        }}
        <p class="card-footnote">"Figures come from views the server refreshes every minute or so; “now” figures are live."</p>
    }
}

/// The page body for one answer, all workflows or only `only`'s.
fn report(m: Metrics, only: &str, names: &Names) -> AnyView {
    let (buckets, s, f, c) = if only.is_empty() {
        let t = m.workflows.iter().fold((0, 0, 0), |a, w| {
            (a.0 + w.succeeded, a.1 + w.failed, a.2 + w.cancelled)
        });
        (m.success_rate, t.0, t.1, t.2)
    } else {
        match m.workflows.into_iter().find(|w| w.workflow_id == only) {
            Some(w) => (w.buckets, w.succeeded, w.failed, w.cancelled),
            None => (Vec::new(), 0, 0, 0),
        }
    };
    let finished = s + f + c;
    let unfinished: i64 = m.current.runs.values().sum();
    let now_note = m
        .current
        .runs
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let stats = view! {
        <div class="stats" data-testid="metrics-stats">
            <Stat label="Success rate" id="metrics-success-rate"
                value={if finished > 0 { format::percent(s as f64 / finished as f64) } else { "–".into() }}
                note=format!("{s} of {finished} finished runs")/>
            <Stat label="Finished runs" id="metrics-finished" value=finished.to_string()
                note=format!("in the last {}", m.window)/>
            <Stat label="Failed" id="metrics-failed" value=f.to_string()
                note={if c > 0 { format!("and {c} cancelled") } else { String::new() }}/>
            <Stat label="Unfinished now" id="metrics-unfinished" value=unfinished.to_string() note=now_note/>
            <Stat label="Queue lag" id="metrics-queue-lag"
                value={m.current.oldest_queued_s.map_or_else(|| "–".into(), format::duration)}
                note="oldest queued run"/>
        </div>
    };
    if finished == 0 {
        return view! {
            {stats}
            <EmptyState title="No runs in this window" test_id="metrics-empty">
                <p>"Runs show up here once they finish. Pick a longer window, or send a request to a published workflow's webhook."</p>
            </EmptyState>
        }
        .into_any();
    }

    let (hours, from) = metrics::window_hours(&m.window);
    let points = rate_points(&buckets, js_sys::Date::now(), hours);
    let latency: Vec<_> = m
        .latency
        .into_iter()
        .filter(|l| only.is_empty() || l.workflow_id == only)
        .take(TOP)
        .collect();
    let slowest = latency.iter().map(|l| l.p95_ms).fold(0.0, f64::max);
    let failures: Vec<_> = m
        .failures
        .into_iter()
        .filter(|x| only.is_empty() || x.workflow_id == only)
        .take(TOP)
        .collect();
    let most = failures
        .iter()
        .map(|x| x.failures)
        .max()
        .unwrap_or(1)
        .max(1);
    view! {
        {stats}
        <section class="card">
            <div class="card-header">
                <h2 class="card-title">"Success rate over time"</h2>
                <span class="chart-legend"><i class="key key-rate"></i>"success rate"<i class="key key-runs"></i>"runs"<i class="key key-failed"></i>"failed"</span>
            </div>
            <RateChart points=points slots={hours.ceil() + 1.0} from=from/>
        </section>
        <div class="grid metrics-grid">
            <section class="card" data-testid="latency">
                <div class="card-header">
                    <h2 class="card-title">"Step latency"</h2>
                    <span class="chart-legend"><i class="key key-p50"></i>"p50"<i class="key key-p95"></i>"p95"</span>
                </div>
                {if latency.is_empty() {
                    view! { <p class="muted">"No steps finished in this window."</p> }.into_any()
                } else {
                    view! {
                        <ul class="bars" data-testid="latency-chart">
                            {latency.into_iter().map(|l| {
                                let kind = names.node_type(&l.workflow_id, &l.node_id).unwrap_or_default();
                                let title = format!("{} steps, {} failed, max {}", l.steps, l.failed, format::latency(l.max_ms));
                                view! {
                                    <li class="bar-row" data-testid="latency-row" title=title>
                                        <span class="bar-label">
                                            <code>{l.node_id}</code>" "
                                            <span class="muted">{kind}" · "{names.name(&l.workflow_id)}</span>
                                        </span>
                                        <LatencyBar p50=l.p50_ms p95=l.p95_ms max=slowest/>
                                        <span class="bar-value">{format::latency(l.p50_ms)}" / "{format::latency(l.p95_ms)}</span>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
            <section class="card" data-testid="failures">
                <h2 class="card-title">"Failures by node"</h2>
                {if failures.is_empty() {
                    view! { <p class="muted" data-testid="failures-empty">"No failed runs in this window."</p> }.into_any()
                } else {
                    view! {
                        <ul class="bars" data-testid="failure-list">
                            {failures.into_iter().map(|x| {
                                let href = format!("/runs?status=failed&workflow_id={}", x.workflow_id);
                                let share = x.failures as f64 / most as f64 * 100.0;
                                view! {
                                    <li class="bar-row" data-testid="failure-row">
                                        <span class="bar-label">
                                            <code>{x.node_id.unwrap_or_else(|| "(no node)".into())}</code>" "
                                            <span class="muted">{names.name(&x.workflow_id)}" · "{format::relative(&x.last_failed_at)}</span>
                                        </span>
                                        <span class="bar-track"><span class="bar-fill" style=format!("width:{share:.1}%")></span></span>
                                        <A href=href attr:class="bar-value" attr:data-testid="failure-runs">
                                            {format!("{} failed →", x.failures)}
                                        </A>
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </section>
        </div>
    }
    .into_any()
}

/// A headline number.
#[component]
fn Stat(
    label: &'static str,
    id: &'static str,
    #[prop(into)] value: String,
    #[prop(into)] note: String,
) -> impl IntoView {
    view! {
        <div class="stat">
            <span class="stat-label">{label}</span>
            <span class="stat-value" data-testid=id>{value}</span>
            <span class="stat-note">{note}</span>
        </div>
    }
}

/// The chart's points: each hour placed at its middle within the window
/// (`hours` long, ending at `now` in ms), from its first whole hour.
fn rate_points(buckets: &[Bucket], now: f64, hours: f64) -> Vec<RatePoint> {
    let start = ((now - hours * HOUR_MS) / HOUR_MS).floor() * HOUR_MS;
    let slots = hours.ceil() + 1.0;
    buckets
        .iter()
        .filter_map(|b| {
            let at = format::millis(&b.bucket)?;
            let local = format::local(&b.bucket);
            Some(RatePoint {
                x: (at - start + HOUR_MS / 2.0) / (slots * HOUR_MS),
                rate: b.success_rate,
                finished: b.finished(),
                failed: b.failed,
                label: format!(
                    "{}:00 · {} of {} succeeded ({}), {} failed",
                    local.get(..13).unwrap_or(&local),
                    b.succeeded,
                    b.finished(),
                    format::percent(b.success_rate),
                    b.failed
                ),
            })
        })
        .collect()
}
