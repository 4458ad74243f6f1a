//! The console's files, compiled into the binary from `crates/gateway/console/`: served with an
//! `ETag` (a hash of the bytes, so a browser revalidates with `If-None-Match` and gets 304) and
//! `Cache-Control: no-cache` for the page and its own modules, which change with the server;
//! the vendored `cometd` client sits under its version's path and is cached for a year.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::OnceLock;

/// A file of the console.
struct Asset {
    /// Its path under `/console/`.
    path: &'static str,
    /// Its `Content-Type`.
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $mime:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
        }),*]
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Where the vendored `cometd` client is (its version in the path: cached for good).
const VENDOR: &str = "vendor/";

static ASSETS: &[Asset] = assets![
    "index.html" => HTML,
    "console.css" => CSS,
    "icon.svg" => SVG,
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/live.js" => JS,
    "js/table.js" => JS,
    "js/agent.js" => JS,
    "js/details.js" => JS,
    "js/supervisor.js" => JS,
    "js/operator.js" => JS,
    "js/metrics.js" => JS,
    "vendor/cometd-9.0.0/LICENSE" => TEXT,
    "vendor/cometd-9.0.0/Client.js" => JS,
    "vendor/cometd-9.0.0/Transport.js" => JS,
    "vendor/cometd-9.0.0/TransportRegistry.js" => JS,
    "vendor/cometd-9.0.0/RequestTransport.js" => JS,
    "vendor/cometd-9.0.0/LongPollingTransport.js" => JS,
    "vendor/cometd-9.0.0/CallbackPollingTransport.js" => JS,
    "vendor/cometd-9.0.0/WebSocketTransport.js" => JS,
];

/// Each asset's ETag, in [`ASSETS`]' order (FNV-1a of the bytes, computed once).
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    })
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            format!("no console file {path:?}\n"),
        )
            .into_response();
    };
    let etag = etags().get(i).map_or("", String::as_str);
    let cache = if path.starts_with(VENDOR) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.mime)], asset.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    response
}

/// `GET /console`: to `/console/` (the page's modules are relative to it).
pub(super) async fn redirect() -> Redirect {
    Redirect::permanent("/console/")
}

/// `GET /console/`: the page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /console/{file}`.
pub(super) async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn every_import_of_a_module_is_served() {
        for a in ASSETS.iter().filter(|a| a.mime == JS) {
            let text = std::str::from_utf8(a.body).unwrap();
            let dir = a.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['"', '\'']).nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|x| x.path == target),
                    "{} imports {spec} ({target}), which is not served",
                    a.path
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!page.contains("<style"), "inline <style> in index.html");
        assert!(!page.contains(" style="), "a style attribute in index.html");
        for script in page.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(tag.contains("src="), "an inline <script> in index.html");
        }
        // No `onclick=` and the like.
        for (i, _) in page.match_indices(" on") {
            let name: String = page[i + 3..]
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            let next = page[i + 3 + name.len()..].chars().next();
            assert!(
                name.is_empty() || next != Some('='),
                "an inline event handler (on{name}=) in index.html"
            );
        }
    }
}
