//! Taking a connection's pipeline down without crashing in librtmp.
//!
//! rtmpsrc's `unlock` closes the librtmp connection from the thread that
//! changes state, while the streaming thread may be inside `RTMP_Read` on
//! the same connection. librtmp is not thread-safe: when media is still
//! flowing (a refused stream, a stop request) the two closes race and the
//! process dies in `RTMP_SendPacket`. So the streaming thread is first parked
//! in a blocking probe on the source pad, outside librtmp, and only then is
//! the state changed; deactivating the pad releases the probe and the thread
//! stops without reading again.
//!
//! Teardowns run on threads of their own (rtmpsrc's can wait seconds for a
//! silent read to time out) so the worker can report and reconnect; the
//! worker waits for them, within a bound, before it finishes, so normally
//! no GStreamer work outlives it.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use gstreamer as gst;
use gstreamer::prelude::*;

use crate::pipeline::IngestPipeline;

/// How long to wait for the next buffer to park the streaming thread on. A
/// flowing stream delivers one within tens of milliseconds; a silent one
/// has its thread blocked in a read, where the state change is safe.
const PARK_WITHIN: Duration = Duration::from_secs(1);

/// Parks the thread pushing on `pad` in a blocking probe, so that it is not
/// inside the source element when the pipeline's state changes. Returns
/// whether it was parked (or already idle); the probe goes when the pad is
/// deactivated.
pub(crate) fn park_streaming_thread(pad: &gst::Pad) -> bool {
    if pad.task_state() != gst::TaskState::Started {
        return true;
    }
    let (parked_tx, parked) = crossbeam_channel::bounded(1);
    let probe = pad.add_probe(
        gst::PadProbeType::BLOCK | gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, _| {
            let _ = parked_tx.try_send(());
            gst::PadProbeReturn::Ok
        },
    );
    if probe.is_none() {
        // The pad is already deactivated: nothing is streaming.
        return true;
    }
    parked.recv_timeout(PARK_WITHIN).is_ok()
}

/// The background teardowns of one worker.
pub(crate) struct Teardowns {
    // Each teardown thread holds a clone and drops it when done, so the
    // channel disconnects once the last one has finished.
    running: Sender<()>,
    finished: Receiver<()>,
}

impl Teardowns {
    pub fn new() -> Self {
        let (running, finished) = crossbeam_channel::bounded(0);
        Self { running, finished }
    }

    /// Takes `pipeline` down on a thread of its own.
    pub fn release(&self, pipeline: IngestPipeline) {
        let running = self.running.clone();
        let spawned = std::thread::Builder::new()
            .name("ingest-teardown".into())
            .spawn(move || {
                drop(pipeline);
                drop(running);
            });
        if let Err(e) = spawned {
            // The closure, and the pipeline with it, was dropped right here.
            tracing::warn!("could not start a teardown thread ({e}); the pipeline was taken down inline");
        }
    }

    /// Waits up to `within` for every teardown to finish; says whether
    /// they all did.
    pub fn wait(self, within: Duration) -> bool {
        let Self { running, finished } = self;
        drop(running);
        match finished.recv_timeout(within) {
            Err(RecvTimeoutError::Disconnected) => true,
            Ok(()) | Err(RecvTimeoutError::Timeout) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipeline whose source pushes as fast as it can, already streaming.
    fn streaming(source: &str) -> (gst::Pipeline, gst::Pad) {
        crate::gst_init().unwrap();
        let pipeline = gst::parse::launch(&format!("{source} name=source ! fakesink async=false"))
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let source = pipeline.by_name("source").unwrap();
        (pipeline, source.static_pad("src").unwrap())
    }

    #[test]
    fn a_flowing_source_is_parked_outside_the_element() {
        let (pipeline, pad) = streaming("fakesrc");
        assert!(park_streaming_thread(&pad));
        // Blocking means the streaming thread itself waits in the probe.
        // GStreamer sets that flag just after our callback returns and
        // raises no event for it, so it is awaited with a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !pad.is_blocking() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(pad.is_blocking());
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(!pad.is_blocking());
    }

    #[test]
    fn a_silent_source_is_reported_as_not_parked() {
        // appsrc with nothing pushed waits inside the element, like a read.
        let (pipeline, pad) = streaming("appsrc");
        assert!(!park_streaming_thread(&pad));
        assert!(!pad.is_blocking());
        pipeline.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_stopped_source_needs_no_parking() {
        let (pipeline, pad) = streaming("fakesrc num-buffers=0");
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(park_streaming_thread(&pad));
    }

    #[test]
    fn waiting_covers_every_released_pipeline() {
        let teardowns = Teardowns::new();
        let mut graphs = Vec::new();
        let url = crate::rtmp_url::RtmpUrl::parse("rtmp://127.0.0.1:1/live/x/in").unwrap();
        for source in [crate::SourceElement::Rtmpsrc, crate::SourceElement::Rtmp2src] {
            let settings = crate::pipeline::PipelineSettings {
                source,
                url: &url,
                max_buffers: 10,
            };
            let (tx, _rx) = crossbeam_channel::unbounded();
            let pipeline = IngestPipeline::build(&settings, tx).unwrap();
            graphs.push(pipeline.downgrade());
            teardowns.release(pipeline);
        }
        assert!(teardowns.wait(Duration::from_secs(10)));
        // Done means the graphs were freed, not merely that the wait returned.
        assert!(graphs.iter().all(|g| g.upgrade().is_none()));
    }
}
