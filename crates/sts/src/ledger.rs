//! Which fragments are owed an answer, and which may be sent now.
//!
//! Pure bookkeeping with no I/O, so the flow-control rules are tested on
//! their own:
//! - at most `max_inflight` fragments are sent and unanswered; the rest
//!   wait, lowest sequence number first (resends included, so the STS gets
//!   the stream in order after a reconnect);
//! - a lost session puts every unanswered fragment back in line under its
//!   fragment_id, and no slot is free until the next `stream:ready`;
//! - a fragment leaves the ledger exactly once (answered, failed, expired),
//!   which is what makes each fragment reported once even when the STS
//!   answers a resent fragment twice.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use crate::fragment::Fragment;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub fragment: Fragment,
    pub fragment_id: String,
    pub submitted_at: Instant,
    /// Wall clock at submission, for the protocol's `timestamp`.
    pub submitted_unix_ms: u64,
    /// Sends so far.
    pub attempts: u32,
    /// `error` answers so far.
    pub errors: u32,
    pub acked: bool,
    pub in_flight: bool,
}

#[derive(Debug, PartialEq)]
pub(crate) enum ErrorOutcome {
    /// Back in line for another send.
    Retry { errors: u32 },
    /// Out of retries: removed.
    Failed(Entry),
    /// Not a fragment this ledger holds (already settled).
    Unknown,
}

#[derive(Debug)]
pub(crate) struct Ledger {
    entries: BTreeMap<u64, Entry>,
    by_id: HashMap<String, u64>,
    in_flight: usize,
    max_inflight: usize,
    fragment_timeout: Duration,
    error_retries: u32,
}

impl Ledger {
    pub fn new(fragment_timeout: Duration, error_retries: u32) -> Self {
        Self {
            entries: BTreeMap::new(),
            by_id: HashMap::new(),
            in_flight: 0,
            max_inflight: 0,
            fragment_timeout,
            error_retries,
        }
    }

    /// Takes a fragment in; `false` if its sequence number is already held.
    pub fn admit(&mut self, entry: Entry) -> bool {
        let seq = entry.fragment.sequence_number;
        if self.entries.contains_key(&seq) {
            return false;
        }
        self.by_id.insert(entry.fragment_id.clone(), seq);
        self.entries.insert(seq, entry);
        true
    }

    /// From `stream:ready`; 0 while there is no session.
    pub fn set_max_inflight(&mut self, max_inflight: usize) {
        self.max_inflight = max_inflight;
    }

    /// The fragment to send next, if a slot is free.
    pub fn next_sendable(&self) -> Option<u64> {
        if self.in_flight >= self.max_inflight {
            return None;
        }
        self.entries
            .values()
            .find(|e| !e.in_flight)
            .map(|e| e.fragment.sequence_number)
    }

    pub fn get(&self, seq: u64) -> Option<&Entry> {
        self.entries.get(&seq)
    }

    /// Records a completed send; returns the attempt number.
    pub fn mark_sent(&mut self, seq: u64) -> u32 {
        let entry = self.entries.get_mut(&seq).expect("only held fragments are sent");
        debug_assert!(!entry.in_flight);
        entry.in_flight = true;
        entry.attempts += 1;
        self.in_flight += 1;
        entry.attempts
    }

    /// The first ack of a held fragment; repeats (a resend acked again)
    /// return `None`.
    pub fn mark_acked(&mut self, fragment_id: &str) -> Option<&Entry> {
        let seq = *self.by_id.get(fragment_id)?;
        let entry = self.entries.get_mut(&seq)?;
        if entry.acked {
            return None;
        }
        entry.acked = true;
        Some(entry)
    }

    /// Takes a fragment out, whatever its state.
    pub fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.by_id.remove(&entry.fragment_id);
        if entry.in_flight {
            self.in_flight -= 1;
        }
        Some(entry)
    }

    /// An answer: the fragment leaves the ledger.
    pub fn answered(&mut self, fragment_id: &str) -> Option<Entry> {
        let seq = *self.by_id.get(fragment_id)?;
        self.remove(seq)
    }

    /// A fragment-level `error`: another send while retries remain.
    pub fn errored(&mut self, fragment_id: &str) -> ErrorOutcome {
        let Some(&seq) = self.by_id.get(fragment_id) else {
            return ErrorOutcome::Unknown;
        };
        let retries = self.error_retries;
        let entry = self.entries.get_mut(&seq).expect("by_id and entries agree");
        entry.errors += 1;
        if entry.errors > retries {
            let entry = self.remove(seq).expect("just found");
            return ErrorOutcome::Failed(entry);
        }
        let errors = entry.errors;
        if entry.in_flight {
            entry.in_flight = false;
            self.in_flight -= 1;
        }
        ErrorOutcome::Retry { errors }
    }

    /// The session is gone: everything unanswered waits for the next one.
    pub fn session_lost(&mut self) {
        for entry in self.entries.values_mut() {
            entry.in_flight = false;
        }
        self.in_flight = 0;
        self.max_inflight = 0;
    }

    /// When the oldest fragment runs out of time.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .map(|e| e.submitted_at + self.fragment_timeout)
            .min()
    }

    /// Removes and returns every fragment past its deadline.
    pub fn expire(&mut self, now: Instant) -> Vec<Entry> {
        let expired: Vec<u64> = self
            .entries
            .values()
            .filter(|e| e.submitted_at + self.fragment_timeout <= now)
            .map(|e| e.fragment.sequence_number)
            .collect();
        expired.into_iter().filter_map(|seq| self.remove(seq)).collect()
    }

    /// Removes everything, in sequence order.
    pub fn drain(&mut self) -> Vec<Entry> {
        let all: Vec<u64> = self.entries.keys().copied().collect();
        all.into_iter().filter_map(|seq| self.remove(seq)).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn fragment_timeout(&self) -> Duration {
        self.fragment_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn entry(seq: u64, at: Instant) -> Entry {
        Entry {
            fragment: Fragment {
                sequence_number: seq,
                path: format!("audio_{seq:06}.ts").into(),
                start: Duration::from_secs(6 * seq),
                duration: Duration::from_secs(6),
                pts_ns: 0,
            },
            fragment_id: format!("f{seq}"),
            submitted_at: at,
            submitted_unix_ms: 0,
            attempts: 0,
            errors: 0,
            acked: false,
            in_flight: false,
        }
    }

    fn ledger_with(n: u64, max_inflight: usize) -> (Ledger, Instant) {
        let now = Instant::now();
        let mut ledger = Ledger::new(TIMEOUT, 1);
        for seq in 0..n {
            assert!(ledger.admit(entry(seq, now)));
        }
        ledger.set_max_inflight(max_inflight);
        (ledger, now)
    }

    /// Sends everything sendable, as the driver does.
    fn pump(ledger: &mut Ledger) -> Vec<u64> {
        let mut sent = Vec::new();
        while let Some(seq) = ledger.next_sendable() {
            ledger.mark_sent(seq);
            sent.push(seq);
        }
        sent
    }

    #[test]
    fn never_more_than_max_inflight_unanswered() {
        let (mut ledger, _) = ledger_with(6, 3);
        assert_eq!(pump(&mut ledger), [0, 1, 2]);
        assert_eq!(ledger.in_flight(), 3);
        // An ack frees nothing; an answer frees one slot.
        assert!(ledger.mark_acked("f0").is_some());
        assert!(pump(&mut ledger).is_empty());
        assert!(ledger.answered("f1").is_some());
        assert_eq!(pump(&mut ledger), [3]);
        assert_eq!(ledger.in_flight(), 3);
    }

    #[test]
    fn nothing_is_sent_without_a_session() {
        let (mut ledger, _) = ledger_with(2, 0);
        assert_eq!(ledger.next_sendable(), None);
        ledger.set_max_inflight(1);
        assert_eq!(pump(&mut ledger), [0]);
    }

    #[test]
    fn a_lost_session_resends_in_order_with_the_same_ids() {
        let (mut ledger, _) = ledger_with(5, 3);
        pump(&mut ledger);
        ledger.answered("f0").unwrap();
        pump(&mut ledger); // 1, 2, 3 in flight
        ledger.session_lost();
        assert_eq!(ledger.in_flight(), 0);
        assert_eq!(ledger.next_sendable(), None, "no slot before stream:ready");
        ledger.set_max_inflight(2);
        assert_eq!(pump(&mut ledger), [1, 2]);
        assert_eq!(ledger.get(1).unwrap().attempts, 2);
        assert_eq!(ledger.get(1).unwrap().fragment_id, "f1");
        assert_eq!(ledger.get(4).unwrap().attempts, 0);
    }

    #[test]
    fn each_fragment_leaves_once() {
        let (mut ledger, _) = ledger_with(2, 2);
        pump(&mut ledger);
        assert!(ledger.answered("f0").is_some());
        assert!(ledger.answered("f0").is_none(), "a second answer is not recorded");
        assert!(ledger.mark_acked("f1").is_some());
        assert!(ledger.mark_acked("f1").is_none(), "a second ack is not reported");
        assert_eq!(ledger.errored("f0"), ErrorOutcome::Unknown);
    }

    #[test]
    fn errors_are_retried_a_bounded_number_of_times() {
        let (mut ledger, _) = ledger_with(2, 1);
        assert_eq!(pump(&mut ledger), [0]);
        assert_eq!(ledger.errored("f0"), ErrorOutcome::Retry { errors: 1 });
        assert_eq!(ledger.in_flight(), 0);
        assert_eq!(pump(&mut ledger), [0], "the retry goes before later fragments");
        let ErrorOutcome::Failed(entry) = ledger.errored("f0") else {
            panic!("second error must fail the fragment")
        };
        assert_eq!((entry.attempts, entry.errors), (2, 2));
        assert_eq!(pump(&mut ledger), [1]);
    }

    #[test]
    fn fragments_expire_at_their_deadline() {
        let now = Instant::now();
        let mut ledger = Ledger::new(TIMEOUT, 0);
        ledger.admit(entry(0, now));
        ledger.admit(entry(1, now + Duration::from_secs(6)));
        ledger.set_max_inflight(1);
        pump(&mut ledger);
        assert_eq!(ledger.next_deadline(), Some(now + TIMEOUT));
        assert!(ledger.expire(now + TIMEOUT - Duration::from_millis(1)).is_empty());
        let expired = ledger.expire(now + TIMEOUT);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].fragment.sequence_number, 0);
        assert_eq!(ledger.in_flight(), 0, "an expired fragment frees its slot");
        assert_eq!(ledger.next_deadline(), Some(now + Duration::from_secs(36)));
        assert_eq!(ledger.drain().len(), 1);
        assert!(ledger.is_empty());
    }

    #[test]
    fn duplicates_are_refused() {
        let (mut ledger, now) = ledger_with(1, 1);
        assert!(!ledger.admit(entry(0, now)));
    }
}
