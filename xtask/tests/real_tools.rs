//! What minikube, docker and helm really do on a real machine (issue 16), against the tool doubles: each
//! behaviour is taken from the tool's source (the double names the file and version), and each test
//! fails on an xtask that does not handle it.

mod deploy_support;

use std::time::Duration;

use deploy_support::{alive, eventually, sigint, Env, Run};
use serde_json::{json, Value};

fn all(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

fn deploy(env: &Env, extra: &[&str]) -> Run {
    let mut args = vec!["deploy", "--no-smoke", "--port", "0"];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn helm_calls(env: &Env, prefix: &str) -> Vec<String> {
    env.calls_of("helm")
        .into_iter()
        .filter(|c| c.starts_with(prefix))
        .collect()
}

/// 1. `minikube image load` exits 0 when the image never reached the node (machine.DoLoadImages).
#[test]
fn an_image_load_that_succeeds_without_the_image_fails_the_load_step_naming_it() {
    let env = Env::new();
    env.set_state(|s| {
        s["runtime"] = "containerd".into();
        s["image_load_drops"] = json!(["todo-backend"]);
    });
    let run = deploy(&env, &["--json"]);
    run.assert_code(4);
    let load = run.step_event("load").unwrap_or_default();
    assert_eq!(load["event"], "step_failed", "{load}");
    let detail = load["reason"].as_str().unwrap_or_default();
    assert!(
        detail.contains("todo-backend:")
            && detail.contains("not on the node")
            && detail.contains("minikube -p todo image load"),
        "{detail}"
    );
    assert!(
        !detail.contains("todo-frontend:"),
        "only the missing image is named: {detail}"
    );
    assert!(helm_calls(&env, "upgrade").is_empty(), "released anyway");
}

/// 2a. docker CLI 23+ refuses every BuildKit build without buildx (cli/cmd/docker/builder.go).
#[test]
fn docker_23_without_buildx_is_a_prerequisite_found_before_anything_is_built() {
    let env = Env::new();
    env.set_state(|s| s["docker_version"] = "28.2.2".into());
    let run = deploy(&env, &[]);
    run.assert_code(3);
    let err = all(&run);
    assert!(
        err.contains("docker 28.2.2")
            && err.contains("buildx")
            && err.contains("https://docs.docker.com/go/buildx/"),
        "{err}"
    );
    assert!(
        env.calls_of("docker")
            .iter()
            .all(|c| !c.starts_with("build ")),
        "built anyway: {:?}",
        env.calls_of("docker")
    );
    assert!(
        env.calls_of("minikube")
            .iter()
            .all(|c| !c.contains("start")),
        "the cluster step ran"
    );
    // The 20.10 client's built-in BuildKit needs no plugin.
    env.set_state(|s| s["docker_version"] = "20.10.24+dfsg1".into());
    deploy(&env, &[]).assert_code(0);
}

/// 2b. A non-default buildx builder (docker-container driver) keeps the result in its cache unless --load.
#[test]
fn a_non_default_buildx_builder_still_puts_the_images_into_the_daemon_minikube_reads() {
    let env = Env::new();
    env.set_state(|s| {
        s["runtime"] = "containerd".into();
        s["docker_version"] = "28.2.2".into();
        s["buildx"] = "v0.23.0".into();
        s["buildx_builders"] = json!({"ci": "docker-container"});
    });
    let run = env.run_env(
        &["deploy", "--no-smoke", "--port", "0"],
        &[("BUILDX_BUILDER", "ci")],
    );
    run.assert_code(0);
    let builds: Vec<String> = env
        .calls_of("docker")
        .into_iter()
        .filter(|c| c.starts_with("build "))
        .collect();
    assert_eq!(builds.len(), 2);
    assert!(builds.iter().all(|b| b.contains("--load")), "{builds:?}");
    let node = env.state()["images"]["node"].to_string();
    assert!(
        node.contains("todo-backend:") && node.contains("todo-frontend:"),
        "{node}"
    );
}

/// 3. Status bit 4: the kubeconfig entry is stale (pkg/minikube/cluster/status.go).
#[test]
fn a_misconfigured_kubeconfig_is_fixed_and_the_users_context_is_kept() {
    let env = Env::new();
    env.set_state(|s| {
        s["kubeconfig"] = "Misconfigured".into();
        s["current_context"] = "user-own-context".into();
    });
    let run = deploy(&env, &[]);
    run.assert_code(0);
    let m = env.calls_of("minikube");
    assert!(m.iter().any(|c| c == "-p todo update-context"), "{m:?}");
    assert!(
        run.stdout.contains("update-context"),
        "says what it did: {}",
        run.stdout
    );
    let st = env.state();
    assert_eq!(st["kubeconfig"], "Configured");
    assert_eq!(
        st["current_context"], "user-own-context",
        "the user's current context was switched"
    );
}

/// 3b. When update-context fails, the message says what to run.
#[test]
fn a_kubeconfig_that_stays_misconfigured_says_to_run_update_context() {
    let env = Env::new();
    env.set_state(|s| {
        s["kubeconfig"] = "Misconfigured".into();
        s["kubeconfig_readonly"] = true.into();
    });
    let run = deploy(&env, &[]);
    run.assert_code(3);
    let err = all(&run);
    assert!(
        err.contains("Misconfigured")
            && err.contains("run `minikube -p todo update-context`")
            && err.contains("permission denied"),
        "{err}"
    );
    assert!(helm_calls(&env, "upgrade").is_empty());
}

/// 4. `null` status, exit 7 (v1.38) or 0 (v1.35 to v1.37): a profile whose node's state cannot be read.
#[test]
fn a_null_status_is_not_a_missing_profile() {
    for version in ["v1.38.1", "v1.36.0"] {
        let env = Env::new();
        env.set_state(|s| {
            s["cluster"] = "unreadable".into();
            s["minikube_version"] = version.into();
        });
        let run = deploy(&env, &[]);
        run.assert_code(3);
        let err = all(&run);
        assert!(
            err.contains("cannot read the state of profile todo")
                && err.contains("minikube profile list")
                && err.contains("Docker"),
            "{version}: {err}"
        );
        assert!(
            !err.contains("did not exist"),
            "{version}: announced a new profile: {err}"
        );
        assert!(
            env.calls_of("minikube")
                .iter()
                .all(|c| !c.contains("start")),
            "{version}: tried to create the profile"
        );
        let clean = env.run(&["clean"]);
        clean.assert_code(0);
        assert!(
            !clean.stdout.contains("does not exist") && clean.stdout.contains("cannot read"),
            "{version}: {}",
            clean.stdout
        );
        let clean = env.run(&["clean", "--cluster", "--yes"]);
        clean.assert_code(0);
        assert!(
            env.calls_of("minikube")
                .iter()
                .any(|c| c == "delete -p todo"),
            "{version}: the profile was not deleted: {}",
            clean.stdout
        );
    }
}

/// A release whose last revision is `pending-upgrade` (helm killed mid-upgrade), over a good revision 1.
fn pending_over_revision_one(env: &Env, status: &str) {
    env.set_state(|s| {
        let r = &mut s["releases"]["todo-backend"];
        r["status"] = status.into();
        r["revision"] = 2.into();
        if let Some(h) = r["history"].as_array_mut() {
            let mut next = h[0].clone();
            next["revision"] = 2.into();
            next["status"] = status.into();
            h.push(next);
        }
    });
}

/// 5. The xtask's own rollback waits, with the release's timeout and the flavor's wait flag.
#[test]
fn a_rollback_waits_with_the_release_timeout_in_each_helm_flavor() {
    for (helm, wait) in [("v3.17.3", "--wait"), ("v4.1.0", "--wait=watcher")] {
        let env = Env::new();
        env.set_state(|s| s["helm_version"] = helm.into());
        deploy(&env, &[]).assert_code(0);
        pending_over_revision_one(&env, "pending-upgrade");
        env.clear_calls();
        let run = deploy(&env, &["--timeout", "7"]);
        run.assert_code(0);
        let rb = helm_calls(&env, "rollback todo-backend 1");
        assert_eq!(rb.len(), 1, "{helm}: {:?}", env.calls_of("helm"));
        assert!(
            rb[0].split(' ').any(|w| w == wait) && rb[0].contains("--timeout 7s"),
            "{helm}: {}",
            rb[0]
        );
        assert!(
            run.stdout
                .contains("todo-backend rolled back to revision 1 (deployed, pods ready)"),
            "{helm}: {}",
            run.stdout
        );
    }
}

/// 5b. A rollback whose old pods do not come back is reported as such, not as a success.
#[test]
fn a_rollback_that_does_not_get_ready_reports_the_state_it_reached() {
    let env = Env::new();
    deploy(&env, &[]).assert_code(0);
    pending_over_revision_one(&env, "pending-upgrade");
    env.set_state(|s| s["rollback_pods"] = "crashloop".into());
    env.clear_calls();
    let run = deploy(&env, &["--timeout", "2"]);
    run.assert_code(4);
    let err = all(&run);
    assert!(
        err.contains("rollback of todo-backend to revision 1 did not get ready within 2 s")
            && err.contains("release todo-backend is failed at revision 3")
            && err.contains("cargo xtask diagnose"),
        "{err}"
    );
    assert!(!err.contains("rolled back to revision 1 ("), "{err}");
    assert!(helm_calls(&env, "upgrade").is_empty(), "upgraded anyway");
}

/// 6a. Stopping a rollout: helm gets SIGTERM and time to finish its own --atomic rollback; the xtask does not
/// start a second rollback beside it (cmd/helm/upgrade.go signal handling, pkg/action/upgrade.go failRelease).
#[test]
fn a_stopped_rollout_lets_helm_finish_its_own_rollback() {
    let env = Env::new();
    deploy(&env, &[]).assert_code(0);
    env.set_state(|s| {
        s["pods"] = "crashloop".into();
        s["helm_rollback_ms"] = 4500.into();
    });
    env.touch_source("backend", "v2");
    env.clear_calls();
    let run = deploy(&env, &[]);
    run.assert_code(4);
    let err = all(&run);
    assert!(
        err.contains("[crash-loop]") && err.contains("keeps crashing"),
        "{err}"
    );
    assert!(
        env.calls()
            .iter()
            .any(|c| c["tool"] == "helm-own-rollback-done"),
        "helm was killed before its rollback finished: {err}\n{:#?}",
        env.calls_of("helm")
    );
    assert!(
        helm_calls(&env, "rollback").is_empty(),
        "a second rollback ran beside helm's: {:?}",
        env.calls_of("helm")
    );
    assert!(
        err.contains("helm rolled todo-backend back to revision 1 itself"),
        "{err}"
    );
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
}

/// 6b. Ctrl-C while helm waits: helm is stopped with SIGTERM and may finish its own rollback; nothing is left
/// pending for the next deploy.
#[test]
fn ctrl_c_while_helm_waits_lets_helm_roll_back_within_a_bound() {
    let env = Env::new();
    deploy(&env, &[]).assert_code(0);
    env.set_state(|s| {
        s["pods"] = "unready".into();
        s["helm_rollback_ms"] = 4500.into();
    });
    env.touch_source("backend", "v2");
    env.clear_calls();
    let child = env.spawn(&["deploy", "--no-smoke", "--port", "0"]);
    let pid = child.id();
    env.wait_for_calls(Duration::from_secs(60), "helm upgrade waiting", |calls| {
        calls
            .iter()
            .any(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade")
    });
    let upgrade_pid = env
        .calls()
        .iter()
        .find(|c| c["tool"] == "helm" && c["argv"][0] == "upgrade")
        .and_then(|c| c["pid"].as_u64())
        .unwrap_or(0) as u32;
    // helm traps SIGTERM before it touches the release: once the revision is pending, it is waiting.
    eventually(Duration::from_secs(10), "the upgrade is pending", || {
        env.state()["releases"]["todo-backend"]["status"] == "pending-upgrade"
    });
    sigint(pid);
    let run = Run::wait(child);
    run.assert_code(130);
    assert!(
        env.calls()
            .iter()
            .any(|c| c["tool"] == "helm-own-rollback-done"),
        "helm was killed before its rollback finished: {}",
        all(&run)
    );
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
    eventually(Duration::from_secs(5), "helm ended", || !alive(upgrade_pid));
}

/// 6c. A release left `pending-rollback` (helm killed during its own rollback) is rolled back on the next
/// deploy, waiting for it.
#[test]
fn a_release_left_pending_rollback_is_recovered_on_the_next_deploy() {
    let env = Env::new();
    deploy(&env, &[]).assert_code(0);
    pending_over_revision_one(&env, "pending-rollback");
    env.clear_calls();
    let run = deploy(&env, &[]);
    run.assert_code(0);
    let helm = env.calls_of("helm");
    let rb = helm
        .iter()
        .position(|c| c.starts_with("rollback todo-backend 1") && c.contains("--wait"));
    let up = helm
        .iter()
        .position(|c| c.starts_with("upgrade --install todo-backend"));
    assert!(rb.is_some() && rb < up, "waiting rollback first: {helm:#?}");
    assert!(run.stdout.contains("pending-rollback"), "{}", run.stdout);
}

/// 6d. A release left `uninstalling` (an uninstall cut short) fails every upgrade with "has no deployed
/// releases" (pkg/action/upgrade.go prepareUpgrade): the uninstall is finished, then the release installed.
#[test]
fn a_release_left_uninstalling_is_uninstalled_then_installed_again() {
    let env = Env::new();
    deploy(&env, &[]).assert_code(0);
    env.set_state(|s| s["releases"]["todo-backend"]["status"] = "uninstalling".into());
    env.clear_calls();
    let run = deploy(&env, &[]);
    run.assert_code(0);
    let helm = env.calls_of("helm");
    let un = helm
        .iter()
        .position(|c| c.starts_with("uninstall todo-backend") && c.contains("--wait"));
    let up = helm
        .iter()
        .position(|c| c.starts_with("upgrade --install todo-backend"));
    assert!(un.is_some() && un < up, "uninstall first: {helm:#?}");
    assert!(run.stdout.contains("uninstalling"), "{}", run.stdout);
    assert_eq!(
        env.state()["releases"]["todo-backend"]["status"],
        "deployed"
    );
    assert_eq!(env.state()["releases"]["todo-backend"]["revision"], 1);
}

/// Behaviour 7: cri-o names a loaded `todo-backend:<tag>` `localhost/todo-backend:<tag>` (podman load); the
/// load check and clean find it under that name.
#[test]
fn crio_images_are_found_and_cleaned_by_their_localhost_names() {
    let env = Env::new();
    env.set_state(|s| s["runtime"] = "crio".into());
    deploy(&env, &[]).assert_code(0);
    env.clear_calls();
    let run = deploy(&env, &["--json"]);
    run.assert_code(0);
    assert_eq!(
        run.step_event("load").map(|e| e["event"].clone()),
        Some(Value::from("step_skipped")),
        "loaded again: {:?}",
        env.calls_of("minikube")
    );
    let run = env.run(&["clean"]);
    run.assert_code(0);
    let rm: Vec<String> = env
        .calls_of("minikube")
        .into_iter()
        .filter(|c| c.contains("image rm"))
        .collect();
    assert_eq!(rm.len(), 2, "{}", run.stdout);
    assert!(rm.iter().all(|c| c.contains(" localhost/todo-")), "{rm:?}");
    assert!(
        env.state()["images"]["node"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{}",
        env.state()["images"]["node"]
    );
}
