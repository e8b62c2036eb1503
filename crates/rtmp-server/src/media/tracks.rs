//! The tracks of a published stream and their current configuration, in
//! MediaMTX's words (`H264`, `MPEG-4 Audio`, `MPEG-1/2 Audio`, ...).

use bytes::Bytes;

use super::aac::AacConfig;
use super::h264::SpsInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoTrack {
    pub sps: Bytes,
    pub pps: Bytes,
    /// `None` when the SPS does not parse (codec properties are then unknown).
    pub info: Option<SpsInfo>,
}

impl VideoTrack {
    pub fn new(sps: Bytes, pps: Bytes) -> Self {
        let info = SpsInfo::parse(&sps).ok();
        Self { sps, pps, info }
    }

    /// Takes an in-band SPS, as MediaMTX's format updater does.
    pub fn update_sps(&mut self, sps: &[u8]) {
        if sps != self.sps {
            self.sps = Bytes::copy_from_slice(sps);
            self.info = SpsInfo::parse(sps).ok();
        }
    }

    pub fn update_pps(&mut self, pps: &[u8]) {
        if pps != self.pps {
            self.pps = Bytes::copy_from_slice(pps);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AudioTrack {
    Aac {
        config: Bytes,
        params: Option<AacConfig>,
    },
    /// Relayed as the publisher sends it (MP3, G.711, LPCM).
    Other { codec: &'static str, flv_format: u8 },
}

impl AudioTrack {
    pub fn aac(config: Bytes) -> Self {
        let params = AacConfig::parse(&config);
        Self::Aac { config, params }
    }

    pub fn codec(&self) -> &'static str {
        match self {
            Self::Aac { .. } => "MPEG-4 Audio",
            Self::Other { codec, .. } => codec,
        }
    }

    /// FLV `audiocodecid` for the metadata readers get.
    pub fn flv_codec_id(&self) -> u8 {
        match self {
            Self::Aac { .. } => super::tag::AUDIO_FORMAT_AAC,
            Self::Other { flv_format, .. } => *flv_format,
        }
    }
}

/// MediaMTX's name for a legacy FLV audio format it relays as is.
pub(crate) fn other_audio_codec(flv_format: u8) -> Option<&'static str> {
    match flv_format {
        super::tag::AUDIO_FORMAT_MP3 => Some("MPEG-1/2 Audio"),
        7 | 8 => Some("G711"),
        3 => Some("LPCM"),
        _ => None,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tracks {
    pub video: Option<VideoTrack>,
    pub audio: Option<AudioTrack>,
}

impl Tracks {
    pub fn is_empty(&self) -> bool {
        self.video.is_none() && self.audio.is_none()
    }

    /// Codec names, video first.
    pub fn codecs(&self) -> Vec<&'static str> {
        let video = self.video.as_ref().map(|_| "H264");
        let audio = self.audio.as_ref().map(AudioTrack::codec);
        video.into_iter().chain(audio).collect()
    }

    /// `2 tracks (H264, MPEG-4 Audio)`, as MediaMTX's log lines put it.
    pub fn summary(&self) -> String {
        let codecs = self.codecs();
        let noun = if codecs.len() == 1 { "track" } else { "tracks" };
        format!("{} {noun} ({})", codecs.len(), codecs.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_like_mediamtx() {
        let mut tracks = Tracks {
            video: Some(VideoTrack::new(Bytes::new(), Bytes::new())),
            audio: Some(AudioTrack::aac(Bytes::from_static(&[0x11, 0x90]))),
        };
        assert_eq!(tracks.summary(), "2 tracks (H264, MPEG-4 Audio)");
        tracks.video = None;
        assert_eq!(tracks.summary(), "1 track (MPEG-4 Audio)");
        tracks.audio = Some(AudioTrack::Other {
            codec: other_audio_codec(2).unwrap(),
            flv_format: 2,
        });
        assert_eq!(tracks.codecs(), ["MPEG-1/2 Audio"]);
    }
}
