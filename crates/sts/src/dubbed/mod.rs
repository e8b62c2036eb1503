//! The dubbed answer on disk next to its segment: `dubbed_NNNNNN.aac` for
//! `aac` audio, `dubbed_NNNNNN.wav` for `pcm_s16le`.
//!
//! Written under a hidden temporary name and renamed into place, as the
//! ingest writes segments, so a reader never sees half a file. A player or
//! ffprobe must open every dubbed file, so only whole ADTS frames, or whole
//! PCM frames wrapped in a WAV header, are written; anything else fails the
//! fragment with the reason.

mod wav;

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::fragment::Fragment;
use crate::payload::adts;
use crate::protocol::DubbedAudio;

/// Writes the dub of `fragment`; `announced` is the rate and channel count
/// of `stream:init`, for PCM answers that do not repeat theirs.
pub(crate) async fn write(
    fragment: &Fragment,
    audio: &DubbedAudio,
    announced: (u32, u8),
) -> Result<PathBuf, String> {
    let decode = || {
        base64::engine::general_purpose::STANDARD
            .decode(audio.data_base64.as_bytes())
            .map_err(|e| format!("dubbed audio is not base64: {e}"))
    };
    let (extension, bytes) = match audio.format.as_str() {
        "aac" => {
            let bytes = decode()?;
            adts::scan(&bytes).map_err(|e| format!("dubbed audio is not ADTS: {e}"))?;
            ("aac", bytes)
        }
        "pcm_s16le" => {
            // The answer's own figures describe its samples; the STS may
            // leave them out, having been told them.
            let rate = audio.sample_rate_hz.unwrap_or(announced.0);
            let channels = audio.channels.unwrap_or(announced.1);
            let file = wav::wav(&decode()?, rate, channels.into())
                .map_err(|e| format!("dubbed pcm_s16le audio cannot be written as WAV: {e}"))?;
            ("wav", file)
        }
        other => {
            return Err(format!(
                "dubbed audio in format {other:?}, of which no playable file can be made"
            ));
        }
    };
    let path = fragment.dubbed_path(extension);
    let temp = hidden_temp(&path);
    let io = |what: &str, p: &Path, e: std::io::Error| format!("cannot {what} {}: {e}", p.display());
    tokio::fs::write(&temp, &bytes)
        .await
        .map_err(|e| io("write", &temp, e))?;
    if let Err(e) = tokio::fs::rename(&temp, &path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io("rename into place", &path, e));
    }
    Ok(path)
}

fn hidden_temp(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fragment(dir: &Path) -> Fragment {
        Fragment {
            sequence_number: 12,
            path: dir.join("audio_000012.ts"),
            start: Duration::ZERO,
            duration: Duration::from_secs(6),
            pts_ns: 0,
        }
    }

    const ANNOUNCED: (u32, u8) = (48_000, 2);

    fn audio(bytes: &[u8]) -> DubbedAudio {
        DubbedAudio {
            format: "aac".into(),
            sample_rate_hz: Some(48_000),
            channels: Some(2),
            duration_ms: None,
            data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    #[tokio::test]
    async fn writes_atomically_next_to_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let frames = [adts::test_frame(100, 1), adts::test_frame(90, 2)].concat();
        let path = write(&fragment(dir.path()), &audio(&frames), ANNOUNCED)
            .await
            .unwrap();
        assert_eq!(path, dir.path().join("dubbed_000012.aac"));
        assert_eq!(std::fs::read(&path).unwrap(), frames);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dubbed_000012.aac"], "no temporary file left behind");
    }

    #[tokio::test]
    async fn unplayable_answers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = fragment(dir.path());
        let err = write(&f, &audio(b"plain bytes"), ANNOUNCED).await.unwrap_err();
        assert!(err.contains("not ADTS"), "{err}");
        let mut bad = audio(&adts::test_frame(10, 0));
        bad.data_base64 = "***".into();
        assert!(write(&f, &bad, ANNOUNCED).await.unwrap_err().contains("base64"));
        bad.format = "opus".into();
        assert!(write(&f, &bad, ANNOUNCED).await.unwrap_err().contains("opus"));
        let odd_pcm = DubbedAudio {
            format: "pcm_s16le".into(),
            ..audio(&[0; 3])
        };
        let err = write(&f, &odd_pcm, ANNOUNCED).await.unwrap_err();
        assert!(err.contains("WAV") && err.contains("whole"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn pcm_becomes_a_wav_at_the_answers_rate_or_the_announced_one() {
        let dir = tempfile::tempdir().unwrap();
        let pcm = vec![0u8; 16_000 * 2];
        let answer = DubbedAudio {
            format: "pcm_s16le".into(),
            sample_rate_hz: None,
            channels: None,
            ..audio(&pcm)
        };
        let path = write(&fragment(dir.path()), &answer, (16_000, 1)).await.unwrap();
        assert_eq!(path, dir.path().join("dubbed_000012.wav"));
        let file = std::fs::read(&path).unwrap();
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([file[22], file[23]]), 1, "announced channels");
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 16_000);
        assert_eq!(&file[44..], pcm);
        let stereo = DubbedAudio {
            sample_rate_hz: Some(8_000),
            channels: Some(2),
            ..answer
        };
        let file = std::fs::read(write(&fragment(dir.path()), &stereo, (16_000, 1)).await.unwrap()).unwrap();
        assert_eq!(
            u16::from_le_bytes([file[22], file[23]]),
            2,
            "the answer's channels"
        );
        assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 8_000);
    }
}
