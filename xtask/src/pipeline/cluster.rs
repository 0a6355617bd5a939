//! Step 2: the Minikube profile runs (started if not); the node's container runtime is detected.
//! Minikube is started with `--keep-context`: the user's current kube context is never switched.

use anyhow::{Context as _, Result};
use xshell::Shell;

use super::{State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::progress::Reporter;
use crate::tools::kubectl;
use crate::tools::minikube::{self, ClusterState, ProfileList, Runtime};

/// The cluster step.
pub struct Cluster;

/// `minikube status` of the profile; a `null` status is told apart from a missing profile by
/// `minikube profile list` (a profile it lists exists, whatever its state).
pub fn profile_state(ctx: &Context, sh: &Shell) -> Result<ClusterState> {
    let out = ctx.run(&minikube::status(sh, &ctx.profile))?;
    let state = minikube::parse_status(out.code, &out.stdout)?;
    if state != ClusterState::Unreadable {
        return Ok(state);
    }
    let out = ctx.run(&minikube::profile_list(sh))?;
    let listed = ProfileList::parse(&out.stdout)
        .map(|l| l.get(&ctx.profile).is_some())
        .unwrap_or(true);
    Ok(if listed {
        ClusterState::Unreadable
    } else {
        ClusterState::Missing
    })
}

/// What to say about a profile whose state minikube cannot read.
pub fn unreadable(profile: &str) -> String {
    format!(
        "minikube cannot read the state of profile {profile}: `minikube -p {profile} status -o json` printed \
         `null`, yet `minikube profile list` lists the profile, so it exists. Its driver does not answer or its \
         node is gone: with the docker driver, start the Docker daemon (`sudo systemctl start docker`, or run \
         `dockerd`) and check with `minikube -p {profile} status`; a node that is gone can only be deleted \
         (`cargo xtask clean --cluster`)"
    )
}

/// What to say about a kubeconfig entry `minikube update-context` could not fix.
fn misconfigured(profile: &str, why: &str) -> String {
    format!(
        "profile {profile} runs, but its kubeconfig entry is Misconfigured (`minikube status`, exit bit 4: no \
         usable context for it, or an old endpoint), so kubectl and helm cannot reach it; {why}: run \
         `minikube -p {profile} update-context` (it also makes {profile} your current context; \
         `kubectl config use-context <yours>` puts yours back) and deploy again"
    )
}

/// Fails with a prerequisite error (exit 3) unless the profile runs and kubectl can reach it: for commands
/// that only read the cluster (`logs`, `status`), which change nothing, not even the kubeconfig.
pub fn require_cluster(ctx: &Context) -> Result<()> {
    let sh = ctx.sh()?;
    let p = &ctx.profile;
    match profile_state(ctx, &sh)? {
        ClusterState::Running => Ok(()),
        ClusterState::Missing => Err(Failure::prereq(format!(
            "Minikube profile {p} does not exist: `cargo xtask deploy` creates it"
        ))
        .into()),
        ClusterState::Stopped(host) => Err(Failure::prereq(format!(
            "Minikube profile {p} is not running (host {}): start it with `minikube -p {p} start` or `cargo xtask deploy`",
            host.to_lowercase()
        ))
        .into()),
        ClusterState::Misconfigured => Err(Failure::prereq(misconfigured(
            p,
            "this command does not change your kubeconfig",
        ))
        .into()),
        ClusterState::Unreadable => Err(Failure::prereq(unreadable(p)).into()),
    }
}

/// Status bit 4: points the profile's kubeconfig entry at the running cluster with `minikube update-context`,
/// then puts back the user's current context, which update-context switches to the profile.
fn fix_kubeconfig(ctx: &Context, sh: &Shell, rep: &mut Reporter) -> Result<String> {
    let p = &ctx.profile;
    rep.note(
        "cluster",
        &format!(
            "the kubeconfig entry of profile {p} is stale (minikube status: kubeconfig Misconfigured); \
             fixing it with `minikube -p {p} update-context`, keeping your current context"
        ),
    );
    let before = ctx.run(&kubectl::current_context(sh))?;
    let previous = before
        .ok()
        .then(|| before.stdout.trim().to_string())
        .filter(|c| !c.is_empty());
    let out = ctx.run(&minikube::update_context(sh, p))?;
    if !out.ok() {
        return Err(Failure::prereq(misconfigured(
            p,
            &format!("`minikube -p {p} update-context` failed: {}", out.reason()),
        ))
        .into());
    }
    let restore = match &previous {
        Some(c) if c != p => Some(kubectl::use_context(sh, c)),
        Some(_) => None,
        None => Some(kubectl::unset_current_context(sh)),
    };
    if let Some(cmd) = restore {
        let out = ctx.run(&cmd)?;
        if !out.ok() {
            rep.println(&format!(
                "WARNING: `minikube update-context` made {p} your current context and `{}` failed: {}; put \
                 yours back with `kubectl config use-context <yours>`",
                cmd.display(),
                out.reason()
            ));
        }
    }
    if !ctx.dry_run {
        if let ClusterState::Misconfigured = profile_state(ctx, sh)? {
            return Err(Failure::prereq(misconfigured(
                p,
                "`minikube update-context` ran, but the entry is still Misconfigured",
            ))
            .into());
        }
    }
    Ok(format!(
        "kubeconfig entry fixed with `minikube -p {p} update-context`"
    ))
}

impl Step for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let p = &ctx.profile;
        let sh = ctx.sh()?;
        let state = profile_state(ctx, &sh)?;
        let what = match &state {
            ClusterState::Running | ClusterState::Misconfigured => None,
            ClusterState::Unreadable => return Err(Failure::prereq(unreadable(p)).into()),
            ClusterState::Missing => Some("did not exist".to_string()),
            ClusterState::Stopped(h) => Some(format!("was {}", h.to_lowercase())),
        };
        let mut detail = match what {
            None => format!("profile {p} running"),
            Some(what) => {
                rep.note(self.name(), &format!("profile {p} {what}; starting it"));
                let out = ctx.run(&minikube::start(&sh, p, st.args.cpus, st.args.memory))?;
                if !out.ok() {
                    return Err(Failure::step(format!(
                        "`minikube -p {p} start` failed: {}",
                        out.reason()
                    ))
                    .into());
                }
                if ctx.dry_run {
                    st.cluster_up = false;
                }
                format!("profile {p} started (it {what})")
            }
        };
        if state == ClusterState::Misconfigured {
            detail.push_str(&format!(", {}", fix_kubeconfig(ctx, &sh, rep)?));
        }
        if !st.cluster_up {
            st.runtime = Some(Runtime::Other);
            return Ok(detail);
        }
        let out = ctx.run(&minikube::profile_list(&sh))?;
        let list = ProfileList::parse(&out.stdout)?;
        let runtime = list
            .runtime_of(p)
            .with_context(|| format!("profile {p} is not in `minikube profile list`"))?;
        st.runtime = Some(runtime);
        if runtime == Runtime::Docker {
            let out = ctx.run(&minikube::docker_env(&sh, p))?;
            if !out.ok() {
                return Err(Failure::step(format!(
                    "`minikube -p {p} docker-env` failed: {}",
                    out.reason()
                ))
                .into());
            }
            st.docker_env = minikube::parse_docker_env(&out.stdout);
            detail.push_str(", runtime docker (images are built inside the node)");
        } else {
            detail.push_str(", runtime containerd/cri-o (images are loaded)");
        }
        Ok(detail)
    }
}
