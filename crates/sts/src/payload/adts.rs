//! ADTS frame headers: enough to check that a byte run is whole ADTS
//! frames and to read the sample rate and channel count, without decoding.
//! Used both on what is sent (lifted out of the segment) and on what comes
//! back (the dub is written only if it is real ADTS, so ffprobe opens it).

/// Sampling frequency index (ISO/IEC 14496-3 Table 1.18) to Hz.
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];
const HEADER_LEN: usize = 7;
const CRC_LEN: usize = 2;
/// Samples per AAC frame per raw data block (AAC-LC).
const SAMPLES_PER_BLOCK: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsHeader {
    pub frame_length: usize,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub raw_blocks: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdtsSummary {
    pub frames: usize,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AdtsError {
    #[error("no ADTS frames")]
    Empty,
    #[error("no ADTS sync word at byte {offset}")]
    NoSync { offset: usize },
    #[error("ADTS frame at byte {offset}: {reason}")]
    BadHeader { offset: usize, reason: String },
    #[error("ADTS frame at byte {offset} is cut short: {length} bytes declared, {left} left")]
    Truncated {
        offset: usize,
        length: usize,
        left: usize,
    },
    #[error("ADTS frame at byte {offset} changes the stream to {sample_rate_hz} Hz, {channels} channels")]
    Changed {
        offset: usize,
        sample_rate_hz: u32,
        channels: u8,
    },
}

pub(crate) fn parse_header(bytes: &[u8], offset: usize) -> Result<AdtsHeader, AdtsError> {
    let bad = |reason: &str| AdtsError::BadHeader {
        offset,
        reason: reason.into(),
    };
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(AdtsError::Truncated {
            offset,
            length: HEADER_LEN,
            left: bytes.len(),
        });
    };
    if h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
        return Err(AdtsError::NoSync { offset });
    }
    if h[1] & 0x06 != 0 {
        return Err(bad("layer is not 0"));
    }
    let protection_absent = h[1] & 0x01 == 1;
    let rate_index = usize::from((h[2] >> 2) & 0x0F);
    let sample_rate_hz = *SAMPLE_RATES
        .get(rate_index)
        .ok_or_else(|| bad(&format!("reserved sampling frequency index {rate_index}")))?;
    let channels = ((h[2] & 0x01) << 2) | (h[3] >> 6);
    if channels == 0 {
        return Err(bad("channel configuration 0 (set by a PCE) is not supported"));
    }
    let frame_length = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    let header_len = HEADER_LEN + if protection_absent { 0 } else { CRC_LEN };
    if frame_length < header_len {
        return Err(bad(&format!(
            "frame length {frame_length} is shorter than its header"
        )));
    }
    Ok(AdtsHeader {
        frame_length,
        sample_rate_hz,
        // Channel configuration 7 is 7.1: eight channels.
        channels: if channels == 7 { 8 } else { channels },
        raw_blocks: (h[6] & 0x03) + 1,
    })
}

/// Checks that `stream` is nothing but whole ADTS frames of one format.
pub(crate) fn scan(stream: &[u8]) -> Result<AdtsSummary, AdtsError> {
    let mut offset = 0;
    let mut summary: Option<AdtsSummary> = None;
    while offset < stream.len() {
        let header = parse_header(&stream[offset..], offset)?;
        let left = stream.len() - offset;
        if header.frame_length > left {
            return Err(AdtsError::Truncated {
                offset,
                length: header.frame_length,
                left,
            });
        }
        let s = summary.get_or_insert(AdtsSummary {
            frames: 0,
            sample_rate_hz: header.sample_rate_hz,
            channels: header.channels,
            samples: 0,
        });
        if (s.sample_rate_hz, s.channels) != (header.sample_rate_hz, header.channels) {
            return Err(AdtsError::Changed {
                offset,
                sample_rate_hz: header.sample_rate_hz,
                channels: header.channels,
            });
        }
        s.frames += 1;
        s.samples += SAMPLES_PER_BLOCK * u64::from(header.raw_blocks);
        offset += header.frame_length;
    }
    summary.ok_or(AdtsError::Empty)
}

/// Test material: a syntactically valid ADTS frame (48 kHz stereo AAC-LC)
/// with `payload_len` bytes of filler after the header.
#[cfg(test)]
pub(crate) fn test_frame(payload_len: usize, fill: u8) -> Vec<u8> {
    let length = HEADER_LEN + payload_len;
    let mut frame = vec![
        0xFF,
        0xF1,                                  // MPEG-4, layer 0, no CRC
        (1 << 6) | (3 << 2),                   // AAC-LC, 48 kHz, channel config high bit 0
        (2 << 6) | ((length >> 11) as u8 & 3), // 2 channels
        (length >> 3) as u8,
        ((length as u8 & 0x07) << 5) | 0x1F,
        0xFC, // buffer fullness (VBR), one raw data block
    ];
    frame.resize(length, fill);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rate_channels_and_length() {
        let frame = test_frame(300, 0xAA);
        let header = parse_header(&frame, 0).unwrap();
        assert_eq!(
            header,
            AdtsHeader {
                frame_length: 307,
                sample_rate_hz: 48_000,
                channels: 2,
                raw_blocks: 1,
            }
        );
    }

    #[test]
    fn whole_frames_are_counted() {
        let stream: Vec<u8> = (0..10).flat_map(|i| test_frame(100 + i, 0)).collect();
        let summary = scan(&stream).unwrap();
        assert_eq!(summary.frames, 10);
        assert_eq!(summary.samples, 10 * 1024);
    }

    #[test]
    fn garbage_and_truncation_are_refused() {
        let mut stream = test_frame(50, 0);
        stream.extend_from_slice(&test_frame(50, 0)[..30]);
        assert!(matches!(
            scan(&stream),
            Err(AdtsError::Truncated { offset: 57, .. })
        ));
        assert!(matches!(
            scan(b"not adts at all"),
            Err(AdtsError::NoSync { offset: 0 })
        ));
        assert_eq!(scan(&[]), Err(AdtsError::Empty));
        let mut changed = test_frame(20, 0);
        let mut mono = test_frame(20, 0);
        mono[3] &= 0x3F;
        mono[3] |= 1 << 6;
        changed.extend_from_slice(&mono);
        assert!(matches!(
            scan(&changed),
            Err(AdtsError::Changed { channels: 1, .. })
        ));
    }
}
