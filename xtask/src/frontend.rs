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
/// The stem wasm-bindgen gives `<stem>.js` and `<stem>_bg.wasm`;
/// `frontend/index.html` refers to `/meshhook_frontend.js`,
/// `/meshhook_frontend_bg.wasm` and `/style.css`, which the build rewrites to
/// content-hashed names.
const OUT_NAME: &str = "meshhook_frontend";
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
/// available), then `index.html` pointing at content-hashed file names
/// (`meshhook_frontend-<hash>.js`, `meshhook_frontend_bg-<hash>.wasm`,
/// `style-<hash>.css`) so they can be cached for long; release builds also
/// write each asset's `<name>.gz` (zopfli) for the server to send. Prints
/// the `.wasm`'s raw, `gzip -9` and precompressed size.
///
/// Everything is assembled in the target directory first, so `dist/` is
/// only briefly incomplete and a failed build leaves the previous one alone.
pub fn build_spa(root: &Path, release: bool) -> Result<PathBuf> {
    // Recorded before compiling: sources saved during the build must still
    // count as changed afterwards, and a failed build must not count as
    // changed again until a source changes (see `spa_sources_changed_since`).
    let target = target_dir(root);
    let attempt = attempt_stamp(root);
    fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
    fs::write(&attempt, b"").with_context(|| format!("writing {}", attempt.display()))?;
    let started = modified(&attempt).unwrap_or_else(SystemTime::now);

    ensure_wasm_target()?;
    let profile = if release { "wasm-release" } else { "dev" };
    println!("xtask: building {PACKAGE} for {WASM_TARGET} (profile {profile})");
    run(Command::new(cargo()).current_dir(root).args([
        "build",
        "-p",
        PACKAGE,
        "--target",
        WASM_TARGET,
        "--profile",
        profile,
    ]))?;
    // Cargo names the `dev` profile's directory `debug`.
    let out_dir = target
        .join(WASM_TARGET)
        .join(if release { "wasm-release" } else { "debug" });
    let wasm = out_dir.join(format!("{PACKAGE}.wasm"));
    ensure!(
        wasm.is_file(),
        "the build did not produce {}",
        wasm.display()
    );

    let staging = out_dir.join("spa-dist");
    if staging.exists() {
        fs::remove_dir_all(&staging).with_context(|| format!("clearing {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let wasm_bindgen = ensure_wasm_bindgen(root)?;
    println!("xtask: generating JS bindings");
    run(Command::new(&wasm_bindgen)
        .args([
            "--target",
            "web",
            "--no-typescript",
            "--out-name",
            OUT_NAME,
            "--out-dir",
        ])
        .arg(&staging)
        .arg(&wasm))?;
    let bundle = staging.join(format!("{OUT_NAME}_bg.wasm"));
    ensure!(
        bundle.is_file(),
        "wasm-bindgen did not write {}",
        bundle.display()
    );

    if release && let Some(wasm_opt) = ensure_wasm_opt()? {
        println!("xtask: optimising the wasm with wasm-opt -Oz");
        let optimised = staging.join(format!("{OUT_NAME}_bg.opt.wasm"));
        run(Command::new(&wasm_opt)
            .arg("-Oz")
            .arg(&bundle)
            .arg("-o")
            .arg(&optimised))?;
        fs::rename(&optimised, &bundle)
            .with_context(|| format!("replacing {}", bundle.display()))?;
    }

    let assets = fingerprint(&staging, &root.join("frontend"))?;
    // index.html (small, never cached) is not precompressed.
    let mut files = Vec::new();
    if release {
        println!("xtask: compressing the assets ahead of time (gzip, zopfli)");
        for name in [&assets.js, &assets.wasm, &assets.css] {
            let packed = format!("{name}.gz");
            precompress(&staging.join(name), &staging.join(&packed))?;
            files.push(packed);
        }
    }
    files.extend([
        assets.js.clone(),
        assets.wasm.clone(),
        assets.css.clone(),
        "index.html".to_owned(),
    ]);

    let dist = root.join("frontend").join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).with_context(|| format!("clearing {}", dist.display()))?;
    }
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    // index.html last, so it never names a file that is not there yet.
    for name in &files {
        let (from, to) = (staging.join(name), dist.join(name));
        fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    fs::File::options()
        .write(true)
        .open(dist.join("index.html"))
        .and_then(|file| file.set_modified(started))
        .context("stamping dist/index.html")?;

    let wasm = dist.join(&assets.wasm);
    let (raw, gzip) = sizes(&wasm)?;
    let served = fs::metadata(dist.join(format!("{}.gz", assets.wasm)))
        .map(|m| {
            format!(
                ", {} served (gzip by zopfli, {} bytes)",
                kib(m.len()),
                m.len()
            )
        })
        .unwrap_or_default();
    println!(
        "xtask: SPA ready in {}: {} {} raw, {} gzip -9{served}",
        dist.display(),
        assets.wasm,
        kib(raw),
        kib(gzip)
    );
    Ok(dist)
}

/// The SPA's files in `dist/` besides `index.html`, by their hashed names.
struct Assets {
    js: String,
    wasm: String,
    css: String,
}

/// Gives the wasm, the JS glue and the stylesheet in `staging` content-hashed
/// names, points the JS at the new wasm name and writes `staging/index.html`
/// from `frontend/index.html` pointing at the new names.
fn fingerprint(staging: &Path, frontend: &Path) -> Result<Assets> {
    let read = |path: &Path| fs::read(path).with_context(|| format!("reading {}", path.display()));
    let write = |path: &Path, bytes: &[u8]| {
        fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    let hashed =
        |stem: &str, ext: &str, bytes: &[u8]| format!("{stem}-{:012x}.{ext}", fnv1a(bytes) >> 16);

    let wasm_old = format!("{OUT_NAME}_bg.wasm");
    let wasm_bytes = read(&staging.join(&wasm_old))?;
    let wasm_new = hashed(&format!("{OUT_NAME}_bg"), "wasm", &wasm_bytes);
    write(&staging.join(&wasm_new), &wasm_bytes)?;

    let js_old = format!("{OUT_NAME}.js");
    let js =
        String::from_utf8(read(&staging.join(&js_old))?).context("the JS glue is not UTF-8")?;
    ensure!(
        js.contains(&wasm_old),
        "the JS glue does not mention {wasm_old}; wasm-bindgen's output changed"
    );
    let js = js.replace(&wasm_old, &wasm_new);
    let js_new = hashed(OUT_NAME, "js", js.as_bytes());
    write(&staging.join(&js_new), js.as_bytes())?;

    let css = read(&frontend.join("style.css"))?;
    let css_new = hashed("style", "css", &css);
    write(&staging.join(&css_new), &css)?;

    let index_path = frontend.join("index.html");
    let mut index = String::from_utf8(read(&index_path)?).context("index.html is not UTF-8")?;
    for (old, new) in [
        (&js_old, &js_new),
        (&wasm_old, &wasm_new),
        (&"style.css".to_owned(), &css_new),
    ] {
        let reference = format!("/{old}");
        ensure!(
            index.contains(&reference),
            "{} does not reference {reference}",
            index_path.display()
        );
        index = index.replace(&reference, &format!("/{new}"));
    }
    write(&staging.join("index.html"), index.as_bytes())?;

    for old in [&wasm_old, &js_old] {
        fs::remove_file(staging.join(old)).with_context(|| format!("removing staged {old}"))?;
    }
    Ok(Assets {
        js: js_new,
        wasm: wasm_new,
        css: css_new,
    })
}

/// 64-bit FNV-1a: a stable content hash for file names (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Touched when a build starts: `<target>/meshhook-frontend.build-started`.
fn attempt_stamp(root: &Path) -> PathBuf {
    target_dir(root).join(format!("{PACKAGE}.build-started"))
}

/// Whether any SPA source changed since the last build into `dist`, or the
/// last attempt if that failed (so a broken build is not retried until a
/// source changes again); true when there was neither. Sources: files under
/// `frontend/src` and `crates/meshhook-core/src`, `frontend/Cargo.toml`,
/// `frontend/index.html` and `frontend/style.css`.
pub fn spa_sources_changed_since(root: &Path, dist: &Path) -> bool {
    let Some(built) = [dist.join("index.html"), attempt_stamp(root)]
        .iter()
        .filter_map(|path| modified(path))
        .max()
    else {
        return true;
    };
    let frontend = root.join("frontend");
    let sources = [
        frontend.join("Cargo.toml"),
        frontend.join("index.html"),
        frontend.join("style.css"),
        frontend.join("src"),
        root.join("crates").join("meshhook-core").join("src"),
    ];
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

/// Writes `to`: `from` in gzip format, compressed by zopfli (a slow
/// DEFLATE encoder whose output any gzip decoder reads; ~5 % smaller than
/// `gzip -9`). The server sends it to clients that accept gzip.
fn precompress(from: &Path, to: &Path) -> Result<()> {
    let bytes = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    let mut packed = Vec::with_capacity(bytes.len() / 2);
    zopfli::compress(
        zopfli::Options::default(),
        zopfli::Format::Gzip,
        bytes.as_slice(),
        &mut packed,
    )
    .with_context(|| format!("compressing {}", from.display()))?;
    fs::write(to, packed).with_context(|| format!("writing {}", to.display()))
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
