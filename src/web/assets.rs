//! The pages' static files, in the binary: one stylesheet, htmx
//! (vendored from the npm package `htmx.org`, BSD-0) and the enrolment
//! page's few lines. Each is served at a
//! URL holding a hash of its content, cached for a year (`immutable`): a
//! new build's file has a new URL. htmx goes gzipped to clients that take
//! it (about 17 KB instead of 52).

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

/// One file: its name stem and extension, content type, bytes, and a
/// gzipped copy when there is one.
struct Asset {
    stem: &'static str,
    ext: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    gzip: Option<&'static [u8]>,
}

const ASSETS: [Asset; 3] = [
    Asset {
        stem: "style",
        ext: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/style.css"),
        gzip: None,
    },
    Asset {
        stem: "htmx",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
        gzip: Some(include_bytes!("../../assets/vendor/htmx-2.0.11.min.js.gz")),
    },
    Asset {
        stem: "enrol",
        ext: "js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/enrol.js"),
        gzip: None,
    },
];

/// The route of the files.
pub const PATH: &str = "/assets/{name}";

/// Where the pages link their files: `/assets/<stem>.<hash>.<ext>`.
#[derive(Debug)]
pub struct AssetUrls {
    /// The stylesheet's.
    pub style: String,
    /// htmx's.
    pub htmx: String,
    /// The operator enrolment page's (the link's token into the form).
    pub enrol: String,
}

fn names() -> &'static [String; 3] {
    static NAMES: OnceLock<[String; 3]> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS.each_ref().map(|a| {
            let hash = Sha256::digest(a.bytes);
            let short: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
            format!("{}.{short}.{}", a.stem, a.ext)
        })
    })
}

/// The URLs of this build's files.
pub fn urls() -> &'static AssetUrls {
    static URLS: OnceLock<AssetUrls> = OnceLock::new();
    URLS.get_or_init(|| {
        let [style, htmx, enrol] = names();
        AssetUrls {
            style: format!("/assets/{style}"),
            htmx: format!("/assets/{htmx}"),
            enrol: format!("/assets/{enrol}"),
        }
    })
}

/// `GET /assets/{name}`: this build's file of that name, else 404.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let i = names()
        .iter()
        .position(|n| *n == name)
        .ok_or(ApiError::NotFound)?;
    let asset = &ASSETS[i];
    let gzip_ok = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = match (asset.gzip, gzip_ok) {
        (Some(gz), true) => {
            let mut r = (StatusCode::OK, gz).into_response();
            r.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        _ => (StatusCode::OK, asset.bytes).into_response(),
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
