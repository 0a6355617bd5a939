//! Chart checks with the user's helm: lint, render with the default and dev values, policy on the rendered manifests.
//!
//! The rendered YAML is turned into JSON by `kubectl label --local -f - -o json` (offline, no cluster): the
//! xtask then needs no YAML parser, and kubectl is a prerequisite of deploy anyway.

use std::path::Path;

use serde_json::Value;

use super::check::CheckResult;
use super::policy;
use crate::context::Context;
use crate::tools::{helm, kubectl};

/// The charts: (short name, release name, directory under the root).
pub const CHARTS: [(&str, &str, &str); 2] = [
    ("backend", "todo-backend", "helm/backend"),
    ("frontend", "todo-frontend", "helm/frontend"),
];

/// A syntactically valid image tag for rendering (deploy sets the content hash).
const RENDER_TAG: &str = "0000000000aa";

/// Splits kubectl's output (concatenated JSON objects, or a List) into objects.
pub fn parse_objects(stdout: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(stdout).into_iter::<Value>() {
        let v = v.map_err(|e| anyhow::anyhow!("kubectl printed invalid JSON: {e}"))?;
        if v["kind"] == "List" {
            out.extend(v["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(v);
        }
    }
    Ok(out)
}

/// Lint, render and policy checks for both charts.
pub fn checks(ctx: &Context) -> Vec<CheckResult> {
    if !crate::tools::available("helm") {
        return vec![CheckResult::missing_tool("charts", "helm")];
    }
    let mut out = Vec::new();
    for (short, release, dir) in CHARTS {
        out.push(lint(ctx, short, dir));
        for dev in [false, true] {
            let values = if dev {
                "values-dev.yaml"
            } else {
                "values.yaml"
            };
            let (render, manifests) = render(ctx, short, release, dir, dev);
            out.push(render);
            if let Some(m) = manifests {
                out.extend(policy_checks(&format!("{short} ({values})"), &m));
            }
        }
    }
    out
}

fn lint(ctx: &Context, short: &str, dir: &str) -> CheckResult {
    let name = format!("chart lint: {short}");
    let chart = ctx.root.join(dir);
    match ctx
        .sh()
        .and_then(|sh| ctx.run(&helm::lint(&sh, &chart, RENDER_TAG)))
    {
        Ok(o) if o.ok() => {
            let warnings = o.stdout.lines().filter(|l| l.contains("[WARNING]")).count();
            CheckResult::pass(
                &name,
                format!("helm lint {dir}: 0 failed, {warnings} warning(s)"),
            )
        }
        Ok(o) => CheckResult::fail(
            &name,
            lint_errors(&o.stdout, &o.stderr),
            format!("fix the errors `helm lint {dir}` prints"),
        ),
        Err(e) => CheckResult::fail(&name, format!("{e:#}"), "check the helm installation"),
    }
}

/// The `[ERROR]` lines of helm lint, else its last line.
fn lint_errors(stdout: &str, stderr: &str) -> String {
    let errors: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("[ERROR]") || l.starts_with("Error"))
        .collect();
    if errors.is_empty() {
        stderr
            .lines()
            .last()
            .unwrap_or("helm lint failed")
            .to_string()
    } else {
        errors.join("; ")
    }
}

fn render(
    ctx: &Context,
    short: &str,
    release: &str,
    dir: &str,
    dev: bool,
) -> (CheckResult, Option<Vec<Value>>) {
    let values = if dev {
        "values-dev.yaml"
    } else {
        "values.yaml"
    };
    let name = format!("chart render: {short} ({values})");
    let chart = ctx.root.join(dir);
    let dev_values = chart.join("values-dev.yaml");
    let files: Vec<&Path> = if dev { vec![&dev_values] } else { Vec::new() };
    let template = ctx.sh().and_then(|sh| {
        ctx.run(&helm::template(
            &sh,
            release,
            &chart,
            &ctx.namespace,
            RENDER_TAG,
            &files,
        ))
    });
    let tpl = match template {
        Ok(o) if o.ok() => o.stdout,
        Ok(o) => {
            return (
                CheckResult::fail(
                    &name,
                    o.reason(),
                    format!("fix the template error in {dir}"),
                ),
                None,
            )
        }
        Err(e) => {
            return (
                CheckResult::fail(&name, format!("{e:#}"), "check helm"),
                None,
            )
        }
    };
    if !crate::tools::available("kubectl") {
        return (CheckResult::missing_tool(&name, "kubectl"), None);
    }
    let json = match ctx
        .sh()
        .and_then(|sh| ctx.run(&kubectl::yaml_to_json(&sh).stdin(tpl)))
    {
        Ok(o) if o.ok() => o.stdout,
        Ok(o) => {
            return (
                CheckResult::fail(
                    &name,
                    format!(
                        "rendered YAML is not valid Kubernetes objects: {}",
                        o.reason()
                    ),
                    format!("fix the templates of {dir}"),
                ),
                None,
            )
        }
        Err(e) => {
            return (
                CheckResult::skip(
                    &name,
                    &format!("kubectl is needed to read the rendered manifests: {e:#}"),
                    "install kubectl",
                ),
                None,
            )
        }
    };
    match parse_objects(&json) {
        Ok(m) => {
            let kinds: Vec<String> = m
                .iter()
                .map(|o| o["kind"].as_str().unwrap_or("?").to_string())
                .collect();
            (
                CheckResult::pass(&name, format!("{} objects: {}", m.len(), kinds.join(", "))),
                Some(m),
            )
        }
        Err(e) => (
            CheckResult::fail(&name, format!("{e:#}"), "report a bug"),
            None,
        ),
    }
}

/// The four policy checks over one rendering.
pub fn policy_checks(label: &str, m: &[Value]) -> Vec<CheckResult> {
    vec![
        CheckResult::from_problems(
            &format!("chart policy: {label} security context"),
            "non-root, read-only root fs, no privilege escalation, capabilities dropped",
            &policy::security_context(m),
            "set podSecurityContext/securityContext in the chart (runAsNonRoot, readOnlyRootFilesystem, \
             allowPrivilegeEscalation: false, capabilities.drop: [ALL])",
        ),
        CheckResult::from_problems(
            &format!("chart policy: {label} probes"),
            "liveness and readiness probes on every app container",
            &policy::probes(m),
            "add livenessProbe/readinessProbe to the container in templates/",
        ),
        CheckResult::from_problems(
            &format!("chart policy: {label} resources"),
            "cpu/memory requests and a memory limit everywhere",
            &policy::resources(m),
            "set resources.requests and resources.limits in values.yaml",
        ),
        CheckResult::from_problems(
            &format!("chart policy: {label} secrets"),
            "secret values only in Secrets",
            &policy::secrets_only_in_secrets(m),
            "move the value into the chart's Secret and read it with secretKeyRef",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_concatenated_objects_and_lists() {
        let out = "{\n    \"kind\": \"Secret\"\n}\n{\n    \"kind\": \"List\",\n    \"items\": [{\"kind\": \"Pod\"}]\n}\n";
        let objs = match parse_objects(out) {
            Ok(o) => o,
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(objs.len(), 2);
        assert_eq!(objs[1]["kind"], "Pod");
        assert!(parse_objects("{\"kind\": ").is_err());
    }

    #[test]
    fn lint_errors_are_extracted() {
        let stdout = "==> Linting helm/backend\n[ERROR] templates/: template: x:1: bad\n\nError: 1 chart(s) linted, 1 chart(s) failed\n";
        assert_eq!(
            lint_errors(stdout, ""),
            "[ERROR] templates/: template: x:1: bad; Error: 1 chart(s) linted, 1 chart(s) failed"
        );
    }
}
