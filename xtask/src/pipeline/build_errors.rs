//! The compiler's own error lines out of a `docker build` log: what a developer needs when a build fails,
//! instead of the last lines of BuildKit's output (which are its own summary).

/// Lines kept at most, so that a cascade of errors stays readable.
const MAX_LINES: usize = 80;

/// Collects rustc's error diagnostics from build output lines as they arrive.
#[derive(Debug, Default)]
pub struct Collector {
    blocks: Vec<Vec<String>>,
    current: Option<Vec<String>>,
    summary: Option<String>,
}

/// A build output line without BuildKit's `#12 34.5 ` (step and seconds) or its summary's `34.5 ` prefix.
pub fn strip_buildkit(line: &str) -> &str {
    let mut rest = line;
    if let Some(r) = rest.strip_prefix('#') {
        match r.split_once(' ') {
            Some((step, r)) if step.chars().all(|c| c.is_ascii_digit()) => rest = r,
            _ => return line,
        }
    }
    let is_secs = |w: &str| {
        !w.is_empty() && w.contains('.') && w.chars().all(|c| c.is_ascii_digit() || c == '.')
    };
    match rest.split_once(' ') {
        Some((secs, r)) if is_secs(secs) => r,
        // An empty line of the step: only its time.
        None if is_secs(rest) => "",
        _ => rest,
    }
}

impl Collector {
    /// Takes one line of the build's output.
    pub fn push(&mut self, raw: &str) {
        let line = strip_buildkit(raw);
        if line.starts_with("error: could not compile") {
            self.end_block();
            self.summary = Some(line.to_string());
            return;
        }
        if line.starts_with("error[") || line.starts_with("error: ") {
            self.end_block();
            self.current = Some(vec![line.to_string()]);
            return;
        }
        if let Some(block) = self.current.as_mut() {
            if line.trim().is_empty() {
                self.end_block();
            } else {
                block.push(line.to_string());
            }
        }
    }

    fn end_block(&mut self) {
        if let Some(b) = self.current.take() {
            // BuildKit repeats the failing step's last lines (often cut) after the failure: each diagnostic
            // once, by its headline.
            if !self.blocks.iter().any(|x| x.first() == b.first()) {
                self.blocks.push(b);
            }
        }
    }

    /// The compiler's error lines (empty when the build failed for another reason).
    pub fn lines(mut self) -> Vec<String> {
        self.end_block();
        let mut out: Vec<String> = Vec::new();
        for b in &self.blocks {
            if out.len() + b.len() > MAX_LINES {
                out.push(format!("... ({} more error(s))", self.blocks.len()));
                break;
            }
            out.extend(b.iter().cloned());
            out.push(String::new());
        }
        if let Some(s) = self.summary {
            out.push(s);
        } else if out.last().is_some_and(String::is_empty) {
            out.pop();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What BuildKit printed for a real compile error (plain progress), its summary included.
    const LOG: &str = r"#14 [build 4/4] RUN --mount=type=cache,id=todo-cargo-registry,target=/usr/local/cargo/registry,sharing=locked
#14 3.105    Compiling frontend v0.1.0 (/src/frontend)
#14 4.210 error[E0425]: cannot find value `missing` in this scope
#14 4.210   --> frontend/src/health.rs:12:5
#14 4.210    |
#14 4.210 12 |     missing
#14 4.210    |     ^^^^^^^ not found in this scope
#14 4.210
#14 4.390 error: could not compile `frontend` (lib) due to 1 previous error
#14 ERROR: process /bin/sh -c cargo build --profile image-dev did not complete successfully: exit code: 101
------
 > [build 4/4] RUN --mount=type=cache:
4.210   --> frontend/src/health.rs:12:5
4.210 error[E0425]: cannot find value `missing` in this scope
4.390 error: could not compile `frontend` (lib) due to 1 previous error
------
ERROR: failed to solve: process /bin/sh -c cargo build did not complete successfully: exit code: 101";

    #[test]
    fn the_compiler_errors_and_nothing_else() {
        let mut c = Collector::default();
        for l in LOG.lines() {
            c.push(l);
        }
        assert_eq!(
            c.lines(),
            [
                "error[E0425]: cannot find value `missing` in this scope",
                "  --> frontend/src/health.rs:12:5",
                "   |",
                "12 |     missing",
                "   |     ^^^^^^^ not found in this scope",
                "",
                "error: could not compile `frontend` (lib) due to 1 previous error",
            ]
        );
    }

    #[test]
    fn a_build_that_failed_elsewhere_has_no_compiler_lines() {
        let mut c = Collector::default();
        c.push("#5 ERROR: failed to fetch the base image");
        assert!(c.lines().is_empty());
        assert_eq!(strip_buildkit("#14 4.210 error: x"), "error: x");
        assert_eq!(strip_buildkit("4.210 error: x"), "error: x");
        assert_eq!(strip_buildkit("#14 [build 4/4] RUN"), "[build 4/4] RUN");
        assert_eq!(strip_buildkit("error: plain"), "error: plain");
    }
}
