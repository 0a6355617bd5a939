//! Progress output: a spinner line per step on a terminal, plain lines otherwise, JSON events with --json.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif spinners.
    Tty,
    /// One plain line per event.
    Plain,
    /// One JSON object per line.
    Json,
    /// Nothing per step (a `dev` cycle prints one line of its own); messages still show.
    Quiet {
        /// Messages as JSON events.
        json: bool,
    },
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Did its work.
    Done(String),
    /// Nothing to do.
    Skipped(String),
    /// Failed.
    Failed(String),
}

/// One row of the final summary.
#[derive(Debug, Clone)]
pub struct Row {
    /// Step name.
    pub step: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

/// Prints step events in the chosen mode.
#[derive(Debug)]
pub struct Reporter {
    mode: Mode,
    color: bool,
    bar: Option<ProgressBar>,
    rows: Vec<Row>,
}

impl Reporter {
    /// Picks the mode from --json and whether stdout is a terminal; honours NO_COLOR.
    pub fn new(json: bool) -> Self {
        let mode = if json {
            Mode::Json
        } else if std::io::stdout().is_terminal() {
            Mode::Tty
        } else {
            Mode::Plain
        };
        let color = mode == Mode::Tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            mode,
            color,
            bar: None,
            rows: Vec::new(),
        }
    }

    /// A reporter that prints no step lines, only messages (as JSON events with `json`).
    pub fn quiet(json: bool) -> Self {
        Self {
            mode: Mode::Quiet { json },
            color: false,
            bar: None,
            rows: Vec::new(),
        }
    }

    /// The steps that ended so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The mode in use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A step begins.
    pub fn started(&mut self, step: &'static str) {
        match self.mode {
            Mode::Quiet { .. } => {}
            Mode::Json => emit(json!({"event": "step_started", "step": step})),
            Mode::Plain => println!("[{step}] started"),
            Mode::Tty => {
                let tpl = if self.color {
                    "{spinner:.cyan} {prefix:.bold:<10} {msg} {elapsed:.dim}"
                } else {
                    "{spinner} {prefix:<10} {msg} {elapsed}"
                };
                let style = ProgressStyle::with_template(tpl)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                let bar = ProgressBar::new_spinner()
                    .with_style(style)
                    .with_prefix(step);
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bar = Some(bar);
            }
        }
    }

    /// Progress text inside a step.
    pub fn note(&self, step: &'static str, msg: &str) {
        match self.mode {
            Mode::Quiet { .. } => {}
            Mode::Json => emit(json!({"event": "step_progress", "step": step, "message": msg})),
            Mode::Plain => println!("[{step}] {msg}"),
            Mode::Tty => {
                if let Some(b) = &self.bar {
                    b.set_message(msg.to_string());
                }
            }
        }
    }

    /// A message that must stay visible (warnings, diagnoses).
    pub fn println(&self, msg: &str) {
        match (&self.bar, self.mode) {
            (_, Mode::Json | Mode::Quiet { json: true }) => {
                emit(json!({"event": "message", "message": msg}))
            }
            (Some(b), Mode::Tty) => b.println(msg),
            _ => println!("{msg}"),
        }
    }

    /// A step ended.
    pub fn finished(&mut self, step: &'static str, outcome: Outcome, duration: Duration) {
        let ms = duration.as_millis() as u64;
        match self.mode {
            Mode::Quiet { .. } => {}
            Mode::Json => {
                let (event, key, text) = match &outcome {
                    Outcome::Done(t) => ("step_finished", "detail", t),
                    Outcome::Skipped(t) => ("step_skipped", "reason", t),
                    Outcome::Failed(t) => ("step_failed", "reason", t),
                };
                emit(json!({"event": event, "step": step, "duration_ms": ms, key: text}));
            }
            // A failure's diagnosis goes to stderr, once; the summary after it shows its first line only.
            Mode::Plain if matches!(outcome, Outcome::Failed(_)) => {
                eprintln!("[{step}] {} ({})", describe(&outcome), fmt_dur(duration))
            }
            Mode::Plain => println!("[{step}] {} ({})", describe(&outcome), fmt_dur(duration)),
            Mode::Tty => {
                let mark = match (&outcome, self.color) {
                    (Outcome::Done(_), true) => "\u{1b}[32m✔\u{1b}[0m",
                    (Outcome::Skipped(_), true) => "\u{1b}[2m-\u{1b}[0m",
                    (Outcome::Failed(_), true) => "\u{1b}[31m✘\u{1b}[0m",
                    (Outcome::Done(_), false) => "ok",
                    (Outcome::Skipped(_), false) => "--",
                    (Outcome::Failed(_), false) => "XX",
                };
                let line = format!(
                    "{mark} {step:<10} {} ({})",
                    describe(&outcome),
                    fmt_dur(duration)
                );
                if let Some(b) = self.bar.take() {
                    b.finish_and_clear();
                }
                if matches!(outcome, Outcome::Failed(_)) {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
        }
        self.rows.push(Row {
            step,
            outcome,
            duration,
        });
    }

    /// The summary table (or a `summary` event), with URLs and budget checks.
    pub fn summary(
        &self,
        ok: bool,
        urls: &[(String, String)],
        budgets: &[Budget],
        total: Duration,
    ) {
        if self.mode == Mode::Json {
            let steps: Vec<_> = self
                .rows
                .iter()
                .map(|r| json!({"step": r.step, "status": status_word(&r.outcome), "duration_ms": r.duration.as_millis() as u64}))
                .collect();
            let urls: serde_json::Map<_, _> =
                urls.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            let budgets: Vec<_> = budgets
                .iter()
                .map(|b| json!({"check": b.name, "measured_ms": b.measured.as_millis() as u64, "budget_ms": b.budget.as_millis() as u64, "within": b.within()}))
                .collect();
            emit(
                json!({"event": "summary", "ok": ok, "total_ms": total.as_millis() as u64, "steps": steps, "urls": urls, "budgets": budgets}),
            );
            return;
        }
        println!();
        println!("{:<10} {:<8} {:>8}  detail", "step", "status", "time");
        for r in &self.rows {
            let detail = match &r.outcome {
                Outcome::Done(t) | Outcome::Skipped(t) | Outcome::Failed(t) => {
                    t.lines().next().unwrap_or("")
                }
            };
            println!(
                "{:<10} {:<8} {:>8}  {detail}",
                r.step,
                status_word(&r.outcome),
                fmt_dur(r.duration)
            );
        }
        if !budgets.is_empty() {
            println!();
            for b in budgets {
                println!(
                    "budget {:<22} {:>8} of {:>6}  {}",
                    b.name,
                    fmt_dur(b.measured),
                    fmt_dur(b.budget),
                    if b.within() { "ok" } else { "OVER BUDGET" }
                );
            }
        }
        if !urls.is_empty() {
            println!();
            for (k, v) in urls {
                println!("{k:<10} {v}");
            }
        }
        println!(
            "\n{} in {}",
            if ok { "deployed" } else { "deploy failed" },
            fmt_dur(total)
        );
    }
}

/// A measured figure and its budget from the original plan.
#[derive(Debug, Clone)]
pub struct Budget {
    /// What was measured.
    pub name: &'static str,
    /// Measured duration.
    pub measured: Duration,
    /// Allowed duration.
    pub budget: Duration,
}

impl Budget {
    /// True when measured <= budget.
    pub fn within(&self) -> bool {
        self.measured <= self.budget
    }
}

fn status_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Done(_) => "ok",
        Outcome::Skipped(_) => "skipped",
        Outcome::Failed(_) => "FAILED",
    }
}

fn describe(o: &Outcome) -> String {
    match o {
        Outcome::Done(t) => t.clone(),
        Outcome::Skipped(t) => format!("skipped: {t}"),
        Outcome::Failed(t) => format!("FAILED: {t}"),
    }
}

/// `1.2s`, `340ms`.
pub fn fmt_dur(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn emit(v: serde_json::Value) {
    println!("{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_budgets() {
        assert_eq!(fmt_dur(Duration::from_millis(340)), "340ms");
        assert_eq!(fmt_dur(Duration::from_millis(1250)), "1.2s");
        let b = Budget {
            name: "health",
            measured: Duration::from_millis(2100),
            budget: Duration::from_secs(2),
        };
        assert!(!b.within());
    }
}
