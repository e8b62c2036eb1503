//! Parking a source's streaming thread outside librtmp before its
//! pipeline's state changes (see [`crate::teardown`] for why): used by the
//! pipeline when it stops itself and by the teardowns, so it belongs to
//! neither.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipeline whose source pushes as fast as it can, already streaming.
    fn streaming(source: &str) -> (gst::Pipeline, gst::Pad) {
        crate::gst_runtime::gst_init().unwrap();
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
}
