//! A PostgreSQL server for tests: `DATABASE_URL` when set, else a throwaway cluster made with
//! `initdb`/`pg_ctl` (Debian's `postgresql` package, binaries under /usr/lib/postgresql/*/bin) in a temp dir,
//! listening on a free 127.0.0.1 port. Each test takes its own database from [`TestDb::fresh_database`].

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ci::missing_prerequisite;

/// How long to wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A PostgreSQL server the tests may use.
pub struct TestDb {
    kind: Kind,
}

enum Kind {
    External(ConnInfo),
    Local(Local),
}

struct Local {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// Set when running as root: PostgreSQL refuses to run as root, so its commands run as this user.
    run_as: Option<String>,
}

impl Local {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
    fn pg_cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.arg("-u").arg(user).arg("--").arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }
}

/// Connection parameters parsed from a `postgres://` URL, passed to `psql` through `PG*` variables
/// so a password never appears on a command line.
#[derive(Clone)]
struct ConnInfo {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: String,
    query: String,
}

impl ConnInfo {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or("DATABASE_URL must start with postgres://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, dbname) = rest.split_once('/').unwrap_or((rest, "postgres"));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (percent_decode(user), Some(percent_decode(pw))),
                None => (percent_decode(u), None),
            },
            None => ("postgres".to_string(), None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.to_string(),
                p.parse().map_err(|_| "DATABASE_URL has an invalid port")?,
            ),
            _ => (hostport.to_string(), 5432),
        };
        Ok(Self {
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host
            },
            port,
            user,
            password,
            dbname: if dbname.is_empty() {
                "postgres".into()
            } else {
                percent_decode(dbname)
            },
            query: query.to_string(),
        })
    }

    fn url_for(&self, dbname: &str) -> String {
        let auth = match &self.password {
            Some(pw) => format!("{}:{}@", percent_encode(&self.user), percent_encode(pw)),
            None => format!("{}@", percent_encode(&self.user)),
        };
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!(
            "postgres://{auth}{}:{}/{dbname}{query}",
            self.host, self.port
        )
    }

    fn apply(&self, cmd: &mut Command) {
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.dbname)
            .env("PGCONNECT_TIMEOUT", "10");
        match &self.password {
            Some(pw) => cmd.env("PGPASSWORD", pw),
            None => cmd.env_remove("PGPASSWORD"),
        };
        if let Some(mode) = self
            .query
            .split('&')
            .find_map(|kv| kv.strip_prefix("sslmode="))
        {
            cmd.env("PGSSLMODE", mode);
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

static SHARED: OnceLock<Result<TestDb, String>> = OnceLock::new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    /// Uses `DATABASE_URL` when set, else starts a throwaway server (stopped on drop).
    pub fn new() -> Result<Self, String> {
        match std::env::var("DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Ok(Self {
                kind: Kind::External(ConnInfo::parse(&url)?),
            }),
            _ => Self::local(),
        }
    }

    /// Always starts a throwaway server of its own, ignoring `DATABASE_URL` (for tests that stop it).
    pub fn local() -> Result<Self, String> {
        let bin = find_bin_dir()?;
        let run_as = if running_as_root() {
            Some("postgres".to_string())
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("testkit-pg-")
            .tempdir()
            .map_err(|e| format!("creating a temp dir: {e}"))?;
        if let Some(user) = &run_as {
            let (uid, gid) = user_ids(user)?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {} to {user}: {e}", dir.path().display()))?;
        }
        let port = free_port()?;
        let local = Local {
            dir,
            bin,
            port,
            run_as,
        };
        std::fs::create_dir(local.socket_dir()).map_err(|e| format!("creating socket dir: {e}"))?;
        if let Some(user) = &local.run_as {
            let (uid, gid) = user_ids(user)?;
            std::os::unix::fs::chown(local.socket_dir(), Some(uid), Some(gid))
                .map_err(|e| format!("chown socket dir: {e}"))?;
        }
        let out = local
            .pg_cmd("initdb")
            .arg("-D")
            .arg(local.data())
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        check(&out, "initdb")?;
        // Durability is irrelevant for throwaway data; speed is not.
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 300\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            local.socket_dir().display()
        );
        append(&local.data().join("postgresql.conf"), &conf)?;
        let db = Self {
            kind: Kind::Local(local),
        };
        db.spawn_orphan_reaper();
        db.start()?;
        Ok(db)
    }

    /// One server shared by all tests of this test binary (each test still takes a fresh database).
    pub fn shared() -> Result<&'static Self, String> {
        SHARED.get_or_init(Self::new).as_ref().map_err(Clone::clone)
    }

    /// [`TestDb::shared`], or `None` after reporting a missing prerequisite (which panics under CI).
    pub fn shared_or_skip() -> Option<&'static Self> {
        match Self::shared() {
            Ok(db) => Some(db),
            Err(e) => {
                missing_prerequisite(&format!("PostgreSQL for tests: {e}"));
                None
            }
        }
    }

    /// [`TestDb::local`], or `None` after reporting a missing prerequisite (which panics under CI).
    pub fn local_or_skip() -> Option<Self> {
        match Self::local() {
            Ok(db) => Some(db),
            Err(e) => {
                missing_prerequisite(&format!("PostgreSQL for tests: {e}"));
                None
            }
        }
    }

    /// True for a throwaway server this value controls (it can be stopped and started).
    pub fn is_local(&self) -> bool {
        matches!(self.kind, Kind::Local(_))
    }

    /// URL of the server's maintenance database (`postgres`, or the one `DATABASE_URL` names).
    pub fn url(&self) -> String {
        self.conn().url_for(&self.conn().dbname)
    }

    fn conn(&self) -> ConnInfo {
        match &self.kind {
            Kind::External(c) => c.clone(),
            Kind::Local(l) => ConnInfo {
                host: "127.0.0.1".into(),
                port: l.port,
                user: "postgres".into(),
                password: None,
                dbname: "postgres".into(),
                query: String::new(),
            },
        }
    }

    /// Creates a new, uniquely named, empty database and returns its URL.
    pub fn fresh_database(&self) -> Result<String, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.psql(&format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.conn().url_for(&name))
    }

    /// Runs one SQL statement on the maintenance database with `psql`.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let psql = match &self.kind {
            Kind::Local(l) => l.bin.join("psql"),
            Kind::External(_) => find_bin_dir()
                .map(|b| b.join("psql"))
                .unwrap_or_else(|_| "psql".into()),
        };
        let mut cmd = Command::new(psql);
        self.conn().apply(&mut cmd);
        let out = cmd
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        check(&out, "psql")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server (fast shutdown), to simulate a database outage.
    pub fn stop(&self) -> Result<(), String> {
        let l = self.local_ref()?;
        let out = l
            .pg_cmd("pg_ctl")
            .arg("-D")
            .arg(l.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .map_err(|e| format!("running pg_ctl stop: {e}"))?;
        check(&out, "pg_ctl stop")
    }

    /// Stops the server the hard way (`pg_ctl -m immediate`: backends are killed, clients see their
    /// sockets reset instead of a termination message), to simulate a crash.
    pub fn stop_immediately(&self) -> Result<(), String> {
        let l = self.local_ref()?;
        let out = l
            .pg_cmd("pg_ctl")
            .arg("-D")
            .arg(l.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .map_err(|e| format!("running pg_ctl stop: {e}"))?;
        check(&out, "pg_ctl stop -m immediate")
    }

    /// Runs one SQL statement with `psql` in database `dbname` of this server.
    pub fn psql_in(&self, dbname: &str, sql: &str) -> Result<String, String> {
        let psql = match &self.kind {
            Kind::Local(l) => l.bin.join("psql"),
            Kind::External(_) => find_bin_dir()
                .map(|b| b.join("psql"))
                .unwrap_or_else(|_| "psql".into()),
        };
        let mut conn = self.conn();
        conn.dbname = dbname.to_string();
        let mut cmd = Command::new(psql);
        conn.apply(&mut cmd);
        let out = cmd
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        check(&out, "psql")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    pub fn start(&self) -> Result<(), String> {
        let l = self.local_ref()?;
        let log = l.dir.path().join("server.log");
        let out = l
            .pg_cmd("pg_ctl")
            .arg("-D")
            .arg(l.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("running pg_ctl start: {e}"))?;
        if let Err(e) = check(&out, "pg_ctl start") {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}\nserver log:\n{server_log}"));
        }
        self.wait_ready(READY_TIMEOUT)
    }

    /// Polls `pg_isready` until the server accepts connections or `timeout` passes.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let l = self.local_ref()?;
        let deadline = Instant::now() + timeout;
        loop {
            let ok = Command::new(l.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &l.port.to_string(), "-t", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "PostgreSQL not ready on port {} after {timeout:?}",
                    l.port
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn local_ref(&self) -> Result<&Local, String> {
        match &self.kind {
            Kind::Local(l) => Ok(l),
            Kind::External(_) => {
                Err("an external DATABASE_URL server cannot be stopped or started".into())
            }
        }
    }

    /// A static `TestDb` is never dropped; this detached watcher stops the server and removes its
    /// directory once the test process has exited, however it exited.
    fn spawn_orphan_reaper(&self) {
        let Ok(l) = self.local_ref() else { return };
        let pg_ctl = l.bin.join("pg_ctl");
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -n "$5" ]; then runuser -u "$5" -- "$4" -D "$2" -m immediate stop; else "$4" -D "$2" -m immediate stop; fi
rm -rf "$3""#;
        let _ = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("testkit-pg-reaper")
            .arg(std::process::id().to_string())
            .arg(l.data())
            .arg(l.dir.path())
            .arg(pg_ctl)
            .arg(l.run_as.clone().unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Kind::Local(l) = &self.kind {
            let _ = l
                .pg_cmd("pg_ctl")
                .arg("-D")
                .arg(l.data())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn find_bin_dir() -> Result<PathBuf, String> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| {
            "PostgreSQL not installed (no /usr/lib/postgresql; apt-get install postgresql)"
                .to_string()
        })?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    // Highest major version first (directory names are the major versions).
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().ok_or_else(|| {
        "no initdb/pg_ctl under /usr/lib/postgresql/*/bin (apt-get install postgresql)".into()
    })
}

fn running_as_root() -> bool {
    // /proc/self is owned by the effective user; avoids a libc dependency.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn user_ids(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .arg(flag)
            .arg(user)
            .output()
            .map_err(|e| format!("running id: {e}"))?;
        check(&out, "id")?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn append(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

fn check(out: &Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_credentials() {
        let c =
            ConnInfo::parse("postgres://app:p%40ss@db.local:6543/todo?sslmode=require").unwrap();
        assert_eq!(c.user, "app");
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.host, "db.local");
        assert_eq!(c.port, 6543);
        assert_eq!(c.dbname, "todo");
        assert_eq!(
            c.url_for("other"),
            "postgres://app:p%40ss@db.local:6543/other?sslmode=require"
        );
        let d = ConnInfo::parse("postgresql://localhost").unwrap();
        assert_eq!(
            (d.port, d.dbname.as_str(), d.user.as_str()),
            (5432, "postgres", "postgres")
        );
    }
}
