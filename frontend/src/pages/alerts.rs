//! `/alerts`: the project's alert rules — create (the signing secret shown
//! once), edit, enable or disable, delete (confirmed), send a test alert and
//! follow it in the rule's delivery log.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use crate::api::alerts::{self, Delivery, KINDS, Rule};
use crate::api::projects::Project;
use crate::api::{self, workflows};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::shown_once::ShownOnce;
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::project::with_project;

/// `(id, name)` of the project's workflows.
type Flows = Signal<Vec<(String, String)>>;

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

#[component]
fn RuleList(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let list = LocalResource::new(move || {
        let pid = pid.get_value();
        async move { alerts::list(&pid).await }
    });
    let wf = LocalResource::new(move || {
        let pid = pid.get_value();
        async move { workflows::list(&pid).await }
    });
    let flows: Flows = Signal::derive(move || {
        wf.get()
            .and_then(Result::ok)
            .map(|l| l.into_iter().map(|w| (w.id, w.name)).collect())
            .unwrap_or_default()
    });
    let creating = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<api::Error>);
    let secret = RwSignal::new(None::<String>);
    let create = move |body: Value| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match alerts::create(&pid.get_value(), &body).await {
                Ok(created) => {
                    secret.set(created.signing_secret);
                    creating.set(false);
                    list.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    view! {
        <section class="stack">
            <div class="section-header">
                <h2 class="section-title">"Rules"</h2>
                <button type="button" class="button" data-testid="alert-new"
                    on:click=move |_| { error.set(None); creating.set(true); }>"New alert"</button>
            </div>
            {move || secret.get().map(|s| view! {
                <ShownOnce title="Signing secret of the new alert (verify its POSTs with any Standard Webhooks library)"
                    value=s on_dismiss=move |()| secret.set(None)/>
            })}
            <Show when=move || creating.get()>
                <div class="card">
                    <h2 class="card-title">"New alert"</h2>
                    <RuleForm rule=None flows=flows busy=busy error=error submit="Create alert"
                        on_submit=create on_cancel=move |()| creating.set(false)/>
                </div>
            </Show>
            {move || match list.get() {
                None => view! { <Loading label="Loading alert rules…"/> }.into_any(),
                Some(Err(e)) => view! { <ErrorNotice error=e on_retry=move |()| list.refetch()/> }.into_any(),
                Some(Ok(rules)) if rules.is_empty() => view! {
                    <EmptyState title="No alert rules" test_id="alerts-empty">
                        <p>"Create one to hear about failed runs, a rising failure rate or a growing queue."</p>
                    </EmptyState>
                }.into_any(),
                Some(Ok(rules)) => rules.into_iter().map(|r| view! {
                    <RuleCard rule=r flows=flows on_deleted=move |()| list.refetch()/>
                }).collect_view().into_any(),
            }}
        </section>
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

/// What became of a test send.
#[derive(Clone)]
enum Outcome {
    Waiting,
    Done(bool, String),
}

#[component]
fn RuleCard(rule: Rule, flows: Flows, #[prop(into)] on_deleted: Callback<()>) -> impl IntoView {
    let id = StoredValue::new(rule.id.clone());
    let rule = RwSignal::new(rule);
    let action_error = RwSignal::new(None::<api::Error>);

    // Edit and enable/disable.
    let editing = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let patch = move |body: Value| {
        busy.set(true);
        action_error.set(None);
        spawn_local(async move {
            match alerts::update(&id.get_value(), &body).await {
                Ok(r) => {
                    rule.set(r);
                    editing.set(false);
                }
                Err(e) => action_error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    // Test send, followed in the delivery log.
    let log = RwSignal::new(None::<Result<Vec<Delivery>, api::Error>>);
    let log_open = RwSignal::new(false);
    let load_log = move || {
        spawn_local(async move {
            let _ = log.try_set(Some(alerts::deliveries(&id.get_value()).await));
        });
    };
    let outcome = RwSignal::new(None::<Outcome>);
    let send_test = move |_| {
        outcome.set(Some(Outcome::Waiting));
        action_error.set(None);
        log_open.set(true);
        spawn_local(async move {
            let sent = match alerts::test(&id.get_value()).await {
                Ok(d) => d,
                Err(e) => {
                    outcome.set(None);
                    action_error.set(Some(e));
                    return;
                }
            };
            // The executor sends within seconds; a failed first attempt is
            // retried later, so stop at the first attempt's result.
            for _ in 0..30 {
                let got = alerts::deliveries(&id.get_value()).await;
                let done = got
                    .as_ref()
                    .ok()
                    .and_then(|l| l.iter().find(|d| d.id == sent))
                    .and_then(
                        |d| match (d.status.as_str(), d.last_status_code, &d.last_error) {
                            ("delivered", code, _) => Some(Outcome::Done(
                                true,
                                format!(
                                    "Delivered: the receiver answered HTTP {}.",
                                    code.unwrap_or(200)
                                ),
                            )),
                            (_, _, _) if d.is_pending() && d.attempts == 0 => None,
                            (status, code, err) => Some(Outcome::Done(
                                false,
                                format!(
                                    "Not delivered ({status}, attempt {}): {}",
                                    d.attempts,
                                    err.clone()
                                        .or_else(|| code.map(|c| format!("HTTP {c}")))
                                        .unwrap_or_default()
                                ),
                            )),
                        },
                    );
                if log.try_set(Some(got)).is_some() {
                    return;
                }
                if let Some(o) = done {
                    outcome.set(Some(o));
                    return;
                }
                sleep(1000).await;
            }
            outcome.set(Some(Outcome::Done(
                false,
                "No answer yet: is the executor running? See the log.".into(),
            )));
        });
    };
    let toggle_log = move |_| {
        log_open.update(|o| *o = !*o);
        if log_open.get_untracked() {
            load_log();
        }
    };

    // Delete.
    let deleting = RwSignal::new(false);
    let delete_busy = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<String>);
    let confirm_delete = move |()| {
        delete_busy.set(true);
        spawn_local(async move {
            match alerts::remove(&id.get_value()).await {
                Ok(()) => {
                    deleting.set(false);
                    on_deleted.run(());
                }
                Err(e) => delete_error.set(Some(e.detail())),
            }
            delete_busy.set(false);
        });
    };

    let scope = move || {
        let w = rule.with(|r| r.workflow_id.clone());
        match w {
            None => "all workflows".to_owned(),
            Some(w) => flows
                .with(|f| f.iter().find(|(i, _)| *i == w).map(|(_, n)| n.clone()))
                .unwrap_or(w),
        }
    };
    let enabled = move || rule.with(|r| r.enabled);
    view! {
        <article class="card alert-card" data-testid="alert-card">
            <div class="card-header">
                <h3 class="card-title" data-testid="alert-name">{move || rule.with(|r| r.name.clone())}</h3>
                <span class=move || if enabled() { "badge badge-ok" } else { "badge badge-off" } data-testid="alert-state">
                    {move || if enabled() { "enabled" } else { "disabled" }}
                </span>
            </div>
            {move || if editing.get() {
                view! {
                    <RuleForm rule=Some(rule.get_untracked()) flows=flows busy=busy error=action_error submit="Save"
                        on_submit=patch on_cancel=move |()| editing.set(false)/>
                }.into_any()
            } else {
                rule.with(|r| view! {
                    <dl class="facts">
                        <div><dt>"When"</dt><dd data-testid="alert-condition">{condition(r)}</dd></div>
                        <div><dt>"Runs of"</dt><dd>{scope}</dd></div>
                        <div><dt>"Sends to"</dt><dd><code data-testid="alert-url">{r.url.clone()}</code></dd></div>
                        <div><dt>"Last fired"</dt><dd>{r.last_fired_at.as_deref().map_or_else(|| "never".to_owned(), format::relative)}</dd></div>
                    </dl>
                }).into_any()
            }}
            <div class="actions">
                <button type="button" class="button button-secondary button-small" data-testid="alert-test"
                    disabled=move || matches!(outcome.get(), Some(Outcome::Waiting)) on:click=send_test>
                    {move || if matches!(outcome.get(), Some(Outcome::Waiting)) { "Sending…" } else { "Send test" }}
                </button>
                <button type="button" class="button button-secondary button-small" data-testid="alert-log" on:click=toggle_log>
                    {move || if log_open.get() { "Hide deliveries" } else { "Deliveries" }}
                </button>
                <button type="button" class="button button-secondary button-small" data-testid="alert-edit"
                    on:click=move |_| { action_error.set(None); editing.set(true); }>"Edit"</button>
                <button type="button" class="button button-secondary button-small" data-testid="alert-toggle"
                    disabled=move || busy.get() on:click=move |_| patch(json!({ "enabled": !enabled() }))>
                    {move || if enabled() { "Disable" } else { "Enable" }}
                </button>
                <button type="button" class="button button-danger-quiet button-small" data-testid="alert-delete"
                    on:click=move |_| { delete_error.set(None); deleting.set(true); }>"Delete"</button>
            </div>
            {move || (!editing.get()).then(|| action_error.get().map(|e| view! { <ErrorNotice error=e/> })).flatten()}
            {move || outcome.get().map(|o| {
                let (class, text) = match o {
                    Outcome::Waiting => ("notice", "Test alert queued; waiting for the first attempt…".to_owned()),
                    Outcome::Done(true, t) => ("notice notice-ok", t),
                    Outcome::Done(false, t) => ("notice notice-error", t),
                };
                view! { <p class=class role="status" data-testid="alert-test-outcome">{text}</p> }
            })}
            <Show when=move || log_open.get()>
                <DeliveryLog log=log on_refresh=move |()| load_log()/>
            </Show>
            {move || deleting.get().then(|| view! {
                <ConfirmDialog
                    title=format!("Delete alert “{}”?", rule.with_untracked(|r| r.name.clone()))
                    message="It stops firing at once, and its delivery log goes with it."
                    confirm_label="Delete alert"
                    busy=delete_busy
                    error=delete_error
                    on_confirm=confirm_delete
                    on_cancel=move |()| deleting.set(false)
                />
            })}
        </article>
    }
}

/// A rule's deliveries, newest first.
#[component]
fn DeliveryLog(
    #[prop(into)] log: Signal<Option<Result<Vec<Delivery>, api::Error>>>,
    #[prop(into)] on_refresh: Callback<()>,
) -> impl IntoView {
    let rows = move || {
        match log.get() {
        None => view! { <Loading label="Loading deliveries…"/> }.into_any(),
        Some(Err(e)) => view! { <ErrorNotice error=e/> }.into_any(),
        Some(Ok(list)) if list.is_empty() => {
            view! { <p class="muted" data-testid="alert-deliveries-empty">"Nothing sent yet."</p> }.into_any()
        }
        Some(Ok(list)) => view! {
            <table class="table table-compact" data-testid="alert-delivery-table">
                <thead><tr><th>"Queued"</th><th>"Type"</th><th>"Status"</th><th>"Attempts"</th><th>"Answer"</th></tr></thead>
                <tbody>
                    {list.into_iter().map(|d| {
                        let badge = match d.status.as_str() {
                            "delivered" => "badge badge-ok",
                            "failed" => "badge badge-error",
                            _ => "badge badge-off",
                        };
                        let answer = d.last_error.clone()
                            .or_else(|| d.last_status_code.map(|c| format!("HTTP {c}")))
                            .unwrap_or_else(|| "–".into());
                        view! {
                            <tr data-testid="alert-delivery-row">
                                <td data-label="Queued"><time title=format::local(&d.created_at)>{format::relative(&d.created_at)}</time></td>
                                <td data-label="Type"><code>{d.kind}</code></td>
                                <td data-label="Status"><span class=badge>{d.status}</span></td>
                                <td data-label="Attempts">{d.attempts}</td>
                                <td data-label="Answer" class="wrap">{answer}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    };
    view! {
        <section class="delivery-log" data-testid="alert-delivery-log">
            <div class="card-header">
                <h3 class="card-subtitle">"Deliveries"</h3>
                <button type="button" class="button button-secondary button-small" data-testid="alert-log-refresh"
                    on:click=move |_| on_refresh.run(())>"Refresh"</button>
            </div>
            {rows}
        </section>
    }
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

/// Create or edit a rule; `on_submit` gets the request body.
#[component]
fn RuleForm(
    rule: Option<Rule>,
    flows: Flows,
    #[prop(into)] busy: Signal<bool>,
    #[prop(into)] error: Signal<Option<api::Error>>,
    submit: &'static str,
    #[prop(into)] on_submit: Callback<Value>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let draft = RwSignal::new(Draft::of(rule.as_ref()));
    let problem = RwSignal::new(None::<String>);
    let kind = move || draft.with(|d| d.kind.clone());
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match draft.with_untracked(Draft::body) {
            Ok(body) => {
                problem.set(None);
                on_submit.run(body);
            }
            Err(p) => problem.set(Some(p)),
        }
    };
    // One text field bound to one `Draft` member.
    let field = move |label: &'static str,
                      test_id: &'static str,
                      kind_: &'static str,
                      hint: &'static str,
                      get: fn(&Draft) -> &String,
                      set: fn(&mut Draft, String)| {
        view! {
            <div class="field">
                <label for=test_id>{label}</label>
                <input id=test_id class="input" type=kind_ data-testid=test_id placeholder=hint
                    prop:value=move || draft.with(|d| get(d).clone())
                    on:input=move |ev| draft.update(|d| set(d, event_target_value(&ev)))/>
            </div>
        }
    };
    let sel_kind = draft.with_untracked(|d| d.kind.clone());
    let sel_flow = StoredValue::new(draft.with_untracked(|d| d.workflow.clone()));
    view! {
        <form class="form" on:submit=save data-testid="alert-form">
            <div class="form-grid">
                {field("Name", "alert-name-input", "text", "Payment failures", |d| &d.name, |d, v| d.name = v)}
                <div class="field">
                    <label for="alert-kind">"When"</label>
                    <select id="alert-kind" class="select" data-testid="alert-kind"
                        on:change=move |ev| draft.update(|d| { d.kind = event_target_value(&ev); d.threshold.clear(); })>
                        {KINDS.map(|(k, label)| view! { <option value=k selected={sel_kind == k}>{label}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field field-wide">
                    <label for="alert-url">"Send to (URL)"</label>
                    <input id="alert-url" class="input" type="url" required data-testid="alert-url-input"
                        placeholder="https://ops.example.com/meshhook"
                        prop:value=move || draft.with(|d| d.url.clone())
                        on:input=move |ev| draft.update(|d| d.url = event_target_value(&ev))/>
                </div>
                <Show when=move || kind() != "queue_lag">
                    <div class="field">
                        <label for="alert-workflow">"Runs of"</label>
                        <select id="alert-workflow" class="select" data-testid="alert-workflow"
                            on:change=move |ev| draft.update(|d| d.workflow = event_target_value(&ev))>
                            <option value="">"All workflows"</option>
                            {move || flows.get().into_iter().map(|(id, name)| {
                                let on = sel_flow.with_value(|s| *s == id);
                                view! { <option value=id selected=on>{name}</option> }
                            }).collect_view()}
                        </select>
                    </div>
                </Show>
                <Show when=move || kind() == "failure_rate">
                    {field("Failure rate at least (%)", "alert-threshold", "number", "50", |d| &d.threshold, |d, v| d.threshold = v)}
                    {field("Over the last (minutes)", "alert-window", "number", "60", |d| &d.window_min, |d, v| d.window_min = v)}
                    {field("With at least (runs)", "alert-min-runs", "number", "10", |d| &d.min_runs, |d, v| d.min_runs = v)}
                </Show>
                <Show when=move || kind() == "queue_lag">
                    {field("Lag over (seconds)", "alert-lag", "number", "60", |d| &d.threshold, |d, v| d.threshold = v)}
                </Show>
                <Show when=move || kind() != "run_failed">
                    {field("Quiet time after an alert (minutes)", "alert-cooldown", "number", "15", |d| &d.cooldown_min, |d, v| d.cooldown_min = v)}
                </Show>
            </div>
            {move || problem.get().map(|p| view! { <p class="form-error" role="alert">{p}</p> })}
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
            <div class="form-actions">
                <button type="submit" class="button" data-testid="alert-save" disabled=move || busy.get()>
                    {move || if busy.get() { "Saving…" } else { submit }}
                </button>
                <button type="button" class="button button-secondary" on:click=move |_| on_cancel.run(())>"Cancel"</button>
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
    fn drafts_round_trip_rules_and_conditions_read_well() {
        let rule = Rule {
            id: "a".into(),
            name: "slow".into(),
            kind: "failure_rate".into(),
            url: "https://x.test".into(),
            workflow_id: None,
            threshold: Some(0.3),
            window_secs: 900,
            min_runs: 5,
            cooldown_secs: 600,
            enabled: true,
            last_fired_at: None,
            created_at: String::new(),
        };
        let d = Draft::of(Some(&rule));
        assert_eq!((d.threshold.as_str(), d.window_min.as_str()), ("30", "15"));
        assert_eq!(d.body().map(|b| b["threshold"].clone()), Ok(json!(0.3)));
        assert_eq!(
            condition(&rule),
            "failure rate ≥ 30% over 15 min (at least 5 runs); at most every 10 min"
        );
        let lag = Rule {
            kind: "queue_lag".into(),
            threshold: Some(120.0),
            ..rule
        };
        assert_eq!(
            condition(&lag),
            "a queued message older than 2 min; at most every 10 min"
        );
    }
}
