//! Step 5: the namespace exists, both charts are installed with `helm upgrade --install`, and the rollout is
//! watched so that a failure that waiting cannot fix stops the deploy at once with a classified reason.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{Check, State, Step};
use crate::context::Context;
use crate::diagnose::{classify_rollout, Finding};
use crate::exit::Failure;
use crate::kube::{parse_items, Event, Pod};
use crate::process::Watched;
use crate::progress::{Budget, Reporter};
use crate::secrets::{Secrets, TempValues};
use crate::tools::helm::{self, Flavor, Upgrade};
use crate::tools::kubectl;

/// Label on a namespace that deploy created (clean deletes only those).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=todo-xtask";
/// Budget: a helm release.
pub const HELM_BUDGET: Duration = Duration::from_secs(60);
/// Budget: pods ready after the release starts.
pub const READY_BUDGET: Duration = Duration::from_secs(30);
/// How often the rollout is polled while helm waits.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// The release step.
pub struct Release;

/// Generated (non-secret) values of a chart: image and settings from docs/contracts.md.
pub fn chart_values(service: &str, repository: &str, tag: &str) -> serde_json::Value {
    let mut v =
        json!({ "image": { "repository": repository, "tag": tag, "pullPolicy": "IfNotPresent" } });
    if service == "frontend" {
        v["backendUrl"] = json!("http://todo-backend:8000");
    }
    v
}

/// The `--values` files that apply to `service`: `backend=FILE` / `frontend=FILE` for one chart,
/// a bare `FILE` for both (with strict schemas, a bare file must hold keys both charts accept).
pub fn values_for<'a>(args: &'a [String], service: &str) -> impl Iterator<Item = &'a Path> + 'a {
    let service = service.to_string();
    args.iter().filter_map(move |a| match a.split_once('=') {
        Some((chart, file)) if chart == "backend" || chart == "frontend" => {
            (chart == service).then_some(Path::new(file))
        }
        _ => Some(Path::new(a.as_str())),
    })
}

fn ensure_namespace(ctx: &Context, st: &State) -> Result<String> {
    let ns = &ctx.namespace;
    let sh = ctx.sh()?;
    if st.cluster_up {
        let out = ctx.run(&kubectl::get_namespace(&sh, &ctx.profile, ns))?;
        if out.ok() {
            return Ok(format!("namespace {ns} exists"));
        }
        if !kubectl::is_not_found(&out.stderr) {
            return Err(
                Failure::step(format!("cannot read namespace {ns}: {}", out.reason())).into(),
            );
        }
    }
    for cmd in [
        kubectl::create_namespace(&sh, &ctx.profile, ns),
        kubectl::label_namespace(&sh, &ctx.profile, ns, MANAGED_BY),
    ] {
        let out = ctx.run(&cmd)?;
        if !out.ok() {
            return Err(
                Failure::step(format!("`{}` failed: {}", cmd.display(), out.reason())).into(),
            );
        }
    }
    Ok(format!("namespace {ns} created"))
}

/// Pods and warning events of a release, for the classifier.
fn observe(ctx: &Context, release: &str) -> Option<(Vec<Pod>, Vec<Event>)> {
    let sel = format!("app.kubernetes.io/instance={release}");
    let sh = ctx.sh().ok()?;
    let out = ctx
        .run(&kubectl::get_pods(&sh, &ctx.profile, &ctx.namespace, &sel))
        .ok()?;
    if !out.ok() {
        return None;
    }
    let pods: Vec<Pod> = parse_items(&out.stdout).ok()?;
    let ev = ctx
        .run(&kubectl::get_warning_events(
            &sh,
            &ctx.profile,
            &ctx.namespace,
        ))
        .ok();
    let events: Vec<Event> = ev
        .filter(|o| o.ok())
        .and_then(|o| parse_items(&o.stdout).ok())
        .unwrap_or_default();
    Some((pods, events))
}

/// Last log lines of crashed containers, to show with a crash-loop finding.
fn crash_logs(ctx: &Context, pods: &[Pod]) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(sh) = ctx.sh() else { return out };
    for p in pods {
        for cs in &p.status.container_statuses {
            let crashed = cs
                .state
                .waiting
                .as_ref()
                .is_some_and(|w| w.reason == "CrashLoopBackOff")
                || cs.last_state.terminated.is_some();
            if !crashed {
                continue;
            }
            let cmd = kubectl::logs(
                &sh,
                &ctx.profile,
                &ctx.namespace,
                &p.metadata.name,
                &cs.name,
                20,
                true,
            );
            if let Ok(o) = ctx.run(&cmd) {
                if o.ok() && !o.stdout.trim().is_empty() {
                    out.push(format!(
                        "last log lines of {}/{}:\n{}",
                        p.metadata.name,
                        cs.name,
                        indent(&o.stdout)
                    ));
                }
            }
            if out.len() >= 2 {
                return out;
            }
        }
    }
    out
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How long helm gets, after SIGTERM, to finish what it does on cancel: with `--atomic` /
/// `--rollback-on-failure` it rolls the release back and waits for the old pods (up to its `--timeout`;
/// cmd/helm/upgrade.go signal handling, pkg/action/upgrade.go failRelease). Killing it sooner leaves the
/// release `pending-rollback` (or `uninstalling`), which the next deploy then has to recover. Bounded so a
/// rollback that cannot finish does not hold the deploy (or a Ctrl-C) for the whole timeout.
pub const HELM_STOP_GRACE: Duration = Duration::from_secs(90);

fn helm_grace(timeout_secs: u64) -> Duration {
    Duration::from_secs(timeout_secs.max(5)).min(HELM_STOP_GRACE)
}

/// The outcome of a rollback: whether the release is back on a working revision, and what to say.
struct Rolled {
    ok: bool,
    text: String,
}

/// `deployed at revision 4` from `helm status` (or why it cannot be read).
fn state_of(ctx: &Context, release: &str) -> (String, String) {
    let st = ctx
        .sh()
        .and_then(|sh| ctx.run(&helm::status(&sh, release, &ctx.namespace, &ctx.profile)))
        .ok()
        .filter(|o| o.ok())
        .and_then(|o| helm::Status::parse(&o.stdout).ok());
    match st {
        Some(s) => (
            s.info.status.clone(),
            s.version
                .map(|v| format!("revision {v}"))
                .unwrap_or_default(),
        ),
        None => ("unreadable".into(), String::new()),
    }
}

/// Rolls `release` back to its last good revision and waits for it (the flavor's wait flag, the release's
/// timeout), or uninstalls a failed first install; says what state the release reached.
fn roll_back(ctx: &Context, release: &str, flavor: Flavor, timeout_secs: u64) -> Rolled {
    let sh = match ctx.sh() {
        Ok(sh) => sh,
        Err(e) => {
            return Rolled {
                ok: false,
                text: format!("release {release} NOT rolled back: {e:#}"),
            }
        }
    };
    let hist = ctx
        .run(&helm::history(&sh, release, &ctx.namespace, &ctx.profile))
        .ok()
        .filter(|o| o.ok())
        .and_then(|o| helm::parse_history(&o.stdout).ok())
        .unwrap_or_default();
    let target = helm::rollback_target(&hist);
    let cmd = match target {
        Some(rev) => helm::rollback(
            &sh,
            release,
            rev,
            &ctx.namespace,
            &ctx.profile,
            flavor,
            timeout_secs,
        ),
        // First install: what --atomic does, uninstall the failed release.
        None => helm::uninstall(&sh, release, &ctx.namespace, &ctx.profile, true),
    };
    let out = match ctx.run(&cmd) {
        Ok(o) => o,
        Err(e) => {
            return Rolled {
                ok: false,
                text: format!("release {release} NOT rolled back: {e:#}"),
            }
        }
    };
    let diagnose = format!(
        "cargo xtask diagnose -p {} -n {}",
        ctx.profile, ctx.namespace
    );
    match (target, out.ok()) {
        (None, true) => Rolled {
            ok: true,
            text: format!("release {release}: the failed first install was uninstalled"),
        },
        // helm's own --atomic / --rollback-on-failure may have removed a failed first install already.
        (None, false) if out.reason().contains("not found") => Rolled {
            ok: true,
            text: format!("release {release} already removed by helm (failed first install)"),
        },
        (None, false) => Rolled {
            ok: false,
            text: format!(
                "release {release} NOT uninstalled: {}",
                cmd.redact(&out.reason())
            ),
        },
        (Some(rev), true) => {
            let (status, at) = state_of(ctx, release);
            let state = if ctx.dry_run || status == "deployed" {
                "deployed, pods ready".to_string()
            } else {
                format!("but the release is {status} at {at}")
            };
            Rolled {
                ok: ctx.dry_run || status == "deployed",
                text: format!("{release} rolled back to revision {rev} ({state})"),
            }
        }
        (Some(rev), false) => {
            let reason = cmd.redact(&out.reason());
            let (status, at) = state_of(ctx, release);
            let what = if reason.contains("context deadline exceeded")
                || reason.contains("timed out waiting")
            {
                format!("did not get ready within {timeout_secs} s")
            } else {
                "failed".to_string()
            };
            Rolled {
                ok: false,
                text: format!(
                    "rollback of {release} to revision {rev} {what} (helm: {reason}); release {release} is \
                     {status} at {at}, so its old version does not serve either: see `{diagnose}`"
                ),
            }
        }
    }
}

/// What helm did itself after it failed or was stopped (its own rollback, with `--atomic` /
/// `--rollback-on-failure`), and the state that left, when it did anything; None when the xtask must roll
/// back (helm was killed before, or did not try).
fn helm_own_recovery(ctx: &Context, release: &str, output: &str) -> Option<Rolled> {
    let diagnose = format!(
        "cargo xtask diagnose -p {} -n {}",
        ctx.profile, ctx.namespace
    );
    match helm::OwnRecovery::from_output(output) {
        helm::OwnRecovery::None => None,
        helm::OwnRecovery::Uninstalled => Some(Rolled {
            ok: true,
            text: format!("helm uninstalled the failed first install of {release} itself"),
        }),
        helm::OwnRecovery::RolledBack => {
            let rev = ctx
                .sh()
                .and_then(|sh| ctx.run(&helm::history(&sh, release, &ctx.namespace, &ctx.profile)))
                .ok()
                .and_then(|o| helm::parse_history(&o.stdout).ok())
                .and_then(|h| {
                    h.iter()
                        .max_by_key(|r| r.revision)
                        .and_then(helm::Revision::rolled_back_to)
                });
            let (status, at) = state_of(ctx, release);
            let to = rev.map(|r| format!(" to revision {r}")).unwrap_or_default();
            Some(Rolled {
                ok: status == "deployed",
                text: format!("helm rolled {release} back{to} itself ({status} at {at})"),
            })
        }
        helm::OwnRecovery::Failed => {
            let (status, at) = state_of(ctx, release);
            Some(Rolled {
                ok: false,
                text: format!(
                    "helm's own rollback of {release} failed; release {release} is {status} at {at}, so its old \
                     version does not serve either: see `{diagnose}`"
                ),
            })
        }
    }
}

/// A release an interrupted helm left behind blocks every later upgrade: `pending-*` with "another operation
/// is in progress", `uninstalling` with "has no deployed releases" (pkg/action/upgrade.go prepareUpgrade).
/// Put it back first: a pending one to its last good revision (waiting for it), an uninstalling one
/// uninstalled completely, so that it is installed afresh (the bundled database's claim and its
/// `resource-policy: keep` Secret survive, as with `clean`).
fn recover_pending(
    ctx: &Context,
    release: &str,
    rep: &Reporter,
    flavor: Flavor,
    timeout_secs: u64,
) -> Result<()> {
    if ctx.dry_run {
        return Ok(());
    }
    let sh = ctx.sh()?;
    let out = ctx.run(&helm::status(&sh, release, &ctx.namespace, &ctx.profile))?;
    if !out.ok() {
        return Ok(());
    }
    let status = helm::Status::parse(&out.stdout)?.info.status;
    if status == "uninstalling" {
        rep.println(&format!(
            "release {release} is uninstalling (an earlier `helm uninstall` was cut short; helm upgrades it \
             no more); finishing the uninstall, then installing it again"
        ));
        let cmd = helm::uninstall(&sh, release, &ctx.namespace, &ctx.profile, true);
        let out = ctx.run(&cmd)?;
        if !out.ok() && !out.reason().contains("not found") {
            return Err(Failure::step(format!(
                "release {release} is uninstalling and `{}` failed: {}; run it again, or `cargo xtask clean`",
                cmd.display(),
                cmd.redact(&out.reason())
            ))
            .into());
        }
        return Ok(());
    }
    if !status.starts_with("pending-") {
        return Ok(());
    }
    rep.println(&format!(
        "release {release} is {status} (an earlier helm was interrupted); recovering it first"
    ));
    let rolled = roll_back(ctx, release, flavor, timeout_secs);
    if !rolled.ok {
        return Err(Failure::step(format!(
            "{}; fix it with `helm rollback` or `cargo xtask clean`",
            rolled.text
        ))
        .into());
    }
    rep.println(&rolled.text);
    Ok(())
}

fn install(
    ctx: &Context,
    st: &mut State,
    rep: &Reporter,
    service: &'static str,
    values: &[&Path],
) -> Result<String> {
    let release = format!("todo-{service}");
    let flavor = st.helm.unwrap_or(Flavor::Helm3);
    recover_pending(ctx, &release, rep, flavor, st.args.timeout)?;
    let chart = ctx.root.join("helm").join(service);
    let up = Upgrade {
        release: &release,
        chart: &chart,
        namespace: &ctx.namespace,
        context: &ctx.profile,
        values: values.to_vec(),
        timeout_secs: st.args.timeout,
        flavor,
    };
    rep.note("release", &format!("helm upgrade --install {release}"));
    let started = Instant::now();
    let last_poll = Cell::new(Instant::now());
    let ready_at: Cell<Option<Duration>> = Cell::new(None);
    let seen: RefCell<Vec<Pod>> = RefCell::new(Vec::new());
    let finding: RefCell<Option<Finding>> = RefCell::new(None);
    let watch = || -> Option<String> {
        if ctx.dry_run || last_poll.get().elapsed() < POLL_EVERY {
            return None;
        }
        last_poll.set(Instant::now());
        let (pods, events) = observe(ctx, &release)?;
        if ready_at.get().is_none() && !pods.is_empty() && pods.iter().all(Pod::is_ready) {
            ready_at.set(Some(started.elapsed()));
        }
        let f = classify_rollout(&pods, &events);
        *seen.borrow_mut() = pods;
        let f = f?;
        let reason = f.what.clone();
        *finding.borrow_mut() = Some(f);
        Some(reason)
    };
    let deadline = Duration::from_secs(st.args.timeout + 30);
    let cmd = helm::upgrade_install(&ctx.sh()?, &up).secrets(st.secret_values.iter().cloned());
    // Stopped early (a finding, the deadline, Ctrl-C), helm gets SIGTERM and time to roll back itself.
    let grace = helm_grace(st.args.timeout);
    let result = ctx.runner.output_until(&cmd, deadline, grace, &watch)?;
    let took = started.elapsed();
    match result {
        Watched::Done(out) if out.ok() => {
            st.budgets.push(Budget {
                name: if service == "backend" {
                    "helm todo-backend"
                } else {
                    "helm todo-frontend"
                },
                measured: took,
                budget: HELM_BUDGET,
            });
            let ready = ready_at.get().unwrap_or(took);
            st.budgets.push(Budget {
                name: if service == "backend" {
                    "pods ready backend"
                } else {
                    "pods ready frontend"
                },
                measured: ready,
                budget: READY_BUDGET,
            });
            Ok(format!("{release} {}", describe_revision(ctx, &release)))
        }
        Watched::Done(out) => {
            // helm rolled back itself (--atomic / --rollback-on-failure); classify what it saw.
            let pods = observe(ctx, &release).map(|(p, e)| (classify_rollout(&p, &e), p));
            // helm's own error text can quote values: redacted like its command line.
            let mut msg = format!(
                "helm upgrade --install {release} failed: {}",
                cmd.redact(&out.reason())
            );
            if let Some((Some(f), p)) = pods {
                msg.push('\n');
                msg.push_str(&f.render());
                for l in crash_logs(ctx, &p) {
                    msg.push_str(&l);
                    msg.push('\n');
                }
            }
            if let Some(own) = helm_own_recovery(ctx, &release, &out.stderr) {
                msg.push('\n');
                msg.push_str(&own.text);
            }
            Err(Failure::step(msg).into())
        }
        Watched::Stopped { reason, output } => {
            let mut msg = format!("rollout of {release} stopped early: {reason}\n");
            if !output.stderr.trim().is_empty() {
                msg.push_str(&format!("helm said: {}\n", cmd.redact(&output.reason())));
            }
            if let Some(f) = finding.borrow().as_ref() {
                msg.push_str(&f.render());
            }
            for l in crash_logs(ctx, &seen.borrow()) {
                msg.push_str(&l);
                msg.push('\n');
            }
            // helm was stopped with SIGTERM and given time to end: with --atomic / --rollback-on-failure it
            // rolled back itself. Only when it did not (or could not finish) does the xtask roll back, after
            // helm has ended: never two rollbacks side by side.
            let helm_text = format!("{}{}", output.stdout, output.stderr);
            let rolled = helm_own_recovery(ctx, &release, &helm_text)
                .unwrap_or_else(|| roll_back(ctx, &release, flavor, st.args.timeout));
            msg.push_str(&rolled.text);
            msg.push_str(&format!(
                "\nmore: cargo xtask diagnose -p {} -n {}",
                ctx.profile, ctx.namespace
            ));
            Err(Failure::step(msg).into())
        }
    }
}

fn describe_revision(ctx: &Context, release: &str) -> String {
    if ctx.dry_run {
        return "(dry run)".into();
    }
    ctx.sh()
        .and_then(|sh| ctx.run(&helm::status(&sh, release, &ctx.namespace, &ctx.profile)))
        .ok()
        .filter(|o| o.ok())
        .and_then(|o| helm::Status::parse(&o.stdout).ok())
        .map(|s| match s.version {
            Some(v) => format!("rev {v} {}", s.info.status),
            None => s.info.status,
        })
        .unwrap_or_else(|| "installed".into())
}

impl Step for Release {
    fn name(&self) -> &'static str {
        "release"
    }

    fn check(&self, ctx: &Context, _st: &mut State) -> Result<Check> {
        for chart in ["backend", "frontend"] {
            let p = ctx.root.join("helm").join(chart).join("Chart.yaml");
            if !p.is_file() {
                return Err(Failure::step(format!("chart not found: {}", p.display())).into());
            }
        }
        Ok(Check::Run)
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let secrets = st
            .settings
            .as_ref()
            .map(|p| p.values.clone())
            .ok_or_else(|| Failure::step("the settings step did not run"))?;
        let mut details = vec![ensure_namespace(ctx, st)?];
        if let Some(url) = &secrets.database_url {
            let local = ["@localhost", "@127.0.0.1", "@[::1]"]
                .iter()
                .any(|h| url.contains(h));
            if local {
                rep.println(
                    "WARNING: DATABASE_URL points at localhost, which inside the cluster is the pod itself",
                );
            }
            details.push("external database".into());
        }
        let extra = st.args.values.clone();
        for service in ["backend", "frontend"] {
            if st
                .only
                .as_ref()
                .is_some_and(|only| !only.contains(&service))
            {
                continue;
            }
            let dev = ctx.root.join("helm").join(service).join("values-dev.yaml");
            let img = st
                .images
                .iter()
                .find(|i| i.service == service)
                .map(|i| (i.repository.clone(), i.tag.clone()))
                .ok_or_else(|| Failure::step(format!("no image tag for {service}")))?;
            let generated = TempValues::write(
                &format!("todo-{service}-values-"),
                &chart_values(service, &img.0, &img.1),
            )?;
            let secret_file = match service {
                "backend" if secrets != Secrets::default() => Some(TempValues::write(
                    "todo-secrets-",
                    &secrets.backend_values(),
                )?),
                _ => None,
            };
            // Local overrides first, then what the xtask generates, then the user's files: the user wins.
            let mut files: Vec<&Path> = Vec::new();
            if dev.is_file() {
                files.push(dev.as_path());
            }
            files.push(generated.path());
            files.extend(values_for(&extra, service));
            if let Some(s) = &secret_file {
                files.push(s.path());
            }
            details.push(install(ctx, st, rep, service, &files)?);
            // secret_file drops here: the 0600 file is gone before the next release starts.
        }
        Ok(details.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_files_are_routed_to_their_chart() {
        let args = vec![
            "backend=b.yaml".to_string(),
            "both.yaml".to_string(),
            "frontend=f.yaml".to_string(),
            "dir/with=sign.yaml".to_string(),
        ];
        let b: Vec<&Path> = values_for(&args, "backend").collect();
        let f: Vec<&Path> = values_for(&args, "frontend").collect();
        assert_eq!(
            b,
            [
                Path::new("b.yaml"),
                Path::new("both.yaml"),
                Path::new("dir/with=sign.yaml")
            ]
        );
        assert_eq!(
            f,
            [
                Path::new("both.yaml"),
                Path::new("f.yaml"),
                Path::new("dir/with=sign.yaml")
            ]
        );
    }

    #[test]
    fn values_follow_the_contract() {
        let b = chart_values("backend", "todo-backend", "0123456789ab");
        assert_eq!(b["image"]["tag"], "0123456789ab");
        assert_eq!(b["image"]["pullPolicy"], "IfNotPresent");
        assert!(b.get("backendUrl").is_none());
        let f = chart_values("frontend", "todo-frontend", "x");
        assert_eq!(f["backendUrl"], "http://todo-backend:8000");
    }

    #[test]
    fn crash_loop_fixture_is_classified() {
        let pods: Vec<Pod> = parse_items(include_str!(
            "../../tests/fixtures/kubectl/pods-crashloopbackoff.json"
        ))
        .unwrap_or_default();
        assert!(!pods.is_empty());
        let f = classify_rollout(&pods, &[]);
        assert!(f.is_some(), "crash loop not classified");
        let ready: Vec<Pod> = parse_items(include_str!(
            "../../tests/fixtures/kubectl/pods-running-ready.json"
        ))
        .unwrap_or_default();
        assert!(classify_rollout(&ready, &[]).is_none());
    }
}
