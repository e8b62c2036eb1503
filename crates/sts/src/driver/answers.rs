//! The STS's answers and what each does to the stream: an ack is reported
//! once, `fragment:processed` settles the fragment (its dub written),
//! `backpressure` closes the send gate for a while, a fragment `error` is
//! retried or fails the fragment, a session `error` ends the session.

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Driver, ms};
use crate::dubbed;
use crate::event::StsEvent;
use crate::ledger::ErrorOutcome;
use crate::protocol::{self, Backpressure, ErrorMessage, FragmentProcessed, ServerMessage};
use crate::socketio::LinkError;

impl Driver {
    pub(super) async fn on_message(
        &mut self,
        name: &str,
        data: Option<serde_json::Value>,
    ) -> Result<(), LinkError> {
        let message = protocol::parse(name, data).map_err(LinkError::Malformed)?;
        match message {
            ServerMessage::Ready(ready) => {
                debug!(max_inflight = ready.max_inflight, "stream:ready again");
                self.ledger.set_max_inflight(ready.max_inflight as usize);
            }
            ServerMessage::Ack(ack) => {
                if let Some(entry) = self.ledger.mark_acked(&ack.fragment_id) {
                    let event = StsEvent::FragmentAcked {
                        sequence_number: entry.fragment.sequence_number,
                        fragment_id: entry.fragment_id.clone(),
                    };
                    self.emit(event);
                }
            }
            ServerMessage::Processed(processed) => self.on_processed(*processed).await,
            ServerMessage::Backpressure(backpressure) => self.on_backpressure(backpressure),
            ServerMessage::Error(error) => match &error.fragment_id {
                Some(id) => self.on_fragment_error(id, &error),
                None => return Err(LinkError::Closed(error.describe())),
            },
            ServerMessage::Unknown(name) => debug!(%name, "ignored an event the protocol does not define"),
        }
        Ok(())
    }

    async fn on_processed(&mut self, processed: FragmentProcessed) {
        let Some(entry) = self.ledger.answered(&processed.fragment_id) else {
            // A resent fragment answered twice, or one already failed.
            debug!(fragment_id = %processed.fragment_id, "answer for a fragment already settled");
            return;
        };
        let seq = entry.fragment.sequence_number;
        if let Some(theirs) = processed.sequence_number
            && theirs != seq
        {
            warn!(
                seq,
                theirs, "fragment:processed names another sequence number; trusting fragment_id"
            );
        }
        let status = processed.status.unwrap_or_else(|| "success".into());
        let written = match &processed.dubbed_audio {
            Some(audio) => dubbed::write(&entry.fragment, audio, self.config.announced()).await,
            None => Err(format!(
                "fragment:processed (status {status:?}) carries no dubbed audio"
            )),
        };
        match written {
            Ok(dubbed_file) => {
                // A session that delivers is a healthy one: backoff starts over.
                self.failures = 0;
                self.processed += 1;
                self.settle(StsEvent::FragmentProcessed {
                    sequence_number: seq,
                    fragment_id: entry.fragment_id,
                    status,
                    dubbed_file,
                    transcript: processed.transcript,
                    translated_text: processed.translated_text,
                    processing_time_ms: processed.processing_time_ms,
                    round_trip_ms: ms(entry.submitted_at.elapsed()),
                    attempts: entry.attempts,
                });
            }
            Err(reason) => self.failed_entry(entry, reason),
        }
    }

    fn on_backpressure(&mut self, backpressure: Backpressure) {
        let recommended = backpressure.recommended_delay_ms.unwrap_or(0);
        let applied =
            std::time::Duration::from_millis(recommended).min(self.config.timeouts.max_backpressure_delay);
        self.send_gate = self.send_gate.max(Instant::now() + applied);
        info!(recommended_ms = recommended, applied = ?applied, severity = ?backpressure.severity, "STS backpressure");
        self.emit(StsEvent::Backpressure {
            severity: backpressure.severity,
            action: backpressure.action,
            recommended_delay_ms: recommended,
            applied_delay_ms: applied.as_millis() as u64,
        });
    }

    fn on_fragment_error(&mut self, fragment_id: &str, error: &ErrorMessage) {
        match self.ledger.errored(fragment_id) {
            ErrorOutcome::Retry { errors } => {
                warn!(%fragment_id, errors, reason = %error.describe(), "STS error for a fragment; sending it again");
            }
            ErrorOutcome::Failed(entry) => {
                let reason = format!("{} (after {} sends)", error.describe(), entry.attempts);
                self.failed_entry(entry, reason);
            }
            ErrorOutcome::Unknown => debug!(%fragment_id, "error for a fragment already settled"),
        }
    }
}
