//! The cluster mode (`cluster:` in the configuration): a stream gets a
//! worker here only while this instance holds its lease in NATS JetStream
//! (the `cluster` crate). The manager claims a stream when its roster says
//! start; the instance with the fewest streams claims first (each waits in
//! proportion to its load, as LiveKit's ingress bids by its free CPU), and
//! an atomic create lets one win. The winner's worker continues the
//! stream's numbering from the bucket and asks its lease before every
//! write; a keeper renews the lease, records each segment index in the
//! bucket before the worker opens its files (so that an owner cut off
//! after writing a segment never leaves its index to the next owner),
//! records where the written media ends, stops the
//! worker at once when the lease is lost, and releases it when the worker
//! ends (a drain, or the stream's end), so that another instance takes the
//! stream at once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{Acquired, Lease, Leases, Renewal};
use ingest::{Stopper, StreamId, WriteFence};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

/// How long an instance waits before it claims, per stream it serves, at
/// least: the least loaded instance claims first, by a margin well above
/// the time a claim takes to reach NATS. The margin is also at least the
/// poll interval, so that an instance that learns of a stream one poll
/// later still claims before a more loaded one.
const BID_PER_STREAM: Duration = Duration::from_millis(40);
/// The longest bid: a loaded instance still claims within this.
const BID_MAX: Duration = Duration::from_millis(1500);

/// What claiming a stream came to.
#[derive(Debug)]
pub(crate) enum Claim {
    Taken(Lease),
    /// Another instance serves it.
    Elsewhere(String),
    /// The bucket could not be asked (NATS away): tried again later.
    Unasked(String),
}

/// Unless another instance holds `id`, waits its bid, then tries to take it.
pub(crate) async fn claim(
    leases: Arc<Leases>,
    id: StreamId,
    load: (usize, usize),
    poll: Duration,
) -> (StreamId, Claim) {
    // A stream another instance holds needs no bid: one read says so. A
    // queue of such streams (claimed again every tenth of the TTL) must not
    // wait a bid each, or streams new to the cluster wait behind them.
    match leases.holder(id.as_str()).await {
        Ok(Some(holder)) if holder.owner != leases.instance() => return (id, Claim::Elsewhere(holder.owner)),
        Ok(_) => {}
        Err(e) => return (id, Claim::Unasked(e.to_string())),
    }
    let (active, max) = load;
    // Counted in streams, scaled to the instance's size: a bigger instance
    // (a higher max) bids lower for the same streams.
    let scale = crate::config::DEFAULT_MAX_STREAMS as f64 / max.max(1) as f64;
    let bid = BID_PER_STREAM
        .max(poll)
        .mul_f64(active as f64 * scale)
        .min(BID_MAX);
    tokio::time::sleep(bid).await;
    let claim = match leases.try_acquire(id.as_str()).await {
        Ok(Acquired::Taken(lease)) => Claim::Taken(lease),
        Ok(Acquired::HeldBy(holder)) => Claim::Elsewhere(holder.owner),
        Err(e) => Claim::Unasked(e.to_string()),
    };
    (id, claim)
}

/// What the fence of a worker reads, and its keeper writes.
struct FenceState {
    until: Mutex<Instant>,
    lost: AtomicBool,
    why: Mutex<String>,
}

/// A held stream: the fence its worker asks, where the worker says how
/// far its numbering went, and the keeper's task.
pub(crate) struct Held {
    pub(crate) fence: WriteFence,
    /// The next segment index and where the written media ends.
    pub(crate) segments: UnboundedSender<Written>,
    pub(crate) first_segment: u64,
    state: Arc<FenceState>,
    lease: Lease,
    next: UnboundedReceiver<Written>,
    reservations: UnboundedReceiver<Reservation>,
}

/// A segment index the worker wants recorded before it opens its files
/// (as the next index: one past it), and where the keeper answers.
type Reservation = (u64, std::sync::mpsc::SyncSender<Result<(), String>>);

/// How far a worker has written: the next segment index, and where its
/// last segment ended on the stream's timeline (ns).
pub(crate) type Written = (u64, Option<u64>);

impl Held {
    pub(crate) fn new(lease: Lease) -> Self {
        let state = Arc::new(FenceState {
            until: Mutex::new(lease.held_until()),
            lost: AtomicBool::new(false),
            why: Mutex::new(String::new()),
        });
        let seen = Arc::clone(&state);
        let stream = lease.stream().to_owned();
        let fence_open = move || {
            if seen.lost.load(Ordering::SeqCst) {
                return Err(seen.why.lock().expect("fence lock").clone());
            }
            let until = *seen.until.lock().expect("fence lock");
            if Instant::now() < until {
                Ok(until)
            } else {
                Err(format!("the lease of stream '{stream}' was not renewed in time"))
            }
        };
        let fence_open = Arc::new(fence_open);
        let (reserve_tx, reservations) = unbounded_channel::<Reservation>();
        // Indices below this one are recorded in the bucket.
        let recorded = Arc::new(AtomicU64::new(lease.state().next_segment));
        let asked = Arc::clone(&fence_open);
        let fence = WriteFence::new(move || asked().map(drop)).reserving(move |index| {
            if index < recorded.load(Ordering::SeqCst) {
                return Ok(());
            }
            let until = fence_open()?;
            let (ack_tx, ack) = std::sync::mpsc::sync_channel(1);
            reserve_tx
                .send((index + 1, ack_tx))
                .map_err(|_| "the stream's lease is no longer kept".to_owned())?;
            // The worker's own thread waits: at most until the fence would
            // close anyway.
            match ack.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(Ok(())) => {
                    recorded.fetch_max(index + 1, Ordering::SeqCst);
                    Ok(())
                }
                Ok(Err(why)) => Err(why),
                Err(_) => Err(format!(
                    "segment {index} could not be recorded in the stream's lease state before the lease ran out"
                )),
            }
        });
        let (segments, next) = unbounded_channel();
        Self {
            fence,
            segments,
            first_segment: lease.state().next_segment,
            state,
            lease,
            next,
            reservations,
        }
    }

    /// Keeps the lease while the worker runs (until every sender of
    /// `segments` is gone: the worker ended), then releases it.
    /// The stream's state as this instance took it (who had it before).
    pub(crate) fn taken(&self) -> &cluster::StreamState {
        self.lease.state()
    }

    pub(crate) fn keep(self, leases: Arc<Leases>, stopper: Stopper) -> JoinHandle<()> {
        let Self {
            state,
            mut lease,
            mut next,
            mut reservations,
            segments,
            ..
        } = self;
        drop(segments);
        tokio::spawn(async move {
            let mut renew = tokio::time::interval(leases.ttl() / 5);
            renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut recorded = lease.state().next_segment;
            let mut recorded_until = lease.state().written_until_ns;
            let lost = loop {
                tokio::select! {
                    _ = renew.tick() => match lease.renew(&leases).await {
                        Ok(Renewal::Renewed) => {
                            *state.until.lock().expect("fence lock") = lease.held_until();
                        }
                        Ok(Renewal::Missed(why)) => {
                            tracing::warn!(stream = %lease.stream(), "the lease was not renewed this time: {why}");
                        }
                        Err(lost) => break Some(lost),
                    },
                    Some((n, ack)) = reservations.recv() => {
                        if n > recorded {
                            if let Err(lost) = lease.advance(&leases, n, None).await {
                                let _ = ack.send(Err(lost.to_string()));
                                break Some(lost);
                            }
                            recorded = n;
                        }
                        let _ = ack.send(Ok(()));
                    }
                    written = next.recv() => match written {
                        Some((n, until)) if n > recorded || until > recorded_until => {
                            if let Err(lost) = lease.advance(&leases, n.max(recorded), until).await {
                                break Some(lost);
                            }
                            recorded = recorded.max(n);
                            recorded_until = until.or(recorded_until);
                        }
                        Some(_) => {}
                        None => break None,
                    },
                }
            };
            match lost {
                Some(lost) => {
                    *state.why.lock().expect("fence lock") = lost.to_string();
                    state.lost.store(true, Ordering::SeqCst);
                    tracing::warn!(stream = %lease.stream(), "stopping the worker at once: {lost}");
                    stopper.stop();
                }
                None => {
                    let stream = lease.stream().to_owned();
                    match lease.release(&leases).await {
                        Ok(()) => tracing::info!(stream = %stream, "lease released"),
                        Err(e) => {
                            tracing::warn!(stream = %stream, "the lease could not be released (it expires): {e}")
                        }
                    }
                }
            }
        })
    }
}
