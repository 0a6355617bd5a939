//! The doubles' flag sets (`tests/doubles/spec/*.flags`) still match the real binaries they were generated
//! from: each command's `--help` is read again from the real helm 3 and 4, kubectl 1.31 and 1.35 and docker
//! 20.10 and 28 and compared with the committed fixture. `UPDATE_SPEC_FIXTURES=1` rewrites the generated part
//! (the `# --- from source` part of a fixture, flags `--help` does not show, is kept as it is).

use std::path::{Path, PathBuf};
use std::process::Command;

use tool_doubles::spec::{help, Flag};

const MARKER: &str = "# --- from source";

/// Commands each double implements or delegates (their words, `""` = the root).
const HELM: [&str; 18] = [
    "",
    "version",
    "upgrade",
    "install",
    "status",
    "history",
    "list",
    "rollback",
    "uninstall",
    "get",
    "get values",
    "get manifest",
    "get notes",
    "test",
    "template",
    "lint",
    "show",
    "show chart",
];
const KUBECTL: [&str; 20] = [
    "",
    "version",
    "get",
    "create",
    "create namespace",
    "label",
    "delete",
    "logs",
    "port-forward",
    "scale",
    "rollout",
    "rollout status",
    "exec",
    "wait",
    "config",
    "config current-context",
    "config get-contexts",
    "config use-context",
    "config unset",
    "cluster-info",
];
const DOCKER: [&str; 8] = [
    "",
    "version",
    "build",
    "image",
    "image inspect",
    "image ls",
    "image rm",
    "history",
];

fn spec_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("spec")
}

fn help_of(bin: &Path, path: &str, kubectl_root: bool) -> String {
    let mut c = Command::new(bin);
    if kubectl_root {
        c.arg("options");
    } else {
        c.args(path.split_whitespace()).arg("--help");
    }
    // Defaults that name this machine's home (cache dirs) are not kept in the fixture, only names and types.
    let out = c
        .env("HOME", "/nonexistent-home")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "{} {path} --help: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn version_of(bin: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

enum Style {
    Cobra,
    Kubectl,
}

fn generate(bin: &Path, style: Style, paths: &[&str], header: &[String], version: &str) -> String {
    let commands: Vec<tool_doubles::spec::Command> = paths
        .iter()
        .map(|p| {
            let (flags, usage): (Vec<Flag>, Option<String>) = match style {
                Style::Cobra => {
                    let h = help_of(bin, p, false);
                    let usage = if bin.file_name().is_some_and(|n| n == "docker") {
                        help::usage_line(&h)
                    } else {
                        None
                    };
                    (help::cobra_flags(&h), usage)
                }
                Style::Kubectl => (help::kubectl_flags(&help_of(bin, p, p.is_empty())), None),
            };
            tool_doubles::spec::Command {
                path: p.to_string(),
                usage,
                flags,
            }
        })
        .collect();
    help::render(header, version, &commands)
}

/// Compares (or with UPDATE_SPEC_FIXTURES=1 rewrites) the generated part of `file`.
fn check(file: &str, generated: &str) {
    let path = spec_dir().join(file);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    let (head, tail) = match on_disk.find(MARKER) {
        Some(i) => (&on_disk[..i], &on_disk[i..]),
        None => (on_disk.as_str(), ""),
    };
    if std::env::var_os("UPDATE_SPEC_FIXTURES").is_some() {
        let sep = if tail.is_empty() { "" } else { "\n" };
        std::fs::write(&path, format!("{generated}{sep}{tail}"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    assert_eq!(
        head.trim_end(),
        generated.trim_end(),
        "{file} no longer matches its binary: regenerate with UPDATE_SPEC_FIXTURES=1 cargo test -p tool-doubles --test spec_fixtures"
    );
}

fn header(what: &str, bin: &str, cmd: &str) -> Vec<String> {
    vec![
        format!("{what}: generated from the real binary ({bin}) by tests/spec_fixtures.rs, `{cmd}` per command."),
        "Format: spec/PROVENANCE.md. Regenerate: UPDATE_SPEC_FIXTURES=1 cargo test -p tool-doubles --test spec_fixtures".into(),
    ]
}

#[test]
fn helm_flag_sets_match_the_real_helm_binaries() {
    for (bin, file) in [
        (testkit::tools::helm3(), "helm-v3.17.3.flags"),
        (testkit::tools::helm4(), "helm-v4.1.4.flags"),
    ] {
        let Some(bin) = bin else {
            testkit::ci::missing_prerequisite(&format!(
                "the helm binary of {file} (.ci/fetch-tools.sh)"
            ));
            continue;
        };
        let version = version_of(&bin, &["version", "--template", "{{.Version}}"]);
        assert!(
            file.contains(&version),
            "{file} is for another helm than {version}"
        );
        let text = generate(
            &bin,
            Style::Cobra,
            &HELM,
            &header(
                &format!("helm {version}"),
                ".cache/tools/helm*/helm",
                "helm <command> --help",
            ),
            &version,
        );
        check(file, &text);
    }
}

#[test]
fn kubectl_flag_sets_match_the_real_kubectl_binaries() {
    let dir = testkit::tools::tools_dir();
    for (bin, file) in [
        (dir.join("helm3/kubectl"), "kubectl-v1.31.9.flags"),
        (dir.join("helm4/kubectl"), "kubectl-v1.35.2.flags"),
    ] {
        if !bin.is_file() {
            testkit::ci::missing_prerequisite(&format!("{} (.ci/fetch-tools.sh)", bin.display()));
            continue;
        }
        let v = version_of(&bin, &["version", "--client", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_str(&v).unwrap_or_default();
        let version = v["clientVersion"]["gitVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            file.contains(&version),
            "{file} is for another kubectl than {version}"
        );
        let text = generate(
            &bin,
            Style::Kubectl,
            &KUBECTL,
            &header(
                &format!("kubectl {version}"),
                ".cache/tools/helm*/kubectl",
                "kubectl <command> --help` (root: `kubectl options",
            ),
            &version,
        );
        check(file, &text);
    }
}

#[test]
fn docker_flag_sets_match_the_real_docker_clients() {
    let d28 = std::env::var_os("DOCKER28_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/docker"));
    for (bin, file) in [
        (testkit::docker::docker_bin(), "docker-20.10.24.flags"),
        (d28, "docker-28.2.2.flags"),
    ] {
        if !bin.is_file() {
            testkit::ci::missing_prerequisite(&format!("docker client {}", bin.display()));
            continue;
        }
        let version = version_of(&bin, &["version", "--format", "{{.Client.Version}}"]);
        let short = version.split('+').next().unwrap_or(&version).to_string();
        assert!(
            file.contains(&short),
            "{file} is for another docker than {version}"
        );
        let text = generate(
            &bin,
            Style::Cobra,
            &DOCKER,
            &header(
                &format!("docker {version}"),
                &bin.display().to_string(),
                "docker <command> --help",
            ),
            &short,
        );
        check(file, &text);
    }
}
