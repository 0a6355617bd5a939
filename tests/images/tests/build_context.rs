//! `.dockerignore` keeps secrets, `.env` files, `target/` and VCS data out of the build context:
//! canaries planted in a copy of the workspace must not reach an image that copies the whole context.

use std::io::Write;
use std::process::Stdio;

use images_tests::context::ContextCopy;
use images_tests::scan::{contains, scan_image};
use testkit::ci::missing_prerequisite;
use testkit::docker::{self, Cleanup, DockerEngine};

#[test]
fn secrets_env_files_target_and_git_never_reach_the_context() {
    let engine = match DockerEngine::ensure() {
        Ok(engine) => engine,
        Err(e) => return missing_prerequisite(&format!("a Docker engine: {e}")),
    };
    let bases = match docker::ensure_standin_images() {
        Ok(bases) => bases,
        Err(e) => return missing_prerequisite(&format!("stand-in base images: {e}")),
    };
    let cleanup = Cleanup::new("ctx");
    let ctx = ContextCopy::of_workspace().expect("copy of the workspace");
    let canary = format!("canary-{}", cleanup.id());
    let planted = [
        ".env",
        ".env.production",
        "backend/.env",
        "frontend/.env.local",
        "tls.key",
        "deploy/cert.pem",
        "target/release/leftover.txt",
        "backend/target/leftover.txt",
        ".git/config",
        ".cache/tools/leftover.txt",
        "test-output/report.txt",
        "node_modules/x/index.js",
    ];
    for path in planted {
        ctx.plant(path, &format!("SECRET={canary}\n"))
            .expect("plant a canary");
    }
    // The same context the product builds, copied whole into an image: what the RUN steps could see.
    let tag = format!("todo-context-probe:{}", cleanup.id());
    cleanup.track_image(&tag);
    let dockerfile = format!("FROM {}\nCOPY . /context/\n", bases.runtime);
    let mut child = docker::docker()
        .current_dir(ctx.path())
        .args([
            "build",
            "-f",
            "-",
            "-t",
            &tag,
            "--label",
            &cleanup.label(),
            ".",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("run docker build");
    child
        .stdin
        .take()
        .expect("stdin of docker build")
        .write_all(dockerfile.as_bytes())
        .expect("write the probe Dockerfile");
    let out = child.wait_with_output().expect("docker build");
    assert!(
        out.status.success(),
        "probe build failed: {}",
        docker::tail(&String::from_utf8_lossy(&out.stderr), 30)
    );

    let scan = scan_image(&tag, &[&canary]).expect("scan the probe image");
    let context_files: Vec<&String> = scan
        .files
        .iter()
        .filter(|f| f.starts_with("context/"))
        .collect();
    assert!(
        context_files
            .iter()
            .any(|f| f.as_str() == "context/backend/src/main.rs"),
        "the probe image should hold the sources: {context_files:?}"
    );
    assert!(context_files
        .iter()
        .any(|f| f.as_str() == "context/Cargo.lock"));
    for path in planted {
        let inside = format!("context/{path}");
        assert!(
            !scan.files.contains(&inside),
            "{path} reached the build context"
        );
    }
    assert!(
        !scan.hits.iter().any(|h| h.contains("run-time secret")),
        "the canary reached the build context: {:?}",
        scan.hits
    );
    assert!(!contains(out.stderr.as_slice(), canary.as_bytes()));
    println!(
        "build context: {} files, none of the {} planted canaries",
        context_files.len(),
        planted.len()
    );
    drop(cleanup);
    drop(engine);
}
