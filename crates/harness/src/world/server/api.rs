//! A client of MediaMTX's Control API (v3), for a real MediaMTX and for the
//! embedded server, which answers with the same JSON (the types are shared
//! with `rtmp_server`). Built on `reqwest`.

use std::time::Duration;

use reqwest::StatusCode;
use rtmp_server::{ConnInfo, ItemList, PathInfo};

/// Every request must be answered within this; a server that does not
/// answer is an error, never a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{url}: no answer: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: {status}: {body}")]
    Status {
        url: String,
        status: StatusCode,
        body: String,
    },
    #[error("{url}: the answer is not what MediaMTX sends: {source}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// An answer as the server gave it.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// `base` is `http://host:port`.
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a client without TLS always builds");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn paths(&self) -> Result<ItemList<PathInfo>, ApiError> {
        self.get("/v3/paths/list").await
    }

    /// `None` when the path does not exist (404).
    pub async fn path(&self, name: &str) -> Result<Option<PathInfo>, ApiError> {
        match self.get(&format!("/v3/paths/get/{name}")).await {
            Err(ApiError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => Ok(None),
            other => other.map(Some),
        }
    }

    pub async fn rtmp_conns(&self) -> Result<ItemList<ConnInfo>, ApiError> {
        self.get("/v3/rtmpconns/list").await
    }

    /// Closes one RTMP connection (`POST /v3/rtmpconns/kick/<id>`).
    pub async fn kick(&self, id: &str) -> Result<(), ApiError> {
        let (url, response) = self
            .send(reqwest::Method::POST, &format!("/v3/rtmpconns/kick/{id}"))
            .await?;
        check(url, response).await.map(drop)
    }

    /// Any request, answered as it came: status, headers and body, for
    /// checks of the answer's exact form.
    pub async fn raw(&self, method: reqwest::Method, route: &str) -> Result<RawAnswer, ApiError> {
        let (url, response) = self.send(method, route).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|source| ApiError::Decode { url, source })?;
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, route: &str) -> Result<T, ApiError> {
        let (url, response) = self.send(reqwest::Method::GET, route).await?;
        let response = check(url.clone(), response).await?;
        response
            .json()
            .await
            .map_err(|source| ApiError::Decode { url, source })
    }

    /// Sends one request to `route`; the answer whatever its status, with
    /// the URL it came from.
    async fn send(
        &self,
        method: reqwest::Method,
        route: &str,
    ) -> Result<(String, reqwest::Response), ApiError> {
        let url = format!("{}{route}", self.base);
        match self.http.request(method, &url).send().await {
            Ok(response) => Ok((url, response)),
            Err(source) => Err(ApiError::Unreachable { url, source }),
        }
    }
}

async fn check(url: String, response: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(ApiError::Status { url, status, body })
}
