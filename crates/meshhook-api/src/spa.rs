//! Serving the SPA: from a directory (`MESHHOOK_SPA_DIR`, what `cargo
//! xtask dev` uses so rebuilds show on reload), from files compiled into the
//! binary (`--features embed-spa`, what `cargo xtask dist` builds), or, when
//! neither is there, a page saying how to build it. Unknown paths outside
//! `/api` and `/hooks` get `index.html` so history-mode routes survive a
//! reload.
//!
//! A release build of the SPA ships each asset next to a `<name>.gz`
//! compressed ahead of time (zopfli, `cargo xtask`); a client that accepts
//! gzip gets that file with `Content-Encoding: gzip` — no compression work
//! per request, and smaller than on-the-fly gzip.

use std::convert::Infallible;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get_service};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::Error;

/// Where the SPA's files come from.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// A built `dist/` directory on disk.
    Dir(PathBuf),
    /// Compiled into the binary (feature `embed-spa`), or the placeholder page.
    #[default]
    Embedded,
}

/// The fallback service for every path no API route matched.
pub fn service(source: &Source) -> MethodRouter<crate::Context, Infallible> {
    match source {
        Source::Dir(dir) => {
            let index = dir.join("index.html");
            let serve = ServeDir::new(dir)
                .precompressed_gzip()
                .fallback(ServeFile::new(index).precompressed_gzip());
            get_service(tower::service_fn(move |req: Request<Body>| {
                let serve = serve.clone();
                async move {
                    if is_api_path(req.uri().path()) {
                        return Ok(not_found(req.uri().path()));
                    }
                    match serve.oneshot(req).await {
                        Ok(res) => Ok(res.map(Body::new)),
                        Err(e) => Ok(Error::internal(e).into_response()),
                    }
                }
            }))
        }
        Source::Embedded => get_service(tower::service_fn(|req: Request<Body>| async move {
            if is_api_path(req.uri().path()) {
                return Ok::<_, Infallible>(not_found(req.uri().path()));
            }
            Ok(embedded::respond(req.uri().path(), accepts_gzip(&req)))
        })),
    }
}

/// Whether the request's `Accept-Encoding` allows gzip (and does not
/// refuse it with `q=0`).
fn accepts_gzip(req: &Request<Body>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path.starts_with("/hooks/")
}

fn not_found(path: &str) -> Response {
    Error::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {path}"),
    )
    .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(feature = "embed-spa")]
mod embedded {
    use super::*;

    static DIST: include_dir::Dir<'_> =
        include_dir::include_dir!("$CARGO_MANIFEST_DIR/../../frontend/dist");

    pub fn respond(path: &str, gzip: bool) -> Response {
        let rel = path.trim_start_matches('/');
        let (file, name) = match DIST.get_file(rel) {
            Some(f) => (f, rel),
            None => match DIST.get_file("index.html") {
                Some(f) => (f, "index.html"),
                None => return super::placeholder(),
            },
        };
        let cache = if name == "index.html" {
            "no-cache"
        } else {
            "public, max-age=3600"
        };
        let headers = [
            (header::CONTENT_TYPE, content_type(name)),
            (header::CACHE_CONTROL, cache),
            (header::VARY, "accept-encoding"),
        ];
        match DIST.get_file(format!("{name}.gz")) {
            Some(packed) if gzip => (
                headers,
                [(header::CONTENT_ENCODING, "gzip")],
                packed.contents(),
            )
                .into_response(),
            _ => (headers, file.contents()).into_response(),
        }
    }
}

#[cfg(not(feature = "embed-spa"))]
mod embedded {
    use super::*;

    pub fn respond(_path: &str, _gzip: bool) -> Response {
        let _ = content_type;
        super::placeholder()
    }
}

fn placeholder() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><meta charset=utf-8><title>MeshHook</title>\
         <h1>MeshHook is running</h1>\
         <p>The web app is not built into this binary. Run <code>cargo xtask dev</code> \
         (builds and serves it), set <code>MESHHOOK_SPA_DIR</code> to a built <code>frontend/dist</code>, \
         or build a release with <code>cargo xtask dist</code>.</p>\
         <p>The API is at <code>/api/v1</code>; health at <code>/healthz</code> and <code>/readyz</code>.</p>",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &[&str]) -> Request<Body> {
        let mut req = Request::builder().uri("/app.wasm");
        for a in accept {
            req = req.header(header::ACCEPT_ENCODING, *a);
        }
        req.body(Body::empty()).expect("a valid request")
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        assert!(accepts_gzip(&with(&["gzip, deflate, br, zstd"])));
        assert!(accepts_gzip(&with(&["br;q=1.0, GZIP;q=0.5"])));
        assert!(accepts_gzip(&with(&["identity", "gzip"])));
        assert!(accepts_gzip(&with(&["*"])));
        assert!(!accepts_gzip(&with(&[])));
        assert!(!accepts_gzip(&with(&["br, deflate"])));
        assert!(!accepts_gzip(&with(&["gzip;q=0, br"])));
        assert!(!accepts_gzip(&with(&["x-gzip-ish"])));
    }
}
