//! The audio a fragment carries, read from the segment file when the
//! fragment is sent (never held in memory while it waits).

pub(crate) mod adts;
pub(crate) mod pcm;
pub(crate) mod ts_demux;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::AudioFormat;
use pcm::{PcmDecoder, PcmRequest};

pub(crate) struct Payload {
    pub data: Vec<u8>,
    pub sample_rate_hz: u32,
    pub channels: u8,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PayloadError {
    #[error("cannot read segment {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("segment {path}: {source}")]
    Demux {
        path: String,
        #[source]
        source: ts_demux::DemuxError,
    },
    #[error("segment {path}: {source}")]
    Adts {
        path: String,
        #[source]
        source: adts::AdtsError,
    },
    #[error("segment {path}: {source}")]
    Pcm {
        path: String,
        #[source]
        source: pcm::PcmError,
    },
}

/// The payload of the segment at `path` (of `duration`) in `format`.
pub(crate) async fn load(
    path: &Path,
    duration: Duration,
    format: AudioFormat,
    decoder: Option<&Arc<dyn PcmDecoder>>,
) -> Result<Payload, PayloadError> {
    let shown = || path.display().to_string();
    let ts = tokio::fs::read(path).await.map_err(|source| PayloadError::Io {
        path: shown(),
        source,
    })?;
    match format {
        AudioFormat::Aac => {
            let data = ts_demux::adts_from_ts(&ts).map_err(|source| PayloadError::Demux {
                path: shown(),
                source,
            })?;
            let summary = adts::scan(&data).map_err(|source| PayloadError::Adts {
                path: shown(),
                source,
            })?;
            Ok(Payload {
                data,
                sample_rate_hz: summary.sample_rate_hz,
                channels: summary.channels,
            })
        }
        AudioFormat::PcmS16le {
            sample_rate_hz,
            channels,
        } => {
            let request = PcmRequest {
                sample_rate_hz,
                channels,
                duration,
            };
            let data = pcm::decode(decoder, ts, request)
                .await
                .map_err(|source| PayloadError::Pcm {
                    path: shown(),
                    source,
                })?;
            Ok(Payload {
                data,
                sample_rate_hz,
                channels,
            })
        }
    }
}
