//! The service's HTTP face (axum):
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /readyz` | 200 while MediaMTX's API answers; 503 with the reason otherwise, or while stopping |
//! | `GET /metrics` | the Prometheus text exposition (OpenMetrics) |
//! | `GET /v1/streams` | each stream's worker state, segments, fragments, output and last error; paths refused |
//! | `POST /v1/hooks/{event}?path=P` | a MediaMTX hook (`ready`, `not-ready`, `ready-restart`, `available`, `unavailable`): reads MediaMTX's list at once |
//!
//! A hook only hurries the next read of MediaMTX's list: the list stays the
//! truth, so a lost, repeated or reordered hook changes nothing else.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::shared::Shared;

/// The hook names MediaMTX's settings use, in the URL's spelling:
/// `runOnReady` is `ready`, and so on.
pub const HOOK_EVENTS: [&str; 5] = ["ready", "not-ready", "ready-restart", "available", "unavailable"];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/streams", get(streams))
        .route("/v1/hooks/{event}", post(hook))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.stopping.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the service is stopping\n",
        )
            .into_response();
    }
    match shared.api_problem.lock().expect("api lock").clone() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(problem) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {problem}\n")).into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

async fn streams(State(shared): State<Arc<Shared>>) -> Response {
    let view = shared.streams.lock().expect("streams lock").view();
    axum::Json(view).into_response()
}

#[derive(Deserialize)]
struct HookQuery {
    path: Option<String>,
}

async fn hook(
    State(shared): State<Arc<Shared>>,
    Path(event): Path<String>,
    Query(query): Query<HookQuery>,
) -> Response {
    if !HOOK_EVENTS.contains(&event.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "no hook '{event}'; expected one of {}, as /v1/hooks/<event>?path=$MTX_PATH\n",
                HOOK_EVENTS.join(", ")
            ),
        )
            .into_response();
    }
    tracing::debug!(hook = %event, path = query.path.as_deref().unwrap_or("?"), "hook: reading MediaMTX's list now");
    shared.nudge.notify_one();
    (StatusCode::ACCEPTED, "reading MediaMTX's list now\n").into_response()
}
