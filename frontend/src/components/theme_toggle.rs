//! The light/dark switch in the header.

use leptos::prelude::*;

use crate::theme::Theme;

/// A button showing the current theme's opposite; clicking it calls
/// `on_toggle`.
#[component]
pub fn ThemeToggle(
    /// The theme currently shown.
    #[prop(into)]
    theme: Signal<Theme>,
    /// Called when the user asks for the other theme.
    #[prop(into)]
    on_toggle: Callback<()>,
) -> impl IntoView {
    let is_dark = move || theme.get() == Theme::Dark;
    let label = move || {
        if is_dark() {
            "Switch to light theme"
        } else {
            "Switch to dark theme"
        }
    };
    view! {
        <button
            type="button"
            class="icon-button theme-toggle"
            data-testid="theme-toggle"
            aria-pressed=move || is_dark().to_string()
            aria-label=label
            title=label
            on:click=move |_| on_toggle.run(())
        >
            <Show when=is_dark fallback=|| view! { <MoonIcon/> }>
                <SunIcon/>
            </Show>
            <span class="theme-toggle-text">{move || if is_dark() { "Light" } else { "Dark" }}</span>
        </button>
    }
}

#[component]
fn SunIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
            <circle cx="12" cy="12" r="4"></circle>
            <path d="M12 2v2M12 20v2M4.93 4.93l1.41 1.41M17.66 17.66l1.41 1.41M2 12h2M20 12h2M4.93 19.07l1.41-1.41M17.66 6.34l1.41-1.41"></path>
        </svg>
    }
}

#[component]
fn MoonIcon() -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true">
            <path d="M21 12.79A9 9 0 1 1 11.21 3 7 7 0 0 0 21 12.79z"></path>
        </svg>
    }
}
