//! `WorkerRunner`: connect -> validate -> ingest, reconnecting with backoff
//! when the stream is missing or drops, and never after a refusal.
//!
//! The loop runs on a dedicated OS thread: rtmpsrc blocks in its state change
//! while connecting, which must never stall an async runtime. Owners talk to
//! it through [`WorkerHandle`]: an event stream, a stop request, a result.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::{mpsc, oneshot};

use crate::config::WorkerConfig;
use crate::dubbing::Dubbing;
use crate::error::IngestError;
use crate::events::{EventSink, WorkerEvent};
use crate::fence::WriteFence;
use crate::output::{Output, OutputFeed};
use crate::rtmp_url::RtmpUrl;
use crate::segment_writer::SegmentWriter;
use crate::session::{Reception, Session, SessionEnd};
use crate::teardown::Teardowns;

/// How long a finishing worker waits for its pipelines to be taken down.
/// A teardown takes milliseconds, except rtmpsrc's on a stalled stream,
/// which waits out librtmp's blocked read (up to 10 s). Segments are already
/// flushed by then, so a stop is not held that long: the stuck teardown is
/// reported and left to finish on its own.
const TEARDOWN_WAIT: Duration = Duration::from_secs(3);

/// What a finished run produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub video_segments: u64,
    pub audio_segments: u64,
    /// Connections that carried media.
    pub connections: u32,
}

pub struct WorkerRunner {
    config: WorkerConfig,
    stop_when_stream_ends: bool,
    fence: Option<WriteFence>,
    first_segment: u64,
    continues_after: Option<u64>,
}

impl WorkerRunner {
    pub fn new(config: WorkerConfig) -> Self {
        Self {
            config,
            stop_when_stream_ends: false,
            fence: None,
            first_segment: 0,
            continues_after: None,
        }
    }

    /// Another worker wrote the stream up to `pts_ns` (its timeline): the
    /// first connection's join record states what this one could not
    /// receive from there, as a reconnection's does.
    pub fn continues_after(mut self, pts_ns: u64) -> Self {
        self.continues_after = Some(pts_ns);
        self
    }

    /// Every write the worker makes (segments, manifest, output) is asked
    /// of `fence` first; a no stops the worker at once ([`IngestError::Fenced`]).
    pub fn fenced(mut self, fence: WriteFence) -> Self {
        self.fence = Some(fence);
        self
    }

    /// Numbers segments from `index` at least (a stream that another
    /// worker served before continues its numbering; a folder with later
    /// segments continues from those).
    pub fn first_segment(mut self, index: u64) -> Self {
        self.first_segment = index;
        self
    }

    /// Finish (successfully) once a stream that delivered media has ended,
    /// instead of waiting for it to come back.
    pub fn stop_when_stream_ends(mut self, yes: bool) -> Self {
        self.stop_when_stream_ends = yes;
        self
    }

    pub fn spawn(self) -> Result<WorkerHandle, IngestError> {
        let (event_tx, events) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let (done_tx, done) = oneshot::channel();
        let (reception_tx, reception) = tokio::sync::watch::channel(Reception::default());
        // STS delivery runs on the caller's runtime, if it has one.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name(format!("ingest-{}", self.config.stream_id))
            .spawn(move || {
                let sink = EventSink::new(event_tx);
                let result = self.run(&sink, &stop_rx, &reception_tx, runtime);
                match &result {
                    Ok(summary) => sink.emit(WorkerEvent::Finished {
                        video_segments: summary.video_segments,
                        audio_segments: summary.audio_segments,
                        connections: summary.connections,
                    }),
                    Err(e) => sink.emit(WorkerEvent::Failed {
                        kind: e.kind(),
                        error: e.to_string(),
                    }),
                }
                let _ = done_tx.send(result);
            })
            .map_err(IngestError::Spawn)?;
        Ok(WorkerHandle {
            events,
            reception,
            stop: stop_tx,
            done: Some(done),
            thread: Some(thread),
        })
    }

    /// Runs connections until the end, then waits for their pipelines to be
    /// gone, so a finished worker normally leaves no GStreamer thread behind,
    /// and for the STS stream to end, so every fragment's final status is
    /// recorded before the worker reports it finished.
    fn run(
        self,
        events: &EventSink,
        stop: &Receiver<()>,
        reception: &tokio::sync::watch::Sender<Reception>,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Result<RunSummary, IngestError> {
        // The output sees the fragments' answers (the dubbing's events) and
        // the frames; the dubbing sees the segments written.
        let output = match &self.config.output {
            Some(settings) => {
                self.config.validate()?;
                std::fs::create_dir_all(self.config.stream_dir())
                    .map_err(|e| IngestError::io(self.config.stream_dir(), e))?;
                Some(Output::start(
                    settings,
                    &self.config.stream_dir(),
                    events.clone(),
                    self.fence.clone(),
                )?)
            }
            None => None,
        };
        // The output's tap holds its feed: every sink with it must be gone
        // before the output can finish.
        let with_output = match &output {
            Some(output) => events.tapped(output.tap()),
            None => events.clone(),
        };
        let dubbing = match &self.config.sts {
            Some(settings) => {
                self.config.validate()?;
                Some(Dubbing::start(
                    &self.config,
                    settings,
                    runtime,
                    with_output.clone(),
                    self.fence.clone(),
                )?)
            }
            None => None,
        };
        let tapped = match &dubbing {
            Some(dubbing) => with_output.tapped(dubbing.tap()),
            None => with_output.clone(),
        };
        let teardowns = Teardowns::new();
        let feed = output.as_ref().map(Output::feed);
        let result = self.run_connections(&tapped, stop, reception, &teardowns, feed.as_ref());
        if !teardowns.wait(TEARDOWN_WAIT) {
            tracing::warn!(
                "a pipeline was still shutting down after {} s; finishing without it",
                TEARDOWN_WAIT.as_secs()
            );
        }
        drop(tapped);
        let dubbed = dubbing.map(Dubbing::finish);
        // After the dubbing, whose last answers the output's last spans wait
        // for; the output then lets its last frames leave at their time.
        drop(with_output);
        drop(feed);
        if let Some(output) = output {
            output.finish();
        }
        match dubbed {
            // The run's own failure is the one to report.
            Some(Err(e)) if result.is_ok() => Err(e),
            _ => result,
        }
    }

    fn run_connections(
        &self,
        events: &EventSink,
        stop: &Receiver<()>,
        reception: &tokio::sync::watch::Sender<Reception>,
        teardowns: &Teardowns,
        output: Option<&OutputFeed>,
    ) -> Result<RunSummary, IngestError> {
        self.config.validate()?;
        let url: RtmpUrl = self.config.rtmp_url()?;
        crate::gst_runtime::gst_init()?;
        crate::gst_runtime::check_elements(&[self.config.source.factory_name()])?;
        let mut writer = SegmentWriter::create(&self.config.stream_dir())?.fenced(self.fence.clone());
        let mut next_index = writer.first_free_index()?.max(self.first_segment);
        let mut counts = [0u64; 2];
        // Connections count those that carried media (as the manifest
        // numbers them); an attempt that failed keeps the number for the
        // next one.
        let mut carried = 0u32;
        let mut failures = 0u32;
        // Consecutive failures to reach the server at all: they back off
        // with the slower `unreachable` policy.
        let mut unreachable = 0u32;
        let mut received_until = self.continues_after;
        loop {
            let connection = carried + 1;
            events.emit(WorkerEvent::Connecting {
                connection,
                attempt: failures + 1,
                url: url.to_string(),
            });
            let session = Session {
                config: &self.config,
                received_until: &mut received_until,
                reception,
                url: &url,
                connection,
                writer: &mut writer,
                next_index: &mut next_index,
                counts: &mut counts,
                events,
                stop,
                teardowns,
                output,
            };
            let ended = session.run()?;
            if let Some(output) = output {
                output.connection_ended(connection);
            }
            let reason = match ended {
                SessionEnd::Stopped { carried_media } => {
                    carried += u32::from(carried_media);
                    break;
                }
                SessionEnd::Refused(refusal) => return Err(refusal.into()),
                SessionEnd::ConnectFailed(failure) => {
                    failures += 1;
                    unreachable = if failure.is_unreachable() {
                        unreachable + 1
                    } else {
                        0
                    };
                    failure.to_string()
                }
                SessionEnd::Ended { reason } => {
                    carried += 1;
                    events.emit(WorkerEvent::Disconnected {
                        connection,
                        reason: reason.clone(),
                    });
                    if self.stop_when_stream_ends {
                        break;
                    }
                    // A stream that delivered media restarts the count.
                    failures = 1;
                    unreachable = 0;
                    reason
                }
            };
            let policy = if unreachable > 0 {
                &self.config.unreachable
            } else {
                &self.config.reconnect
            };
            let attempts = if unreachable > 0 { unreachable } else { failures };
            if !self.config.reconnect.allows(failures) || !policy.allows(attempts) {
                return Err(IngestError::RetriesExhausted {
                    attempts: failures,
                    last: reason,
                });
            }
            let delay = policy.delay(attempts, fastrand::f64());
            events.emit(WorkerEvent::Reconnecting {
                attempt: failures + 1,
                delay_ms: delay.as_millis() as u64,
                reason,
            });
            if stop.recv_timeout(delay).is_ok() {
                break;
            }
        }
        Ok(RunSummary {
            video_segments: counts[0],
            audio_segments: counts[1],
            connections: carried,
        })
    }
}

/// The owner's side of a running worker.
pub struct WorkerHandle {
    events: mpsc::UnboundedReceiver<WorkerEvent>,
    reception: tokio::sync::watch::Receiver<Reception>,
    stop: Sender<()>,
    done: Option<oneshot::Receiver<Result<RunSummary, IngestError>>>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// The next event; `None` once the worker has finished and all events
    /// were read.
    pub async fn next_event(&mut self) -> Option<WorkerEvent> {
        self.events.recv().await
    }

    /// What the worker has received on its current connection, updated as
    /// frames arrive (before they are segmented).
    pub fn reception(&self) -> tokio::sync::watch::Receiver<Reception> {
        self.reception.clone()
    }

    /// Asks the worker to flush the partial segment and finish.
    pub fn stop(&self) {
        let _ = self.stop.try_send(());
    }

    /// A cloneable way to request a stop from elsewhere (a signal handler).
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Waits for the worker to finish and returns its result.
    pub async fn wait(mut self) -> Result<RunSummary, IngestError> {
        let done = self.done.take().expect("wait is called once");
        let result = done.await.unwrap_or(Err(IngestError::WorkerLost));
        if let Some(thread) = self.thread.take() {
            // The result was sent as the thread's last act; joining is quick.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        result
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // Dropping the handle stops the worker rather than orphaning it.
        self.stop();
    }
}

#[derive(Clone)]
pub struct Stopper(Sender<()>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.try_send(());
    }
}
