//! A run's workflow drawn read-only, each node coloured by its step's
//! status and updated as the run page refreshes; clicking a node picks it
//! (for the step detail and resume-from-step).

use std::collections::BTreeMap;

use leptos::prelude::*;

use super::Ctx;
use super::canvas::{Canvas, size};
use super::state::{Doc, Editor, View, layout_missing};
use crate::api::{self, runs::Step};
use crate::components::status::{ErrorNotice, Loading};
use crate::load::Fetch;

/// The statuses shown in the legend, with their meaning.
const LEGEND: [(&str, &str); 6] = [
    ("pending", "not reached"),
    ("running", "running or waiting"),
    ("retrying", "retrying"),
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("skipped", "skipped"),
];

/// The DAG of the version a run executes (the draft for test runs).
#[component]
pub fn RunDag(
    workflow_id: String,
    version: Option<i32>,
    /// The run's steps, refreshed while it runs.
    #[prop(into)]
    steps: Signal<Vec<Step>>,
    /// The node picked on the DAG (and picked elsewhere, shown selected).
    picked: RwSignal<Option<String>>,
    /// Set to the workflow's entry node once the definition is loaded.
    entry: RwSignal<Option<String>>,
) -> impl IntoView {
    let definition = Fetch::new(move || {
        let wid = workflow_id.clone();
        async move {
            let raw = match version {
                Some(n) => api::workflows::version(&wid, n)
                    .await?
                    .definition
                    .unwrap_or_default(),
                None => api::workflows::fetch(&wid).await?.definition,
            };
            Ok::<_, api::Error>(raw)
        }
    });
    move || match definition.get() {
        None => view! { <Loading label="Loading the workflow…"/> }.into_any(),
        Some(Err(e)) => view! { <ErrorNotice error=e/> }.into_any(),
        Some(Ok(raw)) => match Doc::from_value(&raw) {
            Ok(mut doc) => {
                layout_missing(&mut doc);
                entry.set(
                    doc.nodes
                        .iter()
                        .find(|n| !doc.edges.iter().any(|e| e.to == n.id))
                        .map(|n| n.id.clone()),
                );
                view! { <Dag doc=doc steps=steps picked=picked/> }.into_any()
            }
            Err(why) => view! { <p class="field-error">{why}</p> }.into_any(),
        },
    }
}

#[component]
fn Dag(doc: Doc, steps: Signal<Vec<Step>>, picked: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = Ctx::new(Editor::new(doc));
    ctx.read_only.set(true);
    let svg_ref = NodeRef::<leptos::svg::Svg>::new();
    Effect::new(move |_| {
        let mut all: BTreeMap<String, (String, Option<serde_json::Value>)> = BTreeMap::new();
        ctx.ed.with_untracked(|e| {
            for n in &e.doc.nodes {
                all.insert(n.id.clone(), ("pending".to_owned(), None));
            }
        });
        for s in steps.get() {
            all.insert(s.node_id.clone(), (s.status.clone(), s.output.clone()));
        }
        ctx.run_steps.set(all);
    });
    // Clicks on the DAG pick a node; a node picked elsewhere is selected.
    Effect::new(move |_| {
        let chosen = ctx
            .ed
            .with(|e| e.selection.single_node().map(str::to_owned));
        if chosen.is_some() && chosen != picked.get_untracked() {
            picked.set(chosen);
        }
    });
    Effect::new(move |_| {
        if let Some(id) = picked.get()
            && ctx
                .ed
                .with_untracked(|e| e.selection.single_node() != Some(id.as_str()))
        {
            ctx.ed.update(|e| e.select_only(&id));
        }
    });
    Effect::new(move |_| {
        if let Some(svg) = svg_ref.get() {
            let (w, h) = size(&svg.into());
            ctx.view
                .set(ctx.ed.with_untracked(|e| View::fit(&e.doc, w, h)));
        }
    });
    view! {
        <div class="run-dag" data-testid="run-dag">
            <Canvas ctx=ctx placing=RwSignal::new(None) svg_ref=svg_ref/>
        </div>
        <ul class="dag-legend">
            {LEGEND.iter().map(|(status, text)| view! {
                <li><span class=format!("legend-swatch run-{status}")></span>{*text}</li>
            }).collect_view()}
        </ul>
    }
}
