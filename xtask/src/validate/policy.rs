//! Chart policy over rendered manifests (JSON objects): security context, probes, limits, secrets only in Secrets.

use serde_json::Value;

/// Name parts that make a variable secret wherever they appear.
const SECRET_ANYWHERE: [&str; 4] = ["PASSWORD", "PASSWD", "SECRET", "CREDENTIAL"];
/// Name endings that make a variable secret (`TOKEN_TTL_HOURS` is not, `GITHUB_TOKEN` is).
const SECRET_ENDINGS: [&str; 6] = [
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "DATABASE_URL",
];

/// True when a variable or key name says it holds a secret.
pub fn secret_looking_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase().replace(['-', '.'], "_");
    SECRET_ANYWHERE.iter().any(|w| upper.contains(w))
        || SECRET_ENDINGS.iter().any(|w| upper.ends_with(w))
}

/// True when a value carries credentials: `scheme://user:pass@host` or an API key.
pub fn secret_looking_value(value: &str) -> bool {
    let creds_in_url = value.split("://").nth(1).is_some_and(|rest| {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    });
    creds_in_url || (value.starts_with("sk-") && value.len() > 12)
}

/// True for the docker-library convention `POSTGRES_PASSWORD_FILE=/run/secrets/...`: the variable holds the
/// path of a mounted secret file, not the secret.
pub fn points_at_a_file(name: &str, value: &str) -> bool {
    name.to_ascii_uppercase().ends_with("_FILE")
        && value.starts_with('/')
        && !value.contains(char::is_whitespace)
}

fn name_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job, Pod), if it has one.
fn pod_spec(obj: &Value) -> Option<&Value> {
    match obj["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&obj["spec"]["template"]["spec"])
        }
        "Pod" => Some(&obj["spec"]),
        _ => None,
    }
}

fn is_long_running(obj: &Value) -> bool {
    matches!(
        obj["kind"].as_str(),
        Some("Deployment" | "StatefulSet" | "DaemonSet")
    )
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(spec["initContainers"].as_array().into_iter().flatten())
}

/// Pods run as non-root with a read-only root filesystem, no privilege escalation and all capabilities dropped.
pub fn security_context(manifests: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for obj in manifests {
        let Some(spec) = pod_spec(obj) else { continue };
        let pod_sc = &spec["securityContext"];
        for c in containers(spec) {
            let sc = &c["securityContext"];
            let who = format!(
                "{} container {}",
                name_of(obj),
                c["name"].as_str().unwrap_or("?")
            );
            let non_root = sc["runAsNonRoot"]
                .as_bool()
                .or(pod_sc["runAsNonRoot"].as_bool())
                == Some(true)
                || sc["runAsUser"]
                    .as_u64()
                    .or(pod_sc["runAsUser"].as_u64())
                    .is_some_and(|u| u >= 1000);
            if !non_root {
                problems.push(format!("{who}: runAsNonRoot not set"));
            }
            if sc["runAsUser"].as_u64().or(pod_sc["runAsUser"].as_u64()) == Some(0) {
                problems.push(format!("{who}: runAsUser 0"));
            }
            if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                problems.push(format!("{who}: allowPrivilegeEscalation not false"));
            }
            if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
                problems.push(format!("{who}: readOnlyRootFilesystem not true"));
            }
            let drops_all = sc["capabilities"]["drop"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x == "ALL"));
            if !drops_all {
                problems.push(format!("{who}: capabilities.drop lacks ALL"));
            }
            if sc["privileged"].as_bool() == Some(true) {
                problems.push(format!("{who}: privileged"));
            }
        }
    }
    problems
}

/// Long-running app containers have liveness and readiness probes.
pub fn probes(manifests: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for obj in manifests.iter().filter(|o| is_long_running(o)) {
        let Some(spec) = pod_spec(obj) else { continue };
        for c in spec["containers"].as_array().into_iter().flatten() {
            for probe in ["livenessProbe", "readinessProbe"] {
                if !c[probe].is_object() {
                    problems.push(format!(
                        "{} container {}: no {probe}",
                        name_of(obj),
                        c["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    problems
}

/// Every container sets cpu and memory requests and a memory limit.
pub fn resources(manifests: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for obj in manifests {
        let Some(spec) = pod_spec(obj) else { continue };
        for c in containers(spec) {
            let r = &c["resources"];
            let who = format!(
                "{} container {}",
                name_of(obj),
                c["name"].as_str().unwrap_or("?")
            );
            for (section, key) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "memory"),
            ] {
                if r[section][key].is_null() {
                    problems.push(format!("{who}: no resources.{section}.{key}"));
                }
            }
        }
    }
    problems
}

/// Secret values live only in Secrets: no secret-looking key or credential in a ConfigMap or a literal env value.
pub fn secrets_only_in_secrets(manifests: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for obj in manifests {
        if obj["kind"] == "ConfigMap" {
            for (k, v) in obj["data"].as_object().into_iter().flatten() {
                let value = v.as_str().unwrap_or("");
                if secret_looking_name(k) && !value.is_empty() {
                    problems.push(format!("{}: key {k} looks secret", name_of(obj)));
                } else if secret_looking_value(value) {
                    problems.push(format!("{}: key {k} holds credentials", name_of(obj)));
                }
            }
        }
        let Some(spec) = pod_spec(obj) else { continue };
        for c in containers(spec) {
            for e in c["env"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap_or("");
                let literal = e["value"].as_str().unwrap_or("");
                if literal.is_empty() {
                    continue;
                }
                if points_at_a_file(name, literal) {
                    continue;
                }
                if secret_looking_name(name) || secret_looking_value(literal) {
                    problems.push(format!(
                        "{} container {}: env {name} is a literal value, not a secretKeyRef",
                        name_of(obj),
                        c["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good_deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "todo-backend"},
            "spec": {"template": {"spec": {
                "securityContext": {"runAsNonRoot": true, "runAsUser": 10001},
                "containers": [{
                    "name": "backend",
                    "env": [
                        {"name": "PORT", "value": "8000"},
                        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "todo-backend", "key": "DATABASE_URL"}}}
                    ],
                    "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                         "capabilities": {"drop": ["ALL"]}}
                }]
            }}}
        })
    }

    #[test]
    fn good_workload_passes_every_policy() {
        let m = [
            good_deployment(),
            json!({"kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"LOG_LEVEL": "info", "OPENAI_BASE_URL": "https://api.openai.com/v1"}}),
        ];
        assert!(security_context(&m).is_empty());
        assert!(probes(&m).is_empty());
        assert!(resources(&m).is_empty());
        assert!(secrets_only_in_secrets(&m).is_empty());
    }

    #[test]
    fn security_context_fails_on_root_and_writable_fs() {
        let mut d = good_deployment();
        d["spec"]["template"]["spec"]["securityContext"] = json!({});
        d["spec"]["template"]["spec"]["containers"][0]["securityContext"] =
            json!({"readOnlyRootFilesystem": false});
        let p = security_context(&[d]);
        assert!(
            p.iter().any(|x| x.ends_with("runAsNonRoot not set")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|x| x.ends_with("readOnlyRootFilesystem not true")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|x| x.ends_with("capabilities.drop lacks ALL")),
            "{p:?}"
        );
    }

    #[test]
    fn probes_fail_when_missing() {
        let mut d = good_deployment();
        d["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .map(|c| c.remove("readinessProbe"));
        assert_eq!(
            probes(&[d]),
            ["Deployment/todo-backend container backend: no readinessProbe"]
        );
    }

    #[test]
    fn resources_fail_without_memory_limit() {
        let mut d = good_deployment();
        d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = json!({});
        assert_eq!(
            resources(&[d]),
            ["Deployment/todo-backend container backend: no resources.limits.memory"]
        );
    }

    #[test]
    fn secrets_in_configmap_or_literal_env_fail() {
        let mut d = good_deployment();
        d["spec"]["template"]["spec"]["containers"][0]["env"][1] =
            json!({"name": "DATABASE_URL", "value": "postgres://todo:hunter2@db/todo"});
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "todo-backend"},
            "data": {"OPENAI_API_KEY": "sk-abcdefghijklmnop", "URL": "postgres://u:p@h/db"}});
        let p = secrets_only_in_secrets(&[d, cm]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].contains("env DATABASE_URL is a literal value"),
            "{p:?}"
        );
    }

    #[test]
    fn secret_detection() {
        assert!(secret_looking_name("AUTH_SECRET"));
        assert!(secret_looking_name("openai-api-key"));
        assert!(!secret_looking_name("LOG_LEVEL"));
        assert!(!secret_looking_name("TOKEN_TTL_HOURS"));
        assert!(secret_looking_name("GITHUB_TOKEN"));
        assert!(secret_looking_name("POSTGRES_PASSWORD"));
        assert!(points_at_a_file(
            "POSTGRES_PASSWORD_FILE",
            "/run/secrets/postgres/password"
        ));
        assert!(!points_at_a_file(
            "POSTGRES_PASSWORD",
            "/run/secrets/postgres/password"
        ));
        assert!(!points_at_a_file("POSTGRES_PASSWORD_FILE", "hunter2"));
        assert!(secret_looking_value("postgres://app:pw@db:5432/todo"));
        assert!(!secret_looking_value("http://todo-backend:8000"));
        assert!(!secret_looking_value("https://user@example.com/x"));
    }
}
