//! The editor's document and every change made to it: adding, moving,
//! connecting and deleting nodes, selection, undo/redo, import and
//! auto-layout. Pure Rust without the DOM, so it is tested on the host.
//!
//! The document keeps the definition's JSON shape (API.md, "Definition")
//! without validating it: drafts may be invalid while being edited, and the
//! server (plus the wasm checks in [`super::form`]) says what is wrong.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Width of a node box on the canvas, in canvas units.
pub const NODE_W: f64 = 184.0;
/// Height of a node box.
pub const NODE_H: f64 = 56.0;
/// Horizontal gap between layers in the auto-layout.
const LAYER_GAP: f64 = 96.0;
/// Vertical gap between nodes of one layer in the auto-layout.
const ROW_GAP: f64 = 36.0;
/// How many steps undo remembers.
const HISTORY: usize = 200;
/// The longest node id the API accepts.
const MAX_ID_LEN: usize = meshhook_core::validate::MAX_NODE_ID_LEN;

/// A canvas position (the node's top-left corner).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pos {
    #[serde(serialize_with = "coordinate")]
    pub x: f64,
    #[serde(serialize_with = "coordinate")]
    pub y: f64,
}

/// Whole coordinates are written as integers (`260`, not `260.0`), so a
/// definition read and written back stays exactly as it was.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn coordinate<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    #[allow(clippy::cast_possible_truncation, clippy::float_cmp)]
    let whole = v.fract() == 0.0 && v.abs() < 9.0e15;
    if whole {
        #[allow(clippy::cast_possible_truncation)]
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// One node as the definition stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDraft {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub config: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Pos>,
}

impl NodeDraft {
    /// Where the node is drawn (the origin until laid out).
    pub fn pos(&self) -> Pos {
        self.position.unwrap_or_default()
    }
}

/// One edge; `label` is the branch port (`"true"`/`"false"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeDraft {
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A workflow definition being edited.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub nodes: Vec<NodeDraft>,
    #[serde(default)]
    pub edges: Vec<EdgeDraft>,
}

impl Doc {
    /// Reads a definition; the error says what could not be read.
    pub fn from_value(value: &Value) -> Result<Doc, String> {
        serde_json::from_value(value.clone()).map_err(|e| format!("not a workflow definition: {e}"))
    }

    /// Parses an imported JSON text: a definition, or an object with a
    /// `definition` (as `GET /api/v1/workflows/{id}` answers).
    pub fn import(text: &str) -> Result<Doc, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let value = match value.get("definition") {
            Some(inner) if value.get("nodes").is_none() => inner.clone(),
            _ => value,
        };
        let doc = Doc::from_value(&value)?;
        let mut seen = BTreeSet::new();
        for node in &doc.nodes {
            if !seen.insert(node.id.as_str()) {
                return Err(format!("two nodes have the id `{}`", node.id));
            }
        }
        Ok(doc)
    }

    /// The definition as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Pretty JSON for export.
    pub fn to_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn node(&self, id: &str) -> Option<&NodeDraft> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: &str) -> Option<&mut NodeDraft> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    /// Whether `to` can be reached from `from` along edges.
    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(at) = todo.pop() {
            if at == to {
                return true;
            }
            if seen.insert(at) {
                todo.extend(
                    self.edges
                        .iter()
                        .filter(|e| e.from == at)
                        .map(|e| e.to.as_str()),
                );
            }
        }
        false
    }

    /// Node ids in an order where every edge goes forward (nodes on cycles
    /// last, in document order).
    pub fn topological(&self) -> Vec<String> {
        let mut incoming: BTreeMap<&str, usize> = BTreeMap::new();
        for n in &self.nodes {
            incoming.insert(n.id.as_str(), 0);
        }
        for e in &self.edges {
            if let Some(n) = incoming.get_mut(e.to.as_str()) {
                *n += 1;
            }
        }
        let mut ready: VecDeque<&str> = self
            .nodes
            .iter()
            .map(|n| n.id.as_str())
            .filter(|id| incoming.get(id) == Some(&0))
            .collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        let mut placed = BTreeSet::new();
        while let Some(id) = ready.pop_front() {
            order.push(id.to_owned());
            placed.insert(id);
            for e in self.edges.iter().filter(|e| e.from == id) {
                if let Some(n) = incoming.get_mut(e.to.as_str()) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        ready.push_back(e.to.as_str());
                    }
                }
            }
        }
        for n in &self.nodes {
            if !placed.contains(n.id.as_str()) {
                order.push(n.id.clone());
            }
        }
        order
    }
}

/// Why a connection was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    SelfLoop,
    UnknownNode,
    Duplicate,
    Cycle,
    /// A branch port already has its edge.
    PortTaken(String),
    /// Branch edges leave from `true` or `false`.
    NeedsBranchPort,
    /// Terminate nodes end the run.
    Terminal,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SelfLoop => f.write_str("a node cannot connect to itself"),
            Self::UnknownNode => f.write_str("that node no longer exists"),
            Self::Duplicate => f.write_str("these nodes are already connected"),
            Self::Cycle => f.write_str("this edge would close a cycle (workflows are DAGs)"),
            Self::PortTaken(port) => write!(f, "the `{port}` port already has an edge"),
            Self::NeedsBranchPort => {
                f.write_str("edges leaving a branch start at its `true` or `false` port")
            }
            Self::Terminal => f.write_str("a terminate node ends the run: nothing follows it"),
        }
    }
}

/// What is selected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub nodes: BTreeSet<String>,
    /// Indices into [`Doc::edges`].
    pub edges: BTreeSet<usize>,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.edges.is_empty()
    }

    /// The one selected node, if exactly one node (and no edge) is selected.
    pub fn single_node(&self) -> Option<&str> {
        match (self.nodes.len(), self.edges.len()) {
            (1, 0) => self.nodes.iter().next().map(String::as_str),
            _ => None,
        }
    }
}

/// The document with its selection and history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Editor {
    pub doc: Doc,
    pub selection: Selection,
    undo: Vec<Doc>,
    redo: Vec<Doc>,
    /// The field the last recorded change edited: further keystrokes in the
    /// same field extend that undo step instead of adding one each.
    last_key: Option<String>,
}

impl Editor {
    pub fn new(doc: Doc) -> Self {
        Editor {
            doc,
            ..Editor::default()
        }
    }

    /// Remembers the document before a change. `key` names a field being
    /// typed into; repeated changes with the same key are one undo step.
    fn record(&mut self, key: Option<String>) {
        if key.is_some() && key == self.last_key {
            return;
        }
        self.undo.push(self.doc.clone());
        if self.undo.len() > HISTORY {
            self.undo.remove(0);
        }
        self.redo.clear();
        self.last_key = key;
    }

    /// Ends a run of keystrokes, so the next edit is its own undo step.
    pub fn seal(&mut self) {
        self.last_key = None;
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo(&mut self) -> bool {
        let Some(previous) = self.undo.pop() else {
            return false;
        };
        self.redo.push(std::mem::replace(&mut self.doc, previous));
        self.after_history();
        true
    }

    pub fn redo(&mut self) -> bool {
        let Some(next) = self.redo.pop() else {
            return false;
        };
        self.undo.push(std::mem::replace(&mut self.doc, next));
        self.after_history();
        true
    }

    fn after_history(&mut self) {
        self.last_key = None;
        let doc = &self.doc;
        self.selection
            .nodes
            .retain(|id| doc.nodes.iter().any(|n| &n.id == id));
        self.selection.edges.retain(|&i| i < doc.edges.len());
    }

    /// Replaces the whole document (import, restore), as one undo step.
    pub fn replace(&mut self, mut doc: Doc) {
        self.record(None);
        layout_missing(&mut doc);
        self.doc = doc;
        self.selection = Selection::default();
    }

    /// An id not yet used, derived from the node type: `http_call_2`.
    pub fn fresh_id(&self, kind: &str) -> String {
        let base: String = kind
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .take(MAX_ID_LEN - 4)
            .collect();
        let base = if base.is_empty() { "node".into() } else { base };
        (1..)
            .map(|n| format!("{base}_{n}"))
            .find(|id| self.doc.node(id).is_none())
            .unwrap_or(base)
    }

    /// Adds a node of `kind` with `config` at `at` and selects it.
    pub fn add_node(&mut self, kind: &str, config: Value, at: Pos) -> String {
        self.record(None);
        let id = self.fresh_id(kind);
        self.doc.nodes.push(NodeDraft {
            id: id.clone(),
            kind: kind.to_owned(),
            config,
            position: Some(at),
        });
        self.select_only(&id);
        id
    }

    pub fn clear_selection(&mut self) {
        self.selection = Selection::default();
    }

    pub fn select_only(&mut self, id: &str) {
        self.selection = Selection::default();
        self.selection.nodes.insert(id.to_owned());
    }

    /// Shift/Ctrl-click: adds or removes one node.
    pub fn toggle(&mut self, id: &str) {
        if !self.selection.nodes.remove(id) {
            self.selection.nodes.insert(id.to_owned());
        }
    }

    pub fn select_edge(&mut self, index: usize, additive: bool) {
        if !additive {
            self.selection = Selection::default();
        }
        if index < self.doc.edges.len() && !self.selection.edges.remove(&index) {
            self.selection.edges.insert(index);
        }
    }

    pub fn select_all(&mut self) {
        self.selection.nodes.clear();
        for n in &self.doc.nodes {
            self.selection.nodes.insert(n.id.clone());
        }
        self.selection.edges.clear();
        for i in 0..self.doc.edges.len() {
            self.selection.edges.insert(i);
        }
    }

    /// Selects the nodes whose boxes intersect the rectangle between two
    /// canvas points (a marquee).
    pub fn select_in_rect(&mut self, a: Pos, b: Pos, additive: bool) {
        let (x0, x1) = (a.x.min(b.x), a.x.max(b.x));
        let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
        if !additive {
            self.selection = Selection::default();
        }
        for n in &self.doc.nodes {
            let p = n.pos();
            if p.x < x1 && p.x + NODE_W > x0 && p.y < y1 && p.y + NODE_H > y0 {
                self.selection.nodes.insert(n.id.clone());
            }
        }
    }

    /// Starts moving the selection: one undo step for the whole drag.
    pub fn begin_move(&mut self) {
        self.record(None);
    }

    /// Moves the selected nodes (call [`Editor::begin_move`] once first).
    pub fn move_selected(&mut self, dx: f64, dy: f64) {
        let selected = &self.selection.nodes;
        for n in self
            .doc
            .nodes
            .iter_mut()
            .filter(|n| selected.contains(&n.id))
        {
            let p = n.pos();
            n.position = Some(Pos {
                x: (p.x + dx).round(),
                y: (p.y + dy).round(),
            });
        }
    }

    /// Deletes the selected nodes (with their edges) and edges. Returns
    /// whether anything was deleted.
    pub fn delete_selection(&mut self) -> bool {
        if self.selection.is_empty() {
            return false;
        }
        self.record(None);
        let Selection { nodes, edges } = std::mem::take(&mut self.selection);
        let mut index = 0;
        self.doc.edges.retain(|e| {
            let keep =
                !edges.contains(&index) && !nodes.contains(&e.from) && !nodes.contains(&e.to);
            index += 1;
            keep
        });
        self.doc.nodes.retain(|n| !nodes.contains(&n.id));
        true
    }

    /// Draws an edge from `from`'s output `port` (`None` for the single
    /// output; `"true"`/`"false"` on a branch) to `to`, or says why not.
    pub fn connect(&mut self, from: &str, port: Option<&str>, to: &str) -> Result<(), Refusal> {
        let source = self.doc.node(from).ok_or(Refusal::UnknownNode)?;
        self.doc.node(to).ok_or(Refusal::UnknownNode)?;
        if from == to {
            return Err(Refusal::SelfLoop);
        }
        let label = match (source.kind.as_str(), port) {
            ("terminate", _) => return Err(Refusal::Terminal),
            ("branch", Some(p @ ("true" | "false"))) => Some(p.to_owned()),
            ("branch", _) => return Err(Refusal::NeedsBranchPort),
            _ => None,
        };
        if self.doc.edges.iter().any(|e| e.from == from && e.to == to) {
            return Err(Refusal::Duplicate);
        }
        if let Some(l) = &label
            && self
                .doc
                .edges
                .iter()
                .any(|e| e.from == from && e.label.as_ref() == Some(l))
        {
            return Err(Refusal::PortTaken(l.clone()));
        }
        if self.doc.reaches(to, from) {
            return Err(Refusal::Cycle);
        }
        self.record(None);
        self.doc.edges.push(EdgeDraft {
            from: from.to_owned(),
            to: to.to_owned(),
            label,
        });
        self.selection = Selection::default();
        self.selection.edges.insert(self.doc.edges.len() - 1);
        Ok(())
    }

    /// Sets (or with `None` removes) the config property at `path` of node
    /// `id`. Keystrokes in one field are one undo step.
    pub fn set_config(&mut self, id: &str, path: &[&str], value: Option<Value>) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        if self.doc.node(id).is_none() {
            return;
        }
        self.record(Some(format!("{id}/{}", path.join("/"))));
        let Some(node) = self.doc.node_mut(id) else {
            return;
        };
        if !node.config.is_object() {
            node.config = Value::Object(Map::new());
        }
        let mut at = &mut node.config;
        for key in parents {
            let Some(obj) = at.as_object_mut() else {
                return;
            };
            let child = obj
                .entry((*key).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            at = child;
        }
        if let Some(obj) = at.as_object_mut() {
            match value {
                Some(v) => {
                    obj.insert((*last).to_owned(), v);
                }
                None => {
                    obj.remove(*last);
                }
            }
        }
    }

    /// Renames a node, following its edges and the selection.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), String> {
        if old == new {
            return Ok(());
        }
        if !meshhook_core::validate::is_valid_node_id(new) {
            return Err(format!(
                "an id is 1 to {MAX_ID_LEN} letters, digits, `_` or `-`"
            ));
        }
        if self.doc.node(new).is_some() {
            return Err(format!("another node is called `{new}`"));
        }
        if self.doc.node(old).is_none() {
            return Err(format!("no node `{old}`"));
        }
        self.record(None);
        for n in self.doc.nodes.iter_mut().filter(|n| n.id == old) {
            new.clone_into(&mut n.id);
        }
        for e in &mut self.doc.edges {
            if e.from == old {
                new.clone_into(&mut e.from);
            }
            if e.to == old {
                new.clone_into(&mut e.to);
            }
        }
        if self.selection.nodes.remove(old) {
            self.selection.nodes.insert(new.to_owned());
        }
        Ok(())
    }

    /// Lays every node out in layers from the entry (one undo step).
    pub fn auto_layout(&mut self) {
        self.record(None);
        layout(&mut self.doc, |_| true);
    }
}

/// Lays out the nodes that come without a position (definitions written
/// by hand or by the API) and leaves the others where they are.
pub fn layout_missing(doc: &mut Doc) {
    if doc.nodes.iter().any(|n| n.position.is_none()) {
        let mut missing = BTreeSet::new();
        for n in doc.nodes.iter().filter(|n| n.position.is_none()) {
            missing.insert(n.id.clone());
        }
        layout(doc, |id| missing.contains(id));
    }
}

/// Layered layout: a node's column is its longest distance from an entry,
/// its row follows the mean row of its predecessors. Only nodes for which
/// `place` is true are moved.
fn layout(doc: &mut Doc, place: impl Fn(&str) -> bool) {
    // One map type (the one `topological` uses) for both the layer and the
    // row of a node: each distinct BTreeMap type costs wasm.
    let order = doc.topological();
    let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &order {
        let l = doc
            .edges
            .iter()
            .filter(|e| &e.to == id)
            .filter_map(|e| layer.get(e.from.as_str()).map(|l| l + 1))
            .max()
            .unwrap_or(0);
        layer.insert(id, l);
    }
    // The rows taken in each layer.
    let mut taken: Vec<Vec<usize>> = Vec::new();
    let mut row_of: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &order {
        let l = layer.get(id.as_str()).copied().unwrap_or(0);
        let parents: Vec<usize> = doc
            .edges
            .iter()
            .filter(|e| &e.to == id)
            .filter_map(|e| row_of.get(e.from.as_str()).copied())
            .collect();
        if taken.len() <= l {
            taken.resize_with(l + 1, Vec::new);
        }
        let row = &mut taken[l];
        // The mean row of the predecessors, rounded; for an entry node, the
        // next row of its layer.
        let wish = if parents.is_empty() {
            row.len()
        } else {
            (2 * parents.iter().sum::<usize>() + parents.len()) / (2 * parents.len())
        };
        // Rows stay distinct: take the wished row or the next free one.
        let mut r = wish;
        while row.contains(&r) {
            r += 1;
        }
        row.push(r);
        row_of.insert(id, r);
    }
    for n in &mut doc.nodes {
        if !place(&n.id) {
            continue;
        }
        let l = layer.get(n.id.as_str()).copied().unwrap_or(0);
        let r = row_of.get(n.id.as_str()).copied().unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let (x, y) = (
            l as f64 * (NODE_W + LAYER_GAP),
            r as f64 * (NODE_H + ROW_GAP),
        );
        n.position = Some(Pos { x, y });
    }
}

/// Where the edges of a node attach, in canvas units.
pub fn input_port(p: Pos) -> Pos {
    Pos {
        x: p.x,
        y: p.y + NODE_H / 2.0,
    }
}

/// The output port for `label` (`None`: the single output).
pub fn output_port(p: Pos, label: Option<&str>) -> Pos {
    let y = match label {
        Some("true") => NODE_H / 3.0,
        Some("false") => NODE_H * 2.0 / 3.0,
        _ => NODE_H / 2.0,
    };
    Pos {
        x: p.x + NODE_W,
        y: p.y + y,
    }
}

/// An SVG path (a horizontal S-curve) from `a` to `b`.
pub fn edge_path(a: Pos, b: Pos) -> String {
    let dx = ((b.x - a.x).abs() / 2.0).max(40.0);
    format!(
        "M{:.1} {:.1} C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
        a.x,
        a.y,
        a.x + dx,
        a.y,
        b.x - dx,
        b.y,
        b.x,
        b.y
    )
}

/// Pan and zoom: a screen point is `canvas * k + (x, y)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub x: f64,
    pub y: f64,
    pub k: f64,
}

impl Default for View {
    fn default() -> Self {
        View {
            x: 40.0,
            y: 40.0,
            k: 1.0,
        }
    }
}

impl View {
    pub const MIN_ZOOM: f64 = 0.05;
    pub const MAX_ZOOM: f64 = 2.5;

    /// The canvas point under a screen point (relative to the canvas).
    pub fn to_canvas(self, sx: f64, sy: f64) -> Pos {
        Pos {
            x: (sx - self.x) / self.k,
            y: (sy - self.y) / self.k,
        }
    }

    /// Zooms by `factor` keeping the canvas point under `(sx, sy)` fixed.
    #[must_use]
    pub fn zoom_at(self, sx: f64, sy: f64, factor: f64) -> View {
        let k = (self.k * factor).clamp(Self::MIN_ZOOM, Self::MAX_ZOOM);
        let p = self.to_canvas(sx, sy);
        View {
            x: sx - p.x * k,
            y: sy - p.y * k,
            k,
        }
    }

    /// The view that shows every node in a `w`×`h` viewport.
    pub fn fit(doc: &Doc, w: f64, h: f64) -> View {
        if doc.nodes.is_empty() || w <= 0.0 || h <= 0.0 {
            return View::default();
        }
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for n in &doc.nodes {
            let p = n.pos();
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x + NODE_W);
            y1 = y1.max(p.y + NODE_H);
        }
        let pad = 48.0;
        let k = ((w - 2.0 * pad) / (x1 - x0))
            .min((h - 2.0 * pad) / (y1 - y0))
            .clamp(Self::MIN_ZOOM, 1.25);
        View {
            x: (w - (x1 - x0) * k) / 2.0 - x0 * k,
            y: (h - (y1 - y0) * k) / 2.0 - y0 * k,
            k,
        }
    }

    /// The view that centres canvas point `p` in a `w`×`h` viewport.
    #[must_use]
    pub fn centre_on(self, p: Pos, w: f64, h: f64) -> View {
        View {
            x: w / 2.0 - (p.x + NODE_W / 2.0) * self.k,
            y: h / 2.0 - (p.y + NODE_H / 2.0) * self.k,
            k: self.k,
        }
    }
}

/// Which node a validation error's JSON pointer is about:
/// `/nodes/3/config/url` is the fourth node, `/edges/1` the source of the
/// second edge.
pub fn node_of_pointer<'a>(doc: &'a Doc, pointer: &str) -> Option<&'a str> {
    let mut parts = pointer.trim_start_matches('/').split('/');
    let list = parts.next()?;
    let index: usize = parts.next()?.parse().ok()?;
    match list {
        "nodes" => doc.nodes.get(index).map(|n| n.id.as_str()),
        "edges" => doc.edges.get(index).map(|e| e.from.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> Doc {
        Doc::from_value(&json!({
            "nodes": [
                {"id": "pick", "type": "transform", "config": {"expression": "trigger.body"}, "position": {"x": 0.0, "y": 0.0}},
                {"id": "ok", "type": "branch", "config": {"condition": "steps.pick.ok"}, "position": {"x": 300.0, "y": 0.0}},
                {"id": "done", "type": "terminate", "config": {"status": "succeeded"}, "position": {"x": 600.0, "y": 0.0}},
                {"id": "fail", "type": "terminate", "config": {"status": "failed"}, "position": {"x": 600.0, "y": 120.0}}
            ],
            "edges": [
                {"from": "pick", "to": "ok"},
                {"from": "ok", "to": "done", "label": "true"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn round_trips_the_definition_exactly() {
        let raw = json!({
            "nodes": [
                {"id": "a", "type": "http_call", "config": {"url": "https://x", "headers": {"A": "{{ secrets.T }}"}}},
                {"id": "b", "type": "delay", "config": {"duration_ms": 5}, "position": {"x": 1.5, "y": -2}},
                {"id": "c", "type": "delay", "config": {"duration_ms": 5}, "position": {"x": 260, "y": 0}}
            ],
            "edges": [{"from": "a", "to": "b"}]
        });
        assert_eq!(Doc::from_value(&raw).unwrap().to_value(), raw);
    }

    #[test]
    fn delete_then_undo_restores_the_exact_definition_and_redo_deletes_again() {
        let before = sample();
        let mut ed = Editor::new(before.clone());
        ed.select_only("ok");
        assert!(ed.delete_selection());
        assert_eq!(ed.doc.nodes.len(), 3);
        assert!(ed.doc.edges.is_empty(), "edges of a deleted node go too");
        let deleted = ed.doc.clone();
        assert!(ed.undo());
        assert_eq!(ed.doc, before);
        assert_eq!(ed.doc.to_value(), before.to_value());
        assert!(ed.redo());
        assert_eq!(ed.doc, deleted);
        assert!(!ed.redo());
        assert!(ed.undo());
        assert!(!ed.undo());
        assert_eq!(ed.doc, before);
    }

    #[test]
    fn deleting_an_edge_keeps_its_nodes() {
        let mut ed = Editor::new(sample());
        ed.select_edge(1, false);
        assert!(ed.delete_selection());
        assert_eq!(ed.doc.nodes.len(), 4);
        assert_eq!(ed.doc.edges, vec![sample().edges[0].clone()]);
        assert!(!ed.delete_selection(), "nothing selected any more");
    }

    #[test]
    fn connections_follow_the_rules() {
        let mut ed = Editor::new(sample());
        assert_eq!(ed.connect("pick", None, "pick"), Err(Refusal::SelfLoop));
        assert_eq!(ed.connect("pick", None, "ok"), Err(Refusal::Duplicate));
        assert_eq!(
            ed.connect("ok", None, "fail"),
            Err(Refusal::NeedsBranchPort)
        );
        assert_eq!(
            ed.connect("ok", Some("true"), "fail"),
            Err(Refusal::PortTaken("true".into()))
        );
        assert_eq!(ed.connect("done", None, "fail"), Err(Refusal::Terminal));
        assert_eq!(ed.connect("ok", Some("false"), "pick"), Err(Refusal::Cycle));
        assert_eq!(ed.connect("nope", None, "pick"), Err(Refusal::UnknownNode));
        let before = ed.doc.clone();
        assert_eq!(ed.connect("ok", Some("false"), "fail"), Ok(()));
        assert_eq!(
            ed.doc.edges.last(),
            Some(&EdgeDraft {
                from: "ok".into(),
                to: "fail".into(),
                label: Some("false".into())
            })
        );
        assert!(ed.undo());
        assert_eq!(ed.doc, before, "refusals recorded nothing");
        assert!(!ed.can_undo());
    }

    #[test]
    fn typing_in_one_field_is_one_undo_step() {
        let mut ed = Editor::new(sample());
        for text in ["s", "st", "ste"] {
            ed.set_config("pick", &["expression"], Some(json!(text)));
        }
        ed.set_config("http", &["url"], Some(json!("x")));
        ed.set_config("pick", &["nested", "deep"], Some(json!(1)));
        assert_eq!(
            ed.doc.nodes[0].config,
            json!({"expression": "ste", "nested": {"deep": 1}})
        );
        assert!(ed.undo());
        assert_eq!(ed.doc.nodes[0].config, json!({"expression": "ste"}));
        assert!(ed.undo());
        assert_eq!(ed.doc, sample());
        assert!(!ed.can_undo());
        ed.set_config("pick", &["expression"], None);
        assert_eq!(ed.doc.nodes[0].config, json!({}));
    }

    #[test]
    fn a_drag_is_one_undo_step_and_moves_only_the_selection() {
        let mut ed = Editor::new(sample());
        ed.select_only("pick");
        ed.toggle("fail");
        ed.begin_move();
        for _ in 0..10 {
            ed.move_selected(1.0, 2.0);
        }
        assert_eq!(ed.doc.node("pick").unwrap().pos(), Pos { x: 10.0, y: 20.0 });
        assert_eq!(
            ed.doc.node("fail").unwrap().pos(),
            Pos { x: 610.0, y: 140.0 }
        );
        assert_eq!(ed.doc.node("ok").unwrap().pos(), Pos { x: 300.0, y: 0.0 });
        assert!(ed.undo());
        assert_eq!(ed.doc, sample());
    }

    #[test]
    fn add_rename_and_fresh_ids() {
        let mut ed = Editor::new(Doc::default());
        let a = ed.add_node(
            "http_call",
            json!({"url": "https://x"}),
            Pos { x: 5.0, y: 6.0 },
        );
        let b = ed.add_node("http_call", json!({}), Pos::default());
        assert_eq!((a.as_str(), b.as_str()), ("http_call_1", "http_call_2"));
        assert_eq!(ed.selection.single_node(), Some("http_call_2"));
        ed.connect(&a, None, &b).unwrap();
        assert!(ed.rename(&a, "bad id").is_err());
        assert!(ed.rename(&a, &b).is_err());
        ed.rename(&a, "fetch").unwrap();
        assert_eq!(ed.doc.edges[0].from, "fetch");
        assert!(ed.undo());
        assert_eq!(ed.doc.edges[0].from, "http_call_1");
    }

    #[test]
    fn marquee_and_select_all() {
        let mut ed = Editor::new(sample());
        ed.select_in_rect(
            Pos { x: 550.0, y: -10.0 },
            Pos { x: 700.0, y: 200.0 },
            false,
        );
        assert_eq!(
            ed.selection
                .nodes
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            vec!["done", "fail"]
        );
        ed.select_all();
        assert_eq!(ed.selection.nodes.len(), 4);
        assert_eq!(ed.selection.edges.len(), 2);
    }

    #[test]
    fn auto_layout_puts_every_edge_left_to_right_without_overlaps() {
        let mut doc = sample();
        doc.edges.push(EdgeDraft {
            from: "ok".into(),
            to: "fail".into(),
            label: Some("false".into()),
        });
        for n in &mut doc.nodes {
            n.position = None;
        }
        layout_missing(&mut doc);
        for e in &doc.edges {
            let (a, b) = (
                doc.node(&e.from).unwrap().pos(),
                doc.node(&e.to).unwrap().pos(),
            );
            assert!(a.x < b.x, "{e:?}");
        }
        let mut seen = BTreeSet::new();
        for n in &doc.nodes {
            let p = n.pos();
            assert!(seen.insert((p.x as i64, p.y as i64)), "overlap at {p:?}");
        }
        // Nodes that have positions keep them.
        let mut partial = sample();
        partial.nodes[3].position = None;
        layout_missing(&mut partial);
        assert_eq!(partial.nodes[0].pos(), Pos { x: 0.0, y: 0.0 });
        assert!(partial.nodes[3].position.is_some());
    }

    #[test]
    fn import_accepts_definitions_and_workflows_and_explains_failures() {
        let doc = Doc::import(r#"{"name": "w", "definition": {"nodes": [{"id": "a", "type": "transform", "config": {}}]}}"#).unwrap();
        assert_eq!(doc.nodes[0].id, "a");
        assert!(Doc::import("{").unwrap_err().contains("not valid JSON"));
        assert!(
            Doc::import(r#"{"nodes": 3}"#)
                .unwrap_err()
                .contains("not a workflow definition")
        );
        assert!(
            Doc::import(r#"{"nodes": [{"id": "a", "type": "x"}, {"id": "a", "type": "y"}]}"#)
                .unwrap_err()
                .contains("two nodes")
        );
        let mut ed = Editor::new(sample());
        ed.replace(doc.clone());
        assert_eq!(ed.doc.nodes[0].id, "a");
        assert!(
            ed.doc.nodes[0].position.is_some(),
            "imported nodes are laid out"
        );
        assert!(ed.undo());
        assert_eq!(ed.doc, sample());
    }

    #[test]
    fn view_zoom_keeps_the_point_under_the_cursor_and_fit_shows_everything() {
        let v = View::default();
        let under = v.to_canvas(300.0, 200.0);
        let z = v.zoom_at(300.0, 200.0, 1.7);
        let after = z.to_canvas(300.0, 200.0);
        assert!((under.x - after.x).abs() < 1e-9 && (under.y - after.y).abs() < 1e-9);
        let doc = sample();
        let f = View::fit(&doc, 800.0, 500.0);
        for n in &doc.nodes {
            let p = n.pos();
            let (sx, sy) = (p.x * f.k + f.x, p.y * f.k + f.y);
            assert!(sx >= 0.0 && sy >= 0.0, "{p:?}");
            assert!((p.x + NODE_W) * f.k + f.x <= 800.0 && (p.y + NODE_H) * f.k + f.y <= 500.0);
        }
    }

    #[test]
    fn pointers_name_their_node() {
        let doc = sample();
        assert_eq!(
            node_of_pointer(&doc, "/nodes/1/config/condition"),
            Some("ok")
        );
        assert_eq!(node_of_pointer(&doc, "/edges/1/label"), Some("ok"));
        assert_eq!(node_of_pointer(&doc, "/nodes"), None);
        assert_eq!(node_of_pointer(&doc, "/nodes/9"), None);
    }
}
