//! The latest group of pictures of one path, so a reader that joins
//! mid-stream can start decoding at once instead of waiting for the next
//! keyframe. Only media since the last video keyframe is kept (audio
//! interleaved in arrival order), bounded by a frame count and a byte cap.

use std::collections::VecDeque;

use crate::media::{Frame, FrameKind};

#[derive(Debug)]
pub(crate) struct GopCache {
    frames: VecDeque<Frame>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// False until the first keyframe, and again after the cap was hit: the
    /// cache then holds nothing rather than a GOP missing its start.
    has_keyframe: bool,
}

impl GopCache {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
            has_keyframe: false,
        }
    }

    /// Feeds one live media frame (not a sequence header, not metadata).
    pub fn push(&mut self, frame: &Frame) {
        debug_assert!(frame.kind != FrameKind::Metadata && !frame.is_sequence_header());
        if frame.is_keyframe() {
            self.clear();
            self.has_keyframe = true;
        } else if !self.has_keyframe {
            return;
        }
        if self.frames.len() + 1 > self.max_frames || self.bytes + frame.payload.len() > self.max_bytes {
            // A GOP this long would flood a late joiner anyway; it will
            // start at the next keyframe instead.
            self.clear();
            return;
        }
        self.bytes += frame.payload.len();
        self.frames.push_back(frame.clone());
    }

    /// Frames a late joiner gets, oldest first; starts with a keyframe or is empty.
    pub fn frames(&self) -> impl ExactSizeIterator<Item = &Frame> {
        self.frames.iter()
    }

    pub fn first_timestamp(&self) -> Option<u32> {
        self.frames.front().map(|f| f.timestamp)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
        self.has_keyframe = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool, size: usize) -> Frame {
        let mut payload = vec![if key { 0x17 } else { 0x27 }, 0x01];
        payload.resize(size.max(2), 0);
        Frame {
            kind: FrameKind::Video,
            timestamp: ts,
            payload: Bytes::from(payload),
        }
    }

    fn audio(ts: u32) -> Frame {
        Frame {
            kind: FrameKind::Audio,
            timestamp: ts,
            payload: Bytes::from_static(&[0xaf, 0x01, 0x00]),
        }
    }

    fn timestamps(cache: &GopCache) -> Vec<u32> {
        cache.frames().map(|f| f.timestamp).collect()
    }

    #[test]
    fn ignores_media_before_first_keyframe() {
        let mut cache = GopCache::new(100, 1 << 20);
        cache.push(&audio(0));
        cache.push(&video(10, false, 10));
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.first_timestamp(), None);
    }

    #[test]
    fn keeps_only_latest_gop_with_interleaved_audio() {
        let mut cache = GopCache::new(100, 1 << 20);
        for f in [
            video(0, true, 10),
            audio(5),
            video(33, false, 10),
            video(66, true, 10),
            audio(70),
            video(100, false, 10),
        ] {
            cache.push(&f);
        }
        assert_eq!(timestamps(&cache), vec![66, 70, 100]);
        assert!(cache.frames().next().unwrap().is_keyframe());
    }

    #[test]
    fn frame_cap_empties_cache_until_next_keyframe() {
        let mut cache = GopCache::new(3, 1 << 20);
        for ts in 0..4 {
            cache.push(&video(ts, ts == 0, 10));
        }
        assert_eq!(cache.len(), 0);
        cache.push(&video(5, false, 10));
        assert_eq!(cache.len(), 0, "must not cache a GOP without its keyframe");
        cache.push(&video(6, true, 10));
        assert_eq!(timestamps(&cache), vec![6]);
    }

    #[test]
    fn byte_cap_empties_cache() {
        let mut cache = GopCache::new(100, 25);
        cache.push(&video(0, true, 10));
        cache.push(&video(1, false, 10));
        assert_eq!(cache.len(), 2);
        cache.push(&video(2, false, 10));
        assert_eq!(cache.len(), 0);
    }
}
