//! The side panel: the selected node's id and its config form, generated
//! from the node type's JSON Schema, with JMESPath and template fields
//! checked as you type (the core crate in wasm), the mapping preview and
//! the node's result in the last test run.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::Value;

use super::form::{self, Field, Kind, TextFormat};
use super::{Ctx, icon, preview};

/// The panel for whatever is selected.
#[component]
pub fn Panel(ctx: Ctx) -> impl IntoView {
    let selected = Memo::new(move |_| {
        ctx.ed
            .with(|e| e.selection.single_node().map(str::to_owned))
    });
    let edges = Memo::new(move |_| ctx.ed.with(|e| e.selection.edges.len()));
    let nodes = Memo::new(move |_| ctx.ed.with(|e| e.selection.nodes.len()));
    move || {
        ctx.revision.track();
        match selected.get() {
            Some(id) => view! { <NodePanel ctx=ctx id=id/> }.into_any(),
            None => {
                let (n, e) = (nodes.get(), edges.get());
                let text = if n + e == 0 {
                    "Select a node to edit it. Drag from a node's right-hand port to another node's left-hand port to connect them. Press ? for shortcuts.".to_owned()
                } else {
                    format!(
                        "{n} node(s) and {e} edge(s) selected. Delete or Backspace removes them."
                    )
                };
                view! { <p class="panel-hint" data-testid="panel-hint">{text}</p> }.into_any()
            }
        }
    }
}

/// The config value at `path` of node `id`, without tracking.
fn read(ctx: Ctx, id: &str, path: &[String]) -> Option<Value> {
    ctx.ed.with_untracked(|e| {
        let mut at = &e.doc.node(id)?.config;
        for key in path {
            at = at.get(key)?;
        }
        Some(at.clone())
    })
}

/// Writes (or removes) the config value at `path` of node `id`.
fn write(ctx: Ctx, id: &str, path: &[String], value: Option<Value>) {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    ctx.edit(|e| e.set_config(id, &path, value));
}

#[component]
fn NodePanel(ctx: Ctx, id: String) -> impl IntoView {
    let kind = ctx
        .ed
        .with_untracked(|e| e.doc.node(&id).map(|n| n.kind.clone()))
        .unwrap_or_default();
    let node_type = ctx.node_type(&kind);
    let (title, description, schema) = node_type.map_or_else(
        || (kind.clone(), "Unknown node type.".to_owned(), Value::Null),
        |t| (t.title, t.description, t.config_schema),
    );
    let id_text = RwSignal::new(id.clone());
    let id_error = RwSignal::new(None::<String>);
    let current = StoredValue::new(id.clone());
    let rename = move |_| {
        let new = id_text.get_untracked();
        match ctx.edit(|e| e.rename(&current.get_value(), new.trim())) {
            Some(Err(why)) => id_error.set(Some(why)),
            _ => id_error.set(None),
        }
    };
    let fields = form::fields(&schema)
        .into_iter()
        .map(|f| field_view(ctx, id.clone(), Vec::new(), f))
        .collect_view();
    let problems = {
        let id = id.clone();
        move || {
            ctx.problems.with(|p| {
                p.iter()
                    .filter(|p| p.node.as_deref() == Some(id.as_str()))
                    .map(|p| view! { <li>{p.path.clone()}": "{p.message.clone()}</li> })
                    .collect_view()
            })
        }
    };
    let preview_key = match kind.as_str() {
        "transform" => Some("expression"),
        "branch" => Some("condition"),
        "terminate" => Some("output"),
        _ => None,
    };
    let last_run = {
        let id = id.clone();
        move || {
            ctx.run_steps.with(|s| {
                s.get(&id).map(|(status, output)| {
                    let output = output
                        .as_ref()
                        .map(|o| serde_json::to_string_pretty(o).unwrap_or_default())
                        .unwrap_or_else(|| "—".into());
                    view! {
                        <section class="panel-section" data-testid="node-last-run">
                            <h3>"Last test run"</h3>
                            <p><span class=crate::api::runs::badge(status)>{status.clone()}</span></p>
                            <pre class="code-block">{output}</pre>
                        </section>
                    }
                })
            })
        }
    };
    view! {
        <div class="node-panel" data-testid="node-panel">
            <header class="panel-head">
                <span class="panel-icon">{icon(&kind)}</span>
                <div>
                    <h2 class="panel-title" data-testid="panel-type">{title}</h2>
                    <p class="panel-description">{description}</p>
                </div>
            </header>
            <label class="field">
                <span class="field-label">"Node id"</span>
                <input
                    type="text"
                    data-testid="field-id"
                    prop:value=move || id_text.get()
                    on:input=move |ev| id_text.set(event_target_value(&ev))
                    on:change=rename
                />
                <span class="field-help">"Other nodes read this node's output as steps.<id>."</span>
                {move || id_error.get().map(|e| view! { <span class="field-error" data-testid="field-error-id">{e}</span> })}
            </label>
            {fields}
            {preview_key.map(|key| view! { <Preview ctx=ctx id=id.clone() key=key/> })}
            <ul class="node-problems" data-testid="node-problems">{problems}</ul>
            {last_run}
        </div>
    }
}

/// The live result of the node's expression over the sample payload.
#[component]
fn Preview(ctx: Ctx, id: String, key: &'static str) -> impl IntoView {
    // Recomputed shortly after changes stop, so dragging stays smooth.
    let result = RwSignal::new((Ok::<Value, String>(Value::Null), Value::Null));
    let compute = {
        let id = id.clone();
        move || {
            let sample = ctx.sample.get_untracked();
            let body: Value = match serde_json::from_str(&sample) {
                Ok(v) => v,
                Err(e) if !sample.trim().is_empty() => {
                    result.set((
                        Err(format!("the sample payload is not JSON: {e}")),
                        Value::Null,
                    ));
                    return;
                }
                Err(_) => Value::Object(serde_json::Map::new()),
            };
            let mut known = BTreeMap::new();
            ctx.run_steps.with_untracked(|s| {
                for (k, (_, o)) in s {
                    if let Some(o) = o {
                        known.insert(k.clone(), o.clone());
                    }
                }
            });
            result.set(ctx.ed.with_untracked(|e| {
                let ctx_value = preview::context(&e.doc, &id, &body, &known);
                let expression = e
                    .doc
                    .node(&id)
                    .and_then(|n| n.config.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if expression.is_empty() {
                    (Ok(Value::Null), ctx_value)
                } else {
                    (preview::evaluate(&expression, &ctx_value), ctx_value)
                }
            }));
        }
    };
    let timer = StoredValue::new(None::<TimeoutHandle>);
    Effect::new(move |first: Option<()>| {
        ctx.changes.track();
        ctx.sample.track();
        ctx.run_steps.track();
        if let Some(t) = timer.get_value() {
            t.clear();
        }
        if first.is_none() {
            compute();
        } else {
            let compute = compute.clone();
            timer.set_value(
                set_timeout_with_handle(compute, std::time::Duration::from_millis(120)).ok(),
            );
        }
    });
    on_cleanup(move || {
        if let Some(t) = timer.get_value() {
            t.clear();
        }
    });
    let show_context = RwSignal::new(false);
    view! {
        <section class="panel-section preview" data-testid="preview">
            <h3>"Preview with the sample payload"</h3>
            {move || match result.get().0 {
                Ok(v) => view! {
                    <pre class="code-block" data-testid="preview-result">{serde_json::to_string_pretty(&v).unwrap_or_default()}</pre>
                }.into_any(),
                Err(e) => view! { <p class="field-error" data-testid="preview-error">{e}</p> }.into_any(),
            }}
            <button type="button" class="link-button" on:click=move |_| show_context.update(|s| *s = !*s)>
                {move || if show_context.get() { "Hide the context" } else { "Show the context (trigger, steps, run)" }}
            </button>
            <Show when=move || show_context.get()>
                <pre class="code-block" data-testid="preview-context">
                    {move || serde_json::to_string_pretty(&result.get().1).unwrap_or_default()}
                </pre>
            </Show>
        </section>
    }
}

/// One form field (recursive for groups).
fn field_view(ctx: Ctx, id: String, parent: Vec<String>, field: Field) -> AnyView {
    let mut path = parent;
    path.push(field.key.clone());
    let test_id = format!("field-{}", path.join("-"));
    let error_id = format!("field-error-{}", path.join("-"));
    let error = RwSignal::new(None::<String>);
    let current = read(ctx, &id, &path);
    let placeholder = field
        .default
        .as_ref()
        .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned))
        .unwrap_or_default();
    let label = if field.required {
        format!("{} *", field.title)
    } else {
        field.title.clone()
    };
    let ids = StoredValue::new((id, path));
    let input: AnyView = match field.kind {
        Kind::Text(format) => {
            let text = RwSignal::new(
                current
                    .as_ref()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            );
            error.set(
                form::check_text(format, field.required, &text.get_untracked())
                    .map(|p| p.describe()),
            );
            let required = field.required;
            let on_input = move |ev| {
                let value = event_target_value(&ev);
                error.set(form::check_text(format, required, &value).map(|p| p.describe()));
                let stored = (!value.is_empty() || required).then(|| Value::String(value.clone()));
                ids.with_value(|(id, path)| write(ctx, id, path, stored));
                text.set(value);
            };
            if format == TextFormat::JmesPath {
                view! {
                    <textarea class="mono" rows="2" spellcheck="false" data-testid=test_id placeholder=placeholder
                        prop:value=move || text.get() on:input=on_input></textarea>
                }
                .into_any()
            } else {
                view! {
                    <input type="text" class:mono=format == TextFormat::Template spellcheck="false" data-testid=test_id
                        placeholder=placeholder prop:value=move || text.get() on:input=on_input/>
                }
                .into_any()
            }
        }
        Kind::Integer { duration } => {
            let text = RwSignal::new(current.as_ref().map(Value::to_string).unwrap_or_default());
            let hint = move || {
                let t = text.get();
                let ms = form::parse_integer(&t)
                    .ok()
                    .flatten()
                    .or_else(|| form::parse_integer(&placeholder).ok().flatten());
                (duration && ms.is_some()).then(|| form::human_duration(ms.unwrap_or_default()))
            };
            view! {
                <input type="text" inputmode="numeric" data-testid=test_id placeholder=field.default.as_ref().map(Value::to_string).unwrap_or_default()
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        let value = event_target_value(&ev);
                        match form::parse_integer(&value) {
                            Ok(n) => {
                                error.set(None);
                                ids.with_value(|(id, path)| write(ctx, id, path, n.map(Value::from)));
                            }
                            Err(e) => error.set(Some(e)),
                        }
                        text.set(value);
                    }/>
                <span class="field-help">{hint}</span>
            }
            .into_any()
        }
        Kind::Enum(options) => {
            let chosen = current
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let blank = (!field.required).then(|| {
                let text = if placeholder.is_empty() {
                    "(not set)".to_owned()
                } else {
                    format!("(default: {placeholder})")
                };
                view! { <option value="" selected=chosen.is_empty()>{text}</option> }
            });
            let options = options
                .into_iter()
                .map(
                    |o| view! { <option value=o.clone() selected=o == chosen>{o.clone()}</option> },
                )
                .collect_view();
            view! {
                <select data-testid=test_id on:change=move |ev| {
                    let value = event_target_value(&ev);
                    let stored = (!value.is_empty()).then_some(Value::String(value));
                    ids.with_value(|(id, path)| write(ctx, id, path, stored));
                }>{blank}{options}</select>
            }
            .into_any()
        }
        Kind::Bool => {
            let on = current.as_ref().and_then(Value::as_bool).unwrap_or(false);
            view! {
                <input type="checkbox" data-testid=test_id prop:checked=on on:change=move |ev| {
                    let checked = event_target_checked(&ev);
                    ids.with_value(|(id, path)| write(ctx, id, path, Some(Value::Bool(checked))));
                }/>
            }
            .into_any()
        }
        Kind::IntegerList => {
            let text = current
                .as_ref()
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            view! {
                <input type="text" data-testid=test_id placeholder="e.g. 408, 429, 503" prop:value=text on:input=move |ev| {
                    match form::parse_integer_list(&event_target_value(&ev)) {
                        Ok(list) => {
                            error.set(None);
                            ids.with_value(|(id, path)| write(ctx, id, path, list.map(Value::from)));
                        }
                        Err(e) => error.set(Some(e)),
                    }
                }/>
            }
            .into_any()
        }
        Kind::Json => {
            let text = current
                .as_ref()
                .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
                .unwrap_or_default();
            error.set(
                current
                    .as_ref()
                    .and_then(form::check_json_templates)
                    .map(|p| p.describe()),
            );
            view! {
                <textarea class="mono" rows="5" spellcheck="false" data-testid=test_id placeholder="JSON, e.g. {\"id\": \"{{ steps.pick.id }}\"}"
                    prop:value=text on:input=move |ev| {
                        let value = event_target_value(&ev);
                        if value.trim().is_empty() {
                            error.set(None);
                            ids.with_value(|(id, path)| write(ctx, id, path, None));
                            return;
                        }
                        match serde_json::from_str::<Value>(&value) {
                            Ok(v) => {
                                error.set(form::check_json_templates(&v).map(|p| p.describe()));
                                ids.with_value(|(id, path)| write(ctx, id, path, Some(v)));
                            }
                            Err(e) => error.set(Some(format!("not valid JSON: {e}"))),
                        }
                    }></textarea>
            }
            .into_any()
        }
        Kind::TemplateMap => map_editor(ctx, ids, current.as_ref(), test_id, error),
        Kind::Group(inner) => {
            let (id, path) = ids.get_value();
            let children = inner
                .into_iter()
                .map(|f| field_view(ctx, id.clone(), path.clone(), f))
                .collect_view();
            return view! {
                <fieldset class="field-group" data-testid=test_id>
                    <legend>{field.title}</legend>
                    <p class="field-help">{field.description}</p>
                    {children}
                </fieldset>
            }
            .into_any();
        }
    };
    view! {
        <div class="field" class:field-invalid=move || error.with(Option::is_some)>
            <span class="field-label">{label}</span>
            {input}
            <span class="field-help">{field.description}</span>
            {move || error.get().map(|e| view! { <span class="field-error" data-testid=error_id.clone()>{e}</span> })}
        </div>
    }
    .into_any()
}

/// Key/value rows for headers and query parameters; values are templates.
fn map_editor(
    ctx: Ctx,
    ids: StoredValue<(String, Vec<String>)>,
    current: Option<&Value>,
    test_id: String,
    error: RwSignal<Option<String>>,
) -> AnyView {
    let rows = RwSignal::new(form::map_rows(current));
    let commit = move || {
        let map = rows.with_untracked(|r| form::rows_to_map(r));
        error.set(rows.with_untracked(|r| {
            r.iter().find_map(|(k, v)| {
                form::check_text(TextFormat::Template, false, v)
                    .map(|p| format!("{k}: {}", p.describe()))
            })
        }));
        let stored = map
            .as_object()
            .is_some_and(|m| !m.is_empty())
            .then_some(map);
        ids.with_value(|(id, path)| write(ctx, id, path, stored));
    };
    let row_views = move || {
        (0..rows.with(Vec::len))
            .map(|i| {
                let (k, v) = rows.with_untracked(|r| r[i].clone());
                view! {
                    <div class="map-row">
                        <input type="text" placeholder="Name" aria-label="Name" prop:value=k on:input=move |ev| {
                            let value = event_target_value(&ev);
                            rows.update_untracked(|r| r[i].0 = value);
                            commit();
                        }/>
                        <input type="text" class="mono" placeholder="Value ({{ expr }} allowed)" aria-label="Value" prop:value=v on:input=move |ev| {
                            let value = event_target_value(&ev);
                            rows.update_untracked(|r| r[i].1 = value);
                            commit();
                        }/>
                        <button type="button" class="icon-button" title="Remove" on:click=move |_| {
                            rows.update(|r| { r.remove(i); });
                            commit();
                        }>"×"</button>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <div class="map-editor" data-testid=test_id>
            {row_views}
            <button type="button" class="button button-secondary button-small" on:click=move |_| rows.update(|r| r.push((String::new(), String::new())))>
                "Add"
            </button>
        </div>
    }
    .into_any()
}
