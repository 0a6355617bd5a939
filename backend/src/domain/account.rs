//! Account inputs: e-mail addresses and passwords.

use std::fmt;

use super::{has_forbidden_control, ValidationError};

/// Shortest accepted password, in characters.
pub const PASSWORD_MIN: usize = 8;
/// Longest accepted password, in characters (bounds hashing cost).
pub const PASSWORD_MAX: usize = 128;

/// A plausible e-mail address, trimmed and lower-cased so it is unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates an address: one `@`, a non-empty local part, a dotted domain, no spaces, at most 254 bytes.
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let e = raw.trim().to_lowercase();
        let invalid =
            || ValidationError("email must be a valid address like name@example.com".into());
        if e.len() > 254 || e.chars().any(char::is_whitespace) || has_forbidden_control(&e, false) {
            return Err(invalid());
        }
        let (local, domain) = e.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(e))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of acceptable length; `Debug` does not print it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks the length bounds (8..=128 characters).
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let n = raw.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
            return Err(ValidationError(format!(
                "password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"
            )));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
            "ann@example..com",
            "a\0@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"p".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("hunter2hunter2").unwrap()),
            "Password([redacted])"
        );
    }
}
