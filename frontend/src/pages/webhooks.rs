//! `/webhooks?workflow=<id>`: a workflow's webhooks: URL with copy, scheme,
//! mode, rate limit, enabled; create (the signing secret shown once),
//! rotate the secret, edit the rate limit, test send, and the delivery log.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::{Value, json};

use crate::api::webhooks::{RateLimit, TestOutcome, Webhook};
use crate::api::{self, projects::Project, workflows::Workflow};
use crate::components::confirm_dialog::ConfirmDialog;
use crate::components::copy_button::CopyButton;
use crate::components::shown_once::ShownOnce;
use crate::components::status::{EmptyState, ErrorNotice, Loading};
use crate::format;
use crate::load::Fetch;
use crate::project::with_project;
use crate::router;

/// Verification schemes offered when creating a webhook: `(scheme, label)`.
const SCHEMES: [(&str, &str); 7] = [
    ("standard_webhooks", "Standard Webhooks (webhook-signature)"),
    ("github", "GitHub (X-Hub-Signature-256)"),
    ("stripe", "Stripe (Stripe-Signature)"),
    ("slack", "Slack (X-Slack-Signature)"),
    ("hmac_sha256", "HMAC-SHA256 in a header you choose"),
    ("jwt", "JWT bearer token"),
    ("none", "None: anyone with the URL can deliver"),
];

/// The payload a test delivery sends unless the user writes another.
const DEFAULT_TEST_PAYLOAD: &str = "{\n  \"test\": true\n}";

/// The webhooks page.
#[component]
pub fn Webhooks() -> impl IntoView {
    view! {
        <div class="page-header">
            <h1 data-testid="page-title">"Webhooks"</h1>
            <p class="page-lead">
                "URLs that start a workflow's runs, how deliveries are verified, rate limits and the delivery log."
            </p>
        </div>
        {with_project(|project| view! { <ProjectWebhooks project=project/> }.into_any())}
    }
}

#[component]
fn ProjectWebhooks(project: Project) -> impl IntoView {
    let pid = StoredValue::new(project.id);
    let workflows = Fetch::new(move || {
        let pid = pid.get_value();
        async move { api::workflows::list(&pid).await }
    });
    let location = crate::router::use_location();
    let wanted = Memo::new(move |_| location.param("workflow"));
    let pick = move |id: String| {
        router::navigate(&format!("/webhooks?workflow={id}"), true);
    };
    // The workflow shown: the one in the URL if it exists, else the first.
    let current = Memo::new(move |_| {
        let list = workflows.get()?.ok()?;
        let wanted = wanted.get();
        list.iter()
            .find(|w| Some(&w.id) == wanted.as_ref())
            .or_else(|| list.first())
            .cloned()
    });
    let current_id = Memo::new(move |_| current.get().map(|w| w.id));

    move || {
        match workflows.get() {
        None => view! { <Loading label="Loading workflows…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| workflows.refetch()/> }.into_any()
        }
        Some(Ok(list)) if list.is_empty() => view! {
            <EmptyState title="No workflows yet" test_id="webhooks-no-workflow">
                <p>"Webhooks start a workflow. " <a href="/workflows">"Create a workflow"</a> " first."</p>
            </EmptyState>
        }
        .into_any(),
        Some(Ok(list)) => {
            let pick = pick;
            view! {
                <div class="toolbar">
                    <div class="field field-inline">
                        <label for="webhook-workflow">"Workflow"</label>
                        <select
                            id="webhook-workflow"
                            class="select"
                            data-testid="webhook-workflow"
                            on:change=move |ev| pick(event_target_value(&ev))
                        >
                            {list
                                .into_iter()
                                .map(|w| {
                                    let selected = current_id.get_untracked().as_deref()
                                        == Some(w.id.as_str());
                                    view! { <option value=w.id selected=selected>{w.name}</option> }
                                })
                                .collect_view()}
                        </select>
                    </div>
                </div>
                {move || {
                    current_id
                        .get()
                        .and_then(|_| current.get_untracked())
                        .map(|workflow| view! { <WorkflowWebhooks workflow=workflow/> })
                }}
            }
            .into_any()
        }
    }
    }
}

/// The form fields of a new webhook, turned into a `WebhookIn` body by
/// [`NewWebhook::body`].
#[derive(Clone, Debug, PartialEq)]
struct NewWebhook {
    scheme: String,
    hmac_header: String,
    hmac_encoding: String,
    hmac_prefix: String,
    jwt_algorithm: String,
    jwt_key: String,
    sync: bool,
    sync_timeout_ms: String,
    per_second: String,
    burst: String,
}

impl Default for NewWebhook {
    fn default() -> Self {
        Self {
            scheme: "standard_webhooks".to_owned(),
            hmac_header: "X-Signature".to_owned(),
            hmac_encoding: "hex".to_owned(),
            hmac_prefix: "sha256=".to_owned(),
            jwt_algorithm: "HS256".to_owned(),
            jwt_key: String::new(),
            sync: false,
            sync_timeout_ms: "10000".to_owned(),
            per_second: String::new(),
            burst: String::new(),
        }
    }
}

impl NewWebhook {
    /// The request body, or what is wrong with the fields.
    fn body(&self) -> Result<Value, String> {
        let verification = match self.scheme.as_str() {
            "hmac_sha256" => {
                let header = self.hmac_header.trim();
                if header.is_empty() {
                    return Err("The signature header needs a name.".to_owned());
                }
                let mut v = json!({
                    "scheme": "hmac_sha256",
                    "header": header,
                    "encoding": self.hmac_encoding,
                });
                if !self.hmac_prefix.is_empty() {
                    v["prefix"] = json!(self.hmac_prefix);
                }
                v
            }
            "jwt" => {
                let key = self.jwt_key.trim();
                if key.is_empty() {
                    return Err(if self.jwt_algorithm == "HS256" {
                        "A JWT webhook needs the shared secret its tokens are signed with."
                            .to_owned()
                    } else {
                        "A JWT webhook needs the PEM public key its tokens are signed with."
                            .to_owned()
                    });
                }
                json!({ "scheme": "jwt", "algorithm": self.jwt_algorithm, "key": key })
            }
            scheme => json!({ "scheme": scheme }),
        };
        let mut body = json!({ "verification": verification });
        if self.sync {
            let timeout: u64 = self
                .sync_timeout_ms
                .trim()
                .parse()
                .ok()
                .filter(|ms| (1..=60_000).contains(ms))
                .ok_or("The sync timeout must be 1 to 60000 ms.")?;
            body["mode"] = json!({ "sync": { "timeout_ms": timeout } });
        }
        if let Some(limit) = rate_limit(&self.per_second, &self.burst)? {
            body["rate_limit"] = json!(limit);
        }
        Ok(body)
    }
}

/// A rate limit from two text fields: both empty means none.
fn rate_limit(per_second: &str, burst: &str) -> Result<Option<RateLimit>, String> {
    let (per_second, burst) = (per_second.trim(), burst.trim());
    if per_second.is_empty() && burst.is_empty() {
        return Ok(None);
    }
    let per_second: f64 = per_second
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0 && *n <= 1_000_000.0)
        .ok_or("Requests per second must be a number above 0 (at most 1000000).")?;
    let burst: u32 = if burst.is_empty() {
        // A bucket of one second's worth, at least one request.
        // Rounded up on purpose; the range was checked above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let one_second = per_second.ceil() as u32;
        one_second.max(1)
    } else {
        burst
            .parse()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or("Burst must be a whole number from 1 to 1000000.")?
    };
    Ok(Some(RateLimit { per_second, burst }))
}

fn rate_label(limit: Option<RateLimit>) -> String {
    match limit {
        Some(RateLimit { per_second, burst }) => format!("{per_second}/s, burst {burst}"),
        None => "unlimited".to_owned(),
    }
}

/// Whether the scheme has a server-held secret to rotate.
fn has_signing_secret(scheme: &str) -> bool {
    !matches!(scheme, "none" | "jwt")
}

/// The webhooks of one workflow: list, create (secret shown once), test,
/// rotate, delivery log. Also shown in the editor's Webhooks tab.
#[component]
pub fn WorkflowWebhooks(workflow: Workflow) -> impl IntoView {
    let wid = StoredValue::new(workflow.id.clone());
    let hooks = Fetch::new(move || {
        let wid = wid.get_value();
        async move { api::webhooks::list(&wid).await }
    });
    let form = RwSignal::new(NewWebhook::default());
    let open = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let problem = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<api::Error>);
    let shown_secret = RwSignal::new(None::<String>);

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let body = match form.with_untracked(NewWebhook::body) {
            Ok(body) => body,
            Err(p) => {
                problem.set(Some(p));
                return;
            }
        };
        problem.set(None);
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            match api::webhooks::create(&wid.get_value(), &body).await {
                Ok(created) => {
                    shown_secret.set(created.signing_secret);
                    form.set(NewWebhook::default());
                    open.set(false);
                    hooks.refetch();
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let text_field = move |get: fn(&NewWebhook) -> String, set: fn(&mut NewWebhook, String)| {
        (
            move || form.with(get),
            move |ev: web_sys::Event| {
                let value = event_target_value(&ev);
                form.update(|f| set(f, value));
            },
        )
    };
    let (scheme_value, on_scheme) = text_field(|f| f.scheme.clone(), |f, v| f.scheme = v);
    let (header_value, on_header) = text_field(|f| f.hmac_header.clone(), |f, v| f.hmac_header = v);
    let (encoding_value, on_encoding) =
        text_field(|f| f.hmac_encoding.clone(), |f, v| f.hmac_encoding = v);
    let (prefix_value, on_prefix) = text_field(|f| f.hmac_prefix.clone(), |f, v| f.hmac_prefix = v);
    let (alg_value, on_alg) = text_field(|f| f.jwt_algorithm.clone(), |f, v| f.jwt_algorithm = v);
    let (key_value, on_key) = text_field(|f| f.jwt_key.clone(), |f, v| f.jwt_key = v);
    let (timeout_value, on_timeout) =
        text_field(|f| f.sync_timeout_ms.clone(), |f, v| f.sync_timeout_ms = v);
    let (rate_value, on_rate) = text_field(|f| f.per_second.clone(), |f, v| f.per_second = v);
    let (burst_value, on_burst) = text_field(|f| f.burst.clone(), |f, v| f.burst = v);
    let scheme_is = move |scheme: &'static str| move || form.with(|f| f.scheme == scheme);

    let create_form = view! {
        <form class="form" on:submit=create data-testid="webhook-form">
            <div class="form-grid">
                <div class="field">
                    <label for="webhook-scheme">"Verification"</label>
                    <select
                        id="webhook-scheme"
                        class="select"
                        data-testid="webhook-scheme"
                        prop:value=scheme_value
                        on:change=on_scheme
                    >
                        {SCHEMES
                            .iter()
                            .map(|(scheme, label)| view! { <option value=*scheme>{*label}</option> })
                            .collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="webhook-mode">"Mode"</label>
                    <select
                        id="webhook-mode"
                        class="select"
                        data-testid="webhook-mode"
                        on:change=move |ev| {
                            let sync = event_target_value(&ev) == "sync";
                            form.update(|f| f.sync = sync);
                        }
                    >
                        <option value="async" selected=true>"Async: answer 202 once the run is queued"</option>
                        <option value="sync">"Sync: wait for the run's output"</option>
                    </select>
                </div>
                <Show when=move || form.with(|f| f.sync)>
                    <div class="field">
                        <label for="webhook-timeout">"Sync timeout (ms)"</label>
                        <input
                            id="webhook-timeout"
                            class="input"
                            type="number"
                            min="1"
                            max="60000"
                            prop:value=timeout_value
                            on:input=on_timeout
                        />
                    </div>
                </Show>
                <Show when=scheme_is("hmac_sha256")>
                    <div class="field">
                        <label for="webhook-header">"Signature header"</label>
                        <input id="webhook-header" class="input" type="text" prop:value=header_value on:input=on_header/>
                    </div>
                    <div class="field">
                        <label for="webhook-encoding">"Encoding"</label>
                        <select id="webhook-encoding" class="select" prop:value=encoding_value on:change=on_encoding>
                            <option value="hex">"hex"</option>
                            <option value="base64">"base64"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="webhook-prefix">"Prefix"</label>
                        <input id="webhook-prefix" class="input" type="text" prop:value=prefix_value on:input=on_prefix/>
                    </div>
                </Show>
                <Show when=scheme_is("jwt")>
                    <div class="field">
                        <label for="webhook-alg">"Algorithm"</label>
                        <select id="webhook-alg" class="select" prop:value=alg_value on:change=on_alg>
                            <option value="HS256">"HS256 (shared secret)"</option>
                            <option value="RS256">"RS256 (public key)"</option>
                            <option value="ES256">"ES256 (public key)"</option>
                        </select>
                    </div>
                    <div class="field field-wide">
                        <label for="webhook-key">"Secret or PEM public key"</label>
                        <textarea
                            id="webhook-key"
                            class="input textarea"
                            rows="3"
                            autocomplete="off"
                            spellcheck="false"
                            prop:value=key_value
                            on:input=on_key
                        ></textarea>
                    </div>
                </Show>
                <div class="field">
                    <label for="webhook-rate">"Rate limit (requests/s)"</label>
                    <input
                        id="webhook-rate"
                        class="input"
                        type="number"
                        min="0"
                        step="any"
                        placeholder="unlimited"
                        data-testid="webhook-rate"
                        prop:value=rate_value
                        on:input=on_rate
                    />
                </div>
                <div class="field">
                    <label for="webhook-burst">"Burst"</label>
                    <input
                        id="webhook-burst"
                        class="input"
                        type="number"
                        min="1"
                        step="1"
                        placeholder="= rate"
                        prop:value=burst_value
                        on:input=on_burst
                    />
                </div>
            </div>
            {move || problem.get().map(|p| view! { <p class="form-error" role="alert">{p}</p> })}
            {move || error.get().map(|e| view! { <ErrorNotice error=e/> })}
            <div class="form-actions">
                <button type="submit" class="button" data-testid="webhook-create" disabled=move || busy.get()>
                    {move || if busy.get() { "Creating…" } else { "Create webhook" }}
                </button>
                <button type="button" class="button button-secondary" on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
            </div>
        </form>
    };

    let unpublished = workflow.latest_version.is_none();
    let list = move || match hooks.get() {
        None => view! { <Loading label="Loading webhooks…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| hooks.refetch()/> }.into_any()
        }
        Some(Ok(all)) if all.is_empty() => view! {
            <EmptyState title="No webhooks for this workflow" test_id="webhooks-empty">
                <p>"Create one to get a URL that starts a run for every delivery."</p>
            </EmptyState>
        }
        .into_any(),
        Some(Ok(all)) => all
            .into_iter()
            .map(|hook| view! { <WebhookCard hook=hook on_deleted=move |()| hooks.refetch()/> })
            .collect_view()
            .into_any(),
    };

    view! {
        {unpublished
            .then(|| {
                view! {
                    <p class="notice notice-warn" data-testid="webhooks-unpublished">
                        "This workflow has no published version yet: its webhooks refuse deliveries (409) until you publish one."
                    </p>
                }
            })}
        {move || {
            shown_secret
                .get()
                .map(|secret| {
                    view! {
                        <ShownOnce
                            title="Signing secret of the new webhook"
                            value=secret
                            on_dismiss=move |()| shown_secret.set(None)
                        />
                    }
                })
        }}
        <div class="section-header">
            <h2 class="section-title">{format!("Webhooks of “{}”", workflow.name)}</h2>
            <button
                type="button"
                class="button"
                class:hidden=move || open.get()
                data-testid="webhook-new"
                on:click=move |_| open.set(true)
            >
                "New webhook"
            </button>
        </div>
        <section class="card form-card" class:hidden=move || !open.get()>
            <h2 class="card-title">"New webhook"</h2>
            {create_form}
        </section>
        <div class="stack">{list}</div>
    }
}

/// One webhook with its actions. Edits update the card in place from the
/// server's answer.
#[component]
fn WebhookCard(
    hook: Webhook,
    /// Called after the webhook was deleted.
    #[prop(into)]
    on_deleted: Callback<()>,
) -> impl IntoView {
    let hook = RwSignal::new(hook);
    let id = StoredValue::new(hook.with_untracked(|h| h.id.clone()));
    let action_error = RwSignal::new(None::<api::Error>);

    // Rate limit editor.
    let editing_rate = RwSignal::new(false);
    let rate_text = RwSignal::new(String::new());
    let burst_text = RwSignal::new(String::new());
    let rate_problem = RwSignal::new(None::<String>);
    let rate_busy = RwSignal::new(false);
    let open_rate = move |_| {
        let limit = hook.with_untracked(|h| h.rate_limit);
        rate_text.set(limit.map(|l| l.per_second.to_string()).unwrap_or_default());
        burst_text.set(limit.map(|l| l.burst.to_string()).unwrap_or_default());
        rate_problem.set(None);
        editing_rate.set(true);
    };
    let patch = move |body: Value, busy: RwSignal<bool>, done: Option<RwSignal<bool>>| {
        busy.set(true);
        action_error.set(None);
        spawn_local(async move {
            match api::webhooks::update(&id.get_value(), &body).await {
                Ok(updated) => {
                    hook.set(updated);
                    if let Some(done) = done {
                        done.set(false);
                    }
                }
                Err(e) => action_error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let save_rate = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match rate_limit(&rate_text.get_untracked(), &burst_text.get_untracked()) {
            Ok(limit) => {
                rate_problem.set(None);
                patch(
                    json!({ "rate_limit": limit }),
                    rate_busy,
                    Some(editing_rate),
                );
            }
            Err(p) => rate_problem.set(Some(p)),
        }
    };
    let toggle_busy = RwSignal::new(false);
    let toggle_enabled = move |_| {
        let enabled = hook.with_untracked(|h| h.enabled);
        patch(json!({ "enabled": !enabled }), toggle_busy, None);
    };

    // Rotate.
    let rotated = RwSignal::new(None::<api::webhooks::Rotated>);
    let rotate_busy = RwSignal::new(false);
    let rotate = move |_| {
        rotate_busy.set(true);
        action_error.set(None);
        spawn_local(async move {
            match api::webhooks::rotate_secret(&id.get_value()).await {
                Ok(r) => rotated.set(Some(r)),
                Err(e) => action_error.set(Some(e)),
            }
            rotate_busy.set(false);
        });
    };

    // Test send and deliveries.
    let log_open = RwSignal::new(false);
    let reload = RwSignal::new(0_u32);
    let test_payload = RwSignal::new(DEFAULT_TEST_PAYLOAD.to_owned());
    let test_busy = RwSignal::new(false);
    let outcome = RwSignal::new(None::<Result<TestOutcome, String>>);
    let send_test = move |_| {
        let payload: Value = match serde_json::from_str(&test_payload.get_untracked()) {
            Ok(p) => p,
            Err(e) => {
                outcome.set(Some(Err(format!("The test payload is not JSON: {e}"))));
                return;
            }
        };
        test_busy.set(true);
        outcome.set(None);
        spawn_local(async move {
            let result = api::webhooks::test(&id.get_value(), &payload).await;
            outcome.set(Some(result.map_err(|e| e.detail())));
            test_busy.set(false);
            log_open.set(true);
            reload.update(|n| *n += 1);
        });
    };

    // Delete.
    let deleting = RwSignal::new(false);
    let delete_busy = RwSignal::new(false);
    let delete_error = RwSignal::new(None::<String>);
    let confirm_delete = move |()| {
        delete_busy.set(true);
        delete_error.set(None);
        spawn_local(async move {
            match api::webhooks::remove(&id.get_value()).await {
                Ok(()) => {
                    deleting.set(false);
                    on_deleted.run(());
                }
                Err(e) => delete_error.set(Some(e.detail())),
            }
            delete_busy.set(false);
        });
    };

    let url = move || hook.with(|h| h.url.clone());
    let scheme = move || hook.with(Webhook::scheme);
    view! {
        <article class="card webhook-card" data-testid="webhook-card">
            <div class="webhook-url-row">
                <code class="webhook-url" data-testid="webhook-url">{url}</code>
                {move || view! { <CopyButton text=url() label="Copy the webhook URL" test_id="webhook-copy"/> }}
            </div>
            <dl class="facts">
                <div>
                    <dt>"Verification"</dt>
                    <dd data-testid="webhook-scheme-label">{scheme}</dd>
                </div>
                <div>
                    <dt>"Mode"</dt>
                    <dd>{move || hook.with(Webhook::mode_label)}</dd>
                </div>
                <div>
                    <dt>"Rate limit"</dt>
                    <dd data-testid="webhook-rate-label">{move || rate_label(hook.with(|h| h.rate_limit))}</dd>
                </div>
                <div>
                    <dt>"State"</dt>
                    <dd>
                        {move || {
                            if hook.with(|h| h.enabled) {
                                view! { <span class="badge badge-ok">"enabled"</span> }
                            } else {
                                view! { <span class="badge badge-off">"disabled"</span> }
                            }
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Created"</dt>
                    <dd>{move || hook.with(|h| format::relative(&h.created_at))}</dd>
                </div>
            </dl>
            <div class="actions">
                <button type="button" class="button button-secondary button-small" data-testid="webhook-test" disabled=move || test_busy.get() on:click=send_test>
                    {move || if test_busy.get() { "Sending…" } else { "Send test" }}
                </button>
                <button type="button" class="button button-secondary button-small" data-testid="webhook-deliveries" on:click=move |_| log_open.update(|o| *o = !*o)>
                    {move || if log_open.get() { "Hide deliveries" } else { "Deliveries" }}
                </button>
                <button type="button" class="button button-secondary button-small" data-testid="webhook-edit-rate" on:click=open_rate>
                    "Rate limit"
                </button>
                <Show when=move || has_signing_secret(&scheme())>
                    <button type="button" class="button button-secondary button-small" data-testid="webhook-rotate" disabled=move || rotate_busy.get() on:click=rotate>
                        "Rotate secret"
                    </button>
                </Show>
                <button type="button" class="button button-secondary button-small" data-testid="webhook-toggle" disabled=move || toggle_busy.get() on:click=toggle_enabled>
                    {move || if hook.with(|h| h.enabled) { "Disable" } else { "Enable" }}
                </button>
                <button type="button" class="button button-danger-quiet button-small" data-testid="webhook-delete" on:click=move |_| { delete_error.set(None); deleting.set(true); }>
                    "Delete"
                </button>
            </div>
            {move || action_error.get().map(|e| view! { <ErrorNotice error=e/> })}
            {move || {
                rotated
                    .get()
                    .map(|r| {
                        let title = format!(
                            "New signing secret (the previous one works until {})",
                            format::local(&r.previous_valid_until),
                        );
                        view! { <ShownOnce title=title value=r.signing_secret on_dismiss=move |()| rotated.set(None)/> }
                    })
            }}
            <Show when=move || editing_rate.get()>
                <form class="inline-form rate-form" on:submit=save_rate data-testid="webhook-rate-form">
                    <label class="visually-hidden" for="rate-per-second">"Requests per second"</label>
                    <input id="rate-per-second" class="input" type="number" min="0" step="any" placeholder="requests/s (empty: unlimited)"
                        data-testid="webhook-rate-input"
                        prop:value=move || rate_text.get() on:input=move |ev| rate_text.set(event_target_value(&ev))/>
                    <label class="visually-hidden" for="rate-burst">"Burst"</label>
                    <input id="rate-burst" class="input" type="number" min="1" step="1" placeholder="burst"
                        data-testid="webhook-burst-input"
                        prop:value=move || burst_text.get() on:input=move |ev| burst_text.set(event_target_value(&ev))/>
                    <button type="submit" class="button button-small" data-testid="webhook-rate-save" disabled=move || rate_busy.get()>"Save"</button>
                    <button type="button" class="button button-secondary button-small" on:click=move |_| editing_rate.set(false)>"Cancel"</button>
                </form>
                {move || rate_problem.get().map(|p| view! { <p class="form-error" role="alert">{p}</p> })}
            </Show>
            <details class="test-payload">
                <summary>"Test payload"</summary>
                <textarea
                    class="input textarea code"
                    rows="4"
                    spellcheck="false"
                    aria-label="Test payload (JSON)"
                    data-testid="webhook-test-payload"
                    prop:value=move || test_payload.get()
                    on:input=move |ev| test_payload.set(event_target_value(&ev))
                ></textarea>
            </details>
            {move || outcome.get().map(|o| view! { <TestResult outcome=o/> })}
            <Show when=move || log_open.get()>
                <DeliveryLog webhook_id=id.get_value() reload=reload/>
            </Show>
            {move || {
                deleting
                    .get()
                    .then(|| {
                        view! {
                            <ConfirmDialog
                                title="Delete this webhook?"
                                message="Its URL stops accepting deliveries at once. This cannot be undone."
                                confirm_label="Delete webhook"
                                busy=delete_busy
                                error=delete_error
                                on_confirm=confirm_delete
                                on_cancel=move |()| deleting.set(false)
                            />
                        }
                    })
            }}
        </article>
    }
}

/// What a test delivery got back.
#[component]
fn TestResult(outcome: Result<TestOutcome, String>) -> impl IntoView {
    match outcome {
        Ok(TestOutcome { status, body }) => {
            let ok = (200..300).contains(&status);
            let body = serde_json::to_string_pretty(&body).unwrap_or_default();
            view! {
                <div class={if ok { "notice notice-ok" } else { "notice notice-error" }} data-testid="webhook-test-outcome">
                    <div class="notice-body">
                        <p class="notice-title">{format!("Test delivery answered HTTP {status}")}</p>
                        <pre class="code-block">{body}</pre>
                    </div>
                </div>
            }
            .into_any()
        }
        Err(detail) => view! {
            <div class="notice notice-error" role="alert" data-testid="webhook-test-outcome">
                <p class="notice-detail">{detail}</p>
            </div>
        }
        .into_any(),
    }
}

/// The newest deliveries of a webhook; reloads when `reload` changes.
#[component]
fn DeliveryLog(webhook_id: String, #[prop(into)] reload: Signal<u32>) -> impl IntoView {
    let id = StoredValue::new(webhook_id);
    let log = Fetch::new(move || {
        reload.track();
        let id = id.get_value();
        async move { api::webhooks::deliveries(&id).await }
    });
    let rows = move || {
        match log.get() {
        None => view! { <Loading label="Loading deliveries…"/> }.into_any(),
        Some(Err(error)) => {
            view! { <ErrorNotice error=error on_retry=move |()| log.refetch()/> }.into_any()
        }
        Some(Ok(page)) if page.items.is_empty() => view! {
            <p class="muted" data-testid="deliveries-empty">"No deliveries yet."</p>
        }
        .into_any(),
        Some(Ok(page)) => view! {
            <table class="table table-compact" data-testid="delivery-table">
                <thead>
                    <tr>
                        <th scope="col">"Time"</th>
                        <th scope="col">"Verdict"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Latency"</th>
                        <th scope="col">"Run"</th>
                    </tr>
                </thead>
                <tbody>
                    {page
                        .items
                        .into_iter()
                        .map(|d| {
                            let good = matches!(d.verdict.as_str(), "accepted" | "completed" | "duplicate");
                            view! {
                                <tr data-testid="delivery-row">
                                    <td data-label="Time">
                                        <time datetime=d.time.clone() title=format::local(&d.time)>{format::relative(&d.time)}</time>
                                    </td>
                                    <td data-label="Verdict">
                                        <span class={if good { "badge badge-ok" } else { "badge badge-error" }} title=d.detail.clone().unwrap_or_default()>
                                            {d.verdict.clone()}
                                        </span>
                                    </td>
                                    <td data-label="Status">{d.status}</td>
                                    <td data-label="Latency">{d.latency_ms.map(format::latency).unwrap_or_else(|| "–".to_owned())}</td>
                                    <td data-label="Run">
                                        {match d.run_id {
                                            Some(run) => view! {
                                                <a href=format!("/runs/{run}") class="mono">{short_id(&run)}</a>
                                            }.into_any(),
                                            None => view! { <span class="muted">"–"</span> }.into_any(),
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
    };
    view! {
        <section class="delivery-log" data-testid="delivery-log">
            <div class="card-header">
                <h3 class="card-subtitle">"Deliveries"</h3>
                <button type="button" class="button button-secondary button-small" on:click=move |_| log.refetch()>
                    "Refresh"
                </button>
            </div>
            {rows}
        </section>
    }
}

/// The first 8 characters of an id, for tables.
fn short_id(id: &str) -> String {
    id.chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_form_asks_for_standard_webhooks() {
        assert_eq!(
            NewWebhook::default().body(),
            Ok(json!({ "verification": { "scheme": "standard_webhooks" } }))
        );
    }

    #[test]
    fn hmac_jwt_sync_and_rate_limit_bodies() {
        let form = NewWebhook {
            scheme: "hmac_sha256".to_owned(),
            sync: true,
            per_second: "2.5".to_owned(),
            ..NewWebhook::default()
        };
        assert_eq!(
            form.body(),
            Ok(json!({
                "verification": {"scheme": "hmac_sha256", "header": "X-Signature", "encoding": "hex", "prefix": "sha256="},
                "mode": {"sync": {"timeout_ms": 10000}},
                "rate_limit": {"per_second": 2.5, "burst": 3},
            }))
        );
        let jwt = NewWebhook {
            scheme: "jwt".to_owned(),
            ..NewWebhook::default()
        };
        assert!(jwt.body().is_err());
        let jwt = NewWebhook {
            jwt_key: "s3cret".to_owned(),
            ..jwt
        };
        assert_eq!(
            jwt.body(),
            Ok(json!({"verification": {"scheme": "jwt", "algorithm": "HS256", "key": "s3cret"}}))
        );
    }

    #[test]
    fn rate_limits_parse_or_explain() {
        assert_eq!(rate_limit("", ""), Ok(None));
        assert_eq!(
            rate_limit("50", "100"),
            Ok(Some(RateLimit {
                per_second: 50.0,
                burst: 100
            }))
        );
        assert!(rate_limit("0", "").is_err());
        assert!(rate_limit("abc", "").is_err());
        assert!(rate_limit("5", "0").is_err());
        assert_eq!(rate_label(None), "unlimited");
        assert_eq!(
            rate_label(Some(RateLimit {
                per_second: 50.0,
                burst: 100
            })),
            "50/s, burst 100"
        );
    }

    #[test]
    fn only_schemes_with_a_server_secret_rotate() {
        assert!(has_signing_secret("standard_webhooks"));
        assert!(has_signing_secret("hmac_sha256"));
        assert!(!has_signing_secret("none"));
        assert!(!has_signing_secret("jwt"));
    }
}
