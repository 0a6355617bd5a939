//! The files that hold a user's settings and secrets (docker compose's `.env*`, the `secrets.yaml` values file the
//! chart docs suggest for `helm -f`) are ignored by git and never reach a Docker build context, wherever they sit
//! in the tree; the documented examples stay committable. Checked with the real git (`check-ignore`) and the real
//! Docker engine (the build context of a `FROM scratch` copy, exported with BuildKit).

use std::path::Path;
use std::process::{Command, Stdio};

use testkit::ci::missing_prerequisite;
use testkit::docker::{self, DockerEngine};

/// Secret-holding files, as a user creates them.
const SECRET_FILES: [&str; 12] = [
    ".env",
    ".env.local",
    ".env.production",
    ".envrc",
    "prod.env",
    "backend/.env",
    "frontend/.env.local",
    "xtask/.env.test",
    "secrets.yaml",
    "secrets.yml",
    "helm/backend/secrets.yaml",
    "deploy/neon.secrets.yaml",
];
/// Examples that document the format and hold no secret.
const EXAMPLES: [&str; 2] = [".env.example", "backend/prod.env.example"];

fn git_ignores(root: &Path, path: &str) -> bool {
    // --no-index: the rules alone decide, whether or not such a file was ever added.
    Command::new("git")
        .args(["check-ignore", "--no-index", "-q", path])
        .current_dir(root)
        .status()
        .map(|s| s.success())
        .unwrap_or_else(|e| panic!("cannot run git: {e}"))
}

#[test]
fn git_ignores_env_files_and_secrets_values_files() {
    let root = testkit::tools::workspace_root();
    let committed: Vec<&str> = SECRET_FILES
        .iter()
        .copied()
        .filter(|p| !git_ignores(&root, p))
        .collect();
    assert!(committed.is_empty(), "git would commit {committed:?}");
    let hidden: Vec<&str> = EXAMPLES
        .iter()
        .copied()
        .filter(|p| git_ignores(&root, p))
        .collect();
    assert!(hidden.is_empty(), "git ignores the examples {hidden:?}");
}

#[test]
fn the_docker_build_context_never_holds_them() {
    let engine = match DockerEngine::ensure() {
        Ok(e) => e,
        Err(e) => return missing_prerequisite(&format!("a Docker engine: {e}")),
    };
    let root = testkit::tools::workspace_root();
    let ctx = tempfile::tempdir().expect("temp dir");
    std::fs::copy(root.join(".dockerignore"), ctx.path().join(".dockerignore"))
        .expect("copy .dockerignore");
    std::fs::create_dir_all(ctx.path().join("backend/src")).expect("mkdir");
    std::fs::write(ctx.path().join("backend/src/main.rs"), "fn main() {}\n").expect("write");
    for path in SECRET_FILES {
        let file = ctx.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, "SECRET=canary\n").expect("plant");
    }
    // What a Dockerfile's `COPY . .` would see: the context itself, written out by BuildKit.
    let out_dir = tempfile::tempdir().expect("temp dir");
    let mut child = docker::docker()
        .current_dir(ctx.path())
        .args(["build", "-f", "-", "-o"])
        .arg(format!("type=local,dest={}", out_dir.path().display()))
        .arg(".")
        .stdin(Stdio::piped())
        .spawn()
        .expect("docker build");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"FROM scratch\nCOPY . /\n")
            .expect("write Dockerfile");
    }
    let out = child.wait_with_output().expect("docker build");
    assert!(
        out.status.success(),
        "context export failed: {}",
        docker::tail(&String::from_utf8_lossy(&out.stderr), 20)
    );
    assert!(
        out_dir.path().join("backend/src/main.rs").is_file(),
        "the export should hold the sources"
    );
    let leaked: Vec<&str> = SECRET_FILES
        .iter()
        .copied()
        .filter(|p| out_dir.path().join(p).exists())
        .collect();
    assert!(leaked.is_empty(), "in the build context: {leaked:?}");
    drop(engine);
}
