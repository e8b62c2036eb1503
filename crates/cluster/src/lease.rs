//! One stream's lease, held by this instance: renewed, checked before every
//! write (the fence), moved on as segments are written, released on drain.

use std::time::Duration;

use async_nats::jetstream::kv;
use tokio::time::Instant;

use crate::error::{ClusterError, LeaseLost};
use crate::leases::{Leases, store_error, to_json};
use crate::record::{LeaseRecord, StreamState};

/// A lease this instance holds.
#[derive(Debug)]
pub struct Lease {
    stream: String,
    key: String,
    revision: u64,
    state: StreamState,
    state_revision: u64,
    /// Past this, the lease is not trusted any more (see the crate docs).
    fence: Instant,
    ttl: Duration,
}

/// What a renewal came to while the lease still stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    Renewed,
    /// It did not get through (NATS slow or away); the lease stands until
    /// its fence, and the next renewal tries again.
    Missed(String),
}

impl Lease {
    pub(crate) fn new(
        stream: &str,
        key: String,
        revision: u64,
        state: StreamState,
        state_revision: u64,
        sent: Instant,
        ttl: Duration,
    ) -> Self {
        Self {
            stream: stream.to_owned(),
            key,
            revision,
            state,
            state_revision,
            fence: sent + fence_after(ttl),
            ttl,
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream's state as this owner took it and has moved it on.
    pub fn state(&self) -> &StreamState {
        &self.state
    }

    /// Until when this instance may write for the stream, as things stand.
    pub fn held_until(&self) -> std::time::Instant {
        self.fence.into_std()
    }

    /// Whether this instance may still write for the stream.
    pub fn is_held(&self) -> bool {
        Instant::now() < self.fence
    }

    /// The fence, as an error to stop the stream with.
    pub fn check(&self) -> Result<(), LeaseLost> {
        if self.is_held() {
            Ok(())
        } else {
            Err(LeaseLost::Expired {
                stream: self.stream.clone(),
            })
        }
    }

    /// Renews the lease. Lost once past the fence (an owner that was
    /// paused finds out here, before it writes anything) or when the key
    /// is no longer the one it wrote (expired and maybe taken).
    pub async fn renew(&mut self, leases: &Leases) -> Result<Renewal, LeaseLost> {
        self.check()?;
        let record = LeaseRecord {
            owner: leases.instance().to_owned(),
        };
        let sent = Instant::now();
        match leases
            .leases
            .update(&self.key, to_json(&record), self.revision)
            .await
        {
            Ok(revision) => {
                self.revision = revision;
                self.fence = sent + fence_after(self.ttl);
                Ok(Renewal::Renewed)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match leases.read_holder(&self.stream).await {
                    // Only this instance writes its own name: the key is
                    // still this lease, moved on by an earlier renewal
                    // that timed out here but reached NATS. The fence
                    // stays where it was (when that one landed is not
                    // known); the next renewal starts from there.
                    Ok(Some((holder, revision))) if holder.owner == leases.instance() => {
                        self.revision = revision;
                        Ok(Renewal::Missed(
                            "an earlier renewal reached NATS after it timed out here".to_owned(),
                        ))
                    }
                    Ok(Some((holder, _))) => Err(LeaseLost::TakenOver {
                        stream: self.stream.clone(),
                        owner: holder.owner,
                    }),
                    _ => Err(LeaseLost::TakenOver {
                        stream: self.stream.clone(),
                        owner: "nobody yet (it expired)".to_owned(),
                    }),
                }
            }
            Err(e) => {
                self.check()?;
                Ok(Renewal::Missed(e.to_string()))
            }
        }
    }

    /// Records that segments up to `next_segment` are written, ending at
    /// `written_until_ns` on the stream's timeline, so that a new owner
    /// continues the numbering and states its gap. Tried again while the
    /// fence holds when NATS does not answer in time; refused past the
    /// fence, and when another owner has moved the state on.
    pub async fn advance(
        &mut self,
        leases: &Leases,
        next_segment: u64,
        written_until_ns: Option<u64>,
    ) -> Result<(), LeaseLost> {
        let mut state = self.state.clone();
        state.next_segment = next_segment;
        state.written_until_ns = written_until_ns.or(state.written_until_ns);
        loop {
            self.check()?;
            match leases
                .states
                .update(&self.key, to_json(&state), self.state_revision)
                .await
            {
                Ok(revision) => {
                    self.state = state;
                    self.state_revision = revision;
                    return Ok(());
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    match leases.read_state(&self.stream, &self.key).await {
                        // This owner's own epoch: an earlier update that
                        // timed out here landed after all. Written again
                        // on top of it.
                        Ok(Some((landed, revision)))
                            if landed.owner == leases.instance() && landed.epoch == self.state.epoch =>
                        {
                            self.state_revision = revision;
                        }
                        Ok(Some((landed, _))) => {
                            return Err(LeaseLost::TakenOver {
                                stream: self.stream.clone(),
                                owner: landed.owner,
                            });
                        }
                        Ok(None) => {
                            return Err(LeaseLost::TakenOver {
                                stream: self.stream.clone(),
                                owner: "?".to_owned(),
                            });
                        }
                        Err(e) => {
                            tracing::warn!(stream = %self.stream, "the stream's state could not be read back: {e}")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(stream = %self.stream, "the stream's state was not recorded this time: {e}");
                    // A refused connection answers at once: not a busy loop.
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }

    /// Gives the stream up (a drain, or its end): deleted only if still
    /// this lease, so a stale owner never frees a new owner's lease.
    pub async fn release(self, leases: &Leases) -> Result<(), ClusterError> {
        leases
            .leases
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
            .map_err(|e| store_error(&self.stream, "released", e))
    }
}

/// Between two tries of a state update that NATS did not answer.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Four fifths of the TTL: the owner stops before the server lets the key
/// go, whatever the time a renewal took to arrive.
fn fence_after(ttl: Duration) -> Duration {
    ttl * 4 / 5
}
