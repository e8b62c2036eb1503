//! One available path: its tracks, the fan-out of every unit to bounded
//! reader queues, and (only when asked for) a GOP cache.
//!
//! As in MediaMTX, a reader whose queue is full is never waited for: the
//! unit is discarded for that reader and counted, and the stream goes on
//! (MediaMTX does not resynchronise a slow reader on a keyframe either).
//! The publisher is therefore never slowed down by a reader and memory
//! never grows.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::gop_cache::GopCache;
use crate::media::Tag;
use crate::media::reader::join_tags;
use crate::media::tracks::Tracks;
use crate::media::units::{StreamError, Unit, make_unit};
use crate::stats::{ConnId, ConnStats};

pub(crate) struct PathRelay {
    tracks: Tracks,
    gop: Option<GopCache>,
    readers: Vec<ReaderSlot>,
    queue_capacity: usize,
    pub inbound_bytes: u64,
    pub outbound_bytes: u64,
}

struct ReaderSlot {
    conn: ConnId,
    tx: mpsc::Sender<Unit>,
    stats: Arc<ConnStats>,
}

/// What a new reader starts with.
pub(crate) struct Joined {
    pub units: mpsc::Receiver<Unit>,
    /// Metadata and sequence headers, sent before any unit.
    pub headers: Vec<Tag>,
    pub tracks: Tracks,
}

impl PathRelay {
    pub fn new(tracks: Tracks, queue_capacity: usize, gop: Option<GopCache>) -> Self {
        Self {
            tracks,
            gop,
            readers: Vec::new(),
            queue_capacity,
            inbound_bytes: 0,
            outbound_bytes: 0,
        }
    }

    pub fn tracks(&self) -> &Tracks {
        &self.tracks
    }

    pub fn reader_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.readers.iter().map(|r| r.conn)
    }

    /// Takes one message from the publisher and hands its unit to every reader.
    pub fn publish(&mut self, tag: &Tag) -> Result<(), StreamError> {
        let Some(unit) = make_unit(&mut self.tracks, tag)? else {
            return Ok(());
        };
        self.inbound_bytes += unit.len() as u64;
        if let Some(gop) = &mut self.gop {
            gop.push(&unit);
        }
        let len = unit.len() as u64;
        let mut sent = 0;
        self.readers
            .retain(|reader| match reader.tx.try_send(unit.clone()) {
                Ok(()) => {
                    sent += len;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    reader.stats.discarded.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            });
        self.outbound_bytes += sent;
        Ok(())
    }

    pub fn add_reader(&mut self, conn: ConnId, stats: Arc<ConnStats>) -> Joined {
        let cached: Vec<Unit> = self
            .gop
            .as_ref()
            .map(|g| g.units().cloned().collect())
            .unwrap_or_default();
        let (tx, units) = mpsc::channel(self.queue_capacity + cached.len());
        for unit in cached {
            self.outbound_bytes += unit.len() as u64;
            // Cannot fail: the channel is new and sized for the cache.
            let _ = tx.try_send(unit);
        }
        self.readers.push(ReaderSlot { conn, tx, stats });
        Joined {
            units,
            headers: join_tags(&self.tracks),
            tracks: self.tracks.clone(),
        }
    }

    pub fn remove_reader(&mut self, conn: ConnId) {
        self.readers.retain(|r| r.conn != conn);
    }

    /// Drops every reader's sender: each reader writes what was queued for
    /// it, then sees the end of the stream.
    pub fn close_readers(&mut self) {
        self.readers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    use crate::media::TagKind;
    use crate::media::tracks::AudioTrack;

    fn audio_relay(capacity: usize) -> PathRelay {
        let tracks = Tracks {
            video: None,
            audio: Some(AudioTrack::aac(Bytes::from_static(&[0x11, 0x90]))),
        };
        PathRelay::new(tracks, capacity, None)
    }

    fn aac(ts: u32) -> Tag {
        Tag {
            kind: TagKind::Audio,
            timestamp: ts,
            body: Bytes::from_static(&[0xaf, 1, 0x21, 0x10]),
        }
    }

    #[test]
    fn readers_get_units_from_the_moment_they_join() {
        let mut relay = audio_relay(8);
        relay.publish(&aac(0)).unwrap();
        let mut joined = relay.add_reader(1, Arc::default());
        assert_eq!(joined.headers.len(), 2, "metadata and the AAC header");
        relay.publish(&aac(21)).unwrap();
        let unit = joined.units.try_recv().unwrap();
        assert!(matches!(unit, Unit::Aac { pts: 1008, .. }));
        assert!(joined.units.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_discards_and_counts_without_resync() {
        let mut relay = audio_relay(4);
        let stats = Arc::new(ConnStats::default());
        let mut joined = relay.add_reader(1, stats.clone());
        for ts in 0..10 {
            relay.publish(&aac(ts * 21)).unwrap();
        }
        assert_eq!(stats.discarded.load(Ordering::Relaxed), 6);
        let mut got = 0;
        while joined.units.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, 4);
        relay.publish(&aac(300)).unwrap();
        assert!(
            joined.units.try_recv().is_ok(),
            "the next unit goes through at once"
        );
    }

    #[test]
    fn with_a_gop_cache_a_reader_starts_at_the_cached_idr() {
        use crate::media::h264;
        use crate::media::tracks::VideoTrack;
        let tracks = Tracks {
            video: Some(VideoTrack::new(
                Bytes::from_static(&[0x67, 1]),
                Bytes::from_static(&[0x68, 2]),
            )),
            audio: None,
        };
        let mut relay = PathRelay::new(tracks, 8, Some(GopCache::new(100, 1 << 20)));
        let frame = |ts: u32, key: bool| {
            let mut body = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
            body.extend_from_slice(&h264::join_avcc([&[if key { 0x65 } else { 0x41 }, 0][..]]));
            Tag {
                kind: TagKind::Video,
                timestamp: ts,
                body: Bytes::from(body),
            }
        };
        for (ts, key) in [(0, false), (33, true), (66, false), (100, false)] {
            relay.publish(&frame(ts, key)).unwrap();
        }
        let mut joined = relay.add_reader(1, Arc::default());
        let first = joined.units.try_recv().unwrap();
        assert!(first.is_idr(), "the cache starts at the IDR");
        assert_eq!(std::iter::from_fn(|| joined.units.try_recv().ok()).count(), 2);
    }

    #[test]
    fn readers_that_left_are_dropped() {
        let mut relay = audio_relay(4);
        drop(relay.add_reader(7, Arc::default()));
        relay.publish(&aac(0)).unwrap();
        assert_eq!(relay.reader_ids().count(), 0);
    }
}
