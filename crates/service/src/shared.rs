//! What the manager, the workers and the HTTP handlers share: the streams'
//! views, the metrics, the API's health, and the nudge a hook gives.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::streams::Streams;

pub(crate) struct Shared {
    pub streams: Mutex<Streams>,
    pub metrics: Metrics,
    /// Why MediaMTX's API did not answer the last poll (`None`: it did;
    /// `Some` too before the first answer).
    pub api_problem: Mutex<Option<String>>,
    /// Read MediaMTX's list now (a hook said something changed).
    pub nudge: Notify,
    /// The service is stopping: not ready for new streams.
    pub stopping: AtomicBool,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            streams: Mutex::default(),
            metrics: Metrics::new(),
            api_problem: Mutex::new(Some("MediaMTX's API has not answered yet".into())),
            nudge: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }
}
