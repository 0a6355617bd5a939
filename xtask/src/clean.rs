//! `cargo xtask clean`: removes what deploy made and nothing else, in reverse order, idempotently.
//!
//! Order: port-forwards, the releases (frontend first), with `--purge-data` the bundled database's data, the
//! namespace (only when deploy labelled it and it holds no kept data), the images loaded into the cluster, then
//! with `--images` the local images and with `--cluster` the profile.
//!
//! The bundled database's data stays by default, like `docker compose down` keeps volumes: the PVC (helm
//! never deletes a StatefulSet's claims) and its password Secret (`helm.sh/resource-policy: keep`), so the next
//! deploy adopts them and finds every task again. `--purge-data` removes them, after asking.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Deserialize;

use crate::cli::CleanArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::pipeline::{cluster, forward};
use crate::process::{interrupt, Call};
use crate::tools::minikube::{self, ClusterState};
use crate::tools::{docker, helm, kubectl};

/// Releases in uninstall order: the frontend depends on the backend, so it goes first.
pub const RELEASES: [&str; 2] = ["todo-frontend", "todo-backend"];
/// Image repositories deploy builds.
pub const REPOSITORIES: [&str; 2] = ["todo-backend", "todo-frontend"];
/// Label deploy puts on a namespace it created.
pub const MANAGED_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "todo-xtask");

/// One thing to remove and how.
#[derive(Debug, Clone)]
pub enum Removal {
    /// A `kubectl port-forward` that a running deploy supervises, recorded in a pid file.
    Forward {
        /// Process id (none while the supervisor restarts it).
        pid: Option<u32>,
        /// Its pid file.
        pid_file: PathBuf,
    },
    /// A pid file no live supervisor holds (its deploy ended or crashed): nothing is signalled.
    StalePidFile(PathBuf),
    /// An external command (helm uninstall, kubectl delete namespace, minikube image rm, docker rmi, minikube delete).
    Command {
        /// Human name of the object, e.g. `release todo-backend`.
        what: String,
        /// The command that removes it.
        cmd: Call,
    },
}

impl Removal {
    /// True for the deletion of kept database data.
    pub fn is_data(&self) -> bool {
        matches!(self, Removal::Command { what, .. } if what.ends_with("(the bundled database's data)"))
    }

    /// Human name of what goes away.
    pub fn describe(&self) -> String {
        match self {
            Removal::Forward { pid: Some(pid), .. } => format!("port-forward (pid {pid})"),
            Removal::Forward { pid: None, .. } => "port-forward (restarting)".to_string(),
            Removal::StalePidFile(p) => format!("stale pid file {}", p.display()),
            Removal::Command { what, .. } => what.clone(),
        }
    }
}

/// Pid files of port-forwards: `<root>/.cache/xtask/forward-<profile>.pid` or `forward-<profile>.<name>.pid`.
pub fn forward_pid_files(root: &Path, profile: &str) -> Vec<PathBuf> {
    let dir = root.join(".cache/xtask");
    let exact = format!("forward-{profile}.pid");
    let prefix = format!("forward-{profile}.");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == exact || (n.starts_with(&prefix) && n.ends_with(".pid")))
        })
        .collect();
    files.sort();
    files
}

fn forward_removals(root: &Path, profile: &str) -> Vec<Removal> {
    forward_pid_files(root, profile)
        .into_iter()
        .map(|file| {
            if !forward::supervised(&file) {
                return Removal::StalePidFile(file);
            }
            let pid = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| forward::recorded_pid(&s));
            Removal::Forward {
                pid,
                pid_file: file,
            }
        })
        .collect()
}

/// The kinds that can outlive `helm uninstall` of the backend: the StatefulSet's claims and kept Secrets.
const DATA_KINDS: &str = "persistentvolumeclaims,secrets";
/// Every object of the backend release carries this label (the claims from volumeClaimTemplates too).
const DATA_SELECTOR: &str = "app.kubernetes.io/instance=todo-backend";

/// An object that holds the bundled database's data and survives an uninstall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// `PersistentVolumeClaim` or `Secret`.
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl Kept {
    /// The kubectl word of its kind.
    pub fn kind_word(&self) -> &'static str {
        if self.kind == "Secret" {
            "secret"
        } else {
            "pvc"
        }
    }
}

/// Claims and `helm.sh/resource-policy: keep` Secrets among a `kubectl get pvc,secret -o json` List.
pub fn kept_data(json: &str) -> Result<Vec<Kept>> {
    #[derive(Deserialize)]
    struct Object {
        kind: String,
        #[serde(default)]
        metadata: crate::kube::ObjectMeta,
    }
    let items: Vec<Object> = crate::kube::parse_items(json)?;
    Ok(items
        .into_iter()
        .filter(|o| {
            o.kind == "PersistentVolumeClaim"
                || (o.kind == "Secret"
                    && o.metadata
                        .annotations
                        .get("helm.sh/resource-policy")
                        .map(String::as_str)
                        == Some("keep"))
        })
        .map(|o| Kept {
            kind: o.kind,
            name: o.metadata.name,
        })
        .collect())
}

/// The `app.kubernetes.io/managed-by` label of a namespace from `kubectl get namespace -o json`.
pub fn namespace_is_ours(json: &str) -> Result<bool> {
    #[derive(Deserialize)]
    struct Namespace {
        #[serde(default)]
        metadata: crate::kube::ObjectMeta,
    }
    let n: Namespace =
        serde_json::from_str(json).context("parsing `kubectl get namespace -o json`")?;
    Ok(n.metadata.labels.get(MANAGED_LABEL.0).map(String::as_str) == Some(MANAGED_LABEL.1))
}

/// Tags of our images among `minikube image ls --format json` (as the runtime names them).
pub fn cluster_images(images: &[minikube::ListedImage]) -> Vec<String> {
    let mut tags: Vec<String> = images
        .iter()
        .flat_map(|i| i.repo_tags.iter())
        .filter(|t| is_ours(t))
        .cloned()
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// True for `todo-backend:*` / `todo-frontend:*`, as given or under a name a node's runtime gives it
/// (`docker.io/[library/]`, cri-o's `localhost/`: see [`minikube::node_names`]).
pub fn is_ours(tag: &str) -> bool {
    let name = tag
        .strip_prefix("docker.io/library/")
        .or_else(|| tag.strip_prefix("docker.io/"))
        .or_else(|| tag.strip_prefix("localhost/"))
        .unwrap_or(tag);
    REPOSITORIES.iter().any(|r| {
        name.strip_prefix(r)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

#[derive(Deserialize)]
struct DockerImageLine {
    #[serde(rename = "Repository", default)]
    repository: String,
    #[serde(rename = "Tag", default)]
    tag: String,
}

/// `repo:tag` of our images from `docker image ls --format '{{json .}}'` (one object per line).
pub fn local_images(stdout: &str) -> Vec<String> {
    let mut tags: Vec<String> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<DockerImageLine>(l.trim()).ok())
        .filter(|i| i.tag != "<none>")
        .map(|i| format!("{}:{}", i.repository, i.tag))
        .filter(|t| is_ours(t))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// Works out what exists and what to remove; only read-only commands run here.
pub fn plan(ctx: &Context, opts: &CleanArgs) -> Result<(Vec<Removal>, Vec<String>)> {
    let mut removals = forward_removals(&ctx.root, &ctx.profile);
    let mut notes = Vec::new();
    let sh = ctx.sh()?;
    let state = cluster::profile_state(ctx, &sh)?;
    match &state {
        ClusterState::Missing => notes.push(format!(
            "Minikube profile {} does not exist: nothing to remove in a cluster",
            ctx.profile
        )),
        ClusterState::Unreadable if !opts.cluster => notes.push(format!(
            "{}. Releases, namespace and cluster images remain until it answers; then run clean again",
            cluster::unreadable(&ctx.profile)
        )),
        ClusterState::Misconfigured if !opts.cluster => notes.push(format!(
            "the kubeconfig entry of Minikube profile {p} is stale (minikube status: kubeconfig Misconfigured), \
             so nothing in the cluster can be reached: run `minikube -p {p} update-context` (or `cargo xtask \
             deploy`, which fixes it and keeps your current context) and clean again",
            p = ctx.profile
        )),
        ClusterState::Unreadable | ClusterState::Misconfigured => {}
        ClusterState::Stopped(host) if !opts.cluster => notes.push(format!(
            "Minikube profile {} is not running (host {host}): releases, namespace and cluster images remain; \
             start it (`minikube start -p {}`) and run clean again, or delete it with `cargo xtask clean --cluster`",
            ctx.profile, ctx.profile
        )),
        ClusterState::Stopped(_) => {}
        ClusterState::Running if opts.cluster => {}
        ClusterState::Running => removals.extend(cluster_removals(ctx, opts, &mut notes)?),
    }
    if opts.images {
        let out = ctx.run(&docker::image_ls(&sh, &REPOSITORIES))?;
        if out.ok() {
            for tag in local_images(&out.stdout) {
                removals.push(Removal::Command {
                    what: format!("local image {tag}"),
                    cmd: docker::image_rm(&sh, &tag),
                });
            }
        } else {
            notes.push(format!("local images not listed: docker: {}", out.reason()));
        }
    }
    if opts.cluster && state != ClusterState::Missing {
        removals.push(Removal::Command {
            what: format!("Minikube profile {} (the whole cluster)", ctx.profile),
            cmd: minikube::delete(&sh, &ctx.profile),
        });
    }
    Ok((removals, notes))
}

fn cluster_removals(
    ctx: &Context,
    opts: &CleanArgs,
    notes: &mut Vec<String>,
) -> Result<Vec<Removal>> {
    let mut out = Vec::new();
    let sh = ctx.sh()?;
    let (p, ns) = (&ctx.profile, &ctx.namespace);
    for release in RELEASES {
        if ctx.run(&helm::status(&sh, release, ns, p))?.ok() {
            out.push(Removal::Command {
                what: format!("release {release} (namespace {ns})"),
                cmd: helm::uninstall(&sh, release, ns, p, true),
            });
        }
    }
    let got = ctx.run(&kubectl::get_selected(
        &sh,
        p,
        ns,
        DATA_KINDS,
        DATA_SELECTOR,
    ))?;
    // Not knowing what data there is means keeping the namespace: deleting it would take any data with it.
    let listed = got.ok();
    let data = if listed {
        kept_data(&got.stdout)?
    } else {
        notes.push(format!(
            "could not list the bundled database's data ({}): kept namespace {ns}",
            got.reason()
        ));
        Vec::new()
    };
    if opts.purge_data {
        for d in &data {
            out.push(Removal::Command {
                what: format!("{} {} (the bundled database's data)", d.kind_word(), d.name),
                cmd: kubectl::delete(&sh, p, ns, d.kind_word(), &d.name),
            });
        }
    } else if !data.is_empty() {
        let names: Vec<String> = data
            .iter()
            .map(|d| format!("{} {}", d.kind_word(), d.name))
            .collect();
        notes.push(format!(
            "kept the bundled database's data in namespace {ns}: {}; the next `cargo xtask deploy` finds it \
             again. Remove it with `cargo xtask clean --purge-data`",
            names.join(", ")
        ));
    }
    let got = ctx.run(&kubectl::get_namespace(&sh, p, ns))?;
    if got.ok() && namespace_is_ours(&got.stdout)? && listed {
        if data.is_empty() || opts.purge_data {
            out.push(Removal::Command {
                what: format!("namespace {ns} (created by deploy)"),
                cmd: kubectl::delete_namespace(&sh, p, ns),
            });
        } else {
            notes.push(format!("kept namespace {ns}: it holds that data"));
        }
    }
    let ls = ctx.run(&minikube::image_ls(&sh, p))?;
    let images = if ls.ok() {
        minikube::parse_image_ls(&ls.stdout).map_err(|e| format!("{e:#}"))
    } else {
        Err(ls.reason())
    };
    match images {
        Err(why) => notes.push(format!("images in the cluster not listed: {why}")),
        Ok(images) => {
            for tag in cluster_images(&images) {
                out.push(Removal::Command {
                    what: format!("cluster image {tag}"),
                    cmd: minikube::image_rm(&sh, p, &tag),
                });
            }
        }
    }
    Ok(out)
}

/// Asks before deleting `what`; refuses without a terminal unless `--yes`.
fn confirm(what: &str, yes: bool) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::step(format!(
            "refusing to delete {what} without confirmation: no terminal to ask on; pass --yes to confirm"
        ))
        .into());
    }
    eprint!("Delete {what}? This cannot be undone. [y/N] ");
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(Failure::step(format!("kept {what}: not confirmed")).into())
    }
}

fn remove(ctx: &Context, r: &Removal) -> Result<()> {
    match r {
        Removal::Forward { pid, pid_file } => stop_forward(*pid, pid_file),
        Removal::StalePidFile(f) => {
            let _ = std::fs::remove_file(forward::lock_file(f));
            std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))
        }
        Removal::Command { cmd, .. } => {
            let out = ctx.run(cmd)?;
            if out.ok() || kubectl::is_not_found(&out.stderr) {
                Ok(())
            } else {
                anyhow::bail!("{}", cmd.redact(&out.reason()))
            }
        }
    }
}

/// Stops a supervised forward: the pid file goes first (the supervisor restarts nothing without it), then
/// the kubectl process group; then waits until the supervisor let go of its lock. A supervisor that was
/// just restarting writes the pid file again: that forward is stopped too.
fn stop_forward(pid: Option<u32>, pid_file: &Path) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut pid = pid;
    loop {
        let _ = std::fs::remove_file(pid_file);
        if let Some(p) = pid.take() {
            interrupt::stop(p, None, interrupt::GRACE);
        }
        if !forward::supervised(pid_file) {
            let _ = std::fs::remove_file(forward::lock_file(pid_file));
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "the xtask supervising {} did not let go within 15 s",
                pid_file.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| forward::recorded_pid(&s));
    }
}

fn say(ctx: &Context, event: &str, what: &str, detail: Option<&str>) {
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"event": event, "object": what, "detail": detail})
        );
    } else {
        match detail {
            Some(d) => println!("{event}: {what}: {d}"),
            None => println!("{event}: {what}"),
        }
    }
}

impl CleanArgs {
    /// Runs `cargo xtask clean`.
    pub fn run(&self, ctx: &Context) -> Result<()> {
        run(ctx, self)
    }
}

fn run(ctx: &Context, opts: &CleanArgs) -> Result<()> {
    let (removals, notes) = plan(ctx, opts)?;
    for n in &notes {
        say(ctx, "note", n, None);
    }
    if removals.is_empty() {
        say(ctx, "clean", "nothing to remove", None);
        return Ok(());
    }
    if ctx.dry_run {
        for r in &removals {
            say(ctx, "would remove", &r.describe(), None);
        }
        return Ok(());
    }
    if opts.cluster {
        confirm(
            &format!("Minikube profile {} and everything in it", ctx.profile),
            opts.yes,
        )?;
    } else if opts.purge_data && removals.iter().any(Removal::is_data) {
        confirm(
            &format!(
                "the bundled database's data (every task) in namespace {}",
                ctx.namespace
            ),
            opts.yes,
        )?;
    }
    let mut remaining = Vec::new();
    for r in &removals {
        match remove(ctx, r) {
            Ok(()) => say(ctx, "removed", &r.describe(), None),
            Err(e) => {
                say(ctx, "failed", &r.describe(), Some(&format!("{e:#}")));
                remaining.push(r.describe());
            }
        }
    }
    if remaining.is_empty() {
        return Ok(());
    }
    Err(Failure::step(format!(
        "clean left {} thing(s) behind: {}; fix the cause and run `cargo xtask clean` again",
        remaining.len(),
        remaining.join(", ")
    ))
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_our_images_only() {
        for t in [
            "todo-backend:3f9a1c2b7d4e",
            "docker.io/library/todo-frontend:8be0d41f6a93",
            "docker.io/todo-backend:x",
            "localhost/todo-backend:3f9a1c2b7d4e",
        ] {
            assert!(is_ours(t), "{t}");
        }
        for t in [
            "todo-backend-postgresql:16",
            "postgres:16",
            "docker.io/library/todo:1",
            "registry.k8s.io/pause:3.9",
            "localhost/other/todo-backend:1",
        ] {
            assert!(!is_ours(t), "{t}");
        }
    }

    #[test]
    fn cluster_images_from_image_ls() {
        let json = r#"[{"id":"1a2b","repoDigests":[],"repoTags":["docker.io/library/todo-backend:3f9a1c2b7d4e"],"size":"81234567"},{"id":"3c4d","repoDigests":[],"repoTags":["registry.k8s.io/pause:3.10"],"size":"736000"},{"id":"5e6f","repoDigests":[],"repoTags":["docker.io/library/todo-frontend:8be0d41f6a93"],"size":"21000000"}]"#;
        let images = match minikube::parse_image_ls(json) {
            Ok(i) => i,
            Err(e) => panic!("{e:#}"),
        };
        assert_eq!(
            cluster_images(&images),
            [
                "docker.io/library/todo-backend:3f9a1c2b7d4e",
                "docker.io/library/todo-frontend:8be0d41f6a93"
            ]
        );
    }

    #[test]
    fn local_images_skip_dangling_and_foreign() {
        let out = concat!(
            r#"{"Containers":"N/A","CreatedAt":"2026-11-25 21:30:00 +0000 UTC","Digest":"\u003cnone\u003e","ID":"0f1e2d3c4b5a","Repository":"todo-backend","Size":"38.2MB","Tag":"3f9a1c2b7d4e"}"#,
            "\n",
            r#"{"Containers":"N/A","ID":"9a8b7c6d5e4f","Repository":"todo-backend","Size":"38.2MB","Tag":"<none>"}"#,
            "\n",
            r#"{"Containers":"N/A","ID":"aa","Repository":"postgres","Size":"400MB","Tag":"16"}"#,
            "\n"
        );
        assert_eq!(local_images(out), ["todo-backend:3f9a1c2b7d4e"]);
    }

    #[test]
    fn namespace_deleted_only_when_labelled() {
        let ours = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"app.kubernetes.io/managed-by":"todo-xtask","kubernetes.io/metadata.name":"todo"},"name":"todo"}}"#;
        let theirs = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"labels":{"kubernetes.io/metadata.name":"todo"},"name":"todo"}}"#;
        assert!(matches!(namespace_is_ours(ours), Ok(true)));
        assert!(matches!(namespace_is_ours(theirs), Ok(false)));
    }

    #[test]
    fn pid_files_of_this_profile_only() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let cache = dir.path().join(".cache/xtask");
        std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("{e}"));
        for f in [
            "forward-todo.pid",
            "forward-todo.backend.pid",
            "forward-todo2.pid",
            "forward-other.pid",
            "notes.txt",
        ] {
            std::fs::write(cache.join(f), "999999999\n").unwrap_or_else(|e| panic!("{e}"));
        }
        let files = forward_pid_files(dir.path(), "todo");
        let names: Vec<_> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(names, ["forward-todo.backend.pid", "forward-todo.pid"]);
        // No supervisor holds their locks: the files are stale, no process is touched.
        let removals = forward_removals(dir.path(), "todo");
        assert!(removals
            .iter()
            .all(|r| matches!(r, Removal::StalePidFile(_))));
    }
}
