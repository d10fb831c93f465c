//! `meshhook bench engine`: the engine end to end, workers in process.
//!
//! 1. Throughput: a 10-node transform chain; `--runs` runs are started (in
//!    batches of 100 per transaction, as grouped webhook deliveries are)
//!    and the clock stops when the last one has succeeded: runs/s and
//!    steps/s.
//! 2. Latency: a 3-node flow (transform -> http_call to a loopback stub ->
//!    terminate) started one at a time at low load: p50/p99 of
//!    trigger-to-completed, from the run's own timestamps (created_at to
//!    finished_at, both written by the engine).
//! 3. The single-row commit ceiling with as many connections as the
//!    orchestrator uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use meshhook_orchestrator::engine::{self, Origin, Version};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Runs of the 10-node chain.
    #[arg(long, default_value_t = 5000)]
    runs: usize,
    /// Sequential runs of the 3-node HTTP flow for the latency figures.
    #[arg(long, default_value_t = 300)]
    latency_runs: usize,
    /// Orchestrator passes in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds for the commit-ceiling measurement.
    #[arg(long, default_value_t = 5)]
    ceiling_seconds: u64,
}

fn chain(n: usize) -> Value {
    let mut nodes =
        vec![json!({"id": "n0", "type": "transform", "config": {"expression": "trigger.body"}})];
    let mut edges = Vec::new();
    for i in 1..n {
        nodes.push(json!({"id": format!("n{i}"), "type": "transform",
            "config": {"expression": format!("{{i: `{i}`, prev: steps.n{}.i}}", i - 1)}}));
        edges.push(json!({"from": format!("n{}", i - 1), "to": format!("n{i}")}));
    }
    json!({"nodes": nodes, "edges": edges})
}

fn http_flow(url: &str) -> Value {
    json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "{id: trigger.body.id}"}},
            {"id": "call", "type": "http_call", "config": {"method": "POST", "url": url, "body": {"id": "{{ steps.pick.id }}"}, "timeout_ms": 5000}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "steps.call.body"}}
        ],
        "edges": [{"from": "pick", "to": "call"}, {"from": "call", "to": "done"}]
    })
}

async fn publish(pool: &sqlx::PgPool, name: &str, definition: &Value) -> anyhow::Result<Version> {
    meshhook_core::validate::validate(definition)
        .map_err(|e| anyhow::anyhow!("benchmark workflow is invalid: {e:?}"))?;
    let mut tx = pool.begin().await?;
    let project = meshhook_db::workflows::create_project(&mut tx, name).await?;
    let wf = meshhook_db::workflows::create(&mut tx, project, name, definition).await?;
    meshhook_db::workflows::publish(&mut tx, wf, None).await?;
    let v = engine::latest_version(&mut tx, wf)
        .await?
        .context("published version")?;
    tx.commit().await?;
    Ok(v)
}

/// A loopback HTTP stub answering `{"ok": true, "echo": <body>}`.
async fn stub() -> anyhow::Result<(String, CancellationToken)> {
    use axum::routing::post;
    let app =
        axum::Router::new().route(
            "/hook",
            post(|body: axum::Json<Value>| async move {
                axum::Json(json!({"ok": true, "echo": body.0}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { t.cancelled().await })
            .await;
    });
    Ok((url, token))
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    let mut cfg = cfg.clone();
    cfg.pool_size = (args.concurrency + 40) as u32;
    if cfg.kek.is_none() {
        cfg.kek = Some(meshhook_db::vault::Keyring::generate_spec().to_string());
    }
    // The stub is on loopback, which the SSRF guard refuses by default.
    cfg.egress_allowlist = "127.0.0.1/32".to_owned();
    let db = cfg.database_or_embedded().await?;
    let pool = db.pool.clone();

    let shutdown = CancellationToken::new();
    let mut orch = meshhook_orchestrator::Context::new(pool.clone());
    orch.options.concurrency = args.concurrency;
    let workers = vec![
        tokio::spawn(meshhook_orchestrator::run(orch, shutdown.clone())),
        tokio::spawn(meshhook_executor::run(
            cfg.executor(pool.clone())?,
            shutdown.clone(),
        )),
    ];
    println!(
        "bench engine: {} chain runs, {} latency runs, orchestrator concurrency {}",
        args.runs, args.latency_runs, args.concurrency
    );

    // 1. Throughput of the 10-node chain.
    let chain_v = Arc::new(publish(&pool, "bench-chain", &chain(10)).await?);
    let t = Instant::now();
    let mut ids = Vec::with_capacity(args.runs);
    for batch in (0..args.runs).collect::<Vec<_>>().chunks(100) {
        let triggers = batch
            .iter()
            .map(|i| {
                let trig = engine::trigger(json!({"i": i}), json!({}), json!({}));
                (trig, Origin::default())
            })
            .collect();
        let mut tx = pool.begin().await?;
        ids.extend(engine::start_runs(&mut tx, &chain_v, triggers, Utc::now()).await?);
        tx.commit().await?;
    }
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM meshhook.runs WHERE workflow_id = $1 AND status IN ('succeeded', 'failed')",
        )
        .bind(chain_v.workflow_id)
        .fetch_one(&pool)
        .await?;
        if done as usize >= args.runs {
            break;
        }
        anyhow::ensure!(
            t.elapsed() < Duration::from_secs(600),
            "chain runs did not finish within 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let failed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.runs WHERE workflow_id = $1 AND status <> 'succeeded'",
    )
    .bind(chain_v.workflow_id)
    .fetch_one(&pool)
    .await?;
    anyhow::ensure!(failed == 0, "{failed} chain runs did not succeed");
    let chain_runs_per_s = args.runs as f64 / elapsed;
    println!(
        "chain:        {chain_runs_per_s:>10.0} runs/s  {:>10.0} steps/s",
        chain_runs_per_s * 10.0
    );

    // 2. Latency of the 3-node HTTP flow at low load.
    let (url, stub_stop) = stub().await?;
    let flow_v = publish(&pool, "bench-http", &http_flow(&url)).await?;
    let mut lat = Vec::with_capacity(args.latency_runs);
    for i in 0..args.latency_runs {
        let mut tx = pool.begin().await?;
        let trig = engine::trigger(json!({"id": i}), json!({}), json!({}));
        let id = engine::start_run(&mut tx, &flow_v, trig, Origin::default(), Utc::now()).await?;
        tx.commit().await?;
        let started = Instant::now();
        loop {
            let row: Option<(String, Option<f64>)> = sqlx::query_as(
                "SELECT status, extract(epoch FROM finished_at - created_at)::float8 * 1000 FROM meshhook.runs WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await?;
            match row {
                Some((s, Some(ms))) if s == "succeeded" => {
                    lat.push(ms);
                    break;
                }
                Some((s, _)) if s == "failed" => anyhow::bail!("http flow run {id} failed"),
                _ => {}
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "http flow run {id} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Low load: let the system idle a moment between runs.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stub_stop.cancel();
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (
        super::ceiling::percentile(&lat, 0.50),
        super::ceiling::percentile(&lat, 0.99),
    );
    println!(
        "http flow:    p50 {p50:.1} ms  p99 {p99:.1} ms  (trigger to completed, {} runs)",
        lat.len()
    );

    shutdown.cancel();
    for w in workers {
        let _ = w.await;
    }

    let ceiling = super::ceiling::report(&pool, args.concurrency, args.ceiling_seconds).await?;
    println!(
        "{}",
        json!({
            "bench": "engine",
            "chain_runs_per_s": chain_runs_per_s.round(),
            "chain_steps_per_s": (chain_runs_per_s * 10.0).round(),
            "http_flow_p50_ms": super::ceiling::round1(p50),
            "http_flow_p99_ms": super::ceiling::round1(p99),
            "ceiling_commits_per_s": ceiling.round(),
        })
    );
    pool.close().await;
    if let Some(mut cluster) = db.cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}
