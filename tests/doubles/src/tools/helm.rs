//! helm double (helm/helm v3.17.3 and v4.1.4, the versions of the real binaries here): `version`,
//! `upgrade --install` with each major's flags and wait semantics, SIGTERM handling with helm's own
//! rollback, status/history/get values (JSON only with `-o json`), rollback (with or without waiting),
//! uninstall; `template`/`lint` (and a render check inside `upgrade`) run the real helm named by
//! DOUBLES_REAL_HELM, so the real charts are rendered with the values the xtask wrote.

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::spec::{go_duration, Parsed};
use crate::{record, with_state, Reply, REAL_HELM_ENV};

fn major() -> u32 {
    with_state(|s| s.str("helm_version"))
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3)
}

static CANCELLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Answers one helm call.
pub fn run(argv: &[String]) -> Reply {
    let m = major();
    let a = match crate::spec::helm(m).parse(argv) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let words = a.words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut reply = match words.as_slice() {
        ["version", ..] => version(&a),
        ["template", ..] | ["lint", ..] | ["show", ..] => delegate(argv),
        _ if a.get("--kube-context").is_none() => Reply::err(
            1,
            "Error: the test double refuses cluster calls without --kube-context\n",
        ),
        ["upgrade", name, chart] => upgrade(&a, m, name, chart),
        ["upgrade", ..] => Reply::err(
            1,
            "Error: \"helm upgrade\" requires 2 arguments\n\nUsage:  helm upgrade [RELEASE] [CHART] [flags]\n",
        ),
        ["status", name] => status(&a, name),
        ["get", "values", name] => get_values(&a, name),
        ["list" | "ls"] => list(&a),
        ["history", name] => history(&a, name),
        ["rollback", name] => rollback(&a, m, name, 0),
        ["rollback", name, rev] => match rev.parse::<u64>() {
            Ok(r) => rollback(&a, m, name, r),
            Err(_) => Reply::err(1, format!("Error: strconv.Atoi: parsing {rev:?}: invalid syntax\n")),
        },
        ["uninstall", names @ ..] if !names.is_empty() => uninstall(names),
        ["test", name] => helm_test(name),
        _ => Reply::err(
            1,
            format!(
                "Error: unknown command {:?} for \"helm\"\nRun 'helm --help' for usage.\n",
                words.first().unwrap_or(&"")
            ),
        ),
    };
    // pflag prints deprecations (Helm 4's --atomic) on stderr before the command runs.
    reply.stderr = format!("{}{}", a.warnings, reply.stderr);
    reply
}

fn version(a: &Parsed) -> Reply {
    let v = with_state(|s| s.str("helm_version"));
    if let Some(t) = a.get("--template") {
        // `--template` output has no trailing newline.
        return Reply::ok(t.replace("{{.Version}}", &v));
    }
    if a.on("--short") {
        return Reply::ok(format!("{v}+g1234567\n"));
    }
    Reply::ok(format!("version.BuildInfo{{Version:\"{v}\", GitCommit:\"1234567\", GitTreeState:\"clean\", GoVersion:\"go1.24.1\"}}\n"))
}

fn delegate(argv: &[String]) -> Reply {
    let Some(real) = std::env::var_os(REAL_HELM_ENV) else {
        return Reply::err(
            1,
            "Error: DOUBLES_REAL_HELM is not set: template/lint need the real helm\n",
        );
    };
    match std::process::Command::new(real).args(argv).output() {
        Ok(o) => Reply {
            code: o.status.code().unwrap_or(1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Reply::err(1, format!("Error: running the real helm: {e}\n")),
    }
}

fn timeout(a: &Parsed) -> Duration {
    a.get("--timeout")
        .and_then(|t| go_duration(&t))
        .unwrap_or(Duration::from_secs(300))
}

/// Whether the command waits for the release's resources.
/// Helm 3 (cmd/helm/upgrade.go, rollback.go): `--wait` is a bool; `--atomic` sets it.
/// Helm 4 (pkg/cmd/flags.go AddWaitFlag): a strategy, `watcher` for a bare `--wait`, `hookOnly` (no wait)
/// when absent; `--rollback-on-failure` defaults it to `watcher`. Any other value is refused by waitValue.Set.
fn waits(a: &Parsed, m: u32) -> Result<bool, Reply> {
    if m < 4 {
        return Ok(a.on("--wait") || a.on("--atomic"));
    }
    match a.get("--wait").as_deref() {
        None => Ok(a.on("--rollback-on-failure") || a.on("--atomic")),
        Some("watcher" | "legacy" | "true") => Ok(true),
        Some("hookOnly" | "false") => Ok(false),
        Some(other) => Err(Reply::err(
            1,
            format!("Error: invalid argument \"{other}\" for \"--wait\" flag: invalid wait input \"{other}\". Valid inputs are watcher, hookOnly, and legacy\n"),
        )),
    }
}

/// What waiting for pods that never become ready ends with (Helm 3 kube.Wait: the context's error; Helm 4's
/// watcher: one line per resource not ready, joined with the context's error, pkg/kube/statuswait.go).
fn wait_error(m: u32, ns: &str, release: &str) -> String {
    if m >= 4 {
        format!("resource Deployment/{ns}/{release} not ready. status: InProgress, message: Available: 0/1\ncontext deadline exceeded")
    } else {
        "context deadline exceeded".into()
    }
}

/// Waits until `ready` or the deadline; false when it gave up (or, with `cancellable`, on SIGTERM/SIGINT).
fn wait_for(ready: bool, limit: Duration, cancellable: bool) -> bool {
    if ready {
        return true;
    }
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cancellable && CANCELLED.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn values_files(a: &Parsed) -> Vec<String> {
    a.all("--values")
}

/// The Services a chart makes, from the rendered manifests (real helm) or, without one, from the chart's
/// values (`service.name`, `service.port`) merged with the values files, as the charts' templates use them.
fn services_from(rendered: Option<&str>, chart_values: &Value) -> Value {
    if let Some(m) = rendered {
        let mut out = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(m) {
            let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
                continue;
            };
            if v["kind"] == "Service" {
                let ports: Vec<Value> = v["spec"]["ports"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| json!({"name": p["name"], "port": p["port"]}))
                    .collect();
                out.push(json!({"name": v["metadata"]["name"], "ports": ports}));
            }
        }
        return Value::Array(out);
    }
    let svc = &chart_values["service"];
    match (svc["name"].as_str(), svc["port"].as_u64()) {
        (Some(n), Some(p)) => json!([{"name": n, "ports": [{"name": "http", "port": p}]}]),
        _ => json!([]),
    }
}

fn upgrade(a: &Parsed, m: u32, name: &str, chart: &str) -> Reply {
    let wait = match waits(a, m) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let atomic = a.on("--atomic") || (m >= 4 && a.on("--rollback-on-failure"));
    // cmd/helm/upgrade.go and install.go (v3.17.3; pkg/cmd in v4.1.4): before the release is touched,
    // SIGTERM and SIGINT are set to cancel the operation's context ("Release %s has been cancelled.").
    // SAFETY: the handler only stores to an atomic flag.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let chart_dir = std::path::Path::new(chart);
    if !chart_dir.join("Chart.yaml").is_file() {
        return Reply::err(1, format!("Error: path \"{chart}\" not found\n"));
    }
    let ns = a.get("--namespace").unwrap_or_else(|| "default".into());
    // What the xtask handed over: file modes and the image settings (never the secret values themselves).
    // `config` is what helm stores as the revision's user-supplied values: every file merged, later wins.
    let mut files = Vec::new();
    let mut merged = json!({});
    let mut config = Value::Null;
    for f in values_files(a) {
        let meta = std::fs::metadata(&f);
        let mode = meta
            .as_ref()
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let keys: Vec<String> = parsed
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        files.push(
            json!({"path": f, "exists": meta.is_ok(), "mode": format!("{mode:o}"), "keys": keys}),
        );
        if let Some(img) = parsed.get("image") {
            merged["image"] = img.clone();
        }
        let parsed_any: Value = serde_yaml::from_str(&text).unwrap_or(Value::Null);
        merge(&mut config, parsed_any);
        if let Err(e) = meta {
            return Reply::err(1, format!("Error: open {f}: {e}\n"));
        }
    }
    if let Err(e) = record(
        "helm-values",
        &[name.to_string()],
        json!({"files": files, "image": merged["image"]}),
    ) {
        return Reply::err(74, format!("{e}\n"));
    }
    // pkg/action/upgrade.go prepareUpgrade (v3.17.3 and v4.1.4) and cmd upgrade's install branch.
    let last = with_state(|s| {
        let r = &s.0["releases"][name];
        (!r.is_null()).then(|| r["status"].as_str().unwrap_or_default().to_string())
    });
    let install = match last.as_deref() {
        None if !a.on("--install") => {
            // Releases.Last -> ErrReleaseNotFound -> NewErrNoDeployedReleases.
            return Reply::err(
                1,
                format!("Error: UPGRADE FAILED: \"{name}\" has no deployed releases\n"),
            );
        }
        None => true,
        Some(st) if st.starts_with("pending-") => {
            // errPending (pkg/action/action.go).
            return Reply::err(1, "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress\n");
        }
        Some("deployed" | "failed" | "superseded") => false,
        Some(_) => {
            // `uninstalling` (an uninstall that was cut short) has no deployed revision and is neither
            // failed nor superseded: Releases.Deployed -> "has no deployed releases".
            return Reply::err(
                1,
                format!("Error: UPGRADE FAILED: \"{name}\" has no deployed releases\n"),
            );
        }
    };
    let mut rendered_manifests = None;
    if std::env::var_os(REAL_HELM_ENV).is_some() {
        let mut t = vec![
            "template".to_string(),
            name.to_string(),
            chart.to_string(),
            "--namespace".into(),
            ns.clone(),
        ];
        for f in values_files(a) {
            t.push("-f".into());
            t.push(f);
        }
        let r = delegate(&t);
        if r.code != 0 {
            let prefix = if install { "" } else { "UPGRADE FAILED: " };
            return Reply::err(
                1,
                format!("Error: {prefix}{}", r.stderr.trim_start_matches("Error: ")),
            );
        }
        // The Secrets the real helm rendered, decoded: tests read what the release's Secret holds.
        let secrets = rendered_secrets(&r.stdout);
        let objects = rendered_objects(&r.stdout);
        with_state(|s| {
            s.0["rendered_secrets"][name] = secrets;
            s.apply(&ns, name, objects);
        });
        rendered_manifests = Some(r.stdout);
    }
    let mut chart_values: Value = std::fs::read_to_string(chart_dir.join("values.yaml"))
        .ok()
        .and_then(|t| serde_yaml::from_str(&t).ok())
        .unwrap_or(Value::Null);
    merge(&mut chart_values, config.clone());
    let services = services_from(rendered_manifests.as_deref(), &chart_values);
    let mut out = String::new();
    if install {
        // cmd upgrade (Helm 3 and 4): printed before the install runs, table output only.
        out.push_str(&format!(
            "Release \"{name}\" does not exist. Installing it now.\n"
        ));
    }
    let pods = with_state(|s| s.str("pods"));
    let rev = with_state(|s| {
        let r = &mut s.0["releases"][name];
        let rev = r["revision"].as_u64().unwrap_or(0) + 1;
        let status = if install {
            "pending-install"
        } else {
            "pending-upgrade"
        };
        let entry = json!({"revision": rev, "status": status, "chart": "chart-0.1.0", "app_version": "0.1.0",
            "description": if install {"Initial install underway"} else {"Preparing upgrade"},
            "image": merged["image"], "config": config, "pods": pods, "services": services});
        let mut hist = r["history"].as_array().cloned().unwrap_or_default();
        hist.push(entry);
        *r = json!({"revision": rev, "status": status, "namespace": ns, "image": merged["image"], "config": config,
            "history": hist, "pods": pods, "services": services});
        rev
    });
    let ready = !wait || pods == "ready";
    if wait_for(ready, timeout(a), true) {
        let rev_no = rev;
        with_state(|s| {
            let r = &mut s.0["releases"][name];
            for h in r["history"].as_array_mut().into_iter().flatten() {
                if h["status"] == "deployed" {
                    h["status"] = json!("superseded");
                }
                if h["revision"] == rev_no {
                    h["status"] = json!("deployed");
                    h["description"] = json!(if install {
                        "Install complete"
                    } else {
                        "Upgrade complete"
                    });
                }
            }
            r["status"] = json!("deployed");
        });
        if !install {
            out.push_str(&format!(
                "Release \"{name}\" has been upgraded. Happy Helming!\n"
            ));
        }
        out.push_str(&format!(
            "NAME: {name}\nNAMESPACE: {ns}\nSTATUS: deployed\nREVISION: {rev}\n"
        ));
        return Reply {
            code: 0,
            stdout: out,
            stderr: String::new(),
        };
    }
    let err = if CANCELLED.load(Ordering::SeqCst) {
        print_now(&format!("{out}Release {name} has been cancelled.\n"));
        out.clear();
        "context canceled".to_string()
    } else {
        wait_error(m, &ns, name)
    };
    let reply = fail_release(m, name, &ns, rev, install, atomic, &err, timeout(a));
    Reply {
        code: reply.code,
        stdout: out + &reply.stdout,
        stderr: reply.stderr,
    }
}

/// Writes to stdout now (what helm prints before it goes on, so a later kill does not lose it).
fn print_now(s: &str) {
    use std::io::Write;
    let mut o = std::io::stdout();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// pkg/action/upgrade.go failRelease / install.go failRelease: the revision is marked failed; with
/// `--atomic` (`--rollback-on-failure` in Helm 4) an upgrade rolls back to the last deployed or superseded
/// revision and waits for it (Wait = true, the upgrade's timeout), a first install is uninstalled.
#[allow(clippy::too_many_arguments)]
fn fail_release(
    m: u32,
    name: &str,
    ns: &str,
    rev: u64,
    install: bool,
    atomic: bool,
    err: &str,
    limit: Duration,
) -> Reply {
    let how = if m >= 4 {
        "rollback-on-failure"
    } else {
        "atomic"
    };
    with_state(|s| {
        let r = &mut s.0["releases"][name];
        r["status"] = json!("failed");
        for h in r["history"].as_array_mut().into_iter().flatten() {
            if h["revision"] == rev {
                h["status"] = json!("failed");
                h["description"] = json!(if install {
                    format!("Release \"{name}\" failed: {err}")
                } else {
                    format!("Upgrade \"{name}\" failed: {err}")
                });
            }
        }
    });
    let prefix = if install { "" } else { "UPGRADE FAILED: " };
    if !atomic {
        return Reply::err(1, format!("Error: {prefix}{err}\n"));
    }
    let took = Duration::from_millis(with_state(|s| {
        s.0["helm_rollback_ms"].as_u64().unwrap_or(0)
    }));
    if install {
        // Uninstall.Run: the release is `uninstalling` until its resources are gone.
        with_state(|s| s.0["releases"][name]["status"] = json!("uninstalling"));
        std::thread::sleep(took);
        with_state(|s| {
            if let Some(m) = s.0["releases"].as_object_mut() {
                m.remove(name);
            }
            s.uninstall(ns, name);
        });
        crate::note(
            "helm-own-rollback-done",
            &[name.to_string()],
            json!({"uninstalled": true}),
        );
        return Reply::err(1, format!("Error: release {name} failed, and has been uninstalled due to {how} being set: {err}\n"));
    }
    let target = with_state(|s| {
        s.0["releases"][name]["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h["status"] == "deployed" || h["status"] == "superseded")
            .filter_map(|h| h["revision"].as_u64())
            .max()
    });
    let Some(target) = target else {
        return Reply::err(1, format!("Error: {prefix}unable to find a previously successful release when attempting to rollback. original upgrade error: {err}\n"));
    };
    match do_rollback(m, name, ns, target, true, limit, took) {
        Ok(()) => {
            crate::note("helm-own-rollback-done", &[name.to_string()], json!({"to": target}));
            Reply::err(1, format!("Error: {prefix}release {name} failed, and has been rolled back due to {how} being set: {err}\n"))
        }
        Err(rerr) => Reply::err(1, format!("Error: {prefix}an error occurred while rolling back the release. original upgrade error: {err}: {rerr}\n")),
    }
}

/// pkg/action/rollback.go (v3.17.3, v4.1.4): a new revision `pending-rollback` "Rollback to N" with the
/// target's chart and values; with a wait, it becomes `failed` ("Release %q failed: %s") when the pods do
/// not get ready in time, else `deployed`, superseding the others.
fn do_rollback(
    m: u32,
    name: &str,
    ns: &str,
    target: u64,
    wait: bool,
    limit: Duration,
    took: Duration,
) -> Result<(), String> {
    let (new_rev, pods) = with_state(|s| {
        let override_pods = s.0["rollback_pods"].as_str().map(str::to_string);
        let r = &mut s.0["releases"][name];
        let new_rev = r["revision"].as_u64().unwrap_or(0) + 1;
        let src = r["history"]
            .as_array()
            .and_then(|h| h.iter().find(|x| x["revision"] == target).cloned())
            .unwrap_or(Value::Null);
        let pods = override_pods
            .or_else(|| src["pods"].as_str().map(str::to_string))
            .unwrap_or_else(|| "ready".into());
        let mut entry = src.clone();
        entry["revision"] = json!(new_rev);
        entry["status"] = json!("pending-rollback");
        entry["description"] = json!(format!("Rollback to {target}"));
        entry["pods"] = json!(pods);
        if let Some(h) = r["history"].as_array_mut() {
            h.push(entry);
        }
        r["revision"] = json!(new_rev);
        r["status"] = json!("pending-rollback");
        r["pods"] = json!(pods);
        r["image"] = src["image"].clone();
        r["config"] = src["config"].clone();
        r["services"] = src["services"].clone();
        (new_rev, pods)
    });
    std::thread::sleep(took);
    let ok = !wait || wait_for(pods == "ready", limit.saturating_sub(took), false);
    let err = wait_error(m, ns, name);
    with_state(|s| {
        let r = &mut s.0["releases"][name];
        for h in r["history"].as_array_mut().into_iter().flatten() {
            if h["revision"] == new_rev {
                if ok {
                    h["status"] = json!("deployed");
                } else {
                    h["status"] = json!("failed");
                    h["description"] = json!(format!("Release \"{name}\" failed: {err}"));
                }
            } else if ok && (h["status"] == "deployed" || h["status"] == "pending-rollback") {
                h["status"] = json!("superseded");
            }
        }
        r["status"] = json!(if ok { "deployed" } else { "failed" });
    });
    if ok {
        Ok(())
    } else {
        Err(format!("release {name} failed: {err}"))
    }
}

fn rollback(a: &Parsed, m: u32, name: &str, rev: u64) -> Reply {
    let wait = match waits(a, m) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let found = with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Err(Reply::err(1, "Error: release: not found\n"));
        }
        let current = r["revision"].as_u64().unwrap_or(0);
        let target = if rev == 0 {
            current.saturating_sub(1)
        } else {
            rev
        };
        let exists = r["history"]
            .as_array()
            .is_some_and(|h| h.iter().any(|x| x["revision"] == target));
        if !exists {
            // prepareRollback: "release has no %d version".
            return Err(Reply::err(
                1,
                format!("Error: release has no {target} version\n"),
            ));
        }
        Ok((
            target,
            r["namespace"].as_str().unwrap_or("default").to_string(),
        ))
    });
    let (target, ns) = match found {
        Ok(t) => t,
        Err(r) => return r,
    };
    match do_rollback(m, name, &ns, target, wait, timeout(a), Duration::ZERO) {
        Ok(()) => Reply::ok("Rollback was a success! Happy Helming!\n"),
        Err(e) => Reply::err(1, format!("Error: {e}\n")),
    }
}

fn uninstall(names: &[&str]) -> Reply {
    let mut out = String::new();
    for name in names {
        // pkg/action/uninstall.go (v3.17.3): the release is marked `uninstalling` and stored before its
        // resources are deleted; when deleting fails, it stays so ("failed to delete release: %s").
        let fails = with_state(|s| {
            let fails = s.0["uninstall_fails"]
                .as_array()
                .is_some_and(|f| f.iter().any(|r| r == *name));
            if fails && !s.0["releases"][*name].is_null() {
                s.0["releases"][*name]["status"] = json!("uninstalling");
            }
            fails && !s.0["releases"][*name].is_null()
        });
        if fails {
            return Reply {
                code: 1,
                stdout: out,
                stderr: format!("Error: failed to delete release: {name}\n"),
            };
        }
        let gone = with_state(|s| {
            let rel = s.0["releases"]
                .as_object_mut()
                .and_then(|m| m.remove(*name))?;
            // pkg/action/uninstall.go: everything the release made goes, except objects annotated
            // `helm.sh/resource-policy: keep` (listed as kept); claims a StatefulSet made were never the
            // release's. An `uninstalling` release (an earlier uninstall cut short) is uninstalled the same way.
            let ns = rel["namespace"].as_str().unwrap_or("default").to_string();
            Some(s.uninstall(&ns, name))
        });
        let Some(kept) = gone else {
            return Reply {
                code: 1,
                stdout: out,
                stderr: format!(
                    "Error: uninstall: Release not loaded: {name}: release: not found\n"
                ),
            };
        };
        if !kept.is_empty() {
            out.push_str("These resources were kept due to the resource policy:\n");
            for k in kept {
                out.push_str(&format!("[{k}]\n"));
            }
            out.push('\n');
        }
        out.push_str(&format!("release \"{name}\" uninstalled\n"));
    }
    Reply::ok(out)
}

/// Deep-merges `over` into `base` like helm merges values files: maps merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) if !o.is_null() => *b = o,
        _ => {}
    }
}

/// `(kind, name, labels, annotations)` of every object of a rendered manifest stream, plus the claims each
/// StatefulSet's volumeClaimTemplates make (`<template>-<statefulset>-<ordinal>`, owned by no release).
fn rendered_objects(manifests: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(manifests) {
        let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if !v["kind"].is_string() || !v["metadata"]["annotations"]["helm.sh/hook"].is_null() {
            continue;
        }
        out.push(json!({"kind": v["kind"], "name": v["metadata"]["name"], "labels": v["metadata"]["labels"], "annotations": v["metadata"]["annotations"], "owned": true}));
        if v["kind"] == "StatefulSet" {
            let replicas = v["spec"]["replicas"].as_u64().unwrap_or(1);
            let sts = v["metadata"]["name"].as_str().unwrap_or_default();
            for t in v["spec"]["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for i in 0..replicas {
                    let tpl = t["metadata"]["name"].as_str().unwrap_or_default();
                    out.push(json!({"kind": "PersistentVolumeClaim", "name": format!("{tpl}-{sts}-{i}"), "labels": t["metadata"]["labels"], "annotations": {}, "owned": false}));
                }
            }
        }
    }
    out
}

/// `name -> {KEY: value}` of every Secret in a rendered manifest stream (`data` base64-decoded).
fn rendered_secrets(manifests: &str) -> Value {
    use base64::Engine as _;
    let mut out = serde_json::Map::new();
    for doc in serde_yaml::Deserializer::from_str(manifests) {
        let Ok(v) = <Value as serde::Deserialize>::deserialize(doc) else {
            continue;
        };
        if v["kind"] != "Secret" {
            continue;
        }
        let mut keys = serde_json::Map::new();
        for (k, val) in v["data"].as_object().into_iter().flatten() {
            let decoded = val
                .as_str()
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            keys.insert(k.clone(), json!(decoded));
        }
        for (k, val) in v["stringData"].as_object().into_iter().flatten() {
            keys.insert(k.clone(), val.clone());
        }
        if let Some(name) = v["metadata"]["name"].as_str() {
            out.insert(name.to_string(), Value::Object(keys));
        }
    }
    Value::Object(out)
}

/// The `-o` format: table (the default), json or yaml (pkg/cli/output).
fn format(a: &Parsed) -> Result<String, Reply> {
    let f = a.get("--output").unwrap_or_else(|| "table".into());
    match f.as_str() {
        "table" | "json" | "yaml" => Ok(f),
        other => Err(Reply::err(1, format!("Error: invalid argument \"{other}\" for \"-o, --output\" flag: invalid format type\n"))),
    }
}

fn status(a: &Parsed, name: &str) -> Reply {
    let f = match format(a) {
        Ok(f) => f,
        Err(r) => return r,
    };
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let desc = r["history"]
            .as_array()
            .and_then(|h| h.last())
            .map(|h| h["description"].clone())
            .unwrap_or(json!(""));
        if f == "json" {
            let v = json!({"name": name, "info": {"first_deployed": "2026-01-01T00:00:00Z", "last_deployed": "2026-01-01T00:00:00Z", "deleted": "", "description": desc, "status": r["status"]}, "version": r["revision"], "namespace": r["namespace"]});
            return Reply::ok(format!("{v}\n"));
        }
        // The table form (pkg/cmd/status.go statusPrinter).
        Reply::ok(format!(
            "NAME: {name}\nLAST DEPLOYED: Thu Jan  1 00:00:00 2026\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}\nTEST SUITE: None\n",
            r["namespace"].as_str().unwrap_or_default(),
            r["status"].as_str().unwrap_or_default(),
            r["revision"]
        ))
    })
}

/// `helm list -o json` (pkg/cmd/list.go): the releases of the namespace, revision as a string, chart as
/// `name-version`.
fn list(a: &Parsed) -> Reply {
    let f = match format(a) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ns = a.get("--namespace").unwrap_or_else(|| "default".into());
    let rows: Vec<Value> = with_state(|s| {
        s.releases()
            .into_iter()
            .filter(|(_, r)| r["namespace"] == ns.as_str())
            .map(|(name, r)| json!({"name": name, "namespace": ns, "revision": r["revision"].to_string(), "updated": "2026-01-01 00:00:00.000000000 +0000 UTC", "status": r["status"], "chart": format!("{}-0.2.0", name.trim_start_matches("todo-")), "app_version": "0.1.0"}))
            .collect()
    });
    if f == "json" {
        return Reply::ok(format!("{}\n", Value::Array(rows)));
    }
    let mut t = "NAME\tNAMESPACE\tREVISION\tSTATUS\tCHART\n".to_string();
    for r in rows {
        t.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            r["name"].as_str().unwrap_or(""),
            ns,
            r["revision"].as_str().unwrap_or(""),
            r["status"].as_str().unwrap_or(""),
            r["chart"].as_str().unwrap_or("")
        ));
    }
    Reply::ok(t)
}

fn get_values(a: &Parsed, name: &str) -> Reply {
    let f = match format(a) {
        Ok(f) => f,
        Err(r) => return r,
    };
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        // `helm get values R -o json` (pkg/cmd/get_values.go): the user-supplied values of the current
        // revision as JSON, `null` when there are none; the table form is a heading and YAML.
        if f == "json" {
            return Reply::ok(format!("{}\n", r["config"]));
        }
        let yaml = if r["config"].is_null() {
            "null\n".to_string()
        } else {
            serde_yaml::to_string(&r["config"]).unwrap_or_default()
        };
        Reply::ok(format!("USER-SUPPLIED VALUES:\n{yaml}"))
    })
}

fn history(a: &Parsed, name: &str) -> Reply {
    let f = match format(a) {
        Ok(f) => f,
        Err(r) => return r,
    };
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let rows: Vec<Value> = r["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|x| {
                // pkg/release/util + cmd history.go releaseInfo: every field a string (possibly empty).
                let text = |k: &str| x[k].as_str().unwrap_or_default().to_string();
                json!({"revision": x["revision"], "updated": "2026-01-01T00:00:00Z", "status": text("status"), "chart": text("chart"), "app_version": text("app_version"), "description": text("description")})
            })
            .collect();
        if f == "json" {
            return Reply::ok(format!("{}\n", Value::Array(rows)));
        }
        let mut t = "REVISION\tUPDATED                 \tSTATUS    \tCHART      \tAPP VERSION\tDESCRIPTION\n".to_string();
        for x in rows {
            t.push_str(&format!(
                "{}\tThu Jan  1 00:00:00 2026\t{}\t{}\t{}\t{}\n",
                x["revision"],
                x["status"].as_str().unwrap_or_default(),
                x["chart"].as_str().unwrap_or_default(),
                x["app_version"].as_str().unwrap_or_default(),
                x["description"].as_str().unwrap_or_default()
            ));
        }
        Reply::ok(t)
    })
}

/// `helm test R` (pkg/cmd/release_testing.go and its statusPrinter): runs the chart's test hook pods; the
/// state's `helm_test_fails` lists releases whose test pod fails (`Error: 1 error occurred:\n\t* pod ... failed`).
fn helm_test(name: &str) -> Reply {
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let fails = s.0["helm_test_fails"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == name));
        if fails {
            return Reply::err(
                1,
                format!("Error: 1 error occurred:\n\t* pod {name}-test-health failed\n"),
            );
        }
        Reply::ok(format!(
            "NAME: {name}\nLAST DEPLOYED: Thu Jan  1 00:00:00 2026\nNAMESPACE: {}\nSTATUS: {}\nREVISION: {}\nTEST SUITE:     {name}-test-health\nLast Started:   Thu Jan  1 00:00:01 2026\nLast Completed: Thu Jan  1 00:00:04 2026\nPhase:          Succeeded\n",
            r["namespace"].as_str().unwrap_or_default(),
            r["status"].as_str().unwrap_or_default(),
            r["revision"]
        ))
    })
}
