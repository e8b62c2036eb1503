//! The audio a fragment carries, read from the segment file when the
//! fragment is sent (never held in memory while it waits).

pub(crate) mod adts;
pub(crate) mod ts_demux;

use std::path::Path;

use crate::config::AudioFormat;

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
    #[error("format {0} is not supported by this build")]
    Unsupported(&'static str),
}

pub(crate) async fn load(path: &Path, format: AudioFormat) -> Result<Payload, PayloadError> {
    if format != AudioFormat::Aac {
        return Err(PayloadError::Unsupported(format.wire_name()));
    }
    let shown = || path.display().to_string();
    let ts = tokio::fs::read(path).await.map_err(|source| PayloadError::Io {
        path: shown(),
        source,
    })?;
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
