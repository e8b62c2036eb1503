//! Every way a run can fall short of its scenario, as a typed value: what
//! was expected and what came, for the summary, JUnit, the HTML report and
//! the self-tests (which match variants, not words).

use std::fmt;
use std::time::Duration;

use ingest::MediaKind;

/// One expectation a run did not meet.
#[derive(Debug, Clone, PartialEq)]
pub enum Unmet {
    /// The run ended otherwise than expected (completed, or the error).
    Outcome {
        expected: String,
        got: String,
    },
    /// A stated fact of one stream differs.
    Stated {
        stream: usize,
        what: Stated,
        expected: String,
        got: String,
    },
    /// A span of the stream was written twice.
    WrittenTwice {
        stream: usize,
        spans: Vec<String>,
    },
    /// Fewer (or more) frames were written than could be delivered.
    Frames {
        stream: usize,
        track: MediaKind,
        expected: usize,
        delivered: usize,
        lost_in_gaps: usize,
        got: u64,
    },
    /// A segment is not MPEG-TS with the codec its track needs.
    MalformedSegment {
        stream: usize,
    },
    SegmentDuration {
        kind: MediaKind,
        seconds: f64,
        target: f64,
        tolerance: f64,
    },
    Budget {
        name: &'static str,
        measured_ms: Option<f64>,
        budget_ms: f64,
    },
    Sts {
        stream: usize,
        problem: StsUnmet,
    },
    /// A stream of a service scenario fell short.
    Service {
        /// The stream's name (or the service run's).
        stream: String,
        problem: ServiceUnmet,
    },
    /// Something failed on the publishing side (with the server's reason).
    Publisher(String),
    TimedOut(Duration),
    /// The outcome differs from its stored snapshot (insta's report).
    Snapshot(String),
}

/// The facts a scenario can state per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stated {
    VideoSegments,
    AudioSegments,
    KeyframeAligned,
    AvParity,
    Connections,
    LastSegmentPartial,
    FirstPictureAtKeyframe,
    SegmentsStartAtFirstPicture,
    NotReceived,
}

impl Stated {
    fn words(self) -> &'static str {
        match self {
            Self::VideoSegments => "video segments",
            Self::AudioSegments => "audio segments",
            Self::KeyframeAligned => "keyframe aligned",
            Self::AvParity => "A/V parity",
            Self::Connections => "connections",
            Self::LastSegmentPartial => "last segment partial",
            Self::FirstPictureAtKeyframe => "first picture at a keyframe",
            Self::SegmentsStartAtFirstPicture => "segments start at the first picture",
            Self::NotReceived => "not received (the manifest)",
        }
    }
}

/// What the fragments did not come to.
#[derive(Debug, Clone, PartialEq)]
pub enum StsUnmet {
    /// Not every audio segment settled as exactly one fragment.
    Settled {
        audio_segments: usize,
        processed: usize,
        failed: usize,
        not_sent: usize,
    },
    Count {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    OutOfOrder,
    RecordedTwice(Vec<u64>),
    DubbedFilesDoNotProbe,
    InFlight(usize),
    Failures(Vec<String>),
}

impl fmt::Display for StsUnmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Settled {
                audio_segments,
                processed,
                failed,
                not_sent,
            } => write!(
                f,
                "STS: {audio_segments} audio segments but {} fragments settled ({processed} processed, {failed} failed, {not_sent} not sent)",
                processed + failed + not_sent
            ),
            Self::Count { what, expected, got } => {
                write!(f, "STS: fragments {what}: expected {expected}, got {got}")
            }
            Self::OutOfOrder => f.write_str("STS: fragments were first sent out of segment order"),
            Self::RecordedTwice(indices) => write!(f, "STS: fragments with two final records: {indices:?}"),
            Self::DubbedFilesDoNotProbe => {
                f.write_str("STS: a processed fragment's dubbed file does not open in ffprobe as audio")
            }
            Self::InFlight(n) => write!(
                f,
                "STS: {n} fragments in flight at once, over the STS's max_inflight"
            ),
            Self::Failures(failures) => write!(f, "STS: fragments failed: {}", failures.join("; ")),
        }
    }
}

/// What a stream of a service scenario did not come to.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceUnmet {
    Served {
        expected: bool,
        got: bool,
    },
    Refused {
        expected: String,
        got: Option<String>,
    },
    Stated {
        what: &'static str,
        expected: String,
        got: String,
    },
    /// Segment indices skip or repeat.
    Numbering,
    Output(String),
    /// The service did not stop cleanly.
    Stop(String),
    /// A cluster's rule was broken: served twice, a turn unstated, the
    /// stream not served to its end.
    Cluster(&'static str),
}

impl fmt::Display for ServiceUnmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Served { expected: true, .. } => f.write_str("no worker served it"),
            Self::Served { expected: false, .. } => {
                f.write_str("a worker served it, which the service must not")
            }
            Self::Refused { expected, got } => match got {
                Some(reason) => write!(f, "refused for \"{reason}\", not for \"{expected}\""),
                None => write!(f, "never refused; expected a refusal for \"{expected}\""),
            },
            Self::Stated { what, expected, got } => write!(f, "{what}: expected {expected}, got {got}"),
            Self::Numbering => f.write_str("segment indices skip or repeat"),
            Self::Output(what) => write!(f, "output: {what}"),
            Self::Stop(why) => write!(f, "the service did not stop cleanly: {why}"),
            Self::Cluster(what) => write!(f, "cluster: {what}"),
        }
    }
}

impl fmt::Display for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outcome { expected, got } => write!(f, "outcome: expected {expected}, got {got}"),
            Self::Stated {
                stream,
                what,
                expected,
                got,
            } => write!(
                f,
                "stream {stream}: {}: expected {expected}, got {got}",
                what.words()
            ),
            Self::WrittenTwice { stream, spans } => {
                write!(f, "stream {stream}: spans written twice: {}", spans.join(", "))
            }
            Self::Frames {
                stream,
                track,
                expected,
                delivered,
                lost_in_gaps,
                got,
            } => {
                let what = match track {
                    MediaKind::Video => "pictures written (all the fixture windows hold)",
                    MediaKind::Audio => "audio frames written (all that pair with pictures)",
                };
                let held = match lost_in_gaps {
                    0 => String::new(),
                    n => format!(" less {n} in gaps"),
                };
                write!(
                    f,
                    "stream {stream}: {what}: expected {expected} ({delivered} delivered{held}), got {got}"
                )
            }
            Self::MalformedSegment { stream } => {
                write!(
                    f,
                    "stream {stream}: a segment does not probe as MPEG-TS with H.264/AAC"
                )
            }
            Self::SegmentDuration {
                kind,
                seconds,
                target,
                tolerance,
            } => write!(
                f,
                "{kind} segment of {seconds:.3}s is not {target}s ± {tolerance}s"
            ),
            Self::Budget {
                name,
                measured_ms,
                budget_ms,
            } => {
                let measured = measured_ms.map_or("not measured".to_owned(), |ms| format!("{ms:.0} ms"));
                write!(
                    f,
                    "latency budget {name} missed: {measured}, budget {budget_ms:.0} ms"
                )
            }
            Self::Sts { stream, problem } => write!(f, "stream {stream}: {problem}"),
            Self::Service { stream, problem } => write!(f, "{stream}: {problem}"),
            Self::Publisher(what) => write!(f, "publisher: {what}"),
            Self::TimedOut(after) => write!(f, "timed out after {after:?}"),
            Self::Snapshot(diff) => write!(f, "snapshot: {diff}"),
        }
    }
}
