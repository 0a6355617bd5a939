//! docker double: version (server null when the daemon is "down"), image inspect, build. An image lands in the
//! node's store when DOCKER_HOST is the address `minikube docker-env` handed out, else in the local store.

use std::time::Duration;

use serde_json::json;

use crate::tools::minikube::NODE_DOCKER_HOST;
use crate::{flag, positionals, with_state, Reply};

const DAEMON_DOWN: &str =
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";

fn store() -> &'static str {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h == NODE_DOCKER_HOST => "node",
        _ => "local",
    }
}

/// Answers one docker call.
pub fn run(argv: &[String]) -> Reply {
    let pos = positionals(
        argv,
        &["--format", "-f", "-t", "--tag", "--build-arg", "--file"],
    );
    let words: Vec<&str> = pos.iter().map(String::as_str).collect();
    let daemon = with_state(|s| s.0["docker_daemon"].as_bool().unwrap_or(true));
    match words.as_slice() {
        ["version", ..] => {
            let client = json!({"Platform": {"Name": ""}, "Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"});
            if daemon {
                let server = json!({"Platform": {"Name": ""}, "Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12"});
                Reply::ok(format!("{}\n", json!({"Client": client, "Server": server})))
            } else {
                Reply {
                    code: 1,
                    stdout: format!("{}\n", json!({"Client": client, "Server": null})),
                    stderr: DAEMON_DOWN.into(),
                }
            }
        }
        _ if !daemon => Reply::err(1, DAEMON_DOWN),
        ["image", "inspect", image, ..] => with_state(|s| {
            if s.images(store()).iter().any(|i| i == image) {
                Reply::ok(format!("sha256:{:064x}\n", image.len()))
            } else {
                Reply {
                    code: 1,
                    stdout: "\n".into(),
                    stderr: format!("Error: No such image: {image}\n"),
                }
            }
        }),
        ["build", ..] => build(argv),
        _ => Reply::err(
            125,
            format!(
                "docker: '{}' is not a docker command.\n",
                words.first().unwrap_or(&"")
            ),
        ),
    }
}

fn build(argv: &[String]) -> Reply {
    let Some(tag) = flag(argv, &["-t", "--tag"]) else {
        return Reply::err(1, "tag required\n");
    };
    let dockerfile = flag(argv, &["-f", "--file"]).unwrap_or_else(|| "Dockerfile".into());
    if !std::path::Path::new(&dockerfile).is_file() {
        return Reply::err(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {dockerfile}: no such file or directory\n"));
    }
    let delay = with_state(|s| s.0["build_delay_ms"].as_u64().unwrap_or(0));
    if delay > 0 {
        // A real build has children of its own: a child process shows whether Ctrl-C reaches the whole group.
        let secs = format!("{:.3}", delay as f64 / 1000.0);
        let child = std::process::Command::new("sleep").arg(&secs).spawn();
        if let Ok(mut c) = child {
            crate::record(
                "docker-build-child",
                &[c.id().to_string()],
                json!({"child_pid": c.id()}),
            );
            let _ = c.wait();
        } else {
            std::thread::sleep(Duration::from_millis(delay));
        }
    }
    let target = store();
    with_state(|s| s.add_image(target, &tag));
    Reply::ok(format!(
        "Step 1/1 : FROM scratch\nSuccessfully built 0123456789ab\nSuccessfully tagged {tag}\n"
    ))
}
