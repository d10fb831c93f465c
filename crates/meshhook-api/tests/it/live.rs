//! The live feeds over real websockets: backlog then live events in order,
//! resume with `?after`, first-message auth, tenant rules, project feed.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::helpers::{App, simple_definition};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn ws_url(app: &App, path: &str) -> String {
    app.url(path).replacen("http://", "ws://", 1)
}

async fn connect(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// The next event frame (skipping pings), or `None` when the socket closed.
async fn frame(socket: &mut Socket) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")?;
        match msg.unwrap() {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Frames until `run_succeeded` arrives.
async fn until_done(socket: &mut Socket) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Some(f) = frame(socket).await {
        let done = f["type"] == "run_succeeded";
        frames.push(f);
        if done {
            return frames;
        }
    }
    panic!("socket closed before run_succeeded: {frames:?}");
}

fn seqs(frames: &[Value]) -> Vec<i64> {
    frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_run_feed_sends_the_backlog_then_live_events_and_resumes_after_a_seq() {
    let app = App::spawn().await;
    app.orchestrator();
    let u = app.user("watcher").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    let run = app
        .test_run(&u, wid, json!({"items": [1], "user": {"id": 1}}))
        .await;

    let mut s = connect(&ws_url(
        &app,
        &format!("/api/v1/runs/{run}/live?access_token={}", u.token),
    ))
    .await;
    let frames = until_done(&mut s).await;
    let n = frames.len() as i64;
    assert_eq!(
        seqs(&frames),
        (1..=n).collect::<Vec<_>>(),
        "in order, no gaps"
    );
    assert_eq!(frames[0]["type"], "run_created");
    assert_eq!(frames[0]["run_id"], json!(run));
    for f in &frames {
        assert!(f["data"].is_object() && f["at"].is_string(), "{f}");
    }
    drop(s);

    // Reconnect after seq 2 with the token as the first message: the rest only.
    let mut s = connect(&ws_url(&app, &format!("/api/v1/runs/{run}/live?after=2"))).await;
    s.send(Message::Text(
        json!({"access_token": u.token}).to_string().into(),
    ))
    .await
    .unwrap();
    let rest = until_done(&mut s).await;
    assert_eq!(seqs(&rest), (3..=n).collect::<Vec<_>>());
    drop(s);

    // `from_seq` is inclusive: from 4 on.
    let mut s = connect(&ws_url(
        &app,
        &format!(
            "/api/v1/runs/{run}/live?from_seq=4&access_token={}",
            u.token
        ),
    ))
    .await;
    let rest = until_done(&mut s).await;
    assert_eq!(seqs(&rest), (4..=n).collect::<Vec<_>>());
}

#[tokio::test]
async fn live_events_of_a_new_run_arrive_on_the_project_feed() {
    let app = App::spawn().await;
    let u = app.user("ops").await;
    let pid = app.project(&u, "P").await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    let mut s = connect(&ws_url(
        &app,
        &format!("/api/v1/projects/{pid}/live?access_token={}", u.token),
    ))
    .await;
    // Only after subscribing: start the orchestrator and a run.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.orchestrator();
    let run = app
        .test_run(&u, wid, json!({"items": [], "user": null}))
        .await;
    let frames = until_done(&mut s).await;
    assert!(frames.iter().all(|f| f["run_id"] == json!(run)));
    let n = frames.len() as i64;
    assert_eq!(seqs(&frames), (1..=n).collect::<Vec<_>>());
}

#[tokio::test]
async fn live_feeds_keep_the_tenant_rules() {
    let app = App::spawn().await;
    app.orchestrator();
    let owner = app.user("owner").await;
    let other = app.user("other").await;
    let pid = app.project(&owner, "P").await;
    let wid = app.workflow(&owner, pid, simple_definition()).await;
    let run = app.test_run(&owner, wid, json!({"items": []})).await;

    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    let path = format!("/api/v1/runs/{run}/live");
    assert_eq!(
        status(ws_url(
            &app,
            &format!("{path}?access_token={}", other.token)
        ))
        .await,
        404
    );
    assert_eq!(
        status(ws_url(&app, &format!("{path}?access_token=nonsense"))).await,
        401
    );
    let missing = Uuid::new_v4();
    assert_eq!(
        status(ws_url(
            &app,
            &format!("/api/v1/runs/{missing}/live?access_token={}", owner.token)
        ))
        .await,
        404
    );
    let project_path = format!("/api/v1/projects/{pid}/live?access_token={}", other.token);
    assert_eq!(status(ws_url(&app, &project_path)).await, 404);

    // First-message auth failing closes with 4404 / 4401.
    for (token, code) in [(other.token.as_str(), 4404), ("nonsense", 4401)] {
        let mut s = connect(&ws_url(&app, &path)).await;
        s.send(Message::Text(token.to_owned().into()))
            .await
            .unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match msg {
            Message::Close(Some(f)) => assert_eq!(u16::from(f.code), code),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_closes_open_sockets_with_going_away() {
    let app = App::spawn().await;
    let u = app.user("late").await;
    let pid = app.project(&u, "P").await;
    let mut project = connect(&ws_url(
        &app,
        &format!("/api/v1/projects/{pid}/live?access_token={}", u.token),
    ))
    .await;
    let wid = app.workflow(&u, pid, simple_definition()).await;
    // A run nobody advances: its feed stays open, waiting.
    let run = app
        .test_run(&u, wid, json!({"items": [], "user": null}))
        .await;
    let mut one = connect(&ws_url(
        &app,
        &format!("/api/v1/runs/{run}/live?access_token={}", u.token),
    ))
    .await;
    let first = tokio::time::timeout(Duration::from_secs(5), one.next())
        .await
        .expect("the backlog arrives")
        .unwrap()
        .unwrap();
    assert!(
        first.to_text().unwrap().contains("run_created"),
        "{first:?}"
    );

    app.shut_down();
    for (name, s) in [("run feed", &mut one), ("project feed", &mut project)] {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("{name}: socket ended without a close frame: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{name}: not closed within 5 s of the shutdown"));
        let frame = closed.expect("a close frame with a code");
        assert_eq!(u16::from(frame.code), 1001, "{name}: {frame:?}");
        assert!(frame.reason.contains("shutting down"), "{name}: {frame:?}");
    }
}
