//! What a running worker reports, in order. A harness awaits these instead
//! of sleeping; the `ingest` binary prints them.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use crate::manifest::{ConnectionRecord, FragmentRecord, OutputRecord, SegmentRecord};

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
        kind: crate::error::ErrorKind,
        error: String,
    },
    /// The STS session is up (`stream:ready`); `connection` counts STS
    /// sessions from 1.
    StsReady {
        session_id: String,
        max_inflight: u32,
        connection: u32,
    },
    /// Connecting to the STS failed; it is retried after `retry_in_ms`
    /// while segmenting goes on.
    StsConnectFailed {
        attempt: u32,
        reason: String,
        retry_in_ms: u64,
    },
    /// A ready STS session ended; its unanswered fragments will be resent.
    StsDisconnected {
        connection: u32,
        reason: String,
    },
    /// One per send of an audio segment (`fragment:data`).
    FragmentSent(FragmentRecord),
    FragmentAcked(FragmentRecord),
    /// The dubbed audio is in place; with the round-trip time.
    FragmentProcessed(FragmentRecord),
    FragmentFailed(FragmentRecord),
    /// Refused at submission (the STS queue was full).
    FragmentNotSent(FragmentRecord),
    /// The STS stream ended (`stream:end` sent if a session was up), before
    /// `finished`.
    StsEnded {
        processed: u64,
        failed: u64,
        not_sent: u64,
        stream_end_sent: bool,
    },
    /// The dubbed output started publishing input connection `connection`.
    OutputStarted {
        connection: u32,
        url: String,
    },
    /// What the output carried for one audio span.
    OutputSpan(OutputRecord),
    /// The output's publish of input connection `connection` ended (after
    /// its last span), or failed (it starts again at the next keyframe).
    OutputEnded {
        connection: u32,
        failure: Option<String>,
        /// Pictures this publish sent.
        #[serde(default)]
        pictures: u64,
    },
    Finished {
        video_segments: u64,
        audio_segments: u64,
        connections: u32,
    },
}

impl WorkerEvent {
    /// The manifest record a fragment event carries.
    pub fn fragment(&self) -> Option<&FragmentRecord> {
        match self {
            Self::FragmentSent(r)
            | Self::FragmentAcked(r)
            | Self::FragmentProcessed(r)
            | Self::FragmentFailed(r)
            | Self::FragmentNotSent(r) => Some(r),
            _ => None,
        }
    }
}

/// Sees every event after the owner was sent it (how STS delivery learns
/// that an audio segment was written, without the writer knowing of it).
pub(crate) type Tap = Arc<dyn Fn(&WorkerEvent) + Send + Sync>;

/// Sends events to the worker's owner and mirrors them to the log.
#[derive(Clone)]
pub struct EventSink {
    tx: UnboundedSender<WorkerEvent>,
    tap: Option<Tap>,
}

impl EventSink {
    pub fn new(tx: UnboundedSender<WorkerEvent>) -> Self {
        Self { tx, tap: None }
    }

    /// The same sink, with `tap` called on every event.
    /// The same sink, with `tap` called on every event too (after any tap
    /// it already had).
    pub(crate) fn tapped(&self, tap: Tap) -> Self {
        let tap = match self.tap.clone() {
            None => tap,
            Some(first) => std::sync::Arc::new(move |event: &WorkerEvent| {
                first(event);
                tap(event);
            }),
        };
        Self {
            tx: self.tx.clone(),
            tap: Some(tap),
        }
    }

    pub fn emit(&self, event: WorkerEvent) {
        tracing::debug!(?event, "worker event");
        // The tap runs after the send, so the owner always sees a segment
        // written before anything the tap's work reports about it.
        let tapped = self.tap.as_ref().map(|tap| (tap, event.clone()));
        // The owner may have stopped listening; the worker still finishes
        // its segments, so a closed channel is not an error.
        let _ = self.tx.send(event);
        if let Some((tap, event)) = tapped {
            tap(&event);
        }
    }
}
