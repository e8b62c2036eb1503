//! The caller's side: start a stream's client, submit segments, end it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, error, warn};

use crate::config::{AudioFormat, StsConfig};
use crate::driver::{Command, Driver, Shared, Submission};
use crate::error::{ConfigError, StsError, SubmitError};
use crate::event::{EndSummary, StsEvent};
use crate::fragment::Fragment;
use crate::payload::pcm::PcmDecoder;

/// Starts the STS delivery of one stream.
#[derive(Debug)]
pub struct StsClient;

impl StsClient {
    /// Validates `config` and starts the stream's task on the current Tokio
    /// runtime. It connects at once (reconnecting with backoff while the
    /// STS is away); submissions are taken from the first moment.
    ///
    /// The events end with [`StsEvent::StreamEnded`], after which the
    /// receiver yields `None`. Nothing waits on the receiver: an owner that
    /// does not read it only costs the memory of the events.
    ///
    /// `pcm_s16le` needs a decoder: it is refused here with
    /// [`ConfigError::Unsupported`]; use [`StsClient::start_with_decoder`].
    pub fn start(
        config: StsConfig,
        stream_id: impl Into<String>,
        worker_id: impl Into<String>,
    ) -> Result<(StsHandle, UnboundedReceiver<StsEvent>), StsError> {
        Self::launch(config, stream_id.into(), worker_id.into(), None)
    }

    /// As [`StsClient::start`], with the decoder that turns each segment
    /// into PCM when the format is `pcm_s16le` (unused for `aac`).
    pub fn start_with_decoder(
        config: StsConfig,
        stream_id: impl Into<String>,
        worker_id: impl Into<String>,
        decoder: Arc<dyn PcmDecoder>,
    ) -> Result<(StsHandle, UnboundedReceiver<StsEvent>), StsError> {
        Self::launch(config, stream_id.into(), worker_id.into(), Some(decoder))
    }

    fn launch(
        config: StsConfig,
        stream_id: String,
        worker_id: String,
        decoder: Option<Arc<dyn PcmDecoder>>,
    ) -> Result<(StsHandle, UnboundedReceiver<StsEvent>), StsError> {
        config.validate()?;
        if matches!(config.format, AudioFormat::PcmS16le { .. }) && decoder.is_none() {
            // Refused now rather than failing every fragment later.
            return Err(ConfigError::Unsupported {
                what: "format pcm_s16le without a decoder",
                reason: "this crate decodes no AAC; start the client with StsClient::start_with_decoder"
                    .into(),
            }
            .into());
        }
        for (field, value) in [("stream_id", &stream_id), ("worker_id", &worker_id)] {
            if value.trim().is_empty() {
                return Err(ConfigError::InvalidField {
                    field,
                    reason: "must not be empty".into(),
                }
                .into());
            }
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| StsError::NoRuntime)?;
        let endpoint = config.endpoint()?;
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let max_queue = config.max_queue;
        let span = tracing::info_span!("sts", stream = %stream_id);
        let driver = Driver::new(
            config,
            endpoint,
            (stream_id, worker_id),
            commands_rx,
            events_tx.clone(),
            shared.clone(),
            decoder,
        );
        let task = runtime.spawn(driver.run().instrument(span));
        let handle = StsHandle {
            commands: commands_tx,
            events: events_tx,
            shared,
            max_queue,
            task,
        };
        Ok((handle, events_rx))
    }
}

/// Submits a stream's segments. Dropping it without [`StsHandle::end`]
/// ends the stream all the same, in the background.
#[derive(Debug)]
pub struct StsHandle {
    // The channel is unbounded because `shared.held` is the bound: it is
    // checked here, before sending, so `submit` never waits for room.
    commands: UnboundedSender<Command>,
    events: UnboundedSender<StsEvent>,
    shared: Arc<Shared>,
    max_queue: usize,
    task: JoinHandle<EndSummary>,
}

impl StsHandle {
    /// Queues a written segment for the STS without waiting, from any
    /// thread. When refused (queue full, a sequence number already held,
    /// the client stopped) the segment stays on disk, the error says why,
    /// and a [`StsEvent::FragmentNotSent`] reports it too.
    pub fn submit(&self, fragment: Fragment) -> Result<(), SubmitError> {
        let submitted_at = Instant::now();
        let taken = self
            .shared
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.max_queue).then_some(held + 1)
            });
        if taken.is_err() {
            return self.not_sent(
                fragment,
                SubmitError::QueueFull {
                    max_queue: self.max_queue,
                },
            );
        }
        let submitted_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let submission = Submission {
            fragment,
            submitted_at,
            submitted_unix_ms,
        };
        if let Err(mpsc::error::SendError(Command::Submit(submission))) =
            self.commands.send(Command::Submit(submission))
        {
            self.shared.held.fetch_sub(1, Ordering::AcqRel);
            return self.not_sent(submission.fragment, SubmitError::Stopped);
        }
        Ok(())
    }

    /// Fragments held now, waiting or in flight.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::Acquire)
    }

    /// Ends the stream: waits until every submitted fragment is answered or
    /// failed, at most [`crate::Timeouts::end`] (what is left then fails
    /// with that reason), sends `stream:end` if a session is up, and
    /// returns the counts.
    pub async fn end(self) -> EndSummary {
        let StsHandle {
            commands,
            events,
            shared,
            task,
            ..
        } = self;
        let _ = commands.send(Command::End);
        // Only the task holds the event sender now: the receiver ends with it.
        drop((commands, events));
        match task.await {
            Ok(summary) => summary,
            Err(e) => {
                error!(error = %e, "the STS task died");
                EndSummary {
                    not_sent: shared.not_sent.load(Ordering::Acquire),
                    ..EndSummary::default()
                }
            }
        }
    }

    fn not_sent(&self, fragment: Fragment, reason: SubmitError) -> Result<(), SubmitError> {
        self.shared.not_sent.fetch_add(1, Ordering::AcqRel);
        warn!(seq = fragment.sequence_number, %reason, "fragment not sent");
        let _ = self.events.send(StsEvent::FragmentNotSent {
            sequence_number: fragment.sequence_number,
            file: fragment.path,
            reason: reason.to_string(),
        });
        Err(reason)
    }
}
