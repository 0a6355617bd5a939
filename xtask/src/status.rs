//! `cargo xtask status`: what is deployed, at a glance. Each release's revision, status and chart; the image
//! tag it runs against the tag of the current sources (up to date, or stale and which input changed); pods
//! ready and restarts; the URL of a supervised forward.

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::cli::StatusArgs;
use crate::context::Context;
use crate::hash::{self, Digests};
use crate::kube::{parse_items, Pod};
use crate::pipeline::forward;
use crate::pipeline::images::{self, Profile};
use crate::tools::{helm, kubectl};

/// The releases, in the order they are shown.
const RELEASES: [(&str, &str); 2] = [("todo-backend", "backend"), ("todo-frontend", "frontend")];

/// One row of `helm list -o json` (its `revision` is a string, unlike `helm history`'s).
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    /// Release name.
    pub name: String,
    /// Revision, as text.
    pub revision: String,
    /// `deployed`, `failed`, `pending-upgrade`...
    pub status: String,
    /// `chart-version`, e.g. `backend-0.1.0`.
    pub chart: String,
}

/// Where the running image stands against the sources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Freshness {
    /// The running tag is the current sources' tag for this profile.
    UpToDate {
        /// `release` or `image-dev`.
        profile: String,
    },
    /// The sources changed since the running image was built.
    Stale {
        /// The inputs that differ (empty when the running image's inputs are unknown here).
        changed: Vec<String>,
    },
    /// No image tag (the release is not installed).
    Unknown,
}

/// Compares a running tag with the current sources' digests of both profiles; `recorded` are the digests
/// the running image was built from, when this workspace remembers them.
pub fn freshness(running: &str, current: &[Digests], recorded: Option<&Digests>) -> Freshness {
    if running.is_empty() {
        return Freshness::Unknown;
    }
    if let Some(d) = current.iter().find(|d| d.tag() == running) {
        return Freshness::UpToDate {
            profile: d.profile.clone(),
        };
    }
    let changed = recorded
        .and_then(|old| {
            current
                .iter()
                .find(|d| d.profile == old.profile)
                .map(|now| now.changed_since(old))
        })
        .unwrap_or_default();
    Freshness::Stale { changed }
}

/// What `status` reports about one release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseStatus {
    /// Release name.
    pub release: String,
    /// Revision, status and chart from helm; None when not installed.
    pub revision: Option<String>,
    /// Helm status.
    pub status: Option<String>,
    /// Chart and version.
    pub chart: Option<String>,
    /// The image the release runs.
    pub image: Option<String>,
    /// Against the sources.
    pub sources: Freshness,
    /// Pods ready / total, and restarts of their containers.
    pub pods_ready: usize,
    /// Pods of the release (the bundled PostgreSQL's included).
    pub pods: usize,
    /// Container restarts.
    pub restarts: u32,
}

fn list(ctx: &Context) -> Result<Vec<Listed>> {
    let sh = ctx.sh()?;
    let out = ctx.run(&helm::list(&sh, &ctx.namespace, &ctx.profile))?;
    if !out.ok() {
        return Err(crate::exit::Failure::step(format!(
            "cannot list the releases in namespace {}: {}",
            ctx.namespace,
            out.reason()
        ))
        .into());
    }
    let text = out.stdout.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).context("parsing `helm list -o json`")
}

fn running_tag(ctx: &Context, release: &str) -> Option<String> {
    let sh = ctx.sh().ok()?;
    let out = ctx
        .run(&helm::get_values(
            &sh,
            release,
            &ctx.namespace,
            &ctx.profile,
        ))
        .ok()
        .filter(|o| o.ok())?;
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).ok()?;
    v["image"]["tag"].as_str().map(str::to_string)
}

fn pods(ctx: &Context) -> Result<Vec<Pod>> {
    let sh = ctx.sh()?;
    let out = ctx.run(&kubectl::get_pods(
        &sh,
        &ctx.profile,
        &ctx.namespace,
        crate::logs::SELECTOR,
    ))?;
    if !out.ok() {
        return Ok(Vec::new());
    }
    parse_items(&out.stdout)
}

/// The URL of a forward a running xtask supervises for this profile.
fn forward_url(ctx: &Context) -> Option<String> {
    let pf = forward::pid_file(&ctx.root, &ctx.profile, "todo-frontend");
    if !forward::supervised(&pf) {
        return None;
    }
    std::fs::read_to_string(&pf)
        .ok()
        .and_then(|t| forward::recorded_url(&t))
}

/// Gathers every release's status.
pub fn gather(ctx: &Context) -> Result<(Vec<ReleaseStatus>, Option<String>)> {
    let listed = list(ctx)?;
    let pods = pods(ctx)?;
    let mut out = Vec::new();
    for (release, service) in RELEASES {
        let l = listed.iter().find(|l| l.name == release);
        let tag = l
            .and_then(|_| running_tag(ctx, release))
            .unwrap_or_default();
        let repository = format!("todo-{service}");
        let mut current = Vec::new();
        for profile in [Profile::Release, Profile::Dev] {
            if let Some(inputs) = images::inputs(ctx, service, profile) {
                current.push(hash::digests(&ctx.runner, &inputs)?);
            }
        }
        let recorded = hash::recall(&ctx.root, &repository, &tag);
        let mine: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .get("app.kubernetes.io/instance")
                    .map(String::as_str)
                    == Some(release)
            })
            .collect();
        out.push(ReleaseStatus {
            release: release.to_string(),
            revision: l.map(|l| l.revision.clone()),
            status: l.map(|l| l.status.clone()),
            chart: l.map(|l| l.chart.clone()),
            image: (!tag.is_empty()).then(|| format!("{repository}:{tag}")),
            sources: freshness(&tag, &current, recorded.as_ref()),
            pods_ready: mine.iter().filter(|p| p.is_ready()).count(),
            pods: mine.len(),
            restarts: mine
                .iter()
                .flat_map(|p| p.status.container_statuses.iter())
                .map(|c| c.restart_count)
                .sum(),
        });
    }
    Ok((out, forward_url(ctx)))
}

/// The status as text, one block per release.
pub fn render(rows: &[ReleaseStatus], url: Option<&str>) -> String {
    let mut s = String::new();
    for r in rows {
        match (&r.revision, &r.status) {
            (Some(rev), Some(st)) => s.push_str(&format!(
                "{:<14} revision {rev} {st}, chart {}\n",
                r.release,
                r.chart.as_deref().unwrap_or("?")
            )),
            _ => {
                s.push_str(&format!("{:<14} not installed\n", r.release));
                continue;
            }
        }
        let sources = match &r.sources {
            Freshness::UpToDate { profile } if profile == "release" => "up to date".to_string(),
            Freshness::UpToDate { profile } => format!("up to date ({profile} build)"),
            Freshness::Stale { changed } if changed.is_empty() => {
                "stale: built from other sources".to_string()
            }
            Freshness::Stale { changed } => format!("stale: {} changed", changed.join(", ")),
            Freshness::Unknown => "no image".to_string(),
        };
        s.push_str(&format!(
            "{:<14} image {}: {sources}\n",
            "",
            r.image.as_deref().unwrap_or("?")
        ));
        s.push_str(&format!(
            "{:<14} pods {}/{} ready, {} restart(s)\n",
            "", r.pods_ready, r.pods, r.restarts
        ));
    }
    match url {
        Some(u) => s.push_str(&format!("forward        {u} (supervised)\n")),
        None => s.push_str("forward        none running (`cargo xtask deploy --keep-forward` or `cargo xtask dev`)\n"),
    }
    s
}

impl StatusArgs {
    /// Runs `cargo xtask status`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        crate::pipeline::require_cluster(ctx)?;
        let (rows, url) = gather(ctx)?;
        if ctx.json {
            println!(
                "{}",
                serde_json::json!({"event": "status", "namespace": ctx.namespace, "releases": rows, "forward": url})
            );
        } else {
            print!("{}", render(&rows, url.as_deref()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn digests(profile: &str, files: &[(&str, &str)]) -> Digests {
        Digests {
            profile: profile.into(),
            files: files
                .iter()
                .map(|(p, d)| (std::path::PathBuf::from(p), d.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn stale_names_the_input_that_changed() {
        let built = digests(
            "release",
            &[("backend/src/main.rs", "a"), ("Cargo.lock", "l")],
        );
        let now_release = digests(
            "release",
            &[("backend/src/main.rs", "b"), ("Cargo.lock", "l")],
        );
        let now_dev = digests(
            "image-dev",
            &[("backend/src/main.rs", "b"), ("Cargo.lock", "l")],
        );
        let current = [now_release.clone(), now_dev.clone()];
        assert_eq!(
            freshness(&built.tag(), &current, Some(&built)),
            Freshness::Stale {
                changed: vec!["backend/src/main.rs".into()]
            }
        );
        assert_eq!(
            freshness(&now_dev.tag(), &current, None),
            Freshness::UpToDate {
                profile: "image-dev".into()
            }
        );
        assert_eq!(
            freshness("0123456789ab", &current, None),
            Freshness::Stale { changed: vec![] }
        );
        assert_eq!(freshness("", &current, None), Freshness::Unknown);
    }

    #[test]
    fn text_says_what_runs_and_where() {
        let row = ReleaseStatus {
            release: "todo-backend".into(),
            revision: Some("3".into()),
            status: Some("deployed".into()),
            chart: Some("backend-0.1.0".into()),
            image: Some("todo-backend:0123456789ab".into()),
            sources: Freshness::Stale {
                changed: vec!["agent/src/lib.rs".into()],
            },
            pods_ready: 2,
            pods: 2,
            restarts: 1,
        };
        let text = render(&[row], Some("http://127.0.0.1:8080"));
        assert!(
            text.contains("todo-backend   revision 3 deployed, chart backend-0.1.0"),
            "{text}"
        );
        assert!(text.contains("stale: agent/src/lib.rs changed"), "{text}");
        assert!(text.contains("pods 2/2 ready, 1 restart(s)"), "{text}");
        assert!(
            text.contains("http://127.0.0.1:8080 (supervised)"),
            "{text}"
        );
    }
}
