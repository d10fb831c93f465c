//! Headless Chromium for browser tests.
//!
//! [`Browser::launch`] starts `chromedriver` on a free port and opens a
//! headless Chromium session with a throw-away profile. Dropping the
//! [`Browser`] ends the session, stops chromedriver and deletes the profile;
//! [`Browser::quit`] does the same without blocking the runtime.
//!
//! Binaries: `CHROMIUM` (default `/usr/bin/chromium`) and `CHROMEDRIVER`
//! (default `chromedriver` on `PATH`); `cargo xtask test` installs both
//! (`apt-get install chromium chromium-driver`) and sets these variables.

use std::ffi::OsString;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use thirtyfour::prelude::*;

/// Window size of a new session.
pub const WINDOW: (u32, u32) = (1280, 800);
/// How long chromedriver may take to accept sessions.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause between two polls of the page.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// A headless Chromium session driven through its own chromedriver.
///
/// Derefs to [`WebDriver`] for everything not wrapped here.
pub struct Browser {
    // Field order is drop order: end the session (closing Chromium) first,
    // then stop chromedriver, then delete the profile Chromium wrote to.
    driver: WebDriver,
    chromedriver: ChromeDriver,
    _profile: ProfileDir,
}

impl Browser {
    /// Signs the SPA at `base` in as the user of `auth` (the API's sign-up
    /// or login answer) by storing the session as the SPA does.
    pub async fn sign_in(&self, base: &str, auth: &Value) -> Result<()> {
        self.goto(&format!("{base}/signin")).await?;
        let session = serde_json::json!({
            "access_token": auth["access_token"],
            "refresh_token": auth["refresh_token"],
            "user": auth["user"],
        });
        self.eval(&format!(
            "window.localStorage.setItem('meshhook.session', JSON.stringify({session})); return true;"
        ))
        .await?;
        Ok(())
    }

    /// Launches a browser, runs `journey` in it, saves a screenshot named
    /// `failure_shot` if the journey fails, and quits.
    pub async fn drive(
        failure_shot: &str,
        journey: impl AsyncFnOnce(&Browser) -> Result<()>,
    ) -> Result<()> {
        let browser = Browser::launch().await?;
        let outcome = journey(&browser).await;
        if outcome.is_err() {
            // Best effort: the failure itself is what matters.
            let _ = browser.screenshot(failure_shot).await;
        }
        browser.quit().await?;
        outcome
    }

    /// Starts chromedriver and a headless Chromium session.
    pub async fn launch() -> Result<Self> {
        let chromedriver = ChromeDriver::start().await?;
        let profile = ProfileDir::create()?;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(&chromium_binary())?;
        let profile_arg = format!("--user-data-dir={}", profile.0.display());
        let window_arg = format!("--window-size={},{}", WINDOW.0, WINDOW.1);
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            &profile_arg,
            &window_arg,
        ] {
            caps.add_arg(arg)?;
        }
        let driver = WebDriver::new(chromedriver.url(), caps)
            .await
            .context("opening a Chromium session (is chromium installed?)")?;
        driver.set_window_rect(0, 0, WINDOW.0, WINDOW.1).await?;
        Ok(Self {
            driver,
            chromedriver,
            _profile: profile,
        })
    }

    /// Saves a PNG of the viewport as
    /// `<workspace>/test-artifacts/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let path = dir.join(format!("{file}.png"));
        self.driver
            .screenshot(&path)
            .await
            .with_context(|| format!("saving screenshot {}", path.display()))?;
        Ok(path)
    }

    /// Runs `script` (a function body: use `return`) in the page and returns
    /// its result as JSON.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        let ret = self
            .driver
            .execute(script, Vec::new())
            .await
            .with_context(|| format!("running script `{script}`"))?;
        Ok(ret.json().clone())
    }

    /// Polls the text of the first element matching `css` until `accept`
    /// returns true, for at most `timeout`; returns the accepted text. On
    /// timeout, fails with the last text seen (or why there was none).
    pub async fn wait_for_text(
        &self,
        css: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = match self.driver.find(By::Css(css)).await {
                Ok(element) => element.text().await.map_err(anyhow::Error::from),
                Err(error) => Err(error.into()),
            };
            if let Ok(text) = &seen
                && accept(text)
            {
                return Ok(text.clone());
            }
            if Instant::now() >= deadline {
                let seen = seen.map_or_else(|e| format!("error: {e}"), |t| format!("text {t:?}"));
                bail!("`{css}` not as expected after {timeout:?}; last seen: {seen}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls `script` until it returns `expected`, for at most `timeout`.
    pub async fn wait_for_eval(
        &self,
        script: &str,
        expected: &Value,
        timeout: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.eval(script).await?;
            if &seen == expected {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("`{script}` returned {seen} after {timeout:?}, expected {expected}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls until an element matching `css` is present and displayed, for
    /// at most `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<WebElement> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(element) = self.driver.find(By::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return Ok(element);
            }
            if Instant::now() >= deadline {
                bail!("no visible `{css}` after {timeout:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls until no element matching `css` is displayed, for at most
    /// `timeout`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let shown = match self.driver.find_all(By::Css(css)).await {
                Ok(elements) => {
                    let mut any = false;
                    for element in elements {
                        any |= element.is_displayed().await.unwrap_or(false);
                    }
                    any
                }
                Err(_) => false,
            };
            if !shown {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("`{css}` still shown after {timeout:?}");
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Waits for `css` (see [`Browser::wait_for`]) and clicks it.
    pub async fn click_on(&self, css: &str, timeout: Duration) -> Result<()> {
        self.wait_for(css, timeout)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking `{css}`"))
    }

    /// Waits for the field `css`, empties it and types `text` (so `input`
    /// events fire as for a user; emptying fires one too, which WebDriver's
    /// clear alone does not).
    pub async fn fill(&self, css: &str, text: &str, timeout: Duration) -> Result<()> {
        let field = self.wait_for(css, timeout).await?;
        field.clear().await?;
        self.driver
            .execute(
                "arguments[0].dispatchEvent(new Event('input', { bubbles: true }));",
                vec![field.to_json()?],
            )
            .await
            .with_context(|| format!("emptying `{css}`"))?;
        if text.is_empty() {
            return Ok(());
        }
        field
            .send_keys(text)
            .await
            .with_context(|| format!("typing into `{css}`"))
    }

    /// `location.pathname + location.search` of the page.
    pub async fn location(&self) -> Result<String> {
        let here = self
            .eval("return window.location.pathname + window.location.search;")
            .await?;
        here.as_str()
            .map(str::to_owned)
            .context("location is not a string")
    }

    /// Polls until `location.pathname` is `path`, for at most `timeout`.
    pub async fn wait_for_path(&self, path: &str, timeout: Duration) -> Result<()> {
        self.wait_for_eval(
            "return window.location.pathname;",
            &Value::String(path.to_owned()),
            timeout,
        )
        .await
    }

    /// Ends the session, then stops chromedriver.
    pub async fn quit(self) -> Result<()> {
        let Self {
            driver,
            chromedriver,
            _profile,
        } = self;
        let quit = driver.quit().await;
        drop(chromedriver);
        quit.context("ending the Chromium session")
    }
}

impl Deref for Browser {
    type Target = WebDriver;

    fn deref(&self) -> &WebDriver {
        &self.driver
    }
}

/// `<workspace>/test-artifacts/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .join("test-artifacts")
        .join("screenshots")
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn chromedriver_binary() -> OsString {
    std::env::var_os("CHROMEDRIVER").unwrap_or_else(|| "chromedriver".into())
}

/// A running chromedriver; killed on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    async fn start() -> Result<Self> {
        // A free port can be taken between our probe and chromedriver's bind:
        // try a few.
        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let child = Command::new(chromedriver_binary())
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting chromedriver (is chromium-driver installed?)")?;
            let mut driver = Self { child, port };
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("chromedriver did not start")))
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `GET /status` says chromedriver accepts sessions.
    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let status_url = format!("{}/status", self.url());
        let deadline = Instant::now() + DRIVER_START_TIMEOUT;
        loop {
            if let Some(exit) = self.child.try_wait()? {
                bail!("chromedriver exited at start-up ({exit})");
            }
            if let Ok(response) = client.get(&status_url).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == Value::Bool(true)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "chromedriver not ready on port {} after {DRIVER_START_TIMEOUT:?}",
                    self.port
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A fresh Chromium profile directory, deleted on drop.
struct ProfileDir(PathBuf);

impl ProfileDir {
    fn create() -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshhook-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("clearing stale profile {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for ProfileDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
