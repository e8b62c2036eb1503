//! A cache of the latest group of pictures, handed to a reader that joins
//! mid-stream so it can start decoding at once. MediaMTX has no such
//! cache (its readers wait for the next IDR); this exists only as an
//! option ([`crate::ServerConfig::gop_cache`]), off by default.
//! Only units since the last IDR are kept (audio interleaved in arrival
//! order), bounded by a unit count and a byte cap.

use std::collections::VecDeque;

use crate::media::units::Unit;

#[derive(Debug)]
pub(crate) struct GopCache {
    units: VecDeque<Unit>,
    bytes: usize,
    max_units: usize,
    max_bytes: usize,
    /// False until the first IDR, and again after a cap was hit: the cache
    /// then holds nothing rather than a GOP missing its start.
    started: bool,
}

impl GopCache {
    pub fn new(max_units: usize, max_bytes: usize) -> Self {
        Self {
            units: VecDeque::new(),
            bytes: 0,
            max_units,
            max_bytes,
            started: false,
        }
    }

    pub fn push(&mut self, unit: &Unit) {
        if unit.is_idr() {
            self.clear();
            self.started = true;
        } else if !self.started {
            return;
        }
        if self.units.len() + 1 > self.max_units || self.bytes + unit.len() > self.max_bytes {
            // A GOP this long would flood a late joiner anyway; it will
            // start at the next IDR instead.
            self.clear();
            return;
        }
        self.bytes += unit.len();
        self.units.push_back(unit.clone());
    }

    /// Oldest first; starts with an IDR or is empty.
    pub fn units(&self) -> impl ExactSizeIterator<Item = &Unit> {
        self.units.iter()
    }

    fn clear(&mut self) {
        self.units.clear();
        self.bytes = 0;
        self.started = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(pts: i64, idr: bool, size: usize) -> Unit {
        Unit::H264 {
            pts,
            avcc: Bytes::from(vec![0u8; size]),
            idr,
            picture: true,
        }
    }

    fn audio(pts: i64) -> Unit {
        Unit::Aac {
            pts,
            clock: 48_000,
            frame: Bytes::from_static(&[1, 2]),
        }
    }

    fn pts(cache: &GopCache) -> Vec<i64> {
        cache
            .units()
            .map(|u| match u {
                Unit::H264 { pts, .. } | Unit::Aac { pts, .. } => *pts,
                Unit::Passthrough(_) => -1,
            })
            .collect()
    }

    #[test]
    fn keeps_only_the_latest_gop_with_its_audio() {
        let mut cache = GopCache::new(100, 1 << 20);
        for unit in [
            audio(0),
            video(1, true, 10),
            audio(2),
            video(3, false, 10),
            video(4, true, 10),
            audio(5),
        ] {
            cache.push(&unit);
        }
        assert_eq!(pts(&cache), [4, 5]);
        assert!(cache.units().next().unwrap().is_idr());
    }

    #[test]
    fn caps_empty_the_cache_until_the_next_idr() {
        let mut cache = GopCache::new(3, 1 << 20);
        for i in 0..4 {
            cache.push(&video(i, i == 0, 10));
        }
        assert_eq!(cache.units().len(), 0);
        cache.push(&video(5, false, 10));
        assert_eq!(cache.units().len(), 0, "never a GOP without its IDR");
        let mut small = GopCache::new(100, 25);
        small.push(&video(0, true, 10));
        small.push(&video(1, false, 10));
        small.push(&video(2, false, 10));
        assert_eq!(small.units().len(), 0);
    }
}
