//! Configuration from the environment. A missing or malformed variable stops startup with one line naming it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use http_serve::HttpLimits;

use sqlx::postgres::PgConnectOptions;

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call sites are easy to audit by searching for `expose`.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for the cluster.
    Json,
}

/// Why the configuration could not be read; `Display` is the one line printed at startup.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    /// A variable is set but its value is unusable (the value itself is not repeated: it may be a secret).
    #[error("configuration error: {name} is invalid: {reason}")]
    Invalid {
        /// The variable's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The backend's whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL connection URL (`DATABASE_URL`).
    pub database_url: Secret<String>,
    /// Key for token hashing (`AUTH_SECRET`, at least 32 characters).
    pub auth_secret: Secret<String>,
    /// Listening port (`PORT`, default 8000).
    pub port: u16,
    /// Tracing filter: `RUST_LOG` when set, else `LOG_LEVEL` (default `info`).
    pub log_filter: String,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `OPENAI_API_KEY`: enables the LLM chat engine when set.
    pub openai_api_key: Option<Secret<String>>,
    /// `OPENAI_BASE_URL` (default `https://api.openai.com/v1`).
    pub openai_base_url: String,
    /// `OPENAI_MODEL` (default `gpt-4o-mini`).
    pub openai_model: String,
    /// `OPENAI_TIMEOUT_SECS` (default 20).
    pub openai_timeout: Duration,
    /// `TOKEN_TTL_HOURS` (default 168): how long a bearer token stays valid.
    pub token_ttl: Duration,
    /// Per-connection and per-request bounds of the HTTP server.
    pub http: HttpLimits,
    /// `SHUTDOWN_DELAY_SECS` (default 0): how long the server keeps serving after SIGTERM before it
    /// drains, so a load balancer (kube-proxy) stops sending traffic before the listener closes.
    pub shutdown_delay: Duration,
    /// `TRUSTED_PROXIES` (default loopback): peers whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: TrustedProxies,
    /// Per-user storage caps.
    pub caps: Caps,
    /// Sign-in rate limits and the password-hashing queue.
    pub sign_in: SignInLimits,
}

/// The backend's HTTP bounds by default: a body must arrive within 15 s (a task or a chat message is small).
pub const DEFAULT_HTTP_LIMITS: HttpLimits =
    HttpLimits::with_body_read_timeout(Duration::from_secs(15));

/// How much one user may store; over a cap the API answers 409 `limit_reached` and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// `MAX_TASKS_PER_USER` (default 10000).
    pub tasks_per_user: i64,
    /// `MAX_CONVERSATIONS_PER_USER` (default 1000).
    pub conversations_per_user: i64,
    /// `MAX_MESSAGES_PER_CONVERSATION` (default 2000; tool rows count too).
    pub messages_per_conversation: i64,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            tasks_per_user: 10_000,
            conversations_per_user: 1_000,
            messages_per_conversation: 2_000,
        }
    }
}

/// Sign-in throttling: register and login attempts per client address and per (address, e-mail),
/// and how many password hashes may run or wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// `AUTH_RATE_PER_ADDRESS` (default 30): attempts per minute from one client address (burst as large).
    pub per_address_per_minute: u32,
    /// `AUTH_RATE_PER_ADDRESS_EMAIL` (default 5): attempts per minute for one e-mail from one address.
    pub per_address_email_per_minute: u32,
    /// `HASH_WORKERS` (default 2): password hashes computed at once (each takes ~19 MiB and a core).
    pub hash_workers: usize,
    /// `HASH_QUEUE` (default 256): hashes that may wait for a worker; beyond that sign-in answers 503.
    pub hash_queue: usize,
    /// `HASH_WAIT_SECS` (default 2): the longest a sign-in waits (first come, first served) for a
    /// worker before it is refused with 503, so a flood delays a real sign-in by at most this.
    pub hash_wait: Duration,
}

impl Default for SignInLimits {
    fn default() -> Self {
        Self {
            per_address_per_minute: 30,
            per_address_email_per_minute: 5,
            hash_workers: 2,
            hash_queue: 256,
            hash_wait: Duration::from_secs(2),
        }
    }
}

/// Networks whose peers are proxies (the frontend) that may name the client in `X-Forwarded-For`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Default: loopback only (a frontend on the same host).
    pub fn loopback() -> Self {
        Self(vec![
            ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                std::net::Ipv4Addr::new(127, 0, 0, 0),
                8,
            )),
            ipnet::IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
        ])
    }

    /// Parses a comma-separated list of CIDRs or addresses (`10.244.0.0/16, ::1`); `none` trusts nobody.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().eq_ignore_ascii_case("none") {
            return Ok(Self(Vec::new()));
        }
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("`{s}` is not an address or CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `addr` is one of the trusted proxies (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, addr: std::net::IpAddr) -> bool {
        let addr = canonical(addr);
        self.0.iter().any(|net| net.contains(&addr))
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`, so one rule covers a dual-stack listener's IPv4 peers.
pub fn canonical(addr: std::net::IpAddr) -> std::net::IpAddr {
    match addr {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, std::net::IpAddr::V4),
        v4 => v4,
    }
}

/// Minimum length of `AUTH_SECRET`.
pub const MIN_AUTH_SECRET_LEN: usize = 32;

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        // Only the error kind is reported: sqlx's message could echo the URL, and with it the password.
        let scheme_ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p));
        if !scheme_ok || PgConnectOptions::from_str(&database_url).is_err() {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: "not a valid postgres:// URL".into(),
            });
        }

        let auth_secret = get("AUTH_SECRET").ok_or(ConfigError::Missing("AUTH_SECRET"))?;
        if auth_secret.chars().count() < MIN_AUTH_SECRET_LEN {
            return Err(ConfigError::Invalid {
                name: "AUTH_SECRET",
                reason: format!("must be at least {MIN_AUTH_SECRET_LEN} characters"),
            });
        }

        let port = parse_or("PORT", get("PORT"), 8000u16)?;
        if port == 0 {
            return Err(ConfigError::Invalid {
                name: "PORT",
                reason: "must be between 1 and 65535".into(),
            });
        }

        let log_filter = match get("RUST_LOG") {
            Some(filter) => validate_filter("RUST_LOG", filter)?,
            None => validate_filter(
                "LOG_LEVEL",
                get("LOG_LEVEL").unwrap_or_else(|| "info".into()),
            )?,
        };

        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "LOG_FORMAT",
                    reason: format!("expected `json` or `text`, got `{other}`"),
                })
            }
        };

        let openai_timeout_secs =
            parse_or("OPENAI_TIMEOUT_SECS", get("OPENAI_TIMEOUT_SECS"), 20u64)?;
        // Same bounds as the agent's own reader; an unbounded value overflows `Instant + timeout`.
        if !(1..=600).contains(&openai_timeout_secs) {
            return Err(ConfigError::Invalid {
                name: "OPENAI_TIMEOUT_SECS",
                reason: "must be between 1 and 600".into(),
            });
        }
        let openai_base_url = get("OPENAI_BASE_URL")
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "https://api.openai.com/v1".into());
        if !(openai_base_url.starts_with("http://") || openai_base_url.starts_with("https://")) {
            return Err(ConfigError::Invalid {
                name: "OPENAI_BASE_URL",
                reason: "must start with http:// or https://".into(),
            });
        }
        let token_ttl_hours = parse_or("TOKEN_TTL_HOURS", get("TOKEN_TTL_HOURS"), 168u64)?;
        if !(1..=24 * 366).contains(&token_ttl_hours) {
            return Err(ConfigError::Invalid {
                name: "TOKEN_TTL_HOURS",
                reason: "must be between 1 and 8784 (one year)".into(),
            });
        }

        let secs = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            let v = parse_or(name, get(name), default)?;
            if range.contains(&v) {
                Ok(Duration::from_secs(v))
            } else {
                Err(ConfigError::Invalid {
                    name,
                    reason: format!("must be between {} and {}", range.start(), range.end()),
                })
            }
        };
        let count = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            let v = parse_or(name, get(name), default)?;
            if range.contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::Invalid {
                    name,
                    reason: format!("must be between {} and {}", range.start(), range.end()),
                })
            }
        };
        let defaults = DEFAULT_HTTP_LIMITS;
        let http = HttpLimits {
            header_read_timeout: secs(
                "HEADER_READ_TIMEOUT_SECS",
                defaults.header_read_timeout.as_secs(),
                1..=300,
            )?,
            body_read_timeout: secs(
                "BODY_READ_TIMEOUT_SECS",
                defaults.body_read_timeout.as_secs(),
                1..=300,
            )?,
            max_connections: count(
                "MAX_CONNECTIONS",
                defaults.max_connections as u64,
                1..=1_000_000,
            )? as usize,
        };
        let shutdown_delay = secs("SHUTDOWN_DELAY_SECS", 0, 0..=300)?;
        let trusted_proxies = match get("TRUSTED_PROXIES") {
            None => TrustedProxies::loopback(),
            Some(raw) => TrustedProxies::parse(&raw).map_err(|reason| ConfigError::Invalid {
                name: "TRUSTED_PROXIES",
                reason,
            })?,
        };
        let cap = Caps::default();
        let caps = Caps {
            tasks_per_user: count(
                "MAX_TASKS_PER_USER",
                cap.tasks_per_user as u64,
                1..=10_000_000,
            )? as i64,
            conversations_per_user: count(
                "MAX_CONVERSATIONS_PER_USER",
                cap.conversations_per_user as u64,
                1..=10_000_000,
            )? as i64,
            messages_per_conversation: count(
                "MAX_MESSAGES_PER_CONVERSATION",
                cap.messages_per_conversation as u64,
                // A turn stores at least its message and the reply.
                2..=10_000_000,
            )? as i64,
        };
        let limits = SignInLimits::default();
        let sign_in = SignInLimits {
            per_address_per_minute: count(
                "AUTH_RATE_PER_ADDRESS",
                u64::from(limits.per_address_per_minute),
                1..=1_000_000,
            )? as u32,
            per_address_email_per_minute: count(
                "AUTH_RATE_PER_ADDRESS_EMAIL",
                u64::from(limits.per_address_email_per_minute),
                1..=1_000_000,
            )? as u32,
            hash_workers: count("HASH_WORKERS", limits.hash_workers as u64, 1..=64)? as usize,
            hash_queue: count("HASH_QUEUE", limits.hash_queue as u64, 0..=10_000)? as usize,
            hash_wait: secs("HASH_WAIT_SECS", limits.hash_wait.as_secs(), 1..=30)?,
        };

        Ok(Self {
            database_url: Secret::new(database_url),
            auth_secret: Secret::new(auth_secret),
            port,
            log_filter,
            log_format,
            openai_api_key: get("OPENAI_API_KEY").map(Secret::new),
            openai_base_url,
            openai_model: get("OPENAI_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            openai_timeout: Duration::from_secs(openai_timeout_secs),
            token_ttl: Duration::from_secs(token_ttl_hours * 3600),
            http,
            shutdown_delay,
            trusted_proxies,
            caps,
            sign_in,
        })
    }
}

fn parse_or<T: FromStr>(
    name: &'static str,
    raw: Option<String>,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: format!("`{}`: {e}", raw.trim()),
            }),
    }
}

fn validate_filter(name: &'static str, filter: String) -> Result<String, ConfigError> {
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map(|_| filter.clone())
        .map_err(|e| ConfigError::Invalid {
            name,
            reason: format!("`{filter}`: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("DATABASE_URL", "postgres://u:hunter2pw@localhost:5432/db"),
            ("AUTH_SECRET", SECRET),
        ]
    }

    #[test]
    fn defaults_apply() {
        let c = config(&base()).unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.openai_model, "gpt-4o-mini");
        assert_eq!(c.openai_base_url, "https://api.openai.com/v1");
        assert_eq!(c.openai_timeout, Duration::from_secs(20));
        assert_eq!(c.token_ttl, Duration::from_secs(168 * 3600));
        assert!(c.openai_api_key.is_none());
        assert_eq!(c.http, DEFAULT_HTTP_LIMITS);
        assert_eq!(c.shutdown_delay, Duration::ZERO);
        assert_eq!(c.caps, Caps::default());
        assert_eq!(c.sign_in, SignInLimits::default());
        assert!(c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(c
            .trusted_proxies
            .contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("10.244.0.5".parse().unwrap()));
    }

    #[test]
    fn trusted_proxies_take_cidrs_and_addresses() {
        let mut vars = base();
        vars.push(("TRUSTED_PROXIES", "10.244.0.0/16, 192.0.2.7"));
        let c = config(&vars).unwrap();
        assert!(c.trusted_proxies.contains("10.244.3.4".parse().unwrap()));
        assert!(c.trusted_proxies.contains("192.0.2.7".parse().unwrap()));
        assert!(!c.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        let mut vars = base();
        vars.push(("TRUSTED_PROXIES", "none"));
        assert!(!config(&vars)
            .unwrap()
            .trusted_proxies
            .contains("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn missing_required_names_the_variable() {
        let err = config(&[("AUTH_SECRET", SECRET)]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DATABASE_URL"));
        assert!(err.to_string().contains("DATABASE_URL"));
        let err = config(&[("DATABASE_URL", "postgres://localhost/db")]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("AUTH_SECRET"));
    }

    #[test]
    fn malformed_values_name_the_variable() {
        for (name, value) in [
            ("PORT", "eighty"),
            ("PORT", "0"),
            ("PORT", "70000"),
            ("LOG_FORMAT", "xml"),
            ("TOKEN_TTL_HOURS", "-1"),
            ("TOKEN_TTL_HOURS", "0"),
            ("OPENAI_TIMEOUT_SECS", "soon"),
            ("OPENAI_TIMEOUT_SECS", "0"),
            ("OPENAI_TIMEOUT_SECS", "601"),
            ("OPENAI_TIMEOUT_SECS", "18446744073709551615"),
            ("OPENAI_BASE_URL", "api.openai.com/v1"),
            ("AUTH_SECRET", "short"),
            ("DATABASE_URL", "mysql://nope"),
            ("LOG_LEVEL", "info,[[["),
            ("HEADER_READ_TIMEOUT_SECS", "0"),
            ("BODY_READ_TIMEOUT_SECS", "forever"),
            ("MAX_CONNECTIONS", "0"),
            ("SHUTDOWN_DELAY_SECS", "301"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("MAX_TASKS_PER_USER", "0"),
            ("MAX_CONVERSATIONS_PER_USER", "-3"),
            ("MAX_MESSAGES_PER_CONVERSATION", "1"),
            ("AUTH_RATE_PER_ADDRESS", "0"),
            ("AUTH_RATE_PER_ADDRESS_EMAIL", "many"),
            ("HASH_WORKERS", "0"),
            ("HASH_QUEUE", "-1"),
            ("HASH_WAIT_SECS", "0"),
        ] {
            let mut vars = base();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            let err = config(&vars).unwrap_err();
            assert!(
                err.to_string().contains(name),
                "{name}={value}: error `{err}` does not name the variable"
            );
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn rust_log_wins_over_log_level() {
        let mut vars = base();
        vars.push(("LOG_LEVEL", "warn"));
        vars.push(("RUST_LOG", "backend=debug"));
        assert_eq!(config(&vars).unwrap().log_filter, "backend=debug");
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut vars = base();
        vars.push(("OPENAI_API_KEY", "sk-topsecretkey"));
        let c = config(&vars).unwrap();
        let printed = format!("{c:?} {c:#?}");
        for secret in ["hunter2pw", SECRET, "sk-topsecretkey"] {
            assert!(
                !printed.contains(secret),
                "Debug leaked {secret}: {printed}"
            );
        }
        assert!(printed.contains("[redacted]"));
        assert_eq!(c.auth_secret.to_string(), "[redacted]");
    }

    #[test]
    fn invalid_database_url_does_not_echo_it() {
        let err = config(&[
            ("DATABASE_URL", "postgres://u:pw@host:notaport/db"),
            ("AUTH_SECRET", SECRET),
        ])
        .unwrap_err();
        assert!(!err.to_string().contains("pw@"));
    }
}
