//! The command-line faces of the double: `minikube`, `helm` and `kubectl`.

pub mod helm;
pub mod kubectl;
pub mod minikube;
pub mod portforward;

use std::collections::BTreeMap;

/// Parsed command line: positionals in order, flags by name (repeatable).
#[derive(Debug, Default, Clone)]
pub struct Args {
    /// Positional words.
    pub pos: Vec<String>,
    /// Flags (`--name` or `-n`) with their values.
    pub flags: BTreeMap<String, Vec<String>>,
}

impl Args {
    /// Parses `argv` (without argv[0]); `valued` lists flags that take a value when not given with `=`.
    pub fn parse(argv: &[String], valued: &[&str]) -> Args {
        let mut a = Args::default();
        let mut it = argv.iter().peekable();
        while let Some(w) = it.next() {
            if w == "--" {
                a.pos.extend(it.by_ref().cloned());
                break;
            }
            if let Some(rest) = w.strip_prefix("--") {
                let (name, val) = match rest.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (rest.to_string(), None),
                };
                let key = format!("--{name}");
                let val = match val {
                    Some(v) => v,
                    None if valued.contains(&key.as_str()) => {
                        it.next().cloned().unwrap_or_default()
                    }
                    None => String::new(),
                };
                a.flags.entry(key).or_default().push(val);
            } else if w.starts_with('-')
                && w.len() > 1
                && !w[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                let key = w[..2].to_string();
                let val = if w.len() > 2 {
                    w[2..].trim_start_matches('=').to_string()
                } else if valued.contains(&key.as_str()) {
                    it.next().cloned().unwrap_or_default()
                } else {
                    String::new()
                };
                a.flags.entry(key).or_default().push(val);
            } else {
                a.pos.push(w.clone());
            }
        }
        a
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

/// Parses a Go duration like `5m`, `300s`, `1m30s`, `2h`.
pub fn go_duration(s: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() {
        total += num.parse::<f64>().ok()?;
        any = true;
    }
    any.then(|| std::time::Duration::from_secs_f64(total))
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
    fn parses_mixed_flags() {
        let a = Args::parse(
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
            &["-n", "-f", "--values", "--timeout"],
        );
        assert_eq!(a.pos, v(&["upgrade", "r", "./c"]));
        assert_eq!(a.get(&["-n", "--namespace"]).as_deref(), Some("todo"));
        assert_eq!(a.all(&["-f", "--values"]), v(&["a.yaml", "b.yaml"]));
        assert!(a.has(&["--wait"]));
        assert_eq!(
            go_duration(&a.get(&["--timeout"]).unwrap()),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(
            go_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
    }
}
