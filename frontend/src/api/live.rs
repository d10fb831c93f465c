//! Live feeds: the API's websockets `/api/v1/runs/{id}/live` and
//! `/api/v1/projects/{pid}/live`, kept open by a [`Live`] that reconnects
//! by itself.
//!
//! - The token goes as the first message (never in the URL, so it stays out
//!   of access logs); a 4401 close renews it once and reconnects, a 4404
//!   close (no such run or project for this user) stops for good.
//! - Every other close (server restart 1001, too slow 1008, network loss)
//!   reconnects after 0.5 s, 1 s, 2 s … at most 10 s. The URL is asked
//!   for again each time, so a run feed resumes with `?after=<last seq>`.
//! - Frames are handed over in batches (at most one per 100 ms), so a
//!   backlog of hundreds re-renders a page once, not hundreds of times.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::json::{Fields, FromJson};
use super::runs::Event;

/// One frame: an event of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub run_id: String,
    pub seq: i64,
    pub kind: String,
    pub data: Value,
    pub at: String,
}

impl FromJson for Frame {
    fn from_json(value: &Value) -> Result<Self, String> {
        let f = Fields::of(value)?;
        Ok(Frame {
            run_id: f.string("run_id")?,
            seq: f.int("seq")?,
            kind: f.string("type")?,
            data: f.value("data"),
            at: f.string("at")?,
        })
    }
}

impl Frame {
    /// The frame as an entry of the run's event log.
    pub fn into_event(self) -> Event {
        Event {
            seq: self.seq,
            kind: self.kind,
            data: self.data,
            at: self.at,
        }
    }
}

/// Where a feed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Opening the socket (the first time).
    Connecting,
    /// Open and authorised: frames arrive as events are appended.
    Live,
    /// Lost; trying again shortly.
    Reconnecting,
    /// Refused for good (no access) or stopped.
    Closed,
}

impl State {
    /// A short label for the page.
    pub fn label(self) -> &'static str {
        match self {
            Self::Connecting => "connecting…",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting…",
            Self::Closed => "not live",
        }
    }
}

type Handler<T> = Closure<dyn FnMut(T)>;

struct Inner {
    /// The feed's path, asked for at every (re)connect.
    path: Box<dyn Fn() -> String>,
    on_frames: Rc<dyn Fn(Vec<Frame>)>,
    on_state: Rc<dyn Fn(State)>,
    socket: Option<WebSocket>,
    handlers: Option<(
        Handler<web_sys::Event>,
        Handler<MessageEvent>,
        Handler<CloseEvent>,
    )>,
    /// Frames received but not handed over yet.
    pending: Vec<Frame>,
    flush_scheduled: bool,
    /// Consecutive failed connections (for the backoff).
    failures: u32,
    /// The token the last socket was opened with.
    token: Option<String>,
    /// The pending reconnect timer.
    timer: Option<i32>,
    stopped: bool,
}

/// A live feed that reconnects until [`Live::stop`] (or until dropped).
pub struct Live(Rc<RefCell<Inner>>);

impl Live {
    /// Opens the feed at `path()` (e.g. `/api/v1/runs/{id}/live?after=7`),
    /// handing frames to `on_frames` and state changes to `on_state`.
    pub fn open(
        path: impl Fn() -> String + 'static,
        on_frames: impl Fn(Vec<Frame>) + 'static,
        on_state: impl Fn(State) + 'static,
    ) -> Self {
        let inner = Rc::new(RefCell::new(Inner {
            path: Box::new(path),
            on_frames: Rc::new(on_frames),
            on_state: Rc::new(on_state),
            socket: None,
            handlers: None,
            pending: Vec::new(),
            flush_scheduled: false,
            failures: 0,
            token: None,
            timer: None,
            stopped: false,
        }));
        set_state(&inner, State::Connecting);
        start(Rc::downgrade(&inner), None);
        Self(inner)
    }

    /// Closes the socket and stops reconnecting.
    pub fn stop(&self) {
        let on_state = {
            let mut inner = self.0.borrow_mut();
            if inner.stopped {
                return;
            }
            inner.stopped = true;
            if let Some(timer) = inner.timer.take()
                && let Some(w) = web_sys::window()
            {
                w.clear_timeout_with_handle(timer);
            }
            detach(&mut inner);
            inner.on_state.clone()
        };
        on_state(State::Closed);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_state(inner: &Rc<RefCell<Inner>>, state: State) {
    let on_state = inner.borrow().on_state.clone();
    on_state(state);
}

/// Closes the current socket (if any) after unhooking its handlers, so a
/// late event never reaches a dropped closure.
fn detach(inner: &mut Inner) {
    if let Some(socket) = inner.socket.take() {
        socket.set_onopen(None);
        socket.set_onmessage(None);
        socket.set_onclose(None);
        let _ = socket.close_with_code(1000);
    }
    inner.handlers = None;
}

/// The websocket URL of `path` on the page's origin.
fn ws_url(path: &str) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss:"
    } else {
        "ws:"
    };
    Some(format!("{scheme}//{}{path}", location.host().ok()?))
}

/// Gets a token (renewing `rejected`), then connects.
fn start(weak: Weak<RefCell<Inner>>, rejected: Option<String>) {
    wasm_bindgen_futures::spawn_local(async move {
        let token = super::live_token(rejected.as_deref()).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.borrow().stopped {
            return;
        }
        match token {
            Some(token) => connect(&inner, token),
            // Signed out: the shell shows the sign-in page.
            None => {
                inner.borrow_mut().stopped = true;
                set_state(&inner, State::Closed);
            }
        }
    });
}

fn connect(inner: &Rc<RefCell<Inner>>, token: String) {
    let url = {
        let i = inner.borrow();
        ws_url(&(i.path)())
    };
    let Some(socket) = url.and_then(|u| WebSocket::new(&u).ok()) else {
        retry(inner, None);
        return;
    };
    let weak = Rc::downgrade(inner);
    let on_open = {
        let weak = weak.clone();
        let token = token.clone();
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let Some(inner) = weak.upgrade() else { return };
            let socket = inner.borrow().socket.clone();
            if let Some(socket) = socket {
                let hello = serde_json::json!({ "access_token": token }).to_string();
                let _ = socket.send_with_str(&hello);
            }
            set_state(&inner, State::Live);
        })
    };
    let on_message = {
        let weak = weak.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(inner) = weak.upgrade() else { return };
            let Some(text) = ev.data().as_string() else {
                return;
            };
            let Ok(frame) = super::parse::<Frame>(&text) else {
                return;
            };
            let schedule = {
                let mut i = inner.borrow_mut();
                i.failures = 0;
                i.pending.push(frame);
                !std::mem::replace(&mut i.flush_scheduled, true)
            };
            if schedule {
                schedule_flush(&weak);
            }
        })
    };
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
        let Some(inner) = weak.upgrade() else { return };
        match ev.code() {
            4404 => {
                {
                    let mut i = inner.borrow_mut();
                    i.stopped = true;
                    detach(&mut i);
                }
                set_state(&inner, State::Closed);
            }
            4401 => {
                let used = inner.borrow().token.clone();
                retry(&inner, used);
            }
            _ => retry(&inner, None),
        }
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let mut i = inner.borrow_mut();
    detach(&mut i);
    i.socket = Some(socket);
    i.handlers = Some((on_open, on_message, on_close));
    i.token = Some(token);
}

/// Hands the pending frames over shortly (one batch per 100 ms).
fn schedule_flush(weak: &Weak<RefCell<Inner>>) {
    let weak = weak.clone();
    let flush = Closure::once_into_js(move || {
        let Some(inner) = weak.upgrade() else { return };
        let (frames, on_frames) = {
            let mut i = inner.borrow_mut();
            i.flush_scheduled = false;
            if i.stopped {
                return;
            }
            (std::mem::take(&mut i.pending), i.on_frames.clone())
        };
        if !frames.is_empty() {
            on_frames(frames);
        }
    });
    if let Some(w) = web_sys::window() {
        let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(flush.unchecked_ref(), 100);
    }
}

/// Reconnects after a backoff; with `rejected`, renews that token first.
fn retry(inner: &Rc<RefCell<Inner>>, rejected: Option<String>) {
    let delay = {
        let mut i = inner.borrow_mut();
        if i.stopped {
            return;
        }
        detach(&mut i);
        let delay = 500_i32.saturating_mul(1 << i.failures.min(5)).min(10_000);
        i.failures = i.failures.saturating_add(1);
        delay
    };
    set_state(inner, State::Reconnecting);
    let weak = Rc::downgrade(inner);
    let again = Closure::once_into_js(move || {
        if let Some(inner) = weak.upgrade() {
            inner.borrow_mut().timer = None;
            start(Rc::downgrade(&inner), rejected);
        }
    });
    let timer = web_sys::window().and_then(|w| {
        w.set_timeout_with_callback_and_timeout_and_arguments_0(again.unchecked_ref(), delay)
            .ok()
    });
    inner.borrow_mut().timer = timer;
}

/// The frames that continue a run's log after `last`, in order, repeats
/// dropped; `None` when there is a gap (a frame after `last + 1` with the
/// ones between missing), so the log must be read again.
pub fn continuation(last: i64, frames: &[Frame]) -> Option<Vec<&Frame>> {
    let mut next = last + 1;
    let mut out = Vec::new();
    let mut sorted: Vec<&Frame> = frames.iter().collect();
    crate::sort::by_key(&mut sorted, |f| f.seq);
    for f in sorted {
        if f.seq < next {
            continue;
        }
        if f.seq > next {
            return None;
        }
        out.push(f);
        next += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: i64) -> Frame {
        Frame {
            run_id: "r".into(),
            seq,
            kind: "step_started".into(),
            data: Value::Null,
            at: String::new(),
        }
    }

    #[test]
    fn frames_continue_the_log_in_order_without_duplicates() {
        let frames = [frame(4), frame(3), frame(5), frame(3)];
        let seqs: Vec<i64> = continuation(2, &frames)
            .unwrap()
            .iter()
            .map(|f| f.seq)
            .collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert!(continuation(5, &frames).unwrap().is_empty());
    }

    #[test]
    fn a_gap_means_reading_the_log_again() {
        assert!(continuation(2, &[frame(3), frame(5)]).is_none());
    }

    #[test]
    fn frames_parse_from_the_wire_shape() {
        let f = Frame::from_json(&serde_json::json!(
            {"run_id":"r1","seq":2,"type":"run_created","data":{"a":1},"at":"2026-01-01T00:00:00Z"}
        ))
        .unwrap();
        assert_eq!(f.seq, 2);
        assert_eq!(f.into_event().kind, "run_created");
    }
}
