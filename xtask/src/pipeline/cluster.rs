//! Step 2: the Minikube profile runs (started if not); the node's container runtime is detected.
//! Minikube is started with `--keep-context`: the user's current kube context is never switched.

use anyhow::{Context as _, Result};

use super::{Check, State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::progress::Reporter;
use crate::tools::minikube::{self, ClusterState, ProfileList, Runtime};

/// Fails with a prerequisite error (exit 3) unless the profile runs: for commands that only read the cluster.
pub fn require_cluster(ctx: &Context) -> Result<()> {
    let sh = ctx.sh()?;
    let out = ctx.run(&minikube::status(&sh, &ctx.profile))?;
    match minikube::parse_status(out.code, &out.stdout)? {
        ClusterState::Running => Ok(()),
        ClusterState::Missing => Err(Failure::prereq(format!(
            "Minikube profile {} does not exist: `cargo xtask deploy` creates it",
            ctx.profile
        ))
        .into()),
        ClusterState::Stopped(host) => Err(Failure::prereq(format!(
            "Minikube profile {} is not running (host {}): start it with `minikube -p {} start` or `cargo xtask deploy`",
            ctx.profile,
            host.to_lowercase(),
            ctx.profile
        ))
        .into()),
    }
}

/// The cluster step.
pub struct Cluster;

impl Step for Cluster {
    fn name(&self) -> &'static str {
        "cluster"
    }

    fn check(&self, _ctx: &Context, _st: &mut State) -> Result<Check> {
        Ok(Check::Run)
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let p = &ctx.profile;
        let sh = ctx.sh()?;
        let out = ctx.run(&minikube::status(&sh, p))?;
        let state = minikube::parse_status(out.code, &out.stdout)?;
        let what = match &state {
            ClusterState::Running => None,
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
