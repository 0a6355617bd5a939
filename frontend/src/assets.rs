//! The UI files, embedded in the binary and served under content-hashed names.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::error::ApiError;

/// One embedded source file: its plain name (as written in index.html) and bytes.
struct Source {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const INDEX_HTML: &[u8] = include_bytes!("../ui/index.html");

const SOURCES: &[Source] = &[
    Source {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../ui/app.js"),
    },
    Source {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../ui/app.css"),
    },
    Source {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../ui/favicon.svg"),
    },
];

/// A file ready to serve.
#[derive(Debug, Clone)]
pub struct Asset {
    /// Response body.
    pub bytes: Bytes,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// Strong validator derived from the content.
    pub etag: String,
}

/// All UI files, hashed once at startup.
#[derive(Debug)]
pub struct Assets {
    index: Asset,
    hashed: HashMap<String, Asset>,
}

/// Short content hash used in file names and ETags.
pub fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// `app.js` + `0123abcd` -> `app.0123abcd.js`.
pub fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

impl Assets {
    /// Hashes every embedded file and rewrites index.html to reference the hashed names.
    pub fn load() -> Arc<Self> {
        let mut index = String::from_utf8_lossy(INDEX_HTML).into_owned();
        let mut hashed = HashMap::new();
        for src in SOURCES {
            let hash = content_hash(src.bytes);
            let name = hashed_name(src.name, &hash);
            index = index.replace(
                &format!("/assets/{}\"", src.name),
                &format!("/assets/{name}\""),
            );
            hashed.insert(
                name,
                Asset {
                    bytes: Bytes::from_static(src.bytes),
                    content_type: src.content_type,
                    etag: format!("\"{hash}\""),
                },
            );
        }
        let etag = format!("\"{}\"", content_hash(index.as_bytes()));
        Arc::new(Self {
            index: Asset {
                bytes: Bytes::from(index),
                content_type: "text/html; charset=utf-8",
                etag,
            },
            hashed,
        })
    }

    /// The rendered index.html.
    pub fn index(&self) -> &Asset {
        &self.index
    }

    /// A hashed asset by its served name.
    pub fn get(&self, hashed_name: &str) -> Option<&Asset> {
        self.hashed.get(hashed_name)
    }

    /// Served names of all hashed assets.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hashed.keys().map(String::as_str)
    }
}

fn respond(asset: &Asset, cache_control: &'static str, request: &HeaderMap) -> Response {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(asset.bytes.clone()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
        h.insert(header::ETAG, etag);
    }
    resp
}

/// `GET /`: the page, always revalidated so a new release's asset names are picked up at once.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(state.assets.index(), "no-cache", &headers)
}

/// `GET /assets/{name}`: hashed names never change content, so browsers may keep them forever.
pub async fn asset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = state.assets.get(&name).ok_or(ApiError::NotFound)?;
    Ok(respond(
        asset,
        "public, max-age=31536000, immutable",
        &headers,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_keep_the_extension() {
        assert_eq!(hashed_name("app.js", "abc123"), "app.abc123.js");
        assert_eq!(hashed_name("LICENSE", "abc123"), "LICENSE.abc123");
        assert_eq!(content_hash(b"x").len(), 12);
        assert_ne!(content_hash(b"x"), content_hash(b"y"));
    }

    #[test]
    fn index_references_only_hashed_assets_that_exist() {
        let assets = Assets::load();
        let index = std::str::from_utf8(&assets.index().bytes).unwrap();
        for name in ["app.js", "app.css"] {
            assert!(
                !index.contains(&format!("/assets/{name}\"")),
                "index.html still references the unhashed {name}"
            );
        }
        let mut referenced = 0;
        for name in assets.names() {
            if index.contains(&format!("/assets/{name}\"")) {
                referenced += 1;
            }
        }
        assert_eq!(
            referenced,
            SOURCES.len(),
            "every asset is referenced by index.html"
        );
    }

    #[test]
    fn ui_has_no_inline_script_or_handlers() {
        let html = std::str::from_utf8(INDEX_HTML).unwrap();
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or("");
            assert!(open.contains("src="), "inline <script> found: {open}");
        }
        assert!(!html.contains("<style"), "inline <style> found");
        assert!(!html.contains(" style="), "inline style attribute found");
        let lower = html.to_ascii_lowercase();
        for handler in [
            " onclick=",
            " onload=",
            " onsubmit=",
            " onchange=",
            " oninput=",
        ] {
            assert!(!lower.contains(handler), "inline handler {handler} found");
        }
        assert!(
            !lower.contains("http://") && !lower.contains("https://"),
            "no CDN links"
        );
    }
}
