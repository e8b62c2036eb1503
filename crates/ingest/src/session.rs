//! One connection's life: connect, validate the tracks, cut segments, and
//! report how it ended. Runs on the worker's own thread, never on an async
//! runtime, because rtmpsrc blocks while connecting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, select};

use crate::config::WorkerConfig;
use crate::error::{IngestError, StreamError};
use crate::events::{EventSink, WorkerEvent};
use crate::manifest::{ConnectionRecord, ManifestEntry};
use crate::media::{MediaBuffer, MediaKind};
use crate::pipeline::{IngestPipeline, PipelineMessage, PipelineSettings};
use crate::rtmp_url::RtmpUrl;
use crate::segment_writer::SegmentWriter;
use crate::segmenter::{Frame, SegmentEvent, Segmenter};
use crate::teardown::Teardowns;
use crate::timeline::TrackTimeline;
use crate::tracks::{self, TrackCaps};

/// AAC sample rate assumed when the caps do not say (FLV's usual 48 kHz).
const DEFAULT_SAMPLE_RATE: u32 = 48_000;

#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// Refused or unreachable before any byte of media arrived.
    ConnectFailed(String),
    /// Media flowed, then the stream ended or the connection dropped.
    Ended {
        reason: String,
    },
    /// The stream cannot be served; retrying will not help.
    Refused(StreamError),
    Stopped,
}

pub(crate) struct Session<'a> {
    pub config: &'a WorkerConfig,
    pub url: &'a RtmpUrl,
    pub connection: u32,
    pub writer: &'a mut SegmentWriter,
    pub next_index: &'a mut u64,
    pub counts: &'a mut [u64; 2],
    pub events: &'a EventSink,
    pub stop: &'a Receiver<()>,
    pub teardowns: &'a Teardowns,
}

struct Tracks {
    caps: [Option<TrackCaps>; 2],
    first_buffer: [Option<Instant>; 2],
    validated: bool,
    held: Vec<MediaBuffer>,
}

impl Session<'_> {
    pub fn run(mut self) -> Result<SessionEnd, IngestError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let settings = PipelineSettings {
            source: self.config.source,
            url: self.url,
            max_buffers: self.config.max_buffers,
        };
        let pipeline = IngestPipeline::build(&settings, tx)?;
        let connect_started = Instant::now();
        if let Err(state_error) = pipeline.play() {
            let reason = rx
                .try_iter()
                .find_map(|m| match m {
                    PipelineMessage::Error { message, .. } => Some(message),
                    _ => None,
                })
                .unwrap_or(state_error);
            return Ok(SessionEnd::ConnectFailed(reason));
        }
        self.writer.begin_connection(self.connection);
        let mut segmenter: Segmenter<Bytes> =
            Segmenter::new(self.config.segment_duration.as_nanos() as u64, *self.next_index);
        // Replaced when a track's caps arrive (audio needs its sample rate),
        // which flvdemux always sends before the track's first buffer.
        let mut timelines = [TrackTimeline::video(), TrackTimeline::audio(DEFAULT_SAMPLE_RATE)];
        let mut tracks = Tracks {
            caps: [None, None],
            first_buffer: [None, None],
            validated: false,
            held: Vec::new(),
        };
        let mut received_data = false;
        let mut faults = crate::planted::PlantedFaults::current();
        let end = loop {
            let deadline = tracks
                .first_buffer
                .iter()
                .flatten()
                .min()
                .filter(|_| !tracks.validated)
                .map(|first| *first + self.config.audio_validation_timeout);
            // Until both tracks are seen, the validation deadline is one
            // more thing to wait on; afterwards it never fires.
            let validation_deadline = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
            let message = select! {
                recv(rx) -> message => message.ok(),
                recv(self.stop) -> _ => break SessionEnd::Stopped,
                recv(validation_deadline) -> _ => {
                    let missing = MediaKind::ALL
                        .into_iter()
                        .find(|k| tracks.first_buffer[k.index()].is_none())
                        .unwrap_or(MediaKind::Audio);
                    break SessionEnd::Refused(StreamError::MissingTrack {
                        kind: missing,
                        waited: self.config.audio_validation_timeout,
                    });
                }
            };
            let Some(message) = message else {
                break SessionEnd::Ended {
                    reason: "the pipeline closed".into(),
                };
            };
            match message {
                PipelineMessage::SourceData(_) => {
                    received_data = true;
                    self.events.emit(WorkerEvent::Connected {
                        connection: self.connection,
                    });
                }
                PipelineMessage::Track { kind, caps } => {
                    if let Err(refusal) = tracks::check(kind, &caps) {
                        break SessionEnd::Refused(refusal);
                    }
                    timelines[kind.index()] = match kind {
                        MediaKind::Video => TrackTimeline::video(),
                        MediaKind::Audio => TrackTimeline::audio(
                            caps.rate
                                .and_then(|r| u32::try_from(r).ok())
                                .unwrap_or(DEFAULT_SAMPLE_RATE),
                        ),
                    };
                    tracks.caps[kind.index()] = Some(caps);
                }
                PipelineMessage::Buffer(buffer) => {
                    let kind = buffer.kind;
                    tracks.first_buffer[kind.index()].get_or_insert(buffer.arrival);
                    let Some(buffer) = faults.apply(buffer) else {
                        continue;
                    };
                    if tracks.validated {
                        self.feed(&mut segmenter, &mut timelines, buffer)?;
                        continue;
                    }
                    tracks.held.push(buffer);
                    if let ([Some(video), Some(audio)], [Some(v), Some(a)]) =
                        (&tracks.caps, tracks.first_buffer)
                    {
                        tracks.validated = true;
                        let record = ConnectionRecord {
                            connection: self.connection,
                            video_codec: video.codec_name(),
                            audio_codec: audio.codec_name(),
                            first_video_ms: millis(v.saturating_duration_since(connect_started)),
                            first_audio_ms: millis(a.saturating_duration_since(connect_started)),
                        };
                        self.writer
                            .manifest()
                            .append(&ManifestEntry::Connection(record.clone()))?;
                        self.events.emit(WorkerEvent::TracksValidated(record));
                        for held in std::mem::take(&mut tracks.held) {
                            self.feed(&mut segmenter, &mut timelines, held)?;
                        }
                    }
                }
                PipelineMessage::CapsChanged { kind, from, to } => {
                    break SessionEnd::Refused(StreamError::CodecChanged {
                        kind,
                        from: from.codec_name(),
                        to: to.codec_name(),
                    });
                }
                PipelineMessage::EndOfStream => {
                    break SessionEnd::Ended {
                        reason: "the stream ended".into(),
                    };
                }
                PipelineMessage::Error {
                    element,
                    message,
                    debug: details,
                } => {
                    tracing::debug!(%element, ?details, "pipeline error");
                    if received_data {
                        break SessionEnd::Ended {
                            reason: format!("{element}: {message}"),
                        };
                    }
                    break SessionEnd::ConnectFailed(format!("{element}: {message}"));
                }
            }
        };
        self.teardowns.release(pipeline);
        if tracks.validated {
            self.flush(segmenter.finish(Some(Instant::now())))?;
        }
        self.writer.abandon_open();
        *self.next_index = segmenter.next_index();
        Ok(end)
    }

    fn feed(
        &mut self,
        segmenter: &mut Segmenter<Bytes>,
        timelines: &mut [TrackTimeline; 2],
        buffer: MediaBuffer,
    ) -> Result<(), IngestError> {
        let times = timelines[buffer.kind.index()].normalise(buffer.pts, buffer.dts, buffer.duration);
        if times.jumped {
            tracing::warn!(kind = %buffer.kind, pts = ?buffer.pts, "timestamp jump folded into a continuous timeline");
        }
        let frame = Frame {
            kind: buffer.kind,
            pts: times.pts,
            dts: times.dts,
            duration: times.duration,
            keyframe: buffer.keyframe,
            arrival: Some(buffer.arrival),
            payload: buffer.data,
        };
        self.flush(segmenter.push(frame))
    }

    fn flush(&mut self, events: Vec<SegmentEvent<Bytes>>) -> Result<(), IngestError> {
        for event in events {
            match event {
                SegmentEvent::Append { index, frame } => self.writer.append(index, &frame)?,
                SegmentEvent::Closed(closed) => {
                    let record = self.writer.close(&closed)?;
                    self.counts[closed.kind.index()] += 1;
                    self.events.emit(WorkerEvent::SegmentWritten(record));
                }
                SegmentEvent::Discarded { kind, frames, reason } => {
                    tracing::warn!(%kind, frames, "discarded: {reason}");
                }
            }
        }
        Ok(())
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
