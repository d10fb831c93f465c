//! Browser tests of the workflow editor, in real headless Chromium against
//! `meshhook dev` on a fresh database.
//!
//! - Build: sign up, create a project and a workflow, drag transform,
//!   http_call and terminate from the palette, connect them by dragging
//!   between ports (a cycle is refused visibly), fill the forms (an invalid
//!   JMESPath shows its error, then is fixed), save, reload and find it
//!   unchanged, publish, create a webhook, POST to it and see the run
//!   succeed, and test-run from the editor with the statuses on the canvas.
//! - Keyboard and scale: on a 200-node, 250-edge workflow, Delete and
//!   Ctrl+Z / Ctrl+Shift+Z restore the exact definition, and a scripted drag
//!   is timed per frame with `performance.now()` (figure printed and saved
//!   to `test-artifacts/editor-drag.json`).
//!
//! Screenshots land in `test-artifacts/screenshots/editor-*.png`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use meshhook_system_tests::browser::Browser;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const UI_TIMEOUT: Duration = Duration::from_secs(10);
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery";

fn tid(id: &str) -> String {
    format!("[data-testid={id}]")
}

/// A remote API for `http_call` nodes, at the returned base URL:
/// `POST /echo` answers `{received: <body>}`; `POST /flaky` answers 500
/// until `POST /fix` is called, then 200.
async fn stub_remote() -> Result<String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::http::StatusCode;
    use axum::routing::post;
    let fixed = Arc::new(AtomicBool::new(false));
    let (a, b) = (fixed.clone(), fixed);
    let app = axum::Router::new()
        .route(
            "/echo",
            post(|axum::Json(body): axum::Json<Value>| async move {
                axum::Json(json!({ "received": body }))
            }),
        )
        .route(
            "/flaky",
            post(move || {
                let ok = a.load(Ordering::SeqCst);
                async move {
                    if ok {
                        (StatusCode::OK, axum::Json(json!({"ok": true})))
                    } else {
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"error": "not yet"})),
                        )
                    }
                }
            }),
        )
        .route(
            "/fix",
            post(move || {
                b.store(true, Ordering::SeqCst);
                async { "fixed" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// The drag measurement runs alone: the other tests here hold this for
/// reading while they run, the measurement takes it for writing.
static QUIET: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[tokio::test]
async fn build_connect_fill_save_publish_and_run_in_the_editor() -> Result<()> {
    let _shared = QUIET.read().await;
    let remote = stub_remote().await?;
    let server =
        meshhook_system_tests::spawn_dev_with(&[("MESHHOOK_EGRESS_ALLOWLIST", "127.0.0.1/32")])
            .await?;
    Browser::drive("editor-build-failure", async |browser| {
        build(browser, &server.base_url, &format!("{remote}/echo")).await
    })
    .await
}

/// The centre of an element in page coordinates.
async fn centre(browser: &Browser, css: &str) -> Result<(f64, f64)> {
    let v = browser
        .eval(&format!(
            "const r = document.querySelector('{css}').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];"
        ))
        .await?;
    Ok((v[0].as_f64().context("x")?, v[1].as_f64().context("y")?))
}

/// Drags with real pointer input from the centre of `from` to the page
/// point `(x, y)`.
async fn drag_to(browser: &Browser, from: &str, x: f64, y: f64) -> Result<()> {
    let source = browser.wait_for(from, UI_TIMEOUT).await?;
    let (sx, sy) = centre(browser, from).await?;
    #[allow(clippy::cast_possible_truncation)]
    let (dx, dy) = ((x - sx).round() as i64, (y - sy).round() as i64);
    browser
        .action_chain()
        .move_to_element_center(&source)
        .click_and_hold()
        .move_by_offset(dx / 2, dy / 2)
        .move_by_offset(dx - dx / 2, dy - dy / 2)
        .release()
        .perform()
        .await?;
    Ok(())
}

/// Drags from the centre of `from` to the centre of `to`.
async fn drag_onto(browser: &Browser, from: &str, to: &str) -> Result<()> {
    let (x, y) = centre(browser, to).await?;
    drag_to(browser, from, x, y).await
}

/// Presses `key` with Ctrl (and Shift) held.
async fn chord(browser: &Browser, key: char, shift: bool) -> Result<()> {
    let mut chain = browser.action_chain().key_down(Key::Control);
    if shift {
        chain = chain.key_down(Key::Shift);
    }
    chain = chain.send_keys(key.to_string());
    if shift {
        chain = chain.key_up(Key::Shift);
    }
    chain.key_up(Key::Control).perform().await?;
    Ok(())
}

async fn press(browser: &Browser, key: Key) -> Result<()> {
    browser.action_chain().send_keys(key).perform().await?;
    Ok(())
}

/// Selects a node by clicking its box.
async fn click_node(browser: &Browser, id: &str) -> Result<()> {
    browser
        .click_on(
            &format!("{} .node-box", tid(&format!("node-{id}"))),
            UI_TIMEOUT,
        )
        .await
}

/// The session's access token, as the SPA stored it.
async fn token(browser: &Browser) -> Result<String> {
    let v = browser
        .eval("return JSON.parse(window.localStorage.getItem('meshhook.session')).access_token;")
        .await?;
    Ok(v.as_str().context("access token")?.to_owned())
}

async fn api_get(base: &str, token: &str, path: &str) -> Result<Value> {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(res.status().is_success(), "{path}: {}", res.status());
    Ok(res.json().await?)
}

/// Waits until `[data-testid=<id>]` elements number exactly `n`.
async fn wait_count(browser: &Browser, css: &str, n: usize) -> Result<()> {
    browser
        .wait_for_eval(
            &format!("return document.querySelectorAll('{css}').length;"),
            &json!(n),
            UI_TIMEOUT,
        )
        .await
        .with_context(|| format!("waiting for {n} × {css}"))
}

async fn has_class(browser: &Browser, css: &str, class: &str) -> Result<bool> {
    let v = browser
        .eval(&format!(
            "const e = document.querySelector('{css}'); return !!e && e.classList.contains('{class}');"
        ))
        .await?;
    Ok(v == json!(true))
}

async fn build(browser: &Browser, base: &str, remote: &str) -> Result<()> {
    // Sign up, create a project and a workflow: the editor opens empty.
    browser.goto(&format!("{base}/signup")).await?;
    browser
        .fill(&tid("auth-email"), "grace@example.com", READY_TIMEOUT)
        .await?;
    browser
        .fill(&tid("auth-password"), PASSWORD, UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("auth-submit"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("user-email"), UI_TIMEOUT, |t| t == "grace@example.com")
        .await?;
    browser.click_on(&tid("project-new"), UI_TIMEOUT).await?;
    browser
        .fill(&tid("project-name"), "Editor", UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("project-create"), UI_TIMEOUT).await?;
    browser.click_on(&tid("nav-workflows"), UI_TIMEOUT).await?;
    browser
        .wait_for(&tid("workflows-empty"), UI_TIMEOUT)
        .await?;
    browser
        .fill(&tid("workflow-new-name"), "Greeter", UI_TIMEOUT)
        .await?;
    browser
        .click_on(&tid("workflow-create"), UI_TIMEOUT)
        .await?;
    browser.wait_for(&tid("canvas-empty"), UI_TIMEOUT).await?;
    let path = browser.location().await?;
    let wid = path.trim_start_matches("/workflows/").to_owned();
    browser.screenshot("editor-01-empty").await?;

    // Drag three node types from the palette onto the canvas.
    let r = browser
        .eval("const r = document.querySelector('[data-testid=editor-canvas]').getBoundingClientRect(); return [r.left, r.top, r.width, r.height];")
        .await?;
    let at = |i: usize| r[i].as_f64().unwrap_or_default();
    let (left, top, width, height) = (at(0), at(1), at(2), at(3));
    for (kind, at) in [("transform", 0.25), ("http_call", 0.5), ("terminate", 0.75)] {
        drag_to(
            browser,
            &tid(&format!("palette-{kind}")),
            left + width * at,
            top + height * at,
        )
        .await?;
        browser
            .wait_for(&tid(&format!("node-{kind}_1")), UI_TIMEOUT)
            .await?;
    }
    browser.wait_gone(&tid("canvas-empty"), UI_TIMEOUT).await?;
    // Dropped where released: the transform is left of and above the call.
    let (tx, ty) = centre(browser, &tid("node-transform_1")).await?;
    let (hx, hy) = centre(browser, &tid("node-http_call_1")).await?;
    ensure!(
        tx < hx - 50.0 && ty < hy - 50.0,
        "transform at ({tx},{ty}), call at ({hx},{hy})"
    );

    // Connect them by dragging from output ports to input ports.
    drag_onto(
        browser,
        &tid("port-out-transform_1-out"),
        &tid("port-in-http_call_1"),
    )
    .await?;
    browser
        .wait_for(&tid("edge-transform_1-http_call_1"), UI_TIMEOUT)
        .await?;
    drag_onto(
        browser,
        &tid("port-out-http_call_1-out"),
        &tid("port-in-terminate_1"),
    )
    .await?;
    browser
        .wait_for(&tid("edge-http_call_1-terminate_1"), UI_TIMEOUT)
        .await?;
    // Closing a cycle is refused, visibly, and draws nothing.
    drag_onto(
        browser,
        &tid("port-out-http_call_1-out"),
        &format!("{} .node-box", tid("node-transform_1")),
    )
    .await?;
    browser
        .wait_for_text(&tid("editor-toast"), UI_TIMEOUT, |t| t.contains("cycle"))
        .await?;
    wait_count(browser, ".edge", 2).await?;
    browser.screenshot("editor-02-connected").await?;

    // Fill the forms. An invalid expression is flagged as typed, with its
    // position, and the node is outlined once the server agrees.
    click_node(browser, "transform_1").await?;
    browser
        .fill(
            &tid("field-expression"),
            "{user: trigger.body.user, n: length(trigger.body.items)",
            UI_TIMEOUT,
        )
        .await?;
    browser
        .wait_for_text(&tid("field-error-expression"), UI_TIMEOUT, |t| {
            t.contains("position")
        })
        .await?;
    for _ in 0..100 {
        if has_class(browser, &tid("node-transform_1"), "invalid").await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        has_class(browser, &tid("node-transform_1"), "invalid").await?,
        "the invalid node is outlined"
    );
    let publish_disabled = browser
        .find(By::Css(tid("publish")))
        .await?
        .attr("disabled")
        .await?;
    ensure!(
        publish_disabled.is_some(),
        "publish is disabled while invalid"
    );
    browser.screenshot("editor-03-invalid-expression").await?;
    browser
        .fill(
            &tid("field-expression"),
            "{user: trigger.body.user, n: length(trigger.body.items)}",
            UI_TIMEOUT,
        )
        .await?;
    browser
        .wait_gone(&tid("field-error-expression"), UI_TIMEOUT)
        .await?;
    // The mapping preview evaluates it on the sample payload, in the page.
    browser.click_on(&tid("tab-test"), UI_TIMEOUT).await?;
    browser
        .fill(
            &tid("sample-payload"),
            r#"{"user": {"id": 7, "name": "Ada"}, "items": [1, 2, 3]}"#,
            UI_TIMEOUT,
        )
        .await?;
    click_node(browser, "transform_1").await?;
    browser
        .wait_for_text(&tid("preview-result"), UI_TIMEOUT, |t| {
            t.contains("\"n\": 3") && t.contains("Ada")
        })
        .await?;

    click_node(browser, "http_call_1").await?;
    browser.fill(&tid("field-url"), remote, UI_TIMEOUT).await?;
    browser
        .fill(
            &tid("field-body"),
            r#"{"who": "{{ steps.transform_1.user.name }}", "count": "{{ steps.transform_1.n }}"}"#,
            UI_TIMEOUT,
        )
        .await?;
    click_node(browser, "terminate_1").await?;
    browser
        .fill(
            &tid("field-output"),
            "steps.http_call_1.body.received",
            UI_TIMEOUT,
        )
        .await?;
    browser
        .wait_for_text(&tid("check-state"), UI_TIMEOUT, |t| t.contains("Valid"))
        .await?;
    ensure!(
        !has_class(browser, &tid("node-transform_1"), "invalid").await?,
        "fixed node no longer outlined"
    );

    // Save with Ctrl+S; reload; the same definition comes back.
    chord(browser, 's', false).await?;
    browser
        .wait_for_text(&tid("dirty-state"), UI_TIMEOUT, |t| t == "Saved")
        .await?;
    let auth = token(browser).await?;
    let saved = api_get(base, &auth, &format!("/api/v1/workflows/{wid}")).await?;
    let definition = saved["definition"].clone();
    ensure!(
        definition["nodes"].as_array().map(Vec::len) == Some(3),
        "{definition}"
    );
    ensure!(
        definition["edges"].as_array().map(Vec::len) == Some(2),
        "{definition}"
    );
    browser.refresh().await?;
    browser
        .wait_for(&tid("node-terminate_1"), READY_TIMEOUT)
        .await?;
    wait_count(browser, ".node", 3).await?;
    wait_count(browser, ".edge", 2).await?;
    click_node(browser, "http_call_1").await?;
    let url = browser
        .eval(&format!(
            "return document.querySelector('{}').value;",
            tid("field-url")
        ))
        .await?;
    ensure!(url == json!(remote), "URL after reload: {url}");
    browser.click_on(&tid("export"), UI_TIMEOUT).await?;
    let exported = browser
        .eval(&format!(
            "return document.querySelector('{}').value;",
            tid("export-json")
        ))
        .await?;
    let exported: Value = serde_json::from_str(exported.as_str().context("export text")?)?;
    ensure!(
        exported == definition,
        "after reload the editor holds {exported}, saved {definition}"
    );
    press(browser, Key::Escape).await?;
    browser.screenshot("editor-04-reloaded").await?;

    // Test run from the editor: each node shows its status on the canvas.
    browser
        .wait_for_text(&tid("check-state"), UI_TIMEOUT, |t| t.contains("Valid"))
        .await?;
    browser.click_on(&tid("test-run"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("test-run-status"), RUN_TIMEOUT, |t| t == "succeeded")
        .await?;
    let output = browser
        .find(By::Css(tid("test-run-output")))
        .await?
        .text()
        .await?;
    ensure!(
        output.contains("Ada") && output.contains("\"count\": 3"),
        "test-run output {output}"
    );
    for node in ["transform_1", "http_call_1", "terminate_1"] {
        ensure!(
            has_class(browser, &tid(&format!("node-{node}")), "run-succeeded").await?,
            "{node} shows succeeded on the canvas"
        );
    }
    browser.screenshot("editor-05-test-run").await?;

    // Publish v1; create a webhook from the editor; POST to it.
    browser.click_on(&tid("publish"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("workflow-status"), UI_TIMEOUT, |t| t == "published v1")
        .await?;
    browser.click_on(&tid("tab-webhooks"), UI_TIMEOUT).await?;
    browser.click_on(&tid("webhook-new"), UI_TIMEOUT).await?;
    browser
        .find(By::Css(tid("webhook-scheme")))
        .await?
        .find(By::Css("option[value=none]"))
        .await?
        .click()
        .await?;
    browser.click_on(&tid("webhook-create"), UI_TIMEOUT).await?;
    let hook_url = browser
        .wait_for(&tid("webhook-url"), UI_TIMEOUT)
        .await?
        .text()
        .await?;
    ensure!(hook_url.contains("/hooks/wh_"), "webhook URL {hook_url:?}");
    browser.screenshot("editor-06-webhook").await?;
    phone_width(browser).await?;
    let res = reqwest::Client::new()
        .post(&hook_url)
        .json(&json!({"user": {"id": 9, "name": "Grace"}, "items": [1]}))
        .send()
        .await?;
    ensure!(
        res.status() == reqwest::StatusCode::ACCEPTED,
        "webhook answered {}",
        res.status()
    );
    let accepted: Value = res.json().await?;
    let run_id = accepted["run_id"].as_str().context("run id")?.to_owned();
    let deadline = std::time::Instant::now() + RUN_TIMEOUT;
    loop {
        let run = api_get(base, &auth, &format!("/api/v1/runs/{run_id}")).await?;
        match run["status"].as_str() {
            Some("succeeded") => {
                ensure!(
                    run["output"] == json!({"who": "Grace", "count": 1}),
                    "{run}"
                );
                ensure!(run["version"] == json!(1), "{run}");
                break;
            }
            Some("failed" | "cancelled") => bail!("webhook run ended {run}"),
            _ if std::time::Instant::now() > deadline => bail!("webhook run still {run}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Ok(())
}

/// The editor at a 375 px phone width: nothing overflows sideways, the
/// palette, canvas and panel stack and stay usable; then back to desktop.
async fn phone_width(browser: &Browser) -> Result<()> {
    let desktop = meshhook_system_tests::browser::WINDOW;
    browser.set_window_rect(0, 0, 375, desktop.1).await?;
    browser
        .wait_for_eval("return window.innerWidth;", &json!(375), UI_TIMEOUT)
        .await?;
    browser.click_on(&tid("tab-node"), UI_TIMEOUT).await?;
    let layout = browser
        .eval(
            "const r = s => { const e = document.querySelector(s); return e ? e.getBoundingClientRect() : null; };
             const canvas = r('[data-testid=editor-canvas]'), palette = r('[data-testid=palette]');
             return {scroll: document.documentElement.scrollWidth, width: window.innerWidth,
                     canvas: canvas && [canvas.left, canvas.right, canvas.height],
                     palette: palette && [palette.left, palette.right, palette.top, canvas && canvas.top]};",
        )
        .await?;
    ensure!(
        layout["scroll"].as_f64() <= layout["width"].as_f64(),
        "the editor overflows at 375 px: {layout}"
    );
    let canvas = layout["canvas"].as_array().context("canvas shown")?;
    ensure!(
        canvas[0].as_f64() >= Some(0.0)
            && canvas[1].as_f64() <= Some(375.5)
            && canvas[2].as_f64() >= Some(200.0),
        "the canvas fits the phone and is tall enough: {layout}"
    );
    let palette = layout["palette"].as_array().context("palette shown")?;
    ensure!(
        palette[2].as_f64() < palette[3].as_f64(),
        "the palette sits above the canvas: {layout}"
    );
    browser.screenshot("editor-09-phone").await?;
    browser.set_window_rect(0, 0, desktop.0, desktop.1).await?;
    browser
        .wait_for_eval("return window.innerWidth > 375;", &json!(true), UI_TIMEOUT)
        .await?;
    Ok(())
}

#[tokio::test]
async fn keyboard_edits_restore_the_exact_definition_and_a_big_workflow_drags_fast() -> Result<()> {
    let server = meshhook_system_tests::spawn_dev().await?;
    Browser::drive("editor-keyboard-failure", async |browser| {
        keyboard_and_scale(browser, &server.base_url).await
    })
    .await
}

/// 200 nodes in a 20 × 10 grid, 250 edges, every edge pointing right.
fn big_definition() -> Value {
    let id = |col: usize, row: usize| format!("n{col}_{row}");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for col in 0..20 {
        for row in 0..10 {
            nodes.push(json!({
                "id": id(col, row),
                "type": if col == 19 { "terminate" } else { "transform" },
                "config": if col == 19 { json!({"status": "succeeded"}) } else { json!({"expression": format!("steps || `{col}`")}) },
                "position": {"x": col * 260, "y": row * 100},
            }));
        }
    }
    'outer: for col in 0..19 {
        for row in 0..10 {
            edges.push(json!({"from": id(col, row), "to": id(col + 1, row)}));
            if edges.len() == 250 {
                break 'outer;
            }
            if (row % 3 == 0 || row == 8) && row + 1 < 10 {
                edges.push(json!({"from": id(col, row), "to": id(col + 1, row + 1)}));
            }
        }
    }
    edges.truncate(250);
    json!({"nodes": nodes, "edges": edges})
}

async fn exported(browser: &Browser) -> Result<Value> {
    browser.click_on(&tid("export"), UI_TIMEOUT).await?;
    let text = browser
        .eval(&format!(
            "return document.querySelector('{}').value;",
            tid("export-json")
        ))
        .await?;
    press(browser, Key::Escape).await?;
    browser.wait_gone(&tid("export-json"), UI_TIMEOUT).await?;
    Ok(serde_json::from_str(text.as_str().context("export text")?)?)
}

/// Signs up `email` over REST, creates a project with one workflow holding
/// `definition`, and signs the browser in as that user (its stored
/// session). Answers the HTTP client, the access token and the workflow id.
async fn signed_in_with_workflow(
    browser: &Browser,
    base: &str,
    email: &str,
    name: &str,
    definition: &Value,
) -> Result<(reqwest::Client, String, String)> {
    let http = reqwest::Client::new();
    let auth: Value = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = auth["access_token"].as_str().context("token")?.to_owned();
    let project: Value = http
        .post(format!("{base}/api/v1/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": name}))
        .send()
        .await?
        .json()
        .await?;
    let pid = project["id"].as_str().context("project")?;
    let wf: Value = http
        .post(format!("{base}/api/v1/projects/{pid}/workflows"))
        .bearer_auth(&token)
        .json(&json!({"name": name, "definition": definition}))
        .send()
        .await?
        .json()
        .await?;
    let wid = wf["id"].as_str().context("workflow")?.to_owned();
    browser.sign_in(base, &auth).await?;
    Ok((http, token, wid))
}

async fn keyboard_and_scale(browser: &Browser, base: &str) -> Result<()> {
    let definition = big_definition();
    ensure!(definition["edges"].as_array().map(Vec::len) == Some(250));
    let (_, _, wid) = signed_in_with_workflow(
        browser,
        base,
        "keys@example.com",
        "Two hundred",
        &definition,
    )
    .await?;
    browser.goto(&format!("{base}/workflows/{wid}")).await?;
    browser.wait_for(&tid("node-n10_5"), READY_TIMEOUT).await?;
    wait_count(browser, ".node", 200).await?;
    wait_count(browser, ".edge", 250).await?;
    browser.screenshot("editor-07-two-hundred").await?;
    let original = exported(browser).await?;
    ensure!(
        original == definition,
        "the editor holds the definition as stored"
    );

    // Delete a node (its edges go too), undo, redo, undo: exact each time.
    click_node(browser, "n3_3").await?;
    press(browser, Key::Delete).await?;
    wait_count(browser, ".node", 199).await?;
    let deleted = exported(browser).await?;
    ensure!(deleted["nodes"].as_array().map(Vec::len) == Some(199));
    ensure!(
        deleted["edges"]
            .as_array()
            .context("edges")?
            .iter()
            .all(|e| e["from"] != "n3_3" && e["to"] != "n3_3"),
        "edges of the deleted node are gone"
    );
    chord(browser, 'z', false).await?;
    wait_count(browser, ".node", 200).await?;
    ensure!(
        exported(browser).await? == original,
        "undo restores the exact definition"
    );
    chord(browser, 'z', true).await?;
    wait_count(browser, ".node", 199).await?;
    ensure!(exported(browser).await? == deleted, "redo deletes again");
    chord(browser, 'z', false).await?;
    wait_count(browser, ".node", 200).await?;
    // Multi-select with Shift-click, Backspace, undo.
    click_node(browser, "n0_0").await?;
    let second = browser
        .find(By::Css(format!("{} .node-box", tid("node-n0_1"))))
        .await?;
    browser
        .action_chain()
        .key_down(Key::Shift)
        .click_element(&second)
        .key_up(Key::Shift)
        .perform()
        .await?;
    press(browser, Key::Backspace).await?;
    wait_count(browser, ".node", 198).await?;
    chord(browser, 'z', false).await?;
    wait_count(browser, ".node", 200).await?;
    ensure!(
        exported(browser).await? == original,
        "undo after a multi-delete"
    );
    // The help overlay lists the shortcuts.
    browser.action_chain().send_keys("?").perform().await?;
    browser
        .wait_for_text(&tid("help-overlay"), UI_TIMEOUT, |t| {
            t.contains("Undo") && t.contains("Ctrl")
        })
        .await?;
    press(browser, Key::Escape).await?;
    browser.wait_gone(&tid("help-overlay"), UI_TIMEOUT).await?;

    // A scripted drag of one node, each step timed from the mouse event to
    // the DOM being updated and laid out — once the other tests of this
    // file are done, so their browsers and servers do not share the cores
    // with the measurement.
    let alone = QUIET.write().await;
    let figures = browser
        .eval(&format!(
            r#"return (async () => {{
                const node = document.querySelector('{node}');
                const title = node.querySelector('.node-title');
                const r = title.getBoundingClientRect();
                let x = r.left + 5, y = r.top + 5;
                const before = node.getAttribute('transform');
                const tick = () => new Promise(res => {{ const c = new MessageChannel(); c.port1.onmessage = () => res(); c.port2.postMessage(0); }});
                title.dispatchEvent(new MouseEvent('mousedown', {{bubbles: true, cancelable: true, clientX: x, clientY: y, button: 0}}));
                await tick();
                const frames = [];
                for (let i = 0; i < 120; i++) {{
                    x += 2; y += 1;
                    const t0 = performance.now();
                    window.dispatchEvent(new MouseEvent('mousemove', {{bubbles: true, clientX: x, clientY: y}}));
                    await tick();
                    node.getBoundingClientRect();
                    frames.push(performance.now() - t0);
                }}
                window.dispatchEvent(new MouseEvent('mouseup', {{bubbles: true, clientX: x, clientY: y, button: 0}}));
                await tick();
                frames.sort((a, b) => a - b);
                const p = q => frames[Math.min(frames.length - 1, Math.floor(q * frames.length))];
                return {{median: p(0.5), p95: p(0.95), max: frames[frames.length - 1], frames: frames.length,
                        moved: before !== node.getAttribute('transform')}};
            }})();"#,
            node = tid("node-n10_5")
        ))
        .await?;
    drop(alone);
    println!("editor drag, 200 nodes / 250 edges: {figures}");
    let dir = meshhook_system_tests::browser::screenshot_dir();
    let artifacts = dir.parent().unwrap_or(&dir).to_path_buf();
    std::fs::create_dir_all(&artifacts)?;
    std::fs::write(artifacts.join("editor-drag.json"), figures.to_string())?;
    ensure!(
        figures["moved"] == json!(true),
        "the drag moved the node: {figures}"
    );
    let p95 = figures["p95"].as_f64().context("p95")?;
    ensure!(
        p95 < 16.0,
        "dragging takes {p95:.2} ms per frame at p95 (budget 16 ms): {figures}"
    );
    // One drag is one undo step.
    ensure!(
        exported(browser).await? != original,
        "the drag changed the position"
    );
    chord(browser, 'z', false).await?;
    ensure!(
        exported(browser).await? == original,
        "undo puts the dragged node back"
    );
    browser.screenshot("editor-08-after-drag").await?;
    Ok(())
}

#[tokio::test]
async fn run_page_follows_a_live_run_on_its_dag_and_resumes_from_a_picked_step() -> Result<()> {
    let _shared = QUIET.read().await;
    let remote = stub_remote().await?;
    let server =
        meshhook_system_tests::spawn_dev_with(&[("MESHHOOK_EGRESS_ALLOWLIST", "127.0.0.1/32")])
            .await?;
    Browser::drive("run-live-failure", async |browser| {
        live_run(browser, &server.base_url, &remote).await
    })
    .await
}

async fn live_run(browser: &Browser, base: &str, remote: &str) -> Result<()> {
    let definition = json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "trigger.body"}},
            {"id": "wait", "type": "delay", "config": {"duration_ms": 4000}},
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": format!("{remote}/flaky"), "body": {"n": "{{ steps.pick.n }}"}, "retry": {"max_attempts": 1}}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.call.body"}}
        ],
        "edges": [
            {"from": "pick", "to": "wait"}, {"from": "wait", "to": "call"}, {"from": "call", "to": "done"}
        ]
    });
    let (http, token, wid) = signed_in_with_workflow(
        browser,
        base,
        "live@example.com",
        "Slow and flaky",
        &definition,
    )
    .await?;
    browser
        .eval("window.localStorage.setItem('meshhook-theme', 'dark'); return true;")
        .await?;
    // The runs page follows the project's live feed: a run started now
    // appears, and its row moves, without a reload.
    browser.goto(&format!("{base}/runs")).await?;
    browser
        .wait_for_text(&tid("live-state"), READY_TIMEOUT, |t| t == "live")
        .await?;
    let started: Value = http
        .post(format!("{base}/api/v1/workflows/{wid}/test-runs"))
        .bearer_auth(&token)
        .json(&json!({"payload": {"n": 5}}))
        .send()
        .await?
        .json()
        .await?;
    let run_id = started["run_id"].as_str().context("run id")?.to_owned();
    let row = format!("[data-testid=run-row][data-run-id='{run_id}']");
    browser.wait_for(&row, UI_TIMEOUT).await?;
    browser
        .wait_for_eval(
            &format!(
                "const r = document.querySelector(\"{row}\"); return !!r && r.dataset.status === 'waiting';"
            ),
            &json!(true),
            UI_TIMEOUT,
        )
        .await?;

    // Open it while it waits: the DAG shows the delay in progress.
    browser.goto(&format!("{base}/runs/{run_id}")).await?;
    browser.wait_for(&tid("run-dag"), READY_TIMEOUT).await?;
    browser.wait_for(&tid("node-wait"), UI_TIMEOUT).await?;
    let mut waiting = false;
    for _ in 0..60 {
        if has_class(browser, &tid("node-wait"), "run-waiting").await?
            || has_class(browser, &tid("node-wait"), "run-running").await?
        {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(waiting, "the delay step shows as in progress on the DAG");
    browser
        .wait_for_text(&tid("live-state"), UI_TIMEOUT, |t| t == "live")
        .await?;
    ensure!(
        has_class(browser, &tid("node-pick"), "run-succeeded").await?,
        "pick done"
    );
    ensure!(
        has_class(browser, &tid("node-call"), "run-pending").await?,
        "call not reached"
    );
    let events_before = browser
        .eval("return document.querySelectorAll('[data-testid=event]').length;")
        .await?
        .as_u64()
        .context("event count")?;
    browser.screenshot("run-01-live-waiting-dark").await?;

    // Without a reload, the run moves on: the call fails (500, no retries left), the run
    // fails, the DAG and the timeline follow.
    for _ in 0..150 {
        if has_class(browser, &tid("node-call"), "run-failed").await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        has_class(browser, &tid("node-call"), "run-failed").await?,
        "call failed on the DAG"
    );
    browser
        .wait_for_text(&tid("run-status"), UI_TIMEOUT, |t| t == "failed")
        .await?;
    let events_after = browser
        .eval("return document.querySelectorAll('[data-testid=event]').length;")
        .await?
        .as_u64()
        .context("event count")?;
    ensure!(
        events_after > events_before,
        "timeline grew live: {events_before} -> {events_after}"
    );
    ensure!(
        browser
            .find_all(By::Css(tid("event-duration")))
            .await?
            .len()
            >= 2,
        "the timeline shows durations"
    );

    // Pick the failed step on the DAG: its HTTP exchange shows.
    click_node(browser, "call").await?;
    browser
        .wait_for_text(&tid("step-detail-status"), UI_TIMEOUT, |t| t == "failed")
        .await?;
    let exchange = browser
        .wait_for(&tid("http-response"), UI_TIMEOUT)
        .await?
        .text()
        .await?;
    ensure!(
        exchange.contains("500"),
        "the response is shown: {exchange}"
    );
    let request = browser
        .find(By::Css(tid("http-request")))
        .await?
        .text()
        .await?;
    ensure!(
        request.contains("/flaky"),
        "the request is shown: {request}"
    );
    // Its input: the run context it saw, with the output of `pick` before it.
    let input = browser
        .eval("const d = document.querySelector('[data-testid=step-detail-input]'); return d ? d.textContent : '';")
        .await?;
    let input = input.as_str().unwrap_or_default();
    ensure!(
        input.contains("\"pick\"") && input.contains("\"trigger\""),
        "the step's input is shown: {input}"
    );
    browser.screenshot("run-02-failed-step-dark").await?;

    // Replay check: the log replays to the same decisions.
    browser.click_on(&tid("run-replay"), UI_TIMEOUT).await?;
    browser
        .wait_for_text(&tid("replay-result"), UI_TIMEOUT, |t| {
            t.contains("Deterministic")
        })
        .await?;

    // Fix the remote, resume from the step picked on the DAG.
    http.post(format!("{remote}/fix")).send().await?;
    browser
        .wait_for_text(&tid("run-resume"), UI_TIMEOUT, |t| t == "Resume from call")
        .await?;
    browser.click_on(&tid("run-resume"), UI_TIMEOUT).await?;
    browser
        .wait_for_eval(
            &format!("return window.location.pathname !== '/runs/{run_id}';"),
            &json!(true),
            UI_TIMEOUT,
        )
        .await?;
    browser
        .wait_for_text(&tid("run-status"), RUN_TIMEOUT, |t| t == "succeeded")
        .await?;
    for _ in 0..50 {
        if has_class(browser, &tid("node-done"), "run-succeeded").await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        has_class(browser, &tid("node-done"), "run-succeeded").await?,
        "resumed run done on the DAG"
    );
    browser.screenshot("run-03-resumed-dark").await?;

    // Rerun: the same payload again, from the start.
    let resumed = browser.location().await?;
    browser.click_on(&tid("run-rerun"), UI_TIMEOUT).await?;
    browser
        .wait_for_eval(
            &format!("return window.location.pathname !== '{resumed}';"),
            &json!(true),
            UI_TIMEOUT,
        )
        .await?;
    browser
        .wait_for_text(&tid("run-status"), RUN_TIMEOUT, |t| t == "succeeded")
        .await?;
    let rerun = browser.location().await?;
    let rerun_id = rerun.trim_start_matches("/runs/");
    let run: Value = http
        .get(format!("{base}/api/v1/runs/{rerun_id}"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        run["trigger"]["body"] == json!({"n": 5}),
        "rerun has the same payload: {run}"
    );
    Ok(())
}
