//! What `dev` watches and what a changed path means: the inputs of each image's content hash (the crate, its
//! path dependencies, its Dockerfile, `Cargo.lock`, the workspace manifest) and each chart with its values
//! files. File events come from notify through its debouncer; changes within the quiet period are one batch.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::hash::{self, ImageInputs};

/// Changes closer together than this are one cycle.
pub const QUIET: Duration = Duration::from_millis(300);

/// The paths that feed one image.
#[derive(Debug, Clone)]
struct ImageWatch {
    service: &'static str,
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// The paths that feed one release without a build: its chart and the values files given for it.
#[derive(Debug, Clone)]
struct ChartWatch {
    service: &'static str,
    dir: PathBuf,
    files: Vec<PathBuf>,
}

/// What a batch of changed paths touches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Affected {
    /// Services whose image inputs changed.
    pub images: BTreeSet<&'static str>,
    /// Services whose chart or values changed.
    pub charts: BTreeSet<&'static str>,
    /// The changed paths that matter, relative to the root.
    pub paths: BTreeSet<PathBuf>,
}

impl Affected {
    /// True when nothing the deploy reads changed.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.charts.is_empty()
    }
}

/// Every path `dev` watches, and what each one feeds.
#[derive(Debug, Clone)]
pub struct Inputs {
    root: PathBuf,
    images: Vec<ImageWatch>,
    charts: Vec<ChartWatch>,
}

impl Inputs {
    /// The inputs of `images` (service, its hash inputs) and of both charts; `values` are deploy's
    /// `--values [CHART=]FILE` arguments.
    pub fn new(
        root: &Path,
        images: &[(&'static str, ImageInputs)],
        values: &[String],
    ) -> Result<Self> {
        let mut out = Self {
            root: root.to_path_buf(),
            images: Vec::new(),
            charts: Vec::new(),
        };
        for (service, inputs) in images {
            out.images.push(ImageWatch {
                service,
                dirs: hash::input_dirs(inputs)?,
                files: hash::input_top_files(inputs),
            });
        }
        for service in ["backend", "frontend"] {
            out.charts.push(ChartWatch {
                service,
                dir: PathBuf::from("helm").join(service),
                files: crate::pipeline::release::values_for(values, service)
                    .map(|f| relative(root, f))
                    .collect(),
            });
        }
        Ok(out)
    }

    /// What a change of `path` (relative to the root) touches. Build output, VCS data and hidden
    /// directories never do.
    pub fn affected(&self, path: &Path) -> Affected {
        let mut a = Affected::default();
        let ignored = path.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == "target" || c == ".git" || (c.starts_with('.') && c.len() > 1 && c != ".env")
        });
        if ignored {
            return a;
        }
        for i in &self.images {
            if i.files.iter().any(|f| f == path) || i.dirs.iter().any(|d| path.starts_with(d)) {
                a.images.insert(i.service);
            }
        }
        for c in &self.charts {
            if path.starts_with(&c.dir) || c.files.iter().any(|f| f == path) {
                a.charts.insert(c.service);
            }
        }
        if !a.is_empty() {
            a.paths.insert(path.to_path_buf());
        }
        a
    }

    /// What a batch of absolute paths touches.
    pub fn affected_all(&self, paths: &[PathBuf]) -> Affected {
        let mut all = Affected::default();
        for p in paths {
            let a = self.affected(&relative(&self.root, p));
            all.images.extend(a.images);
            all.charts.extend(a.charts);
            all.paths.extend(a.paths);
        }
        all
    }

    /// The directories to watch: each input directory and chart recursively, the root (manifest, lock file)
    /// and the directories of values files without their subdirectories.
    fn roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        for i in &self.images {
            dirs.extend(i.dirs.iter().cloned());
        }
        for c in &self.charts {
            dirs.insert(c.dir.clone());
        }
        let mut flat: BTreeSet<PathBuf> = BTreeSet::from([PathBuf::new()]);
        for c in &self.charts {
            for f in &c.files {
                flat.insert(f.parent().map(Path::to_path_buf).unwrap_or_default());
            }
        }
        let mut out: Vec<(PathBuf, RecursiveMode)> = dirs
            .into_iter()
            .map(|d| (self.root.join(d), RecursiveMode::Recursive))
            .collect();
        out.extend(
            flat.into_iter()
                .map(|d| (self.root.join(d), RecursiveMode::NonRecursive)),
        );
        out
    }
}

/// `path` relative to `root` (as given, or after resolving symlinks), else as it is.
fn relative(root: &Path, path: &Path) -> PathBuf {
    if let Ok(r) = path.strip_prefix(root) {
        return r.to_path_buf();
    }
    match (
        root.canonicalize(),
        path.canonicalize().or_else(|_| {
            // A deleted file cannot be resolved; its directory can.
            path.parent()
                .and_then(|d| d.canonicalize().ok())
                .zip(path.file_name())
                .map(|(d, n)| d.join(n))
                .ok_or_else(|| std::io::Error::other("no parent"))
        }),
    ) {
        (Ok(r), Ok(p)) => p.strip_prefix(&r).map(Path::to_path_buf).unwrap_or(p),
        _ => path.to_path_buf(),
    }
}

/// A running watch: batches of changed paths.
pub struct Watch {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    rx: Receiver<DebounceEventResult>,
}

impl Watch {
    /// Starts watching every input of `inputs`; returns how many roots are watched.
    pub fn start(inputs: &Inputs) -> Result<(Self, usize)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut debouncer = new_debouncer(QUIET, None, tx).context("starting the file watcher")?;
        // A values file in a directory that does not exist (yet) cannot be watched; everything else exists.
        let roots: Vec<(PathBuf, RecursiveMode)> = inputs
            .roots()
            .into_iter()
            .filter(|(d, _)| d.is_dir())
            .collect();
        for (dir, mode) in &roots {
            debouncer
                .watch(dir, *mode)
                .with_context(|| format!("watching {}", dir.display()))?;
        }
        Ok((
            Self {
                _debouncer: debouncer,
                rx,
            },
            roots.len(),
        ))
    }

    /// The next batch of changed paths, or None when nothing changed within `wait`. A batch ends after a
    /// quiet period: saves in quick succession (an editor's temp file, then the file) are one batch.
    pub fn next(&self, wait: Duration) -> Result<Option<Vec<PathBuf>>> {
        let first = match self.rx.recv_timeout(wait) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => return Ok(None),
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the file watcher stopped"),
        };
        let mut paths = Vec::new();
        // A watch error (a directory removed) is not a change to act on.
        let mut take = |r: DebounceEventResult| {
            if let Ok(events) = r {
                for e in events.into_iter().filter(|e| !e.kind.is_access()) {
                    paths.extend(e.event.paths.iter().cloned());
                }
            }
        };
        take(first);
        while let Ok(r) = self.rx.recv_timeout(QUIET) {
            take(r);
        }
        paths.sort();
        paths.dedup();
        Ok(Some(paths))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::write;

    /// A workspace shaped like the product: the backend depends on the agent, the frontend on nothing.
    fn ws() -> (tempfile::TempDir, Inputs) {
        let t = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let r = t.path();
        write(r, "Cargo.toml", "[workspace]\n");
        write(r, "Cargo.lock", "");
        write(
            r,
            "backend/Cargo.toml",
            "[package]\n[dependencies]\nagent = { path = \"../agent\" }\n",
        );
        write(r, "agent/Cargo.toml", "[package]\n");
        write(r, "frontend/Cargo.toml", "[package]\n");
        write(r, "helm/backend/Chart.yaml", "");
        write(r, "helm/frontend/values-dev.yaml", "");
        let inputs = |svc: &str| ImageInputs {
            root: r.to_path_buf(),
            dockerfile: PathBuf::from(format!("{svc}/Dockerfile")),
            crate_dir: PathBuf::from(svc),
            profile: "image-dev".into(),
        };
        let images = [
            ("backend", inputs("backend")),
            ("frontend", inputs("frontend")),
        ];
        let values = ["backend=custom/backend.yaml".to_string()];
        let i = Inputs::new(r, &images, &values).unwrap_or_else(|e| panic!("{e:#}"));
        (t, i)
    }

    fn hit(i: &Inputs, path: &str) -> (Vec<&'static str>, Vec<&'static str>) {
        let a = i.affected(Path::new(path));
        (
            a.images.into_iter().collect(),
            a.charts.into_iter().collect(),
        )
    }

    #[test]
    fn paths_map_to_the_images_and_charts_they_feed() {
        let (_t, i) = ws();
        assert_eq!(
            hit(&i, "agent/src/builtin/intent.rs"),
            (vec!["backend"], vec![])
        );
        assert_eq!(hit(&i, "backend/src/main.rs"), (vec!["backend"], vec![]));
        assert_eq!(hit(&i, "frontend/ui/app.js"), (vec!["frontend"], vec![]));
        assert_eq!(hit(&i, "Cargo.lock"), (vec!["backend", "frontend"], vec![]));
        assert_eq!(hit(&i, "Cargo.toml"), (vec!["backend", "frontend"], vec![]));
        assert_eq!(hit(&i, "backend/Dockerfile"), (vec!["backend"], vec![]));
        assert_eq!(
            hit(&i, "helm/frontend/values-dev.yaml"),
            (vec![], vec!["frontend"])
        );
        assert_eq!(
            hit(&i, "helm/backend/templates/secret.yaml"),
            (vec![], vec!["backend"])
        );
        assert_eq!(hit(&i, "custom/backend.yaml"), (vec![], vec!["backend"]));
        for nothing in [
            "README.md",
            "docs/contracts.md",
            "target/debug/x",
            "backend/.main.rs.swp",
            "tests/e2e/src/lib.rs",
            ".git/index",
        ] {
            assert_eq!(hit(&i, nothing), (vec![], vec![]), "{nothing}");
        }
    }

    #[test]
    fn a_write_arrives_as_one_batch() {
        let (t, i) = ws();
        // Edits of existing files (inotify cannot see into a directory made after the watch began until
        // notify has added it; the directory's own event still maps to its image).
        write(t.path(), "agent/src/lib.rs", "");
        write(t.path(), "frontend/src/main.rs", "");
        let (w, roots) = Watch::start(&i).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(roots >= 4);
        write(t.path(), "agent/src/lib.rs", "pub fn a() {}\n");
        write(t.path(), "frontend/src/main.rs", "fn main() {}\n");
        let mut got: Vec<PathBuf> = Vec::new();
        // Events are asynchronous: wait for them (bounded), never for a fixed time.
        for _ in 0..40 {
            if let Ok(Some(batch)) = w.next(Duration::from_millis(250)) {
                got.extend(batch);
            }
            let a = i.affected_all(&got);
            if a.images.len() == 2 {
                break;
            }
        }
        let a = i.affected_all(&got);
        assert_eq!(
            a.images.into_iter().collect::<Vec<_>>(),
            ["backend", "frontend"],
            "{got:?}"
        );
        assert!(
            a.paths.contains(Path::new("agent/src/lib.rs")),
            "{:?}",
            a.paths
        );
    }
}
