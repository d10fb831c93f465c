//! Project automation, run as `cargo xtask <command>`:
//!
//! - `dev`: installs what the SPA build needs, builds the SPA, runs
//!   `meshhook dev` serving it, and rebuilds it when its sources change.
//! - `test`: everything CI runs: fmt check, clippy `-D warnings`, the wasm
//!   build (size reported), and every test including the browser tests,
//!   against one private PostgreSQL cluster for the whole run (or
//!   `MESHHOOK_TEST_DATABASE_URL`/`DATABASE_URL` when set).
//! - `dist`: the self-contained release binary with the SPA embedded.
//! - `bench ...`: `meshhook bench ...` built in release mode.

mod frontend;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("dist") => dist(),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  dev     build the SPA and run MeshHook (all roles, private PostgreSQL unless DATABASE_URL is set)\n  test    fmt check, clippy -D warnings, wasm build, all tests incl. browser tests\n  dist    release binary with the SPA embedded\n  bench   meshhook bench ... in release mode (queue, engine, ingest)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn step(what: &str) {
    println!("xtask: {what}");
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    step(what);
    let status = cmd.status().with_context(|| format!("starting: {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn dev(extra: &[String]) -> Result<()> {
    let root = root();
    let dist = match frontend::ensure_wasm_target().and_then(|()| frontend::build_spa(&root, false))
    {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!(
                "xtask: warning: the SPA could not be built ({e:#}); serving the API without it"
            );
            None
        }
    };
    let mut build = cargo();
    build.current_dir(&root).args(["build", "-p", "meshhook"]);
    run(build, "building meshhook")?;
    let bin = target_dir(&root).join("debug").join("meshhook");
    let mut server = Command::new(&bin);
    server.arg("dev").args(extra).current_dir(&root);
    if let Some(d) = &dist {
        server.env("MESHHOOK_SPA_DIR", d);
    }
    step("starting meshhook dev (Ctrl-C to stop)");
    let mut child = server
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            bail!("meshhook dev exited with {status}");
        }
        if let Some(d) = &dist
            && frontend::spa_sources_changed_since(&root, d)
        {
            step("SPA sources changed: rebuilding (reload the page when done)");
            if let Err(e) = frontend::build_spa(&root, false) {
                eprintln!("xtask: SPA rebuild failed: {e:#}");
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn test(extra: &[String]) -> Result<()> {
    let root = root();
    let started = std::time::Instant::now();
    frontend::ensure_wasm_target()?;
    frontend::ensure_wasm_bindgen(&root)?;
    frontend::ensure_wasm_opt()?;
    let (chromium, chromedriver) = frontend::ensure_chromium()?;

    let mut fmt = cargo();
    fmt.current_dir(&root).args(["fmt", "--all", "--check"]);
    run(fmt, "cargo fmt --all --check")?;

    // The SPA first: `--all-features` below includes `embed-spa`, which
    // compiles frontend/dist into the binary.
    let dist = frontend::build_spa(&root, true)?;

    let mut clippy = cargo();
    clippy.current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(
        clippy,
        "cargo clippy --workspace --all-targets --all-features -- -D warnings",
    )?;
    let mut clippy_wasm = cargo();
    clippy_wasm.current_dir(&root).args([
        "clippy",
        "-p",
        "meshhook-frontend",
        "-p",
        "meshhook-core",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]);
    run(
        clippy_wasm,
        "cargo clippy (wasm32: frontend and core) -- -D warnings",
    )?;

    // One PostgreSQL for the whole run, unless the caller brought one.
    let external = std::env::var("MESHHOOK_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .ok();
    let rt = tokio::runtime::Runtime::new()?;
    let mut cluster = None;
    let db_url = match external {
        Some(url) => {
            step("using the PostgreSQL server from MESHHOOK_TEST_DATABASE_URL/DATABASE_URL");
            url
        }
        None => {
            step("starting a private PostgreSQL for the tests");
            let dir = target_dir(&root).join(format!("meshhook-test-pg-{}", std::process::id()));
            let mut opts = meshhook_db::embedded::Options::new(dir);
            opts.fsync = false;
            opts.ephemeral = true;
            let c = rt
                .block_on(meshhook_db::embedded::Cluster::start_async(opts))
                .context("starting the test PostgreSQL")?;
            let url = c.url_for("postgres");
            cluster = Some(c);
            url
        }
    };

    let features = ["--features", "meshhook-system-tests/browser"];
    let mut build = cargo();
    build
        .current_dir(&root)
        .args(["test", "--workspace", "--no-run"])
        .args(features);
    run(build, "building the tests")?;
    // The system tests run the binary itself (MESHHOOK_BIN below); `cargo
    // test` does not build a package's binary unless that package has
    // integration tests of its own, so build it explicitly.
    let mut bin = cargo();
    bin.current_dir(&root).args(["build", "-p", "meshhook"]);
    run(bin, "building the meshhook binary for the system tests")?;

    let mut tests = cargo();
    tests
        .current_dir(&root)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(features)
        .args(extra)
        .env("MESHHOOK_TEST_DATABASE_URL", &db_url)
        .env("MESHHOOK_SPA_DIR", &dist)
        .env(
            "MESHHOOK_BIN",
            target_dir(&root).join("debug").join("meshhook"),
        )
        .env("CHROMIUM", &chromium)
        .env("CHROMEDRIVER", &chromedriver);
    let result = run_tests(tests);
    if let Some(mut c) = cluster
        && let Err(e) = c.stop()
    {
        eprintln!("xtask: warning: stopping the test PostgreSQL: {e}");
    }
    let counts = result?;
    println!(
        "xtask: all checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    // The closing line: the summary over every test binary.
    println!("{counts}");
    Ok(())
}

/// Test counts over every test binary.
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tests: {} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

/// Runs `cargo test`, echoing its output, and counts the results of every
/// test binary.
fn run_tests(mut cmd: Command) -> Result<Counts> {
    use std::io::{BufRead, BufReader};
    step("cargo test --workspace (with the browser tests)");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().context("cargo test stdout")?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |label: &str| {
                rest.split(';')
                    .find_map(|part| {
                        part.trim()
                            .trim_start_matches("ok. ")
                            .trim_start_matches("FAILED. ")
                            .strip_suffix(label)
                    })
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
            ignored += count(" ignored");
        }
    }
    let status = child.wait()?;
    let counts = Counts {
        passed,
        failed,
        ignored,
    };
    if !status.success() {
        println!("{counts}");
        bail!("cargo test failed ({status})");
    }
    if passed == 0 {
        bail!("cargo test ran no test");
    }
    Ok(counts)
}

fn dist() -> Result<()> {
    let root = root();
    frontend::ensure_wasm_target()?;
    frontend::build_spa(&root, true)?;
    let mut build = cargo();
    build.current_dir(&root).args([
        "build",
        "--release",
        "-p",
        "meshhook",
        "--features",
        "embed-spa",
    ]);
    run(build, "building the release binary with the SPA embedded")?;
    let bin = target_dir(&root).join("release").join("meshhook");
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "xtask: {} ({:.1} MB), self-contained",
        bin.display(),
        size as f64 / 1e6
    );
    Ok(())
}

fn bench(extra: &[String]) -> Result<()> {
    let root = root();
    let mut cmd = cargo();
    cmd.current_dir(&root)
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "meshhook",
            "--",
            "bench",
        ])
        .args(extra);
    run(cmd, "meshhook bench (release build)")
}
