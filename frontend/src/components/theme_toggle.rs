//! The light/dark switch in the header.

use leptos::prelude::*;

use crate::theme::Theme;

/// A "Dark theme" toggle button (`aria-pressed` while dark); clicking it calls
/// `on_toggle`. Below 420 px only its icon shows; the text stays the
/// accessible name.
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
    let hint = move || {
        if is_dark() {
            "Switch to the light theme"
        } else {
            "Switch to the dark theme"
        }
    };
    view! {
        <button
            type="button"
            class="icon-button theme-toggle"
            data-testid="theme-toggle"
            aria-pressed=move || is_dark().to_string()
            title=hint
            on:click=move |_| on_toggle.run(())
        >
            <MoonIcon/>
            <span class="theme-toggle-text">"Dark theme"</span>
        </button>
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
