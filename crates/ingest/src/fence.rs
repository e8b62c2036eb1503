//! A write fence: asked before every write a worker makes (a segment
//! file, its rename, a manifest line, a frame of the output), so that a
//! worker whose right to the stream has ended (a cluster lease lost, say)
//! stops at once and writes nothing more. The ingest knows nothing of why:
//! the caller's check says yes, or no and why.
//!
//! A fence may also want each segment index reserved before the worker
//! opens its first file: a cluster records the index where the next owner
//! will read it, so that an owner cut off after writing a segment never
//! leaves that index to be written again.

use std::sync::Arc;

use crate::error::IngestError;

type Check = dyn Fn() -> Result<(), String> + Send + Sync;
type Reserve = dyn Fn(u64) -> Result<(), String> + Send + Sync;

/// What a worker asks before it writes.
#[derive(Clone)]
pub struct WriteFence {
    check: Arc<Check>,
    reserve: Option<Arc<Reserve>>,
}

impl WriteFence {
    /// `check` answers `Err(why)` once the worker may not write any more.
    pub fn new(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self {
            check: Arc::new(check),
            reserve: None,
        }
    }

    /// Also asks `reserve(index)` before the first file of segment `index`
    /// is opened (once per track: it must accept an index twice); it may
    /// block the worker's thread until the index is recorded.
    pub fn reserving(mut self, reserve: impl Fn(u64) -> Result<(), String> + Send + Sync + 'static) -> Self {
        self.reserve = Some(Arc::new(reserve));
        self
    }

    /// `Err(IngestError::Fenced)` once the worker may not write any more.
    pub fn check(&self) -> Result<(), IngestError> {
        (self.check)().map_err(|reason| IngestError::Fenced { reason })
    }

    /// `Err(IngestError::Fenced)` unless segment `index` may be written.
    pub fn reserve(&self, index: u64) -> Result<(), IngestError> {
        self.check()?;
        match &self.reserve {
            Some(reserve) => reserve(index).map_err(|reason| IngestError::Fenced { reason }),
            None => Ok(()),
        }
    }
}

impl std::fmt::Debug for WriteFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteFence")
    }
}

/// Asks `fence`, when there is one.
pub(crate) fn check(fence: Option<&WriteFence>) -> Result<(), IngestError> {
    fence.map_or(Ok(()), WriteFence::check)
}
