//! docker double: the docker CLI 20.10 (Debian's, built-in BuildKit) or 23+ (28.2.2: BuildKit only through
//! the buildx plugin), per the state's `docker_version` and `buildx`. version (server null when the daemon is
//! "down"), `buildx version`, image inspect/ls/rm, history, build. An image lands in the node's store when
//! DOCKER_HOST is the address `minikube docker-env` handed out, else in the local store.

use std::time::Duration;

use serde_json::{json, Value};

use crate::spec::Parsed;
use crate::tools::minikube::NODE_DOCKER_HOST;
use crate::{with_state, Reply};

const DAEMON_DOWN: &str =
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n";

/// docker/cli v28.2.2 cmd/docker/builder.go buildxMissingError (also v23.0.0 to v29): `docker build` with
/// DOCKER_BUILDKIT=1 and no working buildx plugin; main prints the error and exits 1.
pub const BUILDX_MISSING: &str = "ERROR: BuildKit is enabled but the buildx component is missing or broken.\n       Install the buildx component to build images with BuildKit:\n       https://docs.docker.com/go/buildx/\n";

fn store() -> &'static str {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h == NODE_DOCKER_HOST => "node",
        _ => "local",
    }
}

fn client() -> (String, u32, Option<String>) {
    with_state(|s| {
        let v = s.str("docker_version");
        let major = v
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(20);
        (v, major, s.0["buildx"].as_str().map(str::to_string))
    })
}

/// Answers one docker call.
pub fn run(argv: &[String]) -> Reply {
    let (version, major, buildx) = client();
    let a = match crate::spec::docker(major, buildx.is_some()).parse(argv) {
        Ok(a) => a,
        Err(r) => return r.into(),
    };
    let words = a.words();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let daemon = with_state(|s| s.0["docker_daemon"].as_bool().unwrap_or(true));
    match words.as_slice() {
        ["version"] => {
            let client = json!({"Platform": {"Name": ""}, "Version": version, "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"});
            let server = json!({"Platform": {"Name": ""}, "Version": version, "ApiVersion": "1.41", "MinAPIVersion": "1.12"});
            let body = if daemon {
                json!({"Client": client, "Server": server})
            } else {
                json!({"Client": client, "Server": null})
            };
            if a.get("--format").as_deref() != Some("{{json .}}") {
                return Reply::err(1, "the test double answers `docker version --format '{{json .}}'` only\n");
            }
            Reply {
                code: if daemon { 0 } else { 1 },
                stdout: format!("{body}\n"),
                stderr: if daemon { String::new() } else { DAEMON_DOWN.into() },
            }
        }
        ["buildx", "version"] => match (&buildx, major >= 23) {
            // docker/buildx commands/version.go: `fmt.Println(version.Package, version.Version, version.Revision)`.
            (Some(v), _) => Reply::ok(format!("github.com/docker/buildx {v} 28c90ea\n")),
            // No plugin: the CLI's unknown-command errors, verified against the real 20.10.24 and 28.2.2.
            (None, false) => Reply::err(1, "docker: 'buildx' is not a docker command.\nSee 'docker --help'\n"),
            (None, true) => Reply::err(1, "docker: unknown command: docker buildx\n\nRun 'docker --help' for more information\n"),
        },
        _ if !daemon => Reply::err(1, DAEMON_DOWN),
        ["image", "inspect", images @ ..] if !images.is_empty() => inspect(&a, images),
        ["image", "ls"] => image_ls(&a),
        ["image", "rm", images @ ..] if !images.is_empty() => with_state(|s| {
            let mut out = String::new();
            for i in images {
                if !s.images(store()).iter().any(|x| x == i) {
                    return Reply { code: 1, stdout: out, stderr: format!("Error response from daemon: No such image: {i}\n") };
                }
                s.remove_image(store(), i);
                out.push_str(&format!("Untagged: {i}\n"));
            }
            Reply::ok(out)
        }),
        ["history", image] => with_state(|s| {
            if !s.images(store()).iter().any(|x| x == image) {
                return Reply::err(1, format!("Error response from daemon: No such image: {image}\n"));
            }
            Reply::ok(meta(s, image)["History"].as_str().unwrap_or("USER 10001:10001\n").to_string())
        }),
        ["build", _context] => build(&a, major, buildx.is_some()),
        _ => Reply::err(
            125,
            format!(
                "docker: '{}' is not a docker command.\nSee 'docker --help'\n",
                words.first().unwrap_or(&"")
            ),
        ),
    }
}

/// What the state says about a stored image (`image_meta`), with defaults of a well-made image.
fn meta(s: &crate::State, image: &str) -> Value {
    let m = &s.0["image_meta"][image];
    json!({
        "Size": m["Size"].as_u64().unwrap_or(31_457_280),
        "User": m["User"].as_str().unwrap_or("10001:10001"),
        "Env": m["Env"].clone().as_array().cloned().unwrap_or_else(|| vec![json!("PATH=/usr/bin")]),
        "Labels": m["Labels"].clone(),
        "History": m["History"].clone(),
    })
}

fn id_of(image: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    image.hash(&mut h);
    format!("{:016x}{:048x}", h.finish(), 0)
}

fn inspect(a: &Parsed, images: &[&str]) -> Reply {
    with_state(|s| {
        let mut objects = Vec::new();
        for i in images {
            if !s.images(store()).iter().any(|x| x == i) {
                // The daemon's answer for a missing image (docker/cli cli/command/image/inspect.go); an
                // empty array (or the formatted lines of the images found) on stdout.
                return Reply {
                    code: 1,
                    stdout: if a.get("--format").is_some() {
                        "\n".into()
                    } else {
                        "[]\n".into()
                    },
                    stderr: format!("Error: No such image: {i}\n"),
                };
            }
            let m = meta(s, i);
            objects.push(json!({"Id": format!("sha256:{}", id_of(i)), "RepoTags": [i], "Config": {"User": m["User"], "Env": m["Env"], "Labels": m["Labels"]}, "Size": m["Size"]}));
        }
        match a.get("--format").as_deref() {
            Some("{{.Id}}") => Reply::ok(
                objects
                    .iter()
                    .map(|o| format!("{}\n", o["Id"].as_str().unwrap_or_default()))
                    .collect::<String>(),
            ),
            Some(other) => Reply::err(
                1,
                format!("the test double answers --format '{{{{.Id}}}}' only, not {other:?}\n"),
            ),
            None => Reply::ok(format!("{:#}\n", Value::Array(objects))),
        }
    })
}

/// `docker image ls --format '{{json .}}' [--filter reference=R]...`: one JSON object per line.
fn image_ls(a: &Parsed) -> Reply {
    if a.get("--format").as_deref() != Some("{{json .}}") {
        return Reply::err(
            1,
            "the test double answers `docker image ls --format '{{json .}}'` only\n",
        );
    }
    let refs: Vec<String> = a
        .all("--filter")
        .into_iter()
        .filter_map(|f| f.strip_prefix("reference=").map(str::to_string))
        .collect();
    with_state(|s| {
        let mut out = String::new();
        for i in s.images(store()) {
            let (repo, tag) = i.split_once(':').unwrap_or((i.as_str(), "latest"));
            if !refs.is_empty() && !refs.iter().any(|r| r == repo || *r == i) {
                continue;
            }
            let size = meta(s, &i)["Size"].as_u64().unwrap_or(0);
            out.push_str(&format!(
                "{}\n",
                json!({"Containers": "N/A", "CreatedAt": "2026-01-01 00:00:00 +0000 UTC", "Digest": "<none>", "ID": &id_of(&i)[..12], "Repository": repo, "Size": format!("{:.1}MB", size as f64 / 1_000_000.0), "Tag": tag})
            ));
        }
        Reply::ok(out)
    })
}

fn build(a: &Parsed, major: u32, buildx: bool) -> Reply {
    let Some(tag) = a.get("--tag") else {
        return Reply::err(1, "the test double builds tagged images only (-t)\n");
    };
    let buildkit = match std::env::var("DOCKER_BUILDKIT").ok().as_deref() {
        None | Some("") => None,
        Some(v) => match v {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
            // cmd/docker/builder.go processBuilder.
            other => return Reply::err(1, format!("DOCKER_BUILDKIT environment variable expects boolean value: strconv.ParseBool: parsing {other:?}: invalid syntax\n")),
        },
    };
    if major >= 23 && !buildx && buildkit == Some(true) {
        return Reply::err(1, BUILDX_MISSING);
    }
    let dockerfile = a.get("--file").unwrap_or_else(|| "Dockerfile".into());
    if !std::path::Path::new(&dockerfile).is_file() {
        return Reply::err(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {dockerfile}: no such file or directory\n"));
    }
    let delay = with_state(|s| s.0["build_delay_ms"].as_u64().unwrap_or(0));
    if delay > 0 {
        // A real build has children of its own: a child process shows whether Ctrl-C reaches the whole group.
        let secs = format!("{:.3}", delay as f64 / 1000.0);
        let child = std::process::Command::new("sleep").arg(&secs).spawn();
        if let Ok(mut c) = child {
            crate::note(
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
    let mut stderr = String::new();
    if major >= 23 && buildx {
        // docker/cli cmd/docker/builder.go: `docker build` goes to `docker buildx build`, with
        // BUILDX_BUILDER=<current context> (its docker-driver builder, which loads into the daemon) unless
        // --builder or a BUILDX_BUILDER of the user's own names another builder. With the docker-container
        // driver the result stays in BuildKit's cache unless --load/--push/--output (docker/buildx v0.23.0
        // build/build.go, the "No output specified" warning), and the daemon never sees the image.
        let builder = a.get("--builder").or_else(|| {
            std::env::var("BUILDX_BUILDER")
                .ok()
                .filter(|b| !b.is_empty())
        });
        let driver = builder
            .as_ref()
            .and_then(|b| with_state(|s| s.0["buildx_builders"][b].as_str().map(str::to_string)));
        let exports = a.on("--load") || a.on("--push") || a.given("--output");
        if let Some(d) = driver.filter(|d| d != "docker") {
            if !exports {
                stderr.push_str(&format!("WARNING: No output specified with {d} driver. Build result will only remain in the build cache. To push result image into registry use --push or to load image into docker use --load\n"));
                return Reply {
                    code: 0,
                    stdout: String::new(),
                    stderr,
                };
            }
        }
    }
    let target = store();
    with_state(|s| s.add_image(target, &tag));
    Reply {
        code: 0,
        stdout: format!(
            "Step 1/1 : FROM scratch\nSuccessfully built 0123456789ab\nSuccessfully tagged {tag}\n"
        ),
        stderr,
    }
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
