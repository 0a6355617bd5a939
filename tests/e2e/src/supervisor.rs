//! The double's kubelet and controllers: a background process that keeps Docker in line with the applied
//! releases (creates, rolls, restarts with backoff, deletes) and probes containers like the kubelet.

use crate::engine;
use crate::manifest::{Objects, Probe, Workload};
use crate::probe::{self, ProbeOutcome};
use crate::realise::{self, PodCtx};
use crate::state::{self, ContainerState, Desired, EventRecord, Observed, PodRecord};
use crate::view;
use anyhow::{Context, Result};
use chrono::Utc;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// argv[1] that turns any of the double's binaries into the supervisor.
pub const SUPERVISE_ARG: &str = "__cluster-double-supervise";

/// Starts the supervisor for `dir` unless one is alive.
pub fn ensure_running(dir: &Path) -> Result<()> {
    let pid_file = dir.join("supervisor.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(SUPERVISE_ARG) {
            return Ok(());
        }
    }
    let exe = std::env::current_exe().context("locating the double's binary")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("supervisor.log"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(SUPERVISE_ARG)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; detaching keeps the supervisor alive after the CLI call returns
    // and out of the caller's process group (the xtask's Ctrl-C must not reach it).
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .context("starting the cluster double's supervisor")?;
    state::write_atomic(&pid_file, child.id().to_string().as_bytes())?;
    Ok(())
}

/// Stops the supervisor of `dir`, if any (tests' teardown), with the `docker` calls it has in flight, and
/// returns once they are all gone: a `docker run` or `docker stop` still on its way when the test removes
/// its containers and stops the engine would leave a container (and its network endpoint) for the next
/// engine to restore.
pub fn stop(dir: &Path) {
    let Some(pid) = std::fs::read_to_string(dir.join("supervisor.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains(SUPERVISE_ARG) {
        return;
    }
    // The supervisor leads its own process group (setsid above): the group holds its docker calls too.
    for (signal, patience) in [(libc::SIGTERM, 10), (libc::SIGKILL, 5)] {
        // SAFETY: plain kill(2) on the group of a pid we verified is our supervisor.
        unsafe {
            libc::kill(-pid, signal);
        }
        let deadline = Instant::now() + Duration::from_secs(patience);
        while group_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !group_alive(pid) {
            return;
        }
    }
    eprintln!("the cluster double's supervisor (process group {pid}) did not stop");
}

/// True while a live (not zombie) process of process group `pgid` exists.
fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}

#[derive(Default)]
struct ProbeCounter {
    successes: u32,
    failures: u32,
    last_run: Option<Instant>,
    passed_once: bool,
}

#[derive(Default)]
struct PodRuntime {
    started: Option<Instant>,
    readiness: ProbeCounter,
    liveness: ProbeCounter,
    startup: ProbeCounter,
    restart_at: Option<Instant>,
    image_retry_at: Option<Instant>,
    /// Set while the pod terminates: when its grace period ends (SIGKILL then, as the kubelet does).
    terminate_by: Option<Instant>,
}

struct Supervisor {
    dir: PathBuf,
    owner: String,
    obs: Observed,
    rt: HashMap<String, PodRuntime>,
}

/// Runs the supervisor loop until the state dir disappears or the cluster has been empty for a while.
pub fn run(dir: PathBuf) -> Result<()> {
    let owner = state::state_id(&dir);
    let obs = state::read_observed(&dir).unwrap_or_default();
    let mut s = Supervisor {
        dir,
        owner,
        obs,
        rt: HashMap::new(),
    };
    let mut idle_since: Option<Instant> = None;
    loop {
        if !s.dir.join("desired.json").exists() {
            return Ok(());
        }
        let desired = match state::read_desired(&s.dir) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("supervisor: {e:#}");
                std::thread::sleep(Duration::from_millis(300));
                continue;
            }
        };
        if let Err(e) = s.tick(&desired) {
            eprintln!("supervisor: tick failed: {e:#}");
        }
        s.obs.updated = Some(Utc::now());
        state::write_observed(&s.dir, &s.obs)?;
        let empty = s.obs.pods.is_empty() && desired.releases.values().all(|r| r.applied.is_none());
        match (empty, idle_since) {
            (true, None) => idle_since = Some(Instant::now()),
            (true, Some(t)) if t.elapsed() > Duration::from_secs(60) => return Ok(()),
            (false, _) => idle_since = None,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn backoff(restarts: u32) -> Duration {
    if restarts == 0 {
        return Duration::ZERO;
    }
    let secs = 10u64.saturating_mul(1 << (restarts - 1).min(5)).min(300);
    Duration::from_secs(secs)
}

impl Supervisor {
    fn event(
        &mut self,
        ns: &str,
        kind: &str,
        name: &str,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let now = Utc::now();
        if let Some(e) = self.obs.events.iter_mut().find(|e| {
            e.namespace == ns && e.name == name && e.reason == reason && e.message == message
        }) {
            e.count += 1;
            e.last = now;
            return;
        }
        self.obs.events.push(EventRecord {
            namespace: ns.into(),
            kind: kind.into(),
            name: name.into(),
            reason: reason.into(),
            message,
            type_: type_.into(),
            count: 1,
            first: now,
            last: now,
        });
        if self.obs.events.len() > 400 {
            self.obs.events.drain(..100);
        }
    }

    fn tick(&mut self, desired: &Desired) -> Result<()> {
        let cluster_up = desired
            .profiles
            .values()
            .any(|p| p.host == state::HostState::Running);
        let objs = if cluster_up {
            view::objects_by_namespace(desired)?
        } else {
            BTreeMap::new()
        };
        self.process_deletions(desired)?;
        self.observe_containers();
        self.finish_terminations();
        self.reconcile(desired, &objs)?;
        self.probe_all();
        self.cleanup_networks(desired);
        self.obs.generation_seen = desired.generation;
        Ok(())
    }

    fn process_deletions(&mut self, desired: &Desired) -> Result<()> {
        if desired.pod_deletions.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = desired.pod_deletions.iter().cloned().collect();
        for key in &names {
            if let Some(p) = self
                .obs
                .pods
                .iter()
                .find(|p| format!("{}/{}", p.namespace, p.name) == *key)
                .cloned()
            {
                self.delete_pod(&p);
            }
        }
        state::update_desired(&self.dir, |d| {
            for n in &names {
                d.pod_deletions.remove(n);
            }
            Ok(())
        })
    }

    /// Deletes a pod as the kubelet does (pkg/kubelet/kuberuntime/kuberuntime_container.go killContainer): the
    /// pod is marked terminating (a deletionTimestamp; endpoints and rollouts leave it out at once), its
    /// container gets SIGTERM and `terminationGracePeriodSeconds` (default 30) before SIGKILL, and the pod is
    /// gone once the container has exited. A pod whose container never ran goes at once.
    fn delete_pod(&mut self, p: &PodRecord) {
        let Some(rec) = self.obs.pods.iter_mut().find(|x| x.uid == p.uid) else {
            return;
        };
        if rec.terminating {
            return;
        }
        rec.terminating = true;
        rec.ready = false;
        let running =
            rec.container_id.is_some() && matches!(rec.state, ContainerState::Running { .. });
        if !running {
            let rec = rec.clone();
            self.remove_pod(&rec);
            return;
        }
        let grace = p
            .spec
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(30);
        let cname = realise::container_name(&self.owner, &p.namespace, &p.name);
        // `docker stop -t`: SIGTERM (the image's STOPSIGNAL), SIGKILL when the grace runs out. In the
        // background: the supervisor goes on with the other pods meanwhile.
        let t = grace.to_string();
        std::thread::spawn(move || {
            let _ = engine::run(&["stop", "-t", &t, &cname]);
        });
        self.rt.entry(p.uid.clone()).or_default().terminate_by =
            Some(Instant::now() + Duration::from_secs(grace + 5));
        self.event(
            &p.namespace,
            "Pod",
            &p.name,
            "Normal",
            "Killing",
            format!("Stopping container {}", p.container_name),
        );
    }

    /// Removes a terminated pod: its container, its record, its emptyDirs.
    fn remove_pod(&mut self, p: &PodRecord) {
        let _ = engine::run(&[
            "rm",
            "-f",
            &realise::container_name(&self.owner, &p.namespace, &p.name),
        ]);
        self.rt.remove(&p.uid);
        self.obs.pods.retain(|x| x.uid != p.uid);
        let _ = std::fs::remove_dir_all(
            self.dir
                .join("volumes")
                .join(&p.namespace)
                .join("pods")
                .join(&p.name),
        );
    }

    /// Terminating pods whose container has exited, or whose grace has run out, are removed.
    fn finish_terminations(&mut self) {
        let done: Vec<PodRecord> = self
            .obs
            .pods
            .iter()
            .filter(|p| p.terminating)
            .filter(|p| {
                let over = self
                    .rt
                    .get(&p.uid)
                    .and_then(|r| r.terminate_by)
                    .is_none_or(|t| Instant::now() >= t);
                over || !matches!(p.state, ContainerState::Running { .. })
            })
            .cloned()
            .collect();
        for p in done {
            self.remove_pod(&p);
        }
    }

    fn observe_containers(&mut self) {
        let ids: Vec<String> = self
            .obs
            .pods
            .iter()
            .filter_map(|p| p.container_id.clone())
            .collect();
        let infos: HashMap<String, Value> = engine::inspect(&ids)
            .into_iter()
            .filter_map(|v| Some((v.get("Id")?.as_str()?.to_string(), v)))
            .collect();
        let now = Utc::now();
        let mut events = Vec::new();
        for p in self.obs.pods.iter_mut() {
            let Some(id) = p.container_id.clone() else {
                continue;
            };
            let rt = self.rt.entry(p.uid.clone()).or_default();
            let info = infos.get(&id);
            let running = info
                .and_then(|i| i.pointer("/State/Running"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let paused = info
                .and_then(|i| i.pointer("/State/Paused"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if let Some(ip) = info.and_then(engine::ip_address) {
                p.ip = Some(ip);
            }
            if running || paused {
                if !matches!(p.state, ContainerState::Running { .. }) {
                    let started = info
                        .and_then(|i| i.pointer("/State/StartedAt"))
                        .and_then(Value::as_str)
                        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                        .map(|d| d.with_timezone(&Utc))
                        .unwrap_or(now);
                    p.state = ContainerState::Running {
                        started_at: started,
                    };
                }
                continue;
            }
            if p.terminating {
                // Stopped on purpose: no restart, no back-off; finish_terminations removes it.
                p.state = ContainerState::Terminated {
                    exit_code: info
                        .and_then(|i| i.pointer("/State/ExitCode"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                    reason: "Completed".into(),
                    started_at: None,
                    finished_at: Some(now),
                    container_id: id.clone(),
                };
                continue;
            }
            if let ContainerState::Running { started_at } = p.state.clone() {
                let exit_code = info
                    .and_then(|i| i.pointer("/State/ExitCode"))
                    .and_then(Value::as_i64)
                    .unwrap_or(137);
                let oom = info
                    .and_then(|i| i.pointer("/State/OOMKilled"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let reason = if oom {
                    "OOMKilled"
                } else if exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                let term = ContainerState::Terminated {
                    exit_code,
                    reason: reason.into(),
                    started_at: Some(started_at),
                    finished_at: Some(now),
                    container_id: id.clone(),
                };
                p.last_state = Some(term);
                p.ready = false;
                p.ready_since = now;
                let delay = backoff(p.restart_count);
                rt.restart_at = Some(Instant::now() + delay);
                if delay.is_zero() {
                    p.state = p.last_state.clone().unwrap_or(p.state.clone());
                } else {
                    p.state = ContainerState::Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: format!(
                            "back-off {}s restarting failed container={} pod={}_{}({})",
                            delay.as_secs(),
                            p.container_name,
                            p.name,
                            p.namespace,
                            p.uid
                        ),
                    };
                    events.push((
                        p.namespace.clone(),
                        p.name.clone(),
                        "Warning",
                        "BackOff",
                        "Back-off restarting failed container".to_string(),
                    ));
                }
            }
        }
        for (ns, name, t, r, m) in events {
            self.event(&ns, "Pod", &name, t, r, m);
        }
    }

    fn reconcile(&mut self, desired: &Desired, objs: &BTreeMap<String, Objects>) -> Result<()> {
        // Pods whose workload is gone.
        let orphans: Vec<PodRecord> = self
            .obs
            .pods
            .iter()
            .filter(|p| {
                !objs.get(&p.namespace).is_some_and(|o| {
                    o.workloads
                        .iter()
                        .any(|w| w.kind == p.owner_kind && w.meta.name == p.owner_name)
                })
            })
            .cloned()
            .collect();
        for p in orphans {
            self.delete_pod(&p);
        }
        for (ns, o) in objs {
            for w in &o.workloads {
                let replicas = desired
                    .scale
                    .get(&format!("{ns}/{}/{}", w.kind, w.meta.name))
                    .copied()
                    .unwrap_or(w.replicas);
                if w.kind == "StatefulSet" {
                    self.reconcile_statefulset(desired, ns, o, w, replicas)?;
                } else {
                    self.reconcile_deployment(desired, ns, o, w, replicas)?;
                }
            }
            self.sync_aliases(ns, o);
        }
        // Pods waiting on a restart or an image.
        let pending: Vec<PodRecord> = self
            .obs
            .pods
            .iter()
            .filter(|p| !p.terminating)
            .cloned()
            .collect();
        for p in pending {
            let Some(o) = objs.get(&p.namespace) else {
                continue;
            };
            let Some(w) = o
                .workloads
                .iter()
                .find(|w| w.kind == p.owner_kind && w.meta.name == p.owner_name)
            else {
                continue;
            };
            let rt = self.rt.entry(p.uid.clone()).or_default();
            let due_restart = rt.restart_at.is_some_and(|t| Instant::now() >= t);
            let due_image =
                p.container_id.is_none() && rt.image_retry_at.is_none_or(|t| Instant::now() >= t);
            if due_restart || due_image {
                self.start_container(desired, &p.namespace, o, w, &p.name)?;
            }
        }
        let volumes = self.dir.join("volumes");
        if let Ok(rd) = std::fs::read_dir(&volumes) {
            for e in rd.flatten() {
                let ns = e.file_name().to_string_lossy().into_owned();
                if !desired.namespaces.contains_key(&ns)
                    && !self.obs.pods.iter().any(|p| p.namespace == ns)
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    fn new_pod(&mut self, ns: &str, w: &Workload, name: String) -> PodRecord {
        let mut labels = w.template.metadata.labels.clone();
        if w.kind == "Deployment" {
            labels.insert("pod-template-hash".into(), w.template_hash.clone());
        } else {
            labels.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
            labels.insert(
                "controller-revision-hash".into(),
                format!("{}-{}", w.meta.name, w.template_hash),
            );
        }
        let c = w
            .template
            .spec
            .containers
            .first()
            .cloned()
            .unwrap_or_default();
        let now = Utc::now();
        let p = PodRecord {
            name: name.clone(),
            namespace: ns.into(),
            uid: state::new_uid(),
            owner_kind: w.kind.clone(),
            owner_name: w.meta.name.clone(),
            template_hash: w.template_hash.clone(),
            labels,
            annotations: w.template.metadata.annotations.clone(),
            created: now,
            spec: w.template_json.get("spec").cloned().unwrap_or(Value::Null),
            container_name: c.name.clone(),
            image: c.image.clone(),
            container_id: None,
            image_id: None,
            state: ContainerState::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last_state: None,
            restart_count: 0,
            ready: false,
            ready_since: now,
            ip: None,
            aliases: Vec::new(),
            terminating: false,
        };
        self.obs.pods.push(p.clone());
        self.event(
            ns,
            "Pod",
            &name,
            "Normal",
            "Scheduled",
            format!("Successfully assigned {ns}/{name} to minikube"),
        );
        p
    }

    fn reconcile_deployment(
        &mut self,
        desired: &Desired,
        ns: &str,
        o: &Objects,
        w: &Workload,
        replicas: u32,
    ) -> Result<()> {
        let r = view::rollout(&self.obs, ns, w);
        // A terminating pod no longer counts: its replacement starts while it drains (ReplicaSet controller).
        let mine: Vec<PodRecord> = view::pods_of(&self.obs, ns, w)
            .into_iter()
            .filter(|p| !p.terminating)
            .cloned()
            .collect();
        let (current, old): (Vec<_>, Vec<_>) = mine
            .into_iter()
            .partition(|p| p.template_hash == w.template_hash);
        for _ in current.len() as u32..replicas {
            let name = format!(
                "{}-{}-{}",
                w.meta.name,
                w.template_hash,
                state::pod_suffix()
            );
            self.new_pod(ns, w, name.clone());
            self.start_container(desired, ns, o, w, &name)?;
        }
        for extra in current.iter().skip(replicas as usize) {
            self.delete_pod(extra);
        }
        if r.updated_ready >= replicas || replicas == 0 {
            for p in &old {
                self.delete_pod(p);
            }
        }
        Ok(())
    }

    fn reconcile_statefulset(
        &mut self,
        desired: &Desired,
        ns: &str,
        o: &Objects,
        w: &Workload,
        replicas: u32,
    ) -> Result<()> {
        let mine: Vec<PodRecord> = view::pods_of(&self.obs, ns, w)
            .into_iter()
            .cloned()
            .collect();
        for p in &mine {
            let ordinal: u32 = p
                .name
                .rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(u32::MAX);
            if ordinal >= replicas || p.template_hash != w.template_hash {
                self.delete_pod(p);
                return Ok(());
            }
        }
        for i in 0..replicas {
            let name = format!("{}-{i}", w.meta.name);
            match self
                .obs
                .pods
                .iter()
                .find(|p| p.namespace == ns && p.name == name)
            {
                Some(p) if p.ready => continue,
                Some(_) => return Ok(()),
                None => {
                    self.new_pod(ns, w, name.clone());
                    self.start_container(desired, ns, o, w, &name)?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn aliases_for(&self, ns: &str, o: &Objects, p: &PodRecord) -> Vec<String> {
        let mut out = Vec::new();
        // A terminating pod leaves its Services' endpoints at once (the EndpointSlice controller); the
        // reconnect that drops its aliases keeps its IP and its open connections, as kube-proxy's conntrack does.
        if p.terminating {
            return out;
        }
        for s in &o.services {
            if crate::manifest::selector_matches(&s.selector, &p.labels) {
                let n = &s.meta.name;
                out.extend([
                    n.clone(),
                    format!("{n}.{ns}"),
                    format!("{n}.{ns}.svc"),
                    format!("{n}.{ns}.svc.cluster.local"),
                ]);
                if p.owner_kind == "StatefulSet" {
                    out.push(format!("{}.{n}", p.name));
                    out.push(format!("{}.{n}.{ns}.svc.cluster.local", p.name));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn sync_aliases(&mut self, ns: &str, o: &Objects) {
        let pods: Vec<PodRecord> = self
            .obs
            .pods
            .iter()
            .filter(|p| p.namespace == ns && p.container_id.is_some())
            .cloned()
            .collect();
        for p in pods {
            let want = self.aliases_for(ns, o, &p);
            if want == p.aliases {
                continue;
            }
            let net = realise::network_name(&self.owner, ns);
            let cname = realise::container_name(&self.owner, ns, &p.name);
            let _ = engine::run(&["network", "disconnect", &net, &cname]);
            let connect = |ip: Option<&str>| {
                let mut args = vec!["network".to_string(), "connect".into()];
                for a in &want {
                    args.extend(["--alias".into(), a.clone()]);
                }
                if let Some(ip) = ip {
                    args.extend(["--ip".into(), ip.to_string()]);
                }
                args.extend([net.clone(), cname.clone()]);
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                engine::run(&refs).is_ok()
            };
            // A pod keeps its IP while it terminates (a port-forward to it goes on working until it exits):
            // the same address again; without one (a network of an older run) whatever Docker gives.
            let reconnected = connect(p.ip.as_deref()) || connect(None);
            if reconnected {
                let ip = engine::container_ip(&cname);
                if let Some(x) = self.obs.pods.iter_mut().find(|x| x.uid == p.uid) {
                    x.aliases = want;
                    if ip.is_some() {
                        x.ip = ip;
                    }
                }
            }
        }
    }

    fn image_present(&self, desired: &Desired, image: &str) -> bool {
        let norm = engine::normalise_image(image);
        let in_engine = engine::image_inspect(image).is_some();
        let runtime_docker = desired
            .profiles
            .values()
            .any(|p| p.host == state::HostState::Running && p.runtime == "docker");
        // Images listed in TODO_CLUSTER_DOUBLE_REGISTRY stand for public images a real node would pull.
        let pullable = std::env::var("TODO_CLUSTER_DOUBLE_REGISTRY")
            .unwrap_or_default()
            .split(',')
            .any(|r| !r.trim().is_empty() && engine::normalise_image(r.trim()) == norm);
        let loaded = desired
            .profiles
            .values()
            .any(|p| p.loaded_images.contains(&norm));
        in_engine && (runtime_docker || pullable || loaded)
    }

    fn start_container(
        &mut self,
        desired: &Desired,
        ns: &str,
        o: &Objects,
        w: &Workload,
        pod: &str,
    ) -> Result<()> {
        let Some(idx) = self
            .obs
            .pods
            .iter()
            .position(|p| p.namespace == ns && p.name == pod)
        else {
            return Ok(());
        };
        let p = self.obs.pods[idx].clone();
        let c = w
            .template
            .spec
            .containers
            .first()
            .cloned()
            .unwrap_or_default();
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if c.image.ends_with(":latest")
                || !c.image.rsplit('/').next().unwrap_or("").contains(':')
            {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let present = self.image_present(desired, &c.image);
        if !present || policy == "Always" {
            let (reason, message, ev) = if policy == "Never" {
                let m = format!(
                    "Container image \"{}\" is not present with pull policy of Never",
                    c.image
                );
                ("ErrImageNeverPull", m.clone(), m)
            } else {
                let full = format!("docker.io/library/{}", engine::normalise_image(&c.image));
                let m = format!("failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed");
                let backoff = matches!(&p.state, ContainerState::Waiting { reason, .. } if reason == "ErrImagePull" || reason == "ImagePullBackOff");
                if backoff {
                    (
                        "ImagePullBackOff",
                        format!("Back-off pulling image \"{}\"", c.image),
                        format!("Back-off pulling image \"{}\"", c.image),
                    )
                } else {
                    (
                        "ErrImagePull",
                        m.clone(),
                        format!("Failed to pull image \"{}\": {m}", c.image),
                    )
                }
            };
            self.obs.pods[idx].state = ContainerState::Waiting {
                reason: reason.into(),
                message,
            };
            self.rt.entry(p.uid.clone()).or_default().image_retry_at =
                Some(Instant::now() + Duration::from_secs(3));
            let r = if reason == "ImagePullBackOff" {
                "BackOff"
            } else {
                "Failed"
            };
            self.event(ns, "Pod", pod, "Warning", r, ev);
            if reason != "ImagePullBackOff" {
                self.event(
                    ns,
                    "Pod",
                    pod,
                    "Warning",
                    "Failed",
                    format!("Error: {reason}"),
                );
            }
            return Ok(());
        }
        let aliases = self.aliases_for(ns, o, &p);
        let ordinal = (w.kind == "StatefulSet").then(|| {
            pod.rsplit('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        });
        let ctx = PodCtx {
            owner: &self.owner,
            ns,
            pod,
            ordinal,
            state_dir: &self.dir,
            aliases: &aliases,
        };
        let spec = match realise::run_spec(w, o, &ctx) {
            Ok(s) => s,
            Err(e) => {
                self.obs.pods[idx].state = ContainerState::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: e.0.clone(),
                };
                self.rt.entry(p.uid.clone()).or_default().image_retry_at =
                    Some(Instant::now() + Duration::from_secs(3));
                self.event(
                    ns,
                    "Pod",
                    pod,
                    "Warning",
                    "Failed",
                    format!("Error: {}", e.0),
                );
                return Ok(());
            }
        };
        engine::ensure_network(&realise::network_name(&self.owner, ns), &self.owner)?;
        self.obs.networks.insert(ns.to_string());
        for (d, uid, gid) in &spec.host_dirs {
            std::fs::create_dir_all(d)?;
            let _ = std::os::unix::fs::chown(d, Some(*uid), Some(*gid));
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o770));
        }
        for (f, content) in &spec.files {
            std::fs::write(f, content)?;
        }
        let cname = realise::container_name(&self.owner, ns, pod);
        if let Some(old) = &p.container_id {
            // Kept with kubectl's timestamps: `kubectl logs --previous` shows them with --timestamps only.
            if let Ok(text) = engine::logs_stamped(old, Some(500), None) {
                let _ = std::fs::create_dir_all(self.dir.join("logs"));
                let _ = state::write_atomic(
                    &self.dir.join("logs").join(format!("{ns}_{pod}.previous")),
                    text.as_bytes(),
                );
            }
        }
        let _ = engine::run(&["rm", "-f", &cname]);
        let env_file = self.dir.join(format!("env-{}", state::pod_suffix()));
        let body: String = spec
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}\n", v.replace('\n', " ")))
            .collect();
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&env_file)?;
            f.write_all(body.as_bytes())?;
        }
        let mut args: Vec<String> = vec![
            "run".into(),
            "--env-file".into(),
            env_file.display().to_string(),
        ];
        args.extend(spec.args.iter().cloned());
        let out = engine::docker().args(&args).output();
        let _ = std::fs::remove_file(&env_file);
        let out = out.context("running docker run")?;
        let now = Utc::now();
        let restarted = p.container_id.is_some();
        let pp = &mut self.obs.pods[idx];
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
            pp.state = ContainerState::Waiting {
                reason: "RunContainerError".into(),
                message: msg.clone(),
            };
            self.rt.entry(p.uid.clone()).or_default().image_retry_at =
                Some(Instant::now() + Duration::from_secs(5));
            self.event(ns, "Pod", pod, "Warning", "Failed", format!("Error: {msg}"));
            return Ok(());
        }
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        pp.container_id = Some(id.clone());
        pp.image_id =
            engine::image_inspect(&c.image).and_then(|v| v.get("Id")?.as_str().map(str::to_string));
        pp.state = ContainerState::Running { started_at: now };
        // The pod IP is known as soon as the container runs (no probe may fail for want of it).
        pp.ip = engine::container_ip(&id);
        pp.aliases = aliases;
        pp.ready = false;
        pp.ready_since = now;
        if restarted {
            pp.restart_count += 1;
        }
        let rt = self.rt.entry(p.uid.clone()).or_default();
        *rt = PodRuntime {
            started: Some(Instant::now()),
            ..PodRuntime::default()
        };
        let image = c.image.clone();
        self.event(
            ns,
            "Pod",
            pod,
            "Normal",
            "Pulled",
            format!("Container image \"{image}\" already present on machine"),
        );
        self.event(
            ns,
            "Pod",
            pod,
            "Normal",
            "Created",
            format!("Created container: {}", c.name),
        );
        self.event(
            ns,
            "Pod",
            pod,
            "Normal",
            "Started",
            format!("Started container {}", c.name),
        );
        Ok(())
    }

    fn probe_all(&mut self) {
        let desired = state::read_desired(&self.dir).unwrap_or_default();
        let objs = view::objects_by_namespace(&desired).unwrap_or_default();
        let pods: Vec<PodRecord> = self.obs.pods.clone();
        for p in pods {
            if !matches!(p.state, ContainerState::Running { .. }) {
                continue;
            }
            let Some(w) = objs.get(&p.namespace).and_then(|o| {
                o.workloads
                    .iter()
                    .find(|w| w.kind == p.owner_kind && w.meta.name == p.owner_name)
            }) else {
                continue;
            };
            let c = w
                .template
                .spec
                .containers
                .first()
                .cloned()
                .unwrap_or_default();
            let rt = self.rt.entry(p.uid.clone()).or_default();
            let Some(started) = rt.started else {
                rt.started = Some(Instant::now());
                continue;
            };
            let Some(cid) = p.container_id.clone() else {
                continue;
            };
            let Some(ip) = p.ip.clone().map(Some) else {
                continue;
            };
            let mut msgs: Vec<(String, String)> = Vec::new();
            let mut kill = false;
            let startup_ok = match &c.startup_probe {
                None => true,
                Some(pr) => {
                    if !rt.startup.passed_once {
                        if let Some(o) =
                            due_and_run(&mut rt.startup, pr, started, &c, ip.as_deref(), &cid)
                        {
                            if o.ok {
                                rt.startup.passed_once =
                                    rt.startup.successes >= pr.success_threshold.max(1);
                            } else {
                                msgs.push((
                                    "Unhealthy".into(),
                                    format!("Startup probe failed: {}", o.message),
                                ));
                                if rt.startup.failures >= pr.failure_threshold {
                                    kill = true;
                                }
                            }
                        }
                    }
                    rt.startup.passed_once
                }
            };
            let mut ready = p.ready;
            if startup_ok {
                match &c.readiness_probe {
                    None => ready = true,
                    Some(pr) => {
                        if let Some(o) =
                            due_and_run(&mut rt.readiness, pr, started, &c, ip.as_deref(), &cid)
                        {
                            if o.ok && rt.readiness.successes >= pr.success_threshold.max(1) {
                                ready = true;
                            }
                            if !o.ok {
                                msgs.push((
                                    "Unhealthy".into(),
                                    format!("Readiness probe failed: {}", o.message),
                                ));
                                if rt.readiness.failures >= pr.failure_threshold
                                    || !rt.readiness.passed_once
                                {
                                    ready = false;
                                }
                            }
                            if o.ok {
                                rt.readiness.passed_once = true;
                            }
                        }
                    }
                }
                if let Some(pr) = &c.liveness_probe {
                    if let Some(o) =
                        due_and_run(&mut rt.liveness, pr, started, &c, ip.as_deref(), &cid)
                    {
                        if !o.ok {
                            msgs.push((
                                "Unhealthy".into(),
                                format!("Liveness probe failed: {}", o.message),
                            ));
                            if rt.liveness.failures >= pr.failure_threshold {
                                kill = true;
                                msgs.push((
                                    "Killing".into(),
                                    format!(
                                        "Container {} failed liveness probe, will be restarted",
                                        c.name
                                    ),
                                ));
                            }
                        }
                    }
                }
            }
            if kill {
                let _ = engine::run(&["kill", &cid]);
                ready = false;
                if let Some(x) = self.rt.get_mut(&p.uid) {
                    x.liveness = ProbeCounter::default();
                    x.startup = ProbeCounter::default();
                }
            }
            if let Some(x) = self.obs.pods.iter_mut().find(|x| x.uid == p.uid) {
                if x.ready != ready {
                    x.ready = ready;
                    x.ready_since = Utc::now();
                }
            }
            for (reason, m) in msgs {
                let t = if reason == "Killing" {
                    "Normal"
                } else {
                    "Warning"
                };
                self.event(&p.namespace, "Pod", &p.name, t, &reason, m);
            }
        }
    }

    fn cleanup_networks(&mut self, desired: &Desired) {
        let live: Vec<String> = self.obs.networks.iter().cloned().collect();
        for ns in live {
            if !self.obs.pods.iter().any(|p| p.namespace == ns) {
                let _ = engine::run(&["network", "rm", &realise::network_name(&self.owner, &ns)]);
                self.obs.networks.remove(&ns);
            }
        }
        // Events of deleted namespaces go with them.
        self.obs
            .events
            .retain(|e| desired.namespaces.contains_key(&e.namespace) || e.namespace == "default");
    }
}

fn due_and_run(
    ctr: &mut ProbeCounter,
    pr: &Probe,
    started: Instant,
    c: &crate::manifest::Container,
    ip: Option<&str>,
    cid: &str,
) -> Option<ProbeOutcome> {
    let now = Instant::now();
    if now.duration_since(started) < Duration::from_secs(pr.initial_delay_seconds) {
        return None;
    }
    if ctr
        .last_run
        .is_some_and(|t| now.duration_since(t) < Duration::from_secs(pr.period_seconds.max(1)))
    {
        return None;
    }
    ctr.last_run = Some(now);
    let o = probe::run(pr, c, ip, cid);
    if o.ok {
        ctr.successes += 1;
        ctr.failures = 0;
    } else {
        ctr.failures += 1;
        ctr.successes = 0;
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_ten_seconds_and_caps_at_five_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(9), Duration::from_secs(300));
    }
}
