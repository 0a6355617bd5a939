//! Step 3: both images built in parallel, tagged by the content hash of their inputs; existing tags are not rebuilt.

use std::path::PathBuf;

use anyhow::Result;

use super::{Check, Image, State, Step};
use crate::context::{Cmd, Context, Failure};
use crate::hash::{image_tag, ImageInputs};
use crate::progress::Reporter;
use crate::tools::docker;

/// The images step.
pub struct Images;

/// The services and where their inputs are.
pub const SERVICES: [(&str, &str, &str); 2] = [
    ("backend", "backend/Dockerfile", "backend"),
    ("frontend", "frontend/Dockerfile", "frontend"),
];

/// Adds the docker-env variables (Docker runtime: the node's daemon) to a docker command.
pub fn in_target_daemon(mut c: Cmd, st: &State) -> Cmd {
    for (k, v) in &st.docker_env {
        c = c.env(k, v);
    }
    c
}

/// Hashes the inputs of both images (fills `st.images`).
pub fn compute_tags(ctx: &Context, st: &mut State) -> Result<()> {
    let mut images = Vec::new();
    for (service, dockerfile, dir) in SERVICES {
        let inputs = ImageInputs {
            root: ctx.root.clone(),
            dockerfile: PathBuf::from(dockerfile),
            crate_dir: PathBuf::from(dir),
        };
        let tag = image_tag(&inputs)?;
        images.push(Image {
            service,
            repository: format!("todo-{service}"),
            tag,
            built: false,
            loaded: false,
        });
    }
    st.images = images;
    Ok(())
}

fn exists(ctx: &Context, st: &State, image: &Image) -> Result<bool> {
    let out = ctx.runner.output(&in_target_daemon(
        docker::image_inspect(&image.reference()),
        st,
    ))?;
    Ok(out.ok())
}

impl Step for Images {
    fn name(&self) -> &'static str {
        "images"
    }

    fn check(&self, ctx: &Context, st: &mut State) -> Result<Check> {
        compute_tags(ctx, st)?;
        if !st.cluster_up && !st.docker_env.is_empty() {
            return Ok(Check::Run);
        }
        let mut missing = Vec::new();
        for img in &st.images {
            if !exists(ctx, st, img)? {
                missing.push(img.reference());
            }
        }
        if missing.is_empty() {
            let tags: Vec<String> = st.images.iter().map(Image::reference).collect();
            return Ok(Check::Skip(format!("up to date: {}", tags.join(", "))));
        }
        if st.args.skip_build {
            return Err(Failure::step(format!(
                "--skip-build, but no image for the current sources: {} (run without --skip-build)",
                missing.join(", ")
            ))
            .into());
        }
        Ok(Check::Run)
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let todo: Vec<usize> = (0..st.images.len())
            .filter(|i| !matches!(exists(ctx, st, &st.images[*i]), Ok(true)))
            .collect();
        let names: Vec<String> = todo.iter().map(|i| st.images[*i].reference()).collect();
        rep.note(self.name(), &format!("building {}", names.join(" and ")));
        let labels = label_args(&ctx.root);
        let cmds: Vec<(usize, Cmd)> = todo
            .iter()
            .map(|i| {
                let (_, dockerfile, _) = SERVICES[*i];
                (
                    *i,
                    in_target_daemon(
                        docker::build(&ctx.root, dockerfile, &st.images[*i].reference(), &labels),
                        st,
                    ),
                )
            })
            .collect();
        // Both builds at once: docker (BuildKit) serialises what must be serial; the rest overlaps.
        let results: Vec<(usize, Result<crate::context::Output>)> = std::thread::scope(|s| {
            let hs: Vec<_> = cmds
                .iter()
                .map(|(i, c)| {
                    let runner = ctx.runner.clone();
                    s.spawn(move || (*i, runner.output(c)))
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut failures = Vec::new();
        for (i, r) in results {
            let img = &mut st.images[i];
            match r {
                Ok(out) if out.ok() => img.built = true,
                Ok(out) => {
                    let tail: Vec<&str> = out.stderr.lines().rev().take(15).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    failures.push(format!(
                        "docker build of {} failed:\n{}",
                        img.reference(),
                        tail.join("\n")
                    ));
                }
                Err(e) => failures.push(format!("docker build of {}: {e:#}", img.reference())),
            }
        }
        if !failures.is_empty() {
            return Err(Failure::step(failures.join("\n")).into());
        }
        let target = if st.docker_env.is_empty() {
            "local docker"
        } else {
            "minikube's docker"
        };
        Ok(format!("built {} in {target}", names.join(", ")))
    }
}

/// Build args for the images' OCI labels: the workspace version and the git revision of the
/// sources (`-dirty` when the tree has uncommitted changes; `unknown` outside a git checkout).
fn label_args(root: &std::path::Path) -> Vec<(String, String)> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) if !rev.is_empty() => match git(&["status", "--porcelain"]) {
            Some(status) if !status.is_empty() => format!("{rev}-dirty"),
            _ => rev,
        },
        _ => "unknown".to_string(),
    };
    vec![
        ("VERSION".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("REVISION".to_string(), revision),
    ]
}
