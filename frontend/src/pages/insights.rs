//! `/insights` ("Metrics"; `/metrics` is the server's Prometheus endpoint):
//! how the project's runs went over the last hour, day or week — headline
//! numbers, the success rate over time, step latency p50/p95 per node and
//! the nodes that failed runs, for all workflows or one.
//!
//! The toolbar and the body are escaped HTML strings with one delegated
//! click handler: static once drawn, and typed views of the same markup
//! cost about 25 KB of gzipped wasm (the SPA's budget is 500 KB).

use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;

use crate::api::metrics::{self, WINDOWS};
use crate::api::projects::Project;
use crate::api::workflows::{self, Workflow};
use crate::components::chart::{RatePoint, latency_bar, rate_chart};
use crate::components::status::{error_html, loading_html};
use crate::format::{self, html};
use crate::load::{Generations, Loaded, load};
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

/// How often the page reloads its figures on its own.
const AUTO_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

#[component]
fn Dashboard(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let window = RwSignal::new("24h".to_owned());
    let only = RwSignal::new(String::new());
    let data: Loaded<Value> = RwSignal::new(None);
    let flows: Loaded<Vec<Workflow>> = RwSignal::new(None);
    // Reloads in place: the figures shown stay until the new ones are in,
    // and an answer is dropped when a newer load started meanwhile (the
    // window may have changed).
    let loads = StoredValue::new_local(Generations::default());
    let reload = move || {
        let call = metrics::fetch(pid.get_value(), window.get_untracked());
        loads.with_value(|loads| loads.load(data, call));
    };
    let fetch = move || {
        data.set(None);
        reload();
    };
    fetch();
    // The server refreshes its views about once a minute: follow them.
    if let Ok(handle) = set_interval_with_handle(reload, AUTO_REFRESH) {
        on_cleanup(move || handle.clear());
    }
    load(
        flows,
        async move { workflows::list(&pid.get_value()).await },
    );
    let toolbar = move || flows.with(|f| window.with(|w| only.with(|o| toolbar(w, o, ok(f)))));
    let body = move || {
        data.with(|d| match d {
            None => loading_html("Loading metrics…"),
            Some(Err(e)) => error_html(e, true),
            Some(Ok(m)) => flows.with(|f| only.with(|o| report(m, o, ok(f)))),
        })
    };
    // One handler for every button (`data-action`, `data-window`) and one
    // for the workflow filter.
    let on_click = move |ev: leptos::ev::MouseEvent| {
        let Some(button) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("[data-action]").ok().flatten())
        else {
            return;
        };
        if let Some(w) = button.get_attribute("data-window") {
            window.set(w);
        }
        if button.get_attribute("data-action").is_some() {
            fetch();
        }
    };
    view! {
        <div on:click=on_click on:change=move |ev| only.set(event_target_value(&ev))>
            <div class="toolbar" inner_html=toolbar></div>
            <div inner_html=body></div>
            <p class="card-footnote">"Figures come from views the server refreshes every minute or so; this page reloads them every minute. “Now” figures are live."</p>
        </div>
    }
}

/// The loaded workflows, none while loading or failed.
fn ok(flows: &Option<Result<Vec<Workflow>, crate::api::Error>>) -> &[Workflow] {
    flows
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map_or(&[], Vec::as_slice)
}

/// The window buttons, the workflow filter and "Refresh".
fn toolbar(window: &str, only: &str, flows: &[Workflow]) -> String {
    let buttons: String = WINDOWS
        .iter()
        .map(|w| {
            format!(
                r#"<button type="button" class="segment" data-action="window" data-window="{w}" data-testid="window-{w}" aria-pressed="{}">{w}</button>"#,
                *w == window
            )
        })
        .collect();
    let options: String = flows
        .iter()
        .map(|w| {
            format!(
                r#"<option value="{}"{}>{}</option>"#,
                html(&w.id),
                if w.id == only { " selected" } else { "" },
                html(&w.name)
            )
        })
        .collect();
    format!(
        r#"<div class="segmented" role="group" aria-label="Window">{buttons}</div><label class="inline-field"><span>Workflow</span><select class="select" data-testid="metrics-workflow"><option value="">All workflows</option>{options}</select></label><button type="button" class="button button-secondary" data-action="refresh" data-testid="metrics-refresh">Refresh</button>"#
    )
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// A workflow's name (its id's tail when unknown).
fn name(flows: &[Workflow], id: &str) -> String {
    flows
        .iter()
        .find(|w| w.id == id)
        .map_or_else(|| super::runs::short_id(id), |w| w.name.clone())
}

/// The type of `node` in the workflow's draft, if it is still there.
fn node_type<'a>(flows: &'a [Workflow], workflow: &str, node: &str) -> &'a str {
    flows
        .iter()
        .find(|w| w.id == workflow)
        .and_then(|w| {
            list(&w.definition["nodes"])
                .iter()
                .find(|n| n["id"] == node)
        })
        .map_or("", |n| text(&n["type"]))
}

/// A step latency; `<1 ms` for steps that ran within the process.
fn ms_text(ms: f64) -> String {
    if ms < 1.0 {
        "<1 ms".to_owned()
    } else {
        format::latency(ms)
    }
}

/// Finished runs: `(succeeded, failed, cancelled)`.
fn counts(v: &Value) -> (i64, i64, i64) {
    (
        int(&v["succeeded"]),
        int(&v["failed"]),
        int(&v["cancelled"]),
    )
}

/// The page body for one answer, all workflows or only `only`'s.
#[inline(never)]
fn report(m: &Value, only: &str, flows: &[Workflow]) -> String {
    let mine = |v: &Value| only.is_empty() || v["workflow_id"] == only;
    let wfs = list(&m["workflows"]).iter().filter(|w| mine(w));
    let (s, f, c) = wfs
        .clone()
        .map(counts)
        .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
    let buckets = if only.is_empty() {
        list(&m["success_rate"])
    } else {
        wfs.map(|w| list(&w["buckets"])).next().unwrap_or(&[])
    };
    let finished = s + f + c;
    let current = &m["current"];
    let now = current["runs"].as_object();
    let stat = |label: &str, id: &str, value: String, note: String| {
        format!(
            r#"<div class="stat"><span class="stat-label">{label}</span><span class="stat-value" data-testid="{id}">{value}</span><span class="stat-note">{note}</span></div>"#
        )
    };
    let rate = if finished > 0 {
        format::percent(s as f64 / finished as f64)
    } else {
        "–".into()
    };
    let cancelled = if c > 0 {
        format!("and {c} cancelled")
    } else {
        String::new()
    };
    let unfinished: i64 = now.into_iter().flatten().map(|(_, v)| int(v)).sum();
    let by_status: Vec<String> = now
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{} {}", int(v), html(k)))
        .collect();
    let lag = current["oldest_queued_s"]
        .as_f64()
        .map_or_else(|| "–".into(), format::duration);
    let window = text(&m["window"]);
    let mut out = [
        r#"<div class="stats" data-testid="metrics-stats">"#.to_owned(),
        stat(
            "Success rate",
            "metrics-success-rate",
            rate,
            format!("{s} of {finished} finished runs"),
        ),
        stat(
            "Finished runs",
            "metrics-finished",
            finished.to_string(),
            format!("in the last {}", html(window)),
        ),
        stat("Failed", "metrics-failed", f.to_string(), cancelled),
        stat(
            "Unfinished now",
            "metrics-unfinished",
            unfinished.to_string(),
            if by_status.is_empty() {
                "none right now".to_owned()
            } else {
                by_status.join(" · ")
            },
        ),
        stat(
            "Queue lag",
            "metrics-queue-lag",
            lag,
            "oldest queued run".into(),
        ),
        "</div>".to_owned(),
    ]
    .concat();
    if finished == 0 {
        return out
            + r#"<div class="card empty-state" data-testid="metrics-empty"><p class="empty-title">No runs in this window</p><p>Runs show up here once they finish. Pick a longer window, or send a request to a published workflow's webhook.</p></div>"#;
    }

    let (hours, from) = metrics::window_hours(window);
    let points = rate_points(buckets, js_sys::Date::now(), hours);
    out += &format!(
        r#"<section class="card"><div class="card-header"><h2 class="card-title">Success rate over time</h2><span class="chart-legend"><i class="key key-rate"></i>success rate<i class="key key-runs"></i>runs<i class="key key-failed"></i>failed</span></div>{}</section>"#,
        rate_chart(&points, hours.ceil() + 1.0, from)
    );

    let latency: Vec<&Value> = list(&m["latency"])
        .iter()
        .filter(|l| mine(l))
        .take(TOP)
        .collect();
    let ms = |l: &Value, k: &str| l[k].as_f64().unwrap_or(0.0);
    let slowest = latency.iter().map(|l| ms(l, "p95_ms")).fold(0.0, f64::max);
    out += r#"<div class="grid metrics-grid"><section class="card" data-testid="latency"><div class="card-header"><h2 class="card-title">Step latency</h2><span class="chart-legend"><i class="key key-p50"></i>p50<i class="key key-p95"></i>p95</span></div>"#;
    if latency.is_empty() {
        out += r#"<p class="muted">No steps finished in this window.</p>"#;
    } else {
        out += r#"<ul class="bars" data-testid="latency-chart">"#;
        for l in latency {
            let (wf, node) = (text(&l["workflow_id"]), text(&l["node_id"]));
            let (p50, p95) = (ms(l, "p50_ms"), ms(l, "p95_ms"));
            out += &format!(
                r#"<li class="bar-row" data-testid="latency-row" title="{} steps, {} failed, max {}"><span class="bar-label"><code>{}</code> <span class="muted">{} · {}</span></span>{}<span class="bar-value">{} / {}</span></li>"#,
                int(&l["steps"]),
                int(&l["failed"]),
                html(&ms_text(ms(l, "max_ms"))),
                html(node),
                html(node_type(flows, wf, node)),
                html(&name(flows, wf)),
                latency_bar(p50, p95, slowest),
                html(&ms_text(p50)),
                html(&ms_text(p95)),
            );
        }
        out += "</ul>";
    }

    let failures: Vec<&Value> = list(&m["failures"])
        .iter()
        .filter(|x| mine(x))
        .take(TOP)
        .collect();
    let most = failures
        .iter()
        .map(|x| int(&x["failures"]))
        .max()
        .unwrap_or(1)
        .max(1);
    out += r#"</section><section class="card" data-testid="failures"><h2 class="card-title">Failures by node</h2>"#;
    if failures.is_empty() {
        out +=
            r#"<p class="muted" data-testid="failures-empty">No failed runs in this window.</p>"#;
    } else {
        out += r#"<ul class="bars" data-testid="failure-list">"#;
        for x in failures {
            let wf = text(&x["workflow_id"]);
            let n = int(&x["failures"]);
            out += &format!(
                r#"<li class="bar-row" data-testid="failure-row"><span class="bar-label"><code>{}</code> <span class="muted">{} · {}</span></span><span class="bar-track"><span class="bar-fill" style="width:{:.1}%"></span></span><a class="bar-value" data-testid="failure-runs" href="/runs?status=failed&amp;workflow_id={}">{n} failed →</a></li>"#,
                html(x["node_id"].as_str().unwrap_or("(no node)")),
                html(&name(flows, wf)),
                format::relative(text(&x["last_failed_at"])),
                n as f64 / most as f64 * 100.0,
                html(wf),
            );
        }
        out += "</ul>";
    }
    out + "</section></div>"
}

/// The chart's points: each hour placed at its middle within the window
/// (`hours` long, ending at `now` in ms), from its first whole hour.
#[inline(never)]
fn rate_points(buckets: &[Value], now: f64, hours: f64) -> Vec<RatePoint> {
    let start = ((now - hours * HOUR_MS) / HOUR_MS).floor() * HOUR_MS;
    let slots = hours.ceil() + 1.0;
    buckets
        .iter()
        .filter_map(|b| {
            let at = text(&b["bucket"]);
            let (s, f, c) = counts(b);
            let rate = b["success_rate"].as_f64().unwrap_or(0.0);
            let local = format::local(at);
            Some(RatePoint {
                x: (format::millis(at)? - start + HOUR_MS / 2.0) / (slots * HOUR_MS),
                rate,
                finished: s + f + c,
                failed: f,
                label: format!(
                    "{}:00 · {s} of {} succeeded ({}), {f} failed",
                    local.get(..13).unwrap_or(&local),
                    s + f + c,
                    format::percent(rate),
                ),
            })
        })
        .collect()
}
