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
    if let Some(failure) = compile_error(&dockerfile) {
        return failure;
    }
    let target = store();
    with_state(|s| s.add_image(target, &tag));
    Reply::ok(format!(
        "Step 1/1 : FROM scratch\nSuccessfully built 0123456789ab\nSuccessfully tagged {tag}\n"
    ))
}

/// A crate whose sources hold `compile_error!("...")` does not compile, as with rustc: the build fails in the
/// shape BuildKit's plain progress prints a failed `RUN` (`#step secs` before each line of rustc's
/// diagnostic, rustc's summary, BuildKit's `ERROR` and its repeat of the step's last lines), exit 1.
fn compile_error(dockerfile: &str) -> Option<Reply> {
    let crate_dir = std::path::Path::new(dockerfile).parent()?;
    let krate = crate_dir.file_name()?.to_string_lossy().into_owned();
    let mut files = Vec::new();
    let mut dirs = vec![crate_dir.join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            let Some(start) = line.find("compile_error!(\"") else {
                continue;
            };
            let msg = line[start + 16..].split('"').next().unwrap_or("");
            let n = i + 1;
            let width = n.to_string().len();
            let pad = " ".repeat(width);
            let carets = "^".repeat(line.trim_end().len() - start);
            let out = format!(
                "#14 [build 4/4] RUN --mount=type=cache,id=todo-cargo-registry,target=/usr/local/cargo/registry,sharing=locked\n\
                 #14 2.104    Compiling {krate} v0.1.0 (/src/{krate})\n\
                 #14 4.210 error: {msg}\n\
                 #14 4.210 {pad}--> {}:{n}:{}\n\
                 #14 4.210 {pad} |\n\
                 #14 4.210 {n} | {line}\n\
                 #14 4.210 {pad} | {}{carets}\n\
                 #14 4.210\n\
                 #14 4.390 error: could not compile `{krate}` (bin \"todo-{krate}\") due to 1 previous error\n\
                 #14 ERROR: process \"/bin/sh -c cargo build\" did not complete successfully: exit code: 101\n\
                 ------\n > [build 4/4] RUN --mount=type=cache:\n4.390 error: could not compile `{krate}` (bin \"todo-{krate}\") due to 1 previous error\n------\n\
                 ERROR: failed to solve: process \"/bin/sh -c cargo build\" did not complete successfully: exit code: 101\n",
                f.strip_prefix(crate_dir.parent().unwrap_or(crate_dir)).unwrap_or(&f).display(),
                start + 1,
                " ".repeat(start),
            );
            return Some(Reply::err(1, out));
        }
    }
    None
}
