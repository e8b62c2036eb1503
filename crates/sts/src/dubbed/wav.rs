//! A RIFF/WAVE header around 16-bit PCM, so a `pcm_s16le` dub is a file
//! any player or ffprobe opens (raw PCM says nothing of its rate or
//! channels). The canonical 44-byte form: `RIFF`, `fmt ` (PCM, format 1),
//! `data`.

const HEADER_LEN: usize = 44;
const BITS_PER_SAMPLE: u16 = 16;
/// The RIFF size field counts the file minus its first 8 bytes.
const MAX_DATA_LEN: usize = u32::MAX as usize - (HEADER_LEN - 8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WavError {
    #[error("no PCM samples")]
    Empty,
    #[error("{rate} Hz, {channels} channels cannot be written as WAV")]
    BadFormat { rate: u32, channels: u16 },
    #[error("{bytes} bytes are not whole {channels}-channel 16-bit frames")]
    PartialFrame { bytes: usize, channels: u16 },
    #[error("{bytes} bytes of PCM are more than a WAV file holds")]
    TooLong { bytes: usize },
}

/// `pcm` (interleaved, little-endian) as a whole WAV file.
pub(crate) fn wav(pcm: &[u8], rate: u32, channels: u16) -> Result<Vec<u8>, WavError> {
    let block_align = u32::from(channels) * u32::from(BITS_PER_SAMPLE / 8);
    let byte_rate = rate.checked_mul(block_align);
    let (Some(byte_rate), true) = (byte_rate, rate > 0 && channels > 0) else {
        return Err(WavError::BadFormat { rate, channels });
    };
    if pcm.is_empty() {
        return Err(WavError::Empty);
    }
    if !pcm.len().is_multiple_of(block_align as usize) {
        return Err(WavError::PartialFrame {
            bytes: pcm.len(),
            channels,
        });
    }
    if pcm.len() > MAX_DATA_LEN {
        return Err(WavError::TooLong { bytes: pcm.len() });
    }
    let data_len = pcm.len() as u32;
    let mut file = Vec::with_capacity(HEADER_LEN + pcm.len());
    file.extend_from_slice(b"RIFF");
    file.extend_from_slice(&(data_len + (HEADER_LEN as u32 - 8)).to_le_bytes());
    file.extend_from_slice(b"WAVEfmt ");
    file.extend_from_slice(&16u32.to_le_bytes());
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&channels.to_le_bytes());
    file.extend_from_slice(&rate.to_le_bytes());
    file.extend_from_slice(&byte_rate.to_le_bytes());
    file.extend_from_slice(&(block_align as u16).to_le_bytes());
    file.extend_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    file.extend_from_slice(b"data");
    file.extend_from_slice(&data_len.to_le_bytes());
    file.extend_from_slice(pcm);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn the_header_describes_the_samples() {
        let pcm: Vec<u8> = (0..16_000u32 * 2 * 2).map(|i| i as u8).collect();
        let file = wav(&pcm, 16_000, 2).unwrap();
        assert_eq!(file.len(), HEADER_LEN + pcm.len());
        assert_eq!(&file[0..4], b"RIFF");
        assert_eq!(u32_at(&file, 4) as usize, file.len() - 8);
        assert_eq!(&file[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(&file, 16), 16, "fmt chunk size");
        assert_eq!(u16_at(&file, 20), 1, "PCM");
        assert_eq!(u16_at(&file, 22), 2, "channels");
        assert_eq!(u32_at(&file, 24), 16_000, "rate");
        assert_eq!(u32_at(&file, 28), 64_000, "byte rate");
        assert_eq!(u16_at(&file, 32), 4, "block align");
        assert_eq!(u16_at(&file, 34), 16, "bits");
        assert_eq!(&file[36..40], b"data");
        assert_eq!(u32_at(&file, 40) as usize, pcm.len());
        assert_eq!(&file[HEADER_LEN..], pcm);
    }

    #[test]
    fn what_is_not_whole_frames_is_refused() {
        assert_eq!(wav(&[], 16_000, 1), Err(WavError::Empty));
        assert_eq!(
            wav(&[0; 6], 16_000, 2),
            Err(WavError::PartialFrame {
                bytes: 6,
                channels: 2
            })
        );
        assert_eq!(
            wav(&[0; 3], 16_000, 1).unwrap_err().to_string(),
            "3 bytes are not whole 1-channel 16-bit frames"
        );
        assert!(matches!(wav(&[0; 4], 0, 1), Err(WavError::BadFormat { .. })));
        assert!(matches!(wav(&[0; 4], 16_000, 0), Err(WavError::BadFormat { .. })));
        assert!(matches!(
            wav(&[0; 4], u32::MAX, 2),
            Err(WavError::BadFormat { .. })
        ));
    }
}
