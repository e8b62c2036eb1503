//! ffprobe reports on written segments: container, codec, duration, frame
//! count, and whether the first picture is a keyframe.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ToolError, run_tool};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StreamReport {
    pub codec_type: String,
    pub codec_name: String,
    pub duration_s: Option<f64>,
    pub frames: Option<u64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeReport {
    pub format_name: String,
    pub duration_s: Option<f64>,
    pub streams: Vec<StreamReport>,
    /// For files with video: whether the first video packet is a keyframe
    /// (judged on packets, since a decoder would skip to the next keyframe).
    pub first_video_frame_is_key: Option<bool>,
}

impl ProbeReport {
    pub fn stream(&self, codec_type: &str) -> Option<&StreamReport> {
        self.streams.iter().find(|s| s.codec_type == codec_type)
    }
}

#[derive(Deserialize)]
struct RawProbe {
    #[serde(default)]
    streams: Vec<RawStream>,
    format: Option<RawFormat>,
    #[serde(default)]
    packets: Vec<RawPacket>,
}

#[derive(Deserialize)]
struct RawStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    duration: Option<String>,
    nb_read_packets: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Deserialize)]
struct RawFormat {
    format_name: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct RawPacket {
    flags: Option<String>,
}

async fn ffprobe(args: &[&str], path: &Path) -> Result<RawProbe, ToolError> {
    let mut command = crate::child::one_shot("ffprobe");
    command.args(["-v", "error", "-of", "json"]).args(args).arg(path);
    let output = run_tool("ffprobe", &mut command, &format!("{}: ", path.display())).await?;
    serde_json::from_slice(&output.stdout).map_err(|e| ToolError::Output {
        program: "ffprobe",
        reason: e.to_string(),
    })
}

/// Probes a media file, counting its access units (packets: one picture or
/// one AAC frame each) by demuxing, which is far cheaper than decoding;
/// [`decode_errors`] is the decoding check.
pub async fn probe(path: &Path) -> Result<ProbeReport, ToolError> {
    let raw = ffprobe(
        &[
            "-count_packets",
            "-show_entries",
            "format=format_name,duration:stream=codec_type,codec_name,duration,nb_read_packets,sample_rate,channels,width,height",
        ],
        path,
    )
    .await?;
    let streams: Vec<StreamReport> = raw
        .streams
        .into_iter()
        .map(|s| StreamReport {
            codec_type: s.codec_type.unwrap_or_default(),
            codec_name: s.codec_name.unwrap_or_default(),
            duration_s: s.duration.and_then(|d| d.parse().ok()),
            frames: s.nb_read_packets.and_then(|n| n.parse().ok()),
            sample_rate: s.sample_rate.and_then(|r| r.parse().ok()),
            channels: s.channels,
            width: s.width,
            height: s.height,
        })
        .collect();
    let first_video_frame_is_key = if streams.iter().any(|s| s.codec_type == "video") {
        let packets = ffprobe(
            &[
                "-select_streams",
                "v:0",
                "-read_intervals",
                "%+#1",
                "-show_entries",
                "packet=flags",
            ],
            path,
        )
        .await?;
        packets
            .packets
            .first()
            .and_then(|p| p.flags.as_deref())
            .map(|flags| flags.starts_with('K'))
    } else {
        None
    };
    let format = raw.format;
    Ok(ProbeReport {
        format_name: format
            .as_ref()
            .and_then(|f| f.format_name.clone())
            .unwrap_or_default(),
        duration_s: format.and_then(|f| f.duration).and_then(|d| d.parse().ok()),
        streams,
        first_video_frame_is_key,
    })
}

/// Decodes the whole file and returns what the decoder complained about
/// (empty when the file decodes cleanly on its own).
pub async fn decode_errors(path: &Path) -> Result<String, ToolError> {
    let output = crate::child::one_shot("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })?;
    Ok(String::from_utf8_lossy(&output.stderr).trim().to_owned())
}
