//! The session cookie: the backend's bearer token, kept where page scripts cannot read it.

use axum::http::{header, HeaderMap, HeaderValue};

/// Name of the session cookie over plain http.
pub const COOKIE_NAME: &str = "todo_session";
/// Name of the session cookie when it is `Secure`: browsers accept a `__Host-` cookie only with
/// `Secure`, `Path=/` and no `Domain`, so no subdomain or plain-http page can plant or shadow it.
pub const SECURE_COOKIE_NAME: &str = "__Host-todo_session";

/// A bearer token that is safe to put in a cookie and an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself: Debug output ends up in logs.
        f.write_str("SessionToken(..)")
    }
}

impl SessionToken {
    /// Accepts a token only if it is a non-empty RFC 6265 cookie value (no `;`, `,`, spaces, quotes).
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 4096
            && raw
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'));
        ok.then(|| Self(raw.to_owned()))
    }

    /// The `Authorization` header value carrying this token.
    pub fn bearer(&self) -> HeaderValue {
        // parse() admits only visible ASCII, which is always a valid header value.
        HeaderValue::from_str(&format!("Bearer {}", self.0))
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The `Set-Cookie` value that stores this token in the browser; `secure` (a TLS-terminating
    /// proxy in front says the page was loaded over https) makes it `__Host-todo_session` with `Secure`.
    pub fn set_cookie(&self, secure: bool) -> HeaderValue {
        let cookie = if secure {
            format!(
                "{SECURE_COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/; Secure",
                self.0
            )
        } else {
            format!(
                "{COOKIE_NAME}={}; HttpOnly; SameSite=Strict; Path=/",
                self.0
            )
        };
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(CLEAR_PLAIN))
    }
}

const CLEAR_PLAIN: &str =
    "todo_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";
const CLEAR_SECURE: &str = "__Host-todo_session=; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT";

/// The `Set-Cookie` values that remove the session cookie, under either name.
pub fn clear_cookies() -> [HeaderValue; 2] {
    [
        HeaderValue::from_static(CLEAR_PLAIN),
        HeaderValue::from_static(CLEAR_SECURE),
    ]
}

/// True when a proxy in front terminated TLS (`X-Forwarded-Proto: https`): the cookie may then be `Secure`.
/// A client faking it only makes its own cookie unusable over plain http.
pub fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Finds the session token in the request's `Cookie` headers, if any (the `__Host-` one first).
pub fn from_headers(headers: &HeaderMap) -> Option<SessionToken> {
    let named = |wanted: &str| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == wanted)
            .and_then(|(_, value)| SessionToken::parse(value.trim_matches('"')))
    };
    named(SECURE_COOKIE_NAME).or_else(|| named(COOKIE_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_token_among_other_cookies() {
        let h = headers(&["a=1; todo_session=abc.DEF-123_x; b=2"]);
        assert_eq!(from_headers(&h), Some(SessionToken("abc.DEF-123_x".into())));
        let h = headers(&["a=1", "todo_session=tok"]);
        assert_eq!(from_headers(&h), Some(SessionToken("tok".into())));
    }

    #[test]
    fn the_host_prefixed_cookie_is_read_and_wins() {
        let h = headers(&["__Host-todo_session=secure; todo_session=plain"]);
        assert_eq!(from_headers(&h), Some(SessionToken("secure".into())));
        let h = headers(&["__Host-todo_session=only"]);
        assert_eq!(from_headers(&h), Some(SessionToken("only".into())));
    }

    #[test]
    fn no_or_empty_cookie_is_no_session() {
        assert_eq!(from_headers(&headers(&[])), None);
        assert_eq!(from_headers(&headers(&["todo_session="])), None);
        assert_eq!(from_headers(&headers(&["other_todo_session=x"])), None);
    }

    #[test]
    fn secure_only_behind_https() {
        let mut h = HeaderMap::new();
        assert!(!behind_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!behind_https(&h));
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS, http"));
        assert!(behind_https(&h));
    }

    #[test]
    fn rejects_values_that_could_inject_attributes() {
        assert!(SessionToken::parse("a;b").is_none());
        assert!(SessionToken::parse("a b").is_none());
        assert!(SessionToken::parse("a\r\nSet-Cookie: x").is_none());
        assert!(SessionToken::parse("ä").is_none());
    }

    #[test]
    fn cookie_has_the_contract_attributes() {
        let t = SessionToken::parse("tok").unwrap();
        assert_eq!(
            t.set_cookie(false),
            "todo_session=tok; HttpOnly; SameSite=Strict; Path=/"
        );
        assert_eq!(
            t.set_cookie(true),
            "__Host-todo_session=tok; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        assert_eq!(t.bearer(), "Bearer tok");
        let [plain, secure] = clear_cookies();
        let (plain, secure) = (plain.to_str().unwrap(), secure.to_str().unwrap());
        assert!(plain.starts_with("todo_session=;") && plain.contains("Max-Age=0"));
        assert!(secure.starts_with("__Host-todo_session=;") && secure.contains("; Secure"));
        assert!(!secure.contains("Domain"));
        assert_eq!(format!("{t:?}"), "SessionToken(..)");
    }
}
