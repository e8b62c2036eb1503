//! The recordings of a real MediaMTX 1.20.1 (`conformance/mediamtx-1.20.1/`)
//! and how a live run is compared with them: a log line is compared by its
//! shape (addresses and the path name replaced), a JSON answer by its keys.

use std::collections::BTreeSet;

pub(super) const SERVER_LOG: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/server-log-smoke.txt");
/// The log of the scenario suite's run on a real MediaMTX (in a container).
pub(super) const SUITE_LOG: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/server-log-e2e-suite.txt");
pub(super) const PATHS_LIST: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/api-paths-list-one-reader.json");
pub(super) const UNAUTHORIZED: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/api-through-port-mapping-401.json");
pub(super) const LATE_READER: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/late-reader-8.5s-packets.txt");
pub(super) const LATE_READER_BFRAMES: &str =
    include_str!("../../../../conformance/mediamtx-1.20.1/late-reader-bframes-packets.txt");

/// A log line with its date, every `ip:port` and the path name replaced:
/// what stays the same from run to run.
pub(super) fn shape(line: &str, path: &str) -> String {
    let line = strip_date(line).replace(path, "PATH");
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(c) = rest.chars().next() {
        if let Some(len) = address_len(rest) {
            out.push_str("ADDR");
            rest = &rest[len..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The first recorded line that contains `needle`, in [`shape`] form (the
/// path as it was recorded is named by `recorded_path`).
pub(super) fn recorded_line(needle: &str, recorded_path: &str) -> String {
    let line = SERVER_LOG
        .lines()
        .chain(SUITE_LOG.lines())
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("the recorded log has a line with {needle:?}"));
    shape(line, recorded_path)
}

fn strip_date(line: &str) -> &str {
    // `2026/12/01 07:23:15 INF ...`
    let b = line.as_bytes();
    if b.len() > 20 && b[4] == b'/' && b[7] == b'/' && b[13] == b':' && b[19] == b' ' {
        &line[20..]
    } else {
        line
    }
}

/// Length of an IPv4 `a.b.c.d:port` at the start of `s`.
fn address_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    for part in 0..5 {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let sep = match part {
            0..=2 => b'.',
            3 => b':',
            _ => return Some(i),
        };
        if b.get(i) != Some(&sep) {
            return None;
        }
        i += 1;
    }
    None
}

/// Every key path of a JSON value (`items[].source.type`), array items merged.
pub(super) fn key_paths(value: &serde_json::Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    collect_keys(value, "", &mut keys);
    keys
}

fn collect_keys(value: &serde_json::Value, prefix: &str, keys: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                keys.insert(path.clone());
                collect_keys(v, &path, keys);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_keys(item, &format!("{prefix}[]"), keys);
            }
        }
        _ => {}
    }
}

/// One packet of an ffprobe `-show_packets -of compact` listing.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Packet {
    pub video: bool,
    pub pts_ms: i64,
    pub dts_ms: i64,
    pub keyframe: bool,
}

pub(super) fn packets(listing: &str) -> Vec<Packet> {
    listing
        .lines()
        .filter_map(|line| {
            let field = |name: &str| {
                line.split('|')
                    .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            };
            let ms = |v: &str| v.parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64);
            Some(Packet {
                video: field("codec_type")? == "video",
                pts_ms: ms(field("pts_time")?)?,
                dts_ms: ms(field("dts_time")?)?,
                keyframe: field("flags")?.starts_with('K'),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_hide_what_changes_between_runs() {
        let line = "2026/12/01 07:23:16 INF [RTMP] [conn 127.0.0.1:46624] closed: write tcp 127.0.0.1:37499->127.0.0.1:46624: write: broken pipe";
        assert_eq!(
            shape(line, "live/x"),
            "INF [RTMP] [conn ADDR] closed: write tcp ADDR->ADDR: write: broken pipe"
        );
        assert_eq!(
            recorded_line("closed: no stream is available", "live/nothing"),
            "INF [RTMP] [conn ADDR] closed: no stream is available on path 'PATH'"
        );
    }

    #[test]
    fn reads_the_recorded_packets_and_keys() {
        let packets = packets(LATE_READER);
        let first_video = packets.iter().find(|p| p.video).unwrap();
        assert_eq!((first_video.pts_ms, first_video.keyframe), (10_067, true));
        assert_eq!(packets[0].pts_ms, 8_515);
        let keys = key_paths(&serde_json::from_str(PATHS_LIST).unwrap());
        assert!(keys.contains("items[].source.type"), "{keys:?}");
        assert!(
            keys.contains("items[].tracks2[].codecProps.sampleRate"),
            "{keys:?}"
        );
    }
}
