//! One connection's life: connect, validate the tracks, cut segments, and
//! report how it ended. Runs on the worker's own thread, never on an async
//! runtime, because rtmpsrc blocks while connecting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver, select};

use crate::config::WorkerConfig;
use crate::error::{IngestError, StreamError};
use crate::events::{EventSink, WorkerEvent};
use crate::guard::{GuardEvent, GuardSettings, Limits, SourceGuard};
use crate::join_gate::JoinFacts;
use crate::manifest::{ConnectionRecord, JoinRecord, ManifestEntry, Span};
use crate::media::{MediaBuffer, MediaKind};
use crate::output::{OutFrame, OutputFeed};
use crate::pipeline::{IngestPipeline, PipelineMessage, PipelineSettings};
use crate::rtmp_url::RtmpUrl;
use crate::segment_writer::SegmentWriter;
use crate::segmenter::{Frame, SegmentEvent, Segmenter};
use crate::teardown::Teardowns;
use crate::timeline::TrackTimeline;
use crate::tracks::{self, TrackCaps};

/// AAC sample rate assumed when the caps do not say (FLV's usual 48 kHz).
const DEFAULT_SAMPLE_RATE: u32 = 48_000;
/// How long the guard waits for the server to accept its connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After the source failed mid-stream, how long what is queued may take to
/// reach the appsinks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// After the server ended the stream, how long the source may take to
/// deliver the rest and end (it takes milliseconds; a source that does not
/// end must not delay the reconnect by more than this).
const END_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// Refused or unreachable before any byte of media arrived.
    ConnectFailed(ConnectFailure),
    /// Media flowed, then the stream ended or the connection dropped.
    Ended { reason: String },
    /// The stream cannot be served; retrying will not help.
    Refused(StreamError),
    /// Asked to stop; whether media had come on this connection.
    Stopped { carried_media: bool },
}

pub(crate) struct Session<'a> {
    pub config: &'a WorkerConfig,
    /// Where the previous connection's media ended (raw PTS, ns): the start
    /// of what a new connection could not receive. Updated as media comes.
    pub received_until: &'a mut Option<u64>,
    pub reception: &'a tokio::sync::watch::Sender<Reception>,
    pub url: &'a RtmpUrl,
    pub connection: u32,
    pub writer: &'a mut SegmentWriter,
    pub next_index: &'a mut u64,
    pub counts: &'a mut [u64; 2],
    pub events: &'a EventSink,
    pub stop: &'a Receiver<()>,
    pub teardowns: &'a Teardowns,
    /// Where the dubbed output takes the frames, when there is one.
    pub output: Option<&'a OutputFeed>,
}

/// What one connection has learned about its tracks.
struct Tracks {
    /// What each track carries: from its first tag (the join gate's
    /// announcement) or its pad, whichever came first; the pad's replaces it.
    caps: [Option<TrackCaps>; 2],
    /// When the first track was announced, and when both were.
    first_announced: Option<Instant>,
    both_announced: Option<Instant>,
    /// Each track's first buffer: its arrival and PTS.
    first_buffer: [Option<(Instant, Option<u64>)>; 2],
    /// Both tracks have delivered a frame; media goes to the segmenter.
    validated: bool,
    held: Vec<MediaBuffer>,
    /// What came before the first picture, as the join gate saw it.
    joined: Option<JoinFacts>,
}

impl Tracks {
    fn announce(&mut self, kind: MediaKind, caps: TrackCaps, now: Instant) {
        self.first_announced.get_or_insert(now);
        self.caps[kind.index()] = Some(caps);
        if self.both_announced.is_none() && self.caps.iter().all(Option::is_some) {
            self.both_announced = Some(now);
        }
    }

    /// The first track that has not announced itself.
    fn unannounced(&self) -> MediaKind {
        MediaKind::ALL
            .into_iter()
            .find(|k| self.caps[k.index()].is_none())
            .unwrap_or(MediaKind::Audio)
    }

    /// The first track that has delivered no frame.
    fn without_frames(&self) -> MediaKind {
        MediaKind::ALL
            .into_iter()
            .find(|k| self.first_buffer[k.index()].is_none())
            .unwrap_or(MediaKind::Video)
    }
}

/// What the ingest has received on its current connection: the highest
/// PTS of each track, on the stream's own timeline (to the millisecond).
/// A harness that must not end a publish before the reader has its last
/// frame watches this. With the source guard it counts what the guard has
/// read from the server (rtmpsrc holds a partial 4096-byte block until more
/// bytes come, so its buffers would never show the end of a stream that
/// stays connected); without it, what flvdemux gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reception {
    /// Counts connections as the manifest does.
    pub connection: u32,
    pub video_pts_ns: Option<u64>,
    pub audio_pts_ns: Option<u64>,
}

impl Reception {
    fn note(&mut self, kind: MediaKind, pts: u64) {
        let slot = match kind {
            MediaKind::Video => &mut self.video_pts_ns,
            MediaKind::Audio => &mut self.audio_pts_ns,
        };
        *slot = Some(slot.map_or(pts, |seen| seen.max(pts)));
    }
}

impl Session<'_> {
    pub fn run(mut self) -> Result<SessionEnd, IngestError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (guard_tx, guard_rx) = crossbeam_channel::unbounded();
        let guard = if self.config.source_guard {
            let settings = GuardSettings {
                limits: Limits::default(),
                idle_timeout: self.config.idle_timeout,
                connect_timeout: CONNECT_TIMEOUT,
            };
            let guard = SourceGuard::start(self.url.host(), self.url.port(), settings, guard_tx)
                .map_err(|e| IngestError::io("the source guard's loopback socket", e))?;
            Some(guard)
        } else {
            None
        };
        let location = guard
            .as_ref()
            .map_or_else(|| self.url.clone(), |g| self.url.through(g.local_addr()));
        let settings = PipelineSettings {
            source: self.config.source,
            url: &location,
            max_buffers: self.config.max_buffers,
        };
        let pipeline = IngestPipeline::build(&settings, tx)?;
        let connect_started = Instant::now();
        if let Err(state_error) = pipeline.play() {
            let failure = guard_failure(&guard_rx).unwrap_or_else(|| {
                let reason = rx.try_iter().find_map(|m| match m {
                    PipelineMessage::Error { message, .. } => Some(message),
                    _ => None,
                });
                ConnectFailure::NotStarted(reason.unwrap_or(state_error))
            });
            return Ok(SessionEnd::ConnectFailed(failure));
        }
        self.writer.begin_connection(self.connection);
        let mut segmenter: Segmenter<Bytes> =
            Segmenter::new(self.config.segment_duration.as_nanos() as u64, *self.next_index);
        // Replaced when a track's caps arrive (audio needs its sample rate),
        // which flvdemux always sends before the track's first buffer.
        let mut timelines = [TrackTimeline::video(), TrackTimeline::audio(DEFAULT_SAMPLE_RATE)];
        let mut tracks = Tracks {
            caps: [None, None],
            first_announced: None,
            both_announced: None,
            first_buffer: [None, None],
            validated: false,
            held: Vec::new(),
            joined: None,
        };
        self.reception.send_replace(Reception {
            connection: self.connection,
            ..Reception::default()
        });
        let mut received_data = false;
        let mut playing_since: Option<Instant> = None;
        // Why the server refused or ended, when it said: a clearer reason
        // than the source's error that follows.
        let mut server_said: Option<ConnectFailure> = None;
        // The source failed after media flowed: why, and until when the rest
        // may drain.
        let mut draining: Option<(String, Instant)> = None;
        let mut drain_requested = false;
        let mut faults = crate::planted::PlantedFaults::current();
        let end = loop {
            // Until both tracks are announced, the validation deadline is
            // one more thing to wait on; afterwards it never fires.
            let validation_deadline = tracks
                .first_announced
                .filter(|_| tracks.both_announced.is_none())
                .map_or_else(crossbeam_channel::never, |first| {
                    crossbeam_channel::at(first + self.config.audio_validation_timeout)
                });
            // Both announced: each must deliver a frame (video waits for
            // the server's next keyframe) within the keyframe timeout.
            let frames_deadline = tracks
                .both_announced
                .filter(|_| !tracks.validated)
                .map_or_else(crossbeam_channel::never, |both| {
                    crossbeam_channel::at(both + self.config.keyframe_timeout)
                });
            // A server that accepted the play but sends no track.
            let no_track_deadline = playing_since
                .filter(|_| tracks.first_announced.is_none())
                .map_or_else(crossbeam_channel::never, |since| {
                    crossbeam_channel::at(since + self.config.track_timeout)
                });
            let drain_deadline = draining
                .as_ref()
                .map_or_else(crossbeam_channel::never, |(_, until)| {
                    crossbeam_channel::at(*until)
                });
            let message = select! {
                recv(rx) -> message => message.ok(),
                recv(drain_deadline) -> _ => {
                    let (reason, _) = draining.take().expect("only armed while draining");
                    break SessionEnd::Ended { reason };
                }
                recv(guard_rx) -> event => {
                    let Ok(event) = event else { continue };
                    match event {
                        GuardEvent::Playing => {
                            if playing_since.is_none() {
                                playing_since = Some(Instant::now());
                                self.events.emit(WorkerEvent::Playing { connection: self.connection });
                            }
                            continue;
                        }
                        GuardEvent::Relayed(seen) => {
                            let ns = |ms: Option<u32>| ms.map(|ms| u64::from(ms) * 1_000_000);
                            self.reception.send_modify(|r| {
                                r.video_pts_ns = ns(seen.video_pts_ms);
                                r.audio_pts_ns = ns(seen.audio_pts_ms);
                            });
                            continue;
                        }
                        GuardEvent::Refused { code, description } => {
                            server_said = Some(ConnectFailure::Refused { code, description });
                            continue;
                        }
                        GuardEvent::Ended(reason) => {
                            // The source should now end too; if it does not
                            // (it can hang on in a reconnect), the session
                            // ends anyway.
                            draining.get_or_insert_with(|| (reason.clone(), Instant::now() + END_GRACE));
                            server_said = Some(ConnectFailure::Pipeline(reason));
                            continue;
                        }
                        GuardEvent::Violation(reason) => {
                            break lost(received_data, ConnectFailure::Violation(reason));
                        }
                        GuardEvent::Silent(quiet) => {
                            break lost(received_data, ConnectFailure::Silent(quiet));
                        }
                        GuardEvent::Unreachable(reason) => break SessionEnd::ConnectFailed(ConnectFailure::Unreachable(reason)),
                    }
                }
                recv(no_track_deadline) -> _ => {
                    break SessionEnd::ConnectFailed(ConnectFailure::NoTrack(self.config.track_timeout));
                }
                recv(self.stop) -> _ => break SessionEnd::Stopped { carried_media: received_data },
                recv(validation_deadline) -> _ => {
                    break SessionEnd::Refused(StreamError::MissingTrack {
                        kind: tracks.unannounced(),
                        waited: self.config.audio_validation_timeout,
                    });
                }
                recv(frames_deadline) -> _ => {
                    break SessionEnd::Refused(StreamError::NoFrames {
                        kind: tracks.without_frames(),
                        waited: self.config.keyframe_timeout,
                    });
                }
            };
            let Some(message) = message else {
                break SessionEnd::Ended {
                    reason: "the pipeline closed".into(),
                };
            };
            match message {
                PipelineMessage::SourceData => {
                    received_data = true;
                    self.events.emit(WorkerEvent::Connected {
                        connection: self.connection,
                    });
                }
                PipelineMessage::Announced { kind, caps } => {
                    if let Err(refusal) = tracks::check(kind, &caps) {
                        break SessionEnd::Refused(refusal);
                    }
                    if tracks.caps[kind.index()].is_none() {
                        tracks.announce(kind, caps, Instant::now());
                    }
                }
                PipelineMessage::Joined(facts) => tracks.joined = Some(facts),
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
                    tracks.announce(kind, caps, Instant::now());
                }
                PipelineMessage::Buffer(buffer) => {
                    let kind = buffer.kind;
                    tracks.first_buffer[kind.index()].get_or_insert((buffer.arrival, buffer.pts));
                    // With the guard, reception is what it passed on (see
                    // `Reception`); without it, what the demuxer gave.
                    if guard.is_none()
                        && let Some(pts) = buffer.pts
                    {
                        self.reception.send_modify(|r| r.note(kind, pts));
                    }
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
                        let join = Join {
                            first_picture: v,
                            first_audio: a,
                            gate: tracks.joined,
                        };
                        let record = ConnectionRecord {
                            connection: self.connection,
                            video_codec: video.codec_name(),
                            audio_codec: audio.codec_name(),
                            first_video_ms: millis(v.0.saturating_duration_since(connect_started)),
                            first_audio_ms: millis(a.0.saturating_duration_since(connect_started)),
                            join: join.record(*self.received_until),
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
                    let reason = match draining.take() {
                        Some((reason, _)) => reason,
                        None => server_said
                            .take()
                            .map_or_else(|| "the stream ended".into(), |said| said.to_string()),
                    };
                    break SessionEnd::Ended { reason };
                }
                PipelineMessage::Error {
                    element,
                    message,
                    debug: details,
                } => {
                    tracing::debug!(%element, ?details, "pipeline error");
                    let failure = guard_failure(&guard_rx)
                        .or_else(|| server_said.take())
                        .unwrap_or_else(|| ConnectFailure::Pipeline(format!("{element}: {message}")));
                    if tracks.validated && !drain_requested && pipeline.drain() {
                        drain_requested = true;
                        let until = Instant::now() + DRAIN_TIMEOUT;
                        let reason = draining
                            .take()
                            .map_or_else(|| failure.to_string(), |(said, _)| said);
                        draining = Some((reason, until));
                        continue;
                    }
                    break lost(received_data, failure);
                }
            }
        };
        self.teardowns.release(pipeline);
        drop(guard);
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
        if buffer.kind == MediaKind::Video
            && let Some(pts) = buffer.pts
        {
            let end = pts + times.duration;
            *self.received_until = Some(self.received_until.map_or(end, |until| until.max(end)));
        }
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
                SegmentEvent::Append { index, frame } => {
                    self.writer.append(index, &frame)?;
                    if let Some(output) = self.output {
                        output.frame(OutFrame {
                            kind: frame.kind,
                            pts: frame.pts,
                            dts: frame.dts,
                            duration: frame.duration,
                            keyframe: frame.keyframe,
                            data: frame.payload,
                            arrival: frame.arrival.unwrap_or_else(Instant::now),
                            segment: index,
                            connection: self.connection,
                        });
                    }
                }
                SegmentEvent::Closed(closed) => {
                    let record = self.writer.close(&closed)?;
                    self.counts[closed.kind.index()] += 1;
                    self.events.emit(WorkerEvent::SegmentWritten(record));
                }
                // Joining a live stream always starts with some of these (the
                // server sends audio at once, video from the next keyframe):
                // worth a record, not a warning.
                SegmentEvent::Discarded { kind, frames, reason } => {
                    tracing::info!(%kind, frames, "discarded: {reason}");
                }
            }
        }
        Ok(())
    }
}

/// How a connection came into the stream: its first picture and audio
/// (arrival, PTS), and what the join gate held back before the picture.
struct Join {
    first_picture: (Instant, Option<u64>),
    first_audio: (Instant, Option<u64>),
    gate: Option<JoinFacts>,
}

impl Join {
    /// The record of it; `received_until` is where the previous
    /// connection's media ended (none: this is the stream's first).
    fn record(&self, received_until: Option<u64>) -> JoinRecord {
        let seconds = |ns: u64| ns as f64 / 1e9;
        let audio_from = self
            .gate
            .and_then(|g| g.first_audio_ms)
            .map(|ms| u64::from(ms) * 1_000_000)
            .or(self.first_audio.1);
        let video_from = self.first_picture.1;
        let from = received_until.unwrap_or(0);
        JoinRecord {
            audio_from_s: audio_from.map(seconds),
            video_from_s: video_from.map(seconds),
            not_received: video_from.filter(|v| *v > from).map(|v| Span {
                from_s: seconds(from),
                to_s: seconds(v),
            }),
            audio_dropped_before_picture: self.gate.map_or(0, |g| g.audio_dropped),
        }
    }
}

/// How a connection ended without a refusal: it failed to connect, or it
/// ended after media flowed.
fn lost(received_data: bool, failure: ConnectFailure) -> SessionEnd {
    if received_data {
        SessionEnd::Ended {
            reason: failure.to_string(),
        }
    } else {
        SessionEnd::ConnectFailed(failure)
    }
}

/// Why a connection failed before media came: each is retried with
/// backoff, and said in the `reconnecting` event and the final error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectFailure {
    /// The pipeline did not reach playing (the source could not connect).
    #[error("{0}")]
    NotStarted(String),
    /// The guard in front of the source could not reach the server.
    #[error("{0}")]
    Unreachable(String),
    /// The server refused the play with an error status.
    #[error("the server refused the play: {code} ({description})")]
    Refused { code: String, description: String },
    /// The server sent what the guard refuses.
    #[error("refused what the server sent: {0}")]
    Violation(String),
    /// The server sent nothing for this long.
    #[error("the server sent nothing for {}", humantime::format_duration(*.0))]
    Silent(Duration),
    /// The play was accepted but no track came within this long.
    #[error("the server accepted the play but sent no audio or video track within {}", humantime::format_duration(*.0))]
    NoTrack(Duration),
    /// The pipeline failed (a source or demuxer error, or what the server
    /// or the guard said about it).
    #[error("{0}")]
    Pipeline(String),
}

impl ConnectFailure {
    /// The server could not be reached at all (not: it answered, but the
    /// stream is not there yet).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable(_))
    }

    /// What a guard event says about why the connection failed; `Playing`
    /// says nothing.
    fn told_by(event: GuardEvent) -> Option<Self> {
        match event {
            GuardEvent::Refused { code, description } => Some(Self::Refused { code, description }),
            GuardEvent::Unreachable(reason) => Some(Self::Unreachable(reason)),
            GuardEvent::Violation(reason) => Some(Self::Violation(reason)),
            GuardEvent::Ended(reason) => Some(Self::Pipeline(reason)),
            GuardEvent::Silent(quiet) => Some(Self::Silent(quiet)),
            GuardEvent::Playing | GuardEvent::Relayed(_) => None,
        }
    }
}

/// The guard's account of why the connection failed, if it has one. Its
/// event may be read here, after the source's error it caused, rather than
/// in the select: the failure is the same either way.
fn guard_failure(events: &Receiver<GuardEvent>) -> Option<ConnectFailure> {
    events.try_iter().find_map(ConnectFailure::told_by)
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source's error can reach the session before the guard's event
    /// that caused it: the failure must still say what the guard saw.
    #[test]
    fn a_guard_event_read_after_the_source_error_keeps_its_kind() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(GuardEvent::Playing).unwrap();
        tx.send(GuardEvent::Violation(
            "a message on chunk stream 17 was continued but never started".into(),
        ))
        .unwrap();
        let failure = guard_failure(&rx).expect("the guard said why");
        assert!(matches!(failure, ConnectFailure::Violation(_)), "{failure:?}");
        assert!(
            failure
                .to_string()
                .starts_with("refused what the server sent: a message on chunk stream 17"),
            "{failure}"
        );
    }

    #[test]
    fn a_refusal_names_the_status_and_its_description() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(GuardEvent::Refused {
            code: "NetStream.Play.StreamNotFound".into(),
            description: "no such stream".into(),
        })
        .unwrap();
        let failure = guard_failure(&rx).expect("the guard said why");
        assert_eq!(
            failure.to_string(),
            "the server refused the play: NetStream.Play.StreamNotFound (no such stream)"
        );
    }

    #[test]
    fn a_guard_that_only_saw_the_play_has_no_account() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(GuardEvent::Playing).unwrap();
        assert_eq!(guard_failure(&rx), None);
    }
}
