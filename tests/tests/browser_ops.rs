//! Browser test of the operations pages: Metrics (`/insights`) and Alerts
//! (`/alerts`).
//!
//! Through the REST API: sign up, create a project, a published workflow
//! with an unsigned webhook, and five runs by POSTing to the webhook (two
//! fail). In Chromium: the Metrics page shows their success rate, counts,
//! chart and failures, and an empty project says so; on the Alerts page a
//! rule pointing at a stub receiver in this test is created (its secret
//! shown once), test-sent (the receiver gets a signed POST and the page
//! shows it in the log), disabled, edited and deleted. Dark-mode
//! screenshots of both pages (whole pages, wide and at 375 px) and of the
//! alert form land in `test-artifacts/screenshots/ops-*.png`.
//!
//! Needs the `browser` feature, a built SPA and Chromium (`cargo xtask
//! test` provides all three).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use axum::http::HeaderMap;
use meshhook_system_tests::browser::Browser;
use meshhook_system_tests::spawn_dev_with;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

/// How long the SPA may take to load a page.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a UI reaction (a click, an API round trip) may take to show.
const UI_TIMEOUT: Duration = Duration::from_secs(10);
/// How long runs, the metrics views and alert deliveries may take.
const WORK_TIMEOUT: Duration = Duration::from_secs(45);
const PASSWORD: &str = "correct horse battery";
const PAGE_HTML: &str = "return document.documentElement.outerHTML;";

fn tid(id: &str) -> String {
    format!("[data-testid={id}]")
}

/// What the stub receiver got: `(webhook-signature header, body)`.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// An alert receiver on loopback answering 200; returns its URL.
async fn receiver() -> Result<(String, Received)> {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/alert",
        axum::routing::post(move |headers: HeaderMap, body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                let signature = headers
                    .get("webhook-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock().unwrap().push((signature, body.0));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/alert", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, got))
}

/// A signed-in REST client.
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value> {
        let res = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        ensure!(status.is_success(), "{path}: {status} {body}");
        Ok(body)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, Value::Null).await
    }
}

#[tokio::test]
async fn metrics_and_alerts_pages_show_runs_and_send_a_test_alert() -> Result<()> {
    let server = spawn_dev_with(&[
        ("MESHHOOK_METRICS_REFRESH_SECS", "1"),
        ("MESHHOOK_EGRESS_ALLOWLIST", "127.0.0.1/32"),
    ])
    .await?;
    Browser::drive("ops-failure", async |browser| {
        ops_pages(browser, &server.base_url).await
    })
    .await
}

async fn ops_pages(browser: &Browser, base: &str) -> Result<()> {
    let http = reqwest::Client::new();
    let auth: Value = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "ops@example.com", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let api = Api {
        http: http.clone(),
        base: base.to_owned(),
        token: auth["access_token"]
            .as_str()
            .context("signed up")?
            .to_owned(),
    };
    let project = api.post("/api/v1/projects", json!({"name": "Ops"})).await?;
    let pid = project["id"].as_str().context("project id")?.to_owned();
    // Succeeds or fails as the payload says.
    let definition = meshhook_system_tests::ok_or_fail_definition();
    let wf = api
        .post(
            &format!("/api/v1/projects/{pid}/workflows"),
            json!({"name": "payments", "definition": definition}),
        )
        .await?;
    let wid = wf["id"].as_str().context("workflow id")?.to_owned();
    api.post(&format!("/api/v1/workflows/{wid}/publish"), json!({}))
        .await?;
    let hook = api
        .post(
            &format!("/api/v1/workflows/{wid}/webhooks"),
            json!({"verification": {"scheme": "none"}}),
        )
        .await?;
    let token = hook["url"]
        .as_str()
        .and_then(|u| u.rsplit_once("/hooks/"))
        .map(|(_, t)| t.to_owned())
        .context("webhook url")?;
    for ok in [true, true, false, true, false] {
        let res = http
            .post(format!("{base}/hooks/{token}"))
            .json(&json!({"ok": ok}))
            .send()
            .await?;
        ensure!(res.status().is_success(), "delivery: {}", res.status());
    }
    // Every run finished, and the metrics views caught up.
    wait_api(
        &api,
        &format!("/api/v1/projects/{pid}/runs?limit=50"),
        |v| {
            let items = v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            items.len() == 5
                && items
                    .iter()
                    .all(|r| matches!(r["status"].as_str(), Some("succeeded" | "failed")))
        },
    )
    .await
    .context("five finished runs")?;
    let metrics = wait_api(&api, &format!("/api/v1/projects/{pid}/metrics"), |v| {
        v["workflows"][0]["succeeded"] == 3
            && v["workflows"][0]["failed"] == 2
            && v["latency"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await
    .context("the metrics views count the runs")?;

    // Signed in as that user, in dark mode.
    browser.sign_in(base, &auth).await?;
    browser
        .eval("localStorage.setItem('meshhook-theme', 'dark'); return true;")
        .await?;

    // Metrics.
    browser.goto(base).await?;
    browser
        .click_on(&tid("nav-insights"), READY_TIMEOUT)
        .await?;
    browser.wait_for_path("/insights", UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("metrics-success-rate"), READY_TIMEOUT, |t| t == "60%")
        .await?;
    for (id, want) in [("metrics-finished", "5"), ("metrics-failed", "2")] {
        let got = browser.find(By::Css(tid(id))).await?.text().await?;
        ensure!(got == want, "{id} shows {got:?}, expected {want}");
    }
    // The page's styles apply: headline numbers in a grid, a plot of a
    // sensible height.
    let layout = browser
        .eval("const s = document.querySelector('[data-testid=metrics-stats]'); const p = document.querySelector('.chart-plot'); return [getComputedStyle(s).display, Math.round(p.getBoundingClientRect().height)];")
        .await?;
    ensure!(
        layout[0] == "grid" && (100..=400).contains(&layout[1].as_u64().unwrap_or(0)),
        "metrics layout (stats display, plot height): {layout}"
    );
    let line = browser.find(By::Css(tid("rate-line"))).await?;
    let points: usize = line
        .attr("data-points")
        .await?
        .context("data-points")?
        .parse()?;
    let d = line.attr("d").await?.unwrap_or_default();
    ensure!(
        points >= 1 && d.starts_with('M') && d.matches(['M', 'L']).count() == points,
        "rate line with {points} points: {d:?}"
    );
    let latency = metrics["latency"].as_array().map_or(0, Vec::len).min(10);
    wait_count(browser, "latency-row", latency).await?;
    let failures = browser
        .eval("return document.querySelector('[data-testid=failures]').innerText;")
        .await?;
    let failures = failures.as_str().unwrap_or_default();
    ensure!(
        failures.contains("2 failed") && failures.contains("payments"),
        "failures by node: {failures}"
    );
    let href = browser
        .find(By::Css(tid("failure-runs")))
        .await?
        .attr("href")
        .await?
        .unwrap_or_default();
    ensure!(
        href == format!("/runs?status=failed&workflow_id={wid}"),
        "failure link {href}"
    );
    // Other windows: the runs are in the last hour and the last week too.
    for w in ["1h", "7d"] {
        browser
            .click_on(&tid(&format!("window-{w}")), UI_TIMEOUT)
            .await?;
        browser
            .wait_for_eval(
                &format!("return document.querySelector('[data-testid=window-{w}]').getAttribute('aria-pressed');"),
                &json!("true"),
                UI_TIMEOUT,
            )
            .await?;
        browser
            .wait_for_text(&tid("metrics-finished"), UI_TIMEOUT, |t| t == "5")
            .await
            .with_context(|| format!("window {w}"))?;
    }
    browser.click_on(&tid("window-24h"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("metrics-success-rate"), UI_TIMEOUT, |t| t == "60%")
        .await?;
    shot(browser, "ops-01-metrics-dark").await?;
    narrow(browser).await?;
    shot(browser, "ops-02-metrics-narrow-dark").await?;
    // The failure link opens the failed runs of that workflow.
    browser.click_on(&tid("failure-runs"), UI_TIMEOUT).await?;
    browser.wait_for_path("/runs", UI_TIMEOUT).await?;
    wait_count(browser, "run-row", 2).await?;
    browser
        .wait_for(&tid("runs-workflow-filter"), UI_TIMEOUT)
        .await?;
    wide(browser).await?;

    // A project without runs says so.
    let empty = api
        .post("/api/v1/projects", json!({"name": "Quiet"}))
        .await?;
    let quiet = empty["id"].as_str().context("project id")?;
    browser.goto(&format!("{base}/insights")).await?;
    choose_project(browser, quiet).await?;
    browser
        .wait_for(&tid("metrics-empty"), READY_TIMEOUT)
        .await?;
    choose_project(browser, &pid).await?;
    browser
        .wait_for_text(&tid("metrics-success-rate"), READY_TIMEOUT, |t| t == "60%")
        .await?;

    // Alerts: create a rule pointing at the stub receiver.
    let (url, received) = receiver().await?;
    browser.click_on(&tid("nav-alerts"), UI_TIMEOUT).await?;
    browser.wait_for_path("/alerts", UI_TIMEOUT).await?;
    browser
        .wait_for(&tid("alerts-empty"), READY_TIMEOUT)
        .await?;
    browser.click_on(&tid("alert-new"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("alert-name"), "Ops pager", UI_TIMEOUT)
        .await?;
    // A failure rate these runs (40 %, 5 runs) do not reach: only the test
    // alert is sent.
    browser
        .eval("const s = document.querySelector('[data-testid=alert-kind]'); s.value = 'failure_rate'; s.dispatchEvent(new Event('change', {bubbles: true})); return true;")
        .await?;
    browser.fill(&tid("alert-rate"), "90", UI_TIMEOUT).await?;
    browser.fill(&tid("alert-url"), &url, UI_TIMEOUT).await?;
    shot(browser, "ops-03-alert-form-dark").await?;
    browser.click_on(&tid("alert-save"), UI_TIMEOUT).await?;
    let secret = browser
        .wait_for_text(&tid("shown-once-value"), UI_TIMEOUT, |t| {
            t.starts_with("whsec_")
        })
        .await?;
    browser.wait_for(&tid("alert-card"), UI_TIMEOUT).await?;
    let title_margin = browser
        .eval("return getComputedStyle(document.querySelector('[data-testid=alert-title]')).marginTop;")
        .await?;
    ensure!(
        title_margin == "0px",
        "alert card title margin {title_margin}"
    );
    let condition = browser
        .find(By::Css(tid("alert-condition")))
        .await?
        .text()
        .await?;
    ensure!(
        condition.starts_with("failure rate ≥ 90% over 1 h"),
        "condition {condition:?}"
    );
    browser
        .click_on(&tid("shown-once-dismiss"), UI_TIMEOUT)
        .await?;
    browser.wait_gone(&tid("shown-once"), UI_TIMEOUT).await?;
    assert_not_in_page(browser, &secret).await?;

    // Send test: the receiver gets it, the page reports it and logs it.
    browser.click_on(&tid("alert-test"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("alert-test-outcome"), WORK_TIMEOUT, |t| {
            t.starts_with("Delivered")
        })
        .await?;
    {
        let got = received.lock().unwrap();
        ensure!(got.len() == 1, "the receiver got {} alerts", got.len());
        let (signature, body) = &got[0];
        ensure!(body["type"] == "alert.test", "alert body {body}");
        ensure!(body["rule_name"] == "Ops pager", "alert body {body}");
        ensure!(signature.starts_with("v1,"), "signature {signature:?}");
    }
    wait_count(browser, "alert-delivery-row", 1).await?;
    let row = browser
        .find(By::Css(tid("alert-delivery-row")))
        .await?
        .text()
        .await?;
    ensure!(
        row.contains("alert.test") && row.contains("delivered") && row.contains("HTTP 200"),
        "delivery row {row:?}"
    );
    shot(browser, "ops-04-alerts-dark").await?;
    narrow(browser).await?;
    shot(browser, "ops-05-alerts-narrow-dark").await?;
    wide(browser).await?;

    // Disable, edit, delete.
    browser.click_on(&tid("alert-toggle"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("alert-state"), UI_TIMEOUT, |t| t == "disabled")
        .await?;
    browser.click_on(&tid("alert-edit"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("alert-name"), "Ops pager (night)", UI_TIMEOUT)
        .await?;
    browser.fill(&tid("alert-rate"), "75", UI_TIMEOUT).await?;
    browser.click_on(&tid("alert-save"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("alert-title"), UI_TIMEOUT, |t| {
            t == "Ops pager (night)"
        })
        .await?;
    browser
        .wait_for_text(&tid("alert-condition"), UI_TIMEOUT, |t| {
            t.starts_with("failure rate ≥ 75%")
        })
        .await?;
    let rules = api.get(&format!("/api/v1/projects/{pid}/alerts")).await?;
    ensure!(
        rules[0]["enabled"] == false && rules[0]["threshold"] == 0.75,
        "rules after the edit: {rules}"
    );
    browser.click_on(&tid("alert-delete"), UI_TIMEOUT).await?;
    browser.wait_for(&tid("confirm-dialog"), UI_TIMEOUT).await?;
    browser.click_on(&tid("confirm-ok"), UI_TIMEOUT).await?;
    browser.wait_for(&tid("alerts-empty"), UI_TIMEOUT).await?;
    Ok(())
}

/// Picks project `id` in the header's switcher, once it is listed there.
async fn choose_project(browser: &Browser, id: &str) -> Result<()> {
    let select = "document.querySelector('[data-testid=project-select]')";
    browser
        .wait_for_eval(
            &format!("return !!{select}?.querySelector('option[value=\"{id}\"]');"),
            &json!(true),
            READY_TIMEOUT,
        )
        .await
        .with_context(|| format!("project {id} in the switcher"))?;
    browser
        .eval(&format!(
            "const s = {select}; s.value = '{id}'; s.dispatchEvent(new Event('change', {{bubbles: true}})); return true;"
        ))
        .await?;
    Ok(())
}

/// Polls `GET path` until `accept` takes the answer.
async fn wait_api(api: &Api, path: &str, accept: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = Instant::now() + WORK_TIMEOUT;
    loop {
        let v = api.get(path).await?;
        if accept(&v) {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{path} after {WORK_TIMEOUT:?}: {v}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until exactly `n` elements `[data-testid=<id>]` are on the page.
async fn wait_count(browser: &Browser, id: &str, n: usize) -> Result<()> {
    browser
        .wait_for_eval(
            &format!("return document.querySelectorAll('[data-testid={id}]').length;"),
            &json!(n),
            UI_TIMEOUT,
        )
        .await
        .with_context(|| format!("{n} × {id}"))
}

async fn assert_not_in_page(browser: &Browser, secret: &str) -> Result<()> {
    let html = browser.eval(PAGE_HTML).await?;
    let html = html.as_str().context("outerHTML is not a string")?;
    ensure!(
        !html.contains(secret),
        "the page's HTML contains the secret"
    );
    Ok(())
}

/// The phone width; nothing may overflow horizontally.
async fn narrow(browser: &Browser) -> Result<()> {
    resize(browser, 375).await?;
    let (width, scroll) = (
        browser.eval("return window.innerWidth;").await?,
        browser
            .eval("return document.documentElement.scrollWidth;")
            .await?,
    );
    ensure!(
        scroll.as_u64() <= width.as_u64(),
        "page is {scroll} px wide at a {width} px viewport"
    );
    Ok(())
}

/// A screenshot of the whole page: the window grows to the page's height
/// for it (at most 3000 px), then shrinks back.
async fn shot(browser: &Browser, name: &str) -> Result<()> {
    let (width, height) = (
        browser.eval("return window.innerWidth;").await?.as_u64().context("width")?,
        browser
            .eval("return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;")
            .await?
            .as_u64()
            .context("height")?,
    );
    let width = u32::try_from(width)?;
    browser
        .set_window_rect(0, 0, width, u32::try_from(height.min(3000))?)
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    browser.screenshot(name).await?;
    resize(browser, width).await
}

async fn wide(browser: &Browser) -> Result<()> {
    resize(browser, meshhook_system_tests::browser::WINDOW.0).await
}

async fn resize(browser: &Browser, width: u32) -> Result<()> {
    browser
        .set_window_rect(0, 0, width, meshhook_system_tests::browser::WINDOW.1)
        .await?;
    browser
        .wait_for_eval("return window.innerWidth;", &json!(width), UI_TIMEOUT)
        .await
        .context("resizing the window")
}
