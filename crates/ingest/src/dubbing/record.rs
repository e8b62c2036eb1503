//! What an STS client event means for the worker: a worker event, and for
//! fragment steps the manifest record it carries. Pure, so the mapping is
//! tested without an STS.

use std::collections::HashSet;
use std::path::Path;

use sts::StsEvent;

use crate::events::WorkerEvent;
use crate::manifest::{FragmentRecord, FragmentStatus};

/// The worker event for `event`; `None` for what only the log needs.
pub(crate) fn worker_event(event: StsEvent) -> Option<WorkerEvent> {
    let record = |index, id: String, status| FragmentRecord {
        fragment_id: Some(id),
        ..FragmentRecord::new(index, status)
    };
    Some(match event {
        StsEvent::SessionReady {
            session_id,
            max_inflight,
            connection,
        } => WorkerEvent::StsReady {
            session_id,
            max_inflight,
            connection,
        },
        StsEvent::ConnectFailed {
            attempt,
            reason,
            retry_in_ms,
        } => WorkerEvent::StsConnectFailed {
            attempt,
            reason,
            retry_in_ms,
        },
        StsEvent::Disconnected { reason, connection } => WorkerEvent::StsDisconnected { connection, reason },
        StsEvent::FragmentSent {
            sequence_number,
            fragment_id,
            attempt,
            ..
        } => WorkerEvent::FragmentSent(FragmentRecord {
            attempts: Some(attempt),
            ..record(sequence_number, fragment_id, FragmentStatus::Sent)
        }),
        StsEvent::FragmentAcked {
            sequence_number,
            fragment_id,
        } => WorkerEvent::FragmentAcked(record(sequence_number, fragment_id, FragmentStatus::Acked)),
        StsEvent::FragmentProcessed {
            sequence_number,
            fragment_id,
            dubbed_file,
            processing_time_ms,
            round_trip_ms,
            attempts,
            ..
        } => WorkerEvent::FragmentProcessed(FragmentRecord {
            attempts: Some(attempts),
            round_trip_ms: Some(round_trip_ms),
            processing_time_ms,
            // The dub sits next to its segment: its name is enough, as
            // for the segments' own records.
            dubbed_file: Some(file_name(&dubbed_file)),
            ..record(sequence_number, fragment_id, FragmentStatus::Processed)
        }),
        StsEvent::FragmentFailed {
            sequence_number,
            fragment_id,
            reason,
            attempts,
        } => WorkerEvent::FragmentFailed(FragmentRecord {
            attempts: Some(attempts),
            reason: Some(reason),
            ..record(sequence_number, fragment_id, FragmentStatus::Failed)
        }),
        StsEvent::FragmentNotSent {
            sequence_number,
            reason,
            ..
        } => WorkerEvent::FragmentNotSent(FragmentRecord {
            reason: Some(reason),
            ..FragmentRecord::new(sequence_number, FragmentStatus::NotSent)
        }),
        StsEvent::Backpressure {
            severity,
            recommended_delay_ms,
            applied_delay_ms,
            ..
        } => {
            tracing::info!(
                ?severity,
                recommended_delay_ms,
                applied_delay_ms,
                "the STS asked to slow down"
            );
            return None;
        }
        StsEvent::StreamEnded(summary) => WorkerEvent::StsEnded {
            processed: summary.processed,
            failed: summary.failed,
            not_sent: summary.not_sent,
            stream_end_sent: summary.stream_end_sent,
        },
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Keeps each fragment's final status to one record, whatever arrives.
#[derive(Default)]
pub(crate) struct Settled(HashSet<u64>);

impl Settled {
    /// Whether `record` is to be written: not a second final status.
    pub(crate) fn admit(&mut self, record: &FragmentRecord) -> bool {
        !record.status.is_final() || self.0.insert(record.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processed(seq: u64) -> StsEvent {
        StsEvent::FragmentProcessed {
            sequence_number: seq,
            fragment_id: format!("cam1-00000001-{seq:06}"),
            status: "success".into(),
            dubbed_file: format!("/out/cam1/dubbed_{seq:06}.aac").into(),
            transcript: None,
            translated_text: None,
            processing_time_ms: Some(12.0),
            round_trip_ms: 340.5,
            attempts: 1,
        }
    }

    #[test]
    fn a_processed_fragment_records_its_dub_and_round_trip() {
        let event = worker_event(processed(3)).unwrap();
        let WorkerEvent::FragmentProcessed(record) = &event else {
            panic!("{event:?}")
        };
        assert_eq!(record.index, 3);
        assert_eq!(record.status, FragmentStatus::Processed);
        assert_eq!(record.dubbed_file.as_deref(), Some("dubbed_000003.aac"));
        assert_eq!(record.round_trip_ms, Some(340.5));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "fragment_processed");
        assert_eq!(json["fragment_id"], "cam1-00000001-000003");
        assert!(json.get("reason").is_none(), "{json}");
    }

    #[test]
    fn failures_and_refusals_carry_the_reason() {
        let failed = worker_event(StsEvent::FragmentFailed {
            sequence_number: 1,
            fragment_id: "x-1".into(),
            reason: "unanswered after 30s".into(),
            attempts: 2,
        })
        .unwrap();
        let record = failed.fragment().unwrap();
        assert_eq!(
            (record.status, record.reason.as_deref(), record.attempts),
            (FragmentStatus::Failed, Some("unanswered after 30s"), Some(2))
        );
        let refused = worker_event(StsEvent::FragmentNotSent {
            sequence_number: 9,
            file: "audio_000009.ts".into(),
            reason: "queue full".into(),
        })
        .unwrap();
        let record = refused.fragment().unwrap();
        assert_eq!(record.status, FragmentStatus::NotSent);
        assert_eq!(record.fragment_id, None);
        assert_eq!(
            serde_json::to_value(&refused).unwrap()["event"],
            "fragment_not_sent"
        );
    }

    #[test]
    fn a_second_final_status_is_not_admitted() {
        let mut settled = Settled::default();
        let sent = worker_event(StsEvent::FragmentSent {
            sequence_number: 0,
            fragment_id: "x-0".into(),
            attempt: 1,
            queued_ms: 1.0,
        })
        .unwrap();
        let done = worker_event(processed(0)).unwrap();
        assert!(settled.admit(sent.fragment().unwrap()));
        assert!(settled.admit(done.fragment().unwrap()));
        assert!(!settled.admit(done.fragment().unwrap()));
        // Steps before the end may repeat (a resend is sent again).
        assert!(settled.admit(sent.fragment().unwrap()));
    }

    #[test]
    fn backpressure_is_only_logged() {
        let event = StsEvent::Backpressure {
            severity: Some("high".into()),
            action: None,
            recommended_delay_ms: 200,
            applied_delay_ms: 200,
        };
        assert_eq!(worker_event(event), None);
    }
}
