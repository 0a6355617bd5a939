//! `cargo xtask test`: stages in order, stop at the first failure, summary with timings. `CARGO` points at a
//! recording stand-in so the test does not recurse into the real test suite.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn fake_cargo(dir: &std::path::Path, fail_on: &str) -> std::path::PathBuf {
    let log = dir.join("cargo.log");
    let script = dir.join("cargo");
    let body = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *{fail_on}*) exit 101;; esac\nexit 0\n",
        log.display()
    );
    std::fs::write(&script, body).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    script
}

fn run(args: &[&str], cargo: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("CARGO", cargo)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn stops_at_the_first_failing_stage_with_a_summary() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cargo = fake_cargo(dir.path(), "clippy");
    let (code, stderr) = run(&["test"], &cargo);
    assert_eq!(code, 4, "{stderr}");
    let log = std::fs::read_to_string(dir.path().join("cargo.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "fmt --all -- --check",
            "clippy --workspace --all-targets -- -D warnings"
        ]
    );
    assert!(
        stderr.contains("summary:") && stderr.contains("FAILED"),
        "{stderr}"
    );
}

#[test]
fn fast_runs_three_stages_and_full_runs_five() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cargo = fake_cargo(dir.path(), "never-matches");
    assert_eq!(run(&["test", "--fast"], &cargo).0, 0);
    let log = std::fs::read_to_string(dir.path().join("cargo.log")).unwrap_or_default();
    assert_eq!(log.lines().count(), 3);
    assert!(log
        .lines()
        .nth(2)
        .is_some_and(|l| l == "test --workspace --exclude images-tests --exclude e2e-tests"));
    std::fs::remove_file(dir.path().join("cargo.log")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run(&["test"], &cargo).0, 0);
    let log = std::fs::read_to_string(dir.path().join("cargo.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[3], "test -p images-tests");
    assert_eq!(lines[4], "test -p e2e-tests");
}
