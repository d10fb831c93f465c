//! `meshhook dev`: every role in one process on PORT, against DATABASE_URL
//! or a private PostgreSQL under the data dir. Generates and keeps the JWT
//! secret and the key-encryption key under the data dir when they are not
//! given, so tokens and secrets survive restarts.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Reads `<data_dir>/<name>`, or creates it with 32 random bytes (base64).
fn persistent_key(data_dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = data_dir.join(name);
    if let Ok(existing) = fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if !existing.is_empty() {
            return Ok(existing);
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    write_private(&path, &key)?;
    tracing::info!(file = %path.display(), "generated a development key");
    Ok(key)
}

/// Writes `content` to `path`, readable by the owner only.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(content.as_bytes())?;
    Ok(())
}

pub async fn run(mut cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    if cfg.jwt_secret.is_none() {
        cfg.jwt_secret = Some(persistent_key(&cfg.data_dir, "jwt-secret")?);
    }
    if cfg.kek.is_none() {
        cfg.kek = Some(format!("dev:{}", persistent_key(&cfg.data_dir, "kek")?));
    }
    let db = cfg.database_or_embedded().await?;
    let url_file = cfg.data_dir.join(crate::config::DEV_URL_FILE);
    if let Some(cluster) = &db.cluster {
        write_private(&url_file, &cluster.url())?;
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen_addr())
        .await
        .with_context(|| {
            format!(
                "binding {} (set PORT to use another port)",
                cfg.listen_addr()
            )
        })?;

    let api = meshhook_api::Context {
        pool: db.pool.clone(),
        settings: Arc::new(cfg.api_settings()),
    };
    let orchestrator = cfg.orchestrator(db.pool.clone());
    let executor = cfg.executor(db.pool.clone())?;

    println!(
        "MeshHook is running at {}  (Ctrl-C to stop)",
        cfg.public_url()
    );
    let served = tokio::join!(
        meshhook_api::serve(api, listener, shutdown.clone()),
        meshhook_orchestrator::run(orchestrator, shutdown.clone()),
        meshhook_executor::run(executor, shutdown.clone()),
    )
    .0;
    db.pool.close().await;
    let _ = fs::remove_file(&url_file);
    if let Some(mut cluster) = db.cluster {
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .context("stopping PostgreSQL")??;
    }
    served.context("serving")
}
