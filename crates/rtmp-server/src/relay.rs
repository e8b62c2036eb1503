//! One published path: the latest stream configuration, the GOP cache and
//! the fan-out of every frame to bounded reader queues.
//!
//! A reader whose queue is full is never waited for: its frames are
//! discarded until the next point it can resume decoding from (a video
//! keyframe, or any audio frame on an audio-only stream), and then it gets
//! the current configuration again before that frame. The publisher is
//! therefore never slowed down by a reader and memory never grows.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::gop_cache::GopCache;
use crate::media::{Frame, FrameKind, codec_name};
use crate::registry::{ConnId, ConnStats};

pub(crate) struct PathRelay {
    metadata: Option<Frame>,
    video_config: Option<Frame>,
    audio_config: Option<Frame>,
    video_codec: Option<&'static str>,
    audio_codec: Option<&'static str>,
    gop: GopCache,
    ready: bool,
    readers: Vec<ReaderSlot>,
    reader_capacity: usize,
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
}

struct ReaderSlot {
    conn: ConnId,
    tx: mpsc::Sender<Frame>,
    stats: Arc<ConnStats>,
    /// Discarding until the next sync point.
    resync: bool,
    /// A configuration frame was discarded: resend all before resuming.
    config_stale: bool,
}

enum Offer {
    Kept,
    Gone,
}

impl PathRelay {
    pub fn new(reader_capacity: usize, gop_max_frames: usize, gop_max_bytes: usize) -> Self {
        Self {
            metadata: None,
            video_config: None,
            audio_config: None,
            video_codec: None,
            audio_codec: None,
            gop: GopCache::new(gop_max_frames, gop_max_bytes),
            ready: false,
            readers: Vec::new(),
            reader_capacity,
            inbound_bytes: 0,
            outbound_bytes: 0,
        }
    }

    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Codecs seen so far, video first (MediaMTX lists tracks that way).
    pub fn tracks(&self) -> Vec<String> {
        [self.video_codec, self.audio_codec]
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect()
    }

    pub fn reader_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.readers.iter().map(|r| r.conn)
    }

    /// Takes one frame from the publisher. Returns true for the first media
    /// frame: the stream is then "ready" and its tracks are known.
    pub fn publish(&mut self, frame: Frame) -> bool {
        self.inbound_bytes += frame.payload.len() as u64;
        let first_media = !self.ready && frame.kind != FrameKind::Metadata && !frame.is_sequence_header();
        match frame.kind {
            FrameKind::Metadata => self.metadata = Some(frame.clone()),
            FrameKind::Video => {
                self.video_codec = self.video_codec.or(codec_name(frame.kind, &frame.payload));
                if frame.is_sequence_header() {
                    self.video_config = Some(frame.clone());
                }
            }
            FrameKind::Audio => {
                self.audio_codec = self.audio_codec.or(codec_name(frame.kind, &frame.payload));
                if frame.is_sequence_header() {
                    self.audio_config = Some(frame.clone());
                }
            }
        }
        let is_config = frame.kind == FrameKind::Metadata || frame.is_sequence_header();
        if !is_config {
            self.gop.push(&frame);
        }
        self.ready |= first_media;
        self.fan_out(&frame, is_config);
        first_media
    }

    /// Adds a reader and queues what it needs to start decoding at once:
    /// metadata, sequence headers, then the cached GOP.
    pub fn add_reader(&mut self, conn: ConnId, stats: Arc<ConnStats>) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(self.reader_capacity);
        let start = self.gop.first_timestamp();
        for config in self.configs(start) {
            self.outbound_bytes += config.payload.len() as u64;
            // Cannot fail: the channel is new and sized for this burst.
            let _ = tx.try_send(config);
        }
        for frame in self.gop.frames() {
            self.outbound_bytes += frame.payload.len() as u64;
            let _ = tx.try_send(frame.clone());
        }
        self.readers.push(ReaderSlot {
            conn,
            tx,
            stats,
            resync: start.is_none(),
            config_stale: false,
        });
        rx
    }

    pub fn remove_reader(&mut self, conn: ConnId) {
        self.readers.retain(|r| r.conn != conn);
    }

    /// Drops every reader's sender: each reader drains its queue, then sees
    /// the end of the stream.
    pub fn close_readers(&mut self) {
        self.readers.clear();
    }

    /// Current configuration frames. Sequence headers are stamped with
    /// `timestamp` (the frame that follows them) so time never goes
    /// backwards; metadata keeps its own (normally 0) because ffmpeg only
    /// takes `onMetaData` at timestamp 0 as stream metadata and turns any
    /// other into an extra data stream.
    fn configs(&self, timestamp: Option<u32>) -> Vec<Frame> {
        let headers = [&self.video_config, &self.audio_config]
            .into_iter()
            .flatten()
            .map(|f| Frame {
                timestamp: timestamp.unwrap_or(f.timestamp),
                ..f.clone()
            });
        self.metadata.iter().cloned().chain(headers).collect()
    }

    fn fan_out(&mut self, frame: &Frame, is_config: bool) {
        let sync_point =
            frame.is_keyframe() || (frame.kind == FrameKind::Audio && self.video_codec.is_none());
        let mut readers = std::mem::take(&mut self.readers);
        readers.retain_mut(|reader| {
            let offer = if is_config {
                self.offer_config(reader, frame)
            } else {
                self.offer_media(reader, frame, sync_point)
            };
            matches!(offer, Offer::Kept)
        });
        self.readers = readers;
    }

    fn offer_config(&mut self, reader: &mut ReaderSlot, frame: &Frame) -> Offer {
        if reader.resync {
            reader.config_stale = true;
            return Offer::Kept;
        }
        match self.send(reader, frame.clone()) {
            Err(TrySendError::Closed(_)) => Offer::Gone,
            Err(TrySendError::Full(_)) => {
                self.discard(reader);
                reader.config_stale = true;
                Offer::Kept
            }
            Ok(()) => Offer::Kept,
        }
    }

    fn offer_media(&mut self, reader: &mut ReaderSlot, frame: &Frame, sync_point: bool) -> Offer {
        if reader.tx.is_closed() {
            return Offer::Gone;
        }
        if reader.resync {
            let configs = if reader.config_stale {
                self.configs(Some(frame.timestamp))
            } else {
                Vec::new()
            };
            if !sync_point || reader.tx.capacity() < configs.len() + 1 {
                self.discard(reader);
                return Offer::Kept;
            }
            for config in configs {
                let _ = self.send(reader, config);
            }
            reader.resync = false;
            reader.config_stale = false;
        }
        match self.send(reader, frame.clone()) {
            Err(TrySendError::Closed(_)) => Offer::Gone,
            Err(TrySendError::Full(_)) => {
                self.discard(reader);
                Offer::Kept
            }
            Ok(()) => Offer::Kept,
        }
    }

    fn send(&mut self, reader: &ReaderSlot, frame: Frame) -> Result<(), TrySendError<Frame>> {
        let len = frame.payload.len() as u64;
        reader.tx.try_send(frame)?;
        self.outbound_bytes += len;
        Ok(())
    }

    fn discard(&self, reader: &mut ReaderSlot) {
        reader.resync = true;
        reader.stats.discarded.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(kind: FrameKind, ts: u32, bytes: &'static [u8]) -> Frame {
        Frame {
            kind,
            timestamp: ts,
            payload: Bytes::from_static(bytes),
        }
    }

    const AVC_HEADER: &[u8] = &[0x17, 0x00, 0x01];
    const AVC_KEY: &[u8] = &[0x17, 0x01, 0x02];
    const AVC_INTER: &[u8] = &[0x27, 0x01, 0x03];
    const AAC_HEADER: &[u8] = &[0xaf, 0x00, 0x12];
    const AAC_RAW: &[u8] = &[0xaf, 0x01, 0x04];
    const METADATA: &[u8] = b"\x02\x00\x0aonMetaData";

    fn drain(rx: &mut mpsc::Receiver<Frame>) -> Vec<(FrameKind, u32, bool)> {
        let mut got = Vec::new();
        while let Ok(f) = rx.try_recv() {
            got.push((
                f.kind,
                f.timestamp,
                f.is_sequence_header() || f.kind == FrameKind::Metadata,
            ));
        }
        got
    }

    fn relay_with_stream(capacity: usize) -> PathRelay {
        let mut relay = PathRelay::new(capacity, 100, 1 << 20);
        assert!(!relay.publish(frame(FrameKind::Metadata, 0, METADATA)));
        assert!(!relay.publish(frame(FrameKind::Video, 0, AVC_HEADER)));
        assert!(!relay.publish(frame(FrameKind::Audio, 0, AAC_HEADER)));
        assert!(relay.publish(frame(FrameKind::Video, 0, AVC_KEY)));
        relay.publish(frame(FrameKind::Audio, 10, AAC_RAW));
        relay.publish(frame(FrameKind::Video, 33, AVC_KEY));
        relay.publish(frame(FrameKind::Audio, 40, AAC_RAW));
        relay.publish(frame(FrameKind::Video, 66, AVC_INTER));
        relay
    }

    #[test]
    fn late_joiner_gets_configs_then_latest_gop_with_monotonic_timestamps() {
        let mut relay = relay_with_stream(16);
        assert_eq!(relay.tracks(), vec!["H264", "MPEG-4 Audio"]);
        let mut rx = relay.add_reader(1, Arc::default());
        let got = drain(&mut rx);
        assert_eq!(
            got,
            vec![
                (FrameKind::Metadata, 0, true),
                (FrameKind::Video, 33, true),
                (FrameKind::Audio, 33, true),
                (FrameKind::Video, 33, false),
                (FrameKind::Audio, 40, false),
                (FrameKind::Video, 66, false),
            ]
        );
        relay.publish(frame(FrameKind::Video, 100, AVC_INTER));
        assert_eq!(drain(&mut rx), vec![(FrameKind::Video, 100, false)]);
    }

    #[test]
    fn slow_reader_discards_until_keyframe_then_gets_configs_again() {
        let mut relay = relay_with_stream(64);
        let stats = Arc::new(ConnStats::default());
        let mut rx = relay.add_reader(1, stats.clone());
        let queued = drain(&mut rx).len();
        assert_eq!(queued, 6);
        // Overfill the queue (capacity 64) without draining it.
        for i in 0..70 {
            relay.publish(frame(FrameKind::Video, 100 + i, AVC_INTER));
        }
        assert_eq!(stats.discarded.load(Ordering::Relaxed), 6);
        assert_eq!(drain(&mut rx).len(), 64);
        // Still resyncing: inter frames and audio are discarded.
        relay.publish(frame(FrameKind::Audio, 200, AAC_RAW));
        relay.publish(frame(FrameKind::Video, 201, AVC_INTER));
        assert!(drain(&mut rx).is_empty());
        relay.publish(frame(FrameKind::Video, 233, AVC_KEY));
        assert_eq!(drain(&mut rx), vec![(FrameKind::Video, 233, false)]);
    }

    #[test]
    fn configs_discarded_while_resyncing_are_resent_before_keyframe() {
        let mut relay = PathRelay::new(8, 100, 1 << 20);
        relay.publish(frame(FrameKind::Video, 0, AVC_HEADER));
        let mut rx = relay.add_reader(1, Arc::default());
        assert_eq!(drain(&mut rx), vec![(FrameKind::Video, 0, true)]);
        // No GOP yet: the reader waits for a keyframe; a new header arrives meanwhile.
        relay.publish(frame(FrameKind::Video, 5, AVC_INTER));
        relay.publish(frame(FrameKind::Audio, 6, AAC_HEADER));
        assert!(drain(&mut rx).is_empty());
        relay.publish(frame(FrameKind::Video, 40, AVC_KEY));
        assert_eq!(
            drain(&mut rx),
            vec![
                (FrameKind::Video, 40, true),
                (FrameKind::Audio, 40, true),
                (FrameKind::Video, 40, false)
            ]
        );
    }

    #[test]
    fn audio_only_stream_needs_no_keyframe() {
        let mut relay = PathRelay::new(8, 100, 1 << 20);
        relay.publish(frame(FrameKind::Audio, 0, AAC_HEADER));
        let mut rx = relay.add_reader(1, Arc::default());
        relay.publish(frame(FrameKind::Audio, 20, AAC_RAW));
        assert_eq!(
            drain(&mut rx),
            vec![(FrameKind::Audio, 0, true), (FrameKind::Audio, 20, false)]
        );
        assert_eq!(relay.tracks(), vec!["MPEG-4 Audio"]);
    }

    #[test]
    fn closed_readers_are_dropped() {
        let mut relay = relay_with_stream(8);
        let rx = relay.add_reader(7, Arc::default());
        drop(rx);
        relay.publish(frame(FrameKind::Video, 100, AVC_INTER));
        assert_eq!(relay.reader_ids().count(), 0);
    }
}
