//! `cargo xtask clean` end to end: the real xtask binary against stateful doubles of minikube, helm, kubectl
//! and docker (shell scripts keeping state in marker files). Outputs follow the real tools' formats
//! (tests/fixtures/PROVENANCE.md): `minikube status -o json` + exit bitmask/85, `helm status` not-found text,
//! `kubectl get namespace -o json`, `minikube image ls --format json`, `docker image ls --format '{{json .}}'`.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

struct Cluster {
    dir: tempfile::TempDir,
}

const RUNNING: &str = r#"{"Name":"todo","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#;

impl Cluster {
    /// A running profile `todo` with both releases, a namespace labelled by deploy, and both images loaded.
    fn deployed() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let c = Self { dir };
        for m in [
            "cluster-running",
            "release-todo-backend",
            "release-todo-frontend",
            "ns-todo",
            "ns-todo-ours",
        ] {
            c.mark(m);
        }
        for i in ["todo-backend:3f9a1c2b7d4e", "todo-frontend:8be0d41f6a93"] {
            c.mark(&format!("node-image-{i}"));
            c.mark(&format!("local-image-{i}"));
        }
        c.mark("local-image-todo-backend:0ld0ld0ld0ld");
        c.install();
        c
    }

    fn mark(&self, name: &str) {
        std::fs::write(self.dir.path().join("state").join(name), "").unwrap_or_else(|e| {
            std::fs::create_dir_all(self.dir.path().join("state"))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(self.dir.path().join("state").join(name), "")
                .unwrap_or_else(|e2| panic!("{e} / {e2}"))
        });
    }

    fn unmark(&self, name: &str) {
        let _ = std::fs::remove_file(self.dir.path().join("state").join(name));
    }

    fn has(&self, name: &str) -> bool {
        self.dir.path().join("state").join(name).exists()
    }

    fn install(&self) {
        let st = self.dir.path().join("state");
        std::fs::create_dir_all(&st).unwrap_or_else(|e| panic!("{e}"));
        let log = self.dir.path().join("calls.log");
        let head = format!(
            "#!/bin/bash\nS='{}'\nprintf '%s\\n' \"$(basename \"$0\") $*\" >> '{}'\n",
            st.display(),
            log.display()
        );
        let minikube = format!(
            "{head}\
            if [ ! -e \"$S/cluster-running\" ] && [ ! -e \"$S/cluster-stopped\" ]; then\n\
              case \"$*\" in *status*) echo '* Profile \"todo\" not found. Run \"minikube profile list\" to view all profiles.'; exit 85;; esac\n\
            fi\n\
            case \"$*\" in\n\
            *' status -o json') if [ -e \"$S/cluster-running\" ]; then echo -n '{RUNNING}'; exit 0; else echo -n '{{\"Name\":\"todo\",\"Host\":\"Stopped\",\"Kubelet\":\"Stopped\",\"APIServer\":\"Stopped\",\"Kubeconfig\":\"Stopped\",\"Worker\":false}}'; exit 7; fi;;\n\
            *' image ls --format json') printf '[{{\"id\":\"9f\",\"repoDigests\":[],\"repoTags\":[\"registry.k8s.io/pause:3.10\"],\"size\":\"736000\"}}'; for f in \"$S\"/node-image-*; do [ -e \"$f\" ] || continue; t=${{f##*/node-image-}}; printf ',{{\"id\":\"1a2b3c\",\"repoDigests\":[],\"repoTags\":[\"docker.io/library/%s\"],\"size\":\"38000000\"}}' \"$t\"; done; printf ']\\n';;\n\
            *' image rm '*) t=\"${{@: -1}}\"; t=${{t#docker.io/library/}}; rm -f \"$S/node-image-$t\"; [ -e \"$S/fail-image-rm\" ] && {{ echo 'X Exiting due to GUEST_IMAGE_REMOVE: remove image: exit status 1' >&2; exit 80; }}; exit 0;;\n\
            'delete -p todo') rm -f \"$S\"/cluster-* \"$S\"/release-* \"$S\"/ns-* \"$S\"/node-image-*; echo '* Deleting \"todo\" in docker ...'; echo '* Removed all traces of the \"todo\" cluster.';;\n\
            *) echo \"unexpected minikube call: $*\" >&2; exit 1;;\n\
            esac\n"
        );
        let helm = format!(
            "{head}\
            r=\"$2\"\n\
            case \"$1\" in\n\
            status) if [ -e \"$S/release-$r\" ]; then echo '{{\"name\":\"'$r'\",\"info\":{{\"status\":\"deployed\"}},\"version\":1,\"namespace\":\"todo\"}}'; else echo 'Error: release: not found' >&2; exit 1; fi;;\n\
            uninstall) if [ -e \"$S/fail-uninstall-$r\" ]; then echo 'Error: uninstallation completed with 1 error(s): context deadline exceeded' >&2; exit 1; fi; if [ -e \"$S/release-$r\" ]; then rm \"$S/release-$r\"; echo \"release \\\"$r\\\" uninstalled\"; else echo \"Error: uninstall: Release not loaded: $r: release: not found\" >&2; exit 1; fi;;\n\
            *) echo \"unexpected helm call: $*\" >&2; exit 1;;\n\
            esac\n"
        );
        let kubectl = format!(
            "{head}\
            case \"$*\" in\n\
            *'get namespace todo -o json') if [ -e \"$S/ns-todo\" ]; then if [ -e \"$S/ns-todo-ours\" ]; then l=',\"app.kubernetes.io/managed-by\":\"todo-xtask\"'; fi; printf '{{\\n    \"apiVersion\": \"v1\",\\n    \"kind\": \"Namespace\",\\n    \"metadata\": {{\\n        \"labels\": {{\"kubernetes.io/metadata.name\":\"todo\"%s}},\\n        \"name\": \"todo\"\\n    }}\\n}}\\n' \"$l\"; else echo 'Error from server (NotFound): namespaces \"todo\" not found' >&2; exit 1; fi;;\n\
            *'delete namespace todo --ignore-not-found') rm -f \"$S/ns-todo\" \"$S/ns-todo-ours\"; echo 'namespace \"todo\" deleted';;\n\
            *) echo \"unexpected kubectl call: $*\" >&2; exit 1;;\n\
            esac\n"
        );
        let docker = format!(
            "{head}\
            case \"$*\" in\n\
            'image ls --format {{{{json .}}}} '*) for f in \"$S\"/local-image-*; do [ -e \"$f\" ] || continue; t=${{f##*/local-image-}}; printf '{{\"Containers\":\"N/A\",\"ID\":\"0f1e2d3c4b5a\",\"Repository\":\"%s\",\"Size\":\"38.2MB\",\"Tag\":\"%s\"}}\\n' \"${{t%%:*}}\" \"${{t#*:}}\"; done;;\n\
            'image rm '*) rm -f \"$S/local-image-$3\"; echo \"Untagged: $3\";;\n\
            *) echo \"unexpected docker call: $*\" >&2; exit 1;;\n\
            esac\n"
        );
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
        for (name, text) in [
            ("minikube", minikube),
            ("helm", helm),
            ("kubectl", kubectl),
            ("docker", docker),
        ] {
            write_exe(&bin.join(name), &text);
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clear_calls(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("calls.log"));
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    fn clean(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display());
        let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
        c.arg("clean")
            .args(args)
            .env("PATH", path)
            .env("TODO_WORKSPACE_ROOT", self.root())
            .env_remove("XTASK_DOCKER")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap_or_else(|e| panic!("running xtask: {e}"))
    }
}

fn write_exe(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Only the calls that change something.
fn mutating(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            c.contains(" uninstall ")
                || c.contains(" delete ")
                || c.contains(" rm ")
                || c.starts_with("minikube delete")
        })
        .cloned()
        .collect()
}

#[test]
fn removes_everything_in_order_then_nothing() {
    let c = Cluster::deployed();
    let o = c.clean(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        mutating(&c.calls()),
        [
            "helm uninstall todo-frontend --namespace todo --kube-context todo --wait",
            "helm uninstall todo-backend --namespace todo --kube-context todo --wait",
            "kubectl --context todo delete namespace todo --ignore-not-found",
            "minikube -p todo image rm docker.io/library/todo-backend:3f9a1c2b7d4e",
            "minikube -p todo image rm docker.io/library/todo-frontend:8be0d41f6a93",
        ]
    );
    assert!(
        !c.has("release-todo-backend")
            && !c.has("ns-todo")
            && !c.has("node-image-todo-backend:3f9a1c2b7d4e")
    );
    assert!(
        c.has("local-image-todo-backend:3f9a1c2b7d4e"),
        "local images stay without --images"
    );
    assert!(
        c.has("cluster-running"),
        "the profile stays without --cluster"
    );

    c.clear_calls();
    let again = c.clean(&[], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to remove"),
        "{}",
        text(&again)
    );
    assert!(mutating(&c.calls()).is_empty(), "{:?}", c.calls());
}

#[test]
fn namespace_not_made_by_deploy_is_kept() {
    let c = Cluster::deployed();
    c.unmark("ns-todo-ours");
    let o = c.clean(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(c.has("ns-todo"));
    assert!(
        !mutating(&c.calls())
            .iter()
            .any(|m| m.contains("delete namespace")),
        "{:?}",
        c.calls()
    );
}

#[test]
fn dry_run_lists_and_changes_nothing() {
    let c = Cluster::deployed();
    let o = c.clean(&["--dry-run", "--images"], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for line in [
        "would remove: release todo-frontend (namespace todo)",
        "would remove: release todo-backend (namespace todo)",
        "would remove: namespace todo (created by deploy)",
        "would remove: cluster image docker.io/library/todo-backend:3f9a1c2b7d4e",
        "would remove: local image todo-backend:0ld0ld0ld0ld",
        "would remove: local image todo-frontend:8be0d41f6a93",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(mutating(&c.calls()).is_empty(), "{:?}", c.calls());
    assert!(c.has("release-todo-backend") && c.has("local-image-todo-backend:0ld0ld0ld0ld"));
}

#[test]
fn images_flag_removes_local_images_too() {
    let c = Cluster::deployed();
    let o = c.clean(&["--images"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = mutating(&c.calls());
    assert_eq!(
        &m[5..],
        [
            "docker image rm todo-backend:0ld0ld0ld0ld",
            "docker image rm todo-backend:3f9a1c2b7d4e",
            "docker image rm todo-frontend:8be0d41f6a93",
        ]
    );
}

#[test]
fn partial_failure_reports_what_remains() {
    let c = Cluster::deployed();
    c.mark("fail-uninstall-todo-backend");
    let o = c.clean(&[], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("failed: release todo-backend (namespace todo): Error: uninstallation completed with 1 error(s)"), "{out}");
    assert!(
        out.contains("clean left 1 thing(s) behind: release todo-backend (namespace todo)"),
        "{out}"
    );
    assert!(!c.has("release-todo-frontend"), "the rest still went");
    c.unmark("fail-uninstall-todo-backend");
    c.clear_calls();
    let o = c.clean(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        mutating(&c.calls()),
        ["helm uninstall todo-backend --namespace todo --kube-context todo --wait"]
    );
}

#[test]
fn cluster_delete_needs_confirmation() {
    let c = Cluster::deployed();
    let o = c.clean(&["--cluster"], &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains(
            "refusing to delete Minikube profile todo and everything in it without confirmation"
        ),
        "{}",
        text(&o)
    );
    assert!(mutating(&c.calls()).is_empty(), "{:?}", c.calls());
    let o = c.clean(&["--cluster", "--yes"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(mutating(&c.calls()), ["minikube delete -p todo"]);
    c.clear_calls();
    let o = c.clean(&["--cluster"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("Minikube profile todo does not exist"),
        "{}",
        text(&o)
    );
}

#[test]
fn stopped_cluster_says_what_remains() {
    let c = Cluster::deployed();
    c.unmark("cluster-running");
    c.mark("cluster-stopped");
    let o = c.clean(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("releases, namespace and cluster images remain"),
        "{}",
        text(&o)
    );
    assert!(mutating(&c.calls()).is_empty());
}

/// A pid file that no live xtask holds the lock of (its deploy ended or crashed) is stale: removed, and the
/// process whose pid it names is left alone, whatever it is (the pid may have been reused by now). The live
/// case, a forward supervised by `deploy --keep-forward`, is in deploy_pipeline.rs.
#[test]
fn pid_file_without_a_supervisor_is_removed_and_nothing_is_signalled() {
    let c = Cluster::deployed();
    let cache = c.root().join(".cache/xtask");
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("{e}"));
    // What a crashed deploy could leave: a pid (now some other process, in its own group) and its lock file.
    let mut other = Command::new("sh")
        .args(["-c", "sleep 30; true", "port-forward"])
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = other.id();
    std::fs::write(cache.join("forward-todo.pid"), format!("{pid}\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(cache.join("forward-todo.lock"), "").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(cache.join("forward-todo.backend.pid"), "1\n").unwrap_or_else(|e| panic!("{e}"));
    let o = c.clean(&[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("removed: stale pid file"), "{out}");
    assert!(!out.contains("removed: port-forward"), "{out}");
    assert!(
        other.try_wait().ok().flatten().is_none(),
        "a process nobody supervises was signalled"
    );
    let _ = other.kill();
    let _ = other.wait();
    for f in [
        "forward-todo.pid",
        "forward-todo.lock",
        "forward-todo.backend.pid",
    ] {
        assert!(!cache.join(f).exists(), "{f} left");
    }
}

#[test]
fn missing_minikube_is_a_prerequisite_with_its_fix() {
    let c = Cluster::deployed();
    std::fs::remove_file(c.dir.path().join("bin/minikube")).unwrap_or_else(|e| panic!("{e}"));
    let o = c.clean(&[], &[]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("minikube not found on PATH: install minikube (https://minikube.sigs.k8s.io/docs/start/)"),
        "{out}"
    );
    assert!(!out.contains("os error"), "{out}");
    assert!(
        c.calls().iter().all(|l| !l.contains("uninstall")),
        "nothing removed"
    );
}
