//! Building the SPA (`frontend/`) and installing the tools that needs: the
//! wasm32 target, a `wasm-bindgen` matching `Cargo.lock` exactly, binaryen's
//! `wasm-opt` (from npm: Debian's build emits wasm that Chromium rejects) and,
//! for browser tests, Chromium with chromedriver.
//!
//! Every `ensure_*` function installs only what is missing and says so first,
//! because a cold install takes minutes.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result, bail, ensure};

/// The wasm target the SPA compiles to.
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The frontend's package (and binary) name: cargo writes
/// `<target>/wasm32-unknown-unknown/<profile>/meshhook-frontend.wasm`.
const PACKAGE: &str = "meshhook-frontend";
/// The stem wasm-bindgen gives `dist/<stem>.js` and `dist/<stem>_bg.wasm`;
/// `frontend/index.html` imports `/meshhook_frontend.js`.
const OUT_NAME: &str = "meshhook_frontend";
/// Static files copied verbatim from `frontend/` into `dist/`.
const STATIC_FILES: [&str; 2] = ["index.html", "style.css"];
/// The npm package providing a working `wasm-opt`.
const BINARYEN_NPM: &str = "binaryen@132";

/// Installs the `wasm32-unknown-unknown` target for the active toolchain if it
/// is missing.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("listing installed targets (is rustup on PATH?)")?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    println!("xtask: installing the {WASM_TARGET} target (one-time, ~1 min)");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Returns a `wasm-bindgen` whose version is exactly the `wasm-bindgen` crate
/// version in `Cargo.lock`: one on `PATH`, in `~/.cargo/bin`, or installed
/// under `~/.cache/meshhook/tools/` with `cargo install` when none matches.
pub fn ensure_wasm_bindgen(root: &Path) -> Result<PathBuf> {
    let version = locked_wasm_bindgen_version(root)?;
    let install_root = tools_dir()?.join(format!("wasm-bindgen-{version}"));
    let mut candidates = Vec::new();
    if let Some(path) = find_on_path("wasm-bindgen") {
        candidates.push(path);
    }
    if let Some(cargo_home) = cargo_home() {
        candidates.push(cargo_home.join("bin").join("wasm-bindgen"));
    }
    candidates.push(install_root.join("bin").join("wasm-bindgen"));
    for candidate in &candidates {
        if bindgen_version(candidate).as_deref() == Some(version.as_str()) {
            return Ok(candidate.clone());
        }
    }

    println!("xtask: installing wasm-bindgen-cli {version} (one-time, ~5 min)");
    // Without `--locked`: the CLI's own lockfile fails to resolve here.
    run(Command::new(cargo())
        .args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            &version,
            "--root",
        ])
        .arg(&install_root))?;
    let installed = install_root.join("bin").join("wasm-bindgen");
    ensure!(
        bindgen_version(&installed).as_deref() == Some(version.as_str()),
        "{} does not report version {version} after installing it",
        installed.display()
    );
    Ok(installed)
}

/// Returns binaryen's `wasm-opt` from npm, installing it into
/// `~/.cache/meshhook/tools` when missing. `None` (with a warning) when npm is
/// unavailable or the install fails: the SPA then ships unoptimised.
pub fn ensure_wasm_opt() -> Result<Option<PathBuf>> {
    let prefix = tools_dir()?;
    let wasm_opt = prefix.join("node_modules").join(".bin").join("wasm-opt");
    if wasm_opt.is_file() {
        return Ok(Some(wasm_opt));
    }
    if find_on_path("npm").is_none() {
        println!("xtask: warning: npm not found; skipping wasm-opt (the SPA will be larger)");
        return Ok(None);
    }
    println!(
        "xtask: installing {BINARYEN_NPM} (wasm-opt) into {} (one-time, ~1 min)",
        prefix.display()
    );
    fs::create_dir_all(&prefix).with_context(|| format!("creating {}", prefix.display()))?;
    let installed = run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(BINARYEN_NPM));
    match installed {
        Ok(()) if wasm_opt.is_file() => Ok(Some(wasm_opt)),
        Ok(()) => {
            println!(
                "xtask: warning: npm installed binaryen but {} is missing; skipping wasm-opt",
                wasm_opt.display()
            );
            Ok(None)
        }
        Err(error) => {
            println!("xtask: warning: installing binaryen failed ({error:#}); skipping wasm-opt");
            Ok(None)
        }
    }
}

/// Builds the SPA into `frontend/dist/` and returns that directory: the
/// wasm build (profile `wasm-release` when `release`, else `dev`),
/// `wasm-bindgen --target web`, `wasm-opt -Oz` (release only, when
/// available), then the static files. Prints the `.wasm`'s raw and gzip size.
pub fn build_spa(root: &Path, release: bool) -> Result<PathBuf> {
    let started = SystemTime::now();
    ensure_wasm_target()?;

    let profile = if release { "wasm-release" } else { "dev" };
    println!("xtask: building {PACKAGE} for {WASM_TARGET} (profile {profile})");
    let mut build = Command::new(cargo());
    build.current_dir(root).args([
        "build",
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        profile,
    ]);
    run(&mut build)?;

    // Cargo names the `dev` profile's directory `debug`.
    let profile_dir = if release { "wasm-release" } else { "debug" };
    let wasm = target_dir(root)
        .join(WASM_TARGET)
        .join(profile_dir)
        .join(format!("{PACKAGE}.wasm"));
    ensure!(
        wasm.is_file(),
        "the build did not produce {}",
        wasm.display()
    );

    let wasm_bindgen = ensure_wasm_bindgen(root)?;
    let frontend = root.join("frontend");
    let dist = frontend.join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("clearing {}", dist.display()))?;
    }
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;

    println!("xtask: generating JS bindings into {}", dist.display());
    run(Command::new(&wasm_bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            OUT_NAME,
            "--out-dir",
        ])
        .arg(&dist)
        .arg(&wasm))?;
    let bundle = dist.join(format!("{OUT_NAME}_bg.wasm"));
    ensure!(
        bundle.is_file(),
        "wasm-bindgen did not write {}",
        bundle.display()
    );

    if release && let Some(wasm_opt) = ensure_wasm_opt()? {
        println!("xtask: optimising {} with wasm-opt -Oz", bundle.display());
        let optimised = dist.join(format!("{OUT_NAME}_bg.opt.wasm"));
        run(Command::new(&wasm_opt)
            .arg("-Oz")
            .arg(&bundle)
            .arg("-o")
            .arg(&optimised))?;
        fs::rename(&optimised, &bundle)
            .with_context(|| format!("replacing {}", bundle.display()))?;
    }

    for name in STATIC_FILES {
        let from = frontend.join(name);
        let to = dist.join(name);
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    // Stamp index.html with the build's start time, so a source edited while
    // this build ran still counts as newer (see `spa_sources_changed_since`).
    fs::File::options()
        .write(true)
        .open(dist.join("index.html"))
        .and_then(|file| file.set_modified(started))
        .context("stamping dist/index.html")?;

    let (raw, gzip) = sizes(&bundle)?;
    println!(
        "xtask: SPA ready in {}: {OUT_NAME}_bg.wasm {} raw, {} gzip",
        dist.display(),
        kib(raw),
        kib(gzip)
    );
    Ok(dist)
}

/// Whether any SPA source is newer than the last build in `dist` (or there is
/// no build): files under `frontend/src` and `crates/meshhook-core/src`,
/// `frontend/Cargo.toml`, `frontend/index.html` and `frontend/style.css`.
pub fn spa_sources_changed_since(root: &Path, dist: &Path) -> bool {
    let Some(built) = modified(&dist.join("index.html")) else {
        return true;
    };
    let frontend = root.join("frontend");
    let mut sources = vec![frontend.join("Cargo.toml")];
    sources.extend(STATIC_FILES.iter().map(|name| frontend.join(name)));
    sources.push(frontend.join("src"));
    sources.push(root.join("crates").join("meshhook-core").join("src"));
    sources
        .iter()
        .filter_map(|path| newest_modified(path))
        .any(|time| time > built)
}

/// Returns the paths of Chromium and chromedriver, installing both with apt
/// (`chromium`, `chromium-driver`) when either is missing and we are root.
pub fn ensure_chromium() -> Result<(PathBuf, PathBuf)> {
    if let Some(found) = find_chromium() {
        return Ok(found);
    }
    if !is_root() {
        bail!(
            "Chromium and chromedriver are needed for browser tests; install them with \
             `sudo apt-get install -y chromium chromium-driver` (or put `chromium` and \
             `chromedriver` on PATH)"
        );
    }
    println!("xtask: installing chromium and chromium-driver with apt (one-time, ~1 min)");
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    find_chromium().context("apt installed chromium and chromium-driver, but they are not on PATH")
}

// ---------------------------------------------------------------------------
// helpers

fn find_chromium() -> Option<(PathBuf, PathBuf)> {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(find_on_path)?;
    let driver = find_on_path("chromedriver")?;
    Some((browser, driver))
}

/// `cargo` as invoked by `cargo xtask` (it sets `CARGO`), else from PATH.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|home| home.join(".cargo")))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

/// `$HOME/.cache/meshhook/tools`: where xtask installs tools it owns.
fn tools_dir() -> Result<PathBuf> {
    let home = home().context("HOME is not set")?;
    Ok(home.join(".cache").join("meshhook").join("tools"))
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Cargo's target directory for the workspace at `root`: `CARGO_TARGET_DIR`
/// (relative to `root` when relative), else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The `wasm-bindgen` crate version recorded in `Cargo.lock`, letting cargo
/// write the lockfile first if it has none (or an outdated one).
fn locked_wasm_bindgen_version(root: &Path) -> Result<String> {
    let lockfile = root.join("Cargo.lock");
    let read = || -> Result<Option<String>> {
        if !lockfile.is_file() {
            return Ok(None);
        }
        let text = fs::read_to_string(&lockfile)
            .with_context(|| format!("reading {}", lockfile.display()))?;
        let mut versions = lock_versions(&text, "wasm-bindgen");
        versions.dedup();
        match versions.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => bail!(
                "Cargo.lock has several wasm-bindgen versions ({}); the CLI can only match one",
                many.join(", ")
            ),
        }
    };
    if let Some(version) = read()? {
        return Ok(version);
    }
    // Resolving the workspace writes or updates Cargo.lock.
    let status = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1"])
        .stdout(Stdio::null())
        .status()
        .context("running cargo metadata")?;
    ensure!(status.success(), "cargo metadata failed ({status})");
    read()?.context(
        "Cargo.lock has no wasm-bindgen package (is meshhook-frontend a workspace member?)",
    )
}

/// Versions of package `name` in a `Cargo.lock` (format v3/v4: `name` then
/// `version` lines inside each `[[package]]`).
fn lock_versions(lockfile: &str, name: &str) -> Vec<String> {
    let wanted = format!("name = \"{name}\"");
    let mut versions = Vec::new();
    let mut lines = lockfile.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line != wanted {
            continue;
        }
        if let Some(version) = lines
            .next()
            .and_then(|next| next.strip_prefix("version = \""))
            .and_then(|rest| rest.strip_suffix('"'))
        {
            versions.push(version.to_owned());
        }
    }
    versions.sort();
    versions
}

/// The version a `wasm-bindgen` binary reports (`wasm-bindgen 0.2.100`).
fn bindgen_version(binary: &Path) -> Option<String> {
    if !binary.is_file() {
        return None;
    }
    let out = output(Command::new(binary).arg("--version")).ok()?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

fn find_on_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let name = name.as_ref();
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Raw and gzip (level 9) size of a file, in bytes.
fn sizes(path: &Path) -> Result<(u64, u64)> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes)?;
    let gzip = encoder.finish()?.len();
    Ok((bytes.len() as u64, gzip as u64))
}

fn kib(bytes: u64) -> String {
    // Display only: the precision loss of u64 -> f64 is irrelevant here.
    #[allow(clippy::cast_precision_loss)]
    let kib = bytes as f64 / 1024.0;
    format!("{kib:.1} KiB")
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|meta| meta.modified()).ok()
}

/// The newest modification time of `path` or, for a directory, of anything
/// beneath it.
fn newest_modified(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest_modified(&entry.path()))
        .chain(own)
        .max()
}

/// Runs a command with inherited stdio; fails unless it exits successfully.
fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    ensure!(status.success(), "{shown} failed ({status})");
    Ok(())
}

/// Runs a command and returns its stdout; fails unless it exits successfully.
fn output(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {shown}"))?;
    ensure!(out.status.success(), "{shown} failed ({})", out.status);
    String::from_utf8(out.stdout).with_context(|| format!("{shown} printed non-UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_locked_versions() {
        let lock = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "wasm-bindgen-futures"
version = "0.4.50"
"#;
        assert_eq!(lock_versions(lock, "wasm-bindgen"), ["0.2.130"]);
        assert!(lock_versions(lock, "leptos").is_empty());
    }
}
