//! Runs the real helm binaries with an isolated config/cache/data home, so tests neither read nor
//! write the user's helm repositories and plugins, and can run in parallel.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::manifest::Rendered;

/// One helm binary (3 or 4) ready to run.
pub struct Helm {
    major: u8,
    bin: PathBuf,
    home: TempDir,
}

impl fmt::Display for Helm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "helm {}", self.major)
    }
}

/// Values passed to a helm command: `-f` files and `--set` pairs, in order.
#[derive(Clone, Default)]
pub struct Values {
    args: Vec<OsString>,
}

impl Values {
    /// No values besides the chart's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The chart defaults plus the one required value, `image.tag`.
    pub fn tagged() -> Self {
        Self::new().set("image.tag", "test")
    }

    /// Adds `-f <path>`.
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.args.push("-f".into());
        self.args.push(path.as_ref().as_os_str().to_owned());
        self
    }

    /// Adds `--set key=value` (helm infers the type, as a user's `--set` would).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.args.push("--set".into());
        self.args.push(format!("{key}={value}").into());
        self
    }
}

/// What a helm command did.
pub struct HelmOutput {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit status was 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl HelmOutput {
    /// Panics with the command and its output unless it succeeded.
    pub fn assert_success(self) -> Self {
        assert!(
            self.success,
            "`{}` failed:\n{}\n{}",
            self.command, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed; returns its combined output for message checks.
    pub fn assert_failure(self) -> String {
        assert!(
            !self.success,
            "`{}` succeeded but should have failed:\n{}",
            self.command, self.stdout
        );
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Helm {
    /// Helm 3 and helm 4, each when present. A missing one is a missing prerequisite (fatal under CI).
    pub fn all() -> Vec<Helm> {
        let found = [(3, testkit::tools::helm3()), (4, testkit::tools::helm4())];
        let mut helms = Vec::new();
        for (major, bin) in found {
            match bin {
                Some(bin) => helms.push(Helm::new(major, bin)),
                None => testkit::ci::missing_prerequisite(&format!(
                    "helm {major} binary (run .ci/fetch-tools.sh, or set HELM{major}_BIN)"
                )),
            }
        }
        helms
    }

    fn new(major: u8, bin: PathBuf) -> Helm {
        let home = tempfile::tempdir().expect("temp dir for helm's home");
        Helm { major, bin, home }
    }

    /// Major version (3 or 4).
    pub fn major(&self) -> u8 {
        self.major
    }

    /// Runs helm with `args`.
    pub fn run<I, S>(&self, args: I) -> HelmOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let command = format!(
            "{} {}",
            self,
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let home = self.home.path();
        let output = Command::new(&self.bin)
            .args(&args)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            // No cluster: nothing here may reach one, even if the user's kubeconfig points at one.
            .env("KUBECONFIG", home.join("no-kubeconfig"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        HelmOutput {
            command,
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `helm lint --strict <chart> <values>`.
    pub fn lint(&self, chart: &Path, values: &Values) -> HelmOutput {
        let mut args: Vec<OsString> = vec!["lint".into(), "--strict".into(), chart.into()];
        args.extend(values.args.iter().cloned());
        self.run(args)
    }

    /// `helm template <release> <chart> --namespace todo <values>`.
    pub fn template(&self, release: &str, chart: &Path, values: &Values) -> HelmOutput {
        self.template_in(crate::NAMESPACE, release, chart, values)
    }

    /// `helm template <release> <chart> --namespace <namespace> <values>`.
    pub fn template_in(
        &self,
        namespace: &str,
        release: &str,
        chart: &Path,
        values: &Values,
    ) -> HelmOutput {
        let mut args: Vec<OsString> = vec![
            "template".into(),
            release.into(),
            chart.into(),
            "--namespace".into(),
            namespace.into(),
        ];
        args.extend(values.args.iter().cloned());
        self.run(args)
    }

    /// Renders and parses into typed objects; panics with helm's message if rendering fails.
    pub fn render(&self, release: &str, chart: &Path, values: &Values) -> Rendered {
        self.render_in(crate::NAMESPACE, release, chart, values)
    }

    /// Like [`Helm::render`], into `namespace`.
    pub fn render_in(
        &self,
        namespace: &str,
        release: &str,
        chart: &Path,
        values: &Values,
    ) -> Rendered {
        let out = self
            .template_in(namespace, release, chart, values)
            .assert_success();
        Rendered::parse(&out.stdout)
            .unwrap_or_else(|e| panic!("{self}: cannot parse `{}`: {e}", out.command))
    }

    /// `helm package <chart> --destination <dir>`.
    pub fn package(&self, chart: &Path, destination: &Path) -> HelmOutput {
        self.run([
            OsStr::new("package"),
            chart.as_os_str(),
            OsStr::new("--destination"),
            destination.as_os_str(),
        ])
    }
}

impl Helm {
    /// `helm install <release> <chart> --namespace todo --dry-run=server <values>` against the cluster of
    /// `kubeconfig`: renders like an install would, `lookup` included, and writes nothing.
    pub fn install_dry_run_server(
        &self,
        kubeconfig: &Path,
        release: &str,
        chart: &Path,
        values: &Values,
    ) -> HelmOutput {
        let mut args: Vec<OsString> = vec![
            "install".into(),
            release.into(),
            chart.into(),
            "--namespace".into(),
            crate::NAMESPACE.into(),
            "--dry-run=server".into(),
            // The fake serves no OpenAPI document; the typed render tests cover the schema.
            "--disable-openapi-validation".into(),
            "--kubeconfig".into(),
            kubeconfig.into(),
        ];
        args.extend(values.args.iter().cloned());
        self.run(args)
    }
}

/// What `helm install --dry-run` printed, split into its parts.
pub struct DryRun {
    /// Hooks and manifests, as one YAML stream.
    pub manifests: String,
    /// The rendered NOTES.txt.
    pub notes: String,
}

impl DryRun {
    /// Splits the `HOOKS:` / `MANIFEST:` / `NOTES:` sections of helm's install output.
    pub fn parse(stdout: &str) -> DryRun {
        let mut manifests = String::new();
        let mut notes = String::new();
        let mut section = "";
        for line in stdout.lines() {
            match line {
                "HOOKS:" | "MANIFEST:" | "NOTES:" => section = line,
                _ if section == "NOTES:" => {
                    notes.push_str(line);
                    notes.push('\n');
                }
                _ if !section.is_empty() => {
                    manifests.push_str(line);
                    manifests.push('\n');
                }
                _ => {}
            }
        }
        DryRun { manifests, notes }
    }
}
