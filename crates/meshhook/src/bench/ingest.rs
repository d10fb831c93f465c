//! `meshhook bench ingest`: webhook deliveries accepted per second.
//!
//! Starts the API in process on the configured (or embedded) database with
//! one published workflow and a Standard Webhooks webhook, then fires
//! signed deliveries at it over loopback HTTP from `--concurrency` client
//! loops for `--seconds`, each on its own keep-alive connection (a minimal
//! HTTP/1.1 client, [`super::load`], so the generator takes as little as
//! possible of the CPU the server and database share with it). Every 202 means the run, its `run_created` event
//! and its queue message were committed (group commit, see
//! `meshhook_api::hooks::batch`). Prints accepted/s, p50 and p99 of the
//! request latency, then the database's single-row insert commit ceiling
//! at the same concurrency; ratio = accepted/s ÷ ceiling.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use meshhook_api::hooks::verify::{self, Verification};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::load;
use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Client loops sending at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds for the commit-ceiling measurement.
    #[arg(long, default_value_t = 5)]
    ceiling_seconds: u64,
    /// No HTTP: store batches of `--batch` deliveries with the group
    /// committer's statement from as many writers as it has slots, to
    /// show what the database side alone reaches (the upper bound of the
    /// full benchmark).
    #[arg(long)]
    store_only: bool,
    /// Deliveries per batch statement with `--store-only`.
    #[arg(long, default_value_t = 12)]
    batch: usize,
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    let mut cfg = cfg.clone();
    cfg.pool_size = (args.concurrency + 16) as u32;
    if cfg.kek.is_none() {
        cfg.kek = Some(meshhook_db::vault::Keyring::generate_spec().to_string());
    }
    let db = cfg.database_or_embedded().await?;
    let pool = db.pool.clone();
    let keyring = Arc::new(cfg.keyring()?);

    // One published workflow and its Standard Webhooks webhook.
    let definition = json!({
        "nodes": [{"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "trigger.body"}}],
        "edges": []
    });
    let secret = "whsec_".to_owned()
        + &{
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
        };
    let verification = Verification::StandardWebhooks;
    let key = verification
        .mac_key(&secret)
        .context("the generated secret is valid")?;
    let token = format!("wh_bench_{}", Uuid::new_v4().simple());
    let ids = {
        let mut tx = pool.begin().await?;
        let project = meshhook_db::workflows::create_project(&mut tx, "bench-ingest").await?;
        let wf =
            meshhook_db::workflows::create(&mut tx, project, "bench-ingest", &definition).await?;
        meshhook_db::workflows::publish(&mut tx, wf, None).await?;
        let id = Uuid::now_v7();
        let keys = json!([meshhook_api::hooks::keys::seal(
            &keyring,
            project,
            id,
            &secret,
            Utc::now()
        )]);
        let fields = meshhook_db::webhooks::Fields {
            verification: serde_json::to_value(&verification)?,
            signing_keys: keys,
            mode: json!("async"),
            rate_limit: None,
            payload_schema: None,
            max_body_bytes: 1024 * 1024,
            enabled: true,
        };
        meshhook_db::webhooks::insert(&mut tx, id, project, wf, &token, &fields).await?;
        tx.commit().await?;
        Ids {
            project,
            workflow: wf,
            webhook: id,
        }
    };
    if args.store_only {
        let result = store_only(&pool, &args, ids).await;
        pool.close().await;
        if let Some(mut cluster) = db.cluster {
            tokio::task::spawn_blocking(move || cluster.stop()).await??;
        }
        return result;
    }

    let mut settings = cfg.api_settings();
    settings.keyring = Some(keyring.clone());
    let ctx = meshhook_api::Context {
        pool: pool.clone(),
        settings: Arc::new(settings),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let listener_addr = listener.local_addr()?;
    let url = format!("http://{listener_addr}/hooks/{token}");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(meshhook_api::serve(ctx, listener, shutdown.clone()));
    println!(
        "bench ingest: {} client loops for {} s against {url}",
        args.concurrency, args.seconds
    );

    let addr = listener_addr;
    let path = format!("/hooks/{token}");
    let key = Arc::new(key);
    // Warm-up: connections, caches, the first batch.
    {
        let mut conn = load::Conn::connect(addr).await?;
        let mut req = Vec::new();
        for i in 0..20 {
            let body = serde_json::to_vec(&json!({"warmup": i}))?;
            request(
                &mut req,
                &path,
                &verification,
                &key,
                &body,
                &format!("warm_{i}"),
            );
            let status = conn.exchange(&req).await?;
            anyhow::ensure!(status == 202, "warm-up delivery answered {status}");
        }
    }

    let stats = &meshhook_api::hooks::batch::STATS;
    let before = (
        stats.batches.load(Relaxed),
        stats.items.load(Relaxed),
        stats.store_us.load(Relaxed),
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for c in 0..args.concurrency {
        let path = path.clone();
        let key = key.clone();
        let verification = verification.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut refused = 0u64;
            let mut n = 0u64;
            let mut conn = None;
            let mut req = Vec::with_capacity(1024);
            let mut body = Vec::with_capacity(128);
            while Instant::now() < deadline {
                n += 1;
                body.clear();
                let _ = write!(body, r#"{{"client":{c},"n":{n},"items":[1,2,3]}}"#);
                request(
                    &mut req,
                    &path,
                    &verification,
                    &key,
                    &body,
                    &format!("msg_{c}_{n}"),
                );
                let t = Instant::now();
                let c = match &mut conn {
                    Some(c) => c,
                    None => match load::Conn::connect(addr).await {
                        Ok(c) => conn.insert(c),
                        Err(_) => {
                            refused += 1;
                            continue;
                        }
                    },
                };
                match c.exchange(&req).await {
                    Ok(202) => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                    Ok(_) => refused += 1,
                    Err(_) => {
                        refused += 1;
                        conn = None;
                    }
                }
            }
            (lat, refused)
        }));
    }
    let mut lat = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (l, r) = t.await?;
        lat.extend(l);
        refused += r;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let batches = stats.batches.load(Relaxed) - before.0;
    let items = stats.items.load(Relaxed) - before.1;
    let store_ms = (stats.store_us.load(Relaxed) - before.2) as f64 / 1000.0;
    shutdown.cancel();
    let _ = server.await;
    anyhow::ensure!(refused == 0, "{refused} deliveries were not accepted");
    lat.sort_by(f64::total_cmp);
    let accepted_per_s = lat.len() as f64 / elapsed;
    let (p50, p99) = (
        super::ceiling::percentile(&lat, 0.50),
        super::ceiling::percentile(&lat, 0.99),
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM meshhook.runs WHERE webhook_id IS NOT NULL AND trigger->'body' ? 'client'")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        runs as usize >= lat.len(),
        "only {runs} runs for {} accepted deliveries",
        lat.len()
    );
    println!(
        "ingest:       {accepted_per_s:>10.0} accepted/s  p50 {p50:.1} ms  p99 {p99:.1} ms  ({} deliveries)",
        lat.len()
    );
    if batches > 0 {
        println!(
            "group commit: {batches} batches, {:.1} deliveries per batch, {:.2} ms per batch statement",
            items as f64 / batches as f64,
            store_ms / batches as f64
        );
    }

    let ceiling = super::ceiling::report(&pool, args.concurrency, args.ceiling_seconds).await?;
    println!(
        "{}",
        json!({
            "bench": "ingest",
            "accepted_per_s": accepted_per_s.round(),
            "p50_ms": super::ceiling::round1(p50),
            "p99_ms": super::ceiling::round1(p99),
            "ceiling_commits_per_s": ceiling.round(),
            "ratio": (accepted_per_s / ceiling * 100.0).round() / 100.0,
        })
    );
    pool.close().await;
    if let Some(mut cluster) = db.cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}

/// Formats one signed delivery (HTTP/1.1, keep-alive) into `out`.
fn request(
    out: &mut Vec<u8>,
    path: &str,
    verification: &Verification,
    key: &[u8],
    body: &[u8],
    id: &str,
) {
    out.clear();
    let _ = write!(
        out,
        "POST {path} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in verify::sign(verification, key, body, Utc::now().timestamp(), id) {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// The benchmark's project, workflow and webhook.
#[derive(Debug, Clone, Copy)]
struct Ids {
    project: Uuid,
    workflow: Uuid,
    webhook: Uuid,
}

/// `--store-only`: the group committer's statement
/// ([`meshhook_db::ingest::start_webhook_runs`]) with batches of
/// `--batch` deliveries shaped like the HTTP run's (trigger with body,
/// headers and query; a dedupe key; an accepted delivery-log row), from as
/// many writers as the committer has slots, back to back for `--seconds`.
async fn store_only(pool: &meshhook_db::PgPool, args: &Args, ids: Ids) -> anyhow::Result<()> {
    use meshhook_db::ingest::{NewWebhookRun, start_webhook_runs};
    use meshhook_db::webhooks::NewDelivery;

    let writers = meshhook_api::hooks::batch::Options::from_env().in_flight;
    let batch = args.batch.max(1);
    println!(
        "bench ingest --store-only: {writers} writers, {batch} deliveries per statement, {} s",
        args.seconds
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let (mut stored, mut statements, mut n) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let now = Utc::now();
                let mut triggers = Vec::with_capacity(batch);
                let mut keys = Vec::with_capacity(batch);
                let mut logs = Vec::with_capacity(batch);
                for _ in 0..batch {
                    n += 1;
                    let msg = format!("msg_{w}_{n}");
                    let body = json!({"client": w, "n": n, "items": [1, 2, 3]});
                    triggers.push(json!({
                        "body": body,
                        "headers": {
                            "host": "bench",
                            "content-type": "application/json",
                            "content-length": body.to_string().len().to_string(),
                            "webhook-id": msg,
                            "webhook-timestamp": now.timestamp().to_string(),
                        },
                        "query": {},
                    }));
                    keys.push(format!("webhook-id:{msg}"));
                    logs.push(NewDelivery {
                        webhook_id: ids.webhook,
                        project_id: ids.project,
                        received_at: now,
                        verdict: "accepted",
                        status_code: 202,
                        run_id: None,
                        dedupe_key: Some(format!("webhook-id:{msg}")),
                        detail: None,
                        latency_ms: 0.1,
                        remote_addr: Some("127.0.0.1".into()),
                    });
                }
                let runs: Vec<NewWebhookRun<'_>> = triggers
                    .iter()
                    .zip(&keys)
                    .zip(&logs)
                    .map(|((trigger, key), delivery)| NewWebhookRun {
                        id: Uuid::now_v7(),
                        project_id: ids.project,
                        workflow_id: ids.workflow,
                        webhook_id: ids.webhook,
                        trigger,
                        key: Some(key),
                        delivery: Some(delivery),
                    })
                    .collect();
                start_webhook_runs(&pool, &runs, &[], now).await?;
                stored += batch as u64;
                statements += 1;
            }
            Ok::<_, anyhow::Error>((stored, statements))
        }));
    }
    let (mut stored, mut statements) = (0u64, 0u64);
    for t in tasks {
        let (s, n) = t.await??;
        stored += s;
        statements += n;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let per_s = stored as f64 / elapsed;
    let runs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM meshhook.runs WHERE webhook_id = $1 AND trigger->'body' ? 'client'",
    )
    .bind(ids.webhook)
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        runs as u64 == stored,
        "{runs} runs for {stored} stored deliveries"
    );
    println!(
        "store only:   {per_s:>10.0} deliveries/s  ({stored} in {statements} statements, {:.2} ms each)",
        elapsed * 1000.0 * writers as f64 / statements.max(1) as f64
    );
    let ceiling = super::ceiling::report(pool, args.concurrency, args.ceiling_seconds).await?;
    println!(
        "{}",
        json!({
            "bench": "ingest_store_only",
            "batch": batch,
            "writers": writers,
            "deliveries_per_s": per_s.round(),
            "ceiling_commits_per_s": ceiling.round(),
            "ratio": (per_s / ceiling * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
