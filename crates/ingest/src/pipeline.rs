//! The GStreamer graph, built per connection:
//!
//! ```text
//!                        ┌─ video ─ h264parse ─ capsfilter(byte-stream, au) ─ queue ─ appsink
//! rtmpsrc|rtmp2src ─ flvdemux
//!                        └─ audio ─ aacparse ─ capsfilter(adts) ─ queue ─ appsink
//! ```
//!
//! In front of flvdemux, a probe on the source's pad runs the FLV stream
//! through the [`JoinGate`]: the tracks are announced by their first tags,
//! and audio waits for the first picture, so a worker that joins a running
//! stream with a long GOP still gets both pads.
//!
//! Branches are created inside `pad-added`, once a track is known to exist
//! and to carry a codec we serve, so a missing track leaves no sink waiting
//! for preroll. Codec copy throughout: parsers only reframe (Annex-B with
//! SPS/PPS before every IDR, ADTS headers), nothing is decoded.
//!
//! Everything the graph learns is sent, without blocking, as a
//! [`PipelineMessage`] over one channel, in the order it happened.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::Sender;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::config::SourceElement;
use crate::error::IngestError;
use crate::join_gate::{GateNews, JoinFacts, JoinGate, Verdict};
use crate::media::{MediaBuffer, MediaKind};
use crate::rtmp_url::RtmpUrl;
use crate::tracks::{self, TrackCaps};

/// Elements the ingest needs, for a prerequisite check.
pub const REQUIRED_ELEMENTS: [&str; 8] = [
    "rtmpsrc",
    "rtmp2src",
    "flvdemux",
    "h264parse",
    "aacparse",
    "capsfilter",
    "queue",
    "appsink",
];

/// librtmp's default read timeout is 120 s; MediaMTX gives up on a silent
/// peer after 10 s, and so do we.
const RTMPSRC_TIMEOUT_S: i32 = 10;

/// Buffers waiting for the segment writer before the connection is failed
/// (about 40 s of 30 fps video with 48 kHz AAC): memory stays bounded and
/// the reason is said, rather than buffers being dropped unnoticed.
const MAX_BACKLOG: usize = 3000;

#[derive(Debug)]
pub enum PipelineMessage {
    /// The first bytes came from the server.
    SourceData,
    /// A track's first tag came (a sequence header will do), naming its
    /// codec; its first frame may come much later.
    Announced {
        kind: MediaKind,
        caps: TrackCaps,
    },
    /// The first picture came; what the connection received before it.
    Joined(JoinFacts),
    /// flvdemux exposed a track.
    Track {
        kind: MediaKind,
        caps: TrackCaps,
    },
    Buffer(MediaBuffer),
    CapsChanged {
        kind: MediaKind,
        from: TrackCaps,
        to: TrackCaps,
    },
    EndOfStream,
    Error {
        element: String,
        message: String,
        debug: Option<String>,
    },
}

pub struct PipelineSettings<'a> {
    pub source: SourceElement,
    pub url: &'a RtmpUrl,
    pub max_buffers: u32,
}

/// When bytes most recently left the source, and, per track, the arrival of
/// each demuxed buffer still on its way to the appsink.
/// Buffers demuxed but not yet at the appsink: (PTS, arrival).
type InFlight = Mutex<VecDeque<(Option<u64>, Instant)>>;

#[derive(Default)]
struct ArrivalClock {
    latest_source: Mutex<Option<Instant>>,
    in_flight: [InFlight; 2],
}

impl ArrivalClock {
    fn queue(&self, kind: MediaKind) -> &InFlight {
        &self.in_flight[kind.index()]
    }

    fn record_source(&self) -> bool {
        let mut latest = self.latest_source.lock().expect("arrival lock");
        let first = latest.is_none();
        *latest = Some(Instant::now());
        first
    }

    fn record_demuxed(&self, kind: MediaKind, pts: Option<u64>) {
        let at = self
            .latest_source
            .lock()
            .expect("arrival lock")
            .unwrap_or_else(Instant::now);
        self.queue(kind)
            .lock()
            .expect("arrival lock")
            .push_back((pts, at));
    }

    /// Parsers pass buffers through one for one, so the oldest entry with a
    /// matching PTS is this buffer's arrival.
    fn take(&self, kind: MediaKind, pts: Option<u64>) -> Instant {
        let mut queue = self.queue(kind).lock().expect("arrival lock");
        while let Some((queued_pts, at)) = queue.pop_front() {
            if queued_pts == pts || queue.is_empty() {
                return at;
            }
        }
        Instant::now()
    }
}

pub struct IngestPipeline {
    pipeline: gst::Pipeline,
    source_pad: gst::Pad,
    demux_sink: gst::Pad,
}

impl IngestPipeline {
    pub fn build(settings: &PipelineSettings<'_>, tx: Sender<PipelineMessage>) -> Result<Self, IngestError> {
        crate::gst_runtime::gst_init()?;
        let pipeline = gst::Pipeline::builder().name("ingest").build();
        let source = make(settings.source.factory_name())?;
        source.set_property("location", settings.url.expose());
        match settings.source {
            SourceElement::Rtmpsrc => source.set_property("timeout", RTMPSRC_TIMEOUT_S),
            // Without an idle timeout a silent server would hang rtmp2src for ever.
            SourceElement::Rtmp2src => source.set_property("idle-timeout", RTMPSRC_TIMEOUT_S as u32),
        }
        // flvdemux has no buffering properties (no max-buffers): the limit
        // is applied to each branch's queue and appsink instead.
        let demux = make("flvdemux")?;
        pipeline
            .add_many([&source, &demux])
            .map_err(|e| pipeline_error("pipeline", e))?;
        source.link(&demux).map_err(|e| pipeline_error("source", e))?;

        let arrivals = Arc::new(ArrivalClock::default());
        let source_pad = source.static_pad("src").expect("sources have a src pad");
        let (probe_tx, probe_arrivals) = (tx.clone(), arrivals.clone());
        let gate = GateProbe::default();
        source_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if probe_arrivals.record_source() {
                let _ = probe_tx.send(PipelineMessage::SourceData);
            }
            gate.pass(info, &probe_tx)
        });

        let weak_pipeline = pipeline.downgrade();
        let max_buffers = settings.max_buffers;
        let pad_tx = tx.clone();
        demux.connect_pad_added(move |_, pad| {
            let Some(pipeline) = weak_pipeline.upgrade() else {
                return;
            };
            let kind = match pad.name().as_str() {
                "video" => MediaKind::Video,
                "audio" => MediaKind::Audio,
                _ => return,
            };
            let caps = pad.current_caps().map(|c| track_caps(&c)).unwrap_or_default();
            let acceptable = tracks::check(kind, &caps).is_ok();
            let _ = pad_tx.send(PipelineMessage::Track {
                kind,
                caps: caps.clone(),
            });
            if !acceptable {
                return;
            }
            let probe_arrivals = arrivals.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    probe_arrivals.record_demuxed(kind, buffer.pts().map(gst::ClockTime::nseconds));
                }
                gst::PadProbeReturn::Ok
            });
            // A codec switch shows as new caps on the demuxer's pad; the
            // parser would only fail with "not negotiated", so it is caught
            // here, before the parser sees it.
            let (first_caps, caps_tx) = (caps.clone(), pad_tx.clone());
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                let Some(gst::EventView::Caps(event)) = info.event().map(|e| e.view()) else {
                    return gst::PadProbeReturn::Ok;
                };
                let new = track_caps(event.caps());
                if new.identity() == first_caps.identity() {
                    return gst::PadProbeReturn::Ok;
                }
                let _ = caps_tx.send(PipelineMessage::CapsChanged {
                    kind,
                    from: first_caps.clone(),
                    to: new,
                });
                gst::PadProbeReturn::Drop
            });
            let branch = Branch {
                kind,
                max_buffers,
                tx: pad_tx.clone(),
                arrivals: arrivals.clone(),
            };
            if let Err(e) = branch.attach(&pipeline, pad) {
                let _ = pad_tx.send(PipelineMessage::Error {
                    element: format!("{kind} branch"),
                    message: e.to_string(),
                    debug: None,
                });
            }
        });

        let bus = pipeline.bus().expect("a pipeline has a bus");
        bus.set_sync_handler(move |_, message| {
            forward_bus_message(message, &tx);
            gst::BusSyncReply::Drop
        });
        let demux_sink = demux.static_pad("sink").expect("flvdemux has a sink pad");
        Ok(Self {
            pipeline,
            source_pad,
            demux_sink,
        })
    }

    /// Ends the stream from our side, after the source failed: what the
    /// parsers and queues still hold reaches the appsinks, then the
    /// pipeline's end of stream follows. (A source that fails at the end of
    /// a stream, as rtmpsrc does when its reconnect finds nobody, would
    /// otherwise take the queued frames down with it.)
    pub fn drain(&self) -> bool {
        self.demux_sink.send_event(gst::event::Eos::new())
    }

    /// Starts streaming. With rtmpsrc this connects synchronously, so it must
    /// never run on an async runtime's thread.
    pub fn play(&self) -> Result<(), String> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A reference that does not keep the graph alive, to see it freed.
    #[cfg(test)]
    pub(crate) fn downgrade(&self) -> gst::glib::WeakRef<gst::Pipeline> {
        self.pipeline.downgrade()
    }

    /// Factory names of every element currently in the graph.
    #[cfg(test)]
    fn element_factories(&self) -> Vec<String> {
        self.pipeline
            .iterate_recurse()
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .collect()
    }
}

impl Drop for IngestPipeline {
    fn drop(&mut self) {
        if !crate::streaming_thread::park_streaming_thread(&self.source_pad) {
            tracing::debug!("no buffer came to park the source's thread on; stopping it mid-read");
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The [`JoinGate`] on the source's pad; once open, a flag read per buffer.
#[derive(Default)]
struct GateProbe {
    open: std::sync::atomic::AtomicBool,
    gate: Mutex<JoinGate>,
}

impl GateProbe {
    fn pass(&self, info: &mut gst::PadProbeInfo<'_>, tx: &Sender<PipelineMessage>) -> gst::PadProbeReturn {
        use std::sync::atomic::Ordering;
        if self.open.load(Ordering::Acquire) {
            return gst::PadProbeReturn::Ok;
        }
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Ok(map) = buffer.map_readable() else {
            return gst::PadProbeReturn::Ok;
        };
        let mut gate = self.gate.lock().expect("gate lock");
        let (mut out, mut news) = (Vec::new(), Vec::new());
        let verdict = gate.push(map.as_slice(), &mut out, &mut news);
        drop(map);
        for news in news {
            let _ = tx.send(match news {
                GateNews::Announced { kind, caps } => PipelineMessage::Announced { kind, caps },
                GateNews::Opened(facts) => PipelineMessage::Joined(facts),
            });
        }
        if gate.is_open() {
            self.open.store(true, Ordering::Release);
        }
        match verdict {
            Verdict::AsIs => gst::PadProbeReturn::Ok,
            Verdict::Rewritten if out.is_empty() => gst::PadProbeReturn::Drop,
            Verdict::Rewritten => {
                let mut replaced = gst::Buffer::from_mut_slice(out);
                {
                    let replaced = replaced.get_mut().expect("a new buffer is writable");
                    replaced.set_flags(buffer.flags());
                    replaced.set_pts(buffer.pts());
                    replaced.set_dts(buffer.dts());
                }
                info.data = Some(gst::PadProbeData::Buffer(replaced));
                gst::PadProbeReturn::Ok
            }
        }
    }
}

struct Branch {
    kind: MediaKind,
    max_buffers: u32,
    tx: Sender<PipelineMessage>,
    arrivals: Arc<ArrivalClock>,
}

impl Branch {
    fn attach(self, pipeline: &gst::Pipeline, demux_pad: &gst::Pad) -> Result<(), IngestError> {
        let (parser, output_caps) = match self.kind {
            MediaKind::Video => {
                let parse = make("h264parse")?;
                // SPS/PPS before every IDR, so each segment decodes alone.
                parse.set_property("config-interval", -1i32);
                let caps = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build();
                (parse, caps)
            }
            MediaKind::Audio => {
                let caps = gst::Caps::builder("audio/mpeg")
                    .field("stream-format", "adts")
                    .build();
                (make("aacparse")?, caps)
            }
        };
        let filter = make("capsfilter")?;
        filter.set_property("caps", &output_caps);
        let queue = make("queue")?;
        queue.set_property("max-size-buffers", self.max_buffers);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        let sink = make("appsink")?
            .downcast::<gst_app::AppSink>()
            .expect("appsink is an AppSink");
        // Not live: a sink waiting for preroll would block the other track,
        // and syncing to the clock would only add latency.
        sink.set_property("sync", false);
        sink.set_property("async", false);
        sink.set_property("enable-last-sample", false);
        sink.set_max_buffers(self.max_buffers);
        sink.set_drop(false);

        let elements = [&parser, &filter, &queue, sink.upcast_ref()];
        pipeline
            .add_many(elements)
            .map_err(|e| pipeline_error("pipeline", e))?;
        gst::Element::link_many(elements).map_err(|e| pipeline_error("branch", e))?;
        for element in elements {
            element
                .sync_state_with_parent()
                .map_err(|e| pipeline_error("branch", e))?;
        }
        let parser_sink = parser.static_pad("sink").expect("parsers have a sink pad");
        demux_pad
            .link(&parser_sink)
            .map_err(|e| pipeline_error("flvdemux", e))?;
        sink.set_callbacks(self.callbacks());
        Ok(())
    }

    fn callbacks(self) -> gst_app::AppSinkCallbacks {
        let Branch {
            kind, tx, arrivals, ..
        } = self;
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buffer) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let pts = buffer.pts().map(gst::ClockTime::nseconds);
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let media = MediaBuffer {
                    kind,
                    data: Bytes::copy_from_slice(map.as_slice()),
                    pts,
                    dts: buffer.dts().map(gst::ClockTime::nseconds),
                    duration: buffer.duration().map(gst::ClockTime::nseconds),
                    keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                    arrival: arrivals.take(kind, pts),
                };
                // The channel never blocks this streaming thread; its
                // backlog is bounded by failing the connection instead.
                if tx.len() >= MAX_BACKLOG {
                    let _ = tx.send(PipelineMessage::Error {
                        element: format!("{kind} appsink"),
                        message: format!(
                            "the ingest fell {MAX_BACKLOG} buffers behind the stream (is the disk too slow?)"
                        ),
                        debug: None,
                    });
                    return Err(gst::FlowError::Error);
                }
                tx.send(PipelineMessage::Buffer(media))
                    .map_err(|_| gst::FlowError::Flushing)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build()
    }
}

fn forward_bus_message(message: &gst::Message, tx: &Sender<PipelineMessage>) {
    match message.view() {
        gst::MessageView::Eos(_) => {
            let _ = tx.send(PipelineMessage::EndOfStream);
        }
        gst::MessageView::Error(err) => {
            let _ = tx.send(PipelineMessage::Error {
                element: message
                    .src()
                    .map(|s| s.name().to_string())
                    .unwrap_or_else(|| "pipeline".into()),
                message: crate::rtmp_url::redact(&err.error().to_string()),
                debug: err.debug().map(|d| crate::rtmp_url::redact(d.as_str())),
            });
        }
        gst::MessageView::Warning(warning) => {
            tracing::warn!(
                element = message.src().map(|s| s.name().to_string()).unwrap_or_default(),
                "{}",
                crate::rtmp_url::redact(&warning.error().to_string())
            );
        }
        _ => {}
    }
}

fn track_caps(caps: &gst::CapsRef) -> TrackCaps {
    let Some(s) = caps.structure(0) else {
        return TrackCaps::default();
    };
    TrackCaps {
        media_type: s.name().to_string(),
        mpegversion: s.get::<i32>("mpegversion").ok(),
        layer: s.get::<i32>("layer").ok(),
        rate: s.get::<i32>("rate").ok(),
        channels: s.get::<i32>("channels").ok(),
    }
}

fn make(factory: &str) -> Result<gst::Element, IngestError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| IngestError::MissingElement {
            element: factory.to_owned(),
            reason: e.to_string(),
        })
}

fn pipeline_error(element: &str, e: impl std::fmt::Display) -> IngestError {
    IngestError::Pipeline {
        source_element: element.to_owned(),
        message: e.to_string(),
        debug: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_pulls_rtmp_into_flvdemux_and_has_no_rtsp() {
        let url = RtmpUrl::parse("rtmp://127.0.0.1:1/live/x/in").unwrap();
        for source in [SourceElement::Rtmpsrc, SourceElement::Rtmp2src] {
            let (tx, _rx) = crossbeam_channel::unbounded();
            let settings = PipelineSettings {
                source,
                url: &url,
                max_buffers: 10,
            };
            let pipeline = IngestPipeline::build(&settings, tx).unwrap();
            let factories = pipeline.element_factories();
            assert!(
                factories.contains(&source.factory_name().to_owned()),
                "{factories:?}"
            );
            assert!(factories.contains(&"flvdemux".to_owned()), "{factories:?}");
            assert!(factories.iter().all(|f| !f.contains("rtsp")), "{factories:?}");
        }
    }

    #[test]
    fn arrival_clock_matches_buffers_by_pts() {
        let clock = ArrivalClock::default();
        let (early, late) = (Instant::now(), Instant::now() + std::time::Duration::from_secs(1));
        let arrive = |at| *clock.latest_source.lock().unwrap() = Some(at);
        arrive(early);
        clock.record_demuxed(MediaKind::Video, Some(1));
        clock.record_demuxed(MediaKind::Audio, Some(1));
        arrive(late);
        clock.record_demuxed(MediaKind::Video, Some(2));
        clock.record_demuxed(MediaKind::Video, Some(3));
        // A buffer the parser dropped (PTS 1) is skipped, not matched.
        assert_eq!(clock.take(MediaKind::Video, Some(2)), late);
        assert_eq!(clock.take(MediaKind::Video, Some(3)), late);
        // Tracks keep separate queues.
        assert_eq!(clock.take(MediaKind::Audio, Some(1)), early);
        assert!(clock.queue(MediaKind::Video).lock().unwrap().is_empty());
    }
}
