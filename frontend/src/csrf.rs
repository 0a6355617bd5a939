//! Cross-site request forgery: a state-changing request is served only when the browser says it
//! comes from this site. The same rule as Go's `http.CrossOriginProtection`: `Sec-Fetch-Site`
//! when the browser sends it (all current ones do), else `Origin` against `Host`; a request with
//! neither does not come from a browser page (curl, the smoke test) and passes.

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Why a request is refused, or `None` when it may go on.
pub fn cross_site(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return None;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the user made the request themselves (typed, bookmarked), not another page.
        return match site.as_bytes() {
            b"same-origin" | b"none" => None,
            _ => Some("cross-site requests are not accepted"),
        };
    }
    let origin = headers.get(header::ORIGIN)?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => None,
        _ => Some("requests from another origin are not accepted"),
    }
}

/// Middleware: 403 `forbidden` for a cross-site state-changing request.
pub async fn same_site_only(req: Request, next: Next) -> Response {
    match cross_site(req.method(), req.headers()) {
        None => next.run(req).await,
        Some(why) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), "{why}");
            ApiError::Forbidden(why.into()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn browsers_from_this_site_and_non_browsers_pass() {
        let post = Method::POST;
        assert_eq!(
            cross_site(&post, &h(&[("sec-fetch-site", "same-origin")])),
            None
        );
        assert_eq!(cross_site(&post, &h(&[("sec-fetch-site", "none")])), None);
        assert_eq!(
            cross_site(
                &post,
                &h(&[
                    ("origin", "http://localhost:3000"),
                    ("host", "localhost:3000")
                ])
            ),
            None
        );
        assert_eq!(cross_site(&post, &h(&[("host", "localhost:3000")])), None);
        assert_eq!(
            cross_site(&Method::GET, &h(&[("sec-fetch-site", "cross-site")])),
            None
        );
    }

    #[test]
    fn other_sites_are_refused() {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            for headers in [
                h(&[("sec-fetch-site", "cross-site")]),
                h(&[("sec-fetch-site", "same-site")]),
                // Sec-Fetch-Site wins over a matching Origin.
                h(&[
                    ("sec-fetch-site", "cross-site"),
                    ("origin", "http://a:1"),
                    ("host", "a:1"),
                ]),
                h(&[
                    ("origin", "https://evil.example"),
                    ("host", "localhost:3000"),
                ]),
                h(&[("origin", "null"), ("host", "localhost:3000")]),
                h(&[
                    ("origin", "http://localhost:3001"),
                    ("host", "localhost:3000"),
                ]),
            ] {
                assert!(
                    cross_site(&method, &headers).is_some(),
                    "{method} {headers:?}"
                );
            }
        }
    }
}
