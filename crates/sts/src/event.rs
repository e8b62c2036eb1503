//! What the client reports, one event per step, so an owner (the ingest,
//! a harness) awaits these instead of sleeping, and can write them as JSON
//! lines (`{"event":"fragment_processed",...}`).

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StsEvent {
    /// `stream:ready` arrived; `connection` counts sessions from 1.
    SessionReady {
        session_id: String,
        max_inflight: u32,
        connection: u32,
    },
    /// A connection attempt (websocket, handshakes or `stream:init`) failed.
    ConnectFailed {
        attempt: u32,
        reason: String,
        retry_in_ms: u64,
    },
    /// A ready session ended; its unanswered fragments will be resent.
    Disconnected { reason: String, connection: u32 },
    FragmentSent {
        sequence_number: u64,
        fragment_id: String,
        /// 1 for the first send; resends after a reconnect or an `error`
        /// count up and keep the fragment_id.
        attempt: u32,
        /// From submission to the websocket write completing.
        queued_ms: f64,
    },
    FragmentAcked {
        sequence_number: u64,
        fragment_id: String,
    },
    FragmentProcessed {
        sequence_number: u64,
        fragment_id: String,
        status: String,
        dubbed_file: PathBuf,
        transcript: Option<String>,
        translated_text: Option<String>,
        processing_time_ms: Option<f64>,
        /// From submission to the dubbed file being in place.
        round_trip_ms: f64,
        attempts: u32,
    },
    FragmentFailed {
        sequence_number: u64,
        fragment_id: String,
        reason: String,
        attempts: u32,
    },
    /// Refused at submission; the segment stays on disk.
    FragmentNotSent {
        sequence_number: u64,
        file: PathBuf,
        reason: String,
    },
    Backpressure {
        severity: Option<String>,
        action: Option<String>,
        recommended_delay_ms: u64,
        /// What the client waits: the recommendation within the cap.
        applied_delay_ms: u64,
    },
    /// The last event: everything settled and `stream:end` sent if a
    /// session was up.
    StreamEnded(EndSummary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct EndSummary {
    pub processed: u64,
    pub failed: u64,
    pub not_sent: u64,
    pub stream_end_sent: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_snake_case_tag() {
        let event = StsEvent::FragmentNotSent {
            sequence_number: 3,
            file: "audio_000003.ts".into(),
            reason: "queue full".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "fragment_not_sent");
        assert_eq!(json["sequence_number"], 3);
        let ended = serde_json::to_value(StsEvent::StreamEnded(EndSummary::default())).unwrap();
        assert_eq!(ended["event"], "stream_ended");
        assert_eq!(ended["stream_end_sent"], false);
        let back: StsEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
