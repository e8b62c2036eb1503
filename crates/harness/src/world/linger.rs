//! The end of a publish: the publisher has left, and its relay holds the
//! close until the ingest has the last frame (see `LingeringRelay`).

use ingest::WorkerHandle;
use media_tools::LingeringRelay;

use crate::world::ingest::Ingest;
use crate::world::observation::StreamObservation;

/// The highest presentation times (ms) of a publish's frames.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub video_pts_ms: Option<u32>,
    pub audio_pts_ms: Option<u32>,
}

impl Received {
    /// Whether the ingest has every frame up to these. A server may round
    /// a picture's presentation time down by a millisecond (MediaMTX makes
    /// its own decode times), hence the two milliseconds of slack in what
    /// is waited for (not in what is checked).
    fn by(&self, reception: &ingest::Reception) -> bool {
        let has = |wanted: Option<u32>, got: Option<u64>| {
            wanted.is_none_or(|ms| got.is_some_and(|ns| ns + 2_000_000 >= u64::from(ms) * 1_000_000))
        };
        has(self.video_pts_ms, reception.video_pts_ns) && has(self.audio_pts_ms, reception.audio_pts_ns)
    }
}

/// The publisher has left; its relay tells the server once the ingest has
/// the last frame (or the worker is done, or the relay gave up waiting),
/// and this returns once the server has been told.
pub(crate) async fn linger_until_received(
    relay: &LingeringRelay,
    last: Received,
    ingest: &mut Ingest,
    observation: &mut StreamObservation,
    deadline: tokio::time::Instant,
) {
    let Some(mut reception) = ingest.handle.as_ref().map(WorkerHandle::reception) else {
        // No worker to wait for.
        relay.release();
        relay.closed().await;
        return;
    };
    loop {
        tokio::select! {
            _ = reception.wait_for(|r| last.by(r)) => break,
            () = relay.closed() => return,
            event = ingest.next(&mut observation.events) => {
                if event.is_none() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                observation.timed_out = true;
                break;
            }
        }
    }
    relay.release();
    relay.closed().await;
}
