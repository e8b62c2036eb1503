//! AAC as MediaMTX relays it: the real sample rate and channel count live
//! only in the AudioSpecificConfig, and every tag a reader gets says
//! "AAC, 44.1 kHz, 16 bit, stereo" (0xAF) whatever the stream is.
//!
//! The AudioSpecificConfig is read here: two fields of a few bits, which
//! does not warrant a dependency.

use bytes::{BufMut, Bytes, BytesMut};

/// The tag header byte MediaMTX writes on every AAC tag.
pub(crate) const AAC_TAG_HEADER: u8 = 0xAF;
pub(crate) const AAC_PACKET_CONFIG: u8 = 0;
pub(crate) const AAC_PACKET_RAW: u8 = 1;

const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AacConfig {
    pub sample_rate: u32,
    pub channels: u8,
}

impl AacConfig {
    /// Sample rate and channel configuration of an AudioSpecificConfig.
    pub fn parse(config: &[u8]) -> Option<Self> {
        let bits = u64::from_be_bytes({
            let mut b = [0u8; 8];
            let n = config.len().min(8);
            b[..n].copy_from_slice(&config[..n]);
            b
        });
        let read = |at: u32, len: u32| ((bits << at) >> (64 - len)) as u32;
        let mut at = 5;
        if read(0, 5) == 31 {
            at += 6; // escaped object type
        }
        let index = read(at, 4);
        at += 4;
        let sample_rate = if index == 15 {
            let rate = read(at, 24);
            at += 24;
            rate
        } else {
            *SAMPLE_RATES.get(index as usize)?
        };
        let channels = read(at, 4) as u8;
        let needed_bits = (at + 4) as usize;
        (config.len() * 8 >= needed_bits && sample_rate > 0).then_some(Self {
            sample_rate,
            channels,
        })
    }
}

/// An AAC tag body as MediaMTX sends it to readers.
pub(crate) fn aac_tag(packet_type: u8, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(2 + data.len());
    out.put_u8(AAC_TAG_HEADER);
    out.put_u8(packet_type);
    out.put_slice(data);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rate_and_channels() {
        // AAC LC, 48 kHz, stereo: the seed fixture's 0x1190.
        assert_eq!(
            AacConfig::parse(&[0x11, 0x90]),
            Some(AacConfig {
                sample_rate: 48_000,
                channels: 2
            })
        );
        // AAC LC, 44.1 kHz, mono.
        assert_eq!(
            AacConfig::parse(&[0x12, 0x08]),
            Some(AacConfig {
                sample_rate: 44_100,
                channels: 1
            })
        );
        assert_eq!(AacConfig::parse(&[0x11]), None);
        assert_eq!(AacConfig::parse(&[0x17, 0x80]), None, "index 14 is reserved");
    }

    #[test]
    fn tags_always_say_44k_stereo() {
        assert_eq!(&aac_tag(AAC_PACKET_RAW, &[9, 9])[..], &[0xAF, 1, 9, 9]);
    }
}
