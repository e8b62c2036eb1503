//! What can go wrong with the leases.

/// A failure to reach or use JetStream.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot open the JetStream bucket '{bucket}': {reason} (is JetStream enabled on the server?)")]
    Bucket { bucket: String, reason: String },
    #[error("the lease of stream '{stream}' could not be {action}: {reason}")]
    Store {
        stream: String,
        action: &'static str,
        reason: String,
    },
    #[error("the record of stream '{stream}' in the bucket is not readable: {reason}")]
    Record { stream: String, reason: String },
    #[error("instance name '{0}' is not usable: expected letters, digits, '-' or '_'")]
    InstanceName(String),
}

/// The lease is no longer this instance's: it must stop the stream now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLost {
    #[error("the lease of stream '{stream}' expired: not renewed within its fence")]
    Expired { stream: String },
    #[error("stream '{stream}' was taken over (by {owner})")]
    TakenOver { stream: String, owner: String },
}
