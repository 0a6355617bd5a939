//! What the real tools accept: per-subcommand flag sets of helm, kubectl, minikube and docker, and their
//! command-line parsing (spf13/pflag + cobra semantics) with the real tools' error texts and exit codes.
//!
//! The one place that knows the real tools' flags: both doubles (this crate's `tool-double` and the
//! Docker-backed cluster double in `tests/e2e/src/cli`) parse every argv through [`Spec::parse`], so a flag
//! the real tool does not have fails a test the way it fails a user.
//!
//! The flag sets live in `tests/doubles/spec/*.flags` (see `spec/PROVENANCE.md`): helm, kubectl and docker
//! are generated from the real binaries' `--help` ([`help`]; `tests/spec_fixtures.rs` checks they still
//! match the binaries), minikube and buildx from their sources (no binary exists here).

pub mod help;

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Which tool a spec describes: decides the error texts and exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// helm (cobra; `SilenceUsage`): `Error: <msg>`, exit 1.
    Helm,
    /// kubectl (cobra with kubectl's flag error func): `error: <msg>` + `See '<cmd> --help' for usage.`, exit 1.
    Kubectl,
    /// minikube (cobra, usage printed, `reason.ExProgramUsage`): `Error: <msg>` + usage, exit 14.
    Minikube,
    /// docker CLI 20.10: `<msg>` + `See '<cmd> --help'.`, exit 125.
    Docker20,
    /// docker CLI 23+: `<msg>` + usage line + `Run '<cmd> --help' for more information`, exit 125.
    Docker23,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Helm => "helm",
            Tool::Kubectl => "kubectl",
            Tool::Minikube => "minikube",
            Tool::Docker20 | Tool::Docker23 => "docker",
        }
    }
}

/// One flag: `--long`, optional `-s`, its pflag type (`bool`, `string`, `duration`, ...) and the value a
/// bare `--flag` gets (pflag's NoOptDefVal: `true` for every bool, `watcher` for Helm 4's `--wait`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Name without dashes.
    pub long: String,
    /// Shorthand letter.
    pub short: Option<char>,
    /// pflag type word as `--help` shows it (`bool` when help shows none).
    pub ty: String,
    /// Value of the bare flag, if it may stand alone.
    pub no_opt: Option<String>,
    /// Deprecation message (pflag prints `Flag --x has been deprecated, <msg>` when it is used).
    pub deprecated: Option<String>,
}

impl Flag {
    fn is_bool(&self) -> bool {
        self.ty == "bool"
    }

    /// The flag's value for a bare occurrence, if it may stand alone.
    fn bare(&self) -> Option<String> {
        if self.is_bool() {
            Some("true".into())
        } else {
            self.no_opt.clone()
        }
    }

    /// One fixture line: `-n --namespace string`, `- --wait WaitStrategy =watcher`.
    pub fn line(&self) -> String {
        let short = self.short.map_or("-".to_string(), |c| format!("-{c}"));
        let mut l = format!("{short} --{} {}", self.long, self.ty);
        if let Some(n) = &self.no_opt {
            l.push_str(&format!(" ={n}"));
        }
        if let Some(d) = &self.deprecated {
            l.push_str(&format!(" deprecated={d}"));
        }
        l
    }
}

/// One command of a tool: its words (`get values`; empty for the root), usage line and flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Command {
    /// The subcommand words, space-separated (`""` for the root command).
    pub path: String,
    /// docker's `Usage:` line (its flag errors quote it).
    pub usage: Option<String>,
    /// Flags the command accepts (for helm and docker including the inherited global ones).
    pub flags: Vec<Flag>,
}

/// A tool's command tree with flag sets, read from a `.flags` fixture.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Error style.
    pub tool: Tool,
    /// Version the fixture was taken from.
    pub version: String,
    /// Commands by path.
    pub commands: BTreeMap<String, Command>,
}

/// An argv the real tool refuses: what it prints and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Exit code.
    pub code: i32,
    /// Standard error.
    pub stderr: String,
}

/// A parsed command line.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The subcommand words that were recognised (`["get", "values"]`).
    pub command: Vec<String>,
    /// Positional arguments after them, in order (after `--` everything is positional).
    pub pos: Vec<String>,
    /// Values by long flag name with dashes (`--namespace`), in order; a bare bool holds `true`.
    pub flags: BTreeMap<String, Vec<String>>,
    /// Deprecation warnings pflag printed on stderr while parsing.
    pub warnings: String,
}

impl Parsed {
    /// Last value of `--long`.
    pub fn get(&self, long: &str) -> Option<String> {
        self.flags.get(long).and_then(|v| v.last().cloned())
    }
    /// Every value of `--long`, in order.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.flags.get(long).cloned().unwrap_or_default()
    }
    /// True when a bool flag was given and is true (`--x`, `--x=true`, `--x=1`).
    pub fn on(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| parse_bool(&v) == Some(true))
    }
    /// True when the flag was given at all.
    pub fn given(&self, long: &str) -> bool {
        self.flags.contains_key(long)
    }
    /// The command words followed by the positionals.
    pub fn words(&self) -> Vec<String> {
        self.command.iter().chain(&self.pos).cloned().collect()
    }
}

/// strconv.ParseBool: what pflag's bool flags accept.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

impl Spec {
    /// Reads a `.flags` fixture (format: see `spec/PROVENANCE.md`).
    pub fn from_fixture(tool: Tool, text: &str) -> Result<Spec, String> {
        let mut version = String::new();
        let mut commands: BTreeMap<String, Command> = BTreeMap::new();
        let mut current: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if let Some(v) = line.strip_prefix("# version ") {
                version = v.trim().to_string();
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let path = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("line {}: unterminated section {line:?}", n + 1))?;
                commands.entry(path.to_string()).or_insert_with(|| Command {
                    path: path.to_string(),
                    ..Command::default()
                });
                current = Some(path.to_string());
                continue;
            }
            let cmd = current
                .as_ref()
                .and_then(|c| commands.get_mut(c))
                .ok_or_else(|| format!("line {}: flag outside a [command] section", n + 1))?;
            if let Some(u) = line.strip_prefix("usage: ") {
                cmd.usage = Some(u.to_string());
                continue;
            }
            let flag = parse_flag_line(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            // A `# --- from source` line completes what `--help` showed: it replaces a flag of that name.
            match cmd.flags.iter_mut().find(|f| f.long == flag.long) {
                Some(f) => *f = flag,
                None => cmd.flags.push(flag),
            }
        }
        if !commands.contains_key("") {
            return Err("no [] (root) section".into());
        }
        Ok(Spec {
            tool,
            version,
            commands,
        })
    }

    fn find_long<'a>(&'a self, cmd: &'a Command, name: &str) -> Option<&'a Flag> {
        cmd.flags
            .iter()
            .chain(self.root().flags.iter())
            .find(|f| f.long == name)
    }

    fn find_short<'a>(&'a self, cmd: &'a Command, c: char) -> Option<&'a Flag> {
        cmd.flags
            .iter()
            .chain(self.root().flags.iter())
            .find(|f| f.short == Some(c))
    }

    fn root(&self) -> &Command {
        // from_fixture guarantees the root section.
        static EMPTY: OnceLock<Command> = OnceLock::new();
        self.commands
            .get("")
            .unwrap_or_else(|| EMPTY.get_or_init(Command::default))
    }

    /// True when `path` is a command of the tool.
    pub fn has_command(&self, path: &str) -> bool {
        self.commands.contains_key(path)
    }

    /// Parses `argv` (without the program name) like cobra + pflag: finds the deepest known subcommand, then
    /// checks every flag against that command's flags and the global ones. A flag the real tool does not
    /// know, a missing value or a bool flag with a non-bool value is refused with the real tool's text.
    pub fn parse(&self, argv: &[String]) -> Result<Parsed, Refusal> {
        // Pass 1 (cobra's Find): the command is the longest run of leading non-flag words that name a command.
        let mut path = String::new();
        let mut words_used = 0usize;
        let mut i = 0;
        while i < argv.len() {
            let a = &argv[i];
            if a == "--" {
                break;
            }
            if a.starts_with('-') && a.len() > 1 {
                i += 1 + self.value_follows(&path, a) as usize;
                continue;
            }
            let candidate = if path.is_empty() {
                a.clone()
            } else {
                format!("{path} {a}")
            };
            if !self.commands.contains_key(&candidate) {
                break;
            }
            path = candidate;
            words_used += 1;
            i += 1;
        }
        let cmd = self.commands.get(&path).unwrap_or(self.root());
        // Pass 2 (pflag's parseArgs): every flag against the command's set.
        let mut out = Parsed {
            command: path.split_whitespace().map(str::to_string).collect(),
            ..Parsed::default()
        };
        let mut skip_words = words_used;
        let mut rest = argv
            .iter()
            .cloned()
            .collect::<std::collections::VecDeque<String>>();
        while let Some(a) = rest.pop_front() {
            if a == "--" {
                out.pos.extend(rest.drain(..));
                break;
            }
            if !a.starts_with('-') || a.len() == 1 {
                if skip_words > 0 {
                    skip_words -= 1;
                } else {
                    out.pos.push(a);
                }
                continue;
            }
            if let Some(name) = a.strip_prefix("--") {
                self.long_arg(cmd, &a, name, &mut rest, &mut out)?;
            } else {
                self.short_args(cmd, &a[1..], &mut rest, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Whether pass 1 must skip the word after flag `a` (it is the flag's value).
    fn value_follows(&self, path: &str, a: &str) -> bool {
        let cmd = self.commands.get(path).unwrap_or(self.root());
        let flag = if let Some(name) = a.strip_prefix("--") {
            if name.contains('=') {
                return false;
            }
            // The flag may belong to a deeper command: look in every command's set.
            self.find_long(cmd, name).or_else(|| {
                self.commands
                    .values()
                    .flat_map(|c| c.flags.iter())
                    .find(|f| f.long == name)
            })
        } else {
            let shorts: Vec<char> = a[1..].chars().collect();
            if shorts.len() != 1 {
                return false;
            }
            self.find_short(cmd, shorts[0])
        };
        flag.is_some_and(|f| f.bare().is_none())
    }

    fn refuse(&self, cmd: &Command, msg: &str) -> Refusal {
        let program = self.tool.program();
        let path = if cmd.path.is_empty() {
            program.to_string()
        } else {
            format!("{program} {}", cmd.path)
        };
        let stderr = match self.tool {
            // helm: cobra prints `Error: <err>`; the root command has SilenceUsage (pkg/cmd/root.go).
            Tool::Helm => format!("Error: {msg}\n"),
            // kubectl: cmdutil's flag error func (k8s.io/kubectl/pkg/cmd/util/helpers.go, UsageErrorf):
            // verified against the real kubectl 1.31 and 1.35 binaries.
            Tool::Kubectl => format!("error: {msg}\nSee '{path} --help' for usage.\n"),
            // minikube: cobra's ExecuteC prints `Error: <err>` and then the usage (cmd/minikube/cmd/root.go
            // sets no SilenceUsage; its usageTemplate() starts with `Usage:` and the use line); the flag
            // listing that follows in the real output is left out here.
            Tool::Minikube => format!("Error: {msg}\nUsage:\n  {path} [flags]\n"),
            // docker 20.10 (cli/flags.go FlagErrorFunc), verified against the real /usr/bin/docker 20.10.24.
            Tool::Docker20 => format!("{msg}\nSee '{path} --help'.\n"),
            // docker 23+ (cli/cobra.go FlagErrorFunc), verified against the real docker 28.2.2.
            Tool::Docker23 => format!(
                "{msg}\n\n{}\n\nRun '{path} --help' for more information\n",
                cmd.usage
                    .clone()
                    .unwrap_or_else(|| format!("Usage:  {path} [OPTIONS]"))
            ),
        };
        let code = match self.tool {
            Tool::Helm | Tool::Kubectl => 1,
            // reason.ExProgramUsage (pkg/minikube/reason/exitcodes.go).
            Tool::Minikube => 14,
            Tool::Docker20 | Tool::Docker23 => 125,
        };
        Refusal { code, stderr }
    }

    fn set(
        &self,
        cmd: &Command,
        f: &Flag,
        shown: &str,
        value: String,
        out: &mut Parsed,
    ) -> Result<(), Refusal> {
        if f.is_bool() && parse_bool(&value).is_none() {
            // pflag FlagSet.Set: `invalid argument %q for %q flag: %v` with strconv.ParseBool's error.
            return Err(self.refuse(
                cmd,
                &format!(
                    "invalid argument {value:?} for {shown:?} flag: strconv.ParseBool: parsing {value:?}: invalid syntax"
                ),
            ));
        }
        if let Some(d) = &f.deprecated {
            out.warnings
                .push_str(&format!("Flag --{} has been deprecated, {d}\n", f.long));
        }
        out.flags
            .entry(format!("--{}", f.long))
            .or_default()
            .push(value);
        Ok(())
    }

    fn long_arg(
        &self,
        cmd: &Command,
        arg: &str,
        name: &str,
        rest: &mut std::collections::VecDeque<String>,
        out: &mut Parsed,
    ) -> Result<(), Refusal> {
        if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
            return Err(self.refuse(cmd, &format!("bad flag syntax: {arg}")));
        }
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let Some(f) = self.find_long(cmd, name) else {
            return Err(self.refuse(cmd, &format!("unknown flag: --{name}")));
        };
        let value = match inline {
            Some(v) => v,
            None => match f.bare() {
                Some(v) => v,
                None => match rest.pop_front() {
                    Some(v) => v,
                    None => return Err(self.refuse(cmd, &format!("flag needs an argument: {arg}"))),
                },
            },
        };
        let f = f.clone();
        self.set(cmd, &f, &format!("--{}", f.long), value, out)
    }

    fn short_args(
        &self,
        cmd: &Command,
        shorthands: &str,
        rest: &mut std::collections::VecDeque<String>,
        out: &mut Parsed,
    ) -> Result<(), Refusal> {
        let mut s = shorthands.to_string();
        while let Some(c) = s.chars().next() {
            let after = &s[c.len_utf8()..];
            let Some(f) = self.find_short(cmd, c).cloned() else {
                return Err(self.refuse(cmd, &format!("unknown shorthand flag: {c:?} in -{s}")));
            };
            let shown = format!("-{c}, --{}", f.long);
            let (value, next) = if let Some(v) = after.strip_prefix('=') {
                (v.to_string(), String::new())
            } else if let Some(v) = f.bare() {
                (v, after.to_string())
            } else if !after.is_empty() {
                (after.to_string(), String::new())
            } else if let Some(v) = rest.pop_front() {
                (v, String::new())
            } else {
                return Err(self.refuse(cmd, &format!("flag needs an argument: {c:?} in -{s}")));
            };
            self.set(cmd, &f, &shown, value, out)?;
            s = next;
        }
        Ok(())
    }
}

/// Parses a Go duration (`time.ParseDuration`, what pflag's `duration` flags take): `5m`, `300s`, `1m30s`,
/// `1.5h`, `250ms`; a bare number is refused like Go refuses it, except `0`.
pub fn go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(std::time::Duration::from_secs_f64(total))
}

/// Parses one fixture flag line (see [`Flag::line`]).
fn parse_flag_line(line: &str) -> Result<Flag, String> {
    let mut words = line.split(' ');
    let short = match words.next() {
        Some("-") => None,
        Some(s) if s.len() == 2 && s.starts_with('-') => s.chars().nth(1),
        other => return Err(format!("bad shorthand {other:?}")),
    };
    let long = words
        .next()
        .and_then(|l| l.strip_prefix("--"))
        .ok_or_else(|| format!("no --long name in {line:?}"))?
        .to_string();
    let ty = words
        .next()
        .ok_or_else(|| format!("no type in {line:?}"))?
        .to_string();
    let mut no_opt = None;
    let mut deprecated = None;
    let tail: Vec<&str> = words.collect();
    let tail = tail.join(" ");
    let mut tail = tail.as_str();
    if let Some(t) = tail.strip_prefix('=') {
        let (v, r) = t.split_once(' ').unwrap_or((t, ""));
        no_opt = Some(v.to_string());
        tail = r;
    }
    if let Some(d) = tail.strip_prefix("deprecated=") {
        deprecated = Some(d.to_string());
    } else if !tail.is_empty() {
        return Err(format!("unexpected {tail:?} in {line:?}"));
    }
    Ok(Flag {
        long,
        short,
        ty,
        no_opt,
        deprecated,
    })
}

macro_rules! fixture_spec {
    ($fn:ident, $tool:expr, $file:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $fn() -> &'static Spec {
            static S: OnceLock<Spec> = OnceLock::new();
            S.get_or_init(|| {
                Spec::from_fixture($tool, include_str!(concat!("../../spec/", $file)))
                    .unwrap_or_else(|e| panic!("spec/{}: {e}", $file))
            })
        }
    };
}

fixture_spec!(helm3, Tool::Helm, "helm-v3.17.3.flags", "Helm 3.17.3.");
fixture_spec!(helm4, Tool::Helm, "helm-v4.1.4.flags", "Helm 4.1.4.");
fixture_spec!(
    kubectl131,
    Tool::Kubectl,
    "kubectl-v1.31.9.flags",
    "kubectl 1.31.9."
);
fixture_spec!(
    kubectl135,
    Tool::Kubectl,
    "kubectl-v1.35.2.flags",
    "kubectl 1.35.2."
);
fixture_spec!(
    minikube,
    Tool::Minikube,
    "minikube-v1.38.1.flags",
    "minikube 1.38.1 (from source)."
);
fixture_spec!(
    docker20,
    Tool::Docker20,
    "docker-20.10.24.flags",
    "docker CLI 20.10.24 (Debian)."
);
fixture_spec!(
    docker28,
    Tool::Docker23,
    "docker-28.2.2.flags",
    "docker CLI 28.2.2 (legacy builder: no buildx)."
);
fixture_spec!(
    docker28_buildx,
    Tool::Docker23,
    "docker-28.2.2-buildx-v0.23.0.flags",
    "docker CLI 28.2.2 with buildx v0.23.0: `build` is buildx's (from source)."
);

/// The helm spec of a major version (3 or 4).
pub fn helm(major: u32) -> &'static Spec {
    if major >= 4 {
        helm4()
    } else {
        helm3()
    }
}

/// The kubectl spec of a client minor version (1.31 or later: 1.35).
pub fn kubectl(minor: u32) -> &'static Spec {
    if minor <= 31 {
        kubectl131()
    } else {
        kubectl135()
    }
}

/// The docker spec for a client version and whether buildx is installed.
pub fn docker(major: u32, buildx: bool) -> &'static Spec {
    match (major >= 23, buildx) {
        (false, _) => docker20(),
        (true, false) => docker28(),
        (true, true) => docker28_buildx(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(go_duration("300s"), Some(Duration::from_secs(300)));
        assert_eq!(go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(go_duration("5m0s"), Some(Duration::from_secs(300)));
        assert_eq!(go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("300"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn every_fixture_loads_with_its_commands() {
        for (s, cmds) in [
            (
                helm3(),
                &[
                    "upgrade",
                    "rollback",
                    "get values",
                    "status",
                    "history",
                    "uninstall",
                    "test",
                ][..],
            ),
            (
                helm4(),
                &[
                    "upgrade",
                    "rollback",
                    "get values",
                    "status",
                    "history",
                    "uninstall",
                    "test",
                ][..],
            ),
            (
                kubectl131(),
                &[
                    "get",
                    "label",
                    "create namespace",
                    "port-forward",
                    "logs",
                    "delete",
                ][..],
            ),
            (
                kubectl135(),
                &[
                    "get",
                    "label",
                    "create namespace",
                    "port-forward",
                    "logs",
                    "delete",
                ][..],
            ),
            (
                minikube(),
                &[
                    "status",
                    "start",
                    "profile list",
                    "image load",
                    "image ls",
                    "image rm",
                    "docker-env",
                    "delete",
                ][..],
            ),
            (
                docker20(),
                &[
                    "build",
                    "image inspect",
                    "image ls",
                    "image rm",
                    "history",
                    "version",
                ][..],
            ),
            (docker28(), &["build", "image inspect", "version"][..]),
            (docker28_buildx(), &["build", "buildx version"][..]),
        ] {
            for c in cmds {
                assert!(s.has_command(c), "{:?} {}: no {c}", s.tool, s.version);
            }
            assert!(!s.version.is_empty());
        }
    }

    #[test]
    fn helm3_refuses_wait_watcher_and_helm4_takes_it() {
        let a = argv("upgrade --install r ./c --wait=watcher --kube-context todo");
        let e = helm3().parse(&a).err();
        assert_eq!(
            e.map(|e| (e.code, e.stderr)),
            Some((1, "Error: invalid argument \"watcher\" for \"--wait\" flag: strconv.ParseBool: parsing \"watcher\": invalid syntax\n".to_string()))
        );
        let p = helm4().parse(&a).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.command, ["upgrade"]);
        assert_eq!(p.pos, ["r", "./c"]);
        assert_eq!(p.get("--wait").as_deref(), Some("watcher"));
        assert!(p.on("--install"));
        // A bare --wait is `watcher` in Helm 4 (NoOptDefVal), `true` in Helm 3.
        let p = helm4()
            .parse(&argv("rollback r 1 --wait"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.get("--wait").as_deref(), Some("watcher"));
        assert_eq!(p.pos, ["r", "1"]);
    }

    #[test]
    fn unknown_flags_fail_like_the_real_tools() {
        let e = helm3().parse(&argv("upgrade --foo x y")).err();
        assert_eq!(
            e.map(|e| e.stderr),
            Some("Error: unknown flag: --foo\n".into())
        );
        let e = helm3().parse(&argv("upgrade -Z x y")).err();
        assert_eq!(
            e.map(|e| e.stderr),
            Some("Error: unknown shorthand flag: 'Z' in -Z\n".into())
        );
        let e = helm3().parse(&argv("status --kube-context")).err();
        assert_eq!(
            e.map(|e| e.stderr),
            Some("Error: flag needs an argument: --kube-context\n".into())
        );
        let e = kubectl135().parse(&argv("get pods --foo")).err();
        assert_eq!(
            e.map(|e| (e.code, e.stderr)),
            Some((
                1,
                "error: unknown flag: --foo\nSee 'kubectl get --help' for usage.\n".into()
            ))
        );
        let e = kubectl135().parse(&argv("--context")).err();
        assert_eq!(
            e.map(|e| e.stderr),
            Some(
                "error: flag needs an argument: --context\nSee 'kubectl --help' for usage.\n"
                    .into()
            )
        );
        let e = docker20().parse(&argv("build --foo .")).err();
        assert_eq!(
            e.map(|e| (e.code, e.stderr)),
            Some((
                125,
                "unknown flag: --foo\nSee 'docker build --help'.\n".into()
            ))
        );
        let e = docker28().parse(&argv("build --foo .")).err();
        assert_eq!(
            e.map(|e| (e.code, e.stderr)),
            Some((125, "unknown flag: --foo\n\nUsage:  docker build [OPTIONS] PATH | URL | -\n\nRun 'docker build --help' for more information\n".into()))
        );
        let e = docker20().parse(&argv("image inspect -Z x")).err();
        assert_eq!(
            e.map(|e| e.stderr),
            Some("unknown shorthand flag: 'Z' in -Z\nSee 'docker image inspect --help'.\n".into())
        );
        let e = minikube().parse(&argv("-p todo status --foo")).err();
        assert_eq!(e.map(|e| e.code), Some(14));
    }

    #[test]
    fn flags_before_the_command_and_clusters_of_shorthands() {
        let p = kubectl135()
            .parse(&argv(
                "--context todo --namespace ns get pods -l app=x -ojson",
            ))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.command, ["get"]);
        assert_eq!(p.pos, ["pods"]);
        assert_eq!(p.get("--output").as_deref(), Some("json"));
        assert_eq!(p.get("--selector").as_deref(), Some("app=x"));
        assert_eq!(p.get("--context").as_deref(), Some("todo"));
        let p = minikube()
            .parse(&argv("-p todo image ls --format json"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.command, ["image", "ls"]);
        assert_eq!(p.get("--profile").as_deref(), Some("todo"));
        let p = helm3()
            .parse(&argv("get values r -n ns -o json -- --not-a-flag"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.command, ["get", "values"]);
        assert_eq!(p.pos, ["r", "--not-a-flag"]);
        // A deprecated flag still parses, with pflag's warning.
        let p = helm4()
            .parse(&argv("upgrade r c --atomic"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(p.on("--atomic"));
        assert_eq!(
            p.warnings,
            "Flag --atomic has been deprecated, use --rollback-on-failure instead\n"
        );
    }
}
