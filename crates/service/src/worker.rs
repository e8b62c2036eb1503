//! One stream's worker as the service runs it: the ingest's `WorkerRunner`,
//! its events turned into the stream's view, the metrics and log lines
//! that carry its id, and its end reported to the manager.

use std::sync::Arc;

use ingest::{FragmentStatus, MediaKind, Stopper, StreamId, WorkerConfig, WorkerEvent, WorkerRunner};
use tokio::sync::mpsc::UnboundedSender;

use crate::metrics::{Audio, Status, Track};
use crate::shared::Shared;
use crate::streams::Received;

/// A worker's end: its stream, and why it failed, if it did.
pub(crate) type Ended = (StreamId, Option<String>);

/// In a cluster: the fence the worker asks before each write, where its
/// numbering starts, and where it says how far the numbering went.
pub(crate) struct Leased {
    pub(crate) fence: ingest::WriteFence,
    pub(crate) first_segment: u64,
    pub(crate) segments: UnboundedSender<crate::leasing::Written>,
    /// Where the previous owner's written media ended, if it said.
    pub(crate) continues_after: Option<u64>,
}

/// Starts the worker of `id`; what stops it.
pub(crate) fn spawn(
    id: StreamId,
    config: WorkerConfig,
    shared: Arc<Shared>,
    ended: UnboundedSender<Ended>,
    leased: Option<Leased>,
) -> Result<Stopper, ingest::IngestError> {
    let mut runner = WorkerRunner::new(config);
    let mut segments = None;
    if let Some(leased) = leased {
        runner = runner.fenced(leased.fence).first_segment(leased.first_segment);
        if let Some(pts) = leased.continues_after {
            runner = runner.continues_after(pts);
        }
        segments = Some(leased.segments);
    }
    let mut handle = runner.spawn()?;
    let stopper = handle.stopper();
    let mut reception = handle.reception();
    let seen = Arc::clone(&shared);
    let view_id = id.clone();
    // Ends when the worker does (its sender is dropped).
    tokio::spawn(async move {
        while reception.changed().await.is_ok() {
            let now = *reception.borrow_and_update();
            if let Some(view) = seen
                .streams
                .lock()
                .expect("streams lock")
                .by_id
                .get_mut(view_id.as_str())
            {
                view.received = Received {
                    connection: now.connection,
                    video_ms: now.video_pts_ns.map(|ns| ns / 1_000_000),
                    audio_ms: now.audio_pts_ns.map(|ns| ns / 1_000_000),
                };
            }
        }
    });
    tokio::spawn(async move {
        while let Some(event) = handle.next_event().await {
            observe(&id, &event, &shared);
            if let (Some(segments), WorkerEvent::SegmentWritten(s)) = (&segments, &event) {
                let until = (s.kind == MediaKind::Video).then(|| s.pts_ns + (s.duration_s * 1e9) as u64);
                let _ = segments.send((s.index + 1, until));
            }
        }
        // The keeper releases the lease once this is gone.
        drop(segments);
        let failure = handle.wait().await.err().map(|e| e.to_string());
        if let Some(failure) = &failure {
            shared.metrics.worker_failures.inc();
            tracing::warn!(stream = %id, "worker failed: {failure}");
        } else {
            tracing::info!(stream = %id, "worker finished");
        }
        let _ = ended.send((id, failure));
    });
    Ok(stopper)
}

/// One event: into the stream's view, the metrics and the log.
fn observe(id: &StreamId, event: &WorkerEvent, shared: &Shared) {
    if let Some(view) = shared
        .streams
        .lock()
        .expect("streams lock")
        .by_id
        .get_mut(id.as_str())
    {
        view.apply(event);
    }
    let metrics = &shared.metrics;
    match event {
        WorkerEvent::SegmentWritten(s) => {
            let track = Track {
                track: s.kind.as_str().to_owned(),
            };
            metrics.segments.get_or_create(&track).inc();
            metrics.segment_bytes.get_or_create(&track).inc_by(s.bytes);
            if s.kind == MediaKind::Video && s.index % 10 == 0 {
                tracing::debug!(stream = %id, index = s.index, "segment written");
            }
        }
        WorkerEvent::Reconnecting { reason, .. } => {
            metrics.reconnects.inc();
            tracing::debug!(stream = %id, "reconnecting: {reason}");
        }
        WorkerEvent::TracksValidated(record) => {
            tracing::info!(stream = %id, connection = record.connection, "reading the stream");
        }
        WorkerEvent::OutputSpan(span) => {
            let audio = serde_json::to_value(span.audio)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            metrics.output_spans.get_or_create(&Audio { audio }).inc();
            metrics.output_delay.observe(span.delay_ms / 1e3);
            if let Some(reason) = &span.reason {
                tracing::info!(stream = %id, index = span.index, "output span without its dub: {reason}");
            }
        }
        WorkerEvent::OutputEnded {
            failure: Some(failure),
            ..
        } => {
            tracing::warn!(stream = %id, "output failed: {failure}");
        }
        _ => {}
    }
    if let Some(record) = event.fragment()
        && record.status.is_final()
    {
        let status = match record.status {
            FragmentStatus::Processed => "processed",
            FragmentStatus::Failed => "failed",
            _ => "not_sent",
        };
        metrics
            .fragments
            .get_or_create(&Status {
                status: status.to_owned(),
            })
            .inc();
        if let Some(ms) = record.round_trip_ms {
            metrics.sts_round_trip.observe(ms / 1e3);
        }
    }
}
