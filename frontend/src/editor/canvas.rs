//! The SVG canvas: nodes, edges and ports; pan (drag the background),
//! zoom (wheel), move (drag nodes), connect (drag from an output port to an
//! input port), select (click, Shift/Ctrl-click, Shift-drag a marquee) and
//! the palette's drop target.
//!
//! Every node and edge reads its own memo of the document, so a drag only
//! touches the DOM of what moved.

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::state::{NODE_H, NODE_W, Pos, View, edge_path, input_port, output_port};
use super::{Ctx, icon};

/// What a pressed mouse button is doing.
#[derive(Clone, Debug, PartialEq)]
enum Gesture {
    Idle,
    /// Dragging the background: the screen point where it started and the
    /// view then.
    Pan {
        sx: f64,
        sy: f64,
        start: View,
        moved: bool,
    },
    /// Dragging the selection from canvas point `from`. While it lasts the
    /// document is untouched: the offset lives in [`Ctx::drag`] and is
    /// applied to the document (one undo step) on release.
    Move {
        from: Pos,
        started: bool,
    },
    /// Dragging a new edge from an output port.
    Connect {
        from: String,
        port: Option<String>,
        to: Pos,
    },
    /// Shift-dragging a selection rectangle.
    Marquee {
        a: Pos,
        b: Pos,
    },
}

/// A node type being dragged from the palette: its type and the pointer's
/// position on the page.
#[derive(Clone, Debug, PartialEq)]
pub struct Placing {
    pub kind: String,
    pub x: f64,
    pub y: f64,
    pub moved: bool,
}

/// The pointer's position relative to the canvas element.
fn local(svg: &web_sys::Element, ev: &web_sys::MouseEvent) -> (f64, f64) {
    let r = svg.get_bounding_client_rect();
    (
        f64::from(ev.client_x()) - r.left(),
        f64::from(ev.client_y()) - r.top(),
    )
}

/// Whether a page point lies over the canvas element.
fn over(svg: &web_sys::Element, x: f64, y: f64) -> bool {
    let r = svg.get_bounding_client_rect();
    x >= r.left() && x <= r.right() && y >= r.top() && y <= r.bottom()
}

/// The size of the canvas element.
pub fn size(svg: &web_sys::Element) -> (f64, f64) {
    let r = svg.get_bounding_client_rect();
    (r.width(), r.height())
}

/// The canvas. `placing` is the palette drag in progress, dropped here when
/// released over the canvas.
#[component]
pub fn Canvas(
    ctx: Ctx,
    placing: RwSignal<Option<Placing>>,
    svg_ref: NodeRef<leptos::svg::Svg>,
) -> impl IntoView {
    let gesture = RwSignal::new(Gesture::Idle);
    let element = move || -> Option<web_sys::Element> { svg_ref.get_untracked().map(Into::into) };

    let on_move = move |ev: web_sys::MouseEvent| {
        if let Some(mut p) = placing.get_untracked() {
            p.x = f64::from(ev.client_x());
            p.y = f64::from(ev.client_y());
            p.moved = true;
            placing.set(Some(p));
            return;
        }
        let Some(svg) = element() else { return };
        let (sx, sy) = local(&svg, &ev);
        let view = ctx.view.get_untracked();
        let here = view.to_canvas(sx, sy);
        match gesture.get_untracked() {
            Gesture::Idle => {}
            Gesture::Pan {
                sx: x0,
                sy: y0,
                start,
                ..
            } => {
                ctx.view.set(View {
                    x: start.x + sx - x0,
                    y: start.y + sy - y0,
                    k: start.k,
                });
                gesture.set(Gesture::Pan {
                    sx: x0,
                    sy: y0,
                    start,
                    moved: true,
                });
            }
            Gesture::Move { from, started } => {
                let (dx, dy) = (here.x - from.x, here.y - from.y);
                if ctx.read_only.get_untracked() || !started && dx.abs() + dy.abs() < 2.0 / view.k {
                    return;
                }
                if !started {
                    gesture.set(Gesture::Move {
                        from,
                        started: true,
                    });
                }
                ctx.drag.set(Some((dx, dy)));
            }
            Gesture::Connect { from, port, .. } => {
                gesture.set(Gesture::Connect {
                    from,
                    port,
                    to: here,
                });
            }
            Gesture::Marquee { a, .. } => gesture.set(Gesture::Marquee { a, b: here }),
        }
    };
    let on_up = move |ev: web_sys::MouseEvent| {
        if let Some(p) = placing.get_untracked() {
            placing.set(None);
            let Some(svg) = element() else { return };
            if p.moved && over(&svg, f64::from(ev.client_x()), f64::from(ev.client_y())) {
                let (sx, sy) = local(&svg, &ev);
                let at = ctx.view.get_untracked().to_canvas(sx, sy);
                drop_node(
                    ctx,
                    &p.kind,
                    Pos {
                        x: at.x - NODE_W / 2.0,
                        y: at.y - NODE_H / 2.0,
                    },
                );
            }
            return;
        }
        match gesture.get_untracked() {
            Gesture::Move { started: true, .. } => {
                if let Some((dx, dy)) = ctx.drag.get_untracked() {
                    ctx.edit(|e| {
                        e.begin_move();
                        e.move_selected(dx, dy);
                    });
                }
                ctx.drag.set(None);
            }
            Gesture::Pan { moved: false, .. } => ctx.ed.update(|e| e.clear_selection()),
            Gesture::Marquee { a, b } => {
                let additive = ev.ctrl_key() || ev.meta_key();
                ctx.ed.update(|e| e.select_in_rect(a, b, additive));
            }
            _ => {}
        }
        gesture.set(Gesture::Idle);
    };
    let moves = window_event_listener(ev::mousemove, on_move);
    let ups = window_event_listener(ev::mouseup, on_up);
    on_cleanup(move || {
        moves.remove();
        ups.remove();
    });

    let background_down = move |ev: web_sys::MouseEvent| {
        if ev.button() != 0 {
            return;
        }
        let Some(svg) = element() else { return };
        let (sx, sy) = local(&svg, &ev);
        if ev.shift_key() {
            let a = ctx.view.get_untracked().to_canvas(sx, sy);
            gesture.set(Gesture::Marquee { a, b: a });
        } else {
            gesture.set(Gesture::Pan {
                sx,
                sy,
                start: ctx.view.get_untracked(),
                moved: false,
            });
        }
        ev.prevent_default();
    };
    let wheel = move |ev: web_sys::WheelEvent| {
        ev.prevent_default();
        let Some(svg) = element() else { return };
        let (sx, sy) = local(&svg, &ev);
        let factor = (-ev.delta_y() * 0.0015).exp();
        ctx.view.update(|v| *v = v.zoom_at(sx, sy, factor));
    };

    let transform = move || {
        let v = ctx.view.get();
        format!("translate({:.2} {:.2}) scale({:.4})", v.x, v.y, v.k)
    };
    let node_ids = move || {
        ctx.ed
            .with(|e| e.doc.nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>())
    };
    let edge_keys = move || {
        ctx.ed.with(|e| {
            e.doc
                .edges
                .iter()
                .enumerate()
                .map(|(i, e)| (i, e.from.clone(), e.to.clone(), e.label.clone()))
                .collect::<Vec<_>>()
        })
    };
    let ghost = move || match gesture.get() {
        Gesture::Connect { from, port, to } => ctx
            .ed
            .with(|e| {
                e.doc
                    .node(&from)
                    .map(|n| output_port(n.pos(), port.as_deref()))
            })
            .map(|a| view! { <path class="edge-ghost" d=edge_path(a, to)></path> }.into_any()),
        Gesture::Marquee { a, b } => Some(
            view! {
                <rect
                    class="marquee"
                    x=a.x.min(b.x)
                    y=a.y.min(b.y)
                    width=(a.x - b.x).abs()
                    height=(a.y - b.y).abs()
                ></rect>
            }
            .into_any(),
        ),
        _ => None,
    };
    let empty = move || ctx.ed.with(|e| e.doc.nodes.is_empty());

    view! {
        <div class="canvas-wrap">
            <svg
                class="canvas"
                class:panning=move || matches!(gesture.get(), Gesture::Pan { moved: true, .. })
                data-testid="editor-canvas"
                node_ref=svg_ref
                on:mousedown=background_down
                on:wheel=wheel
            >
                <defs>
                    <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                        <path d="M0 0 L10 5 L0 10 z" class="arrow-head"></path>
                    </marker>
                    <pattern id="grid" width="24" height="24" patternUnits="userSpaceOnUse">
                        <circle cx="1" cy="1" r="1" class="grid-dot"></circle>
                    </pattern>
                </defs>
                <rect class="canvas-bg" width="100%" height="100%" fill="url(#grid)"></rect>
                <g transform=transform>
                    <For each=edge_keys key=|k| k.clone() let:k>
                        <EdgeView ctx=ctx index=k.0 from=k.1 to=k.2 label=k.3/>
                    </For>
                    <For each=node_ids key=|id| id.clone() let:id>
                        <NodeView ctx=ctx id=id gesture=gesture svg_ref=svg_ref/>
                    </For>
                    {ghost}
                </g>
            </svg>
            <Show when=empty>
                <div class="canvas-empty" data-testid="canvas-empty">
                    "Drag a node from the palette onto the canvas to start."
                </div>
            </Show>
        </div>
    }
}

/// Adds a dropped palette node, with the starter config of its type.
pub fn drop_node(ctx: Ctx, kind: &str, at: Pos) {
    let config = super::form::starter_config(kind);
    if ctx.edit(|e| e.add_node(kind, config, at)).is_some() {
        ctx.revision.update(|r| *r += 1);
        ctx.node_clicks.update(|n| *n += 1);
    }
}

#[component]
fn EdgeView(
    ctx: Ctx,
    index: usize,
    from: String,
    to: String,
    label: Option<String>,
) -> impl IntoView {
    let (f, t, l) = (from.clone(), to.clone(), label.clone());
    let ends = Memo::new(move |_| {
        ctx.ed
            .with(|e| Some((e.doc.node(&f)?.pos(), e.doc.node(&t)?.pos())))
    });
    // A drag in progress moves the ends whose nodes are selected.
    let (f2, t2) = (from.clone(), to.clone());
    let moving = Memo::new(move |_| {
        ctx.ed.with(|e| {
            (
                e.selection.nodes.contains(&f2),
                e.selection.nodes.contains(&t2),
            )
        })
    });
    let shift = Memo::new(move |_| {
        let (a, b) = moving.get();
        if a || b {
            ctx.drag.get().map(|o| (a.then_some(o), b.then_some(o)))
        } else {
            None
        }
    });
    let path = Memo::new(move |_| {
        let (sa, sb) = shift.get().unwrap_or_default();
        let moved = |p: Pos, by: Option<(f64, f64)>| {
            by.map_or(p, |(dx, dy)| Pos {
                x: p.x + dx,
                y: p.y + dy,
            })
        };
        ends.get().map(|(a, b)| {
            edge_path(
                output_port(moved(a, sa), l.as_deref()),
                input_port(moved(b, sb)),
            )
        })
    });
    let selected = Memo::new(move |_| ctx.ed.with(|e| e.selection.edges.contains(&index)));
    let select = move |ev: web_sys::MouseEvent| {
        ev.stop_propagation();
        let additive = ev.shift_key() || ev.ctrl_key() || ev.meta_key();
        ctx.ed.update(|e| e.select_edge(index, additive));
    };
    let test_id = format!("edge-{from}-{to}");
    let d = move || path.get().unwrap_or_default();
    view! {
        <g class="edge" class:selected=move || selected.get() data-testid=test_id on:mousedown=select>
            <path class="edge-hit" d=d></path>
            <path class="edge-line" d=d marker-end="url(#arrow)"></path>
        </g>
    }
}

#[component]
fn NodeView(
    ctx: Ctx,
    id: String,
    gesture: RwSignal<Gesture>,
    svg_ref: NodeRef<leptos::svg::Svg>,
) -> impl IntoView {
    let key = StoredValue::new(id.clone());
    let node = Memo::new(move |_| {
        ctx.ed
            .with(|e| key.with_value(|id| e.doc.node(id).map(|n| n.pos())))
    });
    let selected = Memo::new(move |_| {
        ctx.ed
            .with(|e| key.with_value(|id| e.selection.nodes.contains(id)))
    });
    let invalid = Memo::new(move |_| {
        ctx.problems
            .with(|p| key.with_value(|id| p.iter().any(|p| p.node.as_deref() == Some(id.as_str()))))
    });
    let run_status = Memo::new(move |_| {
        ctx.run_steps
            .with(|s| key.with_value(|id| s.get(id).map(|(status, _)| status.clone())))
    });
    let kind = ctx
        .ed
        .with_untracked(|e| e.doc.node(&id).map(|n| n.kind.clone()))
        .unwrap_or_default();
    let type_title = ctx
        .node_type(&kind)
        .map_or_else(|| kind.clone(), |t| t.title);
    let outputs: Vec<Option<String>> = match kind.as_str() {
        "terminate" => Vec::new(),
        "branch" => vec![Some("true".into()), Some("false".into())],
        _ => vec![None],
    };

    let press = move |ev: web_sys::MouseEvent| {
        if ev.button() != 0 {
            return;
        }
        ev.stop_propagation();
        ev.prevent_default();
        let id = key.get_value();
        let additive = ev.shift_key() || ev.ctrl_key() || ev.meta_key();
        ctx.ed.update(|e| {
            if additive {
                e.toggle(&id);
            } else if !e.selection.nodes.contains(&id) {
                e.select_only(&id);
            }
            e.seal();
        });
        ctx.node_clicks.update(|n| *n += 1);
        let Some(svg) = svg_ref.get_untracked() else {
            return;
        };
        let (sx, sy) = local(&svg.into(), &ev);
        let from = ctx.view.get_untracked().to_canvas(sx, sy);
        gesture.set(Gesture::Move {
            from,
            started: false,
        });
    };
    let release_on_input = move |ev: web_sys::MouseEvent| {
        if let Gesture::Connect { from, port, .. } = gesture.get_untracked() {
            ev.stop_propagation();
            gesture.set(Gesture::Idle);
            let to = key.get_value();
            match ctx.edit(|e| e.connect(&from, port.as_deref(), &to)) {
                Some(Ok(())) => ctx.say(format!("Connected {from} → {to}"), false),
                Some(Err(why)) => ctx.say(format!("Cannot connect: {why}"), true),
                None => {}
            }
        }
    };
    let ports = outputs
        .into_iter()
        .map(|port| {
            let p = output_port(Pos::default(), port.as_deref());
            let name = port.clone().unwrap_or_else(|| "out".into());
            let test_id = format!("port-out-{}-{name}", key.get_value());
            let start = move |ev: web_sys::MouseEvent| {
                ev.stop_propagation();
                ev.prevent_default();
                if ctx.read_only.get_untracked() {
                    return;
                }
                let Some(svg) = svg_ref.get_untracked() else { return };
                let (sx, sy) = local(&svg.into(), &ev);
                let to = ctx.view.get_untracked().to_canvas(sx, sy);
                gesture.set(Gesture::Connect { from: key.get_value(), port: port.clone(), to });
            };
            let label = (name != "out").then(|| {
                view! { <text class="port-label" x=p.x - 10.0 y=p.y + 4.0 text-anchor="end">{name.clone()}</text> }
            });
            view! {
                {label}
                <circle class="port port-out" cx=p.x cy=p.y r="7" data-testid=test_id on:mousedown=start></circle>
            }
        })
        .collect_view();
    let glyph = icon(&kind);
    let class = move || {
        let mut c = format!("node node-{kind}");
        if selected.get() {
            c.push_str(" selected");
        }
        if invalid.get() {
            c.push_str(" invalid");
        }
        if let Some(s) = run_status.get() {
            c.push_str(" run-");
            c.push_str(&s);
        }
        c
    };
    // Only the selected nodes follow a drag in progress.
    let shift = Memo::new(move |_| if selected.get() { ctx.drag.get() } else { None });
    let transform = move || {
        let (dx, dy) = shift.get().unwrap_or_default();
        node.get()
            .map(|p| format!("translate({} {})", p.x + dx, p.y + dy))
            .unwrap_or_default()
    };
    let test_id = format!("node-{id}");
    let in_id = format!("port-in-{id}");
    view! {
        <g class=class transform=transform data-testid=test_id data-node=id.clone() on:mousedown=press on:mouseup=release_on_input>
            <rect class="node-box" width=NODE_W height=NODE_H rx="10"></rect>
            <text class="node-icon" x="14" y="35">{glyph}</text>
            <text class="node-title" x="40" y="24">{id.clone()}</text>
            <text class="node-type" x="40" y="42">{type_title}</text>
            <circle class="port port-in" cx="0" cy=NODE_H / 2.0 r="7" data-testid=in_id></circle>
            {ports}
        </g>
    }
}

/// The page coordinates of a mouse event, for the palette's drag ghost.
pub fn page_point(ev: &web_sys::MouseEvent) -> (f64, f64) {
    (f64::from(ev.client_x()), f64::from(ev.client_y()))
}

/// Whether keyboard focus is in a text field (shortcuts then leave keys
/// to the field).
pub fn typing_in_field() -> bool {
    document()
        .active_element()
        .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
        .is_some_and(|el| {
            matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                || el.is_content_editable()
        })
}
