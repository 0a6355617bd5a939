//! The Ctrl-C registry: the children to stop and the temp files to remove when the user interrupts.
//!
//! Every child the runner starts is registered here for as long as it runs; every secret temp file for as
//! long as it exists. The handler (SIGINT, and SIGTERM through ctrlc's `termination` feature) stops the
//! children (their whole process group on Unix), removes the files, says that nothing in the cluster was
//! deleted and exits 130.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use crate::exit::EXIT_INTERRUPTED;

/// How long a stopped child gets between the polite signal and the kill.
pub const GRACE: Duration = Duration::from_secs(3);

/// A running child as the registry knows it.
struct Registered {
    pid: u32,
    handle: Weak<duct::Handle>,
    /// How long it may take to end after SIGTERM (helm finishing its own rollback needs more than [`GRACE`]).
    grace: Duration,
    /// The command line (redacted), for the message while a long grace runs.
    what: String,
}

#[derive(Default)]
struct Registry {
    flag: AtomicBool,
    children: Mutex<Vec<Registered>>,
    temp_files: Mutex<Vec<PathBuf>>,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Registry::default)
}

/// True once Ctrl-C was pressed.
pub fn is_set() -> bool {
    registry().flag.load(Ordering::SeqCst)
}

/// Remembers a running child (its pid leads its own process group on Unix), the time it gets to end after
/// SIGTERM, and its command line.
pub fn register_child(pid: u32, handle: &Arc<duct::Handle>, grace: Duration, what: &str) {
    if let Ok(mut c) = registry().children.lock() {
        c.push(Registered {
            pid,
            handle: Arc::downgrade(handle),
            grace,
            what: what.to_string(),
        });
    }
}

/// Forgets a child that has ended.
pub fn unregister_child(pid: u32) {
    if let Ok(mut c) = registry().children.lock() {
        c.retain(|r| r.pid != pid);
    }
}

/// Remembers a temp file to delete on Ctrl-C.
pub fn register_temp(p: &Path) {
    if let Ok(mut t) = registry().temp_files.lock() {
        t.push(p.to_path_buf());
    }
}

/// Forgets a temp file already deleted.
pub fn unregister_temp(p: &Path) {
    if let Ok(mut t) = registry().temp_files.lock() {
        t.retain(|x| x != p);
    }
}

/// Stops every registered child and removes every registered temp file (idempotent).
pub fn cleanup() {
    let kids: Vec<Registered> = registry()
        .children
        .lock()
        .map(|mut c| std::mem::take(&mut *c))
        .unwrap_or_default();
    for k in kids.iter().filter(|k| k.grace > GRACE) {
        eprintln!(
            "\ninterrupted: letting `{}` end by itself (up to {} s: helm rolls back what it was installing)",
            k.what,
            k.grace.as_secs()
        );
    }
    // In parallel: each may take the whole grace period.
    let threads: Vec<_> = kids
        .into_iter()
        .map(|k| std::thread::spawn(move || stop(k.pid, k.handle.upgrade().as_deref(), k.grace)))
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let files: Vec<PathBuf> = registry()
        .temp_files
        .lock()
        .map(|mut t| std::mem::take(&mut *t))
        .unwrap_or_default();
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

static HINT: OnceLock<String> = OnceLock::new();

/// A last line for the Ctrl-C message (what the user may want to do next).
pub fn set_hint(hint: &str) {
    let _ = HINT.set(hint.to_string());
}

/// Installs the Ctrl-C (and SIGTERM) handler: stop children, remove temp files, exit 130.
pub fn install_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        registry().flag.store(true, Ordering::SeqCst);
        cleanup();
        eprintln!(
            "\ninterrupted: child processes stopped, temporary files removed; nothing was deleted from the cluster"
        );
        if let Some(h) = HINT.get() {
            eprintln!("{h}");
        }
        std::process::exit(EXIT_INTERRUPTED);
    })
    .context("installing the Ctrl-C handler")
}

/// Stops a child and everything it started: SIGTERM to its process group, SIGKILL after `grace` if anything in
/// the group still runs. `handle` (when still alive) reaps the leader so it does not linger as a zombie.
#[cfg(unix)]
pub fn stop(pid: u32, handle: Option<&duct::Handle>, grace: Duration) {
    let Ok(pgid) = i32::try_from(pid) else { return };
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(h) = handle {
            let _ = h.try_wait();
        }
        if !group_running(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal_group(pgid, libc::SIGKILL);
    if let Some(h) = handle {
        let _ = h.wait_timeout(Duration::from_secs(1));
    }
}

/// Stops a child: without process groups, the child itself (`TerminateProcess`), then its tree through
/// `taskkill`, which every Windows has.
#[cfg(not(unix))]
pub fn stop(pid: u32, handle: Option<&duct::Handle>, _grace: Duration) {
    let _ = duct::cmd("taskkill", ["/PID", &pid.to_string(), "/T", "/F"])
        .stdout_null()
        .stderr_null()
        .unchecked()
        .run();
    if let Some(h) = handle {
        let _ = h.kill();
        let _ = h.wait_timeout(Duration::from_secs(1));
    }
}

#[cfg(unix)]
fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; it touches no memory.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// True while a process of group `pgid` runs. On Linux, zombies (ended, not yet reaped by whoever waits for
/// them) don't count, which `/proc` tells; elsewhere signal 0 says whether the group exists at all.
#[cfg(unix)]
fn group_running(pgid: i32) -> bool {
    #[cfg(target_os = "linux")]
    if let Ok(dir) = std::fs::read_dir("/proc") {
        return dir
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .any(|stat| {
                // Fields after the parenthesised command: state ppid pgrp ...
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
                let mut f = rest.split_whitespace();
                let state = f.next().unwrap_or("Z");
                let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
                pgrp == Some(pgid) && state != "Z" && state != "X"
            });
    }
    // SAFETY: signal 0 only checks whether the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}
