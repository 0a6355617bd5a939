//! Bearer tokens: 32 random bytes, base64url for the client; only HMAC-SHA256(AUTH_SECRET, token) is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::config::Secret;

/// Length of an encoded token (32 bytes in unpadded base64url).
pub const TOKEN_LEN: usize = 43;

/// A token as handed to the client once; never logged.
pub struct Token(String);

impl Token {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token text for the response body.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The token text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// What the database stores in place of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// HMAC-SHA256 of the token text keyed with the auth secret.
    pub fn of(secret: &Secret<String>, token: &str) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(token.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// True when `s` has the shape of a token this service issues (cheap check before touching the database).
pub fn looks_like_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_well_formed() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a.as_str(), b.as_str());
        assert!(looks_like_token(a.as_str()));
        assert!(!looks_like_token("short"));
    }

    #[test]
    fn hash_depends_on_secret() {
        let s1 = Secret::new("a".repeat(32));
        let s2 = Secret::new("b".repeat(32));
        let t = Token::generate();
        assert_eq!(
            TokenHash::of(&s1, t.as_str()),
            TokenHash::of(&s1, t.as_str())
        );
        assert_ne!(
            TokenHash::of(&s1, t.as_str()),
            TokenHash::of(&s2, t.as_str())
        );
    }
}
