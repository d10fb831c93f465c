//! `/workflows/:id`: the visual editor. Palette, canvas and side panel
//! (node form, test run, problems, versions, webhooks), with save, publish,
//! undo/redo, import/export and keyboard shortcuts.

use std::collections::BTreeMap;
use std::time::Duration;

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;
use wasm_bindgen::JsCast;

use crate::api::{self, workflows::NodeType, workflows::Workflow};
use crate::components::copy_button::CopyButton;
use crate::components::status::{ErrorNotice, Loading};
use crate::editor::canvas::{Canvas, Placing, drop_node, page_point, size, typing_in_field};
use crate::editor::panel::Panel;
use crate::editor::state::{
    Doc, Editor, NODE_H, NODE_W, Pos, View, layout_missing, node_of_pointer,
};
use crate::editor::{Ctx, Problem, icon};
use crate::load::Fetch;
use crate::pages::webhooks::WorkflowWebhooks;

/// The workflow page: loads the workflow and the node catalogue.
#[component]
pub fn WorkflowPage() -> impl IntoView {
    let id = crate::router::use_id();
    let loaded = Fetch::new(move || {
        let id = id.get();
        async move {
            let (w, t) = futures::join!(api::workflows::fetch(&id), api::workflows::node_types());
            Ok::<_, api::Error>((w?, t?))
        }
    });
    move || {
        match loaded.get() {
        None => view! { <Loading label="Loading the workflow…"/> }.into_any(),
        Some(Err(error)) => view! {
            <div class="page-header"><h1 data-testid="page-title">"Workflow"</h1></div>
            <ErrorNotice error=error on_retry=move |()| loaded.refetch()/>
            <p class="back-link"><a href="/workflows">"← All workflows"</a></p>
        }
        .into_any(),
        Some(Ok((w, types))) => match Doc::from_value(&w.definition) {
            Ok(doc) => view! { <WorkflowEditor workflow=w types=types doc=doc/> }.into_any(),
            Err(why) => view! {
                <div class="page-header"><h1 data-testid="page-title">{w.name.clone()}</h1></div>
                <div class="notice notice-error" role="alert">{format!("This draft cannot be drawn ({why}). Import a corrected definition or fix it through the API.")}</div>
                <pre class="code-block">{serde_json::to_string_pretty(&w.definition).unwrap_or_default()}</pre>
            }
            .into_any(),
        },
    }
    }
}

/// The side panel's tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tab {
    Node,
    Test,
    Versions,
    Webhooks,
}

/// Dialogs over the editor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialog {
    Help,
    Import,
    Export,
}

/// Waits `ms` milliseconds.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

fn sample_key(workflow: &str) -> String {
    format!("meshhook.sample.{workflow}")
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

#[component]
fn WorkflowEditor(workflow: Workflow, types: Vec<NodeType>, doc: Doc) -> impl IntoView {
    let mut doc = doc;
    layout_missing(&mut doc);
    let ctx = Ctx::new(Editor::new(doc.clone()));
    ctx.types.set(types.clone());
    let wid = StoredValue::new(workflow.id.clone());
    if let Some(sample) =
        storage().and_then(|s| s.get_item(&sample_key(&workflow.id)).ok().flatten())
    {
        ctx.sample.set(sample);
    }
    let workflow = RwSignal::new(workflow);
    let saved = RwSignal::new(doc);
    let tab = RwSignal::new(Tab::Node);
    let dialog = RwSignal::new(None::<Dialog>);
    let placing = RwSignal::new(None::<Placing>);
    let svg_ref = NodeRef::<leptos::svg::Svg>::new();
    let busy = RwSignal::new(None::<&'static str>);
    let valid = RwSignal::new(None::<bool>);
    let viewing = RwSignal::new(None::<i32>);
    let stash = StoredValue::new(None::<Editor>);
    let test_run = RwSignal::new(None::<Result<api::runs::Run, String>>);

    let dirty = Memo::new(move |_| {
        ctx.changes.track();
        viewing.get().is_none() && ctx.ed.with_untracked(|e| saved.with(|s| e.doc != *s))
    });

    // Remember the sample payload per workflow.
    Effect::new(move |_| {
        let sample = ctx.sample.get();
        if let Some(s) = storage() {
            let _ = s.set_item(&sample_key(&wid.get_value()), &sample);
        }
    });

    // Validate unsaved changes on the server, a moment after typing stops.
    let generation = StoredValue::new(0_u64);
    let timer = StoredValue::new(None::<TimeoutHandle>);
    let check = move || {
        if ctx.read_only.get_untracked() {
            return;
        }
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        let doc = ctx.ed.with_untracked(|e| e.doc.clone());
        valid.set(None);
        spawn_local(async move {
            let answer = api::workflows::validate(&wid.get_value(), &doc.to_value()).await;
            if generation.get_value() != mine {
                return;
            }
            match answer {
                Ok(v) => {
                    ctx.problems.set(
                        v.errors
                            .into_iter()
                            .map(|i| Problem {
                                node: node_of_pointer(&doc, &i.path).map(str::to_owned),
                                path: i.path,
                                message: i.message,
                            })
                            .collect(),
                    );
                    valid.set(Some(v.valid));
                }
                Err(e) => ctx.say(
                    format!("Could not check the workflow: {}", e.detail()),
                    true,
                ),
            }
        });
    };
    Effect::new(move |_| {
        ctx.changes.track();
        if let Some(t) = timer.get_value() {
            t.clear();
        }
        timer.set_value(set_timeout_with_handle(check, Duration::from_millis(300)).ok());
    });
    // Toasts fade after a few seconds.
    Effect::new(move |_| {
        if let Some(shown) = ctx.toast.get() {
            set_timeout(
                move || {
                    if ctx.toast.get_untracked().as_ref() == Some(&shown) {
                        ctx.toast.set(None);
                    }
                },
                Duration::from_millis(4000),
            );
        }
    });
    // Clicking or dropping a node shows its form.
    Effect::new(move |first: Option<()>| {
        ctx.node_clicks.track();
        if first.is_some() {
            tab.set(Tab::Node);
        }
    });
    // Start with everything in view.
    Effect::new(move |_| {
        if let Some(svg) = svg_ref.get() {
            let (w, h) = size(&svg.into());
            ctx.view
                .set(ctx.ed.with_untracked(|e| View::fit(&e.doc, w, h)));
        }
    });

    let fit = move || {
        if let Some(svg) = svg_ref.get_untracked() {
            let (w, h) = size(&svg.into());
            ctx.view
                .set(ctx.ed.with_untracked(|e| View::fit(&e.doc, w, h)));
        }
    };
    let focus = move |node: String| {
        ctx.ed.update(|e| e.select_only(&node));
        tab.set(Tab::Node);
        if let (Some(svg), Some(p)) = (
            svg_ref.get_untracked(),
            ctx.ed
                .with_untracked(|e| e.doc.node(&node).map(|n| n.pos())),
        ) {
            let (w, h) = size(&svg.into());
            ctx.view.update(|v| *v = v.centre_on(p, w, h));
        }
    };

    let save = move || async move {
        let doc = ctx.ed.with_untracked(|e| e.doc.clone());
        let answer = api::workflows::save(&wid.get_value(), &doc.to_value()).await;
        match answer {
            Ok(w) => {
                saved.set(doc);
                workflow.set(w);
                ctx.changes.update(|c| *c += 1);
                Ok(())
            }
            Err(e) => Err(e.detail()),
        }
    };
    let save_clicked = move || {
        if busy.get_untracked().is_some() || viewing.get_untracked().is_some() {
            return;
        }
        busy.set(Some("save"));
        spawn_local(async move {
            match save().await {
                Ok(()) => ctx.say("Saved", false),
                Err(e) => ctx.say(format!("Not saved: {e}"), true),
            }
            busy.set(None);
        });
    };
    let publish = move |_| {
        if busy.get_untracked().is_some() {
            return;
        }
        busy.set(Some("publish"));
        spawn_local(async move {
            let outcome = async {
                if dirty.get_untracked() {
                    save().await?;
                }
                let v = api::workflows::publish(&wid.get_value())
                    .await
                    .map_err(|e| e.detail())?;
                let w = api::workflows::fetch(&wid.get_value())
                    .await
                    .map_err(|e| e.detail())?;
                workflow.set(w);
                Ok::<_, String>(v.version)
            };
            match outcome.await {
                Ok(n) => ctx.say(format!("Published v{n}"), false),
                Err(e) => ctx.say(format!("Not published: {e}"), true),
            }
            busy.set(None);
        });
    };
    let run_test = move || {
        if busy.get_untracked().is_some() || viewing.get_untracked().is_some() {
            return;
        }
        let payload = match ctx.sample_value() {
            Ok(p) => p,
            Err(e) => {
                tab.set(Tab::Test);
                ctx.say(e, true);
                return;
            }
        };
        busy.set(Some("test"));
        tab.set(Tab::Test);
        test_run.set(None);
        ctx.run_steps.set(BTreeMap::new());
        spawn_local(async move {
            let outcome = async {
                if dirty.get_untracked() {
                    save().await?;
                }
                let id = api::workflows::test_run(&wid.get_value(), &payload)
                    .await
                    .map_err(|e| e.detail())?;
                // Follow the run; the canvas colours each step as it goes.
                for _ in 0..600 {
                    let run = api::runs::fetch(&id).await.map_err(|e| e.detail())?;
                    let mut steps = BTreeMap::new();
                    for s in &run.steps {
                        steps.insert(s.node_id.clone(), (s.status.clone(), s.output.clone()));
                    }
                    ctx.run_steps.set(steps);
                    if !run.is_open() {
                        return Ok(run);
                    }
                    test_run.set(Some(Ok(run)));
                    sleep(300).await;
                }
                Err("the test run is still going: follow it on the Runs page".to_owned())
            };
            let outcome = outcome.await;
            match &outcome {
                Ok(run) => ctx.say(
                    format!("Test run {}", run.status),
                    run.status != "succeeded",
                ),
                Err(e) => ctx.say(format!("Test run failed to start: {e}"), true),
            }
            test_run.set(Some(outcome));
            busy.set(None);
        });
    };

    // Old versions: shown read-only in place of the draft.
    let view_version = move |n: i32| {
        spawn_local(async move {
            match api::workflows::version(&wid.get_value(), n).await {
                Ok(v) => match v.definition.as_ref().map(Doc::from_value) {
                    Some(Ok(mut doc)) => {
                        layout_missing(&mut doc);
                        if viewing.get_untracked().is_none() {
                            stash.set_value(Some(ctx.ed.get_untracked()));
                        }
                        ctx.ed.set(Editor::new(doc));
                        ctx.read_only.set(true);
                        ctx.problems.set(Vec::new());
                        viewing.set(Some(n));
                        ctx.revision.update(|r| *r += 1);
                        fit();
                    }
                    _ => ctx.say(format!("Version {n} cannot be drawn"), true),
                },
                Err(e) => ctx.say(e.detail(), true),
            }
        });
    };
    let back_to_draft = move || {
        if let Some(draft) = stash.try_update_value(Option::take).flatten() {
            ctx.ed.set(draft);
        }
        ctx.read_only.set(false);
        viewing.set(None);
        ctx.revision.update(|r| *r += 1);
        ctx.changes.update(|c| *c += 1);
        fit();
    };
    let restore = move |_| {
        let Some(n) = viewing.get_untracked() else {
            return;
        };
        let stash_dirty = stash.with_value(|s| {
            s.as_ref()
                .is_some_and(|e| saved.with_untracked(|d| e.doc != *d))
        });
        if stash_dirty
            && !window()
                .confirm_with_message(
                    "Restoring replaces the draft, and your unsaved changes are lost. Restore?",
                )
                .unwrap_or(false)
        {
            return;
        }
        busy.set(Some("restore"));
        spawn_local(async move {
            match api::workflows::restore(&wid.get_value(), n).await {
                Ok(w) => match Doc::from_value(&w.definition) {
                    Ok(mut doc) => {
                        layout_missing(&mut doc);
                        saved.set(doc.clone());
                        stash.set_value(Some(Editor::new(doc)));
                        workflow.set(w);
                        back_to_draft();
                        ctx.say(format!("Version {n} is the draft again"), false);
                    }
                    Err(e) => ctx.say(e, true),
                },
                Err(e) => ctx.say(e.detail(), true),
            }
            busy.set(None);
        });
    };

    // Keyboard shortcuts.
    let keys = window_event_listener(ev::keydown, move |ev: web_sys::KeyboardEvent| {
        let key = ev.key();
        let command = ev.ctrl_key() || ev.meta_key();
        if key == "Escape" {
            if dialog.get_untracked().is_some() {
                dialog.set(None);
            } else {
                ctx.ed.update(Editor::clear_selection);
            }
            return;
        }
        if command && key.eq_ignore_ascii_case("s") {
            ev.prevent_default();
            save_clicked();
            return;
        }
        if command && key == "Enter" {
            ev.prevent_default();
            run_test();
            return;
        }
        if typing_in_field() || dialog.get_untracked().is_some_and(|d| d != Dialog::Help) {
            return;
        }
        match key.as_str() {
            "Delete" | "Backspace" => {
                ev.prevent_default();
                ctx.edit(Editor::delete_selection);
            }
            "z" | "Z" if command => {
                ev.prevent_default();
                ctx.history(ev.shift_key());
            }
            "y" if command => {
                ev.prevent_default();
                ctx.history(true);
            }
            "a" if command => {
                ev.prevent_default();
                ctx.ed.update(Editor::select_all);
            }
            "?" => dialog.update(|d| {
                *d = if d.is_some() {
                    None
                } else {
                    Some(Dialog::Help)
                }
            }),
            "f" if !command => fit(),
            _ => {}
        }
    });
    let leaving = window_event_listener(ev::beforeunload, move |ev: web_sys::BeforeUnloadEvent| {
        if dirty.get_untracked() {
            ev.prevent_default();
            ev.set_return_value("You have unsaved changes.");
        }
    });
    on_cleanup(move || {
        keys.remove();
        leaving.remove();
    });

    let back = move |ev: web_sys::MouseEvent| {
        if dirty.get_untracked()
            && !window()
                .confirm_with_message("Leave the editor? Your unsaved changes are lost.")
                .unwrap_or(false)
        {
            ev.prevent_default();
        }
    };
    let add_at_centre = move |kind: String| {
        let Some(svg) = svg_ref.get_untracked() else {
            return;
        };
        let (w, h) = size(&svg.into());
        let n = ctx.ed.with_untracked(|e| e.doc.nodes.len());
        #[allow(clippy::cast_precision_loss)]
        let nudge = (n % 6) as f64 * 24.0;
        let c = ctx.view.get_untracked().to_canvas(w / 2.0, h / 2.0);
        drop_node(
            ctx,
            &kind,
            Pos {
                x: c.x - NODE_W / 2.0 + nudge,
                y: c.y - NODE_H / 2.0 + nudge,
            },
        );
    };
    let palette = types
        .into_iter()
        .map(|t| {
            let kind = t.kind.clone();
            let k2 = t.kind.clone();
            view! {
                <button
                    type="button"
                    class="palette-item"
                    title=t.description.clone()
                    data-testid=format!("palette-{}", t.kind)
                    on:mousedown=move |ev| {
                        if ev.button() == 0 && !ctx.read_only.get_untracked() {
                            ev.prevent_default();
                            let (x, y) = page_point(&ev);
                            placing.set(Some(Placing { kind: kind.clone(), x, y, moved: false }));
                        }
                    }
                    on:click=move |_| add_at_centre(k2.clone())
                >
                    <span class="palette-icon">{icon(&t.kind)}</span>
                    <span class="palette-text">
                        <span class="palette-title">{t.title.clone()}</span>
                        <span class="palette-description">{t.description.clone()}</span>
                    </span>
                </button>
            }
        })
        .collect_view();
    let ghost = move || {
        placing.get().filter(|p| p.moved).map(|p| {
            view! {
                <div class="palette-ghost" style=format!("left:{}px;top:{}px", p.x, p.y)>
                    {icon(&p.kind)}" "{p.kind.clone()}
                </div>
            }
        })
    };

    let status = move || {
        if let Some(n) = viewing.get() {
            return (format!("viewing v{n} (read-only)"), "badge badge-off");
        }
        workflow.with(|w| {
            (
                w.status_label(),
                if w.is_published() {
                    "badge badge-ok"
                } else {
                    "badge"
                },
            )
        })
    };
    let problem_count = move || ctx.problems.with(Vec::len);
    let check_badge = move || match (valid.get(), problem_count()) {
        (None, _) => ("Checking…".to_owned(), "check-state"),
        (Some(true), _) => ("✓ Valid".to_owned(), "check-state check-ok"),
        (Some(false), n) => (
            format!("{n} problem{}", if n == 1 { "" } else { "s" }),
            "check-state check-bad",
        ),
    };
    let tab_button = move |t: Tab, label: &'static str, test_id: &'static str| {
        view! {
            <button type="button" role="tab" class="tab" class:active=move || tab.get() == t
                aria-selected=move || (tab.get() == t).to_string() data-testid=test_id
                on:click=move |_| tab.set(t)>{label}</button>
        }
    };

    view! {
        <div class="editor" data-testid="editor">
            <div class="editor-bar">
                <a href="/workflows" class="back-link-inline" on:click=back>"←"</a>
                <h1 class="editor-name" data-testid="page-title">{move || workflow.with(|w| w.name.clone())}</h1>
                <span class=move || status().1 data-testid="workflow-status">{move || status().0}</span>
                <span class="dirty-state" data-testid="dirty-state">
                    {move || if dirty.get() { "Unsaved changes" } else { "Saved" }}
                </span>
                <button type="button" class=move || check_badge().1 data-testid="check-state"
                    on:click=move |_| tab.set(Tab::Test)>{move || check_badge().0}</button>
                <div class="editor-actions">
                    <button type="button" class="icon-button" title="Undo (Ctrl+Z)" data-testid="undo"
                        disabled=move || !ctx.ed.with(Editor::can_undo) on:click=move |_| ctx.history(false)>"↶"</button>
                    <button type="button" class="icon-button" title="Redo (Ctrl+Shift+Z)" data-testid="redo"
                        disabled=move || !ctx.ed.with(Editor::can_redo) on:click=move |_| ctx.history(true)>"↷"</button>
                    <button type="button" class="button button-secondary button-small" title="Fit to view (F)" data-testid="fit" on:click=move |_| fit()>"Fit"</button>
                    <button type="button" class="button button-secondary button-small" title="Lay out the nodes left to right" data-testid="auto-layout"
                        on:click=move |_| { if ctx.edit(Editor::auto_layout).is_some() { fit(); } }>"Auto-layout"</button>
                    <button type="button" class="button button-secondary button-small" data-testid="import" on:click=move |_| dialog.set(Some(Dialog::Import))>"Import"</button>
                    <button type="button" class="button button-secondary button-small" data-testid="export" on:click=move |_| dialog.set(Some(Dialog::Export))>"Export"</button>
                    <button type="button" class="icon-button" title="Keyboard shortcuts (?)" data-testid="help" on:click=move |_| dialog.set(Some(Dialog::Help))>"?"</button>
                    <button type="button" class="button button-secondary button-small" title="Save and run with the sample payload (Ctrl+Enter)" data-testid="test-run"
                        disabled=move || busy.get().is_some() || viewing.get().is_some() on:click=move |_| run_test()>
                        {move || if busy.get() == Some("test") { "Running…" } else { "Test run" }}
                    </button>
                    <button type="button" class="button button-secondary button-small" title="Save the draft (Ctrl+S)" data-testid="save"
                        disabled=move || busy.get().is_some() || viewing.get().is_some() || !dirty.get() on:click=move |_| save_clicked()>
                        {move || if busy.get() == Some("save") { "Saving…" } else { "Save" }}
                    </button>
                    <button type="button" class="button button-small" data-testid="publish"
                        title=move || if valid.get() == Some(true) { "Publish the draft as a new version" } else { "Fix the problems first" }
                        disabled=move || busy.get().is_some() || viewing.get().is_some() || valid.get() != Some(true) || workflow.with(Workflow::is_published) && !dirty.get()
                        on:click=publish>
                        {move || if busy.get() == Some("publish") { "Publishing…" } else { "Publish" }}
                    </button>
                </div>
            </div>
            <Show when=move || viewing.get().is_some()>
                <div class="version-banner" data-testid="version-banner">
                    <span>{move || format!("You are looking at version {} — it cannot be changed.", viewing.get().unwrap_or_default())}</span>
                    <button type="button" class="button button-small" data-testid="restore-version" on:click=restore>"Restore as draft"</button>
                    <button type="button" class="button button-secondary button-small" data-testid="back-to-draft" on:click=move |_| back_to_draft()>"Back to the draft"</button>
                </div>
            </Show>
            <div class="editor-body">
                <aside class="palette" data-testid="palette" aria-label="Node types">
                    <h2 class="palette-heading">"Nodes"</h2>
                    {palette}
                </aside>
                <div class="canvas-column">
                    <Canvas ctx=ctx placing=placing svg_ref=svg_ref/>
                    {move || ctx.toast.get().map(|(text, error)| view! {
                        <div class="editor-toast" class:toast-error=error role="status" data-testid="editor-toast">{text}</div>
                    })}
                </div>
                <aside class="side-panel">
                    <div class="tabs" role="tablist">
                        {tab_button(Tab::Node, "Node", "tab-node")}
                        {tab_button(Tab::Test, "Test", "tab-test")}
                        {tab_button(Tab::Versions, "Versions", "tab-versions")}
                        {tab_button(Tab::Webhooks, "Webhooks", "tab-webhooks")}
                    </div>
                    <div class="tab-body">
                        {move || match tab.get() {
                            Tab::Node => view! { <Panel ctx=ctx/> }.into_any(),
                            Tab::Test => view! { <TestTab ctx=ctx test_run=test_run focus=focus/> }.into_any(),
                            Tab::Versions => view! { <VersionsTab workflow=workflow on_view=view_version viewing=viewing/> }.into_any(),
                            Tab::Webhooks => view! { <WebhooksTab workflow=workflow/> }.into_any(),
                        }}
                    </div>
                </aside>
            </div>
            {ghost}
            {move || dialog.get().map(|d| view! { <EditorDialog ctx=ctx which=d dialog=dialog on_import=fit/> })}
        </div>
    }
}

/// Sample payload, test-run result and the problem list.
#[component]
fn TestTab(
    ctx: Ctx,
    test_run: RwSignal<Option<Result<api::runs::Run, String>>>,
    focus: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let sample_error = move || {
        ctx.sample.with(|s| {
            (!s.trim().is_empty())
                .then(|| {
                    serde_json::from_str::<Value>(s)
                        .err()
                        .map(|e| format!("not valid JSON: {e}"))
                })
                .flatten()
        })
    };
    let problems = move || {
        ctx.problems.get().into_iter().map(|p| {
            let node = p.node.clone();
            view! {
                <li>
                    <button type="button" class="problem" data-testid="problem"
                        on:click=move |_| { if let Some(n) = node.clone() { focus(n); } }>
                        <span class="problem-where">{p.node.clone().unwrap_or_else(|| p.path.clone())}</span>
                        <span class="problem-text">{p.message.clone()}</span>
                    </button>
                </li>
            }
        }).collect_view()
    };
    let result = move || {
        test_run.get().map(|r| match r {
            Ok(run) => {
                let output = run.output.as_ref().map(|o| serde_json::to_string_pretty(o).unwrap_or_default()).unwrap_or_else(|| "—".into());
                let error = run.error.as_ref().map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned));
                view! {
                    <div class="test-result">
                        <p>
                            <span class=api::runs::badge(&run.status) data-testid="test-run-status">{run.status.clone()}</span>
                            " "<a href=format!("/runs/{}", run.id) data-testid="test-run-link">"Open the run"</a>
                        </p>
                        {error.map(|e| view! { <p class="field-error">{e}</p> })}
                        <pre class="code-block" data-testid="test-run-output">{output}</pre>
                    </div>
                }.into_any()
            }
            Err(e) => view! { <p class="field-error" data-testid="test-run-error">{e}</p> }.into_any(),
        })
    };
    view! {
        <section class="panel-section">
            <h3>"Problems"</h3>
            {move || (ctx.problems.with(Vec::is_empty)).then(|| view! { <p class="panel-hint" data-testid="no-problems">"No problems: the workflow can be published."</p> })}
            <ul class="problem-list" data-testid="problems">{problems}</ul>
        </section>
        <section class="panel-section">
            <h3>"Sample payload"</h3>
            <p class="field-help">"The trigger body for previews and test runs (JSON). Kept in this browser."</p>
            <textarea class="mono" rows="6" spellcheck="false" data-testid="sample-payload"
                prop:value=move || ctx.sample.get() on:input=move |ev| ctx.sample.set(event_target_value(&ev))></textarea>
            {move || sample_error().map(|e| view! { <span class="field-error">{e}</span> })}
            <p class="field-help">"Ctrl+Enter saves and runs the draft with it; each node shows its status on the canvas."</p>
        </section>
        <section class="panel-section" data-testid="test-result">
            <h3>"Last test run"</h3>
            {result}
        </section>
    }
}

/// Published versions, each viewable read-only.
#[component]
fn VersionsTab(
    workflow: RwSignal<Workflow>,
    on_view: impl Fn(i32) + Copy + Send + 'static,
    viewing: RwSignal<Option<i32>>,
) -> impl IntoView {
    let versions = Fetch::new(move || {
        let (id, _) = workflow.with(|w| (w.id.clone(), w.latest_version));
        async move { api::workflows::versions(&id).await }
    });
    move || {
        match versions.get() {
        None => view! { <Loading label="Loading versions…"/> }.into_any(),
        Some(Err(e)) => view! { <ErrorNotice error=e on_retry=move |()| versions.refetch()/> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! {
            <p class="panel-hint" data-testid="no-versions">"Nothing published yet. Publish makes the draft version 1; webhooks run the newest version."</p>
        }
        .into_any(),
        Some(Ok(list)) => view! {
            <ul class="version-list" data-testid="versions">
                {list.into_iter().map(|v| {
                    let n = v.version;
                    view! {
                        <li class="version-row" class:active=move || viewing.get() == Some(n)>
                            <span class="version-name">{format!("v{n}")}</span>
                            <span class="version-date">{crate::format::relative(&v.created_at)}</span>
                            <button type="button" class="button button-secondary button-small" data-testid=format!("view-version-{n}")
                                on:click=move |_| on_view(n)>"View"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
        }
        .into_any(),
    }
    }
}

/// The workflow's webhooks, once it is published.
#[component]
fn WebhooksTab(workflow: RwSignal<Workflow>) -> impl IntoView {
    move || {
        let w = workflow.get();
        if w.latest_version.is_some() {
            view! { <WorkflowWebhooks workflow=w/> }.into_any()
        } else {
            view! {
                <p class="panel-hint" data-testid="webhooks-unpublished">
                    "Publish the workflow to give it webhook URLs: every request to one starts a run of the newest version."
                </p>
            }
            .into_any()
        }
    }
}

/// Help, import and export.
#[component]
fn EditorDialog(
    ctx: Ctx,
    which: Dialog,
    dialog: RwSignal<Option<Dialog>>,
    on_import: impl Fn() + Copy + 'static,
) -> impl IntoView {
    let close = move |_| dialog.set(None);
    let body = match which {
        Dialog::Help => view! {
            <h2 class="dialog-title">"Keyboard shortcuts"</h2>
            <dl class="shortcuts" data-testid="help-overlay">
                <dt>"Delete / Backspace"</dt><dd>"Delete the selected nodes and edges"</dd>
                <dt>"Ctrl/⌘ + Z"</dt><dd>"Undo"</dd>
                <dt>"Ctrl/⌘ + Shift + Z, Ctrl + Y"</dt><dd>"Redo"</dd>
                <dt>"Ctrl/⌘ + S"</dt><dd>"Save the draft"</dd>
                <dt>"Ctrl/⌘ + Enter"</dt><dd>"Save and test-run with the sample payload"</dd>
                <dt>"Ctrl/⌘ + A"</dt><dd>"Select everything"</dd>
                <dt>"F"</dt><dd>"Fit the workflow to the view"</dd>
                <dt>"Escape"</dt><dd>"Close this panel, or clear the selection"</dd>
                <dt>"?"</dt><dd>"Show or hide this help"</dd>
                <dt>"Shift/Ctrl + click"</dt><dd>"Add to or remove from the selection"</dd>
                <dt>"Shift + drag"</dt><dd>"Select with a rectangle"</dd>
                <dt>"Drag the background, wheel"</dt><dd>"Pan, zoom"</dd>
            </dl>
        }
        .into_any(),
        Dialog::Export => {
            let json = ctx.ed.with_untracked(|e| e.doc.to_pretty());
            let download = {
                let json = json.clone();
                move |_| download_json("workflow.json", &json)
            };
            view! {
                <h2 class="dialog-title">"Export the definition"</h2>
                <textarea class="mono" rows="16" readonly data-testid="export-json" prop:value=json.clone()></textarea>
                <div class="dialog-actions">
                    <CopyButton text=json label="Copy the definition"/>
                    <button type="button" class="button button-small" data-testid="download-json" on:click=download>"Download"</button>
                </div>
            }
            .into_any()
        }
        Dialog::Import => {
            let text = RwSignal::new(String::new());
            let error = RwSignal::new(None::<String>);
            let import = move |_| match text.with_untracked(|t| Doc::import(t)) {
                Ok(doc) => {
                    if ctx.edit(|e| e.replace(doc)).is_some() {
                        ctx.revision.update(|r| *r += 1);
                        dialog.set(None);
                        on_import();
                        ctx.say("Imported: save to keep it", false);
                    }
                }
                Err(e) => error.set(Some(e)),
            };
            view! {
                <h2 class="dialog-title">"Import a definition"</h2>
                <p class="field-help">"Paste a definition ({nodes, edges}) or a workflow as exported. It replaces the canvas; Undo brings the old one back."</p>
                <textarea class="mono" rows="14" spellcheck="false" data-testid="import-json"
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
                {move || error.get().map(|e| view! { <p class="field-error" data-testid="import-error">{e}</p> })}
                <div class="dialog-actions">
                    <button type="button" class="button button-small" data-testid="import-apply" on:click=import>"Import"</button>
                </div>
            }
            .into_any()
        }
    };
    view! {
        <div class="dialog-backdrop" on:click=close>
            <div class="dialog card editor-dialog" role="dialog" aria-modal="true" on:click=|ev| ev.stop_propagation()>
                {body}
                <button type="button" class="icon-button dialog-close" title="Close (Escape)" data-testid="dialog-close" on:click=close>"×"</button>
            </div>
        </div>
    }
}

/// Offers `json` as a file download.
fn download_json(name: &str, json: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(json));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Some(a) = document()
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
    {
        a.set_href(&url);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}
