//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory, `postgres` on a
//! free loopback port, trust authentication, removed when dropped. It uses the server binaries
//! of the machine (Debian's `postgresql` package: `/usr/lib/postgresql/<version>/bin`, or the
//! directory in `IXN_PG_BINDIR`); as root it runs them as the `postgres` user (PostgreSQL refuses
//! to run as root).
//!
//! When no PostgreSQL is installed, [`Cluster::start`] says so ([`Unavailable`]); tests then
//! print that they did not run, unless `IXN_REQUIRE_POSTGRES` is set (`.ci/run` sets it), when
//! that is a failure.
//!
//! A cluster does not outlive its test process, however it ends: beside the server runs a
//! reaper, a shell in a session of its own that waits for the end of a pipe the test process
//! holds. When the test process dies (a panic, a timeout's SIGKILL), the kernel closes the
//! pipe, and the reaper stops the server (immediate shutdown) and removes its directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Why no cluster could be started.
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Stops the server and removes its directory once this process is gone.
    reaper: Option<Child>,
}

/// The server binaries' directory.
fn bindir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("IXN_PG_BINDIR") {
        return Some(PathBuf::from(d));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    // The newest version (directories are named by major version).
    found.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, Unavailable> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Unavailable(format!("no free loopback port: {e}")))
}

impl Cluster {
    /// Initialises and starts a cluster named `tag` (for its directory).
    pub fn start(tag: &str) -> Result<Self, Unavailable> {
        let bin = bindir().ok_or_else(|| {
            Unavailable(
                "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql or IXN_PG_BINDIR; on Debian: apt install postgresql"
                    .to_owned(),
            )
        })?;
        // The tag names a directory that PostgreSQL's options carry: letters, digits and dashes.
        let tag: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = std::env::temp_dir().join(format!("ixn-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        let as_postgres = is_root();
        let mut cluster = Self {
            bin,
            dir,
            port: free_port()?,
            as_postgres,
            reaper: None,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(Unavailable(
                    "running as root, and the postgres user cannot own the cluster's directory"
                        .to_owned(),
                ));
            }
        }
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.reaper = Some(cluster.reaper()?);
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The directory of the cluster (its data directory is `data` in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the reaper: in a session of its own (a signal to the test's process group does
    /// not reach it), it waits until its standard input ends, which happens when every holder
    /// of the pipe is gone, then stops the server and removes the directory.
    fn reaper(&self) -> Result<Child, Unavailable> {
        let quoted = |p: &Path| -> Result<String, Unavailable> {
            let text = p.to_str().filter(|t| !t.contains('\''));
            text.map(|t| format!("'{t}'"))
                .ok_or_else(|| Unavailable(format!("the path {} cannot be quoted", p.display())))
        };
        let as_postgres = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "cat >/dev/null; {as_postgres}{} -D {} -m immediate -w stop >/dev/null 2>&1; rm -rf {}",
            quoted(&self.bin.join("pg_ctl"))?,
            quoted(&self.data())?,
            quoted(&self.dir)?
        );
        Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Unavailable(format!(
                    "cannot start the cluster's reaper (setsid, sh): {e}"
                ))
            })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a server binary (as `postgres` when root); fails with its output.
    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, Unavailable> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| Unavailable(format!("cannot run {}: {e}", exe.display())))?;
        if !out.status.success() {
            return Err(Unavailable(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }

    fn start_server(&self) -> Result<(), Unavailable> {
        let data = self.data();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200",
            self.port,
            data.display()
        );
        let log = data.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-l",
                log.to_str().unwrap_or_default(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        )
        .map(drop)
    }

    /// Stops the server (fast shutdown: connections are cut, as when the database restarts).
    pub fn stop(&self) -> Result<(), Unavailable> {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
        .map(drop)
    }

    /// Starts the server again after [`Cluster::stop`], on the same port.
    pub fn restart(&self) -> Result<(), Unavailable> {
        self.start_server()
    }

    /// Creates a database and returns its connection string.
    pub fn database(&self, name: &str) -> Result<String, Unavailable> {
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .map_err(|e| Unavailable(format!("cannot connect to the test cluster: {e}")))?;
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| Unavailable(format!("cannot create database {name}: {e}")))?;
        Ok(self.url(name))
    }

    /// The connection string for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?connect_timeout=5",
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        // Done by hand: the reaper has nothing left to do.
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
    }
}

/// Starts a cluster, or returns `None` after saying plainly that the caller's PostgreSQL tests do
/// not run (a failure instead when `IXN_REQUIRE_POSTGRES` is set).
pub fn start_or_skip(tag: &str) -> Option<Cluster> {
    match Cluster::start(tag) {
        Ok(c) => Some(c),
        Err(why) => {
            assert!(
                std::env::var_os("IXN_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required (IXN_REQUIRE_POSTGRES) but cannot start: {why}"
            );
            // Straight to the process's stderr: the test harness does not capture it, so the
            // line shows in a plain `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "NOT RUN: the PostgreSQL tests of {tag} ({})",
                why.0.trim()
            );
            None
        }
    }
}
