//! Content hash of an image's inputs: the Dockerfile, the workspace manifest and lock file, the crate's
//! sources and its path dependencies' sources (sorted, git-ignored files left out) and the cargo profile the
//! image is built with. First 12 hex = the tag. The per-file digests are kept too: they say which input
//! changed between two tags.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::process::Runner;
use crate::tools::git;

/// What goes into one image.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// Workspace root (the build context).
    pub root: PathBuf,
    /// Dockerfile, relative to the root.
    pub dockerfile: PathBuf,
    /// The crate directory, relative to the root.
    pub crate_dir: PathBuf,
    /// The cargo profile the image is built with (`release`, or `image-dev` for `cargo xtask dev`).
    pub profile: String,
}

/// The digest of every input of an image, and the profile: what its tag is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// The cargo profile.
    pub profile: String,
    /// Path (relative to the root) -> hex sha256 of the file's bytes.
    pub files: BTreeMap<PathBuf, String>,
}

impl Digests {
    /// The image tag: first 12 hex of a sha256 over the profile and each path with its digest.
    pub fn tag(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"profile\0");
        h.update(self.profile.as_bytes());
        h.update([0]);
        for (path, digest) in &self.files {
            // Path framing: moving bytes between files changes the hash.
            h.update(path.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(digest.as_bytes());
            h.update([0]);
        }
        hex(&h.finalize()[..6])
    }

    /// The inputs that differ from `old` (changed, added or removed), and `profile` when that changed.
    pub fn changed_since(&self, old: &Digests) -> Vec<String> {
        let mut out = Vec::new();
        if self.profile != old.profile {
            out.push(format!("profile {} -> {}", old.profile, self.profile));
        }
        let paths: BTreeSet<&PathBuf> = self.files.keys().chain(old.files.keys()).collect();
        for p in paths {
            if self.files.get(p) != old.files.get(p) {
                out.push(p.display().to_string());
            }
        }
        out
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and hashes every input file.
pub fn digests(runner: &Runner, inputs: &ImageInputs) -> Result<Digests> {
    let mut files = BTreeMap::new();
    for rel in input_files(runner, inputs)? {
        let bytes = std::fs::read(inputs.root.join(&rel))
            .with_context(|| format!("reading {}", rel.display()))?;
        files.insert(rel, hex(&Sha256::digest(&bytes)));
    }
    Ok(Digests {
        profile: inputs.profile.clone(),
        files,
    })
}

/// The image tag of `inputs`.
#[cfg(test)]
pub fn image_tag(runner: &Runner, inputs: &ImageInputs) -> Result<String> {
    Ok(digests(runner, inputs)?.tag())
}

/// Where the digests of a built or deployed image are remembered (`status` tells from them which input
/// changed since): `<root>/.cache/xtask/inputs/<repository>-<tag>.json`.
pub fn record_path(root: &Path, repository: &str, tag: &str) -> PathBuf {
    root.join(".cache/xtask/inputs")
        .join(format!("{repository}-{tag}.json"))
}

/// Remembers `d` for the image `repository:tag` (best effort: only `status` reads it).
pub fn remember(root: &Path, repository: &str, d: &Digests) {
    let p = record_path(root, repository, &d.tag());
    if p.exists() {
        return;
    }
    if let (Some(dir), Ok(text)) = (p.parent(), serde_json::to_string(d)) {
        let _ = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&p, text));
    }
}

/// The remembered digests of `repository:tag`, if this workspace built or deployed it.
pub fn recall(root: &Path, repository: &str, tag: &str) -> Option<Digests> {
    let text = std::fs::read_to_string(record_path(root, repository, tag)).ok()?;
    serde_json::from_str(&text).ok()
}

/// A digest of every file under `paths` (directories walked, files read; missing ones count as absent):
/// tells whether a chart or a values file changed.
pub fn tree_digest(paths: &[PathBuf]) -> String {
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            let _ = walk(p, Path::new(""), &mut found);
            files.extend(found.into_iter().map(|f| p.join(f)));
        } else {
            files.insert(p.clone());
        }
    }
    let mut h = Sha256::new();
    for f in &files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        if let Ok(bytes) = std::fs::read(f) {
            h.update(Sha256::digest(&bytes));
        }
    }
    hex(&h.finalize()[..8])
}

/// The directories whose files are inputs of `inputs`: the crate and its path dependencies, relative to the root.
pub fn input_dirs(inputs: &ImageInputs) -> Result<Vec<PathBuf>> {
    let root = &inputs.root;
    let mut dirs = vec![inputs.crate_dir.clone()];
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut i = 0;
    while i < dirs.len() {
        let dir = dirs[i].clone();
        i += 1;
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = root.join(&dir).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        for dep in path_dependencies(&text) {
            let joined = normalize(&dir.join(dep));
            if !seen.contains(&joined) {
                dirs.push(joined);
            }
        }
    }
    Ok(seen.into_iter().collect())
}

/// The top-level files every image's hash reads: the Dockerfile, the workspace manifest and lock file.
pub fn input_top_files(inputs: &ImageInputs) -> Vec<PathBuf> {
    vec![
        inputs.dockerfile.clone(),
        PathBuf::from("Cargo.toml"),
        PathBuf::from("Cargo.lock"),
    ]
}

/// The sorted list of input files, relative to the root.
pub fn input_files(runner: &Runner, inputs: &ImageInputs) -> Result<Vec<PathBuf>> {
    let root = &inputs.root;
    let mut files: BTreeSet<PathBuf> = input_top_files(inputs)
        .into_iter()
        .filter(|f| root.join(f).is_file())
        .collect();
    for dir in input_dirs(inputs)? {
        files.extend(list_dir(runner, root, &dir)?);
    }
    Ok(files.into_iter().collect())
}

/// `path = "..."` values of the `[dependencies]`/`[build-dependencies]` tables (dev-dependencies don't go into images).
pub fn path_dependencies(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_deps = false;
    let mut dep_table = false;
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if l.starts_with('[') {
            let name = l.trim_matches(|c| c == '[' || c == ']').trim();
            in_deps = matches!(name, "dependencies" | "build-dependencies");
            dep_table =
                name.starts_with("dependencies.") || name.starts_with("build-dependencies.");
            continue;
        }
        if !(in_deps || dep_table) {
            continue;
        }
        let l = l.split(" #").next().unwrap_or(l);
        if let Some(pos) = l.find("path") {
            let rest = l[pos + 4..].trim_start();
            if let Some(rest) = rest.strip_prefix('=') {
                let rest = rest.trim_start();
                if let Some(rest) = rest.strip_prefix('"') {
                    if let Some(end) = rest.find('"') {
                        out.push(rest[..end].to_string());
                    }
                }
            }
        }
    }
    out
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Files under `dir`: git's view (tracked + untracked, ignored excluded) when in a git checkout with git
/// installed, else a walk that skips `target/` and hidden directories.
fn list_dir(runner: &Runner, root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    if root.join(".git").exists() && crate::tools::available("git") {
        let sh = xshell::Shell::new().context("reading the current directory")?;
        let out = runner.output(&git::ls_files(&sh, root, dir))?;
        if out.ok() {
            return Ok(out
                .stdout
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                // Deleted-but-tracked files are listed by --cached; they are not inputs.
                .filter(|p| root.join(p).is_file())
                .collect());
        }
    }
    let mut out = Vec::new();
    walk(root, dir, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let abs = root.join(rel);
    for entry in std::fs::read_dir(&abs).with_context(|| format!("listing {}", abs.display()))? {
        let entry = entry?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s.starts_with('.') || name_s == "target" {
            continue;
        }
        let child = rel.join(&name);
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(root, &child, out)?;
        } else if ft.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::write;

    fn ws() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = t.path();
        write(r, "Cargo.toml", "[workspace]\n");
        write(r, "Cargo.lock", "# lock\n");
        write(r, "backend/Dockerfile", "FROM x\n");
        write(
            r,
            "backend/Cargo.toml",
            "[package]\nname='backend'\n[dependencies]\nagent = { path = \"../agent\" }\n# old = { path = \"../old\" }\n[dev-dependencies]\ntestkit = { path = \"../testkit\" }\n",
        );
        write(r, "backend/src/main.rs", "fn main() {}\n");
        write(r, "backend/target/debug/junk", "x");
        write(r, "agent/Cargo.toml", "[package]\nname='agent'\n");
        write(r, "agent/src/lib.rs", "");
        write(r, "testkit/Cargo.toml", "[package]\nname='testkit'\n");
        write(r, "testkit/src/lib.rs", "");
        write(r, "frontend/src/main.rs", "");
        t
    }

    fn inputs(root: &Path) -> ImageInputs {
        ImageInputs {
            root: root.into(),
            dockerfile: "backend/Dockerfile".into(),
            crate_dir: "backend".into(),
            profile: "release".into(),
        }
    }

    #[test]
    fn path_deps_skip_comments_and_dev_deps() {
        let m = "[dependencies]\na = { path = \"../a\" }\n# b = { path = \"../b\" }\n[dev-dependencies]\nc = { path = \"../c\" }\n[dependencies.d]\npath = \"../d\"\n";
        assert_eq!(path_dependencies(m), ["../a", "../d"]);
    }

    #[test]
    fn inputs_are_sorted_and_include_path_deps_only() {
        let t = ws();
        let files =
            input_files(&Runner::new(false, false, false), &inputs(t.path())).unwrap_or_default();
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "Cargo.lock",
                "Cargo.toml",
                "agent/Cargo.toml",
                "agent/src/lib.rs",
                "backend/Cargo.toml",
                "backend/Dockerfile",
                "backend/src/main.rs"
            ]
        );
    }

    #[test]
    fn tag_changes_with_inputs_only() {
        let t = ws();
        let a = image_tag(&Runner::new(false, false, false), &inputs(t.path())).unwrap_or_default();
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        write(t.path(), "frontend/src/main.rs", "changed");
        write(t.path(), "testkit/src/lib.rs", "changed");
        assert_eq!(
            image_tag(&Runner::new(false, false, false), &inputs(t.path())).unwrap_or_default(),
            a
        );
        write(t.path(), "agent/src/lib.rs", "changed");
        assert_ne!(
            image_tag(&Runner::new(false, false, false), &inputs(t.path())).unwrap_or_default(),
            a
        );
    }

    #[test]
    fn the_profile_is_part_of_the_tag_and_changes_are_named() {
        let t = ws();
        let r = Runner::new(false, false, false);
        let release = digests(&r, &inputs(t.path())).unwrap_or_default();
        let mut dev_inputs = inputs(t.path());
        dev_inputs.profile = "image-dev".into();
        let dev = digests(&r, &dev_inputs).unwrap_or_default();
        assert_ne!(
            release.tag(),
            dev.tag(),
            "a dev image is never mistaken for a release image"
        );
        assert_eq!(
            dev.changed_since(&release),
            ["profile release -> image-dev"]
        );
        write(t.path(), "agent/src/lib.rs", "changed");
        write(t.path(), "agent/src/new.rs", "new");
        let after = digests(&r, &inputs(t.path())).unwrap_or_default();
        assert_eq!(
            after.changed_since(&release),
            ["agent/src/lib.rs", "agent/src/new.rs"]
        );
        assert_eq!(
            input_dirs(&inputs(t.path())).unwrap_or_default(),
            [PathBuf::from("agent"), PathBuf::from("backend")]
        );
        remember(t.path(), "todo-backend", &after);
        assert_eq!(recall(t.path(), "todo-backend", &after.tag()), Some(after));
    }
}
