//! The `pcm_s16le` payload: the segment decoded by a [`PcmDecoder`] the
//! caller provides.
//!
//! Decoding AAC needs a media framework (the ingest has GStreamer); this
//! crate links none, so the step is a seam: the crate decides *when* (the
//! fragment's turn to be sent, never at submission, so memory holds paths,
//! not audio) and *where* (a blocking thread, never the driver's task or
//! the caller's streaming threads), the decoder decides *how*. The crate
//! then checks the answer is whole frames, so the STS never gets half a
//! sample.

use std::sync::Arc;
use std::time::Duration;

/// What a decoder is asked for: interleaved signed 16-bit little-endian
/// samples at this rate and channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcmRequest {
    pub sample_rate_hz: u32,
    pub channels: u8,
    /// The segment's duration from the manifest, so a decoder can bound
    /// its time and output by what the segment can hold.
    pub duration: Duration,
}

impl PcmRequest {
    /// Bytes of one sample for every channel.
    pub fn frame_bytes(&self) -> usize {
        2 * usize::from(self.channels)
    }
}

/// Why a segment could not be decoded; its message becomes the fragment's
/// `reason`.
pub type DecodeError = Box<dyn std::error::Error + Send + Sync>;

/// Turns a segment file (MPEG-TS holding one AAC stream) into PCM.
///
/// Called on a blocking thread, one fragment at a time per stream; it may
/// take as long as a decode takes, but should bound itself: the stream's
/// next fragments wait for it.
pub trait PcmDecoder: Send + Sync + 'static {
    fn decode(&self, segment: Vec<u8>, request: PcmRequest) -> Result<Vec<u8>, DecodeError>;
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PcmError {
    #[error("no PCM decoder was given to the client")]
    NoDecoder,
    #[error("cannot decode to pcm_s16le: {0}")]
    Decode(#[source] DecodeError),
    #[error("the decoder stopped abnormally: {0}")]
    DecoderLost(String),
    #[error("the decoder returned no audio")]
    Empty,
    #[error("the decoder returned {bytes} bytes, not whole {channels}-channel 16-bit frames")]
    PartialFrame { bytes: usize, channels: u8 },
}

/// Decodes `segment` on a blocking thread and checks the result.
pub(crate) async fn decode(
    decoder: Option<&Arc<dyn PcmDecoder>>,
    segment: Vec<u8>,
    request: PcmRequest,
) -> Result<Vec<u8>, PcmError> {
    let decoder = decoder.ok_or(PcmError::NoDecoder)?.clone();
    let pcm = tokio::task::spawn_blocking(move || decoder.decode(segment, request))
        .await
        .map_err(|e| PcmError::DecoderLost(e.to_string()))?
        .map_err(PcmError::Decode)?;
    check(&pcm, request)?;
    Ok(pcm)
}

fn check(pcm: &[u8], request: PcmRequest) -> Result<(), PcmError> {
    if pcm.is_empty() {
        return Err(PcmError::Empty);
    }
    if !pcm.len().is_multiple_of(request.frame_bytes()) {
        return Err(PcmError::PartialFrame {
            bytes: pcm.len(),
            channels: request.channels,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Vec<u8>, &'static str>);

    impl PcmDecoder for Fixed {
        fn decode(&self, _segment: Vec<u8>, _request: PcmRequest) -> Result<Vec<u8>, DecodeError> {
            self.0.clone().map_err(Into::into)
        }
    }

    fn stereo() -> PcmRequest {
        PcmRequest {
            sample_rate_hz: 16_000,
            channels: 2,
            duration: Duration::from_secs(1),
        }
    }

    async fn run(decoder: Fixed) -> Result<Vec<u8>, PcmError> {
        let decoder: Arc<dyn PcmDecoder> = Arc::new(decoder);
        decode(Some(&decoder), vec![0x47], stereo()).await
    }

    #[tokio::test]
    async fn whole_frames_pass_and_the_rest_is_refused() {
        assert_eq!(run(Fixed(Ok(vec![1, 2, 3, 4]))).await.unwrap(), [1, 2, 3, 4]);
        let partial = run(Fixed(Ok(vec![1, 2]))).await.unwrap_err();
        assert!(
            matches!(
                partial,
                PcmError::PartialFrame {
                    bytes: 2,
                    channels: 2
                }
            ),
            "{partial}"
        );
        assert!(matches!(run(Fixed(Ok(vec![]))).await, Err(PcmError::Empty)));
        let failed = run(Fixed(Err("no AAC stream"))).await.unwrap_err();
        assert!(failed.to_string().contains("no AAC stream"), "{failed}");
        assert!(matches!(
            decode(None, vec![], stereo()).await,
            Err(PcmError::NoDecoder)
        ));
    }
}
