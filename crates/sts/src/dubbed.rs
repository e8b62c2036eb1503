//! The dubbed answer on disk: `dubbed_NNNNNN.aac` next to its segment.
//!
//! Written under a hidden temporary name and renamed into place, as the
//! ingest writes segments, so a reader never sees half a file. Only audio
//! that is whole ADTS frames is written: a player or ffprobe must open
//! every dubbed file, so anything else fails the fragment with the reason.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::fragment::Fragment;
use crate::payload::adts;
use crate::protocol::DubbedAudio;

pub(crate) async fn write(fragment: &Fragment, audio: &DubbedAudio) -> Result<PathBuf, String> {
    let extension = match audio.format.as_str() {
        "aac" => "aac",
        other => {
            return Err(format!(
                "dubbed audio in format {other:?}, of which no playable file can be made"
            ));
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(audio.data_base64.as_bytes())
        .map_err(|e| format!("dubbed audio is not base64: {e}"))?;
    adts::scan(&bytes).map_err(|e| format!("dubbed audio is not ADTS: {e}"))?;
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
        let path = write(&fragment(dir.path()), &audio(&frames)).await.unwrap();
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
        let err = write(&f, &audio(b"plain bytes")).await.unwrap_err();
        assert!(err.contains("not ADTS"), "{err}");
        let mut bad = audio(&adts::test_frame(10, 0));
        bad.data_base64 = "***".into();
        assert!(write(&f, &bad).await.unwrap_err().contains("base64"));
        bad.format = "opus".into();
        assert!(write(&f, &bad).await.unwrap_err().contains("opus"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
