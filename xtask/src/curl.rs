//! HTTPS through the `curl` binary: the xtask carries no TLS stack (it would double its compile time) and its
//! only https request, `diagnose --explain` to an OpenAI endpoint, is rare. Headers (the API key) reach curl on
//! stdin as a `--config -` file, the body through a 0600 temp file: nothing secret on curl's command line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::context::{Cmd, Failure, Runner};
use crate::secrets::TempValues;

/// Connect timeout cap, so an unreachable host fails fast even with a long `--max-time`.
const CONNECT_SECS: u64 = 10;

/// One curl run: its command line (never secret) and what goes to its stdin (the headers).
#[derive(Clone)]
pub struct Invocation {
    /// The command; safe to print and to show in `ps`.
    pub cmd: Cmd,
    /// The `--config -` text curl reads from stdin; holds the headers, secrets included.
    pub stdin: String,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation")
            .field("cmd", &self.cmd.display())
            .finish_non_exhaustive()
    }
}

/// Quotes a value for a curl config file (double quotes, `\\` and `\"` escaped); line breaks are refused
/// because they would end the directive and start another one.
fn config_quote(value: &str) -> Result<String> {
    if value.contains(['\n', '\r']) {
        bail!("a header value contains a line break");
    }
    Ok(format!(
        "\"{}\"",
        value.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

/// Builds the curl invocation of a JSON POST whose body is already in `body_file`.
pub fn post_json(
    program: &Path,
    url: &str,
    headers: &[(&str, &str)],
    body_file: &Path,
    timeout: Duration,
) -> Result<Invocation> {
    let mut stdin = String::new();
    let all = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
    ];
    for (name, value) in all.iter().chain(headers) {
        let line =
            config_quote(&format!("{name}: {value}")).with_context(|| format!("header {name}"))?;
        stdin.push_str(&format!("header = {line}\n"));
    }
    let max = timeout.as_secs().max(1);
    let cmd = Cmd::new(&program.to_string_lossy()).args([
        // First, so a ~/.curlrc cannot change what is sent or where.
        "--disable".to_string(),
        "--silent".into(),
        "--show-error".into(),
        "--proto".into(),
        "=https".into(),
        "--max-time".into(),
        max.to_string(),
        "--connect-timeout".into(),
        max.min(CONNECT_SECS).to_string(),
        "--config".into(),
        "-".into(),
        "--request".into(),
        "POST".into(),
        "--data-binary".into(),
        format!("@{}", body_file.display()),
        "--write-out".into(),
        "\n%{http_code}".into(),
        url.into(),
    ]);
    Ok(Invocation { cmd, stdin })
}

/// Splits curl's stdout (body, then `\n` and the status from `--write-out`) into status and body.
pub fn split_status(stdout: &str) -> Result<(u16, String)> {
    let (body, code) = stdout
        .rsplit_once('\n')
        .context("curl printed no status code")?;
    let status: u16 = code
        .trim()
        .parse()
        .with_context(|| format!("curl printed a bad status code {code:?}"))?;
    if status == 0 {
        bail!("no HTTP response");
    }
    Ok((status, body.to_string()))
}

/// The curl to run, or a prerequisite failure (exit 3) saying how to get one.
fn program(url: &str) -> Result<PathBuf> {
    crate::tools::find_on_path("curl").ok_or_else(|| {
        Failure::prereq(format!(
            "{url} is https, which the xtask reaches through curl, and curl is not on PATH: install it \
             (apt-get install curl) or point OPENAI_BASE_URL at a plain-http endpoint"
        ))
        .into()
    })
}

/// POSTs `body` as JSON to an https `url` through curl; returns the status and the body of the answer.
pub fn post(
    runner: &Runner,
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(u16, String)> {
    let program = program(url)?;
    // Removed when dropped, and on Ctrl-C.
    let body_file = TempValues::write("xtask-curl-body-", body)?;
    let inv = post_json(&program, url, headers, body_file.path(), timeout)?;
    let out = runner
        .output_with_stdin(&inv.cmd, Some(&inv.stdin))
        .with_context(|| format!("running curl for {url}"))?;
    if !out.ok() {
        let why = match out.code {
            28 => format!("timed out after {} s", timeout.as_secs().max(1)),
            _ => out.reason(),
        };
        bail!("curl could not POST to {url}: {why}");
    }
    split_status(&out.stdout).with_context(|| format!("reading curl's answer from {url}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-proj-abcdefghijklmnop0123456789";

    fn invocation() -> Invocation {
        let auth = format!("Bearer {KEY}");
        match post_json(
            Path::new("/usr/bin/curl"),
            "https://api.openai.com/v1/chat/completions",
            &[("Authorization", &auth)],
            Path::new("/tmp/xtask-curl-body-1.yaml"),
            Duration::from_secs(30),
        ) {
            Ok(i) => i,
            Err(e) => panic!("{e:#}"),
        }
    }

    #[test]
    fn key_is_on_stdin_never_on_the_command_line() {
        let inv = invocation();
        assert!(
            inv.cmd.args.iter().all(|a| !a.contains(KEY)),
            "{:?}",
            inv.cmd.args
        );
        assert!(!inv.cmd.program.contains(KEY));
        assert!(inv
            .cmd
            .env
            .iter()
            .all(|(k, v)| !k.contains(KEY) && !v.contains(KEY)));
        assert!(!inv.cmd.display().contains(KEY));
        assert!(
            inv.stdin
                .contains(&format!("header = \"Authorization: Bearer {KEY}\"\n")),
            "{}",
            inv.stdin
        );
        assert!(!format!("{inv:?}").contains(KEY));
    }

    #[test]
    fn command_line_reads_config_from_stdin_with_timeouts() {
        let a = invocation().cmd.args;
        assert_eq!(a.first().map(String::as_str), Some("--disable"));
        let after = |flag: &str| {
            a.iter()
                .position(|x| x == flag)
                .and_then(|i| a.get(i + 1))
                .map(String::as_str)
        };
        assert_eq!(after("--config"), Some("-"));
        assert_eq!(after("--max-time"), Some("30"));
        assert_eq!(after("--connect-timeout"), Some("10"));
        assert_eq!(after("--proto"), Some("=https"));
        assert_eq!(after("--data-binary"), Some("@/tmp/xtask-curl-body-1.yaml"));
        assert_eq!(
            a.last().map(String::as_str),
            Some("https://api.openai.com/v1/chat/completions")
        );
    }

    #[test]
    fn config_values_are_quoted_and_line_breaks_refused() {
        assert_eq!(
            config_quote(r#"X: a"b\c"#).ok().as_deref(),
            Some(r#""X: a\"b\\c""#)
        );
        assert!(post_json(
            Path::new("curl"),
            "https://x",
            &[("Authorization", "Bearer k\nurl = \"https://evil\"")],
            Path::new("/tmp/b"),
            Duration::from_secs(5),
        )
        .is_err());
    }

    #[test]
    fn status_comes_from_the_write_out_trailer() {
        assert_eq!(
            split_status("{\"a\":\n1}\n200").ok(),
            Some((200, "{\"a\":\n1}".to_string()))
        );
        assert_eq!(split_status("\n401").ok(), Some((401, String::new())));
        assert!(split_status("\n000").is_err());
        assert!(split_status("no trailer").is_err());
    }
}
