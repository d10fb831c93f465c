//! Harness for MeshHook's system tests: fresh databases, the real
//! `meshhook` binary started as separate OS processes, and HTTP clients.
//!
//! The binary is `MESHHOOK_BIN` when set (`cargo xtask test` sets it), else
//! the `meshhook` next to the test executable's `deps/` folder, which
//! `cargo test --workspace` builds.

#[cfg(feature = "browser")]
pub mod browser;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
pub use meshhook_db::testing::TestDb;

/// Path of the `meshhook` binary under test.
pub fn meshhook_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESHHOOK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps layout");
    let bin = dir.join("meshhook");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p meshhook` (cargo xtask test does) or set MESHHOOK_BIN",
        bin.display()
    );
    bin
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("meshhook-{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `meshhook` process. Dropping it kills the process (SIGKILL); call
/// [`Process::terminate`] for a graceful stop.
pub struct Process {
    pub child: Child,
    pub port: u16,
    pub base_url: String,
    log: PathBuf,
    _logdir: TempDir,
}

impl Process {
    /// Starts `meshhook <args>` with `env` on a free PORT (stdout and
    /// stderr to a log file the test can read).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let port = free_port();
        let logdir = TempDir::new("log");
        let log = logdir.0.join("meshhook.log");
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(meshhook_bin());
        cmd.args(args)
            .env_remove("DATABASE_URL")
            .env("PORT", port.to_string())
            .env("MESHHOOK_BIND", "127.0.0.1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("starting meshhook")?;
        Ok(Self {
            child,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            _logdir: logdir,
        })
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `path` answers 200, or fails with the process output.
    pub async fn wait_ready(&mut self, path: &str, timeout: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "meshhook exited with {status} before {path} was ready:\n{}",
                    self.output()
                );
            }
            let answer = client.get(format!("{}{path}", self.base_url)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("{path} not ready after {timeout:?}:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits for the exit (up to `timeout`).
    pub async fn terminate(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.wait_exit(timeout).await
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(
        &mut self,
        timeout: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                bail!(
                    "meshhook still running after {timeout:?}:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `meshhook dev` against a fresh database, serving the SPA from
/// `MESHHOOK_SPA_DIR` when set.
pub struct TestServer {
    pub base_url: String,
    pub process: Process,
    pub db: TestDb,
    _data: TempDir,
}

/// Starts `meshhook dev` on a fresh database and waits for `/readyz`.
pub async fn spawn_dev() -> anyhow::Result<TestServer> {
    spawn_dev_with(&[]).await
}

/// [`spawn_dev`] with extra environment variables (e.g. an egress
/// allowlist so `http_call` nodes may reach a stub on loopback).
pub async fn spawn_dev_with(extra: &[(&str, &str)]) -> anyhow::Result<TestServer> {
    let db = TestDb::new().await;
    let data = TempDir::new("data");
    let data_dir = data.0.to_string_lossy().into_owned();
    let mut env = vec![
        ("DATABASE_URL", db.url.as_str()),
        ("MESHHOOK_DATA_DIR", data_dir.as_str()),
    ];
    let spa = std::env::var("MESHHOOK_SPA_DIR").ok();
    if let Some(spa) = &spa {
        env.push(("MESHHOOK_SPA_DIR", spa.as_str()));
    }
    env.extend_from_slice(extra);
    let mut process = Process::start(&["dev"], &env)?;
    process
        .wait_ready("/readyz", Duration::from_secs(30))
        .await?;
    Ok(TestServer {
        base_url: process.base_url.clone(),
        process,
        db,
        _data: data,
    })
}

/// A workflow that succeeds or fails as its trigger body's `ok` says:
/// `pick` reads it, `check` branches to the `done` or the `fail` terminate.
pub fn ok_or_fail_definition() -> serde_json::Value {
    serde_json::json!({
        "nodes": [
            {"id": "pick", "type": "transform", "config": {"expression": "{ok: trigger.body.ok}"}},
            {"id": "check", "type": "branch", "config": {"condition": "steps.pick.ok"}},
            {"id": "done", "type": "terminate", "config": {"status": "succeeded", "output": "{greeting: 'hello'}"}},
            {"id": "fail", "type": "terminate", "config": {"status": "failed", "output": "{why: 'not ok'}"}}
        ],
        "edges": [
            {"from": "pick", "to": "check"},
            {"from": "check", "to": "done", "label": "true"},
            {"from": "check", "to": "fail", "label": "false"}
        ]
    })
}
