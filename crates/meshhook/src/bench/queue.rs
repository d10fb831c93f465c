//! `meshhook bench queue`: the durable queue's throughput.
//!
//! Three phases on a fresh queue: send only (producers insert batches),
//! read+delete only (consumers drain the backlog), and end to end
//! (producers and consumers together, a message counted when it is sent,
//! read and deleted). Then the single-row commit ceiling with the same
//! number of connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meshhook_db::{PgPool, queue};
use serde_json::json;

use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Concurrent producers (each its own connection).
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Concurrent consumers (each its own connection).
    #[arg(long, default_value_t = 4)]
    consumers: usize,
    /// Messages per phase.
    #[arg(long, default_value_t = 100_000)]
    messages: usize,
    /// Messages per send batch and per read.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds for the commit-ceiling measurement.
    #[arg(long, default_value_t = 5)]
    ceiling_seconds: u64,
}

fn payload(i: usize) -> serde_json::Value {
    json!({"run_id": format!("{i:032x}"), "kind": "wake", "n": i})
}

async fn produce(
    pool: &PgPool,
    q: &str,
    producers: usize,
    messages: usize,
    batch: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..producers {
        let (pool, q, next) = (pool.clone(), q.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(batch as u64, Ordering::Relaxed) as usize;
                if start >= messages {
                    return Ok::<_, anyhow::Error>(());
                }
                let end = (start + batch).min(messages);
                let msgs: Vec<_> = (start..end).map(payload).collect();
                queue::send_batch(&pool, &q, &msgs, Duration::ZERO).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Reads and deletes until `target` messages were consumed in total.
async fn consume(
    pool: &PgPool,
    waker: &queue::Waker,
    q: &str,
    consumers: usize,
    target: u64,
    batch: usize,
) -> anyhow::Result<()> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..consumers {
        let (pool, q, done, waker) = (pool.clone(), q.to_owned(), done.clone(), waker.clone());
        tasks.push(tokio::spawn(async move {
            while done.load(Ordering::Relaxed) < target {
                let msgs = queue::read(&pool, &q, Duration::from_secs(30), batch as i32).await?;
                if msgs.is_empty() {
                    waker.wait(&q, Duration::from_millis(20)).await;
                    continue;
                }
                let ids: Vec<i64> = msgs.iter().map(|m| m.msg_id).collect();
                let n = queue::delete_batch(&pool, &q, &ids).await?;
                done.fetch_add(n, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

pub async fn run(args: Args, cfg: &Config) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.producers > 0 && args.consumers > 0,
        "--producers and --consumers must be at least 1"
    );
    anyhow::ensure!(
        args.batch > 0 && args.batch <= 10_000,
        "--batch must be between 1 and 10000"
    );
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    let mut cfg = cfg.clone();
    cfg.pool_size = (args.producers + args.consumers + 4) as u32;
    let db = cfg.database_or_embedded().await?;
    let pool = db.pool.clone();
    let q = format!("bench_{}", std::process::id());
    queue::create(&pool, &q, 5).await?;
    let waker = queue::Waker::start(&pool).await?;
    let n = args.messages;
    println!(
        "bench queue: {} producers, {} consumers, {} messages, batch {}",
        args.producers, args.consumers, n, args.batch
    );

    let t = Instant::now();
    produce(&pool, &q, args.producers, n, args.batch).await?;
    let send_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!("send:         {send_per_s:>10.0} msgs/s");

    let t = Instant::now();
    consume(&pool, &waker, &q, args.consumers, n as u64, args.batch).await?;
    let read_delete_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!("read+delete:  {read_delete_per_s:>10.0} msgs/s");

    let t = Instant::now();
    let (p, c) = tokio::join!(
        produce(&pool, &q, args.producers, n, args.batch),
        consume(&pool, &waker, &q, args.consumers, n as u64, args.batch)
    );
    p?;
    c?;
    let msgs_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!("end to end:   {msgs_per_s:>10.0} msgs/s (sent, read and deleted)");
    let left = queue::depth(&pool, &q).await?;
    anyhow::ensure!(
        left == 0,
        "{left} messages left in the queue after the benchmark"
    );
    sqlx::query("DELETE FROM meshhook.queues WHERE name = $1")
        .bind(&q)
        .execute(&pool)
        .await?;

    let conns = args.producers + args.consumers;
    let ceiling =
        super::ceiling::single_row_commits(&pool, conns, Duration::from_secs(args.ceiling_seconds))
            .await?;
    println!("ceiling:      {ceiling:>10.0} single-row commits/s with {conns} connections");
    let ratio = msgs_per_s / ceiling;
    println!(
        "{}",
        json!({
            "bench": "queue",
            "msgs_per_s": msgs_per_s.round(),
            "send_per_s": send_per_s.round(),
            "read_delete_per_s": read_delete_per_s.round(),
            "ceiling_commits_per_s": ceiling.round(),
            "ratio": (ratio * 100.0).round() / 100.0,
            "producers": args.producers,
            "consumers": args.consumers,
            "messages": n,
            "batch": args.batch,
        })
    );
    pool.close().await;
    if let Some(mut cluster) = db.cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}
