//! The part of MediaMTX's Control API (v3) that harnesses use, with its
//! routes, status codes, error bodies and JSON shapes:
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v3/paths/list?itemsPerPage=&page=` | paths with a stream |
//! | `GET /v3/paths/get/<name>` | one path; 404 `path not found` |
//! | `GET /v3/rtmpconns/list` | connections, oldest first |
//! | `GET /v3/rtmpconns/get/<id>` | one connection; 400 bad id, 404 unknown |
//! | `POST /v3/rtmpconns/kick/<id>` | closes it: `{"status":"ok"}` |
//!
//! Clients outside [`crate::ApiAccess`] get 401 with MediaMTX's body, as a
//! real MediaMTX answers requests through a Docker port mapping.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::connection::Shared;
use crate::info::ItemList;
use crate::registry::LookupError;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3/paths/list", get(paths_list))
        .route("/v3/paths/get/{*name}", get(paths_get))
        .route("/v3/rtmpconns/list", get(conns_list))
        .route("/v3/rtmpconns/get/{id}", get(conns_get))
        .route("/v3/rtmpconns/kick/{id}", post(conns_kick))
        .layer(middleware::from_fn_with_state(shared.clone(), authorize))
        .with_state(shared)
}

/// `{"status":"error","error":"..."}` with a status code, logged as MediaMTX
/// logs API errors (`ERR [API] ...`).
struct ApiError {
    status: StatusCode,
    message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    status: &'static str,
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            status: "error",
            error: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

fn fail(shared: &Shared, status: StatusCode, message: impl Into<String>) -> ApiError {
    let message = message.into();
    shared.log.api_error(&message);
    ApiError { status, message }
}

fn lookup_failed(shared: &Shared, e: LookupError) -> ApiError {
    let status = match e {
        LookupError::InvalidId(_) => StatusCode::BAD_REQUEST,
        LookupError::NotFound => StatusCode::NOT_FOUND,
    };
    fail(shared, status, e.to_string())
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if shared.config.api_access.allows(peer.ip()) {
        return next.run(request).await;
    }
    let body = ErrorBody {
        status: "error",
        error: "authentication error",
    };
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"mediamtx\""),
    );
    response
}

/// MediaMTX's paging: `itemsPerPage` (default 100) and a 0-based `page`.
fn paginate<T>(
    shared: &Shared,
    items: Vec<T>,
    query: &HashMap<String, String>,
) -> Result<ItemList<T>, ApiError> {
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| {
                fail(
                    shared,
                    StatusCode::BAD_REQUEST,
                    format!("strconv.ParseUint: parsing \"{text}\": invalid syntax"),
                )
            }),
        }
    };
    let per_page = number("itemsPerPage", 100)?;
    if per_page == 0 {
        return Err(fail(shared, StatusCode::BAD_REQUEST, "invalid items per page"));
    }
    let page = number("page", 0)?;
    let item_count = items.len();
    let page_count = item_count.div_ceil(per_page);
    let items = items
        .into_iter()
        .skip(page.saturating_mul(per_page))
        .take(per_page)
        .collect();
    Ok(ItemList {
        item_count,
        page_count,
        items,
    })
}

async fn paths_list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let paths = shared.registry.paths();
    Ok(Json(paginate(&shared, paths, &query)?))
}

async fn paths_get(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if name.is_empty() {
        return Err(fail(&shared, StatusCode::BAD_REQUEST, "invalid name"));
    }
    match shared.registry.path(&name) {
        Some(path) => Ok(Json(path)),
        None => Err(fail(&shared, StatusCode::NOT_FOUND, "path not found")),
    }
}

async fn conns_list(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<impl IntoResponse, ApiError> {
    let conns = shared.registry.connections();
    Ok(Json(paginate(&shared, conns, &query)?))
}

async fn conns_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    shared
        .registry
        .connection(&id)
        .map(Json)
        .map_err(|e| lookup_failed(&shared, e))
}

#[derive(Serialize)]
struct Ok {
    status: &'static str,
}

async fn conns_kick(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    shared
        .registry
        .kick_uuid(&id)
        .map(|()| Json(Ok { status: "ok" }))
        .map_err(|e| lookup_failed(&shared, e))
}
