//! Delivery of the written audio segments to the speech-to-speech (STS)
//! service, when the configuration has an `sts` section.
//!
//! ```text
//! session -> segment writer -> SegmentWritten ─┬─> owner
//!                                              └─> tap: StsHandle::submit (never waits)
//! sts client task -> StsEvent -> recorder ─┬─> manifest: {"record":"fragment",...}
//!                                          └─> owner: fragment_sent/acked/processed/failed/not_sent
//! ```
//!
//! The segmenter and the writer know nothing of it: the worker's event sink
//! is tapped, and every `segment_written` for audio becomes a submission.
//! With `sts.format: pcm_s16le` the client is given a GStreamer
//! [`decoder::SegmentDecoder`], which it runs on a blocking thread when a
//! fragment's turn to be sent comes: decoding never happens on the
//! session's streaming threads, and the sts crate links no GStreamer.
//!
//! One STS stream per worker run: it starts with the worker and ends
//! (`stream:end`) when the worker finishes, whether the stream ended or it
//! was stopped. An RTMP reconnect within the run carries on the same STS
//! stream, as the segment numbering does.
//!
//! The sts client needs a Tokio runtime while the worker runs on its own
//! thread: the caller's multi-threaded runtime when `spawn` was called in
//! one, else a one-thread runtime of its own (a current-thread runtime only
//! runs tasks while its owner's thread awaits, which a worker cannot rely
//! on).

mod decoder;
mod record;
mod settings;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sts::{Fragment, StsClient, StsEvent, StsHandle};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

pub use settings::{StsAudioFormat, StsSettings};

use crate::config::WorkerConfig;
use crate::error::IngestError;
use crate::events::{EventSink, Tap, WorkerEvent};
use crate::manifest::{Manifest, ManifestEntry, SegmentRecord};
use crate::media::MediaKind;
use decoder::SegmentDecoder;

/// Beyond the end timeout, what `stream:end` and the last events may take
/// (a websocket write is bounded by the client's write timeout).
const END_MARGIN: Duration = Duration::from_secs(5);

pub(crate) struct Dubbing {
    runtime: RuntimeRef,
    /// Shared with the tap; taken at the end so later segments (none are
    /// expected) are not submitted to an ended stream.
    handle: Arc<Mutex<Option<StsHandle>>>,
    recorder: JoinHandle<Result<(), IngestError>>,
    stream_dir: PathBuf,
    end_bound: Duration,
}

enum RuntimeRef {
    Borrowed(Handle),
    Owned(Runtime),
}

impl RuntimeRef {
    fn new(caller: Option<Handle>) -> Result<Self, IngestError> {
        if let Some(handle) = caller.filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread) {
            return Ok(Self::Borrowed(handle));
        }
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ingest-sts")
            .enable_all()
            .build()
            .map(Self::Owned)
            .map_err(|e| IngestError::Sts(format!("cannot start its runtime: {e}")))
    }

    fn handle(&self) -> &Handle {
        match self {
            Self::Borrowed(handle) => handle,
            Self::Owned(runtime) => runtime.handle(),
        }
    }
}

impl Dubbing {
    /// Starts the stream's STS client; `events` receives its reports.
    pub(crate) fn start(
        config: &WorkerConfig,
        settings: &StsSettings,
        caller: Option<Handle>,
        events: EventSink,
        fence: Option<crate::fence::WriteFence>,
    ) -> Result<Self, IngestError> {
        let runtime = RuntimeRef::new(caller)?;
        let stream_dir = config.stream_dir();
        std::fs::create_dir_all(&stream_dir).map_err(|e| IngestError::io(&stream_dir, e))?;
        let manifest = Manifest::open(&stream_dir)?.fenced(fence);
        let client_config = settings.client_config(config.segment_duration);
        let end_bound = client_config.timeouts.end + client_config.timeouts.write + END_MARGIN;
        let worker_id = format!("ingest-{}", std::process::id());
        let (handle, sts_events) = {
            let _entered = runtime.handle().enter();
            let stream_id = config.stream_id.as_str();
            match settings.format {
                StsAudioFormat::Aac => StsClient::start(client_config, stream_id, worker_id),
                StsAudioFormat::PcmS16le => {
                    let decoder = Arc::new(SegmentDecoder::new()?);
                    StsClient::start_with_decoder(client_config, stream_id, worker_id, decoder)
                }
            }
            .map_err(|e| IngestError::Sts(e.to_string()))?
        };
        let recorder = runtime.handle().spawn(record(sts_events, manifest, events));
        Ok(Self {
            runtime,
            handle: Arc::new(Mutex::new(Some(handle))),
            recorder,
            stream_dir,
            end_bound,
        })
    }

    /// Submits every audio segment written, as it is announced.
    pub(crate) fn tap(&self) -> Tap {
        let handle = self.handle.clone();
        let dir = self.stream_dir.clone();
        Arc::new(move |event: &WorkerEvent| {
            let WorkerEvent::SegmentWritten(segment) = event else {
                return;
            };
            if segment.kind != MediaKind::Audio {
                return;
            }
            let handle = handle.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sts) = handle.as_ref() {
                // A refusal is reported by the client as `fragment_not_sent`
                // (and recorded); the segment stays on disk either way.
                let _ = sts.submit(fragment(&dir, segment));
            }
        })
    }

    /// Ends the STS stream and waits, bounded, for its last records: every
    /// fragment then has its final status in the manifest.
    pub(crate) fn finish(self) -> Result<(), IngestError> {
        let Self {
            runtime,
            handle,
            recorder,
            end_bound,
            ..
        } = self;
        let sts = handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        let ended = runtime.handle().block_on(async move {
            tokio::time::timeout(end_bound, async move {
                if let Some(sts) = sts {
                    // The summary also arrives as `sts_ended`, through the recorder.
                    sts.end().await;
                }
                recorder.await
            })
            .await
        });
        match ended {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(e)) => Err(IngestError::Sts(format!(
                "its recorder task ended abnormally: {e}"
            ))),
            Err(_) => {
                tracing::warn!(
                    "the STS stream did not end within {}; finishing without its last records",
                    humantime::format_duration(end_bound)
                );
                Ok(())
            }
        }
    }
}

/// The manifest's facts about a written audio segment, as the STS gets them.
fn fragment(dir: &Path, segment: &SegmentRecord) -> Fragment {
    Fragment {
        sequence_number: segment.index,
        path: dir.join(&segment.file),
        start: Duration::from_secs_f64(segment.start_s.max(0.0)),
        duration: Duration::from_secs_f64(segment.duration_s.max(0.0)),
        pts_ns: segment.pts_ns,
    }
}

/// Writes each fragment step to the manifest and passes every report on,
/// until the client's last event. A manifest write that fails is reported
/// at the end rather than stopping the reports.
async fn record(
    mut events: UnboundedReceiver<StsEvent>,
    mut manifest: Manifest,
    sink: EventSink,
) -> Result<(), IngestError> {
    let mut settled = record::Settled::default();
    let mut failure = None;
    while let Some(event) = events.recv().await {
        let Some(event) = record::worker_event(event) else {
            continue;
        };
        if let Some(step) = event.fragment() {
            if !settled.admit(step) {
                tracing::debug!(
                    index = step.index,
                    "a second final status for a fragment; ignored"
                );
                continue;
            }
            // A one-line append to the page cache: not worth a blocking
            // thread, and it keeps the records in the events' order.
            if let Err(e) = manifest.append(&ManifestEntry::Fragment(step.clone())) {
                tracing::error!(error = %e, "cannot record a fragment in the manifest");
                failure.get_or_insert(e);
            }
        }
        sink.emit(event);
    }
    failure.map_or(Ok(()), Err)
}
