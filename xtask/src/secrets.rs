//! Secrets for the backend release: read from the environment or an env file, handed to helm only through a
//! 0600 temp file that is removed afterwards (also on Ctrl-C).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::process::interrupt;

/// The secret settings the deploy knows about.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Enables the LLM engine.
    pub openai_api_key: Option<String>,
    /// External database; empty means the bundled PostgreSQL.
    pub database_url: Option<String>,
    /// Token signing key; the chart keeps or generates one when absent.
    pub auth_secret: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |o: &Option<String>| if o.is_some() { "set" } else { "unset" };
        f.debug_struct("Secrets")
            .field("openai_api_key", &s(&self.openai_api_key))
            .field("database_url", &s(&self.database_url))
            .field("auth_secret", &s(&self.auth_secret))
            .finish()
    }
}

const KEYS: [&str; 3] = ["OPENAI_API_KEY", "DATABASE_URL", "AUTH_SECRET"];

/// The env file a deploy reads: `--env-file`, else a `.env` at the workspace root when there is one (as
/// docker compose reads the `.env` beside its compose file).
pub fn env_file(given: Option<&Path>, root: &Path) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => Some(root.join(".env")).filter(|p| p.is_file()),
    }
}

impl Secrets {
    /// Env file values first, then the process environment on top (as docker compose does).
    pub fn load(env_file: Option<&Path>) -> Result<Self> {
        let mut map = match env_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading env file {}", p.display()))?;
                parse_env_file(&text)
            }
            None => BTreeMap::new(),
        };
        for k in KEYS {
            if let Ok(v) = std::env::var(k) {
                map.insert(k.to_string(), v);
            }
        }
        let take = |k: &str| map.get(k).filter(|v| !v.is_empty()).cloned();
        Ok(Self {
            openai_api_key: take("OPENAI_API_KEY"),
            database_url: take("DATABASE_URL"),
            auth_secret: take("AUTH_SECRET"),
        })
    }

    /// The values to redact in printed commands.
    pub fn values(&self) -> Vec<String> {
        [&self.openai_api_key, &self.database_url, &self.auth_secret]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// The backend chart values holding the secrets (`secrets.*`, `externalDatabase.url`).
    pub fn backend_values(&self) -> serde_json::Value {
        let mut secrets = serde_json::Map::new();
        if let Some(k) = &self.openai_api_key {
            secrets.insert("openaiApiKey".into(), k.clone().into());
        }
        if let Some(k) = &self.auth_secret {
            secrets.insert("authSecret".into(), k.clone().into());
        }
        let mut root = serde_json::Map::new();
        if !secrets.is_empty() {
            root.insert("secrets".into(), secrets.into());
        }
        if let Some(url) = &self.database_url {
            root.insert("externalDatabase".into(), serde_json::json!({ "url": url }));
            root.insert("postgresql".into(), serde_json::json!({ "enabled": false }));
        }
        serde_json::Value::Object(root)
    }
}

/// Parses `KEY=VALUE` lines (optional `export `, quotes, `#` comments).
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = if v.len() >= 2
                && ((v.starts_with('"') && v.ends_with('"'))
                    || (v.starts_with('\'') && v.ends_with('\'')))
            {
                &v[1..v.len() - 1]
            } else {
                v
            };
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// A temp file only its owner can read (0600 on Unix, by `tempfile`), removed on drop and on Ctrl-C.
#[derive(Debug)]
pub struct TempValues {
    file: tempfile::NamedTempFile,
}

impl TempValues {
    /// Writes `value` as JSON (valid YAML) into a fresh file in the temp dir.
    pub fn write(prefix: &str, value: &serde_json::Value) -> Result<Self> {
        let text = serde_json::to_string_pretty(value).context("encoding values")?;
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(".yaml")
            .tempfile()
            .with_context(|| {
                format!(
                    "creating a temporary values file in {}",
                    std::env::temp_dir().display()
                )
            })?;
        interrupt::register_temp(file.path());
        let mut me = Self { file };
        me.file
            .write_all(text.as_bytes())
            .and_then(|()| me.file.flush())
            .context("writing the temporary values file")?;
        Ok(me)
    }
    /// Its path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

impl Drop for TempValues {
    fn drop(&mut self) {
        // The file itself goes when `file` drops, right after this.
        interrupt::unregister_temp(self.file.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_parsing() {
        let m = parse_env_file(
            "# c\nexport OPENAI_API_KEY=\"sk-1\"\nDATABASE_URL='postgres://u:p@h/db'\n\nX = y\n",
        );
        assert_eq!(m.get("OPENAI_API_KEY").map(String::as_str), Some("sk-1"));
        assert_eq!(
            m.get("DATABASE_URL").map(String::as_str),
            Some("postgres://u:p@h/db")
        );
        assert_eq!(m.get("X").map(String::as_str), Some("y"));
    }

    #[test]
    fn secrets_values_and_debug() {
        let s = Secrets {
            openai_api_key: Some("sk-secret".into()),
            database_url: Some("postgres://x".into()),
            auth_secret: None,
        };
        let v = s.backend_values();
        assert_eq!(v["secrets"]["openaiApiKey"], "sk-secret");
        assert_eq!(v["externalDatabase"]["url"], "postgres://x");
        assert_eq!(v["postgresql"]["enabled"], false);
        assert!(!format!("{s:?}").contains("sk-secret"));
        assert_eq!(Secrets::default().backend_values(), serde_json::json!({}));
    }

    #[cfg(unix)]
    #[test]
    fn temp_file_is_0600_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempValues::write("todo-test-", &serde_json::json!({"a": 1}))
            .unwrap_or_else(|e| panic!("{e}"));
        let p = t.path().to_path_buf();
        let mode = std::fs::metadata(&p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        drop(t);
        assert!(!p.exists());
    }
}
