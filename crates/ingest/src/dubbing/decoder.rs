//! The `pcm_s16le` decode: an audio segment file to interleaved 16-bit PCM
//! at the rate and channel count the STS asked for, behind the sts crate's
//! [`sts::PcmDecoder`] seam.
//!
//! ```text
//! appsrc(segment) ─ tsdemux ─ aacparse ─ AAC decoder ─ audioconvert ─ audioresample
//!                                     ─ capsfilter(S16LE, interleaved, rate, channels) ─ appsink
//! ```
//!
//! One short-lived pipeline per segment, run by the sts client on a
//! blocking thread when the fragment's turn to be sent comes: never on the
//! ingest's GStreamer streaming threads, so the segmenter never waits for a
//! decode, and a queued fragment stays a path on disk. It is bounded: PCM
//! beyond what the segment's duration can hold, or a decode slower than
//! real time (which could never keep up with a live stream), fails the
//! fragment with a [`DecodeError`] rather than growing or stalling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use sts::PcmRequest;

use crate::error::IngestError;

/// Elements every decode needs, besides an AAC decoder.
const ELEMENTS: [&str; 7] = [
    "appsrc",
    "tsdemux",
    "aacparse",
    "audioconvert",
    "audioresample",
    "capsfilter",
    "appsink",
];
/// In order of preference: libav's and FDK's handle every AAC profile;
/// faad (plugins-bad) is what a Debian install most often has.
const AAC_DECODERS: [&str; 3] = ["avdec_aac", "fdkaacdec", "faad"];
/// Even a one-frame segment gets this long: pipeline start-up is not decoding.
const MIN_DECODE_TIME: Duration = Duration::from_secs(2);
/// PCM allowed, in the segment's durations: decoder priming and a rounded
/// manifest figure stay far below twice, a segment that is not what the
/// manifest says does not.
const OUTPUT_FACTOR: u32 = 2;
/// The shortest duration the output bound is figured on: a partial
/// segment flushed at a stop may be a few frames.
const MIN_OUTPUT_DURATION: Duration = Duration::from_secs(1);
/// Buffers the appsink holds before its callback takes them.
const SINK_BUFFERS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecodeError {
    #[error("cannot build the decode pipeline: {0}")]
    Build(String),
    #[error("the segment holds no AAC stream ({0})")]
    NoAudio(String),
    #[error("{element}: {message}")]
    Pipeline {
        element: String,
        message: String,
        debug: Option<String>,
    },
    #[error("not decoded within {0:?}, slower than real time")]
    Timeout(Duration),
    #[error("more than {limit} bytes of PCM, over what a {duration:?} segment holds")]
    TooLong { limit: usize, duration: Duration },
    #[error("the segment decoded to no audio")]
    Empty,
}

/// Decodes segments with the AAC decoder found at start.
#[derive(Debug)]
pub(crate) struct SegmentDecoder {
    aac_decoder: &'static str,
}

impl SegmentDecoder {
    /// Fails when an element is missing, so a worker asked for
    /// `pcm_s16le` stops before connecting rather than failing every
    /// fragment.
    pub(crate) fn new() -> Result<Self, IngestError> {
        crate::gst_runtime::check_elements(&ELEMENTS)?;
        let aac_decoder = AAC_DECODERS
            .into_iter()
            .find(|name| gst::ElementFactory::find(name).is_some())
            .ok_or_else(|| IngestError::MissingElement {
                element: AAC_DECODERS.join(" or "),
                reason: "sts.format pcm_s16le needs an AAC decoder (gstreamer1.0-libav or \
                         gstreamer1.0-plugins-bad)"
                    .into(),
            })?;
        tracing::debug!(aac_decoder, "pcm_s16le decoder ready");
        Ok(Self { aac_decoder })
    }

    pub(crate) fn decode_segment(
        &self,
        segment: Vec<u8>,
        request: PcmRequest,
    ) -> Result<Vec<u8>, DecodeError> {
        let limit = output_limit(request);
        let time_limit = request.duration.max(MIN_DECODE_TIME);
        let graph = Graph::build(self.aac_decoder, request, limit)?;
        let running = Running(&graph.pipeline);
        running
            .0
            .set_state(gst::State::Playing)
            .map_err(|e| DecodeError::Build(format!("cannot start: {e}")))?;
        graph
            .source
            .push_buffer(gst::Buffer::from_slice(segment))
            .map_err(|e| DecodeError::Build(format!("cannot feed the segment: {e}")))?;
        let _ = graph.source.end_of_stream();
        let bus = graph.pipeline.bus().expect("a pipeline has a bus");
        let ended = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(time_limit.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        drop(running);
        let linked = graph.linked.load(Ordering::Acquire);
        let mut out = graph.output.lock().unwrap_or_else(PoisonError::into_inner);
        if out.overflowed {
            return Err(DecodeError::TooLong {
                limit,
                duration: request.duration,
            });
        }
        let Some(message) = ended else {
            return Err(DecodeError::Timeout(time_limit));
        };
        if let gst::MessageView::Error(err) = message.view() {
            let message_text = err.error().to_string();
            if !linked {
                return Err(DecodeError::NoAudio(message_text));
            }
            return Err(DecodeError::Pipeline {
                element: message
                    .src()
                    .map_or_else(|| "pipeline".into(), |s| s.name().to_string()),
                message: message_text,
                debug: err.debug().map(|d| d.to_string()),
            });
        }
        if !linked {
            return Err(DecodeError::NoAudio("the demuxer found no audio track".into()));
        }
        if out.pcm.is_empty() {
            return Err(DecodeError::Empty);
        }
        Ok(std::mem::take(&mut out.pcm))
    }
}

impl sts::PcmDecoder for SegmentDecoder {
    fn decode(&self, segment: Vec<u8>, request: PcmRequest) -> Result<Vec<u8>, sts::DecodeError> {
        self.decode_segment(segment, request).map_err(Into::into)
    }
}

/// The most PCM a segment of `request.duration` may decode to.
fn output_limit(request: PcmRequest) -> usize {
    let bytes_per_second = u128::from(request.sample_rate_hz) * request.frame_bytes() as u128;
    let allowed_ns = request.duration.max(MIN_OUTPUT_DURATION).as_nanos() * u128::from(OUTPUT_FACTOR);
    usize::try_from(bytes_per_second * allowed_ns / 1_000_000_000).unwrap_or(usize::MAX)
}

#[derive(Default)]
struct Output {
    pcm: Vec<u8>,
    overflowed: bool,
}

struct Graph {
    pipeline: gst::Pipeline,
    source: gst_app::AppSrc,
    /// Whether the demuxer exposed an audio track and it was linked.
    linked: Arc<AtomicBool>,
    output: Arc<Mutex<Output>>,
}

impl Graph {
    fn build(aac_decoder: &str, request: PcmRequest, limit: usize) -> Result<Self, DecodeError> {
        let ts_caps = gst::Caps::builder("video/mpegts")
            .field("systemstream", true)
            .field("packetsize", 188i32)
            .build();
        let source = gst_app::AppSrc::builder()
            .caps(&ts_caps)
            .format(gst::Format::Bytes)
            .is_live(false)
            .build();
        let demux = make("tsdemux")?;
        let chain = [
            make("aacparse")?,
            make(aac_decoder)?,
            make("audioconvert")?,
            make("audioresample")?,
            make("capsfilter")?,
        ];
        let pcm_caps = gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("layout", "interleaved")
            .field("rate", i32::try_from(request.sample_rate_hz).unwrap_or(i32::MAX))
            .field("channels", i32::from(request.channels))
            .build();
        chain[4].set_property("caps", &pcm_caps);
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .max_buffers(SINK_BUFFERS)
            .drop(false)
            .build();
        let pipeline = gst::Pipeline::new();
        let build_error = |e: gst::glib::BoolError| DecodeError::Build(e.to_string());
        pipeline
            .add_many([source.upcast_ref(), &demux])
            .map_err(build_error)?;
        pipeline.add_many(&chain).map_err(build_error)?;
        pipeline.add(&sink).map_err(build_error)?;
        source.link(&demux).map_err(build_error)?;
        gst::Element::link_many(&chain).map_err(build_error)?;
        chain[4].link(&sink).map_err(build_error)?;

        let linked = Arc::new(AtomicBool::new(false));
        let parser_sink = chain[0].static_pad("sink").expect("aacparse has a sink pad");
        let on_pad = linked.clone();
        demux.connect_pad_added(move |_, pad| {
            let is_aac = pad
                .current_caps()
                .and_then(|caps| caps.structure(0).map(|s| s.name() == "audio/mpeg"))
                .unwrap_or(false);
            // One AAC stream per segment; anything else is left unlinked.
            if is_aac && !parser_sink.is_linked() && pad.link(&parser_sink).is_ok() {
                on_pad.store(true, Ordering::Release);
            }
        });

        // A demuxer that found no stream has no pad to pass its EOS on to,
        // so no sink would ever end: say so when the input is all read.
        let demux_sink = demux.static_pad("sink").expect("tsdemux has a sink pad");
        let (at_end, weak_demux) = (linked.clone(), demux.downgrade());
        demux_sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            let is_eos = matches!(info.event(), Some(event) if event.type_() == gst::EventType::Eos);
            if is_eos
                && !at_end.load(Ordering::Acquire)
                && let Some(demux) = weak_demux.upgrade()
            {
                gst::element_error!(demux, gst::StreamError::Demux, ["no audio track in the segment"]);
            }
            gst::PadProbeReturn::Ok
        });

        let output = Arc::new(Mutex::new(Output::default()));
        let collected = output.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(buffer) = sample.buffer() else {
                        return Ok(gst::FlowSuccess::Ok);
                    };
                    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                    let mut out = collected.lock().unwrap_or_else(PoisonError::into_inner);
                    if out.pcm.len() + map.len() > limit {
                        out.overflowed = true;
                        return Err(gst::FlowError::Error);
                    }
                    out.pcm.extend_from_slice(map.as_slice());
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        Ok(Self {
            pipeline,
            source,
            linked,
            output,
        })
    }
}

/// Stops the pipeline however the decode ends, so no streaming thread
/// outlives it.
struct Running<'a>(&'a gst::Pipeline);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

fn make(factory: &str) -> Result<gst::Element, DecodeError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| DecodeError::Build(format!("element {factory}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// `seconds` of a tone as AAC in MPEG-TS, as ffmpeg (and the ingest's
    /// writer) lays it out.
    fn segment(dir: &Path, seconds: u32, channels: u8) -> Vec<u8> {
        let path = dir.join(format!("tone-{seconds}-{channels}.ts"));
        let status = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:duration={seconds}:sample_rate=48000"))
            .args(["-ac", &channels.to_string(), "-c:a", "aac", "-f", "mpegts"])
            .arg(&path)
            .status()
            .expect("ffmpeg (apt-get install ffmpeg)");
        assert!(status.success());
        std::fs::read(path).unwrap()
    }

    fn request(sample_rate_hz: u32, channels: u8, seconds: u64) -> PcmRequest {
        PcmRequest {
            sample_rate_hz,
            channels,
            duration: Duration::from_secs(seconds),
        }
    }

    fn decoder() -> SegmentDecoder {
        SegmentDecoder::new().expect("the decode elements (cargo xtask deps)")
    }

    /// Seconds of audio in `pcm` for `request`.
    fn seconds(pcm: &[u8], request: PcmRequest) -> f64 {
        pcm.len() as f64 / (request.sample_rate_hz as f64 * request.frame_bytes() as f64)
    }

    #[test]
    fn a_segment_decodes_to_the_requested_rate_and_channels() {
        let dir = tempfile::tempdir().unwrap();
        let decoder = decoder();
        for (source_channels, rate, channels) in [(2, 16_000, 1), (1, 8_000, 2), (2, 48_000, 2)] {
            let asked = request(rate, channels, 3);
            let pcm = decoder
                .decode_segment(segment(dir.path(), 3, source_channels), asked)
                .unwrap();
            assert_eq!(pcm.len() % asked.frame_bytes(), 0);
            let got = seconds(&pcm, asked);
            assert!((got - 3.0).abs() < 0.1, "{rate} Hz x{channels}: {got} s");
            // A tone, not silence.
            let loudest = pcm
                .chunks_exact(2)
                .map(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs())
                .max();
            assert!(loudest > Some(1000), "{loudest:?}");
        }
    }

    #[test]
    fn what_is_not_a_segment_is_a_typed_error() {
        let decoder = decoder();
        let garbage = decoder
            .decode_segment(b"not an MPEG-TS segment".repeat(100), request(16_000, 1, 6))
            .unwrap_err();
        assert!(matches!(garbage, DecodeError::NoAudio(_)), "{garbage}");
        let empty = decoder
            .decode_segment(Vec::new(), request(16_000, 1, 6))
            .unwrap_err();
        assert!(matches!(empty, DecodeError::NoAudio(_)), "{empty}");
    }

    #[test]
    fn output_beyond_what_the_segment_holds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A 6-s segment the manifest would call 1 s: the bound is 2 s.
        let err = decoder()
            .decode_segment(segment(dir.path(), 6, 1), request(16_000, 1, 1))
            .unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }), "{err}");
        assert_eq!(output_limit(request(16_000, 1, 6)), 16_000 * 2 * 12);
        assert_eq!(output_limit(request(8_000, 2, 0)), 8_000 * 4 * 2);
    }
}
