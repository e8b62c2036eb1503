//! What a running worker reports, in order. A harness awaits these instead
//! of sleeping; the `ingest` binary prints them.

use tokio::sync::mpsc::UnboundedSender;

use crate::manifest::{ConnectionRecord, SegmentRecord};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// A connection attempt starts: `connection` is the number it gets if
    /// media comes (connections count those that carried media, as the
    /// manifest numbers them), `attempt` is 1-based within the current
    /// outage.
    Connecting {
        connection: u32,
        attempt: u32,
        url: String,
    },
    /// The server accepted the play (as the source guard saw it); media may
    /// come later: a server that lets readers wait for a publisher
    /// (nginx-rtmp) accepts at once.
    Playing {
        connection: u32,
    },
    /// The first bytes of the stream came from the server (rtmpsrc hands
    /// them over a block of 4096 bytes at a time, rtmp2src a message at a
    /// time).
    Connected {
        connection: u32,
    },
    /// Both tracks exist and carry H.264 and AAC.
    TracksValidated(ConnectionRecord),
    SegmentWritten(SegmentRecord),
    Disconnected {
        connection: u32,
        reason: String,
    },
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The worker stopped on an error it will not retry.
    Failed {
        kind: String,
        error: String,
    },
    Finished {
        video_segments: u64,
        audio_segments: u64,
        connections: u32,
    },
}

/// Sends events to the worker's owner and mirrors them to the log.
#[derive(Clone)]
pub struct EventSink {
    tx: UnboundedSender<WorkerEvent>,
}

impl EventSink {
    pub fn new(tx: UnboundedSender<WorkerEvent>) -> Self {
        Self { tx }
    }

    pub fn emit(&self, event: WorkerEvent) {
        tracing::debug!(?event, "worker event");
        // The owner may have stopped listening; the worker still finishes
        // its segments, so a closed channel is not an error.
        let _ = self.tx.send(event);
    }
}
