//! What the buckets hold, as JSON.

use serde::{Deserialize, Serialize};

/// The lease bucket's value: who serves the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub owner: String,
}

/// The state bucket's value: what the next owner needs to continue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    /// Bumped at each change of owner.
    pub epoch: u64,
    pub owner: String,
    /// The next segment index to write: numbering continues across owners.
    pub next_segment: u64,
    /// Where the last segment written ended on the stream's timeline (ns):
    /// a new owner states what it could not receive from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_until_ns: Option<u64>,
    /// The owner before this one, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_owner: Option<String>,
    /// When the stream last changed owner (Unix ms).
    #[serde(default)]
    pub owned_since_ms: u64,
}
