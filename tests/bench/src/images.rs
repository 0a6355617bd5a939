//! Benchmark: images. Prints image sizes, cold and warm build times, the source-only rebuild
//! time, time from `docker run` to a green `/health`, and idle RSS inside the containers.
//!
//! `cargo run --release -p bench -- images [--no-cold]`. The cold build empties BuildKit's cache
//! mounts (`docker builder prune --filter type=exec.cachemount`: cargo registry and target dirs
//! of every build on this engine) and builds with `--no-cache`; the next builds refill them.
//! `--no-cold` skips it. Needs root, debootstrap and Debian's docker.io (see testkit::docker).

use std::time::Duration;

use images_tests::context::ContextCopy;
use images_tests::http::Client;
use images_tests::stack::{self, Images, Secrets};
use serde_json::json;
use testkit::docker::{self, Cleanup, DockerEngine};

/// Runs the benchmark and prints its figures.
pub fn run() -> Result<(), String> {
    let cold = !std::env::args().skip(2).any(|a| a == "--no-cold");
    let engine = DockerEngine::ensure()?;
    let bases = docker::ensure_standin_images()?;
    println!("stand-in base images:\n{}", bases.report);
    let cleanup = Cleanup::new("bench");
    let ctx = ContextCopy::of_workspace()?;
    let args = docker::standin_build_args(&bases);

    let mut tags = Vec::new();
    for name in ["backend", "frontend"] {
        let dockerfile = format!("{name}/Dockerfile");
        let tag = format!("todo-{name}:bench-{}", cleanup.id());
        cleanup.track_image(&tag);
        if cold {
            docker::run(&["builder", "prune", "-f", "--filter", "type=exec.cachemount"])?;
            let mut cold_args = args.clone();
            // A build arg no layer has seen yet also invalidates the layer cache.
            cold_args.push(("REVISION".into(), format!("cold-{}", cleanup.id())));
            let cold_tag = format!("{tag}-cold");
            cleanup.track_image(&cold_tag);
            let out = build_no_cache(&ctx, &dockerfile, &cold_tag, &cleanup, &cold_args)?;
            println!(
                "{name}: cold build {} ({} crates compiled)",
                secs(out.elapsed),
                out.compiled_crates().len()
            );
        }
        let warm = docker::build(ctx.path(), &dockerfile, &tag, &cleanup, &args)?;
        println!("{name}: build with warm caches {}", secs(warm.elapsed));
        ctx.touch_source(&format!("{name}/src/main.rs"))?;
        let rebuilt_tag = format!("{tag}-rebuilt");
        cleanup.track_image(&rebuilt_tag);
        let rebuilt = docker::build(ctx.path(), &dockerfile, &rebuilt_tag, &cleanup, &args)?;
        println!(
            "{name}: source-only rebuild {} (compiled {:?})",
            secs(rebuilt.elapsed),
            rebuilt.compiled_crates()
        );
        let size = docker::run(&["image", "inspect", "--format", "{{.Size}}", &tag])?;
        let size: f64 = size.parse().map_err(|e| format!("size {size:?}: {e}"))?;
        println!("{name}: image size {:.1} MB", size / 1e6);
        tags.push(tag);
    }

    let secrets = Secrets::random()?;
    let images = Images {
        backend: tags[0].clone(),
        frontend: tags[1].clone(),
        postgres: bases.postgres.clone(),
    };
    let running = stack::start(&cleanup, &images, &secrets)?;
    println!(
        "docker run -> green /health: backend {}, frontend {}",
        millis(running.backend_health_after),
        millis(running.frontend_health_after)
    );
    // A little traffic first, so the figure is the idle RSS of a service that has served requests.
    let mut web = Client::new(&format!("http://127.0.0.1:{}", running.frontend_port));
    web.post(
        "/api/auth/register",
        json!({"email": "bench@example.test", "password": "correct horse battery"}),
    )?;
    for _ in 0..20 {
        web.get("/api/tasks")?;
    }
    for (name, container) in [
        ("backend", &running.backend),
        ("frontend", &running.frontend),
    ] {
        let rss = stack::rss_kib(stack::pid(container)?)?;
        println!("{name}: idle RSS {:.1} MiB", rss as f64 / 1024.0);
    }
    drop(cleanup);
    drop(engine);
    Ok(())
}

fn build_no_cache(
    ctx: &ContextCopy,
    dockerfile: &str,
    tag: &str,
    cleanup: &Cleanup,
    args: &[(String, String)],
) -> Result<docker::BuildOutcome, String> {
    let started = std::time::Instant::now();
    let out = docker::docker()
        .current_dir(ctx.path())
        .args([
            "build",
            "--no-cache",
            "--progress=plain",
            "-f",
            dockerfile,
            "-t",
            tag,
            "--label",
        ])
        .arg(cleanup.label())
        .args(
            args.iter()
                .flat_map(|(k, v)| ["--build-arg".to_string(), format!("{k}={v}")]),
        )
        .arg(".")
        .output()
        .map_err(|e| format!("docker build: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!(
            "cold build of {tag} failed:\n{}",
            docker::tail(&log, 30)
        ));
    }
    Ok(docker::BuildOutcome {
        elapsed: started.elapsed(),
        log,
    })
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}
