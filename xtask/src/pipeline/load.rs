//! Step 4: images reach the node without a registry; images the node already has are skipped.

use anyhow::Result;

use super::{Check, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::progress::Reporter;
use crate::tools::minikube;

/// The load step.
pub struct Load;

fn missing_on_node(ctx: &Context, st: &State) -> Result<Vec<String>> {
    if !st.cluster_up {
        return Ok(st.images.iter().map(|i| i.reference()).collect());
    }
    let out = ctx.run(&minikube::image_ls(&ctx.sh()?, &ctx.profile))?;
    if !out.ok() {
        return Err(Failure::step(format!(
            "`minikube -p {} image ls` failed: {}",
            ctx.profile,
            out.reason()
        ))
        .into());
    }
    let listed = minikube::parse_image_ls(&out.stdout)?;
    Ok(st
        .images
        .iter()
        .map(|i| i.reference())
        .filter(|r| !minikube::has_image(&listed, r))
        .collect())
}

impl Step for Load {
    fn name(&self) -> &'static str {
        "load"
    }

    fn check(&self, ctx: &Context, st: &mut State) -> Result<Check> {
        if !st.docker_env.is_empty() {
            // The images step checked (or built) them in the node's own daemon.
            return Ok(Check::Skip("images live in the node's docker".into()));
        }
        if missing_on_node(ctx, st)?.is_empty() {
            return Ok(Check::Skip("the node has both images".into()));
        }
        Ok(Check::Run)
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let missing = missing_on_node(ctx, st)?;
        let sh = ctx.sh()?;
        let p = &ctx.profile;
        for r in &missing {
            rep.note(self.name(), &format!("loading {r}"));
            let out = ctx.run(&minikube::image_load(&sh, &ctx.profile, r))?;
            if !out.ok() {
                return Err(Failure::step(format!(
                    "`minikube image load {r}` failed: {}",
                    out.reason()
                ))
                .into());
            }
            if let Some(i) = st.images.iter_mut().find(|i| &i.reference() == r) {
                i.loaded = true;
            }
        }
        // `minikube image load` succeeds even when the image never reached the node: machine.DoLoadImages
        // (pkg/minikube/machine/cache_images.go, v1.30 to v1.38) only logs a node it could not load into ("Live
        // pushes are not considered a failure"). Without this check the release fails a step later with
        // ErrImagePull on docker.io/library/<image>.
        if st.cluster_up && !ctx.dry_run {
            let still = missing_on_node(ctx, st)?;
            if !still.is_empty() {
                let cmds: Vec<String> = still
                    .iter()
                    .map(|r| format!("`minikube -p {p} image load {r}`"))
                    .collect();
                return Err(Failure::step(format!(
                    "{} exited 0, but {} not on the node (`minikube -p {p} image ls` does not list {}): minikube \
                     does not fail a load that did not reach a node, it only logs it. See why with the same \
                     command plus `--alsologtostderr -v=2` (often a full disk: `minikube -p {p} ssh -- df -h /var`), \
                     then deploy again",
                    cmds.join(" and "),
                    if still.len() == 1 { "the image is" } else { "the images are" },
                    still.join(", ")
                ))
                .into());
            }
        }
        Ok(format!("loaded {}", missing.join(", ")))
    }
}
