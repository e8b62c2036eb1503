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

use crate::pipeline::IngestPipeline;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

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
