//! Task inputs: titles, descriptions, filters and patches.

use serde::{Deserialize, Deserializer};

use super::{has_forbidden_control, ValidationError};

/// Longest title, in characters, after trimming.
pub const TITLE_MAX: usize = 200;
/// Longest description, in characters, after trimming.
pub const DESCRIPTION_MAX: usize = 2000;

/// A task title: 1..=200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Validates and trims a title.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Err(ValidationError("title must not be empty".into()));
        }
        if t.chars().count() > TITLE_MAX {
            return Err(ValidationError(format!(
                "title must be at most {TITLE_MAX} characters"
            )));
        }
        if has_forbidden_control(t, false) {
            return Err(ValidationError(
                "title must not contain control characters".into(),
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The title text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A task description: at most 2000 characters after trimming; empty means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// Validates and trims a description; `Ok(None)` when it is blank.
    pub fn parse(raw: &str) -> Result<Option<Self>, ValidationError> {
        let d = raw.trim();
        if d.is_empty() {
            return Ok(None);
        }
        if d.chars().count() > DESCRIPTION_MAX {
            return Err(ValidationError(format!(
                "description must be at most {DESCRIPTION_MAX} characters"
            )));
        }
        if has_forbidden_control(d, true) {
            return Err(ValidationError(
                "description must not contain control characters".into(),
            ));
        }
        Ok(Some(Self(d.to_owned())))
    }

    /// The description text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A validated new task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// Title.
    pub title: Title,
    /// Optional description.
    pub description: Option<Description>,
}

impl NewTask {
    /// Validates raw fields into a new task.
    pub fn parse(title: &str, description: Option<&str>) -> Result<Self, ValidationError> {
        Ok(Self {
            title: Title::parse(title)?,
            description: description.map(Description::parse).transpose()?.flatten(),
        })
    }
}

/// A validated partial update: `None` leaves a field unchanged; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPatch {
    /// New title.
    pub title: Option<Title>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<Description>>,
    /// New completion state.
    pub completed: Option<bool>,
}

impl TaskPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.completed.is_none()
    }
}

/// Which tasks a listing returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Tasks not completed yet.
    Pending,
    /// Completed tasks.
    Completed,
}

impl StatusFilter {
    /// The `completed` value to match, or `None` for all.
    pub fn completed(self) -> Option<bool> {
        match self {
            Self::All => None,
            Self::Pending => Some(false),
            Self::Completed => Some(true),
        }
    }
}

/// Deserializes a field that distinguishes "absent" (`None`) from "null" (`Some(None)`); use with `#[serde(default)]`.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_bounds() {
        assert!(Title::parse("").is_err());
        assert!(Title::parse("   \t ").is_err());
        assert_eq!(Title::parse("  buy milk ").unwrap().as_str(), "buy milk");
        assert!(Title::parse(&"é".repeat(TITLE_MAX)).is_ok());
        assert!(Title::parse(&"é".repeat(TITLE_MAX + 1)).is_err());
        assert!(Title::parse("a\0b").is_err());
    }

    #[test]
    fn description_bounds() {
        assert_eq!(Description::parse("  ").unwrap(), None);
        assert!(Description::parse(&"x".repeat(DESCRIPTION_MAX))
            .unwrap()
            .is_some());
        assert!(Description::parse(&"x".repeat(DESCRIPTION_MAX + 1)).is_err());
        assert!(Description::parse("line\nline").unwrap().is_some());
        assert!(Description::parse("nul\0").is_err());
    }

    proptest::proptest! {
        #[test]
        fn title_parse_never_panics_and_respects_bounds(s in ".*") {
            if let Ok(t) = Title::parse(&s) {
                let n = t.as_str().chars().count();
                proptest::prop_assert!((1..=TITLE_MAX).contains(&n));
            }
        }
    }
}
