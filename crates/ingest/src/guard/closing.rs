//! The guard's own closing messages: data messages after the server's last
//! one, so that what a source loses when its connection closes is ours.

const TYPE_DATA_AMF0: u8 = 18;

/// About `total` bytes of AMF0 data messages of ours, each one chunk of at
/// most `chunk_size` bytes on chunk stream `csid`: `onGuardEnd("...")`,
/// which every FLV reader ignores (it is not `onMetaData`).
pub(crate) fn closing_messages(
    csid: u8,
    stream_id: u32,
    timestamp: u32,
    chunk_size: u32,
    total: usize,
) -> Vec<u8> {
    use rml_amf0::Amf0Value;
    const NAME_AND_MARKERS: usize = 13 + 3;
    let padding = (chunk_size as usize).clamp(NAME_AND_MARKERS + 1, 1024) - NAME_AND_MARKERS;
    let body = rml_amf0::serialize(&vec![
        Amf0Value::Utf8String("onGuardEnd".to_owned()),
        Amf0Value::Utf8String(".".repeat(padding)),
    ])
    .expect("strings serialise");
    let ts = timestamp.min(0xFF_FFFE).to_be_bytes();
    let len = (body.len() as u32).to_be_bytes();
    let mut one = vec![
        csid & 0x3f,
        ts[1],
        ts[2],
        ts[3],
        len[1],
        len[2],
        len[3],
        TYPE_DATA_AMF0,
    ];
    one.extend_from_slice(&stream_id.to_le_bytes());
    one.extend_from_slice(&body);
    one.repeat(total.div_ceil(one.len()))
}

#[cfg(test)]
mod tests {
    use rtmp_chunks::{ChunkTracker, HANDSHAKE_BYTES, Limits};

    use super::*;

    const TYPE_SET_CHUNK_SIZE: u8 = 1;

    fn chunk0(csid: u8, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) -> Vec<u8> {
        let ts = timestamp.to_be_bytes();
        let len = (payload.len() as u32).to_be_bytes();
        let mut out = vec![csid, ts[1], ts[2], ts[3], len[1], len[2], len[3], type_id];
        out.extend_from_slice(&stream_id.to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn past_handshake() -> ChunkTracker {
        let mut tracker = ChunkTracker::new(Limits::default());
        tracker.feed(&[3u8; HANDSHAKE_BYTES], &mut Vec::new()).unwrap();
        tracker
    }

    #[test]
    fn closing_messages_are_whole_chunks_at_the_current_chunk_size() {
        for chunk_size in [128u32, 4096, 65_536] {
            let mut tracker = past_handshake();
            let mut notices = Vec::new();
            if chunk_size != 128 {
                tracker
                    .feed(
                        &chunk0(2, TYPE_SET_CHUNK_SIZE, 0, 0, &chunk_size.to_be_bytes()),
                        &mut notices,
                    )
                    .unwrap();
            }
            let closing = closing_messages(60, 1, 1234, chunk_size, 16 * 1024);
            assert!(closing.len() >= 16 * 1024);
            tracker.feed(&closing, &mut notices).unwrap();
            assert!(tracker.at_boundary(), "chunk size {chunk_size}");
            assert!(notices.is_empty());
            assert!(tracker.used_chunk_stream(60));
        }
    }
}
