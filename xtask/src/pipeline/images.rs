//! Step 3: both images built in parallel, tagged by the content hash of their inputs; existing tags are not rebuilt.

use std::path::PathBuf;

use anyhow::Result;

use super::build_errors::Collector;
use super::{Check, Image, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::hash::{self, ImageInputs};
use crate::process::Call;
use crate::progress::Reporter;
use crate::tools::{docker, git};

/// The images step.
pub struct Images;

/// The services and where their inputs are.
pub const SERVICES: [(&str, &str, &str); 2] = [
    ("backend", "backend/Dockerfile", "backend"),
    ("frontend", "frontend/Dockerfile", "frontend"),
];

/// Adds the docker-env variables (Docker runtime: the node's daemon) to a docker command.
pub fn in_target_daemon(c: Call, st: &State) -> Call {
    st.docker_env.iter().fold(c, |c, (k, v)| c.env(k, v))
}

/// The cargo profile an image is built with (the Dockerfiles' `CARGO_PROFILE` build arg).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// `[profile.release]`: thin LTO, what `deploy` ships.
    #[default]
    Release,
    /// `[profile.image-dev]`: no LTO, many codegen units, incremental, opt-level 1, for `dev` cycles.
    Dev,
}

impl Profile {
    /// The cargo profile name.
    pub fn cargo_name(self) -> &'static str {
        match self {
            Profile::Release => "release",
            Profile::Dev => "image-dev",
        }
    }
}

/// The inputs of a service's image.
pub fn inputs(ctx: &Context, service: &str, profile: Profile) -> Option<ImageInputs> {
    let (_, dockerfile, dir) = SERVICES.iter().find(|(s, ..)| *s == service)?;
    Some(ImageInputs {
        root: ctx.root.clone(),
        dockerfile: PathBuf::from(dockerfile),
        crate_dir: PathBuf::from(dir),
        profile: profile.cargo_name().to_string(),
    })
}

/// Hashes the inputs of both images (fills `st.images`) and remembers their digests for `status`.
pub fn compute_tags(ctx: &Context, st: &mut State) -> Result<()> {
    let mut images = Vec::new();
    for (service, ..) in SERVICES {
        let Some(inputs) = inputs(ctx, service, st.profile) else {
            continue;
        };
        let digests = hash::digests(&ctx.runner, &inputs)?;
        let repository = format!("todo-{service}");
        hash::remember(&ctx.root, &repository, &digests);
        images.push(Image {
            service,
            tag: digests.tag(),
            repository,
            digests,
            built: false,
            loaded: false,
        });
    }
    st.images = images;
    Ok(())
}

fn exists(ctx: &Context, st: &State, image: &Image) -> Result<bool> {
    let out = ctx.run(&in_target_daemon(
        docker::image_exists(&ctx.sh()?, &image.reference()),
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
        let mut labels = label_args(ctx)?;
        labels.push((
            "CARGO_PROFILE".to_string(),
            st.profile.cargo_name().to_string(),
        ));
        let sh = ctx.sh()?;
        let calls: Vec<(usize, Call)> = todo
            .iter()
            .map(|i| {
                let (_, dockerfile, _) = SERVICES[*i];
                let image = st.images[*i].reference();
                let builder = st.builder.unwrap_or(docker::Builder::BuiltIn);
                let build = docker::build(&sh, &ctx.root, dockerfile, &image, &labels, builder);
                (*i, in_target_daemon(build, st))
            })
            .collect();
        // Both builds at once: docker (BuildKit) serialises what must be serial; the rest overlaps.
        let results: Vec<(usize, Result<Built>)> = std::thread::scope(|s| {
            let hs: Vec<_> = calls
                .iter()
                .map(|(i, c)| s.spawn(move || (*i, build(ctx, c))))
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut failures = Vec::new();
        for (i, r) in results {
            let img = &mut st.images[i];
            match r {
                Ok(b) if b.code == 0 => img.built = true,
                // The compiler's own lines when it was the compiler; else what docker said last.
                Ok(b) if !b.errors.is_empty() => failures.push(format!(
                    "{} does not compile:\n{}",
                    img.service,
                    b.errors.join("\n")
                )),
                Ok(b) => failures.push(format!(
                    "docker build of {} failed:\n{}",
                    img.reference(),
                    b.tail.join("\n")
                )),
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

/// How a build ended: its exit code, the compiler's error lines, and the last lines it printed.
struct Built {
    code: i32,
    errors: Vec<String>,
    tail: Vec<String>,
}

/// Runs one `docker build` to its end (under Ctrl-C it is stopped with its process group).
fn build(ctx: &Context, call: &Call) -> Result<Built> {
    let collector = std::sync::Arc::new(std::sync::Mutex::new(Collector::default()));
    let sink = std::sync::Arc::clone(&collector);
    let Some(mut child) = ctx.runner.start(call, move |l| {
        if let Ok(mut c) = sink.lock() {
            c.push(l);
        }
    })?
    else {
        return Ok(Built {
            code: 0,
            errors: Vec::new(),
            tail: Vec::new(),
        });
    };
    let code = child.wait()?;
    let errors = std::sync::Arc::try_unwrap(collector)
        .ok()
        .and_then(|m| m.into_inner().ok())
        .map(Collector::lines)
        .unwrap_or_default();
    Ok(Built {
        code,
        errors,
        tail: child.tail(15),
    })
}

/// Build args for the images' OCI labels: the workspace version and the git revision of the
/// sources (`-dirty` when the tree has uncommitted changes; `unknown` outside a git checkout or without git).
fn label_args(ctx: &Context) -> Result<Vec<(String, String)>> {
    let sh = ctx.sh()?;
    let git = |call: Call| {
        crate::tools::available("git")
            .then(|| ctx.run(&call).ok())
            .flatten()
            .filter(|o| o.ok())
            .map(|o| o.stdout.trim().to_string())
    };
    let revision = match git(git::head(&sh, &ctx.root)) {
        Some(rev) if !rev.is_empty() => match git(git::status(&sh, &ctx.root)) {
            Some(status) if !status.is_empty() => format!("{rev}-dirty"),
            _ => rev,
        },
        _ => "unknown".to_string(),
    };
    Ok(vec![
        ("VERSION".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("REVISION".to_string(), revision),
    ])
}
