//! Step 1: tools found, versions supported, docker daemon up. Every problem is reported at once, with its fix.

use anyhow::Result;

use super::{State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::process::Output;
use crate::progress::Reporter;
use crate::tools::{docker, helm, kubectl, minikube, Version};

/// Oldest supported versions.
pub const MIN_DOCKER: Version = Version::new(20, 10, 0);
/// Oldest supported minikube.
pub const MIN_MINIKUBE: Version = Version::new(1, 30, 0);
/// Oldest supported helm (3.8: OCI and `--wait` for jobs settled).
pub const MIN_HELM: Version = Version::new(3, 8, 0);
/// Oldest supported kubectl.
pub const MIN_KUBECTL: Version = Version::new(1, 27, 0);

/// The preflight step.
pub struct Preflight;

/// A tool the deploy needs.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// Program name.
    pub name: &'static str,
    /// Minimum version.
    pub min: Version,
}

/// The four tools (how to install each comes from [`crate::tools::fix_for`]).
pub const TOOLS: [Tool; 4] = [
    Tool {
        name: "docker",
        min: MIN_DOCKER,
    },
    Tool {
        name: "minikube",
        min: MIN_MINIKUBE,
    },
    Tool {
        name: "helm",
        min: MIN_HELM,
    },
    Tool {
        name: "kubectl",
        min: MIN_KUBECTL,
    },
];

/// What preflight found about one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Not on PATH.
    Missing,
    /// Version could not be read.
    Unreadable(String),
    /// Older than supported.
    TooOld(Version),
    /// Fine.
    Ok(Version),
}

/// What the buildx check of a docker CLI 23+ found: its version and whether `docker buildx version` worked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildxCheck {
    /// The docker client's version.
    pub client: Version,
    /// Err: why `docker buildx version` failed.
    pub plugin: Result<(), String>,
}

/// Turns the answers into a problem list (empty when all is fine).
pub fn problems(
    findings: &[(Tool, Finding)],
    docker_daemon: Option<Result<(), String>>,
    buildx: Option<&BuildxCheck>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (t, f) in findings {
        let fix = crate::tools::fix_for(t.name);
        match f {
            Finding::Missing => out.push(crate::tools::missing(t.name).message),
            Finding::Unreadable(e) => {
                out.push(format!("{}: cannot read its version ({e}): {fix}", t.name))
            }
            Finding::TooOld(v) => out.push(format!(
                "{} {v} is too old (need >= {}): {fix}",
                t.name, t.min
            )),
            Finding::Ok(_) => {}
        }
    }
    if let Some(Err(e)) = docker_daemon {
        out.push(format!(
            "docker daemon not reachable ({e}): start it (`sudo systemctl start docker`, or run `dockerd` as root)"
        ));
    }
    if let Some(BuildxCheck {
        client,
        plugin: Err(e),
    }) = buildx
    {
        // docker/cli v23+ cmd/docker/builder.go: with DOCKER_BUILDKIT=1 and no working buildx plugin every
        // build fails ("BuildKit is enabled but the buildx component is missing or broken").
        out.push(format!(
            "docker {client} builds with BuildKit only through the buildx plugin, which is missing or broken \
             (`docker buildx version`: {e}); the Dockerfiles need BuildKit (`RUN --mount`): install buildx \
             (https://docs.docker.com/go/buildx/; Debian/Ubuntu: the `docker-buildx-plugin` package of Docker's \
             repository, or Debian's `docker-buildx`), or set XTASK_DOCKER to a docker 20.10 client, whose \
             built-in BuildKit needs no plugin"
        ));
    }
    out
}

fn version_of(tool: &str, out: &Output) -> Result<Version, String> {
    let v = match tool {
        "docker" => docker::DockerVersion::parse(&out.stdout)
            .ok()
            .and_then(|v| v.client_version()),
        "minikube" => serde_json::from_str::<minikube::MinikubeVersion>(out.stdout.trim())
            .ok()
            .and_then(|v| Version::parse_loose(&v.minikube_version)),
        "helm" => helm::parse_version(&out.stdout).map(|v| v.0),
        _ => kubectl::KubectlVersion::parse(&out.stdout).ok(),
    };
    v.ok_or_else(|| out.reason())
}

/// Looks `tool` up and asks for its version.
fn ask(ctx: &Context, t: Tool) -> (Tool, Finding, Option<Output>) {
    let program = if t.name == "docker" {
        docker::program()
    } else {
        t.name.to_string()
    };
    if !crate::tools::available(&program) {
        return (t, Finding::Missing, None);
    }
    let call = ctx.sh().map(|sh| match t.name {
        "docker" => docker::version(&sh),
        "minikube" => minikube::version(&sh),
        "helm" => helm::version(&sh),
        _ => kubectl::version(&sh),
    });
    match call.and_then(|c| ctx.run(&c)) {
        Ok(out) => {
            let f = match version_of(t.name, &out) {
                Ok(v) if v < t.min => Finding::TooOld(v),
                Ok(v) => Finding::Ok(v),
                Err(e) => Finding::Unreadable(e),
            };
            (t, f, Some(out))
        }
        Err(e) => (t, Finding::Unreadable(format!("{e:#}")), None),
    }
}

impl Step for Preflight {
    fn name(&self) -> &'static str {
        "preflight"
    }

    fn run(&self, ctx: &Context, st: &mut State, _rep: &mut Reporter) -> Result<String> {
        // Version queries run in parallel: four process start-ups instead of four in a row.
        let answers: Vec<(Tool, Finding, Option<Output>)> = std::thread::scope(|s| {
            let handles: Vec<_> = TOOLS
                .iter()
                .map(|t| s.spawn(move || ask(ctx, *t)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let daemon = answers
            .iter()
            .find(|a| a.0.name == "docker")
            .and_then(|(_, f, out)| match (f, out) {
                (Finding::Ok(_) | Finding::TooOld(_), Some(out)) => Some(
                    match docker::DockerVersion::parse(&out.stdout)
                        .ok()
                        .and_then(|v| v.server)
                    {
                        Some(_) => Ok(()),
                        None => Err(out.reason()),
                    },
                ),
                _ => None,
            });
        let findings: Vec<(Tool, Finding)> =
            answers.iter().map(|(t, f, _)| (*t, f.clone())).collect();
        let buildx = findings.iter().find_map(|(t, f)| match f {
            Finding::Ok(v) if t.name == "docker" && *v >= docker::BUILDX_REQUIRED_FROM => {
                let plugin = ctx
                    .sh()
                    .and_then(|sh| ctx.run(&docker::buildx_version(&sh)))
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|o| if o.ok() { Ok(()) } else { Err(o.reason()) });
                Some(BuildxCheck { client: *v, plugin })
            }
            _ => None,
        });
        let list = problems(&findings, daemon, buildx.as_ref());
        if !list.is_empty() {
            let mut msg = format!("{} prerequisite problem(s):", list.len());
            for p in &list {
                msg.push_str("\n  - ");
                msg.push_str(p);
            }
            return Err(Failure::prereq(msg).into());
        }
        let helm_out = answers
            .iter()
            .find(|a| a.0.name == "helm")
            .and_then(|a| a.2.as_ref());
        st.helm = helm_out
            .and_then(|o| helm::parse_version(&o.stdout))
            .map(|v| v.1);
        st.builder = Some(if buildx.is_some() {
            docker::Builder::Buildx
        } else {
            docker::Builder::BuiltIn
        });
        let versions: Vec<String> = findings
            .iter()
            .filter_map(|(t, f)| match f {
                Finding::Ok(v) => Some(format!("{} {v}", t.name)),
                _ => None,
            })
            .collect();
        Ok(versions.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_problems_are_listed_with_fixes() {
        let f = vec![
            (TOOLS[0], Finding::Ok(Version::new(20, 10, 24))),
            (TOOLS[1], Finding::Missing),
            (TOOLS[2], Finding::TooOld(Version::new(3, 7, 0))),
            (TOOLS[3], Finding::Ok(Version::new(1, 31, 0))),
        ];
        let p = problems(
            &f,
            Some(Err("Cannot connect to the Docker daemon".into())),
            None,
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].contains("minikube not found") && p[0].contains("https://minikube.sigs.k8s.io")
        );
        assert!(p[1].contains("helm 3.7.0 is too old (need >= 3.8.0)"));
        assert!(p[2].contains("docker daemon not reachable") && p[2].contains("dockerd"));
        assert!(problems(&f[..1], Some(Ok(())), None).is_empty());
        let no_buildx = BuildxCheck {
            client: Version::new(28, 2, 2),
            plugin: Err("docker: unknown command: docker buildx".into()),
        };
        let p = problems(&f[..1], Some(Ok(())), Some(&no_buildx));
        assert!(
            p.len() == 1
                && p[0].starts_with(
                    "docker 28.2.2 builds with BuildKit only through the buildx plugin"
                ),
            "{p:?}"
        );
        let buildx = BuildxCheck {
            plugin: Ok(()),
            ..no_buildx
        };
        assert!(problems(&f[..1], Some(Ok(())), Some(&buildx)).is_empty());
    }
}
