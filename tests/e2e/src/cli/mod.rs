//! The command-line faces of the double: `minikube`, `helm` and `kubectl`.

pub mod helm;
pub mod kubectl;
pub mod minikube;
pub mod portforward;

use std::collections::BTreeMap;

use tool_doubles::spec::{Refusal, Spec};

/// Parsed command line: positionals in order, flags by name (repeatable).
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// Positional words.
    pub pos: Vec<String>,
    /// Flags (`--name` or `-n`) with their values.
    pub flags: BTreeMap<String, Vec<String>>,
}

impl Args {
    /// Parses `argv` (without argv[0]) against the real tool's flag set (`tool_doubles::spec`, shared with
    /// the recording doubles): an unknown flag, a missing value or a bad bool is refused with the real tool's
    /// error text and exit code. Flags are keyed by their long name (`--namespace`).
    pub fn parse(spec: &Spec, argv: &[String]) -> Result<Args, Refusal> {
        let p = spec.parse(argv)?;
        if !p.warnings.is_empty() {
            // pflag prints a deprecated flag's warning on stderr when it parses it.
            eprint!("{}", p.warnings);
        }
        Ok(Args {
            pos: p.words(),
            flags: p.flags,
        })
    }

    /// Last value of any of the given flag spellings.
    pub fn get(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|n| self.flags.get(*n)?.last().cloned())
            .next_back()
    }

    /// All values of the given flag spellings, in spelling order.
    pub fn all(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .flat_map(|n| self.flags.get(*n).cloned().unwrap_or_default())
            .collect()
    }

    /// Whether a flag is present (a bare boolean or `=true`).
    pub fn has(&self, names: &[&str]) -> bool {
        names.iter().any(|n| {
            self.flags
                .get(*n)
                .is_some_and(|v| v.last().is_some_and(|x| x.is_empty() || x == "true"))
        })
    }
}

pub use tool_doubles::spec::go_duration;

/// What a refused command line prints and exits with (like the real tool).
pub fn refuse(r: Refusal) -> i32 {
    eprint!("{}", r.stderr);
    r.code
}

/// Entry point shared by the three binaries: records the call, runs the supervisor when asked to.
pub fn main_for(tool: &str, run: fn(&[String]) -> i32) -> ! {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(crate::supervisor::SUPERVISE_ARG) {
        let code = match crate::state::state_dir().and_then(crate::supervisor::run) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("supervisor: {e:#}");
                1
            }
        };
        std::process::exit(code);
    }
    crate::state::record_call(tool, &argv);
    std::process::exit(run(&argv))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_against_the_real_flag_set() {
        let a = Args::parse(
            tool_doubles::spec::helm4(),
            &v(&[
                "upgrade",
                "--install",
                "r",
                "./c",
                "-n",
                "todo",
                "-f",
                "a.yaml",
                "--values=b.yaml",
                "--wait",
                "--timeout",
                "5m",
            ]),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(a.pos, v(&["upgrade", "r", "./c"]));
        assert_eq!(a.get(&["-n", "--namespace"]).as_deref(), Some("todo"));
        assert_eq!(a.all(&["-f", "--values"]), v(&["a.yaml", "b.yaml"]));
        assert_eq!(a.get(&["--wait"]).as_deref(), Some("watcher"));
        assert_eq!(
            a.get(&["--timeout"]).and_then(|t| go_duration(&t)),
            Some(std::time::Duration::from_secs(300))
        );
        // Helm 3's --wait is a bool: the Helm 4 syntax fails as with the real helm 3.
        let e = Args::parse(
            tool_doubles::spec::helm3(),
            &v(&["upgrade", "r", "./c", "--wait=watcher"]),
        )
        .err()
        .map(|e| e.stderr);
        assert!(e.is_some_and(|e| e.contains("invalid argument \"watcher\" for \"--wait\" flag")));
    }
}
