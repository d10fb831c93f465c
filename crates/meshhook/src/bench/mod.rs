//! `meshhook bench ...`: benchmarks that print their figures and, in the
//! same run and database, the database's own single-row commit ceiling for
//! comparison. The last line of each is one JSON object.

mod ceiling;
mod engine;
mod ingest;
mod load;
mod queue;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum Bench {
    /// The durable queue: send, read+delete and end-to-end messages/s.
    Queue(queue::Args),
    /// The engine: 10-node chain runs/s and steps/s, 3-node HTTP flow p50/p99.
    Engine(engine::Args),
    /// Webhook ingress: signed deliveries accepted/s over loopback HTTP,
    /// p50/p99, against the single-row commit ceiling.
    Ingest(ingest::Args),
}

pub async fn run(b: Bench, cfg: &Config) -> anyhow::Result<()> {
    match b {
        Bench::Queue(args) => queue::run(args, cfg).await,
        Bench::Engine(args) => engine::run(args, cfg).await,
        Bench::Ingest(args) => ingest::run(args, cfg).await,
    }
}
