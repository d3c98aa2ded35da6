//! Databases for tests: a SQLite file in a temp dir, or a fresh PostgreSQL database.
//!
//! PostgreSQL comes from `LRLAB_TEST_POSTGRES_URL` (a server the tests may create
//! databases on, e.g. the cluster `.ci/run` starts), or else from a throwaway cluster
//! this test binary starts once — `initdb` and `pg_ctl` from the PostgreSQL binaries,
//! as user `postgres` when run as root — on a free loopback port in a temp dir (a
//! [`Cluster`]; a test that restarts its server gets a cluster of its own). Every test
//! gets its own database, dropped at its end.
//!
//! Without either, PostgreSQL tests are skipped with a message, except under `CI`,
//! where they fail: CI must never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// Which backend the HTTP tests run on: `LRLAB_TEST_BACKEND=postgres`, else SQLite.
pub fn http_backend_is_postgres() -> bool {
    std::env::var("LRLAB_TEST_BACKEND").is_ok_and(|backend| backend == "postgres")
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    guard: Guard,
}

enum Guard {
    Sqlite(#[expect(dead_code, reason = "held for its Drop, which removes the file")] TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A SQLite file in a fresh temp dir.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            url: format!("sqlite://{}", dir.path().join("lrlab.db").display()),
            guard: Guard::Sqlite(dir),
        }
    }

    /// A fresh PostgreSQL database, or `None` (with a message) where no server can be
    /// had outside CI.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = match server() {
            Ok(url) => url,
            Err(reason) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "PostgreSQL tests cannot run under CI: {reason}"
                );
                eprintln!("skipping a PostgreSQL test: {reason}");
                return None;
            }
        };
        let name = format!("lrlab_test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create a test database");
        admin.close().await.ok();
        Some(TestDb {
            url: with_database(admin_url, &name),
            guard: Guard::Postgres {
                admin_url: admin_url.to_string(),
                name,
            },
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Guard::Postgres { admin_url, name } = &self.guard else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        let shown = name.clone();
        // Drop runs inside the test's runtime, which cannot block on a future: a
        // thread with its own runtime does the dropping.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {shown}: {dropped:?}");
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |at| at + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |at| after_scheme + at);
    format!("{}/{name}{query}", &base[..host_end])
}

/// The admin URL of the PostgreSQL server for this test binary, found or started once.
fn server() -> Result<&'static str, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var("LRLAB_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => Cluster::start().map(|cluster| cluster.url),
        })
        .as_deref()
        .map_err(Clone::clone)
}

/// The directory with `initdb`, `pg_ctl` and `postgres`: `LRLAB_TEST_PG_BIN`, else the
/// newest Debian install under /usr/lib/postgresql, else `pg_config --bindir`.
fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LRLAB_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    dir.join("initdb").exists().then_some(dir)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A command that runs `program` as the cluster's owner: user `postgres` under root
/// (PostgreSQL refuses to run as root), else ourselves.
fn as_owner(as_root: bool, program: &Path) -> Command {
    if as_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// A throwaway PostgreSQL cluster of this test binary's own. A watchdog process stops it
/// and removes its directory once this process has exited, however it exits.
pub struct Cluster {
    /// Its admin URL (database `postgres`).
    pub url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    as_root: bool,
}

impl Cluster {
    /// A cluster for one test alone, for what no test may do to a shared server (restart
    /// it); `None` (with a message) where none can be started outside CI.
    pub fn private() -> Option<Cluster> {
        match Cluster::start() {
            Ok(cluster) => Some(cluster),
            Err(reason) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "PostgreSQL tests cannot run under CI: {reason}"
                );
                eprintln!("skipping a PostgreSQL test: {reason}");
                None
            }
        }
    }

    /// `pg_ctl restart -m fast`: every connection is cut, and the server is back on the
    /// same port once this returns.
    pub fn restart(&self) {
        run(
            as_owner(self.as_root, &self.pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "fast", "-w", "restart"])
                .stdout(Stdio::null()),
            "pg_ctl restart",
        )
        .expect("restart the PostgreSQL cluster");
    }

    /// Starts a cluster on a free loopback port, and its watchdog.
    fn start() -> Result<Cluster, String> {
        let bin = pg_bin_dir().ok_or(
            "no PostgreSQL binaries found (install `postgresql`, or set LRLAB_TEST_POSTGRES_URL)",
        )?;
        let as_root = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("lrlab-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        if as_root {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir),
                "chown the cluster directory",
            )?;
        }
        let data = dir.join("data");
        let socket = dir.join("sock");
        std::fs::create_dir_all(&socket).map_err(|e| format!("socket dir: {e}"))?;
        if as_root {
            run(
                Command::new("chown").arg("postgres:postgres").arg(&socket),
                "chown the socket directory",
            )?;
        }
        run(
            as_owner(as_root, &bin.join("initdb"))
                .current_dir(&dir)
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("free port: {e}"))?
            .port();
        // Durability is not what these tests check; without fsync they run faster.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            socket.display()
        );
        let pg_ctl = bin.join("pg_ctl");
        run(
            as_owner(as_root, &pg_ctl)
                .current_dir(&dir)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-o", &options, "-w", "start"]),
            "pg_ctl start",
        )?;
        // The watchdog outlives this process (it is never waited for) and cleans up after it.
        let watchdog = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; \"{pg_ctl}\" -D \"{data}\" -m immediate stop; rm -rf \"{dir}\"",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            dir = dir.display(),
        );
        as_owner(as_root, Path::new("sh"))
            .current_dir(&dir)
            .args(["-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start the cluster's watchdog: {e}"))?;
        Ok(Cluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            pg_ctl,
            data,
            as_root,
        })
    }
}

#[test]
fn database_names_replace_the_path_of_the_url() {
    assert_eq!(
        with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:5/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
