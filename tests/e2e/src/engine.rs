//! The real Docker engine, through Debian's docker CLI (`/usr/bin/docker`, overridable by `TODO_DOUBLE_DOCKER`).

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};

/// Label put on every Docker object the double creates, valued with the state id.
pub const OWNER_LABEL: &str = "todo.cluster-double";

/// The docker CLI.
pub fn docker() -> Command {
    let bin = std::env::var("TODO_DOUBLE_DOCKER").unwrap_or_else(|_| "/usr/bin/docker".to_string());
    let mut c = Command::new(bin);
    c.stdin(Stdio::null());
    c
}

/// Runs docker with `args`, returning stdout; a non-zero exit is an error carrying stderr.
pub fn run(args: &[&str]) -> Result<String> {
    let out = docker()
        .args(args)
        .output()
        .with_context(|| format!("running docker {}", args.first().unwrap_or(&"")))?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// True when the engine answers.
pub fn engine_up() -> bool {
    docker()
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Normalises an image reference to `repo:tag` (adds `:latest`, strips `docker.io/library/`).
pub fn normalise_image(r: &str) -> String {
    let r = r
        .strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("docker.io/"))
        .unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || last.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// Image `repo:tag` references in the engine.
pub fn image_refs() -> Result<BTreeSet<String>> {
    let out = run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])?;
    Ok(out
        .lines()
        .filter(|l| !l.contains("<none>"))
        .map(normalise_image)
        .collect())
}

/// `docker image inspect` of one image, if present.
pub fn image_inspect(r: &str) -> Option<Value> {
    let out = run(&["image", "inspect", r]).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    v.as_array()?.first().cloned()
}

/// `docker inspect` of containers; ids that vanished are left out.
pub fn inspect(ids: &[String]) -> Vec<Value> {
    if ids.is_empty() {
        return Vec::new();
    }
    let out = docker()
        .arg("inspect")
        .args(ids)
        .stderr(Stdio::null())
        .output();
    out.ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// Container logs, stdout and stderr interleaved as written.
/// `docker logs [--timestamps] [--since S] [--tail N] [--follow] ID` with the terminal as output, for
/// `kubectl logs --follow`: returns docker's exit code when the container ends (or the caller is stopped).
pub fn logs_follow(
    id: &str,
    tail: Option<u64>,
    timestamps: bool,
    since: Option<&str>,
) -> Result<i32> {
    let mut cmd = docker();
    cmd.args(["logs", "--follow"]);
    if timestamps {
        cmd.arg("--timestamps");
    }
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    if let Some(n) = tail {
        cmd.args(["--tail", &n.to_string()]);
    }
    cmd.arg(id)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    Ok(cmd
        .status()
        .context("running docker logs --follow")?
        .code()
        .unwrap_or(1))
}

/// `docker logs --timestamps [--since S] [--tail N] ID`: kubectl's `--timestamps` lines (RFC 3339 with
/// nanoseconds, then the line), which is what docker prints too.
pub fn logs_stamped(id: &str, tail: Option<u64>, since: Option<&str>) -> Result<String> {
    docker_logs(id, true, tail, since)
}

/// `docker logs [--tail N] ID`: stdout and stderr interleaved, as the container wrote them.
pub fn logs(id: &str, tail: Option<u64>) -> Result<String> {
    docker_logs(id, false, tail, None)
}

fn docker_logs(
    id: &str,
    timestamps: bool,
    tail: Option<u64>,
    since: Option<&str>,
) -> Result<String> {
    // One pipe for both streams keeps their order.
    let (mut reader, writer) = std::io::pipe().context("creating a pipe")?;
    let mut cmd = docker();
    cmd.arg("logs");
    if timestamps {
        cmd.arg("--timestamps");
    }
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    if let Some(n) = tail {
        cmd.args(["--tail", &n.to_string()]);
    }
    cmd.arg(id).stdout(writer.try_clone()?).stderr(writer);
    let mut child = cmd.spawn().context("running docker logs")?;
    drop(cmd);
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    child.wait()?;
    Ok(text)
}

/// The IP address in a `docker inspect` object, on the container's (only) network.
pub fn ip_address(info: &Value) -> Option<String> {
    info.pointer("/NetworkSettings/Networks")?
        .as_object()?
        .values()
        .next()?
        .get("IPAddress")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The IP address of a container (name or id) on its network.
pub fn container_ip(container: &str) -> Option<String> {
    inspect(&[container.to_string()])
        .first()
        .and_then(ip_address)
}

/// Creates the network if missing, with a subnet of its own: Docker takes `network connect --ip` only on a
/// network with a user-configured subnet, and the double needs it to keep a pod's IP when it changes the
/// pod's aliases (a pod keeps its IP until it is gone; without `--ip` Docker hands out the lowest free one).
pub fn ensure_network(name: &str, owner: &str) -> Result<()> {
    if run(&["network", "inspect", name]).is_ok() {
        return Ok(());
    }
    let label = format!("{OWNER_LABEL}={owner}");
    let mut last = None;
    // 10.242.0.0/16 in /24s: clear of Docker's default pools (172.17-31.x, 192.168.x); a subnet another
    // network holds is refused ("Pool overlaps"), and the next one is tried.
    for third in 0..=255u16 {
        let subnet = format!("10.242.{third}.0/24");
        match run(&[
            "network", "create", "--label", &label, "--subnet", &subnet, name,
        ]) {
            Ok(_) => return Ok(()),
            Err(e) if e.to_string().contains("overlaps") => last = Some(e),
            Err(e) => {
                // Created meanwhile by another call of the double: fine.
                if run(&["network", "inspect", name]).is_ok() {
                    return Ok(());
                }
                return Err(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no free subnet in 10.242.0.0/16 for {name}")))
}

/// Ids of every container carrying the owner label.
pub fn owned_containers(owner: &str) -> Vec<String> {
    run(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label={OWNER_LABEL}={owner}"),
    ])
    .map(|o| o.lines().map(str::to_string).collect())
    .unwrap_or_default()
}

/// Names of every network carrying the owner label.
pub fn owned_networks(owner: &str) -> Vec<String> {
    run(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("label={OWNER_LABEL}={owner}"),
    ])
    .map(|o| o.lines().map(str::to_string).collect())
    .unwrap_or_default()
}

/// Removes every container and network carrying the owner label.
pub fn remove_owned(owner: &str) {
    let ids = owned_containers(owner);
    if !ids.is_empty() {
        let _ = docker()
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    for n in owned_networks(owner) {
        let _ = run(&["network", "rm", &n]);
    }
}
