//! One publish of the dubbed stream over RTMP:
//!
//! ```text
//! appsrc (H.264 Annex-B, SPS/PPS at each IDR) ─ h264parse ─┐
//!                                                          flvmux (streamable) ─ rtmp2sink
//! appsrc (AAC, ADTS) ──────────────────────────── aacparse ─┘
//! ```
//!
//! Codec copy: the parsers only reframe for FLV. Frames are pushed when
//! the schedule releases them (never blocking: a full source drops its
//! oldest buffer rather than hold the worker), with timestamps counted
//! from the publish's first frame. The sources are not live, so the muxer
//! waits for both tracks and writes every tag in timestamp order: FLV
//! timestamps only go forward, and a live muxer that wrote an audio tag
//! before an earlier picture had to move that picture's time forward (a
//! picture a few milliseconds late). What the bus says goes to `failure`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::schedule::OutFrame;
use crate::error::IngestError;
use crate::media::MediaKind;
use crate::rtmp_url::RtmpUrl;

/// Elements the output needs, for a prerequisite check.
pub const OUTPUT_ELEMENTS: [&str; 6] = ["appsrc", "h264parse", "aacparse", "flvmux", "rtmp2sink", "queue"];

/// What each source may hold before it drops: a few seconds of media.
const MAX_QUEUED_BYTES: u64 = 8 << 20;

pub(crate) struct Publisher {
    pipeline: gst::Pipeline,
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    failure: Arc<Mutex<Option<String>>>,
    /// Signalled by the end of stream (or an error) on the bus.
    ended: crossbeam_channel::Receiver<()>,
    /// The first frame's decode time: timestamps count from it.
    base: Option<u64>,
}

impl Publisher {
    pub fn start(url: &RtmpUrl) -> Result<Self, IngestError> {
        crate::gst_runtime::gst_init()?;
        let pipeline = gst::Pipeline::builder().name("output").build();
        let source = |caps: gst::Caps| -> Result<gst_app::AppSrc, IngestError> {
            let src = gst_app::AppSrc::builder()
                .caps(&caps)
                .format(gst::Format::Time)
                .is_live(false)
                .do_timestamp(false)
                .block(false)
                .max_bytes(MAX_QUEUED_BYTES)
                .leaky_type(gst_app::AppLeakyType::Downstream)
                .build();
            Ok(src)
        };
        let video = source(
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )?;
        let audio = source(
            gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "adts")
                .build(),
        )?;
        let h264parse = make("h264parse")?;
        let aacparse = make("aacparse")?;
        let (vq, aq) = (make("queue")?, make("queue")?);
        let mux = make("flvmux")?;
        mux.set_property("streamable", true);
        let sink = make("rtmp2sink")?;
        sink.set_property("location", url.expose());
        sink.set_property("sync", false);
        let elements: [&gst::Element; 8] = [
            video.upcast_ref(),
            &h264parse,
            &vq,
            audio.upcast_ref(),
            &aacparse,
            &aq,
            &mux,
            &sink,
        ];
        let failed = |e: &dyn std::fmt::Display| IngestError::Pipeline {
            source_element: "output".into(),
            message: e.to_string(),
            debug: None,
        };
        pipeline.add_many(elements).map_err(|e| failed(&e))?;
        gst::Element::link_many([video.upcast_ref(), &h264parse, &vq, &mux]).map_err(|e| failed(&e))?;
        gst::Element::link_many([audio.upcast_ref(), &aacparse, &aq, &mux]).map_err(|e| failed(&e))?;
        mux.link(&sink).map_err(|e| failed(&e))?;
        let failure = Arc::new(Mutex::new(None));
        let seen = failure.clone();
        let (ended_tx, ended) = crossbeam_channel::bounded(1);
        // Nothing is left queued on the bus: an error is kept, the end of
        // stream signalled, the rest dropped.
        pipeline
            .bus()
            .expect("a pipeline has a bus")
            .set_sync_handler(move |_, message| {
                match message.view() {
                    gst::MessageView::Error(err) => {
                        let source = message.src().map(|s| s.name().to_string()).unwrap_or_default();
                        let text = crate::rtmp_url::redact(&format!("{source}: {}", err.error()));
                        seen.lock().expect("failure lock").get_or_insert(text);
                        let _ = ended_tx.try_send(());
                    }
                    gst::MessageView::Eos(_) => {
                        let _ = ended_tx.try_send(());
                    }
                    _ => {}
                }
                gst::BusSyncReply::Drop
            });
        pipeline.set_state(gst::State::Playing).map_err(|e| failed(&e))?;
        Ok(Self {
            pipeline,
            video,
            audio,
            failure,
            ended,
            base: None,
        })
    }

    /// What went wrong, if anything has.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }

    pub fn push(&mut self, frame: &OutFrame) {
        let base = *self.base.get_or_insert(frame.dts.min(frame.pts));
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        {
            let buffer = buffer.get_mut().expect("a new buffer is writable");
            buffer.set_pts(gst::ClockTime::from_nseconds(frame.pts.saturating_sub(base)));
            buffer.set_dts(gst::ClockTime::from_nseconds(frame.dts.saturating_sub(base)));
            buffer.set_duration(gst::ClockTime::from_nseconds(frame.duration));
            if !frame.keyframe {
                buffer.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        let source = match frame.kind {
            MediaKind::Video => &self.video,
            MediaKind::Audio => &self.audio,
        };
        // A flushing or ended source refuses: the bus says why.
        let _ = source.push_buffer(buffer);
    }

    /// Ends the publish: end of stream through the muxer to the server,
    /// awaited at most `timeout`.
    pub fn finish(self, timeout: Duration) {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        let _ = self.ended.recv_timeout(timeout);
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
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
