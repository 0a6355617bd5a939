//! minikube double: status (bitmask exit codes, 85 for a missing profile), start, profile list, docker-env,
//! image ls/load. Output shapes from xtask/tests/fixtures/minikube.

use serde_json::{json, Value};

use crate::{fixture, flag, positionals, with_state, Reply};

/// The address `docker-env` hands out; the docker double treats it as the node's daemon.
pub const NODE_DOCKER_HOST: &str = "tcp://127.0.0.1:32842";

/// Answers one minikube call.
pub fn run(argv: &[String]) -> Reply {
    let profile = flag(argv, &["-p", "--profile"]).unwrap_or_else(|| "minikube".into());
    let pos = positionals(
        argv,
        &[
            "-p",
            "--profile",
            "-o",
            "--output",
            "--format",
            "--shell",
            "--cpus",
            "--memory",
            "--driver",
        ],
    );
    let words: Vec<&str> = pos.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["version", ..] => Reply::ok(fixture("minikube/version.json")),
        ["status", ..] => status(&profile),
        ["start", ..] => with_state(|s| {
            s.0["cluster"] = json!("running");
            s.0["profile"] = json!(profile);
            Reply::ok(format!("😄  [{profile}] minikube v1.36.0\n🏄  Done! kubectl is now configured to use \"{profile}\" cluster\n"))
        }),
        ["profile", "list", ..] => profile_list(),
        ["docker-env", ..] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            Reply::ok(format!(
                "export DOCKER_TLS_VERIFY=\"1\"\nexport DOCKER_HOST=\"{NODE_DOCKER_HOST}\"\nexport DOCKER_CERT_PATH=\"/certs\"\nexport MINIKUBE_ACTIVE_DOCKERD=\"{profile}\"\n\n# To point your shell to minikube's docker-daemon, run:\n# eval $(minikube -p {profile} docker-env)\n"
            ))
        }),
        ["image", "ls", ..] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            // Real shape (machine.ListImages): id without sha256:, repoDigests [] with docker, size as a string.
            let list: Vec<Value> = s
                .images("node")
                .iter()
                .enumerate()
                .map(|(i, img)| json!({"id": format!("{:064x}", i + 1), "repoDigests": [], "repoTags": [format!("docker.io/library/{img}")], "size": "104857600"}))
                .collect();
            Reply::ok(format!("{}\n", Value::Array(list)))
        }),
        ["image", "load", image, ..] => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            if !s.images("local").iter().any(|i| i == image) {
                return Reply::err(80, format!("❌  Exiting due to GUEST_IMAGE_LOAD: Failed to load image: {image}: image not known\n"));
            }
            s.add_image("node", image);
            Reply::ok("")
        }),
        // `minikube image rm` (cmd/minikube/cmd/image.go): removes the tag from every node, prints nothing.
        ["image", "rm", images @ ..] if !images.is_empty() => with_state(|s| {
            if s.str("cluster") != "running" {
                return not_running(&profile);
            }
            for image in images {
                let short = image.strip_prefix("docker.io/library/").unwrap_or(image);
                s.remove_image("node", short);
            }
            Reply::ok("")
        }),
        _ => Reply::err(
            64,
            format!("Error: unknown command {:?} for \"minikube\"\n", pos),
        ),
    }
}

fn not_running(profile: &str) -> Reply {
    Reply::err(
        89,
        format!("❌  Exiting due to GUEST_STATUS: state: unknown state \"{profile}\": docker container inspect {profile}: exit status 1\n"),
    )
}

fn status(profile: &str) -> Reply {
    with_state(|s| {
        match s.str("cluster").as_str() {
        "running" => {
            let mut v: Value = serde_json::from_str(&fixture("minikube/status-running.json")).unwrap_or(Value::Null);
            v["Name"] = json!(profile);
            Reply::ok(v.to_string())
        }
        "stopped" => {
            let mut v: Value =
                serde_json::from_str(&fixture("minikube/status-stopped.DERIVED-FROM-SOURCE.json")).unwrap_or(Value::Null);
            v["Name"] = json!(profile);
            Reply { code: 7, stdout: v.to_string(), stderr: String::new() }
        }
        _ => Reply {
            code: 85,
            stdout: format!(
                "🤷  Profile \"{profile}\" not found. Run \"minikube profile list\" to view all profiles.\n👉  To start a cluster, run: \"minikube start -p {profile}\"\n"
            ),
            stderr: String::new(),
        },
    }
    })
}

fn profile_list() -> Reply {
    with_state(|s| {
        let mut v: Value =
            serde_json::from_str(&fixture("minikube/profile-list.v1.36.0.compact.json"))
                .unwrap_or(json!({"invalid": [], "valid": []}));
        if s.str("cluster") == "missing" {
            return Reply::ok(r#"{"invalid":[],"valid":[]}"#);
        }
        let name = s.0["profile"].as_str().unwrap_or("todo").to_string();
        let runtime = s.str("runtime");
        if let Some(p) = v["valid"].get_mut(0) {
            p["Name"] = json!(name);
            p["Status"] = json!(if s.str("cluster") == "running" {
                "OK"
            } else {
                "Stopped"
            });
            p["Config"]["Name"] = json!(name);
            p["Config"]["KubernetesConfig"]["ContainerRuntime"] = json!(runtime);
            p["Config"]["KubernetesConfig"]["ClusterName"] = json!(name);
            p["Config"]["Nodes"][0]["ContainerRuntime"] = json!(runtime);
        }
        Reply::ok(v.to_string())
    })
}
