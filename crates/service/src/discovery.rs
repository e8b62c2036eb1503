//! What MediaMTX says is available: its Control API's path list, read page
//! by page (`/v3/paths/list?itemsPerPage=&page=`). The stock image has no
//! shell or curl, so hooks cannot be relied on: the list is the truth, read
//! every poll interval and at once when a hook says something changed.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ApiError;

/// Paths asked for per page: MediaMTX's own default.
const PER_PAGE: usize = 100;
/// An API that does not answer within this is down for this poll.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// More pages than this is not a path list a server would give.
const MAX_PAGES: usize = 1000;

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default, rename = "pageCount")]
    page_count: usize,
    #[serde(default)]
    items: Vec<Item>,
}

/// A path, as much as the service needs of it (`ready` is the name MediaMTX
/// used before `available`).
#[derive(Debug, Deserialize)]
struct Item {
    name: String,
    #[serde(default)]
    available: Option<bool>,
    #[serde(default)]
    ready: Option<bool>,
}

pub(crate) struct Discovery {
    client: reqwest::Client,
    base: String,
}

impl Discovery {
    /// `api` is MediaMTX's API root, e.g. `http://mediamtx:9997`.
    pub(crate) fn new(api: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(ANSWER_TIMEOUT)
                .build()
                .expect("a plain HTTP client builds"),
            base: api.trim_end_matches('/').to_owned(),
        }
    }

    /// Every path with an available stream, in MediaMTX's order.
    pub(crate) async fn available(&self) -> Result<Vec<String>, ApiError> {
        let mut names = Vec::new();
        let mut page = 0;
        loop {
            let url = format!("{}/v3/paths/list?itemsPerPage={PER_PAGE}&page={page}", self.base);
            let answer = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| ApiError::Unreachable {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            let status = answer.status();
            let body = answer.text().await.map_err(|e| ApiError::Unreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if !status.is_success() {
                return Err(ApiError::Status {
                    url,
                    status: status.as_u16(),
                    body: body.chars().take(200).collect(),
                });
            }
            let listed: Page = serde_json::from_str(&body).map_err(|e| ApiError::Shape {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            names.extend(
                listed
                    .items
                    .into_iter()
                    .filter(|item| item.available.or(item.ready).unwrap_or(true))
                    .map(|item| item.name),
            );
            page += 1;
            if page >= listed.page_count.min(MAX_PAGES) {
                return Ok(names);
            }
        }
    }
}
