//! Browser smoke test of the SPA: `meshhook dev` serves the built SPA
//! (`MESHHOOK_SPA_DIR`); headless Chromium checks that it starts, reports the
//! database ready, switches and remembers the dark theme, routes, and fits a
//! 375 px wide phone screen. Screenshots land in
//! `test-artifacts/screenshots/`.
//!
//! Needs the `browser` feature, a built SPA and Chromium: `cargo xtask test`
//! provides all three.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use meshhook_system_tests::browser::Browser;
use serde_json::json;
use thirtyfour::prelude::*;

/// How long the SPA may take to load and see the database ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a UI reaction (a click, a resize) may take to show.
const UI_TIMEOUT: Duration = Duration::from_secs(5);
/// The narrow (phone) viewport width the layout must fit.
const NARROW: u32 = 375;

const THEME: &str = "return document.documentElement.getAttribute('data-theme');";
const STORED_THEME: &str = "return window.localStorage.getItem('meshhook-theme');";

#[tokio::test]
async fn spa_shell_reports_readiness_remembers_theme_and_fits_a_phone() -> Result<()> {
    let server = meshhook_system_tests::spawn_dev().await?;
    let browser = Browser::launch().await?;
    let outcome = smoke(&browser, &server.base_url).await;
    if outcome.is_err() {
        // Best effort: the failure itself is what matters.
        let _ = browser.screenshot("smoke-failure").await;
    }
    browser.quit().await?;
    outcome
}

async fn smoke(browser: &Browser, base_url: &str) -> Result<()> {
    browser.goto(base_url).await?;
    wait_until_ready(browser).await?;
    let brand = browser
        .find(By::Css("[data-testid=app-header]"))
        .await?
        .text()
        .await?;
    ensure!(brand.contains("MeshHook"), "header shows {brand:?}");

    // A fresh profile has no stored theme: the page follows the system (light
    // in headless Chromium). Start from light either way.
    if browser.eval(THEME).await? != json!("light") {
        toggle_theme(browser).await?;
        browser
            .wait_for_eval(THEME, &json!("light"), UI_TIMEOUT)
            .await?;
    }
    browser.screenshot("light").await?;

    toggle_theme(browser).await?;
    browser
        .wait_for_eval(THEME, &json!("dark"), UI_TIMEOUT)
        .await?;
    ensure!(
        browser.eval(STORED_THEME).await? == json!("dark"),
        "dark theme not stored"
    );
    let pressed = browser
        .find(By::Css("[data-testid=theme-toggle]"))
        .await?
        .attr("aria-pressed")
        .await?;
    ensure!(
        pressed.as_deref() == Some("true"),
        "toggle aria-pressed is {pressed:?}"
    );
    browser.screenshot("dark").await?;

    // The choice survives a reload.
    browser.refresh().await?;
    wait_until_ready(browser).await?;
    ensure!(
        browser.eval(THEME).await? == json!("dark"),
        "dark theme lost on reload"
    );

    // Client-side navigation.
    browser
        .find(By::Css("[data-testid=nav-workflows]"))
        .await?
        .click()
        .await?;
    browser
        .wait_for_text("[data-testid=page-title]", UI_TIMEOUT, |title| {
            title == "Workflows"
        })
        .await?;
    let path = browser.eval("return window.location.pathname;").await?;
    ensure!(path == json!("/workflows"), "navigated to {path}");
    browser
        .find(By::Css("[data-testid=nav-overview]"))
        .await?
        .click()
        .await?;
    wait_until_ready(browser).await?;

    // A phone-sized viewport: nothing may overflow horizontally.
    browser.set_window_rect(0, 0, NARROW, 800).await?;
    browser
        .wait_for_eval("return window.innerWidth;", &json!(NARROW), UI_TIMEOUT)
        .await
        .context("the window did not shrink to the phone width")?;
    let scroll_width = browser
        .eval("return document.documentElement.scrollWidth;")
        .await?
        .as_u64()
        .context("scrollWidth is not a number")?;
    ensure!(
        scroll_width <= u64::from(NARROW),
        "page is {scroll_width} px wide at a {NARROW} px viewport"
    );
    for id in ["theme-toggle", "nav", "readiness"] {
        let element = browser.find(By::Css(format!("[data-testid={id}]"))).await?;
        ensure!(element.is_displayed().await?, "{id} hidden at {NARROW} px");
    }
    browser.screenshot("narrow").await?;
    Ok(())
}

/// Waits until the readiness card says the database is ready.
async fn wait_until_ready(browser: &Browser) -> Result<()> {
    browser
        .wait_for_text("[data-testid=readiness]", READY_TIMEOUT, |text| {
            text.contains("Database ready")
        })
        .await?;
    let state = browser
        .find(By::Css("[data-testid=readiness]"))
        .await?
        .attr("data-state")
        .await?;
    ensure!(
        state.as_deref() == Some("ready"),
        "readiness data-state is {state:?}"
    );
    Ok(())
}

async fn toggle_theme(browser: &Browser) -> Result<()> {
    browser
        .find(By::Css("[data-testid=theme-toggle]"))
        .await?
        .click()
        .await?;
    Ok(())
}
