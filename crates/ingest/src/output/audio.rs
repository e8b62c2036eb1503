//! Audio for the output, as AAC frames (ADTS) of the input's own format, so
//! the output's audio track never changes format: a dub (`dubbed_N.aac` or
//! `.wav`) split into frames, or re-encoded when its format differs, and
//! one frame of silence for padding and the silence fallback. Encoding is
//! GStreamer's `voaacenc` (gstreamer1.0-plugins-bad, which Debian ships).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

/// Elements the output's audio needs, for a prerequisite check.
pub const AUDIO_ELEMENTS: [&str; 6] = [
    "decodebin",
    "audioconvert",
    "audioresample",
    "voaacenc",
    "audiotestsrc",
    "filesrc",
];

/// A span's audio is never longer than a segment; this bounds its encoding.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(20);

/// What an AAC stream is: what the output's frames must all share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AacFormat {
    pub rate: u32,
    pub channels: u8,
}

const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

impl AacFormat {
    /// The format an ADTS frame's header states.
    pub fn of_adts(frame: &[u8]) -> Option<Self> {
        if frame.len() < 7 || frame[0] != 0xff || frame[1] & 0xf0 != 0xf0 {
            return None;
        }
        let rate = *RATES.get(usize::from((frame[2] >> 2) & 0x0f))?;
        let channels = ((frame[2] & 0x01) << 2) | (frame[3] >> 6);
        Some(Self { rate, channels })
    }
}

/// The ADTS frames of `bytes`, in order; `None` if they are not ADTS.
pub(crate) fn split_adts(bytes: &[u8]) -> Option<Vec<Bytes>> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        AacFormat::of_adts(rest)?;
        let length =
            (usize::from(rest[3] & 0x03) << 11) | (usize::from(rest[4]) << 3) | usize::from(rest[5] >> 5);
        if length < 7 || length > rest.len() {
            return None;
        }
        frames.push(Bytes::copy_from_slice(&rest[..length]));
        rest = &rest[length..];
    }
    Some(frames)
}

/// A dub as AAC frames of `format`: an ADTS file of that format as it is,
/// anything else (WAV, another rate) decoded and encoded anew.
pub(crate) fn dub_frames(path: &Path, format: AacFormat) -> Result<Vec<Bytes>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(frames) = split_adts(&bytes)
        && frames.first().and_then(|f| AacFormat::of_adts(f)) == Some(format)
    {
        return Ok(frames);
    }
    let location = path.to_string_lossy().replace('"', "");
    encode(&format!("filesrc location=\"{location}\" ! decodebin"), format)
}

/// One frame of silence in `format`.
pub(crate) fn silent_frame(format: AacFormat) -> Result<Bytes, String> {
    // A few frames, so the encoder's start-up is behind the one kept.
    let frames = encode(
        "audiotestsrc wave=silence num-buffers=8 samplesperbuffer=1024",
        format,
    )?;
    frames
        .last()
        .cloned()
        .ok_or_else(|| "the encoder made no frame of silence".to_owned())
}

/// Runs `source ! audioconvert ! audioresample ! <format> ! voaacenc !
/// aacparse ! ADTS` to the end and collects the frames.
fn encode(source: &str, format: AacFormat) -> Result<Vec<Bytes>, String> {
    crate::gst_runtime::gst_init().map_err(|e| e.to_string())?;
    let description = format!(
        "{source} ! audioconvert ! audioresample ! audio/x-raw,rate={},channels={} ! voaacenc ! aacparse ! audio/mpeg,stream-format=adts ! appsink name=out sync=false",
        format.rate, format.channels
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build the audio encoder: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the audio encoder is not a pipeline".to_owned())?;
    let sink = pipeline
        .by_name("out")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("the audio encoder has no sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the audio encoder: {e}"))?;
    let deadline = std::time::Instant::now() + ENCODE_TIMEOUT;
    let mut frames = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Err(format!("encoding took longer than {ENCODE_TIMEOUT:?}"));
        }
        match sink.try_pull_sample(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) {
            Some(sample) => {
                if let Some(buffer) = sample.buffer()
                    && let Ok(map) = buffer.map_readable()
                {
                    frames.push(Bytes::copy_from_slice(map.as_slice()));
                }
            }
            None if sink.is_eos() => break Ok(()),
            None => {
                let error = pipeline.bus().and_then(|bus| {
                    bus.pop_filtered(&[gst::MessageType::Error])
                        .map(|m| match m.view() {
                            gst::MessageView::Error(e) => e.error().to_string(),
                            _ => String::new(),
                        })
                });
                break Err(error.unwrap_or_else(|| "the audio encoder stopped".to_owned()));
            }
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    outcome.map(|()| frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_an_adts_frame_of_the_format_asked_for() {
        for format in [
            AacFormat {
                rate: 48_000,
                channels: 2,
            },
            AacFormat {
                rate: 44_100,
                channels: 1,
            },
        ] {
            let frame = silent_frame(format).unwrap();
            assert_eq!(AacFormat::of_adts(&frame), Some(format));
            assert_eq!(split_adts(&frame).unwrap().len(), 1);
        }
    }

    #[test]
    fn a_wav_dub_is_encoded_to_the_stream_s_format() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("dub.wav");
        // One second of a 16-kHz mono tone, as a pcm_s16le STS answers.
        let samples: Vec<i16> = (0..16_000)
            .map(|i| ((i as f64 * 880.0 * std::f64::consts::TAU / 16_000.0).sin() * 8000.0) as i16)
            .collect();
        let mut bytes = b"RIFF".to_vec();
        let data_len = (samples.len() * 2) as u32;
        bytes.extend((36 + data_len).to_le_bytes());
        bytes.extend(b"WAVEfmt ");
        bytes.extend(16u32.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(16_000u32.to_le_bytes());
        bytes.extend(32_000u32.to_le_bytes());
        bytes.extend(2u16.to_le_bytes());
        bytes.extend(16u16.to_le_bytes());
        bytes.extend(b"data");
        bytes.extend(data_len.to_le_bytes());
        for s in samples {
            bytes.extend(s.to_le_bytes());
        }
        std::fs::write(&wav, bytes).unwrap();
        let format = AacFormat {
            rate: 48_000,
            channels: 2,
        };
        let frames = dub_frames(&wav, format).unwrap();
        // One second at 48 kHz is 46.9 frames of 1024 samples.
        assert!((46..=50).contains(&frames.len()), "{}", frames.len());
        assert!(frames.iter().all(|f| AacFormat::of_adts(f) == Some(format)));
        assert_eq!(
            dub_frames(&dir.path().join("absent.wav"), format)
                .unwrap_err()
                .split(':')
                .next(),
            Some(format!("cannot read {}", dir.path().join("absent.wav").display()).as_str())
        );
    }
}
