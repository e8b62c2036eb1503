//! Follows one direction of an RTMP connection, byte by byte, without
//! buffering media: chunk headers, per-chunk-stream message lengths and the
//! peer's chunk size are tracked so that every limit can be enforced before
//! the bytes reach a parser that would allocate for them (librtmp in the
//! ingest, rml_rtmp in the embedded server), and so that the few small
//! messages that matter (chunk size, abort, user control, status commands)
//! can be read.
//!
//! Written here rather than taken from an RTMP crate because the crates
//! reassemble whole messages (reserving up to 16 MiB per announced message,
//! and buffering a whole chunk before parsing it, which is the very
//! allocation a hostile peer exploits) and give no hook to refuse a header
//! before its payload is buffered.

use std::collections::HashMap;

/// What a peer may do, at most, before the connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest chunk size a peer may announce (MediaMTX sends 65536).
    pub max_chunk_size: u32,
    /// Largest message a peer may announce.
    pub max_message: u32,
    /// Bytes of messages begun but not finished, over all chunk streams:
    /// what a parser must hold in reassembly.
    pub max_in_progress: u64,
    /// Chunk streams with a message in progress at once.
    pub max_open_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chunk_size: 1 << 20,
            max_message: 8 << 20,
            max_in_progress: 16 << 20,
            max_open_streams: 16,
        }
    }
}

/// A limit a peer broke: the reason the connection is refused. The words
/// name no side; each user says whose bytes they were.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("a chunk size of {size} bytes was set; at most {limit} is accepted")]
    ChunkSize { size: u32, limit: u32 },
    #[error("a message of {size} bytes was announced; at most {limit} is accepted")]
    MessageSize { size: u32, limit: u32 },
    #[error("{bytes} bytes of messages are in progress; at most {limit} is accepted")]
    InProgress { bytes: u64, limit: u64 },
    #[error("messages are open on {count} chunk streams; at most {limit} is accepted")]
    OpenStreams { count: usize, limit: usize },
    #[error("a message on chunk stream {csid} was continued but never started")]
    OrphanChunk { csid: u32 },
}

/// Something the peer said that a user acts on, and where its message
/// began in the bytes just fed (0 when it began in earlier bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub at: usize,
    pub said: Said,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    /// `onStatus` with this level and code.
    Status {
        level: String,
        code: String,
        description: String,
    },
    /// User control "stream EOF".
    StreamEof,
}

/// Small messages are kept whole to be read; media never is.
const READ_WHOLE_UP_TO: u32 = 4096;
/// What the handshake takes in one direction: C0/S0, C1/S1, C2/S2.
pub const HANDSHAKE_BYTES: usize = 1 + 1536 + 1536;

const TYPE_SET_CHUNK_SIZE: u8 = 1;
const TYPE_ABORT: u8 = 2;
const TYPE_USER_CONTROL: u8 = 4;
const TYPE_DATA_AMF0: u8 = 18;
const TYPE_COMMAND_AMF0: u8 = 20;
const TYPE_AUDIO: u8 = 8;
const TYPE_VIDEO: u8 = 9;

#[derive(Debug, Clone, Default)]
struct ChunkStream {
    length: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    /// The last timestamp field read (an absolute time after a type-0
    /// header, a delta after type 1 or 2): a type-3 header that starts a
    /// new message advances the timestamp by it.
    ts_field: u32,
    extended: bool,
    /// Bytes of the current message still to come (0: at a boundary).
    remaining: u32,
    /// Where the current message's first chunk began in the bytes being
    /// fed, if it began there.
    started_at: Option<usize>,
    /// The message so far, when it is one worth reading.
    kept: Option<Vec<u8>>,
    /// A media message's first payload bytes (codec, packet type and, for
    /// AVC, the composition time): enough to know its presentation time.
    head: [u8; MEDIA_HEAD],
    head_len: u8,
}

/// Payload bytes of a media message read for its presentation time.
const MEDIA_HEAD: usize = 5;

/// The highest presentation time (ms, the stream's timeline) of the audio
/// and video frames that have passed: what a reader has received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaSeen {
    pub video_pts_ms: Option<u32>,
    pub audio_pts_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake {
        left: usize,
    },
    BasicHeader,
    /// Header bytes of the chunk being read, collected until complete.
    Header,
    Payload {
        csid: u32,
        left: u32,
    },
}

#[derive(Debug)]
pub struct ChunkTracker {
    limits: Limits,
    chunk_size: u32,
    stage: Stage,
    header: Vec<u8>,
    /// Offset, in the bytes being fed, of the chunk header being read.
    header_at: usize,
    streams: HashMap<u32, ChunkStream>,
    /// Where the last audio or video went: the play stream.
    pub media_stream_id: Option<u32>,
    pub last_media_timestamp: u32,
    pub media_seen: MediaSeen,
}

impl ChunkTracker {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            chunk_size: 128,
            stage: Stage::Handshake {
                left: HANDSHAKE_BYTES,
            },
            header: Vec::with_capacity(18),
            header_at: 0,
            streams: HashMap::new(),
            media_stream_id: None,
            last_media_timestamp: 0,
            media_seen: MediaSeen::default(),
        }
    }

    /// No message is half sent: a message of our own may be inserted.
    pub fn at_boundary(&self) -> bool {
        self.stage == Stage::BasicHeader && self.streams.values().all(|s| s.remaining == 0)
    }

    /// The chunk size the peer last set.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes announced by the messages in progress: what a parser holds or
    /// has reserved for them.
    pub fn in_progress_bytes(&self) -> u64 {
        self.streams
            .values()
            .filter(|s| s.remaining > 0)
            .map(|s| u64::from(s.length))
            .sum()
    }

    /// Whether the peer has used chunk stream `csid`.
    pub fn used_chunk_stream(&self, csid: u32) -> bool {
        self.streams.contains_key(&csid)
    }

    /// Takes the next bytes the peer sent; what it said that matters, or
    /// the limit it broke.
    pub fn feed(&mut self, mut bytes: &[u8], notices: &mut Vec<Notice>) -> Result<(), Violation> {
        let total = bytes.len();
        for stream in self.streams.values_mut() {
            stream.started_at = None;
        }
        while !bytes.is_empty() {
            let position = total - bytes.len();
            match self.stage {
                Stage::Handshake { left } => {
                    let n = left.min(bytes.len());
                    bytes = &bytes[n..];
                    self.stage = if n == left {
                        Stage::BasicHeader
                    } else {
                        Stage::Handshake { left: left - n }
                    };
                }
                Stage::BasicHeader | Stage::Header => {
                    if self.stage == Stage::BasicHeader {
                        self.header.clear();
                        self.header_at = position;
                        self.stage = Stage::Header;
                    }
                    self.header.push(bytes[0]);
                    bytes = &bytes[1..];
                    if let Some(needed) = self.header_len()
                        && self.header.len() == needed
                    {
                        self.start_chunk()?;
                    }
                }
                Stage::Payload { csid, left } => {
                    let n = (left as usize).min(bytes.len());
                    let (payload, rest) = bytes.split_at(n);
                    bytes = rest;
                    self.take_payload(csid, payload, notices)?;
                    let left = left - n as u32;
                    self.stage = if left == 0 {
                        Stage::BasicHeader
                    } else {
                        Stage::Payload { csid, left }
                    };
                }
            }
        }
        Ok(())
    }

    /// Bytes of the chunk header being read, once knowable.
    fn header_len(&self) -> Option<usize> {
        let first = *self.header.first()?;
        let basic = match first & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        if self.header.len() < basic {
            return None;
        }
        let fmt = first >> 6;
        let message = [11, 7, 3, 0][fmt as usize];
        let csid = self.csid();
        let stream = self.streams.get(&csid);
        let ts_field = |at: usize| {
            let b = &self.header[basic + at..basic + at + 3];
            u32::from_be_bytes([0, b[0], b[1], b[2]])
        };
        let extended = if fmt == 3 {
            stream.is_some_and(|s| s.extended)
        } else if self.header.len() >= basic + 3 {
            ts_field(0) == 0xFF_FFFF
        } else {
            return None;
        };
        Some(basic + message + if extended { 4 } else { 0 })
    }

    fn csid(&self) -> u32 {
        match self.header[0] & 0x3f {
            0 => 64 + u32::from(self.header[1]),
            1 => 64 + u32::from(self.header[1]) + 256 * u32::from(self.header[2]),
            n => u32::from(n),
        }
    }

    fn start_chunk(&mut self) -> Result<(), Violation> {
        let fmt = self.header[0] >> 6;
        let csid = self.csid();
        let basic = match self.header[0] & 0x3f {
            0 => 2,
            1 => 3,
            _ => 1,
        };
        let h = &self.header[basic..];
        let u24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let mut stream = match (fmt, self.streams.get(&csid)) {
            (0, _) => ChunkStream::default(),
            (_, Some(existing)) => existing.clone(),
            (_, None) => return Err(Violation::OrphanChunk { csid }),
        };
        if fmt <= 2 {
            let mut ts = u24(&h[0..3]);
            stream.extended = ts == 0xFF_FFFF;
            if stream.extended {
                // The real value follows the message header.
                let at = [11, 7, 3][fmt as usize];
                ts = u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
            }
            stream.ts_field = ts;
            stream.timestamp = if fmt == 0 {
                ts
            } else {
                stream.timestamp.wrapping_add(ts)
            };
        } else if stream.remaining == 0 {
            // A new message with nothing changed: the same delta again.
            stream.timestamp = stream.timestamp.wrapping_add(stream.ts_field);
        }
        if fmt <= 1 {
            stream.length = u24(&h[3..6]);
            stream.type_id = h[6];
        }
        if fmt == 0 {
            stream.stream_id = u32::from_le_bytes([h[7], h[8], h[9], h[10]]);
        }
        let starting = stream.remaining == 0;
        if starting {
            if stream.length > self.limits.max_message {
                return Err(Violation::MessageSize {
                    size: stream.length,
                    limit: self.limits.max_message,
                });
            }
            stream.remaining = stream.length;
            stream.started_at = Some(self.header_at);
            stream.kept = (stream.length <= READ_WHOLE_UP_TO && worth_reading(stream.type_id))
                .then(|| Vec::with_capacity(stream.length as usize));
            stream.head_len = 0;
        }
        let this_chunk = stream.remaining.min(self.chunk_size);
        self.streams.insert(csid, stream);
        self.check_in_progress()?;
        self.stage = if this_chunk == 0 {
            // An empty message carries nothing to read or to refuse.
            let _ = self.finish(csid, &mut Vec::new());
            Stage::BasicHeader
        } else {
            Stage::Payload {
                csid,
                left: this_chunk,
            }
        };
        Ok(())
    }

    fn check_in_progress(&self) -> Result<(), Violation> {
        let open: Vec<&ChunkStream> = self.streams.values().filter(|s| s.remaining > 0).collect();
        if open.len() > self.limits.max_open_streams {
            return Err(Violation::OpenStreams {
                count: open.len(),
                limit: self.limits.max_open_streams,
            });
        }
        let bytes: u64 = open.iter().map(|s| u64::from(s.length)).sum();
        if bytes > self.limits.max_in_progress {
            return Err(Violation::InProgress {
                bytes,
                limit: self.limits.max_in_progress,
            });
        }
        Ok(())
    }

    fn take_payload(
        &mut self,
        csid: u32,
        payload: &[u8],
        notices: &mut Vec<Notice>,
    ) -> Result<(), Violation> {
        let stream = self
            .streams
            .get_mut(&csid)
            .expect("a chunk in progress has a stream");
        stream.remaining -= payload.len() as u32;
        if matches!(stream.type_id, TYPE_AUDIO | TYPE_VIDEO) && usize::from(stream.head_len) < MEDIA_HEAD {
            let have = usize::from(stream.head_len);
            let n = (MEDIA_HEAD - have).min(payload.len());
            stream.head[have..have + n].copy_from_slice(&payload[..n]);
            stream.head_len += n as u8;
        }
        if let Some(kept) = &mut stream.kept {
            kept.extend_from_slice(payload);
        }
        if stream.remaining == 0 {
            return self.finish(csid, notices);
        }
        Ok(())
    }

    /// A whole message arrived on `csid`.
    fn finish(&mut self, csid: u32, notices: &mut Vec<Notice>) -> Result<(), Violation> {
        let stream = self
            .streams
            .get_mut(&csid)
            .expect("a finished message has a stream");
        let (type_id, stream_id, timestamp) = (stream.type_id, stream.stream_id, stream.timestamp);
        let at = stream.started_at.unwrap_or(0);
        let body = stream.kept.take().unwrap_or_default();
        match type_id {
            TYPE_AUDIO | TYPE_VIDEO => {
                self.media_stream_id = Some(stream_id);
                self.last_media_timestamp = timestamp;
                let head = &stream.head[..usize::from(stream.head_len)];
                if let Some(pts) = frame_pts(type_id, timestamp, head) {
                    let seen = match type_id {
                        TYPE_VIDEO => &mut self.media_seen.video_pts_ms,
                        _ => &mut self.media_seen.audio_pts_ms,
                    };
                    *seen = Some(seen.map_or(pts, |s| s.max(pts)));
                }
            }
            TYPE_SET_CHUNK_SIZE if body.len() >= 4 => {
                let size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
                if size == 0 || size > self.limits.max_chunk_size {
                    return Err(Violation::ChunkSize {
                        size,
                        limit: self.limits.max_chunk_size,
                    });
                }
                self.chunk_size = size;
            }
            TYPE_ABORT if body.len() >= 4 => {
                let aborted = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                if let Some(s) = self.streams.get_mut(&aborted) {
                    s.remaining = 0;
                    s.kept = None;
                }
            }
            TYPE_USER_CONTROL if body.len() >= 2 && u16::from_be_bytes([body[0], body[1]]) == 1 => {
                notices.push(Notice {
                    at,
                    said: Said::StreamEof,
                });
            }
            TYPE_COMMAND_AMF0 => {
                if let Some(said) = status_of(&body) {
                    notices.push(Notice { at, said });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A media message's presentation time (ms), if it carries a frame (not
/// a sequence header): the timestamp, plus AVC's composition time.
fn frame_pts(type_id: u8, timestamp: u32, head: &[u8]) -> Option<u32> {
    const AVC: u8 = 7;
    const AAC: u8 = 10;
    match (type_id, head) {
        (TYPE_VIDEO, [first, 1, c0, c1, c2, ..]) if first & 0x0f == AVC && first & 0x80 == 0 => {
            // A signed 24-bit composition time.
            let cts = (i32::from_be_bytes([0, *c0, *c1, *c2]) << 8) >> 8;
            Some(timestamp.saturating_add_signed(cts))
        }
        (TYPE_VIDEO, [first, ..]) if first & 0x0f == AVC && first & 0x80 == 0 => None,
        (TYPE_AUDIO, [first, packet_type, ..]) if first >> 4 == AAC => {
            (*packet_type == 1).then_some(timestamp)
        }
        (_, [_, ..]) => Some(timestamp),
        (_, []) => None,
    }
}

fn worth_reading(type_id: u8) -> bool {
    matches!(
        type_id,
        TYPE_SET_CHUNK_SIZE | TYPE_ABORT | TYPE_USER_CONTROL | TYPE_COMMAND_AMF0 | TYPE_DATA_AMF0
    )
}

/// `onStatus(txn, null, {level, code, description})` as a notice.
fn status_of(body: &[u8]) -> Option<Said> {
    let values = rml_amf0::deserialize(&mut &body[..]).ok()?;
    let mut values = values.into_iter();
    match values.next()? {
        rml_amf0::Amf0Value::Utf8String(name) if name == "onStatus" => {}
        _ => return None,
    }
    let properties = values.find_map(|v| v.get_object_properties())?;
    let text = |key: &str| match properties.get(key) {
        Some(rml_amf0::Amf0Value::Utf8String(s)) => s.clone(),
        _ => String::new(),
    };
    Some(Said::Status {
        level: text("level"),
        code: text("code"),
        description: text("description"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A type-0 chunk (with its whole payload when it fits one chunk).
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

    fn on_status(code: &str) -> Vec<u8> {
        use rml_amf0::Amf0Value;
        let object = std::collections::HashMap::from([
            ("level".to_owned(), Amf0Value::Utf8String("status".into())),
            ("code".to_owned(), Amf0Value::Utf8String(code.into())),
            ("description".to_owned(), Amf0Value::Utf8String("d".into())),
        ]);
        rml_amf0::serialize(&vec![
            Amf0Value::Utf8String("onStatus".into()),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            Amf0Value::Object(object),
        ])
        .unwrap()
    }

    #[test]
    fn reads_status_codes_even_when_split_byte_by_byte() {
        let mut tracker = past_handshake();
        let bytes = chunk0(5, TYPE_COMMAND_AMF0, 1, 0, &on_status("NetStream.Play.Start"));
        let mut notices = Vec::new();
        for b in &bytes {
            tracker.feed(std::slice::from_ref(b), &mut notices).unwrap();
        }
        assert!(
            matches!(&notices[..], [Notice { said: Said::Status { code, .. }, .. }] if code == "NetStream.Play.Start"),
            "{notices:?}"
        );
        assert!(tracker.at_boundary());
    }

    #[test]
    fn follows_the_chunk_size_across_continuation_chunks() {
        let mut tracker = past_handshake();
        let mut notices = Vec::new();
        tracker
            .feed(
                &chunk0(2, TYPE_SET_CHUNK_SIZE, 0, 0, &4096u32.to_be_bytes()),
                &mut notices,
            )
            .unwrap();
        // A 6000-byte video message: 4096 bytes, then a type-3 chunk.
        let payload = vec![0x27u8; 6000];
        let mut bytes = chunk0(6, TYPE_VIDEO, 1, 40, &payload);
        bytes.truncate(12 + 4096);
        tracker.feed(&bytes, &mut notices).unwrap();
        assert!(!tracker.at_boundary());
        bytes = vec![0xc6];
        bytes.extend_from_slice(&payload[4096..]);
        tracker.feed(&bytes, &mut notices).unwrap();
        assert!(tracker.at_boundary());
        assert_eq!(
            (tracker.media_stream_id, tracker.last_media_timestamp),
            (Some(1), 40)
        );
        // A notice says where its message began among the bytes fed.
        let mut bytes = chunk0(6, TYPE_VIDEO, 1, 80, &[0x27, 1, 0, 0, 0]);
        let eof_at = bytes.len();
        bytes.extend(chunk0(4, TYPE_USER_CONTROL, 0, 0, &[0, 1, 0, 0, 0, 1]));
        tracker.feed(&bytes, &mut notices).unwrap();
        assert_eq!(
            notices.last(),
            Some(&Notice {
                at: eof_at,
                said: Said::StreamEof
            })
        );
    }

    #[test]
    fn the_highest_presentation_time_of_each_track_is_known_whatever_the_chunking() {
        let mut stream = Vec::new();
        // Sequence headers at 0 say nothing about what was received.
        stream.extend(chunk0(6, TYPE_VIDEO, 1, 0, &[0x17, 0, 0, 0, 0, 1, 0x64]));
        stream.extend(chunk0(4, TYPE_AUDIO, 1, 0, &[0xaf, 0, 0x11, 0x90]));
        // A B-frame stream: decode 1000 shown at 1066, decode 1033 shown
        // at 1033 (composition 0), decode 1066 shown 33 ms earlier.
        stream.extend(chunk0(6, TYPE_VIDEO, 1, 1000, &[0x17, 1, 0, 0, 66, 0x65]));
        stream.extend(chunk0(4, TYPE_AUDIO, 1, 1021, &[0xaf, 1, 0x21]));
        stream.extend(chunk0(6, TYPE_VIDEO, 1, 1033, &[0x27, 1, 0, 0, 0, 0x41]));
        stream.extend(chunk0(6, TYPE_VIDEO, 1, 1066, &[0x27, 1, 0xff, 0xff, 0xdf, 0x41]));
        for piece in [1, 3, 4096] {
            let mut tracker = past_handshake();
            assert_eq!(tracker.media_seen, MediaSeen::default());
            for bytes in stream.chunks(piece) {
                tracker.feed(bytes, &mut Vec::new()).unwrap();
            }
            assert_eq!(
                tracker.media_seen,
                MediaSeen {
                    video_pts_ms: Some(1066),
                    audio_pts_ms: Some(1021),
                },
                "fed {piece} bytes at a time"
            );
        }
    }

    /// Audio every 21 ms is sent with one-byte (type 3) headers after the
    /// first delta: each new message is another delta later.
    #[test]
    fn a_type_3_header_starting_a_message_repeats_the_last_delta() {
        let mut tracker = past_handshake();
        let mut bytes = chunk0(4, TYPE_AUDIO, 1, 1000, &[0xaf, 1, 0x21]);
        // Type 1: delta 21, length 3, audio.
        bytes.extend([0x44, 0, 0, 21, 0, 0, 3, TYPE_AUDIO, 0xaf, 1, 0x22]);
        // Type 3, twice: 1042, then 1063.
        bytes.extend([0xc4, 0xaf, 1, 0x23]);
        bytes.extend([0xc4, 0xaf, 1, 0x24]);
        tracker.feed(&bytes, &mut Vec::new()).unwrap();
        assert_eq!(tracker.last_media_timestamp, 1063);
        assert_eq!(tracker.media_seen.audio_pts_ms, Some(1063));
    }

    #[test]
    fn extended_timestamps_are_read_and_skipped_over() {
        let mut tracker = past_handshake();
        let mut bytes = vec![6, 0xff, 0xff, 0xff, 0, 0, 3, TYPE_AUDIO, 1, 0, 0, 0];
        bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
        bytes.extend_from_slice(&[0xaf, 1, 9]);
        tracker.feed(&bytes, &mut Vec::new()).unwrap();
        assert!(tracker.at_boundary());
        assert_eq!(tracker.last_media_timestamp, 0x0100_0000);
    }

    #[test]
    fn refuses_what_would_take_a_reader_s_memory() {
        let mut huge_chunks = past_handshake();
        let err = huge_chunks
            .feed(
                &chunk0(2, TYPE_SET_CHUNK_SIZE, 0, 0, &0x7fff_ffffu32.to_be_bytes()),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(matches!(err, Violation::ChunkSize { .. }), "{err}");

        let mut huge_message = past_handshake();
        let header = [6u8, 0, 0, 0, 0xff, 0xff, 0xff, TYPE_VIDEO, 1, 0, 0, 0];
        let err = huge_message.feed(&header, &mut Vec::new()).unwrap_err();
        assert!(
            matches!(err, Violation::MessageSize { size: 0xff_ffff, .. }),
            "{err}"
        );

        // Many chunk streams each opening a large message.
        let mut many = past_handshake();
        let limits = Limits::default();
        let mut result = Ok(());
        for csid in 3..60u8 {
            let len = (limits.max_message - 1).to_be_bytes();
            let header = [csid, 0, 0, 0, len[1], len[2], len[3], TYPE_VIDEO, 1, 0, 0, 0];
            // Only the header and one byte of each: nothing is complete.
            let mut bytes = header.to_vec();
            bytes.push(0x27);
            let mut chunk = bytes.clone();
            chunk.truncate(13);
            result = many.feed(&chunk, &mut Vec::new());
            if result.is_err() {
                break;
            }
            // Finish this chunk's payload so the next header can start.
            let rest = vec![0u8; 127];
            if many.feed(&rest, &mut Vec::new()).is_err() {
                break;
            }
        }
        assert!(
            matches!(
                result,
                Err(Violation::InProgress { .. } | Violation::OpenStreams { .. })
            ),
            "{result:?}"
        );

        let mut orphan = past_handshake();
        let err = orphan.feed(&[0xc9, 1, 2, 3], &mut Vec::new()).unwrap_err();
        assert_eq!(err, Violation::OrphanChunk { csid: 9 });
    }

    #[test]
    fn random_bytes_are_refused_or_followed_never_buffered() {
        // Whatever the bytes, the tracker either refuses them or keeps only
        // bounded state: no allocation grows with what the server sends.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..50 {
            let mut tracker = past_handshake();
            let mut bytes = vec![0u8; 64 * 1024];
            for b in &mut bytes {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            let mut notices = Vec::new();
            if tracker.feed(&bytes, &mut notices).is_ok() {
                let kept: usize = tracker
                    .streams
                    .values()
                    .map(|s| s.kept.as_ref().map_or(0, Vec::capacity))
                    .sum();
                assert!(kept <= tracker.limits.max_open_streams * READ_WHOLE_UP_TO as usize);
            }
        }
    }
}
