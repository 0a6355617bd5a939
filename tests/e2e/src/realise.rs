//! Turns a rendered pod template into a `docker run`: env resolved from the rendered ConfigMaps/Secrets,
//! security context as user/read-only/capabilities, emptyDirs as tmpfs, limits as cgroup limits.

use crate::engine::OWNER_LABEL;
use crate::manifest::{self, Container, Objects, Workload};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a container cannot be created from its spec (the kubelet's CreateContainerConfigError).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

/// The docker network of a namespace.
pub fn network_name(owner: &str, ns: &str) -> String {
    format!("todo-double-{owner}-{ns}")
}

/// The docker container name of a pod.
pub fn container_name(owner: &str, ns: &str, pod: &str) -> String {
    format!("todo-double-{owner}-{ns}-{pod}")
}

/// Resolves the container's environment as the kubelet does.
pub fn resolve_env(
    c: &Container,
    objs: &Objects,
    ns: &str,
    pod: &str,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut env = BTreeMap::new();
    for from in &c.env_from {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (src, name, optional, what) = if let Some(r) = &from.config_map_ref {
            (
                objs.config_maps.get(&r.name),
                &r.name,
                r.optional,
                "configmap",
            )
        } else if let Some(r) = &from.secret_ref {
            (objs.secrets.get(&r.name), &r.name, r.optional, "secret")
        } else {
            continue;
        };
        match src {
            Some(data) => env.extend(
                data.iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone())),
            ),
            None if optional == Some(true) => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for e in &c.env {
        if let Some(v) = &e.value {
            env.insert(e.name.clone(), v.clone());
            continue;
        }
        let Some(from) = &e.value_from else {
            env.insert(e.name.clone(), String::new());
            continue;
        };
        let (map, r, kind) = if let Some(r) = &from.secret_key_ref {
            (&objs.secrets, r, "Secret")
        } else if let Some(r) = &from.config_map_key_ref {
            (&objs.config_maps, r, "ConfigMap")
        } else if let Some(f) = &from.field_ref {
            let v = match f.field_path.as_str() {
                "metadata.name" => pod.to_string(),
                "metadata.namespace" => ns.to_string(),
                _ => String::new(),
            };
            env.insert(e.name.clone(), v);
            continue;
        } else {
            continue;
        };
        match map.get(&r.name) {
            None if r.optional == Some(true) => {}
            None => {
                return Err(ConfigError(format!(
                    "{} \"{}\" not found",
                    kind.to_lowercase(),
                    r.name
                )))
            }
            Some(data) => match data.get(&r.key) {
                Some(v) => {
                    env.insert(e.name.clone(), v.clone());
                }
                None if r.optional == Some(true) => {}
                None => {
                    return Err(ConfigError(format!(
                        "couldn't find key {} in {kind} {ns}/{}",
                        r.key, r.name
                    )))
                }
            },
        }
    }
    Ok(env)
}

/// What a pod needs to be started.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// `docker run` arguments after `run`, except the env file.
    pub args: Vec<String>,
    /// Environment (written to a 0600 env file, never on a command line).
    pub env: BTreeMap<String, String>,
    /// Host directories to create (path, uid, gid) before the run.
    pub host_dirs: Vec<(PathBuf, u32, u32)>,
    /// Files to write into volume dirs (configMap/secret volumes).
    pub files: Vec<(PathBuf, String)>,
}

/// Inputs of [`run_spec`].
pub struct PodCtx<'a> {
    /// State id labelling Docker objects.
    pub owner: &'a str,
    /// Namespace.
    pub ns: &'a str,
    /// Pod name.
    pub pod: &'a str,
    /// StatefulSet ordinal.
    pub ordinal: Option<u32>,
    /// Where volumes live on the host.
    pub state_dir: &'a Path,
    /// Network aliases.
    pub aliases: &'a [String],
}

/// Builds the `docker run` for the workload's (first) container.
pub fn run_spec(w: &Workload, objs: &Objects, ctx: &PodCtx<'_>) -> Result<RunSpec, ConfigError> {
    let spec = &w.template.spec;
    let c = spec
        .containers
        .first()
        .ok_or_else(|| ConfigError("pod template has no containers".into()))?;
    let env = resolve_env(c, objs, ctx.ns, ctx.pod)?;
    let psc = spec.security_context.clone().unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let mut a: Vec<String> = vec![
        "-d".into(),
        "--name".into(),
        container_name(ctx.owner, ctx.ns, ctx.pod),
        "--hostname".into(),
        ctx.pod.into(),
        "--restart".into(),
        "no".into(),
        "--label".into(),
        format!("{OWNER_LABEL}={}", ctx.owner),
        "--label".into(),
        format!("todo.cluster-double.pod={}/{}", ctx.ns, ctx.pod),
        "--network".into(),
        network_name(ctx.owner, ctx.ns),
    ];
    for al in ctx.aliases {
        a.extend(["--network-alias".into(), al.clone()]);
    }
    let uid = csc.run_as_user.or(psc.run_as_user);
    let gid = csc.run_as_group.or(psc.run_as_group);
    match (uid, gid) {
        (Some(u), Some(g)) => a.extend(["--user".into(), format!("{u}:{g}")]),
        (Some(u), None) => a.extend(["--user".into(), format!("{u}")]),
        _ => {}
    }
    if let Some(fs) = psc.fs_group {
        a.extend(["--group-add".into(), fs.to_string()]);
    }
    if csc.read_only_root_filesystem == Some(true) {
        a.push("--read-only".into());
    }
    if csc.allow_privilege_escalation == Some(false) {
        a.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    if let Some(caps) = &csc.capabilities {
        for d in &caps.drop {
            a.extend(["--cap-drop".into(), d.clone()]);
        }
        for ad in &caps.add {
            a.extend(["--cap-add".into(), ad.clone()]);
        }
    }
    if let Some(m) = c
        .resources
        .limits
        .get("memory")
        .and_then(manifest::memory_bytes)
    {
        a.extend(["--memory".into(), m.to_string()]);
    }
    if let Some(cpu) = c.resources.limits.get("cpu").and_then(manifest::cpu_cores) {
        a.extend(["--cpus".into(), format!("{cpu}")]);
    }
    if let Some(wd) = &c.working_dir {
        a.extend(["--workdir".into(), wd.clone()]);
    }
    let mut host_dirs = Vec::new();
    let mut files = Vec::new();
    let vol_uid = uid.unwrap_or(0) as u32;
    let vol_gid = psc.fs_group.or(gid).unwrap_or(0) as u32;
    let vol_root = ctx.state_dir.join("volumes").join(ctx.ns);
    for m in &c.volume_mounts {
        let vol = spec.volumes.iter().find(|v| v.name == m.name);
        let claim = if w.claim_templates.contains(&m.name) {
            Some(format!(
                "{}-{}-{}",
                m.name,
                w.meta.name,
                ctx.ordinal.unwrap_or(0)
            ))
        } else {
            vol.and_then(|v| v.persistent_volume_claim.as_ref())
                .map(|c| c.claim_name.clone())
        };
        if let Some(claim) = claim {
            let dir = vol_root.join("pvc").join(&claim);
            host_dirs.push((dir.clone(), vol_uid, vol_gid));
            a.extend([
                "-v".into(),
                format!(
                    "{}:{}{}",
                    dir.display(),
                    m.mount_path,
                    if m.read_only { ":ro" } else { "" }
                ),
            ]);
            continue;
        }
        let Some(vol) = vol else {
            return Err(ConfigError(format!(
                "volume \"{}\" not found in the pod spec",
                m.name
            )));
        };
        if vol.empty_dir.is_some() {
            // emptyDirs are world-writable in Kubernetes; Docker copies the image dir's mode onto a tmpfs
            // (tmpcopyup), so the pod's user also owns it.
            let owner = match uid {
                Some(u) => format!(",uid={u},gid={}", psc.fs_group.or(gid).unwrap_or(u)),
                None => String::new(),
            };
            a.extend([
                "--tmpfs".into(),
                format!("{}:rw,exec,mode=1777{owner}", m.mount_path),
            ]);
        } else if vol.config_map.is_some() || vol.secret.is_some() {
            let (data, what, name) = match (&vol.config_map, &vol.secret) {
                (Some(cm), _) => (objs.config_maps.get(&cm.name), "configmap", cm.name.clone()),
                (_, Some(s)) => (
                    objs.secrets.get(&s.secret_name),
                    "secret",
                    s.secret_name.clone(),
                ),
                _ => continue,
            };
            let data = data.ok_or_else(|| ConfigError(format!("{what} \"{name}\" not found")))?;
            let dir = vol_root.join("pods").join(ctx.pod).join(&vol.name);
            host_dirs.push((dir.clone(), vol_uid, vol_gid));
            for (k, v) in data {
                files.push((dir.join(k), v.clone()));
            }
            a.extend([
                "-v".into(),
                format!("{}:{}:ro", dir.display(), m.mount_path),
            ]);
        } else {
            return Err(ConfigError(format!(
                "volume \"{}\": only emptyDir, configMap, secret and PVC volumes are realised",
                vol.name
            )));
        }
    }
    let mut rest: Vec<String> = Vec::new();
    if let Some((first, more)) = c.command.split_first() {
        a.extend(["--entrypoint".into(), first.clone()]);
        rest.extend(more.iter().cloned());
    }
    rest.extend(c.args.iter().cloned());
    a.push(c.image.clone());
    a.extend(rest);
    Ok(RunSpec {
        args: a,
        env,
        host_dirs,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objs(yaml: &str) -> Objects {
        Objects::from_docs(&manifest::parse_docs(yaml).unwrap()).unwrap()
    }

    const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {LOG_LEVEL: debug}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {DATABASE_URL: "postgres://u:p@db/x"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001}
      volumes: [{name: tmp, emptyDir: {}}]
      containers:
        - name: api
          image: api:abc
          args: ["--serve"]
          envFrom: [{configMapRef: {name: cfg}}]
          env:
            - {name: DATABASE_URL, valueFrom: {secretKeyRef: {name: sec, key: DATABASE_URL}}}
            - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
          securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
          resources: {limits: {memory: 128Mi, cpu: 500m}}
          volumeMounts: [{name: tmp, mountPath: /tmp}]
"#;

    #[test]
    fn pod_template_becomes_a_hardened_docker_run() {
        let o = objs(APP);
        let ctx = PodCtx {
            owner: "o1",
            ns: "todo",
            pod: "api-1",
            ordinal: None,
            state_dir: Path::new("/s"),
            aliases: &["api".into()],
        };
        let r = run_spec(&o.workloads[0], &o, &ctx).unwrap();
        let line = r.args.join(" ");
        for want in [
            "--user 10001:10001",
            "--read-only",
            "--cap-drop ALL",
            "--security-opt no-new-privileges",
            "--memory 134217728",
            "--cpus 0.5",
            "--tmpfs /tmp:rw,exec,mode=1777,uid=10001,gid=10001",
            "--network-alias api",
            "api:abc --serve",
        ] {
            assert!(line.contains(want), "{want} missing from {line}");
        }
        assert!(
            !line.contains("postgres://"),
            "a secret reached the command line: {line}"
        );
        assert_eq!(r.env["DATABASE_URL"], "postgres://u:p@db/x");
        assert_eq!(r.env["LOG_LEVEL"], "debug");
        assert_eq!(r.env["POD"], "api-1");
    }

    #[test]
    fn a_missing_secret_key_is_a_config_error() {
        let o = objs(&APP.replace("key: DATABASE_URL", "key: NOPE"));
        let ctx = PodCtx {
            owner: "o",
            ns: "todo",
            pod: "p",
            ordinal: None,
            state_dir: Path::new("/s"),
            aliases: &[],
        };
        let err = run_spec(&o.workloads[0], &o, &ctx).unwrap_err();
        assert_eq!(err.0, "couldn't find key NOPE in Secret todo/sec");
    }
}
