//! `/alerts`: the project's alert rules — create (the signing secret shown
//! once), edit, enable or disable, delete (confirmed), send a test alert and
//! follow it in the rule's delivery log.
//!
//! To stay inside the wasm budget the page is mostly escaped HTML strings
//! with one delegated click handler (each button carries `data-action`, and
//! `data-id` for a rule's), and the form's fields are plain markup read
//! with `FormData` on submit (CSS shows the fields of the chosen kind). The
//! same page as typed views cost about 50 KB of gzipped wasm.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};
use wasm_bindgen::JsCast;

use crate::api::alerts::{self, KINDS, Rule};
use crate::api::projects::Project;
use crate::api::{
    self,
    workflows::{self, Workflow},
};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::shown_once::ShownOnce;
use crate::components::status::{error_html, loading_html};
use crate::format::{self, html};
use crate::load::{Loaded, load};
use crate::project::with_project;

/// The alerts page.
#[component]
pub fn Alerts() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Alerts"</h1>
            <p class="page-lead">"Signed POSTs to your URL when runs fail, failures pile up or the queue falls behind."</p>
        </div>
        {with_project(|project| view! { <RuleList project=project/> }.into_any())}
    }
}

/// What the page shows under one rule besides the rule itself.
#[derive(Clone, Debug, Default, PartialEq)]
struct Extra {
    /// A test send: `(class, text)`; `notice` alone while waiting.
    outcome: Option<(&'static str, String)>,
    /// Whether the delivery log is open.
    open: bool,
    /// The log as last loaded (the API's JSON array, or why not).
    log: Option<Result<Value, String>>,
}

type Extras = RwSignal<Vec<(String, Extra)>>;

/// Rule `id`'s extras, added when missing.
fn extra<'a>(x: &'a mut Vec<(String, Extra)>, id: &str) -> &'a mut Extra {
    let i = match x.iter().position(|(i, _)| i == id) {
        Some(i) => i,
        None => {
            x.push((id.to_owned(), Extra::default()));
            x.len() - 1
        }
    };
    &mut x[i].1
}

#[component]
fn RuleList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let answer: Loaded<Value> = RwSignal::new(None);
    let refetch = move || load(answer, alerts::list(pid.get_value()));
    refetch();
    let wf: Loaded<Vec<Workflow>> = RwSignal::new(None);
    load(wf, async move { workflows::list(&pid.get_value()).await });
    let extras: Extras = RwSignal::new(Vec::new());
    let action_error = RwSignal::new(None::<api::Error>);

    // The form: a rule to edit, or a default (id-less) one to create.
    let form = RwSignal::new(None::<Rule>);
    let busy = RwSignal::new(false);
    let form_error = RwSignal::new(None::<api::Error>);
    let secret = RwSignal::new(None::<String>);
    let save = move |body: Value| {
        let editing = form
            .get_untracked()
            .map(|r| r.id)
            .filter(|id| !id.is_empty());
        busy.set(true);
        form_error.set(None);
        spawn_local(async move {
            let result = match &editing {
                Some(id) => alerts::update(id, &body).await,
                None => alerts::create(&pid.get_value(), &body).await,
            };
            match result {
                Ok(v) => {
                    secret.set(v["signing_secret"].as_str().map(str::to_owned));
                    form.set(None);
                    refetch();
                }
                Err(e) => form_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let deleting = RwSignal::new(None::<Rule>);
    let delete_busy = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<String>);
    let confirm_delete = move |()| {
        let Some(rule) = deleting.get_untracked() else {
            return;
        };
        delete_busy.set(true);
        spawn_local(async move {
            match alerts::remove(&rule.id).await {
                Ok(()) => {
                    deleting.set(None);
                    refetch();
                }
                Err(e) => delete_error.set(Some(e.detail())),
            }
            delete_busy.set(false);
        });
    };

    // One handler for every button drawn as markup, by its `data-action`
    // (and `data-id` for a rule's).
    let on_click = move |ev: leptos::ev::MouseEvent| {
        let Some(button) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|e| e.closest("[data-action]").ok().flatten())
        else {
            return;
        };
        let action = button.get_attribute("data-action").unwrap_or_default();
        let id = button.get_attribute("data-id").unwrap_or_default();
        let rule = answer.with_untracked(|a| {
            let list = a.as_ref()?.as_ref().ok()?.as_array()?;
            list.iter()
                .find(|r| r["id"] == id.as_str())
                .and_then(Rule::from_json)
        });
        action_error.set(None);
        match (action.as_str(), rule) {
            ("new", _) => {
                form_error.set(None);
                form.set(Some(Rule::default()));
            }
            ("cancel", _) => form.set(None),
            ("retry", _) => refetch(),
            ("test", Some(_)) => send_test(extras, id),
            ("log", Some(_)) => {
                let open = !extras.with_untracked(|x| x.iter().any(|(i, e)| *i == id && e.open));
                extras.update(|x| extra(x, &id).open = open);
                if open {
                    spawn_local(load_log(extras, id));
                }
            }
            ("refresh", Some(_)) => spawn_local(load_log(extras, id)),
            ("edit", rule @ Some(_)) => {
                form_error.set(None);
                form.set(rule);
            }
            ("toggle", Some(rule)) => spawn_local(async move {
                match alerts::update(&id, &json!({ "enabled": !rule.enabled })).await {
                    Ok(_) => refetch(),
                    Err(e) => action_error.set(Some(e)),
                }
            }),
            ("delete", rule @ Some(_)) => {
                delete_error.set(None);
                deleting.set(rule);
            }
            _ => {}
        }
    };
    let body = move || {
        let mut out = String::new();
        if let Some(e) = action_error.with(|e| e.as_ref().map(|e| error_html(e, false))) {
            out += &e;
        }
        out + &answer.with(|a| match a {
            None => loading_html("Loading alert rules…"),
            Some(Err(e)) => error_html(e, true),
            Some(Ok(v)) => {
                let rules: Vec<Rule> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Rule::from_json)
                    .collect();
                wf.with(|f| extras.with(|x| cards(&rules, ok(f), x, format::relative)))
            }
        })
    };

    view! {
        <section class="stack" on:click=on_click>
            <div class="section-header">
                <h2 class="section-title">"Rules"</h2>
                <button type="button" class="button" data-action="new" data-testid="alert-new">"New alert"</button>
            </div>
            {move || secret.get().map(|s| view! {
                <ShownOnce title="Signing secret of the new alert (verify its POSTs with any Standard Webhooks library)"
                    value=s on_dismiss=move |()| secret.set(None)/>
            })}
            {move || form.get().map(|rule| view! {
                <RuleForm rule=rule flows=wf.with(|f| ok(f).to_vec()) busy=busy error=form_error on_submit=save/>
            })}
            <div class="stack" inner_html=body></div>
            {move || deleting.get().map(|rule| view! {
                <ConfirmDialog
                    title=format!("Delete alert “{}”?", rule.name)
                    message="It stops firing at once, and its delivery log goes with it."
                    confirm_label="Delete alert"
                    busy=delete_busy
                    error=delete_error
                    on_confirm=confirm_delete
                    on_cancel=move |()| deleting.set(None)
                />
            })}
        </section>
    }
}

/// The loaded workflows, none while loading or failed.
fn ok(flows: &Option<Result<Vec<Workflow>, api::Error>>) -> &[Workflow] {
    flows
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .map_or(&[], Vec::as_slice)
}

/// Loads rule `id`'s delivery log into `extras`.
async fn load_log(extras: Extras, id: String) {
    let log = alerts::deliveries(id.clone()).await.map_err(|e| e.detail());
    let _ = extras.try_update(|x| extra(x, &id).log = Some(log));
}

/// Queues a test alert for rule `id`, opens its log and follows the
/// delivery until its first attempt (a failed attempt is retried later).
fn send_test(extras: Extras, id: String) {
    let set = move |id: &str, outcome: (&'static str, &str)| {
        extras.try_update(|x| {
            extra(x, id).outcome = Some((outcome.0, outcome.1.to_owned()));
        })
    };
    set(
        &id,
        (
            "notice",
            "Test alert queued; waiting for the first attempt…",
        ),
    );
    extras.update(|x| extra(x, &id).open = true);
    spawn_local(async move {
        let sent = match alerts::test(&id).await {
            Ok(d) => d["delivery_id"].clone(),
            Err(e) => {
                set(&id, ("notice notice-error", &e.detail()));
                return;
            }
        };
        for _ in 0..30 {
            let log = alerts::deliveries(id.clone()).await.map_err(|e| e.detail());
            let done = log
                .as_ref()
                .ok()
                .and_then(|l| l.as_array()?.iter().find(|d| d["id"] == sent))
                .and_then(attempt);
            if extras
                .try_update(|x| extra(x, &id).log = Some(log))
                .is_none()
            {
                return;
            }
            if let Some((ok, text)) = done {
                set(
                    &id,
                    (
                        if ok {
                            "notice notice-ok"
                        } else {
                            "notice notice-error"
                        },
                        &text,
                    ),
                );
                return;
            }
            sleep(1000).await;
        }
        set(
            &id,
            (
                "notice notice-error",
                "No attempt yet: is the executor running? See the log.",
            ),
        );
    });
}

/// The last answer to a delivery: its error, else its HTTP status.
fn answer(d: &Value) -> Option<String> {
    d["last_error"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| d["last_status_code"].as_i64().map(|c| format!("HTTP {c}")))
}

/// How a delivery's first attempt went; `None` before it.
fn attempt(d: &Value) -> Option<(bool, String)> {
    let (attempts, said) = (
        d["attempts"].as_i64().unwrap_or(0),
        answer(d).unwrap_or_default(),
    );
    match d["status"].as_str().unwrap_or("") {
        "delivered" => Some((true, format!("Delivered: the receiver answered {said}."))),
        "pending" if attempts == 0 => None,
        status => Some((
            false,
            format!("Not delivered ({status}, attempt {attempts}): {said}"),
        )),
    }
}

/// What a rule watches, in words.
fn condition(r: &Rule) -> String {
    let every = || {
        format!(
            "at most every {}",
            format::duration(f64::from(r.cooldown_secs))
        )
    };
    match r.kind.as_str() {
        "run_failed" => "every failed run".to_owned(),
        "failure_rate" => format!(
            "failure rate ≥ {} over {} (at least {} runs); {}",
            format::percent(r.threshold.unwrap_or(0.5)),
            format::duration(f64::from(r.window_secs)),
            r.min_runs,
            every()
        ),
        "queue_lag" => format!(
            "a queued message older than {}; {}",
            format::duration(r.threshold.unwrap_or(60.0)),
            every()
        ),
        other => other.to_owned(),
    }
}

/// The rule cards as escaped HTML; `when` formats a timestamp.
#[inline(never)]
fn cards(
    rules: &[Rule],
    flows: &[Workflow],
    extras: &[(String, Extra)],
    when: fn(&str) -> String,
) -> String {
    if rules.is_empty() {
        return r#"<div class="card empty-state" data-testid="alerts-empty"><p class="empty-title">No alert rules</p><p>Create one to hear about failed runs, a rising failure rate or a growing queue.</p></div>"#.to_owned();
    }
    let mut out = String::new();
    for r in rules {
        let x = extras
            .iter()
            .find(|(i, _)| *i == r.id)
            .map(|(_, x)| x.clone())
            .unwrap_or_default();
        let id = html(&r.id);
        let button = |action: &str, label: &str, class: &str| {
            format!(
                r#"<button type="button" class="button button-small {class}" data-action="{action}" data-id="{id}" data-testid="alert-{action}">{label}</button>"#
            )
        };
        let scope = r.workflow_id.as_ref().map_or("all workflows", |w| {
            flows
                .iter()
                .find(|f| f.id == *w)
                .map_or(w.as_str(), |f| f.name.as_str())
        });
        let (badge, state, toggle) = if r.enabled {
            ("badge-ok", "enabled", "Disable")
        } else {
            ("badge-off", "disabled", "Enable")
        };
        let waiting = x.outcome.as_ref().is_some_and(|o| o.0 == "notice");
        out += &format!(
            r#"<article class="card alert-card" data-testid="alert-card"><div class="card-header"><h3 class="card-title" data-testid="alert-title">{}</h3><span class="badge {badge}" data-testid="alert-state">{state}</span></div><dl class="facts"><div><dt>When</dt><dd data-testid="alert-condition">{}</dd></div><div><dt>Runs of</dt><dd>{}</dd></div><div><dt>Sends to</dt><dd><code data-testid="alert-target">{}</code></dd></div><div><dt>Last fired</dt><dd>{}</dd></div></dl><div class="actions">{}{}{}{}{}</div>"#,
            html(&r.name),
            html(&condition(r)),
            html(scope),
            html(&r.url),
            r.last_fired_at
                .as_deref()
                .map_or_else(|| "never".to_owned(), when),
            button(
                "test",
                if waiting { "Sending…" } else { "Send test" },
                "button-secondary"
            ),
            button(
                "log",
                if x.open {
                    "Hide deliveries"
                } else {
                    "Deliveries"
                },
                "button-secondary"
            ),
            button("edit", "Edit", "button-secondary"),
            button("toggle", toggle, "button-secondary"),
            button("delete", "Delete", "button-danger-quiet"),
        );
        if let Some((class, text)) = &x.outcome {
            out += &format!(
                r#"<p class="{class}" role="status" data-testid="alert-test-outcome">{}</p>"#,
                html(text)
            );
        }
        if x.open {
            out += &format!(
                r#"<section class="delivery-log" data-testid="alert-delivery-log"><div class="card-header"><h4 class="card-subtitle">Deliveries</h4>{}</div>{}</section>"#,
                button("refresh", "Refresh", "button-secondary"),
                log_html(x.log.as_ref(), when)
            );
        }
        out += "</article>";
    }
    out
}

/// A delivery log table (or why there is none).
#[inline(never)]
fn log_html(log: Option<&Result<Value, String>>, when: fn(&str) -> String) -> String {
    let list = match log {
        None => return r#"<p class="muted">Loading deliveries…</p>"#.to_owned(),
        Some(Err(e)) => return format!(r#"<p class="form-error" role="alert">{}</p>"#, html(e)),
        Some(Ok(l)) => l.as_array().map_or(&[][..], Vec::as_slice),
    };
    if list.is_empty() {
        return r#"<p class="muted" data-testid="alert-deliveries-empty">Nothing sent yet.</p>"#
            .to_owned();
    }
    let rows: String = list
        .iter()
        .map(|d| {
            let status = d["status"].as_str().unwrap_or("");
            let badge = match status {
                "delivered" => "badge-ok",
                "failed" => "badge-error",
                _ => "badge-off",
            };
            format!(
                r#"<tr data-testid="alert-delivery-row"><td data-label="Queued">{}</td><td data-label="Type"><code>{}</code></td><td data-label="Status"><span class="badge {badge}">{}</span></td><td data-label="Attempts">{}</td><td data-label="Answer" class="wrap">{}</td></tr>"#,
                when(d["created_at"].as_str().unwrap_or("")),
                html(d["type"].as_str().unwrap_or("")),
                html(status),
                d["attempts"].as_i64().unwrap_or(0),
                html(&answer(d).unwrap_or_else(|| "–".into()))
            )
        })
        .collect();
    format!(
        r#"<table class="table table-compact" data-testid="alert-delivery-table"><thead><tr><th>Queued</th><th>Type</th><th>Status</th><th>Attempts</th><th>Answer</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

/// The form's fields, as typed.
#[derive(Clone, Debug, Default, PartialEq)]
struct Draft {
    name: String,
    kind: String,
    url: String,
    workflow: String,
    /// failure_rate: percent; queue_lag: seconds.
    threshold: String,
    window_min: String,
    min_runs: String,
    cooldown_min: String,
}

impl Draft {
    fn of(r: Option<&Rule>) -> Self {
        let Some(r) = r else {
            return Self {
                kind: "run_failed".into(),
                window_min: "60".into(),
                min_runs: "10".into(),
                cooldown_min: "15".into(),
                ..Self::default()
            };
        };
        let threshold = match (r.kind.as_str(), r.threshold) {
            ("failure_rate", Some(t)) => format!("{}", (t * 1000.0).round() / 10.0),
            (_, Some(t)) => t.to_string(),
            _ => String::new(),
        };
        Self {
            name: r.name.clone(),
            kind: r.kind.clone(),
            url: r.url.clone(),
            workflow: r.workflow_id.clone().unwrap_or_default(),
            threshold,
            window_min: (r.window_secs / 60).to_string(),
            min_runs: r.min_runs.to_string(),
            cooldown_min: (r.cooldown_secs / 60).to_string(),
        }
    }

    /// The fields of a submitted form (see [`form_html`] for the names).
    fn read(form: &web_sys::FormData) -> Self {
        let get = |name: &str| form.get(name).as_string().unwrap_or_default();
        let kind = get("kind");
        Self {
            name: get("name"),
            threshold: get(if kind == "queue_lag" { "lag" } else { "rate" }),
            kind,
            url: get("url"),
            workflow: get("workflow"),
            window_min: get("window"),
            min_runs: get("min_runs"),
            cooldown_min: get("cooldown"),
        }
    }

    /// The `AlertIn`/`AlertPatch` body (the server checks the ranges).
    fn body(&self) -> Result<Value, String> {
        let num = |s: &str, what: &str| -> Result<Option<f64>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .map(Some)
                .ok_or_else(|| format!("{what} must be a number"))
        };
        // Whole minutes and counts: rounding is intended.
        #[allow(clippy::cast_possible_truncation)]
        let whole = |n: Option<f64>, scale: f64| n.map(|n| (n * scale).round() as i64);
        let threshold = match self.kind.as_str() {
            "failure_rate" => num(&self.threshold, "The failure rate")?.map(|p| p / 100.0),
            "queue_lag" => num(&self.threshold, "The lag")?,
            _ => None,
        };
        let workflow =
            (self.kind != "queue_lag" && !self.workflow.is_empty()).then(|| self.workflow.clone());
        let mut body = json!({
            "name": self.name.trim(),
            "kind": self.kind,
            "url": self.url.trim(),
            "workflow_id": workflow,
            "threshold": threshold,
        });
        for (key, value) in [
            (
                "window_secs",
                whole(num(&self.window_min, "The window")?, 60.0),
            ),
            ("min_runs", whole(num(&self.min_runs, "Minimum runs")?, 1.0)),
            (
                "cooldown_secs",
                whole(num(&self.cooldown_min, "The quiet time")?, 60.0),
            ),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        Ok(body)
    }
}

/// The form's fields as escaped HTML. Classes `f-rate`, `f-lag`, `f-flow`
/// and `f-cool` mark the fields only some kinds use (style.css shows them
/// for the chosen kind).
#[inline(never)]
fn form_html(d: &Draft, flows: &[Workflow]) -> String {
    let option = |value: &str, label: &str, on: bool| {
        format!(
            r#"<option value="{}"{}>{}</option>"#,
            html(value),
            if on { " selected" } else { "" },
            html(label)
        )
    };
    let input = |class: &str, label: &str, name: &str, kind: &str, value: &str, hint: &str| {
        format!(
            r#"<div class="field {class}"><label for="alert-{name}">{label}</label><input id="alert-{name}" name="{name}" class="input" type="{kind}" step="any" data-testid="alert-{name}" value="{}" placeholder="{hint}"></div>"#,
            html(value)
        )
    };
    let kinds: String = KINDS
        .iter()
        .map(|(k, l)| option(k, l, d.kind == *k))
        .collect();
    let flows: String = flows
        .iter()
        .map(|f| option(&f.id, &f.name, d.workflow == f.id))
        .collect();
    [
        input("", "Name", "name", "text", &d.name, "Payment failures"),
        format!(
            r#"<div class="field"><label for="alert-kind">When</label><select id="alert-kind" name="kind" class="select" data-testid="alert-kind">{kinds}</select></div>"#
        ),
        input("field-wide", "Send to (URL)", "url", "url", &d.url, "https://ops.example.com/meshhook"),
        format!(
            r#"<div class="field f-flow"><label for="alert-workflow">Runs of</label><select id="alert-workflow" name="workflow" class="select" data-testid="alert-workflow"><option value="">All workflows</option>{flows}</select></div>"#
        ),
        input("f-rate", "Failure rate at least (%)", "rate", "number", &d.threshold, "50"),
        input("f-rate", "Over the last (minutes)", "window", "number", &d.window_min, "60"),
        input("f-rate", "With at least (runs)", "min_runs", "number", &d.min_runs, "10"),
        input("f-lag", "Lag over (seconds)", "lag", "number", &d.threshold, "60"),
        input("f-cool", "Quiet time (minutes)", "cooldown", "number", &d.cooldown_min, "15"),
    ]
    .concat()
}

/// Edit `rule`, or create one when it has no id; `on_submit` gets the
/// request body. Its "Cancel" button is `data-action="cancel"` for the
/// page's click handler.
#[component]
fn RuleForm(
    rule: Rule,
    flows: Vec<Workflow>,
    #[prop(into)] busy: Signal<bool>,
    #[prop(into)] error: Signal<Option<api::Error>>,
    #[prop(into)] on_submit: Callback<Value>,
) -> impl IntoView {
    let problem = RwSignal::new(None::<String>);
    let rule = (!rule.id.is_empty()).then_some(rule);
    let title = rule.as_ref().map_or_else(
        || "New alert".to_owned(),
        |r| format!("Edit “{}”", html(&r.name)),
    );
    let fields = format!(
        r#"<h2 class="card-title">{title}</h2><div class="form-grid">{}</div>"#,
        form_html(&Draft::of(rule.as_ref()), &flows)
    );
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let Some(data) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
            .and_then(|f| web_sys::FormData::new_with_form(&f).ok())
        else {
            return;
        };
        match Draft::read(&data).body() {
            Ok(body) => {
                problem.set(None);
                on_submit.run(body);
            }
            Err(p) => problem.set(Some(p)),
        }
    };
    let trouble = move || match (problem.get(), error.get()) {
        (Some(p), _) => format!(r#"<p class="form-error" role="alert">{}</p>"#, html(&p)),
        (None, Some(e)) => error_html(&e, false),
        (None, None) => String::new(),
    };
    view! {
        <form class="card form alert-form" on:submit=submit data-testid="alert-form">
            <div class="form" inner_html=fields></div>
            <div inner_html=trouble></div>
            <div class="form-actions">
                <button type="submit" class="button" data-testid="alert-save" disabled=move || busy.get()>"Save"</button>
                <button type="button" class="button button-secondary" data-action="cancel">"Cancel"</button>
            </div>
        </form>
    }
}

/// Waits `ms` milliseconds (a `setTimeout` promise).
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            id: "a".into(),
            name: "slow <ops>".into(),
            kind: "failure_rate".into(),
            url: "https://x.test".into(),
            workflow_id: None,
            threshold: Some(0.3),
            window_secs: 900,
            min_runs: 5,
            cooldown_secs: 600,
            enabled: true,
            last_fired_at: None,
        }
    }

    #[test]
    fn bodies_convert_units_and_drop_what_the_kind_ignores() {
        let mut d = Draft::of(None);
        d.name = " ops ".into();
        d.url = "https://x.test/a".into();
        d.workflow = "w1".into();
        assert_eq!(
            d.body(),
            Ok(
                json!({"name": "ops", "kind": "run_failed", "url": "https://x.test/a", "workflow_id": "w1",
                "threshold": null, "window_secs": 3600, "min_runs": 10, "cooldown_secs": 900})
            )
        );
        d.kind = "failure_rate".into();
        d.threshold = "25".into();
        d.window_min = "5".into();
        assert_eq!(
            d.body()
                .map(|b| (b["threshold"].clone(), b["window_secs"].clone())),
            Ok((json!(0.25), json!(300)))
        );
        d.kind = "queue_lag".into();
        d.threshold = "90".into();
        let b = d.body().unwrap();
        assert_eq!(
            (b["threshold"].clone(), b["workflow_id"].clone()),
            (json!(90.0), json!(null))
        );
        d.min_runs = "many".into();
        assert_eq!(d.body(), Err("Minimum runs must be a number".to_owned()));
    }

    #[test]
    fn rules_read_from_json() {
        let v = json!({"id": "a", "name": "slow <ops>", "kind": "failure_rate", "url": "https://x.test",
            "workflow_id": null, "threshold": 0.3, "window_secs": 900, "min_runs": 5, "cooldown_secs": 600,
            "enabled": true, "last_fired_at": null, "created_at": "t"});
        assert_eq!(Rule::from_json(&v), Some(rule()));
        assert_eq!(Rule::from_json(&json!({})), None);
    }

    #[test]
    fn drafts_round_trip_rules_and_conditions_read_well() {
        let d = Draft::of(Some(&rule()));
        assert_eq!((d.threshold.as_str(), d.window_min.as_str()), ("30", "15"));
        assert_eq!(d.body().map(|b| b["threshold"].clone()), Ok(json!(0.3)));
        assert_eq!(
            condition(&rule()),
            "failure rate ≥ 30% over 15 min (at least 5 runs); at most every 10 min"
        );
        let lag = Rule {
            kind: "queue_lag".into(),
            threshold: Some(120.0),
            ..rule()
        };
        assert_eq!(
            condition(&lag),
            "a queued message older than 2 min; at most every 10 min"
        );
        let flow = Workflow {
            id: "w1".into(),
            name: "a&b".into(),
            definition: Value::Null,
            status: String::new(),
            latest_version: None,
            updated_at: String::new(),
        };
        let form = form_html(&d, &[flow]);
        assert!(form.contains(r#"<option value="failure_rate" selected>"#));
        assert!(form.contains(r#"name="rate" class="input" type="number" step="any" data-testid="alert-rate" value="30""#));
        assert!(form.contains(">a&amp;b</option>"));
    }

    #[test]
    fn cards_escape_and_show_outcomes_and_logs() {
        let none: Vec<(String, Extra)> = Vec::new();
        assert!(cards(&[], &[], &none, str::to_owned).contains("alerts-empty"));
        let delivery = json!({"id": "d", "type": "alert.test", "status": "delivered", "attempts": 1,
            "last_status_code": 200, "last_error": null, "created_at": "t0"});
        assert_eq!(
            attempt(&delivery),
            Some((true, "Delivered: the receiver answered HTTP 200.".into()))
        );
        assert_eq!(attempt(&json!({"status": "pending", "attempts": 0})), None);
        let extra = Extra {
            outcome: Some(("notice", "waiting".into())),
            open: true,
            log: Some(Ok(json!([delivery]))),
        };
        let html = cards(&[rule()], &[], &[("a".to_owned(), extra)], str::to_owned);
        assert!(html.contains("slow &lt;ops&gt;") && !html.contains("<ops>"));
        assert!(
            html.contains(r#"data-action="test" data-id="a" data-testid="alert-test">Sending…"#)
        );
        assert!(html.contains("Hide deliveries") && html.contains("<code>alert.test</code>"));
        assert!(html.contains(r#"data-testid="alert-test-outcome">waiting"#));
    }
}
