//! `kubectl`: reads objects from the applied releases and the supervisor's pods, in kubectl's JSON shapes.

use super::{go_duration, Args};
use crate::printer::{kube_list, kubectl_json};
use crate::state::{self, ContainerState, Desired, HostState, Observed};
use crate::{engine, realise, view};
use anyhow::{bail, Context, Result};
use chrono::Utc;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs one `kubectl` invocation.
pub fn run(argv: &[String]) -> i32 {
    // The real kubectl beside the real helm: 1.35 with helm 4, 1.31 with helm 3 (.ci/fetch-tools.sh).
    let minor = if super::helm::real_helm_major() >= 4 {
        35
    } else {
        31
    };
    let a = match Args::parse(tool_doubles::spec::kubectl(minor), argv) {
        Ok(a) => a,
        Err(r) => return super::refuse(r),
    };
    match dispatch(&a, argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    }
}

fn real_kubectl() -> PathBuf {
    super::helm::real_helm().with_file_name("kubectl")
}

fn namespace(a: &Args) -> String {
    a.get(&["-n", "--namespace"])
        .unwrap_or_else(|| "default".into())
}

fn connect(a: &Args) -> Result<(PathBuf, Desired)> {
    let dir = state::state_dir()?;
    let d = state::read_desired(&dir)?;
    let ctx = a.get(&["--context"]);
    match d.profile_for_context(ctx.as_deref()) {
        Some((_, p)) if p.host == HostState::Running => Ok((dir, d)),
        Some(_) => bail!("The connection to the server 192.168.49.2:8443 was refused - did you specify the right host or port?"),
        None => match ctx {
            Some(c) => bail!("error: context \"{c}\" does not exist"),
            None => bail!("error: current-context is not set"),
        },
    }
}

fn dispatch(a: &Args, argv: &[String]) -> Result<i32> {
    let words: Vec<&str> = a.pos.iter().map(String::as_str).collect();
    if a.has(&["--local"]) || a.get(&["--dry-run"]).as_deref() == Some("client") {
        // Client-side only: the real kubectl answers without a cluster.
        return Ok(std::process::Command::new(real_kubectl())
            .args(argv)
            .status()
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(1));
    }
    if words.first() == Some(&"get") && a.get(&["--raw"]).is_some() {
        return raw_get(a);
    }
    match words.as_slice() {
        ["version", ..] if a.has(&["--client"]) => Ok(std::process::Command::new(real_kubectl())
            .args(argv)
            .status()
            .ok()
            .and_then(|s| s.code())
            .unwrap_or(1)),
        ["version", ..] => {
            let (_, d) = connect(a)?;
            let k8s = d
                .profile_for_context(a.get(&["--context"]).as_deref())
                .map(|(_, p)| p.kubernetes_version.clone())
                .unwrap_or_default();
            let out = std::process::Command::new(real_kubectl())
                .args(["version", "--client", "-o", "json"])
                .output()?;
            let mut v: Value =
                serde_json::from_slice(&out.stdout).context("reading kubectl's client version")?;
            let minor = k8s
                .trim_start_matches('v')
                .split('.')
                .nth(1)
                .unwrap_or("33")
                .to_string();
            v["serverVersion"] =
                json!({"major": "1", "minor": minor, "gitVersion": k8s, "platform": "linux/amd64"});
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        ["config", "current-context"] => {
            let d = state::read_desired(&state::state_dir()?)?;
            match d.current_context {
                Some(c) => println!("{c}"),
                None => bail!("error: current-context is not set"),
            }
            Ok(0)
        }
        ["config", "get-contexts", rest @ ..] => {
            let d = state::read_desired(&state::state_dir()?)?;
            let names: Vec<&String> = d
                .profiles
                .keys()
                .filter(|n| rest.is_empty() || rest.contains(&n.as_str()))
                .collect();
            if !rest.is_empty() && names.is_empty() {
                bail!("error: context {} not found", rest[0]);
            }
            for n in names {
                if a.get(&["-o", "--output"]).as_deref() == Some("name") {
                    println!("{n}");
                } else {
                    println!(
                        "{}   {n}   {n}   {n}   default",
                        if d.current_context.as_deref() == Some(n) {
                            "*"
                        } else {
                            " "
                        }
                    );
                }
            }
            Ok(0)
        }
        ["config", "use-context", name] => {
            let n = name.to_string();
            state::update_desired(&state::state_dir()?, |d| {
                if !d.profiles.contains_key(&n) {
                    bail!("error: no context exists with the name: \"{n}\"");
                }
                d.current_context = Some(n.clone());
                Ok(())
            })?;
            println!("Switched to context \"{name}\".");
            Ok(0)
        }
        ["cluster-info", ..] => {
            connect(a)?;
            println!("Kubernetes control plane is running at https://192.168.49.2:8443\nCoreDNS is running at https://192.168.49.2:8443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy");
            Ok(0)
        }
        ["get", what, names @ ..] => get(a, what, names),
        ["create", "namespace" | "ns", name, ..] => {
            let (dir, _) = connect(a)?;
            let n = name.to_string();
            state::update_desired(&dir, |d| {
                if d.namespaces.contains_key(&n) {
                    bail!("Error from server (AlreadyExists): namespaces \"{n}\" already exists");
                }
                d.namespaces.insert(
                    n.clone(),
                    state::Namespace {
                        labels: Default::default(),
                        created: Utc::now(),
                        uid: state::new_uid(),
                    },
                );
                Ok(())
            })?;
            println!("namespace/{name} created");
            Ok(0)
        }
        ["label", "namespace" | "ns" | "namespaces", name, pairs @ ..] => {
            let (dir, _) = connect(a)?;
            let n = name.to_string();
            let overwrite = a.has(&["--overwrite"]);
            state::update_desired(&dir, |d| {
                let ns = d.namespaces.get_mut(&n).with_context(|| {
                    format!("Error from server (NotFound): namespaces \"{n}\" not found")
                })?;
                for p in pairs {
                    if let Some(k) = p.strip_suffix('-') {
                        ns.labels.remove(k);
                    } else if let Some((k, v)) = p.split_once('=') {
                        if ns.labels.get(k).is_some_and(|old| old != v) && !overwrite {
                            bail!(
                                "error: '{k}' already has a value ({}), and --overwrite is false",
                                ns.labels[k]
                            );
                        }
                        ns.labels.insert(k.into(), v.into());
                    }
                }
                Ok(())
            })?;
            println!("namespace/{name} labeled");
            Ok(0)
        }
        ["delete", kind, names @ ..] => delete(a, kind, names),
        ["scale", target, ..] => {
            let (dir, d) = connect(a)?;
            let ns = namespace(a);
            let (kind, name) = split_target(target)?;
            let n: u32 = a
                .get(&["--replicas"])
                .and_then(|r| r.parse().ok())
                .context("error: --replicas=COUNT is required")?;
            let objs = view::objects_by_namespace(&d)?;
            let w = objs.get(&ns).and_then(|o| {
                o.workloads
                    .iter()
                    .find(|w| w.kind == kind && w.meta.name == name)
            });
            if w.is_none() {
                bail!(
                    "Error from server (NotFound): {}.apps \"{name}\" not found",
                    kind.to_lowercase() + "s"
                );
            }
            state::update_desired(&dir, |d| {
                d.scale.insert(format!("{ns}/{kind}/{name}"), n);
                d.generation += 1;
                Ok(())
            })?;
            crate::supervisor::ensure_running(&dir)?;
            println!("{}.apps/{name} scaled", kind.to_lowercase());
            Ok(0)
        }
        ["rollout", "status", target, ..] => rollout_status(a, target),
        ["logs", target, ..] => logs(a, target),
        ["exec", target, rest @ ..] => {
            let (dir, _) = connect(a)?;
            let ns = namespace(a);
            let obs = state::read_observed(&dir)?;
            let pod = pick_pod(&dir, &obs, &ns, target, true)?;
            let owner = state::state_id(&dir);
            let mut cmd = engine::docker();
            cmd.arg("exec");
            if a.has(&["-i", "--stdin"]) {
                cmd.arg("-i").stdin(std::process::Stdio::inherit());
            }
            cmd.arg(realise::container_name(&owner, &ns, &pod))
                .args(rest);
            Ok(cmd.status()?.code().unwrap_or(1))
        }
        ["port-forward", target, ports @ ..] => super::portforward::run(a, target, ports),
        ["wait", ..] => wait(a),
        other => {
            eprintln!("error: unknown command {:?} for \"kubectl\" (not implemented by the cluster double)", other.first().unwrap_or(&""));
            Ok(1)
        }
    }
}

/// `deploy/x`, `deployment.apps/x`, `statefulset/x` -> (Kind, name).
fn split_target(t: &str) -> Result<(String, String)> {
    let (k, n) = t.split_once('/').with_context(|| {
        format!("error: arguments in resource/name form must have a single resource and name: {t}")
    })?;
    let kind = match k.split('.').next().unwrap_or(k) {
        "deploy" | "deployment" | "deployments" => "Deployment",
        "sts" | "statefulset" | "statefulsets" => "StatefulSet",
        "svc" | "service" | "services" => "Service",
        "po" | "pod" | "pods" => "Pod",
        other => bail!("error: the server doesn't have a resource type \"{other}\""),
    };
    Ok((kind.to_string(), n.to_string()))
}

fn kind_of(word: &str) -> Option<&'static str> {
    Some(match word.split('.').next().unwrap_or(word) {
        "po" | "pod" | "pods" => "Pod",
        "deploy" | "deployment" | "deployments" => "Deployment",
        "sts" | "statefulset" | "statefulsets" => "StatefulSet",
        "svc" | "service" | "services" => "Service",
        "ep" | "endpoints" => "Endpoints",
        "ev" | "event" | "events" => "Event",
        "ns" | "namespace" | "namespaces" => "Namespace",
        "cm" | "configmap" | "configmaps" => "ConfigMap",
        "secret" | "secrets" => "Secret",
        "pvc" | "persistentvolumeclaim" | "persistentvolumeclaims" => "PersistentVolumeClaim",
        "rs" | "replicaset" | "replicasets" => "ReplicaSet",
        "pdb" | "poddisruptionbudget" | "poddisruptionbudgets" => "PodDisruptionBudget",
        "sa" | "serviceaccount" | "serviceaccounts" => "ServiceAccount",
        "endpointslice" | "endpointslices" => "EndpointSlice",
        _ => return None,
    })
}

fn plural(kind: &str) -> String {
    match kind {
        "Endpoints" => "endpoints".into(),
        k => format!("{}s", k.to_lowercase()),
    }
}

/// Every object of a kind, as JSON, in a namespace (or all).
fn objects(kind: &str, ns: Option<&str>, d: &Desired, obs: &Observed) -> Result<Vec<Value>> {
    let objs = view::objects_by_namespace(d)?;
    let in_ns = |n: &str| ns.is_none_or(|x| x == n);
    let mut out = Vec::new();
    match kind {
        "Pod" => out.extend(
            obs.pods
                .iter()
                .filter(|p| in_ns(&p.namespace))
                .map(view::pod_json),
        ),
        "Namespace" => out.extend(d.namespaces.iter().map(|(n, v)| view::namespace_json(n, v))),
        "Event" => out.extend(
            obs.events
                .iter()
                .enumerate()
                .filter(|(_, e)| in_ns(&e.namespace))
                .map(|(i, e)| view::event_json(e, i)),
        ),
        _ => {
            for (n, o) in objs.iter().filter(|(n, _)| in_ns(n)) {
                match kind {
                    "Deployment" | "StatefulSet" => {
                        for w in o.workloads.iter().filter(|w| w.kind == kind) {
                            let mut w = w.clone();
                            if let Some(r) = d.scale.get(&format!("{n}/{}/{}", w.kind, w.meta.name))
                            {
                                w.replicas = *r;
                                w.raw["spec"]["replicas"] = Value::from(*r);
                            }
                            out.push(view::workload_json(&w, n, obs, d.generation));
                        }
                    }
                    "Service" => out.extend(o.services.iter().map(|s| view::service_json(s, n))),
                    "Endpoints" => {
                        out.extend(o.services.iter().map(|s| view::endpoints_json(s, n, obs)))
                    }
                    "EndpointSlice" => out.extend(
                        o.services
                            .iter()
                            .map(|s| view::endpoint_slice_json(s, n, obs)),
                    ),
                    "PersistentVolumeClaim" => {
                        for w in o.workloads.iter().filter(|w| w.kind == "StatefulSet") {
                            for c in &w.claim_templates {
                                for i in 0..w.replicas {
                                    let name = format!("{c}-{}-{i}", w.meta.name);
                                    out.push(view::pvc_json(&name, n, &w.raw, c));
                                }
                            }
                        }
                    }
                    "ReplicaSet" => {}
                    _ => out.extend(
                        o.raw
                            .iter()
                            .filter(|v| v.get("kind").and_then(Value::as_str) == Some(kind))
                            .cloned(),
                    ),
                }
            }
        }
    }
    Ok(out)
}

/// Label selector terms as the API server takes them (apimachinery `labels.Parse`): `k=v`, `k==v`, `k!=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, comma-separated (commas inside parentheses belong to the set).
fn selector_terms(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let (mut depth, mut cur) = (0u32, String::new());
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn labels_match(v: &Value, selector: &str) -> bool {
    let labels = v.pointer("/metadata/labels");
    let label = |k: &str| labels.and_then(|l| l.get(k.trim())).and_then(Value::as_str);
    let set = |list: &str| -> Vec<String> {
        list.trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split(',')
            .map(|x| x.trim().to_string())
            .collect()
    };
    selector_terms(selector).iter().all(|term| {
        if let Some((k, list)) = term.split_once(" notin ") {
            !label(k).is_some_and(|v| set(list).iter().any(|x| x == v))
        } else if let Some((k, list)) = term.split_once(" in ") {
            label(k).is_some_and(|v| set(list).iter().any(|x| x == v))
        } else if let Some((k, val)) = term.split_once("!=") {
            label(k) != Some(val.trim())
        } else if let Some((k, val)) = term.split_once('=') {
            label(k.trim_end_matches('=')) == Some(val.trim().trim_start_matches('='))
        } else if let Some(k) = term.strip_prefix('!') {
            label(k).is_none()
        } else {
            label(term).is_some()
        }
    })
}

fn fields_match(v: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, want, neg) = match term.split_once("!=") {
            Some((k, w)) => (k, w, true),
            None => match term.split_once('=') {
                Some((k, w)) => (k, w.trim_start_matches('='), false),
                None => return true,
            },
        };
        let ptr = format!("/{}", k.trim().replace('.', "/"));
        let got = v.pointer(&ptr).and_then(Value::as_str).unwrap_or("");
        (got == want.trim()) != neg
    })
}

/// `kubectl get --raw /api/v1/namespaces/NS/services/[scheme:]NAME[:port]/proxy/PATH`: the API server's proxy.
fn raw_get(a: &Args) -> Result<i32> {
    let (dir, d) = connect(a)?;
    let raw = a.get(&["--raw"]).unwrap_or_default();
    let parts: Vec<&str> = raw.trim_start_matches('/').splitn(7, '/').collect();
    let ["api", "v1", "namespaces", ns, "services", svc_ref, rest] = parts.as_slice() else {
        bail!("Error from server (NotFound): the server could not find the requested resource");
    };
    let path = format!(
        "/{}",
        rest.strip_prefix("proxy")
            .unwrap_or(rest)
            .trim_start_matches('/')
    );
    let segs: Vec<&str> = svc_ref.split(':').collect();
    let (name, port) = match segs.as_slice() {
        [scheme, n, p] if *scheme == "http" || *scheme == "https" => (*n, Some(*p)),
        [n, p] => (*n, Some(*p)),
        [n] => (*n, None),
        _ => bail!("Error from server (BadRequest): invalid service reference {svc_ref}"),
    };
    let objs = view::objects_by_namespace(&d)?;
    let o = objs.get(*ns).cloned().unwrap_or_default();
    let svc = o
        .services
        .iter()
        .find(|s| s.meta.name == name)
        .with_context(|| format!("Error from server (NotFound): services \"{name}\" not found"))?;
    let sp = svc
        .ports
        .iter()
        .find(|p| port.is_none_or(|want| p.name.as_deref() == Some(want) || p.port.to_string() == want))
        .with_context(|| format!("Error from server (ServiceUnavailable): no endpoints available for service \"{name}\""))?;
    let obs = state::read_observed(&dir)?;
    let pod = obs
        .pods
        .iter()
        .find(|p| &p.namespace == ns && p.ready && crate::manifest::selector_matches(&svc.selector, &p.labels) && matches!(p.state, ContainerState::Running { .. }))
        .with_context(|| format!("Error from server (ServiceUnavailable): no endpoints available for service \"{name}\""))?;
    let w = o
        .workloads
        .iter()
        .find(|w| w.kind == pod.owner_kind && w.meta.name == pod.owner_name);
    let c = w
        .and_then(|w| w.template.spec.containers.first().cloned())
        .unwrap_or_default();
    let tp = if sp.target_port.is_null() {
        Value::from(sp.port)
    } else {
        sp.target_port.clone()
    };
    let target = c.resolve_port(&tp).unwrap_or(sp.port);
    let ip = pod.ip.clone().context("pod has no IP")?;
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{target}").parse()?,
        Duration::from_secs(5),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    use std::io::{Read, Write};
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {name}.{ns}.svc\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    if (200..300).contains(&code) {
        print!("{body}");
        Ok(0)
    } else {
        eprintln!(
            "Error from server ({}): {}",
            if code == 503 {
                "ServiceUnavailable"
            } else {
                "InternalError"
            },
            body.trim()
        );
        Ok(1)
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

fn get(a: &Args, what: &str, names: &[&str]) -> Result<i32> {
    let (dir, d) = connect(a)?;
    let obs = state::read_observed(&dir)?;
    let all_ns = a.has(&["-A", "--all-namespaces"]);
    let ns = namespace(a);
    let mut items = Vec::new();
    let mut named = false;
    let mut missing = Vec::new();
    let targets: Vec<(String, Option<String>)> = if what.contains('/') {
        std::iter::once(what)
            .chain(names.iter().copied())
            .map(|t| {
                let (k, n) = t.split_once('/').unwrap_or((t, ""));
                (k.to_string(), Some(n.to_string()))
            })
            .collect()
    } else if names.is_empty() {
        what.split(',').map(|k| (k.to_string(), None)).collect()
    } else {
        names
            .iter()
            .map(|n| (what.to_string(), Some(n.to_string())))
            .collect()
    };
    for (word, name) in &targets {
        let kind = kind_of(word).with_context(|| {
            format!("error: the server doesn't have a resource type \"{word}\"")
        })?;
        if kind != "Namespace"
            && !all_ns
            && !d.namespaces.contains_key(&ns)
            && ns != "default"
            && name.is_some()
        {
            missing.push(format!(
                "Error from server (NotFound): namespaces \"{ns}\" not found"
            ));
            continue;
        }
        let scope = if all_ns || kind == "Namespace" {
            None
        } else {
            Some(ns.as_str())
        };
        let mut found = objects(kind, scope, &d, &obs)?;
        if let Some(sel) = a.get(&["-l", "--selector"]) {
            found.retain(|v| labels_match(v, &sel));
        }
        if let Some(fs) = a.get(&["--field-selector"]) {
            found.retain(|v| fields_match(v, &fs));
        }
        match name {
            Some(n) => {
                named = true;
                match found
                    .into_iter()
                    .find(|v| v.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
                {
                    Some(v) => items.push(v),
                    None => missing.push(format!(
                        "Error from server (NotFound): {} \"{n}\" not found",
                        plural(kind)
                    )),
                }
            }
            None => items.extend(found),
        }
    }
    let ignore = a.has(&["--ignore-not-found"]);
    let out = a.get(&["-o", "--output"]).unwrap_or_default();
    if out == "json" {
        if named && targets.len() == 1 && items.len() == 1 {
            print!("{}", kubectl_json(&items[0]));
        } else if !(named && items.is_empty()) {
            print!("{}", kubectl_json(&kube_list(items.clone())));
        }
    } else if out == "name" {
        for v in &items {
            let k = v.get("kind").and_then(Value::as_str).unwrap_or("");
            let g = if matches!(k, "Deployment" | "StatefulSet" | "ReplicaSet") {
                ".apps"
            } else {
                ""
            };
            println!(
                "{}{g}/{}",
                k.to_lowercase(),
                v.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            );
        }
    } else if let Some(path) = out.strip_prefix("jsonpath=") {
        let root = if named && items.len() == 1 {
            items[0].clone()
        } else {
            kube_list(items.clone())
        };
        print!("{}", jsonpath(&root, path));
    } else {
        print_table(&items, all_ns);
        if items.is_empty() && missing.is_empty() {
            eprintln!("No resources found in {ns} namespace.");
        }
    }
    if !missing.is_empty() && !ignore {
        for m in &missing {
            eprintln!("{m}");
        }
        return Ok(1);
    }
    Ok(0)
}

/// A small jsonpath subset: `{.a.b[0].c}`, `{.items[*].metadata.name}`, several `{...}` with literal text between.
pub fn jsonpath(root: &Value, expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let path = &rest[start + 1..start + end];
        let vals = eval_path(root, path.trim_start_matches('.'));
        out.push_str(
            &vals
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

fn eval_path(root: &Value, path: &str) -> Vec<Value> {
    let mut cur = vec![root.clone()];
    if path.is_empty() {
        return cur;
    }
    for seg in path.split('.') {
        let (name, idx) = match seg.find('[') {
            Some(i) => (&seg[..i], Some(seg[i + 1..].trim_end_matches(']'))),
            None => (seg, None),
        };
        let mut next = Vec::new();
        for v in cur {
            let v = if name.is_empty() {
                v
            } else {
                v.get(name).cloned().unwrap_or(Value::Null)
            };
            match idx {
                Some("*") => next.extend(v.as_array().cloned().unwrap_or_default()),
                Some(i) => next.extend(i.parse::<usize>().ok().and_then(|i| v.get(i).cloned())),
                None if !v.is_null() => next.push(v),
                None => {}
            }
        }
        cur = next;
    }
    cur
}

fn pod_status_word(v: &Value) -> String {
    if v.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let cs = v.pointer("/status/containerStatuses/0/state");
    if let Some(r) = cs
        .and_then(|s| s.pointer("/waiting/reason"))
        .and_then(Value::as_str)
    {
        return r.into();
    }
    if let Some(r) = cs
        .and_then(|s| s.pointer("/terminated/reason"))
        .and_then(Value::as_str)
    {
        return r.into();
    }
    v.pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
        .into()
}

fn print_table(items: &[Value], all_ns: bool) {
    let kind = items
        .first()
        .and_then(|v| v.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let pre = if all_ns { "NAMESPACE\t" } else { "" };
    match kind {
        "Pod" => println!("{pre}NAME\tREADY\tSTATUS\tRESTARTS\tAGE"),
        "Deployment" => println!("{pre}NAME\tREADY\tUP-TO-DATE\tAVAILABLE\tAGE"),
        "" => return,
        _ => println!("{pre}NAME\tAGE"),
    }
    for v in items {
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let nsc = if all_ns {
            format!(
                "{}\t",
                v.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("")
            )
        } else {
            String::new()
        };
        match kind {
            "Pod" => {
                let ready = v
                    .pointer("/status/containerStatuses/0/ready")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let restarts = v
                    .pointer("/status/containerStatuses/0/restartCount")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                println!(
                    "{nsc}{name}\t{}/1\t{}\t{restarts}\t1m",
                    u8::from(ready),
                    pod_status_word(v)
                );
            }
            "Deployment" => {
                let s = &v["status"];
                let want = v
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                println!(
                    "{nsc}{name}\t{}/{want}\t{}\t{}\t1m",
                    s["readyReplicas"].as_u64().unwrap_or(0),
                    s["updatedReplicas"].as_u64().unwrap_or(0),
                    s["availableReplicas"].as_u64().unwrap_or(0)
                );
            }
            _ => println!("{nsc}{name}\t1m"),
        }
    }
}

fn delete(a: &Args, kind: &str, names: &[&str]) -> Result<i32> {
    let (dir, d) = connect(a)?;
    let ns = namespace(a);
    let ignore = a.has(&["--ignore-not-found"]);
    let (kind, names): (&str, Vec<String>) = if kind.contains('/') {
        let (k, n) = kind.split_once('/').unwrap_or((kind, ""));
        (kind_of(k).unwrap_or(""), vec![n.to_string()])
    } else {
        (
            kind_of(kind).unwrap_or(""),
            names.iter().map(|s| s.to_string()).collect(),
        )
    };
    let mut code = 0;
    match kind {
        "Namespace" => {
            for n in &names {
                let existed = state::update_desired(&dir, |d| {
                    let had = d.namespaces.remove(n).is_some();
                    d.releases.retain(|_, r| &r.namespace != n);
                    d.scale.retain(|k, _| !k.starts_with(&format!("{n}/")));
                    d.kept.remove(n);
                    d.generation += 1;
                    Ok(had)
                })?;
                if existed {
                    println!("namespace \"{n}\" deleted");
                    crate::supervisor::ensure_running(&dir)?;
                    let wait = a.get(&["--wait"]).is_none_or(|w| w != "false");
                    if wait {
                        let t = a
                            .get(&["--timeout"])
                            .and_then(|t| go_duration(&t))
                            .unwrap_or(Duration::from_secs(120));
                        let deadline = Instant::now() + t;
                        while state::read_observed(&dir)?
                            .pods
                            .iter()
                            .any(|p| &p.namespace == n)
                            && Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_millis(300));
                        }
                    }
                } else if !ignore {
                    eprintln!("Error from server (NotFound): namespaces \"{n}\" not found");
                    code = 1;
                }
            }
        }
        "Pod" => {
            let obs = state::read_observed(&dir)?;
            for n in &names {
                if obs.pods.iter().any(|p| p.namespace == ns && &p.name == n) {
                    state::update_desired(&dir, |d| {
                        d.pod_deletions.insert(format!("{ns}/{n}"));
                        Ok(())
                    })?;
                    println!("pod \"{n}\" deleted");
                } else if !ignore {
                    eprintln!("Error from server (NotFound): pods \"{n}\" not found");
                    code = 1;
                }
            }
        }
        _ => {
            let _ = d;
            bail!(
                "error: the cluster double deletes only namespaces and pods (helm owns the rest)"
            );
        }
    }
    Ok(code)
}

fn rollout_status(a: &Args, target: &str) -> Result<i32> {
    let (dir, _) = connect(a)?;
    let ns = namespace(a);
    let (kind, name) = split_target(target)?;
    let timeout = a
        .get(&["--timeout"])
        .and_then(|t| go_duration(&t))
        .filter(|t| !t.is_zero());
    let deadline = timeout.map(|t| Instant::now() + t);
    let watch = a.get(&["-w", "--watch"]).is_none_or(|w| w != "false");
    let mut last = String::new();
    loop {
        let d = state::read_desired(&dir)?;
        let obs = state::read_observed(&dir)?;
        let objs = view::objects_by_namespace(&d)?;
        let Some(mut w) = objs
            .get(&ns)
            .and_then(|o| {
                o.workloads
                    .iter()
                    .find(|w| w.kind == kind && w.meta.name == name)
            })
            .cloned()
        else {
            bail!(
                "Error from server (NotFound): {}.apps \"{name}\" not found",
                kind.to_lowercase() + "s"
            );
        };
        if let Some(r) = d.scale.get(&format!("{ns}/{kind}/{name}")) {
            w.replicas = *r;
        }
        let r = view::rollout(&obs, &ns, &w);
        let k = kind.to_lowercase();
        let line = if obs.generation_seen < d.generation {
            format!("Waiting for {k} spec update to be observed...")
        } else if r.updated < r.replicas {
            format!("Waiting for {k} \"{name}\" rollout to finish: {} out of {} new replicas have been updated...", r.updated, r.replicas)
        } else if r.current > r.updated {
            format!("Waiting for {k} \"{name}\" rollout to finish: {} old replicas are pending termination...", r.current - r.updated)
        } else if r.updated_ready < r.replicas {
            format!("Waiting for {k} \"{name}\" rollout to finish: {} of {} updated replicas are available...", r.updated_ready, r.replicas)
        } else {
            if kind == "StatefulSet" {
                println!(
                    "partitioned roll out complete: {} new pods have been updated...",
                    r.replicas
                );
            } else {
                println!("{k} \"{name}\" successfully rolled out");
            }
            return Ok(0);
        };
        if line != last {
            println!("{line}");
            last = line;
        }
        if !watch {
            return Ok(0);
        }
        if deadline.is_some_and(|dl| Instant::now() >= dl) {
            eprintln!("error: timed out waiting for the condition");
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Picks a pod by name, `deploy/x`, `sts/x`, `svc/x` or label selector; `ready` prefers ready pods.
pub fn pick_pod(dir: &Path, obs: &Observed, ns: &str, target: &str, ready: bool) -> Result<String> {
    let d = state::read_desired(dir)?;
    let candidates: Vec<&state::PodRecord> = if let Some((k, n)) = target.split_once('/') {
        match kind_of(k) {
            Some("Pod") => obs
                .pods
                .iter()
                .filter(|p| p.namespace == ns && p.name == n)
                .collect(),
            Some("Service") => {
                let objs = view::objects_by_namespace(&d)?;
                let svc = objs
                    .get(ns)
                    .and_then(|o| o.services.iter().find(|s| s.meta.name == n))
                    .with_context(|| {
                        format!("Error from server (NotFound): services \"{n}\" not found")
                    })?;
                obs.pods
                    .iter()
                    .filter(|p| {
                        p.namespace == ns
                            && crate::manifest::selector_matches(&svc.selector, &p.labels)
                    })
                    .collect()
            }
            Some(kind @ ("Deployment" | "StatefulSet")) => obs
                .pods
                .iter()
                .filter(|p| p.namespace == ns && p.owner_kind == kind && p.owner_name == n)
                .collect(),
            _ => bail!("error: the server doesn't have a resource type \"{k}\""),
        }
    } else {
        obs.pods
            .iter()
            .filter(|p| p.namespace == ns && p.name == target)
            .collect()
    };
    if candidates.is_empty() {
        let what = if target.contains('/') {
            target.to_string()
        } else {
            format!("pods \"{target}\"")
        };
        bail!("Error from server (NotFound): {what} not found");
    }
    let best = candidates
        .iter()
        .find(|p| !ready || (p.ready && matches!(p.state, ContainerState::Running { .. })))
        .or_else(|| {
            candidates
                .iter()
                .find(|p| matches!(p.state, ContainerState::Running { .. }))
        })
        .or(candidates.first())
        .map(|p| p.name.clone());
    best.context("no pod")
}

fn logs(a: &Args, target: &str) -> Result<i32> {
    let (dir, _) = connect(a)?;
    let ns = namespace(a);
    let obs = state::read_observed(&dir)?;
    let tail = a
        .get(&["--tail"])
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|t| *t >= 0)
        .map(|t| t as u64);
    let pods: Vec<String> = match a.get(&["-l", "--selector"]) {
        Some(sel) => obs
            .pods
            .iter()
            .filter(|p| p.namespace == ns && labels_match(&view::pod_json(p), &sel))
            .map(|p| p.name.clone())
            .collect(),
        None => vec![pick_pod(&dir, &obs, &ns, target, false)?],
    };
    for pod in pods {
        let rec = obs
            .pods
            .iter()
            .find(|p| p.namespace == ns && p.name == pod)
            .context("pod vanished")?;
        // kubectl logs --timestamps: each line starts with its RFC 3339 time (docker writes the same);
        // --since-time / --since map to docker's --since, --follow to docker's --follow.
        let timestamps = a.has(&["--timestamps"]);
        let since = a.get(&["--since-time"]).or_else(|| a.get(&["--since"]));
        if a.has(&["-p", "--previous"]) {
            let f = dir.join("logs").join(format!("{ns}_{pod}.previous"));
            match std::fs::read_to_string(&f) {
                Ok(t) if timestamps => print!("{}", tail_lines(&t, tail)),
                Ok(t) => print!("{}", tail_lines(&strip_timestamps(&t), tail)),
                Err(_) => bail!("Error from server (BadRequest): previous terminated container \"{}\" in pod \"{pod}\" not found", rec.container_name),
            }
            continue;
        }
        match (&rec.container_id, &rec.state) {
            (Some(id), _) if a.has(&["-f", "--follow"]) => {
                let _ = std::io::Write::flush(&mut std::io::stdout());
                return engine::logs_follow(id, tail, timestamps, since.as_deref());
            }
            (Some(id), _) if timestamps || since.is_some() => {
                let text = engine::logs_stamped(id, tail, since.as_deref())?;
                if timestamps {
                    print!("{text}");
                } else {
                    print!("{}", strip_timestamps(&text));
                }
            }
            (Some(id), _) => print!("{}", engine::logs(id, tail)?),
            (None, ContainerState::Waiting { reason, .. }) => {
                bail!("Error from server (BadRequest): container \"{}\" in pod \"{pod}\" is waiting to start: {}", rec.container_name, if reason == "ContainerCreating" { "ContainerCreating".to_string() } else { "trying and failing to pull image".to_string() })
            }
            _ => {}
        }
    }
    Ok(0)
}

/// Lines without the leading `--timestamps` field.
fn strip_timestamps(t: &str) -> String {
    t.lines()
        .map(|l| format!("{}\n", l.split_once(' ').map_or(l, |(_, rest)| rest)))
        .collect()
}

fn tail_lines(t: &str, n: Option<u64>) -> String {
    match n {
        None => t.to_string(),
        Some(n) => {
            let lines: Vec<&str> = t.lines().collect();
            let start = lines.len().saturating_sub(n as usize);
            lines[start..].iter().map(|l| format!("{l}\n")).collect()
        }
    }
}

fn wait(a: &Args) -> Result<i32> {
    let (dir, _) = connect(a)?;
    let ns = namespace(a);
    let cond = a.get(&["--for"]).unwrap_or_default();
    let timeout = a
        .get(&["--timeout"])
        .and_then(|t| go_duration(&t))
        .unwrap_or(Duration::from_secs(30));
    let what = a.pos.get(1).cloned().unwrap_or_default();
    let sel = a.get(&["-l", "--selector"]);
    let deadline = Instant::now() + timeout;
    loop {
        let d = state::read_desired(&dir)?;
        let obs = state::read_observed(&dir)?;
        let kind = kind_of(what.split('/').next().unwrap_or("")).unwrap_or("Pod");
        let mut items = objects(kind, Some(&ns), &d, &obs)?;
        if let Some(s) = &sel {
            items.retain(|v| labels_match(v, s));
        }
        if let Some((_, n)) = what.split_once('/') {
            items.retain(|v| v.pointer("/metadata/name").and_then(Value::as_str) == Some(n));
        }
        let want = cond.trim_start_matches("condition=").to_string();
        let (ctype, cval) = want
            .split_once('=')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((want.clone(), "True".into()));
        let ok = |v: &Value| {
            v.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["type"]
                            .as_str()
                            .is_some_and(|t| t.eq_ignore_ascii_case(&ctype))
                            && c["status"]
                                .as_str()
                                .is_some_and(|s| s.eq_ignore_ascii_case(&cval))
                    })
                })
        };
        if !items.is_empty() && items.iter().all(ok) {
            for v in &items {
                println!(
                    "{}/{} condition met",
                    kind.to_lowercase(),
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
            }
            return Ok(0);
        }
        if Instant::now() >= deadline {
            if items.is_empty() {
                eprintln!("error: no matching resources found");
            } else {
                eprintln!(
                    "error: timed out waiting for the condition on {}",
                    plural(kind)
                );
            }
            return Ok(1);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[cfg(test)]
mod selector_tests {
    use super::*;

    #[test]
    fn set_based_selectors_match_like_the_api_server() {
        let pod = serde_json::json!({"metadata": {"labels": {"app.kubernetes.io/instance": "todo-backend", "app.kubernetes.io/component": "database"}}});
        assert!(labels_match(
            &pod,
            "app.kubernetes.io/instance in (todo-backend,todo-frontend)"
        ));
        assert!(!labels_match(
            &pod,
            "app.kubernetes.io/instance in (todo-frontend)"
        ));
        assert!(labels_match(
            &pod,
            "app.kubernetes.io/instance notin (x, y),app.kubernetes.io/component=database"
        ));
        assert!(labels_match(&pod, "!tier,app.kubernetes.io/component"));
        assert!(!labels_match(&pod, "app.kubernetes.io/component!=database"));
    }
}
