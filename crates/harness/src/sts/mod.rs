//! The speech-to-speech side of a scenario: its `sts:` block ([`plan`]),
//! the echo STS peer the ingest talks to ([`peer`]: python-socketio, an
//! implementation no one here wrote), and what the fragments did
//! ([`facts`]), judged from the worker's events, the manifest on disk and
//! the dubbed files ffprobe opens.

pub mod facts;
pub mod peer;
pub mod plan;

pub use facts::StsFacts;
pub use peer::StsPeer;
pub use plan::{ExpectedSts, StsPlan};
