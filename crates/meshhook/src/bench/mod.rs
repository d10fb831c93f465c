//! `meshhook bench ...`: benchmarks that print their figures and, in the
//! same run and database, the database's own single-row commit ceiling for
//! comparison. The last line of each is one JSON object.

mod ceiling;
mod queue;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub enum Bench {
    /// The durable queue: send, read+delete and end-to-end messages/s.
    Queue(queue::Args),
}

pub async fn run(b: Bench, cfg: &Config) -> anyhow::Result<()> {
    match b {
        Bench::Queue(args) => queue::run(args, cfg).await,
    }
}
