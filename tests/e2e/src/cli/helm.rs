//! `helm`: the client side (template, lint, version, package, show) is the real helm binary; the release side
//! (upgrade --install, status, history, list, rollback, uninstall, test) is stored in the double's state and
//! realised on Docker by the supervisor.

use super::{go_duration, Args};
use crate::manifest::{self, Objects};
use crate::realise::{self, PodCtx};
use crate::state::{self, Desired, HostState, Release, Revision};
use crate::{engine, keep, supervisor, view};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Env var pointing at the real helm binary used for rendering (default: helm 4 from .ci/fetch-tools.sh).
pub const REAL_HELM_ENV: &str = "TODO_CLUSTER_DOUBLE_REAL_HELM";

/// The real helm binary.
pub fn real_helm() -> PathBuf {
    std::env::var_os(REAL_HELM_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/tools/helm4/helm")
        })
}

/// Major version of the real helm binary (3 or 4).
pub fn real_helm_major() -> u32 {
    let out = Command::new(real_helm())
        .args(["version", "--short"])
        .output();
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(4)
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Runs one `helm` invocation.
pub fn run(argv: &[String]) -> i32 {
    let major = real_helm_major();
    let a = match Args::parse(tool_doubles::spec::helm(major), argv) {
        Ok(a) => a,
        // The client-side commands are the real helm's: it checks their flags itself.
        Err(_)
            if argv
                .iter()
                .find(|w| !w.starts_with('-'))
                .is_some_and(|w| delegated(w)) =>
        {
            return delegate(argv)
        }
        Err(r) => return super::refuse(r),
    };
    let sub = a.pos.first().map(String::as_str).unwrap_or("");
    if delegated(sub) {
        return delegate(argv);
    }
    match release_cmd(sub, &a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    }
}

/// helm's client-side commands, which the real binary answers.
fn delegated(sub: &str) -> bool {
    matches!(
        sub,
        "" | "version"
            | "template"
            | "lint"
            | "package"
            | "show"
            | "inspect"
            | "dependency"
            | "dep"
            | "create"
            | "env"
            | "help"
            | "completion"
    )
}

fn delegate(argv: &[String]) -> i32 {
    Command::new(real_helm())
        .args(argv)
        .status()
        .ok()
        .and_then(|s| s.code())
        .unwrap_or(1)
}

fn namespace(a: &Args) -> String {
    a.get(&["-n", "--namespace"])
        .or_else(|| std::env::var("HELM_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into())
}

/// The kube context check every cluster call goes through.
fn reachable(d: &Desired, a: &Args) -> Result<()> {
    let ctx = a
        .get(&["--kube-context"])
        .or_else(|| std::env::var("HELM_KUBECONTEXT").ok());
    match d.profile_for_context(ctx.as_deref()) {
        Some((_, p)) if p.host == HostState::Running => Ok(()),
        Some(_) => bail!("Kubernetes cluster unreachable: Get \"https://192.168.49.2:8443/version\": dial tcp 192.168.49.2:8443: connect: connection refused"),
        None => bail!("Kubernetes cluster unreachable: context \"{}\" does not exist", ctx.unwrap_or_default()),
    }
}

fn go_time(t: &DateTime<Utc>) -> String {
    t.format("%a %b %e %H:%M:%S %Y").to_string()
}

fn release_cmd(sub: &str, a: &Args) -> Result<i32> {
    let dir = state::state_dir()?;
    let d = state::read_desired(&dir)?;
    reachable(&d, a)?;
    let ns = namespace(a);
    let json_out = a.get(&["-o", "--output"]).as_deref() == Some("json");
    let rel_name = a.pos.get(1).cloned().unwrap_or_default();
    let key = format!("{ns}/{rel_name}");
    match sub {
        "upgrade" | "install" => upgrade(&dir, a, sub == "install", &ns),
        "status" => {
            let rel = d.releases.get(&key).context("release: not found")?;
            let rev = rel.latest().context("release: not found")?;
            if json_out {
                println!("{}", status_json(rel, rev, true));
            } else {
                print_summary(rel, rev);
            }
            Ok(0)
        }
        "history" | "hist" => {
            let rel = d.releases.get(&key).context("release: not found")?;
            let rows: Vec<Value> = rel
                .revisions
                .iter()
                .map(|r| json!({"revision": r.revision, "updated": r.updated.to_rfc3339(), "status": r.status, "chart": r.chart, "app_version": r.app_version, "description": r.description}))
                .collect();
            if json_out {
                println!("{}", Value::from(rows));
            } else {
                println!("REVISION\tUPDATED                 \tSTATUS    \tCHART          \tAPP VERSION\tDESCRIPTION");
                for r in &rel.revisions {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        r.revision,
                        go_time(&r.updated),
                        r.status,
                        r.chart,
                        r.app_version,
                        r.description
                    );
                }
            }
            Ok(0)
        }
        "list" | "ls" => {
            let all_ns = a.has(&["-A", "--all-namespaces"]);
            let rows: Vec<Value> = d
                .releases
                .values()
                .filter(|r| all_ns || r.namespace == ns)
                .filter_map(|r| {
                    let rev = r.latest()?;
                    let shown = a.has(&["-a", "--all"]) || matches!(rev.status.as_str(), "deployed" | "failed");
                    shown.then(|| json!({"name": r.name, "namespace": r.namespace, "revision": rev.revision.to_string(),
                        "updated": rev.updated.format("%Y-%m-%d %H:%M:%S%.9f %z UTC").to_string(),
                        "status": rev.status, "chart": rev.chart, "app_version": rev.app_version}))
                })
                .collect();
            if json_out {
                println!("{}", Value::from(rows));
            } else if a.has(&["-q", "--short"]) {
                for r in &rows {
                    println!("{}", r["name"].as_str().unwrap_or_default());
                }
            } else {
                println!("NAME\tNAMESPACE\tREVISION\tUPDATED\tSTATUS\tCHART\tAPP VERSION");
                for r in &rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        r["name"].as_str().unwrap_or(""),
                        r["namespace"].as_str().unwrap_or(""),
                        r["revision"].as_str().unwrap_or(""),
                        r["updated"].as_str().unwrap_or(""),
                        r["status"].as_str().unwrap_or(""),
                        r["chart"].as_str().unwrap_or(""),
                        r["app_version"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(0)
        }
        "uninstall" | "delete" | "del" | "un" => {
            let mut code = 0;
            for name in a.pos.iter().skip(1) {
                let k = format!("{ns}/{name}");
                let removed = state::update_desired(&dir, |d| {
                    let Some(r) = d.releases.remove(&k) else {
                        return Ok(None);
                    };
                    let kept = match &r.applied {
                        Some(applied) => keep::leave_behind(d, name, &ns, applied, &[])?,
                        None => Vec::new(),
                    };
                    d.generation += 1;
                    Ok(Some(kept))
                })?;
                if let Some(kept) = removed {
                    if !kept.is_empty() {
                        println!(
                            "These resources were kept due to the resource policy:\n{}\n",
                            kept.join("\n")
                        );
                    }
                    println!("release \"{name}\" uninstalled");
                } else if !a.has(&["--ignore-not-found"]) {
                    eprintln!("Error: uninstall: Release not loaded: {name}: release: not found");
                    code = 1;
                }
            }
            if a.has(&["--wait"]) {
                let gen = state::read_desired(&dir)?.generation;
                wait_until(&dir, Duration::from_secs(300), |_, o| {
                    o.generation_seen >= gen
                        && !o.pods.iter().any(|p| {
                            p.namespace == ns
                                && a.pos[1..]
                                    .iter()
                                    .any(|n| p.labels.get("app.kubernetes.io/instance") == Some(n))
                        })
                });
            }
            Ok(code)
        }
        "rollback" => {
            let to: Option<u32> = a.pos.get(2).and_then(|s| s.parse().ok());
            let gen = state::update_desired(&dir, |d| {
                let rel = d.releases.get_mut(&key).context("release: not found")?;
                let cur = rel.latest().map(|r| r.revision).unwrap_or(0);
                let target = to.filter(|t| *t > 0).unwrap_or(cur.saturating_sub(1));
                let src = rel
                    .revisions
                    .iter()
                    .find(|r| r.revision == target)
                    .cloned()
                    .with_context(|| format!("release has no {target} version"))?;
                rollback_to(rel, &src);
                d.generation += 1;
                Ok(d.generation)
            })?;
            supervisor::ensure_running(&dir)?;
            if a.has(&["--wait"])
                || a.get(&["--wait"])
                    .is_some_and(|w| w != "hookOnly" && w != "false")
            {
                let t = a
                    .get(&["--timeout"])
                    .and_then(|t| go_duration(&t))
                    .unwrap_or(Duration::from_secs(300));
                let _ = wait_release(&dir, &ns, &rel_name, gen, t);
            }
            println!("Rollback was a success! Happy Helming!");
            Ok(0)
        }
        "test" => helm_test(&dir, a, &ns, &rel_name),
        "get" => {
            let what = a.pos.get(1).cloned().unwrap_or_default();
            let name = a.pos.get(2).cloned().unwrap_or_default();
            let rel = d
                .releases
                .get(&format!("{ns}/{name}"))
                .context("release: not found")?;
            let rev = rel.latest().context("release: not found")?;
            match what.as_str() {
                "manifest" => print!("{}", rev.manifest),
                "notes" => println!("NOTES:\n{}", rev.notes),
                "values" => println!(
                    "{}",
                    if json_out {
                        "{}"
                    } else {
                        "USER-SUPPLIED VALUES:\nnull"
                    }
                ),
                _ => bail!("unknown command \"{what}\" for \"helm get\""),
            }
            Ok(0)
        }
        other => {
            eprintln!("Error: unknown command \"{other}\" for \"helm\" (not implemented by the cluster double)");
            Ok(1)
        }
    }
}

fn rollback_to(rel: &mut Release, src: &Revision) {
    let now = Utc::now();
    for r in rel.revisions.iter_mut() {
        if r.status == "deployed" {
            r.status = "superseded".into();
        }
    }
    let next = rel.latest().map(|r| r.revision).unwrap_or(0) + 1;
    let first = rel
        .revisions
        .first()
        .map(|r| r.first_deployed)
        .unwrap_or(now);
    rel.revisions.push(Revision {
        revision: next,
        status: "deployed".into(),
        updated: now,
        first_deployed: first,
        description: format!("Rollback to {}", src.revision),
        ..src.clone()
    });
    rel.applied = Some(src.manifest.clone());
}

fn status_json(rel: &Release, rev: &Revision, v3_times: bool) -> Value {
    let mut info = json!({"first_deployed": rev.first_deployed.to_rfc3339(), "last_deployed": rev.updated.to_rfc3339(),
                          "description": rev.description, "status": rev.status, "notes": rev.notes});
    if v3_times {
        info["deleted"] = Value::from("");
    }
    json!({"name": rel.name, "info": info, "manifest": rev.manifest, "version": rev.revision, "namespace": rel.namespace})
}

fn print_summary(rel: &Release, rev: &Revision) {
    println!(
        "NAME: {}\nLAST DEPLOYED: {}\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}",
        rel.name,
        go_time(&rev.updated),
        rel.namespace,
        rev.status,
        rev.revision
    );
    if real_helm_major() >= 4 {
        println!("DESCRIPTION: {}", rev.description);
    }
    println!("TEST SUITE: None");
    if !rev.notes.is_empty() {
        println!("NOTES:\n{}", rev.notes);
    }
}

/// Renders the chart with the real helm (`install --dry-run=server` against the double's read-only API so
/// `lookup` sees the live Secrets), passing every value source through. Returns (manifests, notes).
fn render(dir: &Path, a: &Args, release: &str, chart: &str, ns: &str) -> Result<(String, String)> {
    let d = state::read_desired(dir)?;
    let api = crate::lookup_api::LookupApi::start(&d).context("starting the lookup API")?;
    let kubeconfig = dir.join(format!("kubeconfig-{}", state::pod_suffix()));
    state::write_atomic(&kubeconfig, api.kubeconfig(ns).as_bytes())?;
    let mut cmd = Command::new(real_helm());
    cmd.args([
        "install",
        release,
        chart,
        "--namespace",
        ns,
        "--dry-run=server",
        "--disable-openapi-validation",
    ]);
    cmd.arg("--kubeconfig").arg(&kubeconfig);
    for f in a.all(&["-f", "--values"]) {
        cmd.args(["--values", &f]);
    }
    for flag in [
        "--set",
        "--set-string",
        "--set-file",
        "--set-json",
        "--set-literal",
    ] {
        for v in a.all(&[flag]) {
            cmd.args([flag, &v]);
        }
    }
    if let Some(v) = a.get(&["--version"]) {
        cmd.args(["--version", &v]);
    }
    let out = cmd.stdin(Stdio::null()).output();
    let _ = std::fs::remove_file(&kubeconfig);
    let out = out.context("running the real helm")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{}",
            err.trim()
                .trim_start_matches("Error: ")
                .trim_start_matches("INSTALLATION FAILED: ")
        );
    }
    Ok(split_dry_run(&String::from_utf8_lossy(&out.stdout)))
}

/// Splits `helm install --dry-run` output into the YAML stream (hooks + manifest) and the notes.
pub fn split_dry_run(text: &str) -> (String, String) {
    let (body, notes) = match text.split_once("\nNOTES:\n") {
        Some((b, n)) => (b, n.trim_end().to_string()),
        None => (text, String::new()),
    };
    let start = body
        .find("\nHOOKS:\n")
        .or_else(|| body.find("\nMANIFEST:\n"))
        .map_or(0, |i| i + 1);
    let yaml: String = body[start..]
        .lines()
        .filter(|l| *l != "HOOKS:" && *l != "MANIFEST:")
        .map(|l| format!("{l}\n"))
        .collect();
    (yaml, notes)
}

fn chart_meta(chart: &str) -> (String, String) {
    let out = Command::new(real_helm())
        .args(["show", "chart", chart])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or(serde_yaml::Value::Null);
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    (format!("{}-{}", s("name"), s("version")), s("appVersion"))
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap_or_default()))
        .collect()
}

/// Wait strategy: whether helm waits for resources at all.
fn wants_wait(a: &Args, major: u32) -> Result<bool> {
    let wait = a.flags.get("--wait").and_then(|v| v.last().cloned());
    let rollback = a.has(&["--atomic"]) || (major >= 4 && a.has(&["--rollback-on-failure"]));
    if major < 4 {
        return Ok(rollback || wait.is_some_and(|w| w.is_empty() || w == "true"));
    }
    match wait.as_deref() {
        None => Ok(rollback),
        Some("" | "watcher" | "legacy" | "true") => Ok(true),
        Some("hookOnly" | "false") => Ok(rollback),
        Some(other) => {
            bail!("invalid wait input \"{other}\". Valid inputs are watcher, hookOnly, and legacy")
        }
    }
}

fn upgrade(dir: &Path, a: &Args, install_cmd: bool, ns: &str) -> Result<i32> {
    let major = real_helm_major();
    if major < 4 && a.flags.contains_key("--rollback-on-failure") {
        bail!("unknown flag: --rollback-on-failure");
    }
    if major >= 4 && a.flags.contains_key("--atomic") {
        eprintln!("Flag --atomic has been deprecated, use --rollback-on-failure instead");
    }
    let wait = wants_wait(a, major)?;
    let rollback_on_failure = a.has(&["--atomic", "--rollback-on-failure"]);
    let (Some(name), Some(chart)) = (a.pos.get(1).cloned(), a.pos.get(2).cloned()) else {
        bail!("\"helm upgrade\" requires 2 arguments");
    };
    let key = format!("{ns}/{name}");
    let existing = state::read_desired(dir)?.releases.get(&key).cloned();
    let is_install = existing
        .as_ref()
        .is_none_or(|r| r.revisions.iter().all(|x| x.status == "uninstalled"));
    if !is_install && install_cmd {
        bail!("INSTALLATION FAILED: cannot re-use a name that is still in use");
    }
    // helm/helm v3.17.3 and v4.1.4, pkg/action/upgrade.go prepareUpgrade: a plain `helm upgrade` of a release
    // that does not exist (Releases.Last: not found) and a release with no deployed revision whose last one is
    // neither failed nor superseded (an `uninstalling` left by an uninstall that was cut short) both fail with
    // NewErrNoDeployedReleases; a pending last revision fails with errPending first.
    if is_install && !install_cmd && !a.has(&["--install"]) {
        bail!("UPGRADE FAILED: \"{name}\" has no deployed releases");
    }
    if let Some(r) = existing.as_ref().and_then(|r| r.latest()) {
        if r.status.starts_with("pending-") {
            bail!(
                "{}another operation (install/upgrade/rollback) is in progress",
                if is_install { "" } else { "UPGRADE FAILED: " }
            );
        }
        let deployed = existing
            .as_ref()
            .is_some_and(|rel| rel.revisions.iter().any(|x| x.status == "deployed"));
        if !is_install && !deployed && !matches!(r.status.as_str(), "failed" | "superseded") {
            bail!("UPGRADE FAILED: \"{name}\" has no deployed releases");
        }
    }
    let json_out = a.get(&["-o", "--output"]).as_deref() == Some("json");
    if is_install && !json_out && !install_cmd {
        println!("Release \"{name}\" does not exist. Installing it now.");
    }
    let (rendered, notes) = render(dir, a, &name, &chart, ns)?;
    let docs = manifest::parse_docs(&rendered)?;
    Objects::from_docs(&docs).context("reading the rendered objects")?;
    let (applied, hooks): (Vec<Value>, Vec<Value>) =
        docs.into_iter().partition(|d| !manifest::is_hook(d));
    let (chart_id, app_version) = chart_meta(&chart);
    let create_ns = a.has(&["--create-namespace"]);
    let now = Utc::now();
    let gen = state::update_desired(dir, |d| {
        if !d.namespaces.contains_key(ns) {
            if !create_ns {
                bail!("create: failed to create: namespaces \"{ns}\" not found");
            }
            d.namespaces.insert(
                ns.to_string(),
                state::Namespace {
                    labels: Default::default(),
                    created: now,
                    uid: state::new_uid(),
                },
            );
        }
        let rel = d.releases.entry(key.clone()).or_insert_with(|| Release {
            name: name.clone(),
            namespace: ns.to_string(),
            revisions: Vec::new(),
            applied: None,
        });
        if is_install {
            rel.revisions.clear();
        }
        let previous = rel.applied.clone();
        let next = rel.latest().map(|r| r.revision).unwrap_or(0) + 1;
        let first = rel
            .revisions
            .first()
            .map(|r| r.first_deployed)
            .unwrap_or(now);
        rel.revisions.push(Revision {
            revision: next,
            status: if is_install {
                "pending-install"
            } else {
                "pending-upgrade"
            }
            .into(),
            chart: chart_id.clone(),
            app_version: app_version.clone(),
            updated: now,
            first_deployed: first,
            description: if is_install {
                "Initial install underway"
            } else {
                "Preparing upgrade"
            }
            .into(),
            manifest: to_yaml(&applied),
            hooks: to_yaml(&hooks),
            notes: notes.clone(),
        });
        rel.applied = Some(to_yaml(&applied));
        // helm keeps what this revision no longer renders if it is marked keep, and an install adopts (or
        // refuses) kept objects it renders again.
        if let Some(previous) = previous {
            keep::leave_behind(d, &name, ns, &previous, &applied)?;
        }
        if is_install {
            keep::adopt(d, &name, ns, &applied)?;
        }
        d.generation += 1;
        Ok(d.generation)
    })?;
    supervisor::ensure_running(dir)?;
    let timeout = a
        .get(&["--timeout"])
        .and_then(|t| go_duration(&t))
        .unwrap_or(Duration::from_secs(300));
    let outcome = if wait {
        // SAFETY: installing a handler that only stores to an atomic flag.
        unsafe {
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        }
        wait_release(dir, ns, &name, gen, timeout)
    } else {
        Ok(())
    };
    match outcome {
        Ok(()) => {
            let (rel, rev) = state::update_desired(dir, |d| {
                let rel = d
                    .releases
                    .get_mut(&key)
                    .context("release vanished while installing")?;
                for r in rel.revisions.iter_mut() {
                    if r.status == "deployed" {
                        r.status = "superseded".into();
                    }
                }
                let rev = rel
                    .revisions
                    .last_mut()
                    .context("release has no revision")?;
                rev.status = "deployed".into();
                rev.description = if is_install {
                    "Install complete"
                } else {
                    "Upgrade complete"
                }
                .into();
                rev.updated = Utc::now();
                let rev = rev.clone();
                Ok((rel.clone(), rev))
            })?;
            if json_out {
                println!("{}", status_json(&rel, &rev, major < 4));
            } else {
                if !is_install {
                    println!("Release \"{name}\" has been upgraded. Happy Helming!");
                }
                print_summary(&rel, &rev);
            }
            Ok(0)
        }
        Err(err) => {
            let err = format!("{err:#}");
            let prefix = if is_install { "" } else { "UPGRADE FAILED: " };
            let why = if major >= 4 {
                "rollback-on-failure"
            } else {
                "atomic"
            };
            let msg = state::update_desired(dir, |d| {
                let Some(rel) = d.releases.get_mut(&key) else {
                    return Ok(format!("{prefix}{err}"));
                };
                if let Some(last) = rel.revisions.last_mut() {
                    last.status = "failed".into();
                    last.description = format!(
                        "{} \"{name}\" failed: {err}",
                        if is_install { "Release" } else { "Upgrade" }
                    );
                }
                d.generation += 1;
                if !rollback_on_failure {
                    return Ok(format!("{prefix}{err}"));
                }
                if is_install {
                    if let Some(r) = d.releases.remove(&key) {
                        if let Some(applied) = &r.applied {
                            keep::leave_behind(d, &name, ns, applied, &[])?;
                        }
                    }
                    return Ok(format!("release {name} failed, and has been uninstalled due to {why} being set: {err}"));
                }
                let prev = rel
                    .revisions
                    .iter()
                    .rev()
                    .find(|r| r.status == "deployed" || r.status == "superseded")
                    .cloned();
                match prev {
                    Some(p) => {
                        rollback_to(rel, &p);
                        Ok(format!("{prefix}release {name} failed, and has been rolled back due to {why} being set: {err}"))
                    }
                    None => Ok(format!("{prefix}{err}")),
                }
            })?;
            if rollback_on_failure && !is_install {
                let gen = state::read_desired(dir)?.generation;
                let _ = wait_release_quiet(dir, ns, &name, gen, Duration::from_secs(120));
            }
            eprintln!("Error: {msg}");
            Ok(1)
        }
    }
}

fn wait_until(
    dir: &Path,
    timeout: Duration,
    ok: impl Fn(&Desired, &state::Observed) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let d = state::read_desired(dir).unwrap_or_default();
        let o = state::read_observed(dir).unwrap_or_default();
        if ok(&d, &o) {
            return true;
        }
        if Instant::now() >= deadline || CANCELLED.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What is not ready yet, in Helm 4's watcher wording.
fn not_ready(dir: &Path, ns: &str, release: &str, gen: u64) -> Vec<String> {
    let d = state::read_desired(dir).unwrap_or_default();
    let o = state::read_observed(dir).unwrap_or_default();
    if o.generation_seen < gen {
        return vec![format!(
            "waiting for the cluster to observe generation {gen}"
        )];
    }
    let Ok(objs) = view::objects_by_namespace(&d) else {
        return vec!["cannot read the release".into()];
    };
    let Some(objs) = objs.get(ns) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for w in &objs.workloads {
        if view::release_of(&w.raw).is_none_or(|(rns, rname)| rns != ns || rname != release) {
            continue;
        }
        let r = view::rollout(&o, ns, w);
        if !r.complete() {
            out.push(format!(
                "resource {}/{ns}/{} not ready. status: InProgress, message: Available: {}/{}",
                w.kind, w.meta.name, r.updated_ready, r.replicas
            ));
        }
    }
    out
}

fn wait_release(dir: &Path, ns: &str, release: &str, gen: u64, timeout: Duration) -> Result<()> {
    let done = wait_until(dir, timeout, |_, _| {
        not_ready(dir, ns, release, gen).is_empty()
    });
    if done {
        return Ok(());
    }
    if CANCELLED.load(Ordering::SeqCst) {
        println!("Release {release} has been cancelled.");
        bail!("context canceled");
    }
    if real_helm_major() >= 4 {
        let mut lines = not_ready(dir, ns, release, gen);
        lines.push("context deadline exceeded".into());
        bail!("{}", lines.join("\n"));
    }
    bail!("context deadline exceeded")
}

fn wait_release_quiet(dir: &Path, ns: &str, release: &str, gen: u64, timeout: Duration) -> bool {
    wait_until(dir, timeout, |_, _| {
        not_ready(dir, ns, release, gen).is_empty()
    })
}

fn helm_test(dir: &Path, a: &Args, ns: &str, name: &str) -> Result<i32> {
    let d = state::read_desired(dir)?;
    let rel = d
        .releases
        .get(&format!("{ns}/{name}"))
        .context("release: not found")?;
    let rev = rel.latest().context("release: not found")?.clone();
    let objs = view::objects_by_namespace(&d)?
        .remove(ns)
        .unwrap_or_default();
    let hooks = manifest::parse_docs(&rev.hooks)?;
    let owner = state::state_id(dir);
    let timeout = a
        .get(&["--timeout"])
        .and_then(|t| go_duration(&t))
        .unwrap_or(Duration::from_secs(300));
    let started = Utc::now();
    let mut failures = Vec::new();
    let mut names = Vec::new();
    let mut logs = Vec::new();
    for h in hooks.iter().filter(|h| {
        h.get("kind").and_then(Value::as_str) == Some("Pod")
            && h.pointer("/metadata/annotations/helm.sh~1hook")
                .and_then(Value::as_str)
                .is_some_and(|k| {
                    k.split(',')
                        .any(|k| k.trim() == "test" || k.trim() == "test-success")
                })
    }) {
        let pod_name = h
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("test")
            .to_string();
        names.push(pod_name.clone());
        let template = json!({"metadata": h.get("metadata").cloned().unwrap_or(json!({})), "spec": h.get("spec").cloned().unwrap_or(json!({}))});
        let fake = json!({"kind": "Deployment", "metadata": {"name": pod_name}, "spec": {"replicas": 1, "template": template}});
        let w = Objects::from_docs(&[fake])?.workloads.remove(0);
        let image = w
            .template
            .spec
            .containers
            .first()
            .map(|c| c.image.clone())
            .unwrap_or_default();
        if engine::image_inspect(&image).is_none() {
            failures.push(format!(
                "pod {pod_name} failed: image \"{image}\" is not present"
            ));
            continue;
        }
        let ctx = PodCtx {
            owner: &owner,
            ns,
            pod: &pod_name,
            ordinal: None,
            state_dir: dir,
            aliases: &[],
        };
        let spec = realise::run_spec(&w, &objs, &ctx)
            .map_err(|e| anyhow::anyhow!("pod {pod_name}: {}", e.0))?;
        engine::ensure_network(&realise::network_name(&owner, ns), &owner)?;
        let env_file = dir.join(format!("env-test-{}", state::pod_suffix()));
        let body: String = spec.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        state::write_atomic(&env_file, body.as_bytes())?;
        let cname = realise::container_name(&owner, ns, &pod_name);
        let _ = engine::run(&["rm", "-f", &cname]);
        let mut args = vec![
            "run".to_string(),
            "--env-file".into(),
            env_file.display().to_string(),
        ];
        args.extend(spec.args);
        let out = engine::docker().args(&args).output();
        let _ = std::fs::remove_file(&env_file);
        let out = out?;
        if !out.status.success() {
            failures.push(format!(
                "pod {pod_name} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let deadline = Instant::now() + timeout;
        let code = loop {
            let info = engine::inspect(std::slice::from_ref(&cname));
            let st = info
                .first()
                .and_then(|i| i.get("State"))
                .cloned()
                .unwrap_or(Value::Null);
            if st.get("Running").and_then(Value::as_bool) == Some(false) {
                break st.get("ExitCode").and_then(Value::as_i64).unwrap_or(1);
            }
            if Instant::now() > deadline {
                break -1;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        logs.push((
            pod_name.clone(),
            engine::logs(&cname, None).unwrap_or_default(),
        ));
        let _ = engine::run(&["rm", "-f", &cname]);
        if code != 0 {
            failures.push(format!("pod {pod_name} failed"));
        }
    }
    if state::read_observed(dir)?
        .pods
        .iter()
        .all(|p| p.namespace != ns)
    {
        let _ = engine::run(&["network", "rm", &realise::network_name(&owner, ns)]);
    }
    println!(
        "NAME: {}\nLAST DEPLOYED: {}\nNAMESPACE: {ns}\nSTATUS: {}\nREVISION: {}",
        name,
        go_time(&rev.updated),
        rev.status,
        rev.revision
    );
    for n in &names {
        let phase = if failures.iter().any(|f| f.contains(n.as_str())) {
            "Failed"
        } else {
            "Succeeded"
        };
        println!(
            "TEST SUITE:     {n}\nLast Started:   {}\nLast Completed: {}\nPhase:          {phase}",
            go_time(&started),
            go_time(&Utc::now())
        );
    }
    if a.has(&["--logs"]) {
        for (n, l) in &logs {
            println!("POD LOGS: {n}\n{l}");
        }
    }
    if !failures.is_empty() {
        eprintln!(
            "Error: {} error{} occurred:",
            failures.len(),
            if failures.len() > 1 { "s" } else { "" }
        );
        for f in &failures {
            eprintln!("\t* {f}");
        }
        return Ok(1);
    }
    Ok(0)
}
