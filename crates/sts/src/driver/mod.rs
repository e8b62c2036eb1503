//! The per-stream task: connect (with backoff), `stream:init`, send what
//! the ledger allows, settle answers, and end the stream.
//!
//! One task owns all the state, so nothing is locked: submissions arrive
//! over a channel and every wait (backoff, connect, the online loop) also
//! takes submissions, the end request and fragment deadlines, so an STS
//! that never answers cannot hold the stream's end past its deadline.
//! What each STS message does to the stream is in `answers`.

mod answers;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::StsConfig;
use crate::error::SubmitError;
use crate::event::{EndSummary, StsEvent};
use crate::fragment::{Fragment, fragment_id};
use crate::ledger::{Entry, Ledger};
use crate::payload;
use crate::payload::pcm::PcmDecoder;
use crate::protocol::{self, InitConfig, StreamInit};
use crate::session::{self, Session};
use crate::socketio::{Incoming, LinkError, packet};

pub(crate) enum Command {
    Submit(Submission),
    End,
}

pub(crate) struct Submission {
    pub fragment: Fragment,
    pub submitted_at: Instant,
    pub submitted_unix_ms: u64,
}

/// What the handle and the task both count.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Fragments submitted and not yet settled: the bounded queue's length.
    pub held: AtomicUsize,
    pub not_sent: AtomicU64,
}

pub(crate) struct Driver {
    config: StsConfig,
    endpoint: String,
    stream_id: String,
    worker_id: String,
    run: u32,
    commands: UnboundedReceiver<Command>,
    commands_open: bool,
    events: UnboundedSender<StsEvent>,
    shared: Arc<Shared>,
    /// For `pcm_s16le`; `start` refuses that format without one.
    decoder: Option<Arc<dyn PcmDecoder>>,
    ledger: Ledger,
    end_by: Option<Instant>,
    connections: u32,
    /// Failed attempts since the last productive session; drives backoff,
    /// so an STS that accepts and drops at once is not hammered.
    failures: u32,
    online: bool,
    offline_reason: Option<String>,
    /// Backpressure: nothing is sent before this instant.
    send_gate: Instant,
    processed: u64,
    failed: u64,
}

enum Online {
    Finished,
    Lost(LinkError),
}

/// Sleeps until `deadline`, or for ever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    pub(crate) fn new(
        config: StsConfig,
        endpoint: String,
        ids: (String, String),
        commands: UnboundedReceiver<Command>,
        events: UnboundedSender<StsEvent>,
        shared: Arc<Shared>,
        decoder: Option<Arc<dyn PcmDecoder>>,
    ) -> Self {
        let ledger = Ledger::new(config.timeouts.fragment, config.error_retries);
        Self {
            endpoint,
            stream_id: ids.0,
            worker_id: ids.1,
            run: fastrand::u32(..),
            commands,
            commands_open: true,
            events,
            shared,
            decoder,
            ledger,
            end_by: None,
            connections: 0,
            failures: 0,
            online: false,
            offline_reason: None,
            send_gate: Instant::now(),
            processed: 0,
            failed: 0,
            config,
        }
    }

    pub(crate) async fn run(mut self) -> EndSummary {
        let mut stream_end_sent = false;
        while !self.done() {
            let Some(attempt) = self.wait(self.open_session()).await else {
                break;
            };
            let mut session = match attempt {
                Ok(session) => session,
                Err(e) => {
                    self.failures += 1;
                    let delay = self.config.reconnect.delay(self.failures, fastrand::f64());
                    warn!(attempt = self.failures, reason = %e, retry_in = ?delay, "cannot reach the STS");
                    self.offline_reason = Some(e.to_string());
                    self.emit(StsEvent::ConnectFailed {
                        attempt: self.failures,
                        reason: e.to_string(),
                        retry_in_ms: delay.as_millis() as u64,
                    });
                    if self.wait(tokio::time::sleep(delay)).await.is_none() {
                        break;
                    }
                    continue;
                }
            };
            self.connections += 1;
            self.online = true;
            self.ledger.set_max_inflight(session.max_inflight as usize);
            info!(session = %session.session_id, max_inflight = session.max_inflight, connection = self.connections, "STS session ready");
            self.emit(StsEvent::SessionReady {
                session_id: session.session_id.clone(),
                max_inflight: session.max_inflight,
                connection: self.connections,
            });
            match self.online(&mut session).await {
                Online::Finished => {
                    stream_end_sent = session.end(&self.stream_id).await;
                    break;
                }
                Online::Lost(e) => {
                    self.online = false;
                    self.ledger.session_lost();
                    let reason = e.to_string();
                    warn!(%reason, connection = self.connections, "STS session closed");
                    self.offline_reason = Some(reason.clone());
                    self.emit(StsEvent::Disconnected {
                        reason,
                        connection: self.connections,
                    });
                    // Closing a half-dead socket can take the write timeout;
                    // the next session need not wait for it.
                    tokio::spawn(session.close());
                    self.failures += 1;
                    let delay = self.config.reconnect.delay(self.failures, fastrand::f64());
                    if self.wait(tokio::time::sleep(delay)).await.is_none() {
                        break;
                    }
                }
            }
        }
        self.finish(stream_end_sent)
    }

    /// The connect attempt as a future owning what it needs, so the driver
    /// can keep taking submissions while it runs.
    fn open_session(&self) -> impl Future<Output = Result<Session, LinkError>> + use<> {
        let endpoint = self.endpoint.clone();
        let (sample_rate_hz, channels) = self.config.announced();
        let init = packet::encode_event(
            protocol::STREAM_INIT,
            &StreamInit {
                stream_id: &self.stream_id,
                worker_id: &self.worker_id,
                config: InitConfig {
                    source_language: &self.config.source_language,
                    target_language: &self.config.target_language,
                    voice_profile: &self.config.voice_profile,
                    format: self.config.format.wire_name(),
                    sample_rate_hz,
                    channels,
                    chunk_duration_ms: self.config.chunk_duration.as_millis() as u64,
                },
            },
        );
        let timeouts = self.config.timeouts.clone();
        async move {
            match tokio::time::timeout(timeouts.connect, Session::open(&endpoint, init, timeouts.write)).await
            {
                Ok(result) => result,
                Err(_) => Err(LinkError::Transport(format!(
                    "no stream:ready within {:?}",
                    timeouts.connect
                ))),
            }
        }
    }

    /// The stream is over: ended (by `end()` or a dropped handle) and
    /// nothing left to settle.
    fn done(&self) -> bool {
        self.end_by.is_some() && self.ledger.is_empty()
    }

    fn deadline(&self) -> Option<Instant> {
        [self.ledger.next_deadline(), self.end_by]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs `work` while taking submissions and deadlines; `None` when the
    /// stream finished first.
    async fn wait<F: Future>(&mut self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            if self.done() {
                return None;
            }
            let deadline = self.deadline();
            tokio::select! {
                output = &mut work => return Some(output),
                command = self.commands.recv(), if self.commands_open => self.on_command(command),
                () = until(deadline) => self.on_deadline(),
            }
        }
    }

    async fn online(&mut self, session: &mut Session) -> Online {
        loop {
            if let Err(e) = self.pump(session).await {
                return Online::Lost(e);
            }
            if self.done() {
                return Online::Finished;
            }
            let now = Instant::now();
            let gate =
                (self.send_gate > now && self.ledger.next_sendable().is_some()).then_some(self.send_gate);
            let heartbeat = session.heartbeat_deadline();
            let deadline = [self.deadline(), gate, Some(heartbeat)]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                incoming = session.next() => {
                    let handled = match incoming {
                        Ok(Incoming::Ping) => session.pong().await,
                        Ok(Incoming::Event { name, data }) => self.on_message(&name, data).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = handled {
                        return Online::Lost(e);
                    }
                }
                command = self.commands.recv(), if self.commands_open => self.on_command(command),
                () = until(deadline) => {
                    self.on_deadline();
                    if Instant::now() >= session.heartbeat_deadline() {
                        return Online::Lost(LinkError::Closed(format!(
                            "no word from the STS for {:?} (its heartbeat)",
                            session.heartbeat()
                        )));
                    }
                }
            }
        }
    }

    /// Sends everything the ledger and backpressure allow.
    async fn pump(&mut self, session: &mut Session) -> Result<(), LinkError> {
        while let Some(seq) = self.ledger.next_sendable() {
            if Instant::now() < self.send_gate {
                break;
            }
            let entry = self.ledger.get(seq).expect("sendable fragments are held");
            let fragment = &entry.fragment;
            let loaded = payload::load(
                &fragment.path,
                fragment.duration,
                self.config.format,
                self.decoder.as_ref(),
            )
            .await;
            let text = match loaded {
                Ok(payload) => {
                    session::fragment_message(entry, &self.stream_id, self.config.format.wire_name(), payload)
                }
                Err(e) => {
                    self.fail(seq, e.to_string());
                    continue;
                }
            };
            if let Some(max) = session.max_payload()
                && text.len() > max
            {
                let reason = format!(
                    "fragment:data of {} bytes is above the STS's maxPayload of {max}",
                    text.len()
                );
                self.fail(seq, reason);
                continue;
            }
            session.send(text).await?;
            let attempt = self.ledger.mark_sent(seq);
            let entry = self.ledger.get(seq).expect("just sent");
            let event = StsEvent::FragmentSent {
                sequence_number: seq,
                fragment_id: entry.fragment_id.clone(),
                attempt,
                queued_ms: ms(entry.submitted_at.elapsed()),
            };
            debug!(seq, attempt, in_flight = self.ledger.in_flight(), "fragment sent");
            self.emit(event);
        }
        Ok(())
    }

    fn on_command(&mut self, command: Option<Command>) {
        match command {
            Some(Command::Submit(submission)) => self.admit(submission),
            Some(Command::End) => self.begin_end(),
            None => {
                // The handle was dropped without end(): end all the same.
                self.commands_open = false;
                self.begin_end();
            }
        }
    }

    fn admit(&mut self, submission: Submission) {
        let seq = submission.fragment.sequence_number;
        let entry = Entry {
            fragment_id: fragment_id(&self.stream_id, self.run, seq),
            fragment: submission.fragment,
            submitted_at: submission.submitted_at,
            submitted_unix_ms: submission.submitted_unix_ms,
            attempts: 0,
            errors: 0,
            acked: false,
            in_flight: false,
        };
        let file = entry.fragment.path.clone();
        if !self.ledger.admit(entry) {
            self.shared.held.fetch_sub(1, Ordering::AcqRel);
            self.shared.not_sent.fetch_add(1, Ordering::AcqRel);
            let reason = SubmitError::Duplicate(seq).to_string();
            warn!(seq, %reason, "fragment not sent");
            self.emit(StsEvent::FragmentNotSent {
                sequence_number: seq,
                file,
                reason,
            });
        }
    }

    fn begin_end(&mut self) {
        if self.end_by.is_none() {
            self.end_by = Some(Instant::now() + self.config.timeouts.end);
        }
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        let timeout = self.ledger.fragment_timeout();
        for entry in self.ledger.expire(now) {
            let reason = if entry.attempts > 0 {
                format!(
                    "no answer within {timeout:?} of submission ({} sends)",
                    entry.attempts
                )
            } else if self.online {
                format!("no answer within {timeout:?}: never sent, waiting for a free in-flight slot")
            } else {
                format!(
                    "no answer within {timeout:?}: never sent, the STS is unreachable ({})",
                    self.offline_reason.as_deref().unwrap_or("not connected yet")
                )
            };
            self.failed_entry(entry, reason);
        }
        if let Some(end_by) = self.end_by
            && now >= end_by
        {
            for entry in self.ledger.drain() {
                let reason = format!(
                    "the stream ended before the STS answered ({} sends, end deadline {:?})",
                    entry.attempts, self.config.timeouts.end
                );
                self.failed_entry(entry, reason);
            }
        }
    }

    fn fail(&mut self, seq: u64, reason: String) {
        if let Some(entry) = self.ledger.remove(seq) {
            self.failed_entry(entry, reason);
        }
    }

    fn failed_entry(&mut self, entry: Entry, reason: String) {
        warn!(seq = entry.fragment.sequence_number, %reason, "fragment failed");
        self.failed += 1;
        self.settle(StsEvent::FragmentFailed {
            sequence_number: entry.fragment.sequence_number,
            fragment_id: entry.fragment_id,
            reason,
            attempts: entry.attempts,
        });
    }

    /// Every fragment that leaves the ledger passes here, once.
    fn settle(&mut self, event: StsEvent) {
        self.shared.held.fetch_sub(1, Ordering::AcqRel);
        self.emit(event);
    }

    fn emit(&self, event: StsEvent) {
        // An owner that stopped listening does not stop delivery.
        let _ = self.events.send(event);
    }

    fn finish(self, stream_end_sent: bool) -> EndSummary {
        let summary = EndSummary {
            processed: self.processed,
            failed: self.failed,
            not_sent: self.shared.not_sent.load(Ordering::Acquire),
            stream_end_sent,
        };
        info!(?summary, "STS stream ended");
        self.emit(StsEvent::StreamEnded(summary));
        summary
    }
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
