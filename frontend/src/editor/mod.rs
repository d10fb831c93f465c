//! The visual workflow editor: the pure document model ([`state`]), the
//! schema-driven forms ([`form`]), the mapping preview ([`preview`]), and
//! the Leptos views ([`canvas`], [`panel`]) that the workflow page puts
//! together.

pub mod canvas;
pub mod form;
pub mod panel;
pub mod preview;
pub mod run_dag;
pub mod state;

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde_json::Value;

use crate::api::workflows::NodeType;
use state::{Editor, View};

/// One validation problem, with the node it is about when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub node: Option<String>,
    pub path: String,
    pub message: String,
}

/// The editor's shared state, handed to every part of the page.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub ed: RwSignal<Editor>,
    pub view: RwSignal<View>,
    pub types: RwSignal<Vec<NodeType>>,
    /// Problems the server found in the current document.
    pub problems: RwSignal<Vec<Problem>>,
    /// Step statuses and outputs of the last test run, by node id.
    pub run_steps: RwSignal<BTreeMap<String, (String, Option<Value>)>>,
    /// Viewing an old version: nothing can be changed.
    pub read_only: RwSignal<bool>,
    /// Bumped when the document is replaced wholesale (undo, import), so
    /// forms holding their own text start over from the document.
    pub revision: RwSignal<u64>,
    /// A short message over the canvas (`(text, is_error)`).
    pub toast: RwSignal<Option<(String, bool)>>,
    /// The sample trigger body (JSON text) for previews and test runs.
    pub sample: RwSignal<String>,
    /// Bumped on every change of the document (validation, dirty state).
    pub changes: RwSignal<u64>,
    /// Bumped when a node is clicked or dropped: the panel shows its form.
    pub node_clicks: RwSignal<u64>,
    /// The offset (canvas units) of the selection while it is dragged.
    pub drag: RwSignal<Option<(f64, f64)>>,
}

impl Ctx {
    pub fn new(editor: Editor) -> Self {
        Ctx {
            ed: RwSignal::new(editor),
            view: RwSignal::new(View::default()),
            types: RwSignal::new(Vec::new()),
            problems: RwSignal::new(Vec::new()),
            run_steps: RwSignal::new(BTreeMap::new()),
            read_only: RwSignal::new(false),
            revision: RwSignal::new(0),
            toast: RwSignal::new(None),
            sample: RwSignal::new("{}".to_owned()),
            changes: RwSignal::new(0),
            node_clicks: RwSignal::new(0),
            drag: RwSignal::new(None),
        }
    }

    /// The node type named `kind`, when the catalogue has loaded.
    pub fn node_type(&self, kind: &str) -> Option<NodeType> {
        self.types
            .with_untracked(|t| t.iter().find(|t| t.kind == kind).cloned())
    }

    /// Changes the document unless it is read-only.
    pub fn edit<R>(&self, f: impl FnOnce(&mut Editor) -> R) -> Option<R> {
        if self.read_only.get_untracked() {
            self.toast.set(Some((
                "This is an old version: restore it as the draft to change it".into(),
                true,
            )));
            return None;
        }
        let out = self.ed.try_update(f);
        self.changes.update(|c| *c += 1);
        out
    }

    /// Undo or redo, then let forms reload.
    pub fn history(&self, redo: bool) {
        let changed = self
            .edit(|e| if redo { e.redo() } else { e.undo() })
            .unwrap_or(false);
        if changed {
            self.revision.update(|r| *r += 1);
        }
    }

    pub fn say(&self, text: impl Into<String>, error: bool) {
        self.toast.set(Some((text.into(), error)));
    }

    /// The sample payload as JSON (an empty object when it does not parse).
    pub fn sample_value(&self) -> Result<Value, String> {
        self.sample.with_untracked(|s| {
            if s.trim().is_empty() {
                Ok(Value::Object(serde_json::Map::new()))
            } else {
                serde_json::from_str(s).map_err(|e| format!("the sample payload is not JSON: {e}"))
            }
        })
    }
}

/// A glyph for each node type (the API's `icon` names them).
pub fn icon(kind: &str) -> &'static str {
    match kind {
        "transform" => "ƒ",
        "http_call" => "⇄",
        "branch" => "◇",
        "delay" => "◷",
        "terminate" => "■",
        _ => "?",
    }
}
