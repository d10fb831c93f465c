//! The embedded default: a private PostgreSQL cluster started from the
//! machine's server binaries.
//!
//! When `DATABASE_URL` is unset, `meshhook dev` (and the test harness)
//! calls [`Cluster::start`]: it finds `initdb`/`pg_ctl`/`postgres` on `PATH`
//! or under `/usr/lib/postgresql/*/bin`, initialises a cluster under
//! `<data dir>/pg` the first time (scram password auth, loopback only),
//! starts it on a free port, creates the `meshhook` database, and stops the
//! server again when the [`Cluster`] is dropped. A watchdog process stops it
//! too if this process dies without dropping it (`kill -9`).
//!
//! PostgreSQL refuses to run as root; as root, every server command runs as
//! the `postgres` system user through `runuser`, and the cluster directory is
//! owned by that user.
//!
//! An exclusive lock on `<data dir>/meshhook.lock` keeps two MeshHook
//! processes from sharing one data dir; the second gets [`Error::Locked`].

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What went wrong starting the cluster, phrased for the person at the terminal.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or in /usr/lib/postgresql/*/bin; \
         install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to an existing database"
    )]
    BinariesNotFound,
    #[error(
        "the data dir {dir} is in use by another MeshHook process{pid}; stop it or set MESHHOOK_DATA_DIR to another folder"
    )]
    Locked { dir: PathBuf, pid: String },
    #[error(
        "running as root requires the `postgres` system user to own the cluster (PostgreSQL refuses to run as root); create it (useradd --system postgres) or run as a normal user"
    )]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, Error>;

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// How to start the cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// MeshHook's data dir; the cluster lives in `<data_dir>/pg`.
    pub data_dir: PathBuf,
    /// Durable writes. Only tests turn this off.
    pub fsync: bool,
    /// Delete the whole data dir when the cluster stops (throwaway test clusters).
    pub ephemeral: bool,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

impl Options {
    /// Durable defaults for `meshhook dev`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            fsync: true,
            ephemeral: false,
            settings: Vec::new(),
        }
    }
}

/// A running private cluster. Dropping it stops the server.
#[derive(Debug)]
pub struct Cluster {
    bin_dir: PathBuf,
    pgdata: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<String>,
    ephemeral: bool,
    stopped: bool,
    _lock: File,
}

/// Finds the directory holding `initdb`, `pg_ctl` and `postgres`:
/// `MESHHOOK_PG_BIN`, then `PATH`, then `/usr/lib/postgresql/*/bin`.
pub fn find_binaries() -> Result<PathBuf> {
    find_binaries_in(
        std::env::var_os("MESHHOOK_PG_BIN").map(PathBuf::from),
        std::env::var_os("PATH"),
        Path::new("/usr/lib/postgresql"),
    )
}

/// [`find_binaries`] with its inputs spelled out.
pub fn find_binaries_in(
    explicit: Option<PathBuf>,
    path: Option<std::ffi::OsString>,
    debian_root: &Path,
) -> Result<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(dir) = explicit.filter(|d| complete(d)) {
        return Ok(dir);
    }
    // PATH first: a `pg_ctl` there may be a symlink; resolve it to the real
    // bin dir, where `postgres` sits next to it.
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            let pg_ctl = dir.join("pg_ctl");
            let real = fs::canonicalize(&pg_ctl).ok();
            if let Some(parent) = real
                .as_deref()
                .and_then(Path::parent)
                .filter(|p| complete(p))
            {
                return Ok(parent.to_path_buf());
            }
        }
    }
    // Debian/Ubuntu layout: the newest major version wins.
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(debian_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            complete(&bin).then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).ok_or(Error::BinariesNotFound)
}

fn is_root() -> bool {
    // geteuid would need `unsafe` (denied workspace-wide); /proc tells too.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn user_ids(name: &str) -> Option<(u32, u32)> {
    let out = Command::new("id").arg("-u").arg(name).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").arg("-g").arg(name).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            let i = rng.random_range(0..62u8);
            char::from(match i {
                0..=9 => b'0' + i,
                10..=35 => b'a' + i - 10,
                _ => b'A' + i - 36,
            })
        })
        .collect()
}

impl Cluster {
    /// Starts (initialising on first use) the cluster under `opts.data_dir`.
    /// Blocking; see [`Cluster::start_async`], which also creates the
    /// `meshhook` database.
    pub fn start(opts: &Options) -> Result<Self> {
        let bin_dir = find_binaries()?;
        fs::create_dir_all(&opts.data_dir)
            .map_err(io(format!("creating {}", opts.data_dir.display())))?;
        let data_dir = fs::canonicalize(&opts.data_dir).map_err(io("resolving the data dir"))?;
        let lock = lock_data_dir(&data_dir)?;

        let run_as = if is_root() {
            if user_ids("postgres").is_none() {
                return Err(Error::NoPostgresUser);
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let pgdata = data_dir.join("pg");
        let password_file = data_dir.join("pg-password");

        let mut cluster = Self {
            bin_dir,
            pgdata,
            data_dir,
            port: 0,
            password: String::new(),
            run_as,
            ephemeral: opts.ephemeral,
            stopped: true,
            _lock: lock,
        };
        if let Some(user) = cluster.run_as.clone() {
            cluster.grant_access(&user)?;
        }
        if !cluster.pgdata.join("PG_VERSION").is_file() {
            cluster.initdb(&password_file, opts.fsync)?;
        }
        cluster.password = fs::read_to_string(&password_file)
            .map_err(io(format!("reading {}", password_file.display())))?
            .trim()
            .to_owned();

        // A server left running by a process that died holding no lock any
        // more (we hold it now) is ours: stop it and start afresh.
        if cluster.pg_ctl(&["status"]).is_ok() {
            tracing::warn!(pgdata = %cluster.pgdata.display(), "stopping a PostgreSQL left running by an earlier MeshHook process");
            cluster.pg_ctl(&["stop", "-m", "fast", "-w"])?;
        }
        cluster.port = free_port()?;
        let mut server_opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200",
            cluster.port
        );
        if !opts.fsync {
            server_opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        for (k, v) in &opts.settings {
            server_opts.push_str(&format!(" -c {k}={v}"));
        }
        let log_path = cluster.data_dir.join("postgres.log");
        if let Some(user) = &cluster.run_as {
            // The server (not root) appends to it.
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(io(format!("creating {}", log_path.display())))?;
            chown_path(&log_path, user, false)?;
        }
        let log = log_path.to_string_lossy().into_owned();
        cluster.pg_ctl(&["start", "-w", "-t", "60", "-l", &log, "-o", &server_opts])?;
        cluster.stopped = false;
        cluster.spawn_watchdog();
        Ok(cluster)
    }

    /// [`Cluster::start`] off the async runtime's threads, then creates the
    /// `meshhook` database if it is missing.
    pub async fn start_async(opts: Options) -> Result<Self> {
        let cluster = tokio::task::spawn_blocking(move || Self::start(&opts))
            .await
            .map_err(|e| Error::Command {
                what: "starting PostgreSQL".to_owned(),
                detail: e.to_string(),
            })??;
        crate::testing::create_database_if_missing(&cluster.url_for("postgres"), "meshhook")
            .await
            .map_err(|e| Error::Command {
                what: "creating the meshhook database".to_owned(),
                detail: e.to_string(),
            })?;
        Ok(cluster)
    }

    /// The `postgres://` URL of the `meshhook` database.
    pub fn url(&self) -> String {
        self.url_for("meshhook")
    }

    /// The URL of another database on this cluster.
    pub fn url_for(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The TCP port the server listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (idempotent).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let r = self
            .pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
            .map(drop);
        if self.ephemeral {
            let _ = fs::remove_dir_all(&self.data_dir);
        }
        r
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<String> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(io(format!("running {what}")))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(Error::Command {
                what: what.to_owned(),
                detail: text.trim().to_owned(),
            })
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.pgdata).args(args);
        // pg_ctl start leaves the server attached to our stdout otherwise;
        // -l sends its output to the log file instead.
        self.run(
            cmd,
            &format!("pg_ctl {}", args.first().copied().unwrap_or("")),
        )
    }

    fn initdb(&self, password_file: &Path, fsync: bool) -> Result<()> {
        tracing::info!(pgdata = %self.pgdata.display(), "initialising a private PostgreSQL cluster");
        let password = random_password();
        // The password file is read by initdb (as the server user) and kept
        // for us; 0600 either way.
        write_private(password_file, &password)?;
        if let Some(user) = &self.run_as {
            chown_path(password_file, user, false)?;
        }
        if self.pgdata.exists() {
            // A half-initialised directory from an interrupted initdb.
            fs::remove_dir_all(&self.pgdata).map_err(io("removing a half-initialised cluster"))?;
        }
        fs::create_dir_all(&self.pgdata).map_err(io("creating the cluster dir"))?;
        fs::set_permissions(&self.pgdata, fs::Permissions::from_mode(0o700))
            .map_err(io("chmod pgdata"))?;
        if let Some(user) = &self.run_as {
            chown_path(&self.pgdata, user, false)?;
        }
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-A",
                "scram-sha-256",
            ])
            .arg(format!("--pwfile={}", password_file.display()));
        if !fsync {
            cmd.arg("--no-sync");
        }
        self.run(cmd, "initdb")?;
        if self.run_as.is_some() {
            // Back to root-only now that initdb has read it.
            chown_path(password_file, "root", false)?;
        }
        Ok(())
    }

    /// As root: the server user must reach the data dir. Owns the data dir
    /// and lets it traverse the ancestors (search permission only).
    fn grant_access(&self, user: &str) -> Result<()> {
        let (uid, _) = user_ids(user).ok_or(Error::NoPostgresUser)?;
        let mut dir = self.data_dir.parent();
        while let Some(d) = dir {
            let meta = fs::metadata(d).map_err(io(format!("reading {}", d.display())))?;
            let mode = meta.permissions().mode();
            if meta.uid() != uid && mode & 0o001 == 0 {
                tracing::warn!(dir = %d.display(), "granting others search (x) permission so the postgres user can reach the data dir");
                fs::set_permissions(d, fs::Permissions::from_mode(mode | 0o001))
                    .map_err(io(format!("chmod o+x {}", d.display())))?;
            }
            dir = d.parent();
        }
        // The data dir itself: traversable, and the lock file stays root's.
        let meta = fs::metadata(&self.data_dir).map_err(io("reading the data dir"))?;
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(mode | 0o001))
                .map_err(io("chmod o+x data dir"))?;
        }
        if self.pgdata.exists() {
            chown_path(&self.pgdata, user, true)?;
        }
        Ok(())
    }

    /// Stops the server if this process dies without dropping the cluster.
    ///
    /// It stops exactly the postmaster this process started (its pid, read
    /// from `postmaster.pid` now and checked again before the signal), never
    /// a later server on the same data directory: a quick restart must not
    /// lose its fresh server to the previous process's watchdog.
    fn spawn_watchdog(&self) {
        let pid = std::process::id();
        let pid_file = self.pgdata.join("postmaster.pid");
        let postmaster = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(|l| l.trim().to_owned()))
            .filter(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()));
        let Some(postmaster) = postmaster else {
            tracing::warn!(file = %pid_file.display(), "no postmaster pid; the cluster watchdog is not started");
            return;
        };
        // SIGINT is PostgreSQL's fast shutdown.
        let mut stop = format!(
            "if [ \"$(head -n 1 '{file}' 2>/dev/null)\" = '{postmaster}' ]; then kill -INT {postmaster}; \
             while kill -0 {postmaster} 2>/dev/null; do sleep 0.2; done; fi",
            file = pid_file.display(),
        );
        if self.ephemeral {
            stop.push_str(&format!("; rm -rf '{}'", self.data_dir.display()));
        }
        let script = format!("while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}");
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for us must not kill it.
            .process_group(0)
            .spawn();
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the cluster watchdog");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "stopping the private PostgreSQL cluster failed");
        }
    }
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode_private()
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    f.write_all(content.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

trait ModePrivate {
    fn mode_private(&mut self) -> &mut Self;
}

impl ModePrivate for OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

fn chown_path(path: &Path, user: &str, recursive: bool) -> Result<()> {
    let mut cmd = Command::new("chown");
    if recursive {
        cmd.arg("-R");
    }
    let out = cmd
        .arg(format!("{user}:"))
        .arg(path)
        .output()
        .map_err(io("running chown"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            what: format!("chown {}", path.display()),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Takes the data dir's exclusive lock, writing our pid into the lock file.
fn lock_data_dir(dir: &Path) -> Result<File> {
    let path = dir.join("meshhook.lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(Error::Locked {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                },
            });
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(io(format!("locking {}", path.display()))(e));
        }
    }
    f.set_len(0).map_err(io("writing the lock file"))?;
    f.rewind().map_err(io("writing the lock file"))?;
    write!(f, "{}", std::process::id()).map_err(io("writing the lock file"))?;
    Ok(f)
}
