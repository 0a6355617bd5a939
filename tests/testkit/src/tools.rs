//! Finds the real helm (3 and 4) and kubectl binaries fetched by `.ci/fetch-tools.sh`.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    // This crate lives at <root>/tests/testkit.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// The files git considers part of the workspace, relative to its root: tracked and untracked, ignored ones
/// left out (`git ls-files --cached --others --exclude-standard`). A tracked file deleted in the working
/// tree is still listed: callers check what exists.
pub fn workspace_files() -> Result<Vec<PathBuf>, String> {
    let root = workspace_root();
    let out = std::process::Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run git ls-files in {}: {e}", root.display()))?;
    if !out.status.success() {
        return Err(format!("git ls-files failed in {}", root.display()));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| PathBuf::from(String::from_utf8_lossy(f).into_owned()))
        .collect())
}

/// Helm 3: `$HELM3_BIN`, else `<workspace>/.cache/tools/helm3/helm`, if it is an existing file.
pub fn helm3() -> Option<PathBuf> {
    tool("HELM3_BIN", "helm3/helm")
}

/// Helm 4: `$HELM4_BIN`, else `<workspace>/.cache/tools/helm4/helm`, if it is an existing file.
pub fn helm4() -> Option<PathBuf> {
    tool("HELM4_BIN", "helm4/helm")
}

/// kubectl: `$KUBECTL_BIN`, else the one fetched beside helm 4, else beside helm 3.
pub fn kubectl() -> Option<PathBuf> {
    tool("KUBECTL_BIN", "helm4/kubectl").or_else(|| tool("KUBECTL_BIN", "helm3/kubectl"))
}

/// Where `.ci/fetch-tools.sh` puts the binaries.
pub fn tools_dir() -> PathBuf {
    workspace_root().join(".cache").join("tools")
}

fn tool(env_var: &str, relative: &str) -> Option<PathBuf> {
    resolve(std::env::var_os(env_var), &tools_dir().join(relative))
}

/// An explicit override wins, and one that points nowhere is reported as missing rather than
/// silently replaced by the default.
fn resolve(override_path: Option<std::ffi::OsString>, default: &Path) -> Option<PathBuf> {
    let path = match override_path {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => default.to_path_buf(),
    };
    path.is_file().then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_wins_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("helm");
        std::fs::write(&real, b"").expect("write");
        let missing = dir.path().join("nope");
        assert_eq!(resolve(None, &real), Some(real.clone()));
        assert_eq!(
            resolve(Some("".into()), &real),
            Some(real.clone()),
            "empty override = unset"
        );
        assert_eq!(
            resolve(Some(real.clone().into()), &missing),
            Some(real.clone())
        );
        assert_eq!(
            resolve(Some(missing.clone().into()), &real),
            None,
            "a wrong override is not ignored"
        );
        assert_eq!(
            resolve(None, dir.path()),
            None,
            "a directory is not a binary"
        );
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest =
            std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("root Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }
}
