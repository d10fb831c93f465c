//! Browser tests of the SPA: `meshhook dev` serves the built SPA
//! (`MESHHOOK_SPA_DIR`) and headless Chromium drives it like a user.
//!
//! - The smoke test: signed-out visitors land on the sign-in page; after
//!   signing up the shell reports the database ready, switches and
//!   remembers the dark theme, routes, and fits a 375 px wide phone.
//! - The journey: sign up, create a project and workflows, rename, search,
//!   delete, add and update a secret (its value never in the page), create
//!   a webhook (its secret shown once), test-send it, sign out and back in,
//!   survive a reload and an expired access token, and fit a phone in dark
//!   mode.
//!
//! Screenshots land in `test-artifacts/screenshots/`. Needs the `browser`
//! feature, a built SPA and Chromium: `cargo xtask test` provides all three.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use meshhook_system_tests::browser::Browser;
use serde_json::json;
use thirtyfour::prelude::*;

/// How long the SPA may take to load and see the database ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a UI reaction (a click, an API round trip) may take to show.
const UI_TIMEOUT: Duration = Duration::from_secs(10);
/// The narrow (phone) viewport width the layout must fit.
const NARROW: u32 = 375;
/// Password of the test accounts.
const PASSWORD: &str = "correct horse battery";

const THEME: &str = "return document.documentElement.getAttribute('data-theme');";
const STORED_THEME: &str = "return window.localStorage.getItem('meshhook-theme');";
const PAGE_HTML: &str = "return document.documentElement.outerHTML;";
const STORED_SESSION: &str = "return window.localStorage.getItem('meshhook.session');";

/// `[data-testid=<id>]`.
fn tid(id: &str) -> String {
    format!("[data-testid={id}]")
}

#[tokio::test]
async fn spa_shell_reports_readiness_remembers_theme_and_fits_a_phone() -> Result<()> {
    let server = meshhook_system_tests::spawn_dev().await?;
    Browser::drive("smoke-failure", async |browser| {
        smoke(browser, &server.base_url).await
    })
    .await
}

async fn smoke(browser: &Browser, base_url: &str) -> Result<()> {
    // Signed out, the guard sends the visitor to the sign-in page.
    browser.goto(base_url).await?;
    browser.wait_for_path("/signin", READY_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("page-title"), UI_TIMEOUT, |t| t == "Sign in")
        .await?;
    browser.click_on(&tid("to-signup"), UI_TIMEOUT).await?;
    browser.wait_for_path("/signup", UI_TIMEOUT).await?;
    sign_up(browser, "smoke@example.com").await?;
    browser.wait_for_path("/", UI_TIMEOUT).await?;

    wait_until_ready(browser).await?;
    wasm_arrived_as_built(browser).await?;
    let brand = browser
        .find(By::Css(tid("app-header")))
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
        .find(By::Css(tid("theme-toggle")))
        .await?
        .attr("aria-pressed")
        .await?;
    ensure!(
        pressed.as_deref() == Some("true"),
        "toggle aria-pressed is {pressed:?}"
    );
    browser.screenshot("dark").await?;

    // The choice (and the session) survive a reload.
    browser.refresh().await?;
    wait_until_ready(browser).await?;
    ensure!(
        browser.eval(THEME).await? == json!("dark"),
        "dark theme lost on reload"
    );

    // Client-side navigation.
    browser.click_on(&tid("nav-workflows"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("page-title"), UI_TIMEOUT, |title| title == "Workflows")
        .await?;
    browser.wait_for_path("/workflows", UI_TIMEOUT).await?;
    browser.click_on(&tid("nav-overview"), UI_TIMEOUT).await?;
    wait_until_ready(browser).await?;

    // An unknown address says so inside the shell.
    browser.goto(&format!("{base_url}/no-such-page")).await?;
    browser
        .wait_for_text(&tid("page-title"), READY_TIMEOUT, |t| t == "Page not found")
        .await?;
    browser.wait_for(&tid("nav"), UI_TIMEOUT).await?;
    browser.click_on(&tid("nav-overview"), UI_TIMEOUT).await?;
    wait_until_ready(browser).await?;

    // A phone-sized viewport: nothing may overflow horizontally.
    narrow(browser).await?;
    for id in [
        "theme-toggle",
        "nav",
        "readiness",
        "project-select",
        "sign-out",
    ] {
        let element = browser.find(By::Css(tid(id))).await?;
        ensure!(element.is_displayed().await?, "{id} hidden at {NARROW} px");
    }
    browser.screenshot("narrow").await?;
    Ok(())
}

#[tokio::test]
async fn journey_from_sign_up_to_webhook_and_back() -> Result<()> {
    let server = meshhook_system_tests::spawn_dev().await?;
    Browser::drive("journey-failure", async |browser| {
        journey(browser, &server.base_url).await
    })
    .await
}

async fn journey(browser: &Browser, base_url: &str) -> Result<()> {
    let email = "ada@example.com";

    // A deep link while signed out: sign-in first, then back to it.
    browser.goto(&format!("{base_url}/workflows")).await?;
    browser.wait_for_path("/signin", READY_TIMEOUT).await?;
    let here = browser.location().await?;
    ensure!(
        here == "/signin?next=%2Fworkflows",
        "the guard sent us to {here}"
    );
    browser.screenshot("journey-01-signin").await?;
    browser.click_on(&tid("to-signup"), UI_TIMEOUT).await?;
    browser.wait_for_path("/signup", UI_TIMEOUT).await?;
    sign_up(browser, email).await?;
    browser.wait_for_path("/workflows", UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("user-email"), UI_TIMEOUT, |t| t == email)
        .await?;

    // No project yet: the empty state offers to create one; use the
    // header's switcher instead.
    browser.wait_for(&tid("first-project"), UI_TIMEOUT).await?;
    browser.screenshot("journey-02-first-project").await?;
    browser.click_on(&tid("project-new"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("project-name"), "Acme payments", UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("project-create"), UI_TIMEOUT).await?;
    browser
        .wait_for(&tid("workflows-empty"), UI_TIMEOUT)
        .await?;
    let project = browser
        .eval("return document.querySelector('[data-testid=project-select]').selectedOptions[0].text;")
        .await?;
    ensure!(
        project == json!("Acme payments"),
        "switcher shows {project}"
    );

    // Create a workflow: the editor opens on its empty canvas.
    create_workflow(browser, "Order sync").await?;
    browser.wait_for(&tid("canvas-empty"), UI_TIMEOUT).await?;
    browser.screenshot("journey-03-workflow").await?;
    browser.click_on(&tid("nav-workflows"), UI_TIMEOUT).await?;
    create_workflow(browser, "Stripe refunds").await?;
    browser.click_on(&tid("nav-workflows"), UI_TIMEOUT).await?;
    wait_rows(browser, "workflow-row", 2).await?;

    // Rename the first one in place.
    let row = workflow_row(browser, "Order sync").await?;
    row.find(By::Css(tid("workflow-rename")))
        .await?
        .click()
        .await?;
    browser
        .fill(&tid("workflow-rename-input"), "Billing sync", UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("workflow-rename-save"), UI_TIMEOUT)
        .await?;
    browser
        .wait_gone(&tid("workflow-rename-input"), UI_TIMEOUT)
        .await?;
    let row = workflow_row(browser, "Billing sync").await?;
    let status = row
        .find(By::Css(tid("workflow-status")))
        .await?
        .text()
        .await?;
    ensure!(status == "draft", "status of a new workflow: {status:?}");

    // Search narrows the list; a miss says so.
    browser
        .fill(&tid("workflow-search"), "billing", UI_TIMEOUT)
        .await?;
    wait_rows(browser, "workflow-row", 1).await?;
    browser.screenshot("journey-04-search").await?;
    browser
        .fill(&tid("workflow-search"), "zebra", UI_TIMEOUT)
        .await?;
    browser
        .wait_for(&tid("workflows-no-match"), UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("workflow-search"), "", UI_TIMEOUT)
        .await?;
    wait_rows(browser, "workflow-row", 2).await?;

    // Delete asks first; cancel keeps it, confirm removes it.
    let row = workflow_row(browser, "Stripe refunds").await?;
    row.find(By::Css(tid("workflow-delete")))
        .await?
        .click()
        .await?;
    browser.wait_for(&tid("confirm-dialog"), UI_TIMEOUT).await?;
    browser.screenshot("journey-05-confirm-delete").await?;
    browser.click_on(&tid("confirm-cancel"), UI_TIMEOUT).await?;
    browser
        .wait_gone(&tid("confirm-dialog"), UI_TIMEOUT)
        .await?;
    wait_rows(browser, "workflow-row", 2).await?;
    let row = workflow_row(browser, "Stripe refunds").await?;
    row.find(By::Css(tid("workflow-delete")))
        .await?
        .click()
        .await?;
    browser.click_on(&tid("confirm-ok"), UI_TIMEOUT).await?;
    browser
        .wait_gone(&tid("confirm-dialog"), UI_TIMEOUT)
        .await?;
    wait_rows(browser, "workflow-row", 1).await?;

    // Secrets: a value goes in and never comes back.
    let value = "tok_live_9f8e7d6c5b4a39217e";
    browser.click_on(&tid("nav-secrets"), UI_TIMEOUT).await?;
    browser.wait_for(&tid("secrets-empty"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("secret-name-input"), "API_TOKEN", UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("secret-value-input"), value, UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("secret-add"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("secret-name"), UI_TIMEOUT, |t| t == "API_TOKEN")
        .await?;
    let left = browser
        .wait_for(&tid("secret-value-input"), UI_TIMEOUT)
        .await?
        .prop("value")
        .await?;
    ensure!(
        left.as_deref() == Some(""),
        "value field not cleared: {left:?}"
    );
    let masked = browser
        .find(By::Css(tid("secret-masked")))
        .await?
        .text()
        .await?;
    ensure!(!masked.contains(value), "masked shows the value: {masked}");
    assert_not_in_page(browser, value).await?;
    // A refusal shows the API's explanation.
    browser
        .fill(&tid("secret-name-input"), "API_TOKEN", UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("secret-value-input"), "another", UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("secret-add"), UI_TIMEOUT).await?;
    let detail = browser
        .wait_for_text(&tid("error-detail"), UI_TIMEOUT, |t| !t.is_empty())
        .await?;
    ensure!(
        detail.contains("API_TOKEN") || detail.contains("exists"),
        "the duplicate's error says {detail:?}"
    );
    browser.screenshot("journey-06a-secret-error").await?;
    // Replace the value: the same.
    let new_value = "tok_live_0a1b2c3d4e5f60718293";
    browser.click_on(&tid("secret-update"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("secret-new-value"), new_value, UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("secret-update-save"), UI_TIMEOUT)
        .await?;
    browser.wait_for(&tid("secret-saved"), UI_TIMEOUT).await?;
    browser
        .wait_gone(&tid("secret-new-value"), UI_TIMEOUT)
        .await?;
    assert_not_in_page(browser, new_value).await?;
    assert_not_in_page(browser, value).await?;
    browser.screenshot("journey-06-secrets").await?;

    // Webhooks: create one; its signing secret shows once.
    browser.click_on(&tid("nav-webhooks"), UI_TIMEOUT).await?;
    browser.wait_for(&tid("webhooks-empty"), UI_TIMEOUT).await?;
    browser.click_on(&tid("webhook-new"), UI_TIMEOUT).await?;
    browser.click_on(&tid("webhook-create"), UI_TIMEOUT).await?;
    let secret = browser
        .wait_for_text(&tid("shown-once-value"), UI_TIMEOUT, |t| {
            t.starts_with("whsec_")
        })
        .await?;
    let url = browser
        .wait_for(&tid("webhook-url"), UI_TIMEOUT)
        .await?
        .text()
        .await?;
    ensure!(url.contains("/hooks/wh_"), "webhook URL {url:?}");
    let scheme = browser
        .find(By::Css(tid("webhook-scheme-label")))
        .await?
        .text()
        .await?;
    ensure!(scheme == "standard_webhooks", "scheme {scheme:?}");
    browser.screenshot("journey-07-webhook-secret").await?;
    browser
        .click_on(&tid("shown-once-dismiss"), UI_TIMEOUT)
        .await?;
    browser.wait_gone(&tid("shown-once"), UI_TIMEOUT).await?;
    assert_not_in_page(browser, &secret).await?;

    // Edit the rate limit in place.
    browser
        .click_on(&tid("webhook-edit-rate"), UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("webhook-rate-input"), "5", UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("webhook-burst-input"), "10", UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("webhook-rate-save"), UI_TIMEOUT)
        .await?;
    browser
        .wait_for_text(&tid("webhook-rate-label"), UI_TIMEOUT, |t| {
            t == "5/s, burst 10"
        })
        .await?;

    // Test send: the workflow is unpublished, so its endpoint refuses
    // (409), and the refusal is in the delivery log.
    browser.click_on(&tid("webhook-test"), UI_TIMEOUT).await?;
    let outcome = browser
        .wait_for_text(&tid("webhook-test-outcome"), UI_TIMEOUT, |t| !t.is_empty())
        .await?;
    ensure!(
        outcome.contains("answered HTTP 409"),
        "test outcome: {outcome}"
    );
    browser
        .wait_for_text(&tid("delivery-row"), UI_TIMEOUT, |t| {
            t.contains("not_published") && t.contains("409")
        })
        .await?;
    browser
        .find(By::Css(tid("delivery-log")))
        .await?
        .scroll_into_view()
        .await?;
    browser.screenshot("journey-08-webhook-deliveries").await?;

    // Rotating shows the new secret once.
    browser.click_on(&tid("webhook-rotate"), UI_TIMEOUT).await?;
    let rotated = browser
        .wait_for_text(&tid("shown-once-value"), UI_TIMEOUT, |t| {
            t.starts_with("whsec_")
        })
        .await?;
    ensure!(rotated != secret, "rotation returned the same secret");
    browser
        .click_on(&tid("shown-once-dismiss"), UI_TIMEOUT)
        .await?;
    browser.wait_gone(&tid("shown-once"), UI_TIMEOUT).await?;

    // Settings: the owner is a member; an API key shows once.
    browser.click_on(&tid("nav-settings"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("member-row"), UI_TIMEOUT, |t| {
            t.contains(email) && t.contains("owner")
        })
        .await?;
    browser
        .fill(&tid("api-key-name"), "CI deploy", UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("api-key-create"), UI_TIMEOUT).await?;
    browser
        .wait_for(&tid("shown-once-value"), UI_TIMEOUT)
        .await?;
    browser
        .wait_for_text(&tid("api-key-row"), UI_TIMEOUT, |t| t.contains("CI deploy"))
        .await?;
    browser.screenshot("journey-09-settings").await?;
    browser
        .click_on(&tid("shown-once-dismiss"), UI_TIMEOUT)
        .await?;

    // Sign out: the session is gone and pages send us to sign in.
    browser.click_on(&tid("sign-out"), UI_TIMEOUT).await?;
    browser.wait_for_path("/signin", UI_TIMEOUT).await?;
    ensure!(
        browser.eval(STORED_SESSION).await?.is_null(),
        "session kept after signing out"
    );
    browser.goto(&format!("{base_url}/secrets")).await?;
    browser.wait_for_path("/signin", READY_TIMEOUT).await?;

    // Sign back in: back to the page we wanted, in the remembered project.
    browser.fill(&tid("auth-email"), email, UI_TIMEOUT).await?;
    browser
        .fill(&tid("auth-password"), PASSWORD, UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("auth-submit"), UI_TIMEOUT).await?;
    browser.wait_for_path("/secrets", UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("secret-name"), UI_TIMEOUT, |t| t == "API_TOKEN")
        .await?;

    // A reload stays signed in.
    browser.refresh().await?;
    browser
        .wait_for_text(&tid("secret-name"), READY_TIMEOUT, |t| t == "API_TOKEN")
        .await?;
    ensure!(
        browser.location().await? == "/secrets",
        "the reload left /secrets"
    );

    // An expired access token is renewed with the refresh token.
    browser
        .eval(
            "const s = JSON.parse(localStorage.getItem('meshhook.session'));\
             s.access_token = 'expired.token.value';\
             localStorage.setItem('meshhook.session', JSON.stringify(s)); return null;",
        )
        .await?;
    browser.refresh().await?;
    browser
        .wait_for_text(&tid("secret-name"), READY_TIMEOUT, |t| t == "API_TOKEN")
        .await?;
    let token = browser
        .eval("return JSON.parse(localStorage.getItem('meshhook.session')).access_token;")
        .await?;
    ensure!(
        token.as_str().is_some_and(|t| t != "expired.token.value"),
        "the access token was not renewed: {token}"
    );

    // A phone in dark mode: the workflows list fits.
    toggle_theme(browser).await?;
    browser
        .wait_for_eval(THEME, &json!("dark"), UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("nav-workflows"), UI_TIMEOUT).await?;
    wait_rows(browser, "workflow-row", 1).await?;
    narrow(browser).await?;
    browser
        .screenshot("journey-10-narrow-dark-workflows")
        .await?;
    browser.click_on(&tid("nav-webhooks"), UI_TIMEOUT).await?;
    browser.wait_for(&tid("webhook-card"), UI_TIMEOUT).await?;
    fits(browser).await?;
    browser
        .screenshot("journey-11-narrow-dark-webhooks")
        .await?;
    Ok(())
}

/// The page's wasm came over the wire as the build left it: gzip-encoded
/// with exactly the bytes of its precompressed `.gz` when the build wrote
/// one (release builds), else as is.
async fn wasm_arrived_as_built(browser: &Browser) -> Result<()> {
    const ENTRY: &str = "const e = performance.getEntriesByType('resource')\
        .find(e => e.name.endsWith('.wasm'));\
        return e ? [e.name.split('/').pop(), e.encodedBodySize, e.decodedBodySize] : null;";
    let entry = browser.eval(ENTRY).await?;
    let (Some(name), Some(encoded), Some(decoded)) =
        (entry[0].as_str(), entry[1].as_u64(), entry[2].as_u64())
    else {
        anyhow::bail!("no resource timing for the wasm: {entry}");
    };
    let dir = std::path::PathBuf::from(
        std::env::var("MESHHOOK_SPA_DIR").context("MESHHOOK_SPA_DIR is set for browser tests")?,
    );
    let plain = std::fs::metadata(dir.join(name))
        .with_context(|| format!("{name} in {}", dir.display()))?
        .len();
    ensure!(
        decoded == plain,
        "decoded {decoded} bytes of {name}, the file has {plain}"
    );
    let expected = match std::fs::metadata(dir.join(format!("{name}.gz"))) {
        Ok(packed) => packed.len(),
        Err(_) => plain,
    };
    ensure!(
        encoded == expected,
        "{name} arrived as {encoded} bytes; expected {expected} (plain {plain})"
    );
    Ok(())
}

/// Fills the sign-up form on `/signup` and submits it.
async fn sign_up(browser: &Browser, email: &str) -> Result<()> {
    browser.fill(&tid("auth-email"), email, UI_TIMEOUT).await?;
    browser
        .fill(&tid("auth-password"), PASSWORD, UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("auth-submit"), UI_TIMEOUT).await
}

/// Creates a workflow from the list page and waits for its page.
async fn create_workflow(browser: &Browser, name: &str) -> Result<()> {
    browser
        .fill(&tid("workflow-new-name"), name, UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("workflow-create"), UI_TIMEOUT)
        .await?;
    browser
        .wait_for_text(&tid("page-title"), UI_TIMEOUT, |t| t == name)
        .await
        .with_context(|| format!("opening the new workflow {name:?}"))?;
    let path = browser.location().await?;
    ensure!(path.starts_with("/workflows/"), "after creating: {path}");
    Ok(())
}

/// The workflow list's row whose name is `name`.
async fn workflow_row(browser: &Browser, name: &str) -> Result<WebElement> {
    // The list re-renders when it reloads: a row found a moment ago can go
    // stale before its name is read, so look again until the timeout.
    let deadline = std::time::Instant::now() + UI_TIMEOUT;
    loop {
        let mut last = anyhow::anyhow!("no workflow row named {name:?}");
        for row in browser.find_all(By::Css(tid("workflow-row"))).await? {
            let named = async { row.find(By::Css(tid("workflow-name"))).await?.text().await };
            match named.await {
                Ok(text) if text == name => return Ok(row),
                Ok(_) => {}
                Err(e) => last = e.into(),
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until exactly `n` elements `[data-testid=<id>]` are on the page.
async fn wait_rows(browser: &Browser, id: &str, n: usize) -> Result<()> {
    browser
        .wait_for_eval(
            &format!("return document.querySelectorAll('[data-testid={id}]').length;"),
            &json!(n),
            UI_TIMEOUT,
        )
        .await
}

async fn assert_not_in_page(browser: &Browser, secret: &str) -> Result<()> {
    let html = browser.eval(PAGE_HTML).await?;
    let html = html.as_str().context("outerHTML is not a string")?;
    ensure!(!html.contains(secret), "the page's HTML contains a secret");
    Ok(())
}

/// Shrinks the window to the phone width and checks nothing overflows.
async fn narrow(browser: &Browser) -> Result<()> {
    browser.set_window_rect(0, 0, NARROW, 800).await?;
    browser
        .wait_for_eval("return window.innerWidth;", &json!(NARROW), UI_TIMEOUT)
        .await
        .context("the window did not shrink to the phone width")?;
    fits(browser).await
}

/// Nothing overflows the viewport horizontally.
async fn fits(browser: &Browser) -> Result<()> {
    let width = browser
        .eval("return window.innerWidth;")
        .await?
        .as_u64()
        .context("innerWidth is not a number")?;
    let scroll_width = browser
        .eval("return document.documentElement.scrollWidth;")
        .await?
        .as_u64()
        .context("scrollWidth is not a number")?;
    ensure!(
        scroll_width <= width,
        "page is {scroll_width} px wide at a {width} px viewport"
    );
    Ok(())
}

/// Waits until the readiness card says the database is ready.
async fn wait_until_ready(browser: &Browser) -> Result<()> {
    browser
        .wait_for_text(&tid("readiness"), READY_TIMEOUT, |text| {
            text.contains("Database ready")
        })
        .await?;
    let state = browser
        .find(By::Css(tid("readiness")))
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
    browser.click_on(&tid("theme-toggle"), UI_TIMEOUT).await
}

/// The run pages: a test run started through the API appears in the run
/// list; its page shows the steps, the output and the event log; a failed
/// run is resumed from a step and the new run opens.
#[tokio::test]
async fn runs_list_and_run_page_show_steps_events_and_resume() -> Result<()> {
    let server = meshhook_system_tests::spawn_dev().await?;
    Browser::drive("runs-failure", async |browser| {
        runs_pages(browser, &server.base_url).await
    })
    .await
}

async fn runs_pages(browser: &Browser, base: &str) -> Result<()> {
    let http = reqwest::Client::new();
    let auth: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "runs@example.com", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = auth["access_token"]
        .as_str()
        .context("signed up")?
        .to_owned();
    let call = |method: reqwest::Method, path: String, body: serde_json::Value| {
        let (http, token, base) = (http.clone(), token.clone(), base.to_owned());
        async move {
            let res = http
                .request(method, format!("{base}{path}"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            let status = res.status();
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            ensure!(status.is_success(), "{path}: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };
    let project = call(
        reqwest::Method::POST,
        "/api/v1/projects".into(),
        json!({"name": "Runs"}),
    )
    .await?;
    let pid = project["id"].as_str().context("project id")?.to_owned();
    // Fails when the payload says so: `pick` passes, `check` decides.
    let definition = meshhook_system_tests::ok_or_fail_definition();
    let wf = call(
        reqwest::Method::POST,
        format!("/api/v1/projects/{pid}/workflows"),
        json!({"name": "greeter", "definition": definition}),
    )
    .await?;
    let wid = wf["id"].as_str().context("workflow id")?.to_owned();
    let ok = call(
        reqwest::Method::POST,
        format!("/api/v1/workflows/{wid}/test-runs"),
        json!({"payload": {"ok": true}}),
    )
    .await?;
    let ok_run = ok["run_id"].as_str().context("run id")?.to_owned();
    let bad = call(
        reqwest::Method::POST,
        format!("/api/v1/workflows/{wid}/test-runs"),
        json!({"payload": {"ok": false}}),
    )
    .await?;
    let bad_run = bad["run_id"].as_str().context("run id")?.to_owned();

    // Signed in as that user (the SPA's stored session).
    browser.sign_in(base, &auth).await?;
    browser.goto(&format!("{base}/runs")).await?;
    browser.wait_for(&tid("run-table"), READY_TIMEOUT).await?;
    browser
        .wait_for_eval(
            "return document.querySelectorAll('[data-testid=run-row]').length;",
            &json!(2),
            UI_TIMEOUT,
        )
        .await
        .context("both runs listed")?;
    browser.screenshot("runs-01-list").await?;

    // The succeeded run: steps, output, event log.
    browser.goto(&format!("{base}/runs/{ok_run}")).await?;
    browser
        .wait_for_text(&tid("run-status"), READY_TIMEOUT, |t| t == "succeeded")
        .await?;
    let steps = browser
        .eval("return [...document.querySelectorAll('[data-testid=step-row]')].map(r => r.innerText).join('|');")
        .await?;
    let steps = steps.as_str().unwrap_or_default().to_owned();
    ensure!(
        steps.contains("pick") && steps.contains("done"),
        "steps: {steps}"
    );
    browser
        .wait_for_text(&tid("run-output"), UI_TIMEOUT, |t| t.contains("hello"))
        .await?;
    let events = browser
        .eval("return [...document.querySelectorAll('[data-testid=event]')].map(e => e.innerText).join('|');")
        .await?;
    let events = events.as_str().unwrap_or_default().to_owned();
    ensure!(
        events.contains("run_created") && events.contains("run_succeeded"),
        "event log: {events}"
    );
    browser.screenshot("runs-02-succeeded").await?;

    // The failed run: resume it from `pick`; the new run opens.
    browser.goto(&format!("{base}/runs/{bad_run}")).await?;
    browser
        .wait_for_text(&tid("run-status"), READY_TIMEOUT, |t| t == "failed")
        .await?;
    browser
        .eval("const s = document.querySelector('[data-testid=run-resume-node]'); s.value = 'pick'; s.dispatchEvent(new Event('change', {bubbles: true})); return true;")
        .await?;
    browser.click_on(&tid("run-resume"), UI_TIMEOUT).await?;
    browser
        .wait_for_eval(
            &format!("return window.location.pathname.startsWith('/runs/') && !window.location.pathname.endsWith('{bad_run}');"),
            &json!(true),
            UI_TIMEOUT,
        )
        .await
        .context("the resumed run opens")?;
    // The new run's page (not the old one still on screen) links its parent.
    browser
        .wait_for_eval(
            &format!(
                "return document.body.innerText.toLowerCase().includes('resumed from') && !!document.querySelector('a[href=\"/runs/{bad_run}\"]');"
            ),
            &json!(true),
            READY_TIMEOUT,
        )
        .await
        .context("the new run links its parent")?;
    browser
        .wait_for_text(&tid("run-status"), READY_TIMEOUT, |t| {
            t == "failed" || t == "succeeded"
        })
        .await?;
    browser.screenshot("runs-03-resumed").await?;

    // Dead letters: both failed runs, resumed together from their failed step.
    browser.goto(&format!("{base}/runs")).await?;
    browser
        .click_on(&tid("to-dead-letter"), READY_TIMEOUT)
        .await?;
    browser.wait_for_path("/dead-letter", UI_TIMEOUT).await?;
    browser
        .wait_for_eval(
            "return document.querySelectorAll('[data-testid=dead-letter-row]').length;",
            &json!(2),
            READY_TIMEOUT,
        )
        .await
        .context("both failed runs are dead letters")?;
    let text = browser
        .eval("return document.querySelector('[data-testid=dead-letter-table]').innerText;")
        .await?;
    let text = text.as_str().unwrap_or_default().to_owned();
    ensure!(text.contains("fail"), "the failed step is named: {text}");
    browser
        .click_on(&tid("dead-letter-select-all"), UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("dead-letter-resume"), UI_TIMEOUT)
        .await?;
    browser
        .wait_for_text(&tid("dead-letter-outcome"), READY_TIMEOUT, |t| {
            t.starts_with("Resumed 2 of 2")
        })
        .await?;
    browser.screenshot("runs-04-dead-letters").await?;
    let all: serde_json::Value = call(
        reqwest::Method::GET,
        format!("/api/v1/projects/{pid}/runs?limit=50"),
        json!(null),
    )
    .await?;
    let resumes = all["items"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["trigger_kind"] == "resume").count())
        .unwrap_or(0);
    ensure!(
        resumes == 3,
        "one resume from the run page, two from dead letters: {all}"
    );
    Ok(())
}
