//! Light and dark themes.
//!
//! The theme follows the system's `prefers-color-scheme` until the user picks
//! one with the toggle; the pick is remembered in `localStorage`. The current
//! theme is mirrored to `<html data-theme="light|dark">`, which `style.css`
//! keys its colour variables on. `index.html` applies the remembered (or
//! system) theme before the wasm starts, so there is no flash of the wrong one.

use leptos::prelude::*;
use wasm_bindgen::{JsCast, closure::Closure};
use web_sys::MediaQueryListEvent;

/// `localStorage` key holding the user's explicit choice. `index.html` reads
/// the same key.
const STORAGE_KEY: &str = "meshhook-theme";
/// Media query that matches when the system prefers dark colours.
const DARK_QUERY: &str = "(prefers-color-scheme: dark)";

/// A colour theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// The value used in `data-theme` and in `localStorage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            _ => None,
        }
    }

    /// The other theme.
    pub fn toggled(self) -> Self {
        match self {
            Self::Light => Self::Dark,
            Self::Dark => Self::Light,
        }
    }
}

/// Creates the theme signal: the remembered choice, else the system
/// preference. Keeps `<html data-theme>` in sync with it, and follows changes
/// of the system preference for as long as the user has not chosen.
pub fn init() -> RwSignal<Theme> {
    let theme = RwSignal::new(stored().unwrap_or_else(system));
    Effect::new(move |_| apply(theme.get()));
    follow_system(theme);
    theme
}

/// Switches to `theme` and remembers the choice.
pub fn choose(signal: RwSignal<Theme>, theme: Theme) {
    signal.set(theme);
    if let Some(storage) = storage() {
        // Private browsing may refuse storage: the theme then lasts for the
        // page's lifetime only, which is fine.
        let _ = storage.set_item(STORAGE_KEY, theme.as_str());
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn stored() -> Option<Theme> {
    let value = storage()?.get_item(STORAGE_KEY).ok().flatten()?;
    Theme::parse(&value)
}

fn system_query() -> Option<web_sys::MediaQueryList> {
    web_sys::window()?.match_media(DARK_QUERY).ok().flatten()
}

fn system() -> Theme {
    match system_query() {
        Some(query) if query.matches() => Theme::Dark,
        _ => Theme::Light,
    }
}

fn apply(theme: Theme) {
    let root = web_sys::window()
        .and_then(|window| window.document())
        .and_then(|document| document.document_element());
    if let Some(root) = root {
        let _ = root.set_attribute("data-theme", theme.as_str());
    }
}

fn follow_system(signal: RwSignal<Theme>) {
    let Some(query) = system_query() else {
        return;
    };
    let on_change =
        Closure::<dyn Fn(MediaQueryListEvent)>::new(move |event: MediaQueryListEvent| {
            if stored().is_none() {
                signal.set(if event.matches() {
                    Theme::Dark
                } else {
                    Theme::Light
                });
            }
        });
    query.set_onchange(Some(on_change.as_ref().unchecked_ref()));
    // The listener lives as long as the page: hand its ownership to JS, and
    // keep the query object referenced so it is not collected with it.
    on_change.forget();
    std::mem::forget(query);
}
