//! The signed-in session as a reactive value for the whole app, and where
//! the route guard sends signed-out users.
//!
//! `api.rs` owns the stored session (`localStorage`); this module mirrors it
//! into a signal by listening to the event `api::store_session` fires (and
//! to `storage` events, so signing out in one tab signs out the others).

use leptos::prelude::*;

use crate::api::{self, Session};

/// The session signal, provided by [`App`](crate::app::App).
#[derive(Clone, Copy)]
pub struct Auth {
    /// The stored session; `None` when signed out.
    pub session: RwSignal<Option<Session>>,
}

impl Auth {
    /// Creates the signal from storage, keeps it in sync and provides it as
    /// context.
    pub fn provide() -> Self {
        let session = RwSignal::new(api::session());
        let sync = move || {
            let stored = api::session();
            if session.with_untracked(|current| *current != stored) {
                session.set(stored);
            }
        };
        // The listeners live as long as the page, like the app itself
        // (dropping a handle does not remove its listener).
        let _ = window_event_listener_untyped(api::SESSION_EVENT, move |_| sync());
        let _ = window_event_listener_untyped("storage", move |_| sync());
        let auth = Self { session };
        provide_context(auth);
        auth
    }

    /// Whether someone is signed in (tracked).
    pub fn signed_in(self) -> bool {
        self.session.with(Option::is_some)
    }

    /// The signed-in user's email from the session (tracked).
    pub fn email(self) -> Option<String> {
        self.session
            .with(|s| s.as_ref().map(|session| session.user.email.clone()))
    }
}

/// The app's [`Auth`].
pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}

/// Where the guard sends a signed-out visitor of the current page:
/// `/signin?next=<this page>` (plain `/signin` from `/` or an auth page).
pub fn sign_in_url() -> String {
    let Some(location) = web_sys::window().map(|w| w.location()) else {
        return "/signin".to_owned();
    };
    let here = format!(
        "{}{}",
        location.pathname().unwrap_or_default(),
        location.search().unwrap_or_default()
    );
    sign_in_url_from(&here)
}

fn sign_in_url_from(here: &str) -> String {
    if here == "/" || here.is_empty() || is_auth_page(here) {
        "/signin".to_owned()
    } else {
        format!(
            "/signin?next={}",
            String::from(js_sys::encode_uri_component(here))
        )
    }
}

fn is_auth_page(path: &str) -> bool {
    ["/signin", "/signup"]
        .iter()
        .any(|page| path == *page || path.starts_with(&format!("{page}?")))
}

/// Where to go after signing in: the `next` query parameter of the current
/// page when it is a path of this app, else `/`.
pub fn next_page() -> String {
    let next = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("next"));
    safe_next(next.as_deref())
}

/// `next` if it is a local path (not `//host`, not an auth page), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !is_auth_page(path) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/workflows?q=a")), "/workflows?q=a");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/signin")), "/");
        assert_eq!(safe_next(Some("/signup?next=/x")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn auth_pages_and_root_need_no_next() {
        assert_eq!(sign_in_url_from("/"), "/signin");
        assert_eq!(sign_in_url_from("/signin?next=%2Fx"), "/signin");
        assert!(is_auth_page("/signup"));
        assert!(!is_auth_page("/signups"));
    }
}
