//! The web layer: the HTTP API, the WebSocket and the built page over a [`Studio`], all behind one
//! guard. Routes are documented in `docs/API.md`.
//!
//! - [`guard`]: host allow-list, same-origin and content-type checks, the token, security headers;
//! - [`routes`]: the `/api` handlers, each a thin call into the studio off the async workers;
//! - [`run_list`]: `GET /api/runs` from a cache of ready-made (and gzipped) answers;
//! - [`socket`]: the `/ws` session;
//! - [`error`]: the JSON error body every refusal and fault is answered with;
//! - [`listener`]: the accept loop with its timeouts and connection cap;
//! - [`assets`]: the built page, precompressed and cached.

pub mod assets;
mod error;
mod guard;
mod listener;
mod routes;
mod run_list;
mod socket;

pub use error::ApiError;
pub use guard::{check_access, AccessError, MIN_TOKEN_LENGTH};
pub use listener::{serve, ConnectionLimits};
pub use routes::{BATCH_BODY_LIMIT, IMAGE_BODY_LIMIT, JSON_BODY_LIMIT, MAX_BATCH_IMAGES};
pub use socket::WEBSOCKET_MESSAGE_LIMIT;

use crate::studio::Studio;
use axum::routing::get;
use axum::{Extension, Router};
use std::path::PathBuf;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// How the web layer is set up.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Folder of the built page served at `/`; without it only the API is served.
    pub ui_dir: Option<PathBuf>,
    /// When set, every request must carry it: as a bearer token, the cookie the link sets, or `?token=`.
    pub token: Option<String>,
    /// Host names (optionally `name:port`) answered besides loopback names and IP addresses, e.g. the
    /// name of a reverse proxy in front of the studio.
    pub allowed_hosts: Vec<String>,
    /// Timeouts and the connection cap.
    pub limits: ConnectionLimits,
}

/// The whole application: API, WebSocket and, when `options.ui_dir` is given, the built page at `/`.
/// `/api/...` and `/ws` never fall through to the page.
pub fn app(studio: Studio, options: ServerOptions) -> Router {
    let scrubber = error::PathScrubber::new(studio.settings());
    let api = routes::api()
        .route("/ws", get(socket::websocket))
        .route("/ws/{*rest}", axum::routing::any(routes::not_found))
        .layer(axum::middleware::from_fn_with_state(scrubber.clone(), error::json_refusals))
        .layer(Extension(scrubber))
        .layer(Extension(options.limits.clone()))
        .layer(Extension(run_list::RunListCache::default()));
    let router = match &options.ui_dir {
        Some(dir) => api.fallback_service(assets::service(dir)),
        None => api.fallback(routes::not_found),
    };
    guarded(router.with_state(studio), &options)
}

/// Wraps `router` in what every answer goes through: the guard (and its headers) outside, then a
/// catch for panics that answers a 500 sentence, and request tracing that never records the query
/// (it may hold the token).
pub fn guarded(router: Router, options: &ServerOptions) -> Router {
    let checks = guard::Guard::new(&options.allowed_hosts, options.token.clone());
    router
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(checks, guard::guard))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }))
}
