//! helm double: `version` per the configured major, `upgrade --install` with Helm 3 or Helm 4 flag rules,
//! status/history JSON, rollback, uninstall; `template`/`lint` (and a render check inside `upgrade`) run the
//! real helm binary named by DOUBLES_REAL_HELM, so the real charts are rendered with the values the xtask wrote.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::{flag, positionals, record, with_state, Reply, REAL_HELM_ENV};

const VALUE_FLAGS: [&str; 9] = [
    "--namespace",
    "-n",
    "--kube-context",
    "-f",
    "--values",
    "--timeout",
    "-o",
    "--output",
    "--template",
];

fn major() -> u32 {
    with_state(|s| s.str("helm_version"))
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3)
}

/// Answers one helm call.
pub fn run(argv: &[String]) -> Reply {
    let pos = positionals(argv, &VALUE_FLAGS);
    let words: Vec<&str> = pos.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version", ..] => version(argv),
        ["template", ..] | ["lint", ..] => delegate(argv),
        _ if flag(argv, &["--kube-context"]).is_none() => Reply::err(
            1,
            "Error: the test double refuses cluster calls without --kube-context\n",
        ),
        ["upgrade", name, chart, ..] if argv.iter().any(|a| a == "--install" || a == "-i") => {
            upgrade(argv, name, chart)
        }
        ["status", name, ..] => status(name),
        // `helm get values R -o json` (pkg/cmd/get_values.go): the user-supplied values of the current
        // revision as JSON, `null` when there are none.
        ["get", "values", name, ..] => with_state(|s| {
            let r = &s.0["releases"][*name];
            if r.is_null() {
                return Reply::err(1, "Error: release: not found\n");
            }
            Reply::ok(format!("{}\n", r["config"]))
        }),
        ["history", name, ..] => history(name),
        ["rollback", name, rev, ..] => rollback(name, rev),
        ["uninstall", name, ..] => with_state(|s| {
            match s.0["releases"]
                .as_object_mut()
                .and_then(|m| m.remove(*name))
            {
                Some(rel) => {
                    // pkg/action/uninstall.go: everything the release made goes, except objects annotated
                    // `helm.sh/resource-policy: keep` (listed as kept); claims a StatefulSet made were never
                    // the release's.
                    let ns = rel["namespace"].as_str().unwrap_or("default").to_string();
                    let kept = s.uninstall(&ns, name);
                    let mut out = String::new();
                    if !kept.is_empty() {
                        out.push_str("These resources were kept due to the resource policy:\n");
                        for k in kept {
                            out.push_str(&format!("[{k}]\n"));
                        }
                        out.push('\n');
                    }
                    out.push_str(&format!("release \"{name}\" uninstalled\n"));
                    Reply::ok(out)
                }
                None => Reply::err(
                    1,
                    format!("Error: uninstall: Release not loaded: {name}: release: not found\n"),
                ),
            }
        }),
        _ => Reply::err(1, format!("Error: unknown command {pos:?} for \"helm\"\n")),
    }
}

fn version(argv: &[String]) -> Reply {
    let v = with_state(|s| s.str("helm_version"));
    if let Some(t) = flag(argv, &["--template"]) {
        // `--template` output has no trailing newline.
        return Reply::ok(t.replace("{{.Version}}", &v));
    }
    if argv.iter().any(|a| a == "--short") {
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

fn values_files(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        if a == "-f" || a == "--values" {
            if let Some(v) = argv.get(i + 1) {
                out.push(v.clone());
            }
        } else if let Some(v) = a.strip_prefix("--values=") {
            out.push(v.to_string());
        }
    }
    out
}

fn upgrade(argv: &[String], name: &str, chart: &str) -> Reply {
    let m = major();
    let mut warnings = String::new();
    let has = |f: &str| {
        argv.iter()
            .any(|a| a == f || a.starts_with(&format!("{f}=")))
    };
    if m < 4 {
        if has("--rollback-on-failure") {
            return Reply::err(1, "Error: unknown flag: --rollback-on-failure\n");
        }
        if let Some(w) = argv.iter().find_map(|a| a.strip_prefix("--wait=")) {
            if w != "true" && w != "false" {
                return Reply::err(1, format!("Error: invalid argument \"{w}\" for \"--wait\" flag: strconv.ParseBool: parsing \"{w}\": invalid syntax\n"));
            }
        }
    } else {
        if has("--atomic") {
            warnings
                .push_str("Flag --atomic has been deprecated, use --rollback-on-failure instead\n");
        }
        if let Some(w) = argv.iter().find_map(|a| a.strip_prefix("--wait=")) {
            if !matches!(w, "watcher" | "hookOnly" | "legacy" | "true" | "false") {
                return Reply::err(1, format!("Error: invalid wait input \"{w}\". Valid inputs are watcher, hookOnly, and legacy\n"));
            }
        }
    }
    if !std::path::Path::new(chart).join("Chart.yaml").is_file() {
        return Reply::err(1, format!("Error: path \"{chart}\" not found\n"));
    }
    let ns = flag(argv, &["--namespace", "-n"]).unwrap_or_else(|| "default".into());
    // What the xtask handed over: file modes and the image settings (never the secret values themselves).
    // `config` is what helm stores as the revision's user-supplied values: every file merged, later wins.
    let mut files = Vec::new();
    let mut merged = json!({});
    let mut config = Value::Null;
    for f in values_files(argv) {
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
    record(
        "helm-values",
        &[name.to_string()],
        json!({"files": files, "image": merged["image"]}),
    );
    if std::env::var_os(REAL_HELM_ENV).is_some() {
        let mut t = vec![
            "template".to_string(),
            name.to_string(),
            chart.to_string(),
            "--namespace".into(),
            ns.clone(),
        ];
        for f in values_files(argv) {
            t.push("-f".into());
            t.push(f);
        }
        let r = delegate(&t);
        if r.code == 0 {
            // The Secrets the real helm rendered, decoded: tests read what the release's Secret holds.
            let secrets = rendered_secrets(&r.stdout);
            let objects = rendered_objects(&r.stdout);
            with_state(|s| {
                s.0["rendered_secrets"][name] = secrets;
                s.apply(&ns, name, objects);
            });
        }
        if r.code != 0 {
            return Reply::err(
                1,
                format!(
                    "Error: UPGRADE FAILED: {}",
                    r.stderr.trim_start_matches("Error: ")
                ),
            );
        }
    }
    let scenario = with_state(|s| s.str("pods"));
    let existed = with_state(|s| {
        let existed = !s.0["releases"][name].is_null();
        let rev = s.0["releases"][name]["revision"].as_u64().unwrap_or(0) + 1;
        let mut hist = s.0["releases"][name]["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for h in hist.iter_mut() {
            if h["status"] == "deployed" {
                h["status"] = json!("superseded");
            }
        }
        let status = if scenario == "crashloop" {
            if existed {
                "pending-upgrade"
            } else {
                "pending-install"
            }
        } else {
            "deployed"
        };
        hist.push(json!({"revision": rev, "status": status, "chart": "chart-0.1.0", "app_version": "0.1.0", "description": if existed {"Upgrade complete"} else {"Install complete"}}));
        s.0["releases"][name] = json!({"revision": rev, "status": status, "namespace": ns, "image": merged["image"], "config": config, "history": hist, "pods": if scenario == "crashloop" {"crashloop"} else {"ready"}});
        existed
    });
    if scenario == "crashloop" {
        // helm --wait keeps waiting for pods that never become ready, up to --timeout.
        let secs = flag(argv, &["--timeout"])
            .and_then(|t| t.trim_end_matches('s').parse::<u64>().ok())
            .unwrap_or(300);
        std::thread::sleep(Duration::from_secs(secs));
        let how = if m >= 4 {
            "rollback-on-failure"
        } else {
            "atomic"
        };
        return Reply::err(1, format!("Error: UPGRADE FAILED: release {name} failed, and has been rolled back due to {how} being set: context deadline exceeded\n"));
    }
    let head = if existed {
        format!("Release \"{name}\" has been upgraded. Happy Helming!\n")
    } else {
        format!("Release \"{name}\" does not exist. Installing it now.\n")
    };
    let rev = with_state(|s| s.0["releases"][name]["revision"].as_u64().unwrap_or(1));
    Reply {
        code: 0,
        stdout: format!("{head}NAME: {name}\nNAMESPACE: {ns}\nSTATUS: deployed\nREVISION: {rev}\n"),
        stderr: warnings,
    }
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

fn status(name: &str) -> Reply {
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let v = json!({"name": name, "info": {"first_deployed": "2026-01-01T00:00:00Z", "last_deployed": "2026-01-01T00:00:00Z", "deleted": "", "description": "Upgrade complete", "status": r["status"]}, "version": r["revision"], "namespace": r["namespace"]});
        Reply::ok(format!("{v}\n"))
    })
}

fn history(name: &str) -> Reply {
    with_state(|s| {
        let r = &s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let h: Vec<Value> = r["history"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut x| {
                x["updated"] = json!("2026-01-01T00:00:00Z");
                x
            })
            .collect();
        Reply::ok(format!("{}\n", Value::Array(h)))
    })
}

fn rollback(name: &str, rev: &str) -> Reply {
    with_state(|s| {
        let r = &mut s.0["releases"][name];
        if r.is_null() {
            return Reply::err(1, "Error: release: not found\n");
        }
        let new_rev = r["revision"].as_u64().unwrap_or(0) + 1;
        if let Some(h) = r["history"].as_array_mut() {
            for x in h.iter_mut() {
                x["status"] = json!("superseded");
            }
            h.push(json!({"revision": new_rev, "status": "deployed", "chart": "chart-0.1.0", "app_version": "0.1.0", "description": format!("Rollback to {rev}")}));
        }
        r["revision"] = json!(new_rev);
        r["status"] = json!("deployed");
        r["pods"] = json!("ready");
        Reply::ok("Rollback was a success! Happy Helming!\n")
    })
}
