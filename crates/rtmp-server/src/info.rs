//! What the server says about itself, in the exact shape of MediaMTX's
//! Control API v3 (field names, order and types), so that the HTTP API,
//! the library calls and a real MediaMTX's answers are read the same way.
//! Every type also deserialises, so clients can read either server with it.

use serde::{Deserialize, Serialize};

/// A page of items: `{"itemCount":N,"pageCount":P,"items":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemList<T> {
    pub item_count: usize,
    pub page_count: usize,
    pub items: Vec<T>,
}

/// A path, as in `/v3/paths/list` and `/v3/paths/get/<name>`. A path
/// exists only while it has a publisher whose analysis is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathInfo {
    pub name: String,
    /// `all_others`: every path is accepted.
    pub conf_name: String,
    /// Deprecated name of `available`.
    pub ready: bool,
    pub ready_time: Option<String>,
    pub available: bool,
    /// RFC 3339 with nanoseconds, as Go writes it.
    pub available_time: Option<String>,
    pub online: bool,
    pub online_time: Option<String>,
    pub source: Option<PathConn>,
    /// Deprecated list of codec names.
    pub tracks: Vec<String>,
    pub tracks2: Vec<TrackInfo>,
    pub readers: Vec<PathConn>,
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
    pub inbound_frames_in_error: u64,
    /// Deprecated name of `inboundBytes`.
    pub bytes_received: u64,
    /// Deprecated name of `outboundBytes`.
    pub bytes_sent: u64,
}

/// A publisher or reader seen from a path: `{"type":"rtmpConn","id":"<uuid>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathConn {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackInfo {
    /// `H264`, `MPEG-4 Audio`, ...
    pub codec: String,
    pub codec_props: CodecProps,
}

/// Codec properties: H.264 from the SPS, MPEG-4 Audio from its config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CodecProps {
    Video(VideoProps),
    Audio(AudioProps),
    None {},
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoProps {
    pub width: u32,
    pub height: u32,
    /// `Baseline`, `Main`, `High`, ...
    pub profile: String,
    /// `3` for level 3.0, `3.1` for 3.1.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioProps {
    pub sample_rate: u32,
    pub channel_count: u8,
}

/// What a connection is doing (MediaMTX `state`). A publisher is `idle`
/// while its first media is analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    Idle,
    Read,
    Publish,
}

/// A connection, as in `/v3/rtmpconns/list` and `/v3/rtmpconns/get/<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnInfo {
    /// A random UUID.
    pub id: String,
    pub created: String,
    /// `IP:port`.
    pub remote_addr: String,
    pub state: ConnState,
    /// Empty while idle.
    pub path: String,
    pub query: String,
    pub user: String,
    /// The client's `flashVer`.
    #[serde(default)]
    pub user_agent: String,
    /// Socket bytes, handshake included.
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
    /// Units not sent to this reader because it was too slow.
    pub outbound_frames_discarded: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds with trailing zeros
/// trimmed, e.g. `2026-12-01T07:21:59.624162886Z`.
pub(crate) fn go_time(at: std::time::SystemTime) -> String {
    let text = humantime::format_rfc3339_nanos(at).to_string();
    let Some((seconds, fraction)) = text.trim_end_matches('Z').split_once('.') else {
        return text;
    };
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{seconds}Z")
    } else {
        format!("{seconds}.{fraction}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_are_written_as_go_writes_them() {
        let at = UNIX_EPOCH + Duration::new(1_764_573_719, 624_162_886);
        assert_eq!(go_time(at), "2025-12-01T07:21:59.624162886Z");
        assert_eq!(
            go_time(UNIX_EPOCH + Duration::new(5, 500_000_000)),
            "1970-01-01T00:00:05.5Z"
        );
        assert_eq!(
            go_time(UNIX_EPOCH + Duration::from_secs(5)),
            "1970-01-01T00:00:05Z"
        );
    }

    #[test]
    fn reads_a_real_mediamtx_answer() {
        let answer = include_str!("../../../conformance/mediamtx-1.20.1/api-paths-list-one-reader.json");
        let list: ItemList<PathInfo> = serde_json::from_str(answer).unwrap();
        let path = &list.items[0];
        assert_eq!(path.name, "live/test/in");
        assert_eq!(path.readers.len(), 1);
        assert_eq!(
            path.tracks2[0].codec_props,
            CodecProps::Video(VideoProps {
                width: 640,
                height: 360,
                profile: "High".into(),
                level: "3".into()
            })
        );
        // Serialising gives back the same keys in the same order.
        let ours = serde_json::to_string(&list).unwrap();
        assert_eq!(keys(&ours), keys(answer));
    }

    fn keys(json: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = json;
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            if after[end + 1..].starts_with(':') {
                out.push(after[..end].to_owned());
            }
            rest = &after[end + 1..];
        }
        out
    }
}
