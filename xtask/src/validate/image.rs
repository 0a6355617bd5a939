//! Built images, when they exist locally: numeric non-root user, size against the budget, no secrets in config or history.

use serde::Deserialize;

use super::check::CheckResult;
use super::policy::{secret_looking_name, secret_looking_value};
use crate::context::Context;
use crate::tools::docker;

/// Image size budgets in bytes (decimal MB, as docker prints them).
pub const BUDGETS: [(&str, u64); 2] = [("todo-backend", 40_000_000), ("todo-frontend", 30_000_000)];

/// The part of `docker image inspect` read here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    /// Image config.
    #[serde(default)]
    pub config: ImageConfig,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
}

/// `Config` of an inspected image.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageConfig {
    /// `USER`.
    pub user: String,
    /// `KEY=VALUE` environment.
    pub env: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<std::collections::BTreeMap<String, String>>,
}

/// Parses `docker image inspect` (an array with one object).
pub fn parse_inspect(json: &str) -> anyhow::Result<Inspect> {
    let mut list: Vec<Inspect> = serde_json::from_str(json.trim())
        .map_err(|e| anyhow::anyhow!("parsing `docker image inspect`: {e}"))?;
    list.pop()
        .ok_or_else(|| anyhow::anyhow!("`docker image inspect` returned nothing"))
}

/// The image's user is numeric and >= 1000.
pub fn user_check(image: &str, i: &Inspect) -> CheckResult {
    let name = format!("image user: {image}");
    let uid = i.config.user.split(':').next().unwrap_or("");
    match uid.parse::<u32>() {
        Ok(n) if n >= 1000 => CheckResult::pass(&name, format!("User {}", i.config.user)),
        _ => CheckResult::fail(
            &name,
            format!(
                "User {:?}: not a numeric UID >= 1000",
                if i.config.user.is_empty() {
                    "root"
                } else {
                    &i.config.user
                }
            ),
            "set `USER 10001:10001` in the final stage and rebuild (`cargo xtask deploy`)",
        ),
    }
}

/// The image fits its budget.
pub fn size_check(image: &str, i: &Inspect, budget: u64) -> CheckResult {
    let name = format!("image size: {image}");
    let mb = |b: u64| b as f64 / 1_000_000.0;
    let detail = format!("{:.1} MB (budget {:.0} MB)", mb(i.size), mb(budget));
    if i.size <= budget {
        CheckResult::pass(&name, detail)
    } else {
        CheckResult::fail(
            &name,
            detail,
            "slim the runtime stage: distroless/cc base, strip = true and lto in the release profile, copy only the binary",
        )
    }
}

/// No secret-looking variable, label or history step.
pub fn secrets_check(image: &str, i: &Inspect, history: &[String]) -> CheckResult {
    let mut problems = Vec::new();
    for e in i.config.env.iter().flatten() {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        if (secret_looking_name(k) && !v.is_empty()) || secret_looking_value(v) {
            problems.push(format!("Env {k}"));
        }
    }
    for (k, v) in i.config.labels.iter().flatten() {
        if secret_looking_name(k) || secret_looking_value(v) {
            problems.push(format!("Label {k}"));
        }
    }
    for (n, step) in history.iter().enumerate() {
        let leaks = step.split_whitespace().any(|w| {
            let (k, v) = w.split_once('=').unwrap_or(("", w));
            (secret_looking_name(k) && !v.is_empty()) || secret_looking_value(v)
        });
        if leaks {
            problems.push(format!("history step {n}"));
        }
    }
    CheckResult::from_problems(
        &format!("image secrets: {image}"),
        "no secrets in Env, Labels or history",
        &problems,
        "remove the secret from the Dockerfile (ARG/ENV/RUN); pass it at run time from the chart's Secret",
    )
}

/// The newest local `repo:tag` of a repository, from `docker image ls --format '{{json .}}'`.
pub fn newest_tag(stdout: &str, repo: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Line {
        #[serde(rename = "Repository")]
        repository: String,
        #[serde(rename = "Tag")]
        tag: String,
    }
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l.trim()).ok())
        .find(|l| l.repository == repo && l.tag != "<none>")
        .map(|l| format!("{}:{}", l.repository, l.tag))
}

/// Inspects the newest local image of each repository.
pub fn checks(ctx: &Context) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let sh = match ctx.sh() {
        Ok(sh) => sh,
        Err(e) => {
            return vec![CheckResult::fail(
                "images",
                format!("{e:#}"),
                "run from the workspace",
            )]
        }
    };
    for (repo, budget) in BUDGETS {
        let listed = match ctx.run(&docker::image_ls(&sh, &[repo])) {
            Ok(o) if o.ok() => o.stdout,
            Ok(o) => {
                out.push(CheckResult::skip(
                    &format!("image: {repo}"),
                    &format!("docker not answering: {}", o.reason()),
                    "start Docker to inspect the built images",
                ));
                continue;
            }
            Err(_) => {
                out.push(CheckResult::skip(
                    &format!("image: {repo}"),
                    "docker not found",
                    "install Docker to inspect the built images",
                ));
                continue;
            }
        };
        let Some(image) = newest_tag(&listed, repo) else {
            out.push(CheckResult::skip(
                &format!("image: {repo}"),
                "not built yet",
                "`cargo xtask deploy` builds it",
            ));
            continue;
        };
        let inspect = ctx
            .run(&docker::image_inspect(&sh, &image))
            .map_err(|e| format!("{e:#}"))
            .and_then(|o| {
                if o.ok() {
                    Ok(o.stdout)
                } else {
                    Err(o.reason())
                }
            })
            .and_then(|s| parse_inspect(&s).map_err(|e| format!("{e:#}")));
        let i = match inspect {
            Ok(i) => i,
            Err(e) => {
                out.push(CheckResult::fail(
                    &format!("image: {image}"),
                    e,
                    "rebuild with `cargo xtask deploy`",
                ));
                continue;
            }
        };
        let history: Vec<String> = ctx
            .run(&docker::history(&sh, &image))
            .ok()
            .filter(|o| o.ok())
            .map(|o| o.stdout.lines().map(str::to_string).collect())
            .unwrap_or_default();
        out.push(user_check(&image, &i));
        out.push(size_check(&image, &i, budget));
        out.push(secrets_check(&image, &i, &history));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::check::Outcome;
    use super::*;

    /// Shape of `docker image inspect` (Docker 20.10+), trimmed to the fields read.
    const INSPECT: &str = r#"[
    {
        "Id": "sha256:5d0da3dc976460b72c77d94c8a1ad043720b0416bfc16c52c45d4847e53fadb6",
        "RepoTags": ["todo-backend:3f9a1c2b7d4e"],
        "Config": {
            "User": "10001:10001",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=8000"],
            "Labels": {"org.opencontainers.image.title": "todo-backend"}
        },
        "Size": 31457280
    }
]"#;

    fn inspect() -> Inspect {
        match parse_inspect(INSPECT) {
            Ok(i) => i,
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn good_image_passes() {
        let i = inspect();
        assert_eq!(user_check("b", &i).outcome, Outcome::Pass);
        let s = size_check("b", &i, 40_000_000);
        assert_eq!(
            (s.outcome, s.detail.as_str()),
            (Outcome::Pass, "31.5 MB (budget 40 MB)")
        );
        let history = [
            "/bin/sh -c #(nop)  ENV PORT=8000".to_string(),
            "USER 10001:10001".to_string(),
        ];
        assert_eq!(secrets_check("b", &i, &history).outcome, Outcome::Pass);
    }

    #[test]
    fn root_big_leaky_image_fails() {
        let mut i = inspect();
        i.config.user = String::new();
        i.size = 120_000_000;
        i.config.env = Some(vec!["OPENAI_API_KEY=sk-live0123456789abc".into()]);
        assert_eq!(user_check("b", &i).outcome, Outcome::Fail);
        assert_eq!(size_check("b", &i, 40_000_000).outcome, Outcome::Fail);
        let history = ["RUN |1 DATABASE_URL=postgres://u:pw@db/x /bin/sh -c migrate".to_string()];
        let r = secrets_check("b", &i, &history);
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.detail, "Env OPENAI_API_KEY; history step 0");
    }

    #[test]
    fn newest_tag_skips_dangling() {
        let ls = "{\"Repository\":\"todo-backend\",\"Tag\":\"<none>\"}\n{\"Repository\":\"todo-backend\",\"Tag\":\"3f9a1c2b7d4e\"}\n";
        assert_eq!(
            newest_tag(ls, "todo-backend").as_deref(),
            Some("todo-backend:3f9a1c2b7d4e")
        );
        assert_eq!(newest_tag(ls, "todo-frontend"), None);
    }
}
