//! A temp copy of the build context (the workspace's tracked and unignored files, mtimes kept),
//! so a test can change a source file or plant canaries without touching the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testkit::docker::workspace_root;

/// A copy of the workspace in a temp dir, removed on drop.
pub struct ContextCopy {
    dir: tempfile::TempDir,
}

impl ContextCopy {
    /// Copies what `git ls-files --cached --others --exclude-standard` lists (no `.git`, no
    /// `target/`, no ignored files), keeping modification times so cargo's fingerprints match.
    pub fn of_workspace() -> Result<Self, String> {
        let root = workspace_root();
        let dir = tempfile::Builder::new()
            .prefix("todo-image-context-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        // Deleted-but-tracked files are listed by git yet absent: keep only what exists.
        let files: Vec<u8> = testkit::tools::workspace_files()?
            .into_iter()
            .filter(|f| root.join(f).exists())
            .flat_map(|f| {
                f.into_os_string()
                    .into_encoded_bytes()
                    .into_iter()
                    .chain([0u8])
            })
            .collect();
        let pack = format!(
            "tar -C '{}' --null -T - -cf - | tar -C '{}' -xf -",
            root.display(),
            dir.path().display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &pack])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tar: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            stdin
                .write_all(&files)
                .map_err(|e| format!("cannot feed the file list to tar: {e}"))?;
        }
        let status = child.wait().map_err(|e| format!("tar: {e}"))?;
        if !status.success() {
            return Err(format!("copying the workspace with tar failed ({status})"));
        }
        Ok(ContextCopy { dir })
    }

    /// The copy's root (the build context).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends a comment line no earlier call (in this run or any other) wrote: a source-only
    /// change that BuildKit cannot answer from a layer cached by a previous run.
    pub fn touch_source(&self, relative: &str) -> Result<(), String> {
        let path = self.dir.path().join(relative);
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        text.push_str(&format!(
            "\n// source-only change made by a test: {}\n",
            testkit::unique_id()
        ));
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Writes `contents` at `relative` (parent directories made), e.g. a canary `.env`.
    pub fn plant(&self, relative: &str, contents: &str) -> Result<PathBuf, String> {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}
