//! The secret settings of a deploy (OPENAI_API_KEY, DATABASE_URL, AUTH_SECRET): what this run gives, what the
//! release already has, and the values the release gets. A setting this run does not give keeps the release's
//! value; it goes only with `--unset NAME`; a deploy that would change which database the backend uses stops
//! unless `--switch-database` says so. Pure logic: the release's values come in as JSON.

use std::fmt;

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{State, Step};
use crate::context::Context;
use crate::exit::Failure;
use crate::progress::Reporter;
use crate::secrets::{self, Secrets};
use crate::tools::helm;

/// The release whose settings these are.
const BACKEND_RELEASE: &str = "todo-backend";

/// One secret setting the deploy manages.
// The variants spell the environment variables (OPENAI_API_KEY, ...); one of them ends in "Key".
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Setting {
    /// Enables the LLM engine.
    OpenaiApiKey,
    /// External database; absent means the bundled PostgreSQL.
    DatabaseUrl,
    /// Token signing key.
    AuthSecret,
}

impl Setting {
    /// All keys, in the order they are reported.
    pub const ALL: [Setting; 3] = [
        Setting::DatabaseUrl,
        Setting::OpenaiApiKey,
        Setting::AuthSecret,
    ];

    /// The environment variable name.
    pub fn name(self) -> &'static str {
        match self {
            Setting::OpenaiApiKey => "OPENAI_API_KEY",
            Setting::DatabaseUrl => "DATABASE_URL",
            Setting::AuthSecret => "AUTH_SECRET",
        }
    }

    /// Parses `--unset NAME`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    fn get(self, s: &Secrets) -> Option<&String> {
        match self {
            Setting::OpenaiApiKey => s.openai_api_key.as_ref(),
            Setting::DatabaseUrl => s.database_url.as_ref(),
            Setting::AuthSecret => s.auth_secret.as_ref(),
        }
    }

    fn set(self, s: &mut Secrets, v: Option<String>) {
        match self {
            Setting::OpenaiApiKey => s.openai_api_key = v,
            Setting::DatabaseUrl => s.database_url = v,
            Setting::AuthSecret => s.auth_secret = v,
        }
    }
}

/// What happens to one setting on this deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Given now (environment, `--env-file` or `.env`), replacing or adding a value.
    Given,
    /// Not given now: the release's value stays.
    Kept,
    /// Removed on request (`--unset`).
    Removed,
    /// Neither given nor set before.
    Unset,
}

/// Which database the backend uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The bundled PostgreSQL StatefulSet.
    Bundled,
    /// An external DATABASE_URL.
    External(String),
}

impl Database {
    fn of(s: &Secrets) -> Self {
        match &s.database_url {
            Some(u) => Database::External(u.clone()),
            None => Database::Bundled,
        }
    }
}

impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Bundled => {
                f.write_str("the bundled PostgreSQL (its data stays in its volume)")
            }
            Database::External(url) => {
                write!(f, "the external database {}", without_credentials(url))
            }
        }
    }
}

/// `scheme://host/db` of a database URL: user, password, port and query left out (the whole URL is treated
/// as a secret elsewhere; host and database name say which database is meant).
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = rest.split('?').next().unwrap_or(rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = match authority.find(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    };
    let shown = if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    };
    if scheme.is_empty() {
        shown
    } else {
        format!("{scheme}://{shown}")
    }
}

/// The settings of the release as deployed: read from `helm get values -o json` (user-supplied values).
pub fn from_release(values: &Value) -> Secrets {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Secrets {
        openai_api_key: text(&values["secrets"]["openaiApiKey"]),
        auth_secret: text(&values["secrets"]["authSecret"]),
        database_url: text(&values["externalDatabase"]["url"]),
    }
}

/// The outcome of comparing this run's settings with the release's.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The settings the release gets.
    pub values: Secrets,
    /// What happens to each setting.
    pub fates: Vec<(Setting, Fate)>,
    /// `(from, to)` when the backend would move to another database.
    pub switch: Option<(Database, Database)>,
}

impl Plan {
    /// Decides the release's settings: `given` by this run, `current` of the release (None: first install),
    /// `unset` asked for.
    pub fn new(given: &Secrets, current: Option<&Secrets>, unset: &[Setting]) -> Self {
        let mut values = Secrets::default();
        let mut fates = Vec::new();
        for key in Setting::ALL {
            let now = key.get(given).cloned();
            let before = current.and_then(|c| key.get(c)).cloned();
            let (value, fate) = if unset.contains(&key) {
                (
                    None,
                    if before.is_some() {
                        Fate::Removed
                    } else {
                        Fate::Unset
                    },
                )
            } else if now.is_some() {
                (now, Fate::Given)
            } else if before.is_some() {
                (before, Fate::Kept)
            } else {
                (None, Fate::Unset)
            };
            key.set(&mut values, value);
            fates.push((key, fate));
        }
        let switch = current.and_then(|c| {
            let (from, to) = (Database::of(c), Database::of(&values));
            (from != to).then_some((from, to))
        });
        Self {
            values,
            fates,
            switch,
        }
    }

    /// One line per setting that is set, kept or removed (never a value), for the step's output.
    pub fn describe(&self) -> Vec<String> {
        self.fates
            .iter()
            .filter_map(|(k, f)| {
                let what = match f {
                    Fate::Given => "given",
                    Fate::Kept => "kept from the release",
                    Fate::Removed => "removed (--unset)",
                    Fate::Unset => return None,
                };
                Some(format!("{} {what}", k.name()))
            })
            .collect()
    }
}

/// The settings step: reads this run's settings and the release's, decides, and stops a database switch
/// that was not asked for, before anything is built or changed.
pub struct SettingsStep;

impl Step for SettingsStep {
    fn name(&self) -> &'static str {
        "settings"
    }

    fn run(&self, ctx: &Context, st: &mut State, rep: &mut Reporter) -> Result<String> {
        let file = secrets::env_file(st.args.env_file.as_deref(), &ctx.root);
        if let Some(f) = &file {
            rep.note(
                self.name(),
                &format!("reading settings from {}", f.display()),
            );
        }
        let given = Secrets::load(file.as_deref())?;
        let current = if st.cluster_up {
            release_settings(ctx)?
        } else {
            None
        };
        let plan = Plan::new(&given, current.as_ref(), &st.args.unset);
        if let (Some((from, to)), false) = (&plan.switch, st.args.switch_database) {
            return Err(Failure::step(format!(
                "this deploy would switch the backend from {from} to {to}; nothing was changed. \
                 Deploy again with --switch-database to go ahead (or give the database setting the release has)"
            ))
            .into());
        }
        // Never on a command line, but redacted anyway should a path or a message ever echo one.
        st.secret_values = plan.values.values();
        let mut detail = plan.describe();
        if let Some((from, to)) = &plan.switch {
            detail.push(format!(
                "database switched from {from} to {to} (--switch-database)"
            ));
        }
        if let Some(f) = &file {
            detail.push(format!("from {}", f.display()));
        }
        if current.is_none() && st.cluster_up {
            detail.push("first install".into());
        }
        st.settings = Some(plan);
        Ok(if detail.is_empty() {
            "defaults (bundled PostgreSQL, built-in chat engine)".into()
        } else {
            detail.join(", ")
        })
    }
}

/// The settings of the installed backend release, None when it is not installed.
fn release_settings(ctx: &Context) -> Result<Option<Secrets>> {
    let sh = ctx.sh()?;
    let (ns, p) = (&ctx.namespace, &ctx.profile);
    if !ctx.run(&helm::status(&sh, BACKEND_RELEASE, ns, p))?.ok() {
        return Ok(None);
    }
    let out = ctx.run(&helm::get_values(&sh, BACKEND_RELEASE, ns, p))?;
    if !out.ok() {
        return Err(Failure::step(format!(
            "cannot read the settings of release {BACKEND_RELEASE}: {}",
            out.reason()
        ))
        .into());
    }
    let values: Value = serde_json::from_str(out.stdout.trim())
        .with_context(|| format!("parsing `helm get values {BACKEND_RELEASE} -o json`"))?;
    Ok(Some(from_release(&values)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secrets(key: Option<&str>, db: Option<&str>) -> Secrets {
        Secrets {
            openai_api_key: key.map(str::to_string),
            database_url: db.map(str::to_string),
            auth_secret: None,
        }
    }

    #[test]
    fn a_setting_not_given_keeps_the_release_value() {
        let release = secrets(Some("sk-old"), Some("postgres://u:p@neon/db"));
        let p = Plan::new(&Secrets::default(), Some(&release), &[]);
        assert_eq!(p.values, release);
        assert!(p.switch.is_none());
        assert_eq!(
            p.describe(),
            [
                "DATABASE_URL kept from the release",
                "OPENAI_API_KEY kept from the release"
            ]
        );
    }

    #[test]
    fn given_replaces_and_unset_removes() {
        let release = secrets(Some("sk-old"), None);
        let p = Plan::new(&secrets(Some("sk-new"), None), Some(&release), &[]);
        assert_eq!(p.values.openai_api_key.as_deref(), Some("sk-new"));
        let p = Plan::new(
            &Secrets::default(),
            Some(&release),
            &[Setting::OpenaiApiKey],
        );
        assert_eq!(p.values.openai_api_key, None);
        assert!(p.fates.contains(&(Setting::OpenaiApiKey, Fate::Removed)));
        // --unset wins over a value from the environment: the user asked for it explicitly.
        let p = Plan::new(
            &secrets(Some("sk-env"), None),
            Some(&release),
            &[Setting::OpenaiApiKey],
        );
        assert_eq!(p.values.openai_api_key, None);
    }

    #[test]
    fn every_change_of_database_is_a_switch() {
        let bundled = Secrets::default();
        let neon = secrets(None, Some("postgres://u:p@neon.tech/db?sslmode=require"));
        let other = secrets(None, Some("postgres://u:p@other.host/db"));
        let cases = [
            (&bundled, &neon, &[][..], true),
            (&neon, &other, &[][..], true),
            (&neon, &bundled, &[Setting::DatabaseUrl][..], true),
            (&neon, &bundled, &[][..], false),
            (&neon, &neon, &[][..], false),
            (&bundled, &bundled, &[][..], false),
        ];
        for (current, given, unset, switch) in cases {
            let p = Plan::new(given, Some(current), unset);
            assert_eq!(
                p.switch.is_some(),
                switch,
                "{current:?} -> {given:?} {unset:?}"
            );
        }
        assert!(
            Plan::new(&neon, None, &[]).switch.is_none(),
            "a first install switches nothing"
        );
        let p = Plan::new(&neon, Some(&bundled), &[]);
        let (from, to) = p.switch.unwrap_or((Database::Bundled, Database::Bundled));
        assert_eq!(
            from.to_string(),
            "the bundled PostgreSQL (its data stays in its volume)"
        );
        assert_eq!(
            to.to_string(),
            "the external database postgres://neon.tech/db"
        );
    }

    #[test]
    fn release_values_are_read_from_helm_get_values() {
        let v = json!({
            "image": {"tag": "abc"},
            "secrets": {"openaiApiKey": "sk-1", "authSecret": ""},
            "externalDatabase": {"url": "postgres://a:b@h/d"},
            "postgresql": {"enabled": false}
        });
        assert_eq!(
            from_release(&v),
            secrets(Some("sk-1"), Some("postgres://a:b@h/d"))
        );
        assert_eq!(from_release(&Value::Null), Secrets::default());
    }

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(
            without_credentials("postgres://user:pa@ss@host:5432/db?sslmode=require"),
            "postgres://host/db"
        );
        assert_eq!(
            without_credentials("postgres://u:p@db.invalid:notaport/todo"),
            "postgres://db.invalid/todo"
        );
        assert_eq!(
            without_credentials("postgres://u:p@[::1]:5432/todo"),
            "postgres://[::1]/todo"
        );
        assert_eq!(
            without_credentials("postgres://[::1]/todo"),
            "postgres://[::1]/todo"
        );
        assert_eq!(without_credentials("host/db"), "host/db");
        assert_eq!(
            Setting::parse("openai_api_key"),
            Some(Setting::OpenaiApiKey)
        );
        assert_eq!(Setting::parse("PASSWORD"), None);
    }
}
