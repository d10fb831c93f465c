//! The SPA's router: the current path and query as signals, navigation
//! through the History API, and same-origin link clicks handled without a
//! page load. The app has a dozen flat routes (`app::Page`), so this small
//! module does what it needs; `leptos_router` did the same for ~70 KB of
//! wasm.
//!
//! - [`navigate`] pushes (or replaces) a history entry and updates the
//!   signals; the browser's back and forward buttons (`popstate`) do too.
//! - Every click on an `<a href="/...">` inside the app — including links in
//!   HTML drawn as strings — navigates in place, unless a handler already
//!   called `preventDefault`, a modifier key or another button is used, the
//!   link has a `target` or `download`, or it points at the server's own
//!   paths (`/api/`, `/hooks/`, `/docs`, `/metrics`, `/healthz`, `/readyz`).

use leptos::ev;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// The current location.
#[derive(Clone, Copy, Debug)]
pub struct Location {
    /// The path, e.g. `/runs/0193...`.
    pub path: RwSignal<String>,
    /// The query string without `?` (may be empty).
    pub query: RwSignal<String>,
}

impl Location {
    /// The value of `key` in the query (tracked).
    pub fn param(&self, key: &str) -> Option<String> {
        self.query.with(|q| query_value(q, key))
    }

    /// The value of `key` in the query (untracked).
    pub fn param_untracked(&self, key: &str) -> Option<String> {
        self.query.with_untracked(|q| query_value(q, key))
    }
}

/// The value of `key` in `query` (`a=1&b=2`), percent-decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    js_sys::decode_uri_component(&s)
        .ok()
        .and_then(|d| d.as_string())
        .unwrap_or(s)
}

/// `url` (`/path?query#hash`) as path and query.
pub fn split(url: &str) -> (String, String) {
    let url = url.split('#').next().unwrap_or_default();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = if path.is_empty() { "/" } else { path };
    (path.to_owned(), query.to_owned())
}

fn current() -> (String, String) {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return ("/".into(), String::new());
    };
    let path = location.pathname().unwrap_or_else(|_| "/".into());
    let search = location.search().unwrap_or_default();
    (path, search.trim_start_matches('?').to_owned())
}

thread_local! {
    /// The app's one location (set by [`provide`]); event handlers and
    /// tasks navigate outside any reactive owner, so not a context.
    static LOCATION: std::cell::Cell<Option<Location>> = const { std::cell::Cell::new(None) };
}

/// Starts the router: the location made current, `popstate` and link
/// clicks followed. Call once, at the root.
pub fn provide() -> Location {
    let (path, query) = current();
    let location = Location {
        path: RwSignal::new(path),
        query: RwSignal::new(query),
    };
    LOCATION.with(|l| l.set(Some(location)));
    let _ = window_event_listener(ev::popstate, move |_| {
        let (path, query) = current();
        location.path.set(path);
        location.query.set(query);
    });
    let _ = window_event_listener(ev::click, on_click);
    location
}

/// The location (set up by [`provide`]).
pub fn use_location() -> Location {
    LOCATION
        .with(std::cell::Cell::get)
        .unwrap_or_else(|| Location {
            path: RwSignal::new("/".into()),
            query: RwSignal::new(String::new()),
        })
}

/// Paths the server answers itself: links to them load normally.
const SERVER_PATHS: [&str; 6] = [
    "/api/", "/hooks/", "/docs", "/metrics", "/healthz", "/readyz",
];

/// Whether a click on a link to `href` stays in the app.
pub fn is_app_link(href: &str) -> bool {
    href.starts_with('/')
        && !href.starts_with("//")
        && !SERVER_PATHS.iter().any(|p| href.starts_with(p))
}

fn on_click(ev: web_sys::MouseEvent) {
    if ev.default_prevented()
        || ev.button() != 0
        || ev.meta_key()
        || ev.ctrl_key()
        || ev.shift_key()
        || ev.alt_key()
    {
        return;
    }
    let Some(anchor) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .and_then(|e| e.closest("a[href]").ok().flatten())
    else {
        return;
    };
    let target = anchor.get_attribute("target").unwrap_or_default();
    if (!target.is_empty() && target != "_self") || anchor.has_attribute("download") {
        return;
    }
    let href = anchor.get_attribute("href").unwrap_or_default();
    if !is_app_link(&href) {
        return;
    }
    ev.prevent_default();
    navigate(&href, false);
}

/// Goes to `url` (`/path?query`) without a page load; `replace` replaces
/// the current history entry instead of adding one.
pub fn navigate(url: &str, replace: bool) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Ok(history) = window.history() {
        let _ = if replace {
            history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url))
        } else {
            history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(url))
        };
    }
    let (path, query) = split(url);
    let Some(location) = LOCATION.with(std::cell::Cell::get) else {
        return;
    };
    let moved = location.path.get_untracked() != path;
    location.path.set(path);
    location.query.set(query);
    if moved && !replace {
        window.scroll_to_with_x_and_y(0.0, 0.0);
    }
}

/// The second segment of the path: the `:id` of `/runs/:id` and
/// `/workflows/:id`.
pub fn use_id() -> Memo<String> {
    let location = use_location();
    Memo::new(move |_| {
        location
            .path
            .with(|p| p.split('/').nth(2).unwrap_or_default().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_path_and_query() {
        assert_eq!(
            split("/runs?status=failed#x"),
            ("/runs".into(), "status=failed".into())
        );
        assert_eq!(split("/runs/1"), ("/runs/1".into(), String::new()));
        assert_eq!(split(""), ("/".into(), String::new()));
    }

    #[test]
    fn only_app_paths_are_routed_in_place() {
        assert!(is_app_link("/runs/1"));
        assert!(is_app_link("/"));
        assert!(!is_app_link("//evil.example/x"));
        assert!(!is_app_link("/api/v1/openapi.json"));
        assert!(!is_app_link("/hooks/wh_1"));
        assert!(!is_app_link("https://example.com/"));
    }
}
