//! Frontend configuration, read only from the environment.

use std::time::Duration;

pub use http_serve::HttpLimits;

use reqwest::Url;

/// Default backend address: the backend Service inside the cluster.
pub const DEFAULT_BACKEND_URL: &str = "http://todo-backend:8000";
/// Default listening port.
pub const DEFAULT_PORT: u16 = 3000;
/// Default time the proxy waits for the backend to answer a request.
pub const DEFAULT_BACKEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body the proxy forwards (tasks and chat messages are small).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest register/login body: the backend's limit (`backend::extract::BODY_LIMIT`), so the
/// frontend never buffers a sign-in body the backend would refuse anyway.
pub const SIGN_IN_MAX_BODY_BYTES: usize = 64 * 1024;
/// How long requests in flight may run after shutdown starts (below Kubernetes' 30 s grace period).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The frontend's HTTP bounds by default: a body must arrive within 30 s.
pub const DEFAULT_HTTP_LIMITS: HttpLimits =
    HttpLimits::with_body_read_timeout(Duration::from_secs(30));

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything the frontend server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the backend API (no trailing slash needed).
    pub backend_url: Url,
    /// TCP port to listen on (used by the binary; `serve` takes a bound listener).
    pub port: u16,
    /// How long the proxy waits for the backend's response headers.
    pub backend_timeout: Duration,
    /// How long `/api/health` waits for the backend's `/health`.
    pub health_timeout: Duration,
    /// Largest request body forwarded to the backend.
    pub max_body_bytes: usize,
    /// How long requests in flight may run after the shutdown signal before they are cut off.
    pub drain_timeout: Duration,
    /// `SHUTDOWN_DELAY_SECS` (default 0): how long to keep serving after SIGTERM before draining,
    /// so load balancers stop sending traffic first.
    pub shutdown_delay: Duration,
    /// Bounds of the HTTP server against slow and idle clients.
    pub http: HttpLimits,
    /// Log filter directive (`LOG_LEVEL`, or `RUST_LOG` when set).
    pub log_filter: String,
    /// Log output format.
    pub log_format: LogFormat,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `BACKEND_URL` is not an absolute http(s) URL.
    #[error("BACKEND_URL {value:?} is not an absolute http(s) URL: {reason}")]
    BackendUrl {
        /// The offending value.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A numeric variable does not parse or is out of range.
    #[error("{name}={value:?} is invalid: expected {expected}")]
    Number {
        /// Variable name.
        name: &'static str,
        /// The offending value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// `LOG_FORMAT` is neither `json` nor `text`.
    #[error("LOG_FORMAT={0:?} is invalid: expected json or text")]
    LogFormat(String),
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let raw_url = get("BACKEND_URL").unwrap_or_else(|| DEFAULT_BACKEND_URL.to_owned());
        let backend_url = parse_backend_url(raw_url.trim())?;

        let port = match get("PORT") {
            None => DEFAULT_PORT,
            Some(v) => {
                v.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or(ConfigError::Number {
                        name: "PORT",
                        value: v,
                        expected: "a port number 1-65535",
                    })?
            }
        };

        let backend_timeout = match get("BACKEND_TIMEOUT_SECS") {
            None => DEFAULT_BACKEND_TIMEOUT,
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .map(Duration::from_secs)
                .ok_or(ConfigError::Number {
                    name: "BACKEND_TIMEOUT_SECS",
                    value: v,
                    expected: "whole seconds 1-3600",
                })?,
        };

        let log_filter = get("RUST_LOG")
            .or_else(|| get("LOG_LEVEL"))
            .unwrap_or_else(|| "info".to_owned());

        let log_format = match get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => return Err(ConfigError::LogFormat(v)),
        };

        let number = |name: &'static str,
                      default: u64,
                      range: std::ops::RangeInclusive<u64>,
                      expected: &'static str| match get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or(ConfigError::Number {
                    name,
                    value: v,
                    expected,
                }),
        };
        let limits = DEFAULT_HTTP_LIMITS;
        let http = HttpLimits {
            header_read_timeout: Duration::from_secs(number(
                "HEADER_READ_TIMEOUT_SECS",
                limits.header_read_timeout.as_secs(),
                1..=300,
                "whole seconds 1-300",
            )?),
            body_read_timeout: Duration::from_secs(number(
                "BODY_READ_TIMEOUT_SECS",
                limits.body_read_timeout.as_secs(),
                1..=300,
                "whole seconds 1-300",
            )?),
            max_connections: number(
                "MAX_CONNECTIONS",
                limits.max_connections as u64,
                1..=1_000_000,
                "a count 1-1000000",
            )? as usize,
        };
        let shutdown_delay = Duration::from_secs(number(
            "SHUTDOWN_DELAY_SECS",
            0,
            0..=300,
            "whole seconds 0-300",
        )?);

        Ok(Self {
            backend_url,
            port,
            backend_timeout,
            // Health must answer quickly even when the backend hangs: probes have short deadlines.
            health_timeout: backend_timeout.min(Duration::from_secs(2)),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            shutdown_delay,
            http,
            log_filter,
            log_format,
        })
    }
}

fn parse_backend_url(raw: &str) -> Result<Url, ConfigError> {
    // Userinfo would be a credential: keep it out of the error text (and so out of the log).
    let shown = if raw.contains('@') {
        "[redacted: contains userinfo]".to_owned()
    } else {
        raw.to_owned()
    };
    let err = |reason: &str| ConfigError::BackendUrl {
        value: shown.clone(),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw).map_err(|e| err(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(err("scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(err("missing host"));
    }
    // `/api/health` shows this URL to anyone: it must not carry credentials.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err("must not contain user:password@"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must not have a query or fragment"));
    }
    // A trailing slash lets `join`-free concatenation of "/api/..." stay correct.
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.backend_url.as_str(), "http://todo-backend:8000/");
        assert_eq!(c.port, 3000);
        assert_eq!(c.backend_timeout, Duration::from_secs(30));
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.http, DEFAULT_HTTP_LIMITS);
        assert_eq!(c.shutdown_delay, Duration::ZERO);
    }

    #[test]
    fn reads_the_server_bounds() {
        let c = cfg(&[
            ("HEADER_READ_TIMEOUT_SECS", "3"),
            ("BODY_READ_TIMEOUT_SECS", "4"),
            ("MAX_CONNECTIONS", "5"),
            ("SHUTDOWN_DELAY_SECS", "6"),
        ])
        .unwrap();
        assert_eq!(c.http.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.http.body_read_timeout, Duration::from_secs(4));
        assert_eq!(c.http.max_connections, 5);
        assert_eq!(c.shutdown_delay, Duration::from_secs(6));
        for (name, bad) in [
            ("HEADER_READ_TIMEOUT_SECS", "0"),
            ("BODY_READ_TIMEOUT_SECS", "x"),
            ("MAX_CONNECTIONS", "0"),
            ("SHUTDOWN_DELAY_SECS", "301"),
        ] {
            assert!(
                matches!(cfg(&[(name, bad)]), Err(ConfigError::Number { name: n, .. }) if n == name),
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn reads_every_variable() {
        let c = cfg(&[
            ("BACKEND_URL", "http://127.0.0.1:9000/base/"),
            ("PORT", "8080"),
            ("BACKEND_TIMEOUT_SECS", "5"),
            ("LOG_LEVEL", "debug"),
            ("LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        assert_eq!(c.backend_url.as_str(), "http://127.0.0.1:9000/base");
        assert_eq!(c.port, 8080);
        assert_eq!(c.backend_timeout, Duration::from_secs(5));
        assert_eq!(c.health_timeout, Duration::from_secs(2));
        assert_eq!(c.log_filter, "debug");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn rust_log_wins_over_log_level() {
        let c = cfg(&[("LOG_LEVEL", "warn"), ("RUST_LOG", "frontend=trace")]).unwrap();
        assert_eq!(c.log_filter, "frontend=trace");
    }

    #[test]
    fn rejects_bad_values() {
        assert!(matches!(
            cfg(&[("BACKEND_URL", "todo-backend:8000")]),
            Err(ConfigError::BackendUrl { .. })
        ));
        assert!(matches!(
            cfg(&[("BACKEND_URL", "ftp://x")]),
            Err(ConfigError::BackendUrl { .. })
        ));
        assert!(matches!(
            cfg(&[("PORT", "70000")]),
            Err(ConfigError::Number { name: "PORT", .. })
        ));
        assert!(matches!(
            cfg(&[("PORT", "0")]),
            Err(ConfigError::Number { name: "PORT", .. })
        ));
        assert!(matches!(
            cfg(&[("BACKEND_TIMEOUT_SECS", "soon")]),
            Err(ConfigError::Number { .. })
        ));
        assert_eq!(
            cfg(&[("LOG_FORMAT", "xml")]).unwrap_err(),
            ConfigError::LogFormat("xml".into())
        );
    }

    #[test]
    fn backend_url_with_credentials_is_refused_without_echoing_them() {
        for raw in [
            "http://user:hunter2@todo-backend:8000",
            "http://hunter2@todo-backend:8000",
        ] {
            let e = cfg(&[("BACKEND_URL", raw)]).unwrap_err();
            assert!(matches!(e, ConfigError::BackendUrl { .. }), "{raw}: {e:?}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
            assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        }
    }

    #[test]
    fn blank_values_mean_default() {
        let c = cfg(&[("PORT", " "), ("BACKEND_URL", "")]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.backend_url.host_str(), Some("todo-backend"));
    }
}
