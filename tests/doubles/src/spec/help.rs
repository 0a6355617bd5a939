//! Reads flag sets out of the real tools' `--help` text and writes `.flags` fixtures.
//!
//! cobra's default flag listing (helm, docker): `  -n, --namespace string   usage` or `      --atomic   usage`,
//! with the pflag type word (`string`, `duration`, `WaitStrategy[=watcher]`; none for a bool). kubectl's own
//! template (`kubectl <cmd> --help`, `kubectl options`): `    -l, --selector='':` with the default after `=`;
//! a default of `true`/`false` marks a bool.

use super::{Command, Flag};

/// Flags of the cobra-style sections (`Flags:`, `Global Flags:`, `Options:`, `Global Options:`).
pub fn cobra_flags(help: &str) -> Vec<Flag> {
    let mut out = Vec::new();
    let mut in_flags = false;
    for line in help.lines() {
        let t = line.trim_end();
        if matches!(
            t,
            "Flags:" | "Global Flags:" | "Options:" | "Global Options:"
        ) {
            in_flags = true;
            continue;
        }
        if !t.starts_with(' ') {
            // A new section ("Usage:", "Commands:", a blank line ends nothing: continuation lines are indented).
            if !t.is_empty() {
                in_flags = false;
            }
            continue;
        }
        if !in_flags {
            continue;
        }
        if let Some(f) = cobra_line(t.trim_start()) {
            if !out.iter().any(|o: &Flag| o.long == f.long) {
                out.push(f);
            }
        }
    }
    out
}

fn cobra_line(t: &str) -> Option<Flag> {
    let (short, rest) = match t.strip_prefix('-') {
        Some(r) if !r.starts_with('-') => {
            let c = r.chars().next()?;
            let rest = r[c.len_utf8()..].strip_prefix(", ")?;
            (Some(c), rest)
        }
        _ => (None, t),
    };
    let rest = rest.strip_prefix("--")?;
    let (name, after) = rest.split_once(' ').unwrap_or((rest, ""));
    // The type word follows after one space; the usage after two or more.
    let ty_word = if after.starts_with(' ') || after.is_empty() {
        None
    } else {
        after.split(' ').next()
    };
    let (ty, no_opt) = match ty_word {
        None => ("bool".to_string(), None),
        Some(w) => match w.split_once("[=") {
            Some((ty, d)) => (
                ty.to_string(),
                Some(d.trim_end_matches(']').trim_matches('"').to_string()),
            ),
            None => (w.to_string(), None),
        },
    };
    Some(Flag {
        long: name.to_string(),
        short,
        ty,
        no_opt,
        deprecated: None,
    })
}

/// Flags of kubectl's `Options:` listing (or of `kubectl options`).
pub fn kubectl_flags(help: &str) -> Vec<Flag> {
    let mut out = Vec::new();
    for line in help.lines() {
        let t = line.trim();
        if !line.starts_with("    -") || !t.ends_with(':') {
            continue;
        }
        let t = &t[..t.len() - 1];
        let (short, rest) = match t.strip_prefix('-') {
            Some(r) if !r.starts_with('-') => {
                let Some(c) = r.chars().next() else { continue };
                let Some(rest) = r[c.len_utf8()..].strip_prefix(", ") else {
                    continue;
                };
                (Some(c), rest)
            }
            _ => (None, t),
        };
        let Some(rest) = rest.strip_prefix("--") else {
            continue;
        };
        let Some((name, default)) = rest.split_once('=') else {
            continue;
        };
        let ty = if default == "true" || default == "false" {
            "bool"
        } else {
            "value"
        };
        out.push(Flag {
            long: name.to_string(),
            short,
            ty: ty.to_string(),
            no_opt: None,
            deprecated: None,
        });
    }
    out
}

/// docker's `Usage:  docker build [OPTIONS] PATH | URL | -` line.
pub fn usage_line(help: &str) -> Option<String> {
    help.lines()
        .find(|l| l.starts_with("Usage:"))
        .map(|l| l.trim_end().to_string())
}

/// Writes a `.flags` fixture: a header (comment lines), then one `[path]` section per command.
pub fn render(header: &[String], version: &str, commands: &[Command]) -> String {
    let mut s = String::new();
    for h in header {
        s.push_str(&format!("# {h}\n"));
    }
    s.push_str(&format!("# version {version}\n"));
    for c in commands {
        s.push_str(&format!("\n[{}]\n", c.path));
        if let Some(u) = &c.usage {
            s.push_str(&format!("usage: {u}\n"));
        }
        let mut flags = c.flags.clone();
        flags.sort_by(|a, b| a.long.cmp(&b.long));
        for f in flags {
            s.push_str(&f.line());
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cobra_and_kubectl_listings() {
        let cobra = "Usage:\n  helm upgrade [RELEASE] [CHART] [flags]\n\nFlags:\n      --atomic                       if set\n  -n, --namespace string             ns\n      --wait WaitStrategy[=watcher]  wait\n      --dry-run string[=\"unset\"]    sim\n                                     (continued)\n\nGlobal Flags:\n      --kube-context string   ctx\n";
        let f = cobra_flags(cobra);
        let lines: Vec<String> = f.iter().map(Flag::line).collect();
        assert_eq!(
            lines,
            [
                "- --atomic bool",
                "-n --namespace string",
                "- --wait WaitStrategy =watcher",
                "- --dry-run string =unset",
                "- --kube-context string"
            ]
        );
        let k = "Options:\n    -A, --all-namespaces=false:\n\tIf present\n\n    -l, --selector='':\n\tSelector\n";
        let lines: Vec<String> = kubectl_flags(k).iter().map(Flag::line).collect();
        assert_eq!(lines, ["-A --all-namespaces bool", "-l --selector value"]);
    }
}
