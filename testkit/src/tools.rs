//! Finds the real helm (3 and 4) and kubectl binaries fetched by `scripts/fetch-tools.sh`.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
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

/// Where `scripts/fetch-tools.sh` puts the binaries.
pub fn tools_dir() -> PathBuf {
    workspace_root().join(".cache").join("tools")
}

fn tool(env_var: &str, relative: &str) -> Option<PathBuf> {
    // An explicit override that points nowhere is reported as missing rather than silently replaced.
    let path = match std::env::var_os(env_var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => tools_dir().join(relative),
    };
    path.is_file().then_some(path)
}
