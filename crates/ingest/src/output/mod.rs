//! The dubbed output, when the configuration has an `output` section: the
//! input's video, codec copy, with the dubbed audio, published over RTMP
//! (`live/<id>/out`) a constant delay behind the input.
//!
//! ```text
//! session ── frames (as the segmenter places them) ──┐
//! event tap ── fragment processed / failed / not sent ─┤──► output thread: schedule ──► publisher
//! runner ── a connection ended ───────────────────────┘       (pure: when, which audio)  (GStreamer)
//! ```
//!
//! The output thread holds each frame for the delay ([`schedule`]), decides
//! each audio span's audio when its first frame is due (the dub if it came,
//! else the fallback, recorded in the manifest as `{"record":"output"}` and
//! said as an `output_span` event), and publishes ([`publisher`]) one RTMP
//! publish per input connection: when the input ends, the output ends after
//! its last span; when it returns, a new publish starts on the same path.
//! The input never waits on the output: frames go over an unbounded channel
//! that the delay bounds (a few seconds of media), and a publish that fails
//! is started again at the next keyframe.

mod audio;
mod publisher;
mod schedule;
mod settings;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, select};

pub use publisher::OUTPUT_ELEMENTS;
pub use schedule::SpanAudio;
pub use settings::{DEFAULT_STS_BUDGET, Fallback, OutputSettings};

use crate::error::IngestError;
use crate::events::{EventSink, Tap, WorkerEvent};
use crate::manifest::{Manifest, ManifestEntry, OutputRecord};
use crate::media::MediaKind;
use crate::rtmp_url::RtmpUrl;
use audio::AacFormat;
pub(crate) use schedule::OutFrame;
use schedule::{Release, Schedule};

/// How long an ending publish may take to pass its end to the server.
const END_TIMEOUT: Duration = Duration::from_secs(5);
/// A publish that failed is not tried again sooner than this.
const RETRY_AFTER: Duration = Duration::from_secs(1);

enum Input {
    Frame(OutFrame),
    Dub { segment: u64, path: PathBuf },
    NoDub { segment: u64, reason: String },
    ConnectionEnded(u32),
}

/// Where the session sends its frames.
#[derive(Clone)]
pub(crate) struct OutputFeed(Sender<Input>);

impl OutputFeed {
    pub fn frame(&self, frame: OutFrame) {
        let _ = self.0.send(Input::Frame(frame));
    }

    pub fn connection_ended(&self, connection: u32) {
        let _ = self.0.send(Input::ConnectionEnded(connection));
    }
}

pub(crate) struct Output {
    feed: Sender<Input>,
    stream_dir: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Output {
    pub fn start(
        settings: &OutputSettings,
        stream_dir: &Path,
        events: EventSink,
        fence: Option<crate::fence::WriteFence>,
    ) -> Result<Self, IngestError> {
        crate::gst_runtime::check_elements(&OUTPUT_ELEMENTS)?;
        crate::gst_runtime::check_elements(&audio::AUDIO_ELEMENTS)?;
        let (feed, inputs) = crossbeam_channel::unbounded();
        let manifest = Manifest::open(stream_dir)?.fenced(fence.clone());
        let world = OutputThread {
            fence,
            url: settings.url.clone(),
            schedule: Schedule::new(settings.delay_rule(), settings.fallback),
            format: None,
            current: None,
            pictures: 0,
            retry_at: None,
            ended: Vec::new(),
            events,
            manifest,
        };
        let thread = std::thread::Builder::new()
            .name("ingest-output".into())
            .spawn(move || world.run(&inputs))
            .map_err(IngestError::Spawn)?;
        Ok(Self {
            feed,
            stream_dir: stream_dir.to_owned(),
            thread: Some(thread),
        })
    }

    pub fn feed(&self) -> OutputFeed {
        OutputFeed(self.feed.clone())
    }

    /// Sees the worker's events: a fragment's answer, or that it will have
    /// none, becomes its span's dub (or its absence).
    pub fn tap(&self) -> Tap {
        let feed = self.feed.clone();
        let dir = self.stream_dir.clone();
        std::sync::Arc::new(move |event: &WorkerEvent| {
            let input = match event {
                WorkerEvent::FragmentProcessed(r) => match &r.dubbed_file {
                    Some(file) => Input::Dub {
                        segment: r.index,
                        path: dir.join(file),
                    },
                    None => return,
                },
                WorkerEvent::FragmentFailed(r) | WorkerEvent::FragmentNotSent(r) => Input::NoDub {
                    segment: r.index,
                    reason: r
                        .reason
                        .clone()
                        .unwrap_or_else(|| "the STS gave no dub".to_owned()),
                },
                _ => return,
            };
            let _ = feed.send(input);
        })
    }

    /// Ends the output once every frame fed has left (at its time) and the
    /// last publish has ended.
    pub fn finish(mut self) {
        drop(self.feed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct OutputThread {
    /// Asked before each frame goes out: a fenced output ends its publish.
    fence: Option<crate::fence::WriteFence>,
    url: RtmpUrl,
    schedule: Schedule,
    /// The input's audio format, from its first audio frame.
    format: Option<AacFormat>,
    /// The publish under way, and the input connection it carries.
    current: Option<(u32, publisher::Publisher)>,
    /// Pictures the publish under way has sent.
    pictures: u64,
    retry_at: Option<Instant>,
    /// Input connections that have ended.
    ended: Vec<u32>,
    events: EventSink,
    manifest: Manifest,
}

impl OutputThread {
    fn run(mut self, inputs: &Receiver<Input>) {
        let mut open = true;
        while open || !self.schedule.is_empty() {
            let due = self
                .schedule
                .next_due()
                .map_or_else(crossbeam_channel::never, crossbeam_channel::at);
            let inputs = if open {
                inputs.clone()
            } else {
                crossbeam_channel::never()
            };
            select! {
                recv(inputs) -> input => match input {
                    Ok(input) => self.take(input),
                    Err(_) => {
                        // What is queued must leave: its delay is known now.
                        self.schedule.input_closed();
                        open = false;
                    }
                },
                recv(due) -> _ => {
                    for release in self.schedule.release(Instant::now()) {
                        match release {
                            Release::Frame(frame) => self.publish(&frame),
                            Release::Decided(decision) => self.record(decision),
                        }
                    }
                    self.end_if_done();
                }
            }
        }
        self.end_publish(None);
    }

    fn take(&mut self, input: Input) {
        match input {
            Input::Frame(frame) => {
                if frame.kind == MediaKind::Audio && self.format.is_none() {
                    self.learn_format(&frame.data);
                }
                let learning = self.schedule.delay().is_none();
                self.schedule.push(frame);
                if let Some(delay) = self.schedule.delay().filter(|_| learning) {
                    tracing::info!(
                        "the output runs {delay:?} behind the input (the first segment, plus {:?} for the STS)",
                        settings::DEFAULT_STS_BUDGET
                    );
                }
            }
            Input::Dub { segment, path } => match self.format {
                Some(format) => match audio::dub_frames(&path, format) {
                    Ok(frames) => self.schedule.dub(segment, frames),
                    Err(reason) => self
                        .schedule
                        .no_dub(segment, format!("the dub cannot be used: {reason}")),
                },
                None => self
                    .schedule
                    .no_dub(segment, "the input's audio format is not known".into()),
            },
            Input::NoDub { segment, reason } => self.schedule.no_dub(segment, reason),
            Input::ConnectionEnded(connection) => {
                self.schedule.connection_ended();
                self.ended.push(connection);
                self.end_if_done();
            }
        }
    }

    /// The stream's audio format, and its silence, from its first frame.
    fn learn_format(&mut self, frame: &Bytes) {
        let Some(format) = AacFormat::of_adts(frame) else {
            return;
        };
        self.format = Some(format);
        match audio::silent_frame(format) {
            Ok(silence) => self.schedule.set_silence(silence),
            Err(e) => tracing::warn!("no silence for the output's padding and fallback: {e}"),
        }
    }

    fn publish(&mut self, frame: &OutFrame) {
        if let Err(fenced) = crate::fence::check(self.fence.as_ref()) {
            // Dropped, not ended: an end of stream is a write too.
            if let Some((connection, publisher)) = self.current.take() {
                drop(publisher);
                self.events.emit(WorkerEvent::OutputEnded {
                    connection,
                    failure: Some(fenced.to_string()),
                    pictures: std::mem::take(&mut self.pictures),
                });
            }
            return;
        }
        if self
            .current
            .as_ref()
            .is_some_and(|(connection, _)| *connection != frame.connection)
        {
            self.end_publish(None);
        }
        if let Some(failure) = self.current.as_ref().and_then(|(_, p)| p.failure()) {
            self.end_publish(Some(failure));
            self.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
        if self.current.is_none() {
            // A publish starts with a picture that decodes alone.
            let startable = frame.kind == MediaKind::Video && frame.keyframe;
            if !startable || self.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            match publisher::Publisher::start(&self.url) {
                Ok(publisher) => {
                    self.events.emit(WorkerEvent::OutputStarted {
                        connection: frame.connection,
                        url: self.url.to_string(),
                    });
                    self.current = Some((frame.connection, publisher));
                }
                Err(e) => {
                    self.events.emit(WorkerEvent::OutputEnded {
                        connection: frame.connection,
                        failure: Some(e.to_string()),
                        pictures: 0,
                    });
                    self.retry_at = Some(Instant::now() + RETRY_AFTER);
                    return;
                }
            }
        }
        if let Some((_, publisher)) = self.current.as_mut() {
            publisher.push(frame);
            if frame.kind == MediaKind::Video {
                self.pictures += 1;
            }
        }
    }

    /// Ends the publish of an input connection that has ended once all its
    /// frames have left.
    fn end_if_done(&mut self) {
        let Some(connection) = self.current.as_ref().map(|(c, _)| *c) else {
            return;
        };
        if self.ended.contains(&connection) && self.schedule.next_connection().is_none_or(|c| c != connection)
        {
            self.end_publish(None);
        }
    }

    fn end_publish(&mut self, failure: Option<String>) {
        if let Some((connection, publisher)) = self.current.take() {
            publisher.finish(END_TIMEOUT);
            let pictures = std::mem::take(&mut self.pictures);
            self.events.emit(WorkerEvent::OutputEnded {
                connection,
                failure,
                pictures,
            });
        }
    }

    fn record(&mut self, decision: schedule::SpanDecision) {
        let record = OutputRecord {
            index: decision.segment,
            audio: decision.audio,
            reason: decision.reason,
            delay_ms: decision.delay.as_secs_f64() * 1e3,
        };
        if let Err(e) = self.manifest.append(&ManifestEntry::Output(record.clone())) {
            tracing::warn!("cannot record the output span: {e}");
        }
        self.events.emit(WorkerEvent::OutputSpan(record));
    }
}
