//! The two buckets, and taking a stream: an atomic create of its lease,
//! then a compare-and-set of its state that makes the new owner's epoch
//! the one every later state write must follow.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures_util::TryStreamExt;

use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::key;
use crate::lease::Lease;
use crate::record::{LeaseRecord, StreamState};

/// How many times taking a stream re-reads its state when a stale owner's
/// write raced it.
const STATE_ATTEMPTS: usize = 5;

/// What trying to take a stream came to.
#[derive(Debug)]
pub enum Acquired {
    Taken(Lease),
    /// Another instance (or this one, earlier) holds it.
    HeldBy(LeaseRecord),
}

/// An instance's handle on the buckets.
pub struct Leases {
    pub(crate) leases: kv::Store,
    pub(crate) states: kv::Store,
    pub(crate) config: ClusterConfig,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("config", &self.config).finish()
    }
}

impl Leases {
    /// Connects and opens (or creates) the buckets.
    pub async fn open(config: ClusterConfig) -> Result<Self, ClusterError> {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
        if config.instance.is_empty() || !config.instance.chars().all(valid) {
            return Err(ClusterError::InstanceName(config.instance));
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(config.ttl)
            .connect(&config.nats_url)
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.nats_url.clone(),
                reason: e.to_string(),
            })?;
        let mut context = jetstream::new(client);
        context.set_timeout(config.answer_within());
        let leases = bucket(&context, &config.bucket, config.ttl).await?;
        let states = bucket(&context, &format!("{}-state", config.bucket), Duration::ZERO).await?;
        Ok(Self {
            leases,
            states,
            config,
        })
    }

    pub fn instance(&self) -> &str {
        &self.config.instance
    }

    pub fn ttl(&self) -> Duration {
        self.config.ttl
    }

    /// The NATS server this instance talks to.
    pub fn url(&self) -> &str {
        &self.config.nats_url
    }

    /// Takes `stream` if nobody holds it.
    pub async fn try_acquire(&self, stream: &str) -> Result<Acquired, ClusterError> {
        let key = key::of_stream(stream);
        let record = LeaseRecord {
            owner: self.config.instance.clone(),
        };
        let sent = tokio::time::Instant::now();
        let revision = match self.leases.create(&key, to_json(&record)).await {
            Ok(revision) => revision,
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = self.holder(stream).await?.unwrap_or(LeaseRecord {
                    owner: "an owner whose lease just ended".to_owned(),
                });
                return Ok(Acquired::HeldBy(holder));
            }
            Err(e) => return Err(store_error(stream, "created", e)),
        };
        let (state, state_revision) = self.take_state(stream, &key).await?;
        Ok(Acquired::Taken(Lease::new(
            stream,
            key,
            revision,
            state,
            state_revision,
            sent,
            self.config.ttl,
        )))
    }

    /// Moves the stream's state to this instance, a new epoch.
    async fn take_state(&self, stream: &str, key: &str) -> Result<(StreamState, u64), ClusterError> {
        let mut last_error = None;
        for _ in 0..STATE_ATTEMPTS {
            let (mut state, revision) = match self.read_state(stream, key).await? {
                Some((state, revision)) => (state, Some(revision)),
                None => (StreamState::default(), None),
            };
            state.previous_owner = (!state.owner.is_empty()).then(|| state.owner.clone());
            state.owner = self.config.instance.clone();
            state.epoch += 1;
            state.owned_since_ms = unix_ms();
            let written = match revision {
                Some(revision) => self
                    .states
                    .update(key, to_json(&state), revision)
                    .await
                    .map_err(|e| e.to_string()),
                None => self
                    .states
                    .create(key, to_json(&state))
                    .await
                    .map_err(|e| e.to_string()),
            };
            match written {
                Ok(revision) => return Ok((state, revision)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(ClusterError::Store {
            stream: stream.to_owned(),
            action: "taken (its state kept changing)",
            reason: last_error.unwrap_or_default(),
        })
    }

    pub(crate) async fn read_state(
        &self,
        stream: &str,
        key: &str,
    ) -> Result<Option<(StreamState, u64)>, ClusterError> {
        let entry = self
            .states
            .entry(key)
            .await
            .map_err(|e| store_error(stream, "read", e))?;
        match entry.filter(|e| e.operation == kv::Operation::Put) {
            Some(entry) => Ok(Some((from_json(stream, &entry.value)?, entry.revision))),
            None => Ok(None),
        }
    }

    /// Who holds `stream`, if anyone.
    pub async fn holder(&self, stream: &str) -> Result<Option<LeaseRecord>, ClusterError> {
        Ok(self.read_holder(stream).await?.map(|(holder, _)| holder))
    }

    /// The stream's lease record and its revision, if someone holds it.
    pub(crate) async fn read_holder(&self, stream: &str) -> Result<Option<(LeaseRecord, u64)>, ClusterError> {
        let entry = self
            .leases
            .entry(key::of_stream(stream))
            .await
            .map_err(|e| store_error(stream, "read", e))?;
        match entry.filter(|e| e.operation == kv::Operation::Put) {
            Some(entry) => Ok(Some((from_json(stream, &entry.value)?, entry.revision))),
            None => Ok(None),
        }
    }

    /// The stream's state (numbering, owners), if it was ever served.
    pub async fn state(&self, stream: &str) -> Result<Option<StreamState>, ClusterError> {
        Ok(self
            .read_state(stream, &key::of_stream(stream))
            .await?
            .map(|(state, _)| state))
    }

    /// Every stream the cluster ever served: its state, and its holder now
    /// (`None`: nobody holds it).
    pub async fn streams(&self) -> Result<Vec<(String, StreamState, Option<LeaseRecord>)>, ClusterError> {
        let keys: Vec<String> = match self.states.keys().await {
            Ok(keys) => keys
                .try_collect()
                .await
                .map_err(|e| store_error("*", "listed", e))?,
            Err(e) => return Err(store_error("*", "listed", e)),
        };
        let mut streams = Vec::new();
        for key in keys {
            let stream = key::to_stream(&key);
            if let Some((state, _)) = self.read_state(&stream, &key).await? {
                let holder = self.holder(&stream).await?;
                streams.push((stream, state, holder));
            }
        }
        streams.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(streams)
    }

    /// Every stream with a live lease, and its holder.
    pub async fn held(&self) -> Result<Vec<(String, LeaseRecord)>, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::Store {
            stream: "*".to_owned(),
            action: "listed",
            reason: e.to_string(),
        };
        let keys: Vec<String> = match self.leases.keys().await {
            Ok(keys) => keys.try_collect().await.map_err(|e| failed(&e))?,
            Err(e) => return Err(failed(&e)),
        };
        let mut held = Vec::new();
        for key in keys {
            let stream = key::to_stream(&key);
            if let Some(record) = self.holder(&stream).await? {
                held.push((stream, record));
            }
        }
        held.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(held)
    }
}

/// Opens a bucket, making its stream first when there is none. The stream
/// is made here, to JetStream's key-value conventions (`KV_<bucket>` on
/// `$KV.<bucket>.>`, one message per key, rollups allowed, direct gets),
/// rather than by `create_key_value`: that asks the account's limits first,
/// and async-nats 0.42 cannot read nats-server 2.9's answer (Debian's).
async fn bucket(
    context: &jetstream::Context,
    name: &str,
    max_age: Duration,
) -> Result<kv::Store, ClusterError> {
    let failed = |e: &dyn std::fmt::Display| ClusterError::Bucket {
        bucket: name.to_owned(),
        reason: e.to_string(),
    };
    let config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        // JetStream's deduplication window may not exceed the age limit.
        duplicate_window: if max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            max_age.min(Duration::from_secs(120))
        },
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    context
        .get_or_create_stream(config)
        .await
        .map_err(|e| failed(&e))?;
    context.get_key_value(name).await.map_err(|e| failed(&e))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("records serialize"))
}

fn from_json<T: serde::de::DeserializeOwned>(stream: &str, bytes: &[u8]) -> Result<T, ClusterError> {
    serde_json::from_slice(bytes).map_err(|e| ClusterError::Record {
        stream: stream.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn store_error(stream: &str, action: &'static str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Store {
        stream: stream.to_owned(),
        action,
        reason: e.to_string(),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
