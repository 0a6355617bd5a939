//! Test harness: a cluster double in a temp dir with its binaries first on PATH, torn down on drop
//! (supervisor stopped, every Docker container/network it made removed, state deleted), pass or fail.

use crate::{engine, state, supervisor};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Paths of the double's three binaries (pass `env!("CARGO_BIN_EXE_minikube")` etc. from a test).
#[derive(Debug, Clone)]
pub struct DoubleBins {
    /// minikube.
    pub minikube: PathBuf,
    /// helm.
    pub helm: PathBuf,
    /// kubectl.
    pub kubectl: PathBuf,
}

/// The double's binaries of the calling test crate (`env!("CARGO_BIN_EXE_...")` only exists there).
#[macro_export]
macro_rules! double_bins {
    () => {
        $crate::harness::DoubleBins {
            minikube: env!("CARGO_BIN_EXE_minikube").into(),
            helm: env!("CARGO_BIN_EXE_helm").into(),
            kubectl: env!("CARGO_BIN_EXE_kubectl").into(),
        }
    };
}

/// A live cluster double.
pub struct Cluster {
    /// Holds state, bin dir and scratch files.
    pub root: tempfile::TempDir,
    /// `TODO_CLUSTER_DOUBLE_STATE`.
    pub state: PathBuf,
    /// Dir with `minikube`, `helm`, `kubectl` links.
    pub bin: PathBuf,
    /// PATH with `bin` first.
    pub path: String,
}

impl Cluster {
    /// Makes a fresh, empty double (no profile yet).
    pub fn new(bins: &DoubleBins) -> Result<Cluster> {
        let root = tempfile::Builder::new().prefix("todo-double-").tempdir()?;
        let state = root.path().join("state");
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&state)?;
        std::fs::create_dir_all(&bin)?;
        for (name, p) in [
            ("minikube", &bins.minikube),
            ("helm", &bins.helm),
            ("kubectl", &bins.kubectl),
        ] {
            std::os::unix::fs::symlink(p, bin.join(name))
                .with_context(|| format!("linking {name}"))?;
        }
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Ok(Cluster {
            root,
            state,
            bin,
            path,
        })
    }

    /// A command with the double's env and PATH.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", &self.path).env(state::STATE_ENV, &self.state);
        c
    }

    /// Runs one of the double's tools, returning its output.
    pub fn tool(&self, tool: &str, args: &[&str]) -> Output {
        let mut c = self.cmd(&self.bin.join(tool).display().to_string());
        c.args(args);
        c.output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }

    /// Runs a tool and returns stdout, failing with stderr when it exits non-zero.
    pub fn ok(&self, tool: &str, args: &[&str]) -> Result<String> {
        let out = self.tool(tool, args);
        if !out.status.success() {
            bail!(
                "{tool} {} exited {:?}\nstdout: {}\nstderr: {}",
                args.join(" "),
                out.status.code(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl get ... -o json` parsed.
    pub fn get_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend(["-o", "json"]);
        Ok(serde_json::from_str(&self.ok("kubectl", &a)?)?)
    }

    /// The id labelling this double's Docker objects.
    pub fn owner(&self) -> String {
        state::state_id(&self.state)
    }

    /// Docker containers this double owns.
    pub fn containers(&self) -> Vec<String> {
        engine::owned_containers(&self.owner())
    }

    /// Docker networks this double owns.
    pub fn networks(&self) -> Vec<String> {
        engine::owned_networks(&self.owner())
    }

    /// Polls `f` until it returns Some or the deadline passes.
    pub fn poll<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.state.join("supervisor.log")).unwrap_or_default();
                bail!(
                    "timed out after {timeout:?} waiting for {what}\nsupervisor log tail:\n{}",
                    tail(&log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the supervisor and removes everything on Docker the double made.
    pub fn teardown(&self) {
        supervisor::stop(&self.state);
        engine::remove_owned(&self.owner());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The last `n` lines.
pub fn tail(s: &str, n: usize) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(n)..].join("\n")
}

/// `busybox:1.36.1`, the chart's `helm test` image, made locally from Debian's static busybox
/// (no registry here): sh, wget and httpd in one static binary. Kept as cache like the other stand-ins.
pub fn ensure_busybox_image() -> Result<String> {
    const NAME: &str = "busybox:1.36.1";
    const WGET_SH: &str = r#"#!/bin/sh
# busybox wget minus -T (which crashes Debian's build); the timeout is enforced with busybox timeout.
t=10; set -- "$@" --end; while [ "$1" != --end ]; do
  case "$1" in -T) t=$2; shift 2;; -T*) t=${1#-T}; shift;; *) set -- "$@" "$1"; shift;; esac
done; shift
exec busybox timeout "$t" busybox wget "$@"
"#;
    const REVISION: &str = "todo.e2e-standin=busybox-v3";
    let current = engine::image_inspect(NAME);
    let (key, val) = REVISION.split_once('=').unwrap_or_default();
    if current
        .as_ref()
        .and_then(|v| {
            v.pointer("/Config/Labels")?
                .get(key)?
                .as_str()
                .map(str::to_string)
        })
        .as_deref()
        == Some(val)
    {
        return Ok(NAME.into());
    }
    let bb = Path::new("/bin/busybox");
    if !bb.exists() {
        bail!("/bin/busybox missing (apt-get install busybox-static)");
    }
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("tmp"))?;
    std::fs::copy(bb, root.join("bin/busybox"))?;
    for tool in [
        "httpd", "nc", "cat", "echo", "mkdir", "sleep", "ls", "id", "env", "test", "true", "false",
        "timeout",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool))?;
    }
    // Debian's busybox wget crashes (SIGSEGV) with -T, and its sh always runs the built-in wget: the
    // stand-in's sh is dash (with its libc) and its wget a small script over busybox nc.
    std::fs::copy("/bin/dash", root.join("bin/sh"))?;
    for lib in [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ] {
        let dest = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap_or(&root))?;
        std::fs::copy(std::fs::canonicalize(lib)?, &dest)?;
    }
    std::fs::write(root.join("bin/wget"), WGET_SH)?;
    std::fs::set_permissions(
        root.join("bin/wget"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    // Static glibc crashes in user lookups (wget, id) without these files, as the real image has them.
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::write(
        root.join("etc/nsswitch.conf"),
        "passwd: files\ngroup: files\nhosts: files dns\n",
    )?;
    let tar = dir.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()?;
    if !st.success() {
        bail!("tar failed");
    }
    engine::run(&[
        "import",
        "--change",
        "ENV PATH=/bin",
        "--change",
        "CMD [\"sh\"]",
        "--change",
        &format!("LABEL {REVISION}"),
        &tar.display().to_string(),
        NAME,
    ])?;
    Ok(NAME.into())
}
