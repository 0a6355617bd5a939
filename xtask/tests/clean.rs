//! `cargo xtask clean` end to end: the real xtask binary against the tool doubles of minikube, helm, kubectl
//! and docker (crate tool-doubles, the same doubles the deploy tests use), set up as a deployed cluster:
//! both releases, a namespace labelled by deploy, both images loaded into the node and built locally.

mod deploy_support;

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use deploy_support::{Env, Run};
use serde_json::json;

/// The profile `todo` runs, with what a deploy leaves behind.
fn deployed() -> Env {
    let env = Env::new();
    env.set_state(|s| {
        for r in ["todo-backend", "todo-frontend"] {
            s["releases"][r] = json!({"revision": 1, "status": "deployed", "namespace": "todo",
                "history": [{"revision": 1, "status": "deployed", "chart": "c-0.1.0", "app_version": "0.1.0", "description": "Install complete"}]});
        }
        s["namespaces"] = json!(["default", "kube-system", "todo"]);
        s["namespace_labels"]["todo"] = json!({"app.kubernetes.io/managed-by": "todo-xtask"});
        s["images"]["node"] = json!(["todo-backend:3f9a1c2b7d4e", "todo-frontend:8be0d41f6a93"]);
        s["images"]["local"] = json!([
            "todo-backend:3f9a1c2b7d4e",
            "todo-frontend:8be0d41f6a93",
            "todo-backend:0ld0ld0ld0ld"
        ]);
    });
    env.clear_calls();
    env
}

fn clean(env: &Env, args: &[&str]) -> Run {
    let mut a = vec!["clean"];
    a.extend_from_slice(args);
    env.run(&a)
}

fn text(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// `tool args` of the calls that change something, in order.
fn mutating(env: &Env) -> Vec<String> {
    env.call_lines()
        .into_iter()
        .filter(|c| {
            ["minikube ", "helm ", "kubectl ", "docker "]
                .iter()
                .any(|t| c.starts_with(t))
        })
        .filter(|c| {
            c.contains(" uninstall ")
                || c.contains(" delete ")
                || c.contains(" rm ")
                || c.starts_with("minikube delete")
        })
        .collect()
}

fn node_images(env: &Env) -> Vec<String> {
    env.state()["images"]["node"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn local_images(env: &Env) -> Vec<String> {
    env.state()["images"]["local"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[test]
fn removes_everything_in_order_then_nothing() {
    let env = deployed();
    let o = clean(&env, &[]);
    o.assert_code(0);
    assert_eq!(
        mutating(&env),
        [
            "helm uninstall todo-frontend --namespace todo --kube-context todo --wait",
            "helm uninstall todo-backend --namespace todo --kube-context todo --wait",
            "kubectl --context todo delete namespace todo --ignore-not-found",
            "minikube -p todo image rm docker.io/library/todo-backend:3f9a1c2b7d4e",
            "minikube -p todo image rm docker.io/library/todo-frontend:8be0d41f6a93",
        ]
    );
    let st = env.state();
    assert!(
        st["releases"].as_object().is_some_and(|m| m.is_empty()),
        "{}",
        st["releases"]
    );
    assert!(!st["namespaces"].to_string().contains("\"todo\""));
    assert!(node_images(&env).is_empty(), "{:?}", node_images(&env));
    assert_eq!(
        local_images(&env).len(),
        3,
        "local images stay without --images"
    );
    assert_eq!(
        st["cluster"], "running",
        "the profile stays without --cluster"
    );

    env.clear_calls();
    let again = clean(&env, &[]);
    again.assert_code(0);
    assert!(
        text(&again).contains("nothing to remove"),
        "{}",
        text(&again)
    );
    assert!(mutating(&env).is_empty(), "{:?}", env.calls());
    assert!(
        !env.calls().is_empty(),
        "nothing was even asked: the call log is broken"
    );
}

#[test]
fn namespace_not_made_by_deploy_is_kept() {
    let env = deployed();
    env.set_state(|s| s["namespace_labels"]["todo"] = json!({}));
    clean(&env, &[]).assert_code(0);
    assert!(env.state()["namespaces"].to_string().contains("\"todo\""));
    let m = mutating(&env);
    assert!(
        m.iter().any(|c| c.contains("uninstall todo-backend")),
        "{m:?}"
    );
    assert!(!m.iter().any(|c| c.contains("delete namespace")), "{m:?}");
}

#[test]
fn dry_run_lists_and_changes_nothing() {
    let env = deployed();
    let o = clean(&env, &["--dry-run", "--images"]);
    o.assert_code(0);
    let out = text(&o);
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
    assert!(mutating(&env).is_empty(), "{:?}", env.calls());
    assert!(
        env.calls_of("helm")
            .iter()
            .any(|c| c.starts_with("status todo-backend")),
        "the plan was not even read: {:?}",
        env.calls()
    );
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
    assert_eq!(local_images(&env).len(), 3);
}

#[test]
fn images_flag_removes_local_images_too() {
    let env = deployed();
    clean(&env, &["--images"]).assert_code(0);
    let m = mutating(&env);
    assert_eq!(
        &m[5..],
        [
            "docker image rm todo-backend:0ld0ld0ld0ld",
            "docker image rm todo-backend:3f9a1c2b7d4e",
            "docker image rm todo-frontend:8be0d41f6a93",
        ]
    );
    assert!(local_images(&env).is_empty(), "{:?}", local_images(&env));
}

/// `helm uninstall` that cannot delete the release's objects leaves it `uninstalling` and says
/// "failed to delete release" (pkg/action/uninstall.go); the next clean finishes it.
#[test]
fn partial_failure_reports_what_remains() {
    let env = deployed();
    env.set_state(|s| s["uninstall_fails"] = json!(["todo-backend"]));
    let o = clean(&env, &[]);
    o.assert_code(4);
    let out = text(&o);
    assert!(
        out.contains(
            "failed: release todo-backend (namespace todo): Error: failed to delete release: todo-backend"
        ),
        "{out}"
    );
    assert!(
        out.contains("clean left 1 thing(s) behind: release todo-backend (namespace todo)"),
        "{out}"
    );
    assert!(
        env.state()["releases"]["todo-frontend"].is_null(),
        "the rest still went"
    );
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "uninstalling"
    );
    env.set_state(|s| s["uninstall_fails"] = json!([]));
    env.clear_calls();
    clean(&env, &[]).assert_code(0);
    assert_eq!(
        mutating(&env),
        ["helm uninstall todo-backend --namespace todo --kube-context todo --wait"]
    );
}

#[test]
fn cluster_delete_needs_confirmation() {
    let env = deployed();
    let o = clean(&env, &["--cluster"]);
    o.assert_code(4);
    assert!(
        text(&o).contains(
            "refusing to delete Minikube profile todo and everything in it without confirmation"
        ),
        "{}",
        text(&o)
    );
    assert!(mutating(&env).is_empty(), "{:?}", env.calls());
    clean(&env, &["--cluster", "--yes"]).assert_code(0);
    assert_eq!(mutating(&env), ["minikube delete -p todo"]);
    assert_eq!(env.state()["cluster"], "missing");
    env.clear_calls();
    let o = clean(&env, &["--cluster"]);
    o.assert_code(0);
    assert!(
        text(&o).contains("Minikube profile todo does not exist"),
        "{}",
        text(&o)
    );
}

#[test]
fn stopped_cluster_says_what_remains() {
    let env = deployed();
    env.set_state(|s| s["cluster"] = "stopped".into());
    let o = clean(&env, &[]);
    o.assert_code(0);
    assert!(
        text(&o).contains("releases, namespace and cluster images remain"),
        "{}",
        text(&o)
    );
    assert!(mutating(&env).is_empty());
    assert!(env
        .calls_of("minikube")
        .iter()
        .any(|c| c.contains("status")));
}

/// A pid file that no live xtask holds the lock of (its deploy ended or crashed) is stale: removed, and the
/// process whose pid it names is left alone, whatever it is (the pid may have been reused by now). The live
/// case, a forward supervised by `deploy --keep-forward`, is in deploy_pipeline.rs.
#[test]
fn pid_file_without_a_supervisor_is_removed_and_nothing_is_signalled() {
    let env = deployed();
    let cache = env.root.join(".cache/xtask");
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
    let o = clean(&env, &[]);
    o.assert_code(0);
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
    let env = deployed();
    std::fs::remove_file(env.bin.join("minikube")).unwrap_or_else(|e| panic!("{e}"));
    let o = clean(&env, &[]);
    o.assert_code(3);
    let out = text(&o);
    assert!(
        out.contains("minikube not found on PATH: install minikube (https://minikube.sigs.k8s.io/docs/start/)"),
        "{out}"
    );
    assert!(!out.contains("os error"), "{out}");
    assert!(
        env.calls_of("helm")
            .iter()
            .all(|l| !l.contains("uninstall")),
        "nothing removed"
    );
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
}

/// When clean cannot tell whether the namespace holds the bundled database's data, it keeps the namespace.
#[test]
fn a_namespace_whose_data_cannot_be_listed_is_kept() {
    let env = deployed();
    env.set_state(|s| s["forbidden_kinds"] = json!(["persistentvolumeclaims"]));
    let r = clean(&env, &[]);
    r.assert_code(0);
    assert!(
        text(&r).contains("could not list the bundled database's data"),
        "{}",
        text(&r)
    );
    assert!(
        env.state()["namespaces"].to_string().contains("\"todo\""),
        "the namespace went without knowing what was in it"
    );
    assert!(
        mutating(&env)
            .iter()
            .all(|c| !c.contains("delete namespace")),
        "{:?}",
        mutating(&env)
    );
    assert!(
        env.state()["releases"]["todo-backend"].is_null(),
        "the releases still go"
    );
}
