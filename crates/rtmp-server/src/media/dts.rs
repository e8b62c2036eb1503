//! Decode timestamps the way MediaMTX makes them for its readers.
//!
//! MediaMTX does not pass on the publisher's DTS: it keeps only the PTS and
//! derives a DTS per reader from the picture order count (mediacommon's H.264
//! DTS extractor). A reader's first access unit is an IDR, whose DTS is its
//! PTS; while the reorder depth is being learned the DTS advances by one
//! millisecond per frame (the 10.067, 10.068, 10.069 of a B-frame stream);
//! afterwards each DTS is interpolated between the previous DTS and the
//! frame's PTS. Readers therefore see different DTS values than the
//! publisher sent, and a late reader sees different ones than an early one.
//!
//! This is our own implementation of that algorithm, checked against a
//! recording of MediaMTX 1.20.1 in the tests. Not reproduced: the recovery
//! point SEI as a start (a reader starts on an IDR, as MediaMTX's RTMP
//! reader requires anyway).

use super::h264::{self, H264Error, NALU_IDR, NALU_NON_IDR, NALU_SPS, PictureOrder, SpsInfo};

/// 90 kHz ticks: the clock of video timestamps inside MediaMTX.
pub(crate) const VIDEO_CLOCK: i64 = 90_000;
const MAX_REORDERED_FRAMES: i32 = 10;
/// One millisecond, the step while the reorder depth is learned.
const PAUSE_STEP: i64 = 90;
/// Access units after an IDR during which the POC step is detected.
const POC_STEP_DETECTION: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DtsError {
    #[error("{0}")]
    H264(#[from] H264Error),
    #[error("SPS not received yet")]
    NoSps,
    #[error("pic_order_cnt_type = 1 is not supported yet")]
    UnsupportedPictureOrder,
    #[error("random access frame not received yet")]
    NoRandomAccess,
    #[error("access unit doesn't contain an IDR or non-IDR NALU")]
    NoPicture,
    #[error("too many reordered frames ({0})")]
    TooManyReorderedFrames(i32),
    #[error("DTS is greater than PTS")]
    DtsAfterPts,
    #[error("DTS is not monotonically increasing, was {was}, now is {now}")]
    NotMonotonic { was: i64, now: i64 },
}

#[derive(Debug)]
pub(crate) struct DtsExtractor {
    sps: Option<(Vec<u8>, SpsInfo)>,
    prev_dts: Option<i64>,
    random_received: bool,
    expected_poc: u32,
    reordered_frames: i32,
    pause: i32,
    au_count: u32,
    poc_increment: u32,
    prev_poc: u32,
    prev_prev_poc: u32,
}

impl Default for DtsExtractor {
    fn default() -> Self {
        Self {
            sps: None,
            prev_dts: None,
            random_received: false,
            expected_poc: 0,
            reordered_frames: 0,
            pause: 0,
            au_count: 0,
            poc_increment: 2,
            prev_poc: 0,
            prev_prev_poc: 0,
        }
    }
}

impl DtsExtractor {
    /// The DTS (90 kHz) of an access unit given as NAL units, with its PTS.
    pub fn extract(&mut self, nalus: &[&[u8]], pts: i64) -> Result<i64, DtsError> {
        let (dts, skip_checks) = self.extract_inner(nalus, pts)?;
        if !skip_checks && dts > pts {
            return Err(DtsError::DtsAfterPts);
        }
        if let Some(was) = self.prev_dts
            && dts < was
        {
            return Err(DtsError::NotMonotonic { was, now: dts });
        }
        self.prev_dts = Some(dts);
        Ok(dts)
    }

    fn reset_reordering(&mut self) {
        self.random_received = false;
        self.expected_poc = 0;
        self.reordered_frames = 0;
        self.pause = 0;
        self.au_count = 0;
        self.poc_increment = 2;
        self.prev_poc = 0;
        self.prev_prev_poc = 0;
    }

    fn extract_inner(&mut self, nalus: &[&[u8]], pts: i64) -> Result<(i64, bool), DtsError> {
        let mut idr = None;
        let mut non_idr = None;
        for nalu in nalus {
            match h264::nalu_type(nalu) {
                NALU_SPS if self.sps.as_ref().is_none_or(|(raw, _)| raw.as_slice() != *nalu) => {
                    let info = SpsInfo::parse(nalu)?;
                    self.sps = Some((nalu.to_vec(), info));
                    self.reset_reordering();
                }
                NALU_IDR => {
                    idr = Some(*nalu);
                    break;
                }
                NALU_NON_IDR => {
                    non_idr.get_or_insert(*nalu);
                }
                _ => {}
            }
        }
        let Some((_, sps)) = &self.sps else {
            return Err(DtsError::NoSps);
        };
        let log2_max_lsb = match sps.picture_order {
            PictureOrder::DecodeOrder => return Ok((pts, false)),
            _ if !sps.frame_mbs_only => return Ok((pts, false)),
            PictureOrder::Delta => return Err(DtsError::UnsupportedPictureOrder),
            PictureOrder::Lsb { log2_max_lsb } => log2_max_lsb,
        };
        let sps = sps.clone();
        if !self.random_received && idr.is_none() {
            return Err(DtsError::NoRandomAccess);
        }
        let mask = (1u32 << log2_max_lsb) - 1;
        let mut diff = if let Some(idr) = idr {
            self.expected_poc = h264::picture_order_count(idr, &sps, true)?;
            if self.poc_increment == 2 {
                if !self.expected_poc.is_multiple_of(2) {
                    self.poc_increment = 1;
                }
                self.au_count = 1;
                self.prev_prev_poc = 0;
                self.prev_poc = self.expected_poc;
            }
            0
        } else if let Some(slice) = non_idr {
            let poc = h264::picture_order_count(slice, &sps, false)?;
            if self.au_count < POC_STEP_DETECTION && self.poc_increment == 2 {
                if !poc.is_multiple_of(2) {
                    self.poc_increment = 1;
                    self.expected_poc /= 2;
                    if self.reordered_frames != 0 {
                        let increase = self.reordered_frames;
                        self.grow_reordering(increase)?;
                    }
                } else if self.au_count >= 2
                    && poc.is_multiple_of(4)
                    && poc == self.prev_poc.wrapping_add(4)
                    && self.prev_poc == self.prev_prev_poc.wrapping_add(4)
                {
                    self.poc_increment = 4;
                    self.expected_poc = self.expected_poc.wrapping_mul(2);
                }
                self.au_count += 1;
                self.prev_prev_poc = self.prev_poc;
                self.prev_poc = poc;
            }
            self.expected_poc = self.expected_poc.wrapping_add(self.poc_increment) & mask;
            poc_diff(poc, self.expected_poc, log2_max_lsb) / self.poc_increment as i32
        } else {
            return Err(DtsError::NoPicture);
        };

        self.random_received = true;
        diff += self.reordered_frames;
        if diff > 2 * self.reordered_frames + 1 {
            let increase = diff - (2 * self.reordered_frames + 1);
            self.grow_reordering(increase)?;
            diff += increase;
        } else if diff < 0 {
            let increase = -diff;
            self.grow_reordering(increase)?;
            diff += increase;
        }
        if self.pause > 0 {
            self.pause -= 1;
            return Ok((self.prev_dts.map_or(pts, |prev| prev + PAUSE_STEP), true));
        }
        let Some(prev) = self.prev_dts else {
            return Ok((pts, true));
        };
        Ok((prev + (pts - prev) / i64::from(diff + 1), false))
    }

    fn grow_reordering(&mut self, increase: i32) -> Result<(), DtsError> {
        let total = self.reordered_frames + increase;
        if total > MAX_REORDERED_FRAMES {
            return Err(DtsError::TooManyReorderedFrames(total));
        }
        self.reordered_frames = total;
        self.pause += increase;
        Ok(())
    }
}

/// Signed distance between two POCs modulo the SPS's POC range.
fn poc_diff(a: u32, b: u32, log2_max_lsb: u32) -> i32 {
    let max = 1u32 << log2_max_lsb;
    let d = a.wrapping_sub(b) & (max - 1);
    if d > max / 2 {
        d as i32 - max as i32
    } else {
        d as i32
    }
}

/// Ticks of `clock` to nanoseconds, truncating as MediaMTX does.
pub(crate) fn ticks_to_ns(ticks: i64, clock: i64) -> i64 {
    (ticks / clock) * 1_000_000_000 + (ticks % clock) * 1_000_000_000 / clock
}

/// Whole milliseconds to ticks of `clock`, truncating as MediaMTX does.
pub(crate) fn ms_to_ticks(ms: i64, clock: i64) -> i64 {
    let ns = ms * 1_000_000;
    (ns / 1_000_000_000) * clock + (ns % 1_000_000_000) * clock / 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::tests::SPS_720P;

    /// A slice header with the given type and POC, for an SPS with
    /// log2_max_frame_num 4 and log2_max_poc_lsb 6 (an SPS written here).
    fn sps_small() -> Vec<u8> {
        // profile 66 (no chroma info), level 30, sps id 0 (ue '1'),
        // log2_max_frame_num_minus4 0 ('1'), poc type 0 ('1'),
        // log2_max_poc_lsb_minus4 2 ('011'), max_num_ref_frames 1 ('010'),
        // gaps 0, width_mbs_minus1 19 ('000010100'), height_map_minus1 14
        // ('0001111'), frame_mbs_only 1, direct_8x8 1, cropping 0, vui 0,
        // then rbsp stop bit.
        let bits = "1 1 1 011 010 0 000010100 0001111 1 1 0 0 1";
        let mut out = vec![0x67, 66, 0, 30];
        out.extend(pack(bits));
        out
    }

    fn pack(bits: &str) -> Vec<u8> {
        let bits: Vec<bool> = bits
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c == '1')
            .collect();
        bits.chunks(8)
            .map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0u8, |byte, (i, &b)| byte | (u8::from(b) << (7 - i)))
            })
            .collect()
    }

    fn ue(v: u32) -> String {
        let code = v + 1;
        let len = 32 - code.leading_zeros();
        format!(
            "{}{:0width$b}",
            "0".repeat(len as usize - 1),
            code,
            width = len as usize
        )
    }

    /// first_mb 0, slice type, pps 0, frame_num (4 bits), [idr_pic_id 0], POC (6 bits).
    fn slice(idr: bool, frame_num: u32, poc: u32) -> Vec<u8> {
        let mut bits = format!(
            "{} {} {} {:04b}",
            ue(0),
            ue(if idr { 7 } else { 5 }),
            ue(0),
            frame_num
        );
        if idr {
            bits.push_str(&ue(0));
        }
        bits.push_str(&format!("{poc:06b}1"));
        let mut out = vec![if idr { 0x65 } else { 0x41 }];
        out.extend(pack(&bits));
        out
    }

    #[test]
    fn small_sps_and_slices_parse() {
        let info = SpsInfo::parse(&sps_small()).unwrap();
        assert_eq!((info.width, info.height), (320, 240));
        assert_eq!(info.picture_order, PictureOrder::Lsb { log2_max_lsb: 6 });
        assert_eq!(
            h264::picture_order_count(&slice(true, 0, 0), &info, true).unwrap(),
            0
        );
        assert_eq!(
            h264::picture_order_count(&slice(false, 1, 42), &info, false).unwrap(),
            42
        );
        assert!(SpsInfo::parse(SPS_720P).is_ok());
    }

    /// The decode order of the recorded B-frame stream (a reader that joined
    /// MediaMTX 1.20.1 5.6 s in; `late-reader-bframes-packets.txt`), with
    /// x264's POC (twice the display index) and the PTS in whole ms.
    const RECORDED: [(u32, i64, i64); 13] = [
        (0, 6067, 6067),
        (8, 6200, 6068),
        (4, 6134, 6069),
        (2, 6100, 6100),
        (6, 6167, 6133),
        (12, 6267, 6166),
        (10, 6234, 6200),
        (14, 6300, 6233),
        (20, 6400, 6266),
        (16, 6334, 6300),
        (18, 6367, 6333),
        (22, 6434, 6367),
        (30, 6567, 6400),
    ];

    #[test]
    fn reproduces_mediamtx_dts_on_the_recorded_b_frame_stream() {
        let sps = sps_small();
        let mut extractor = DtsExtractor::default();
        for (i, (poc, pts_ms, recorded_dts_ms)) in RECORDED.into_iter().enumerate() {
            let picture = slice(i == 0, i as u32 % 16, poc);
            let nalus: Vec<&[u8]> = if i == 0 {
                vec![&sps, &picture]
            } else {
                vec![&picture]
            };
            let pts = ms_to_ticks(pts_ms, VIDEO_CLOCK);
            let dts = extractor.extract(&nalus, pts).unwrap();
            let dts_ms = ticks_to_ns(dts, VIDEO_CLOCK) / 1_000_000;
            assert_eq!(dts_ms, recorded_dts_ms, "frame {i} (POC {poc}, PTS {pts_ms} ms)");
        }
    }

    #[test]
    fn streams_without_reordering_keep_dts_equal_to_pts() {
        let sps = sps_small();
        let mut extractor = DtsExtractor::default();
        for i in 0..10u32 {
            let picture = slice(i == 0, i, 2 * i);
            let nalus: Vec<&[u8]> = if i == 0 {
                vec![&sps, &picture]
            } else {
                vec![&picture]
            };
            let pts = i64::from(i) * 3000;
            assert_eq!(extractor.extract(&nalus, pts).unwrap(), pts, "frame {i}");
        }
    }

    #[test]
    fn refuses_what_mediamtx_refuses() {
        let sps = sps_small();
        let p = slice(false, 1, 2);
        assert_eq!(DtsExtractor::default().extract(&[&p], 0), Err(DtsError::NoSps));
        let mut extractor = DtsExtractor::default();
        assert_eq!(extractor.extract(&[&sps, &p], 0), Err(DtsError::NoRandomAccess));
        let idr = slice(true, 0, 0);
        extractor.extract(&[&sps, &idr], 3000).unwrap();
        assert_eq!(
            extractor.extract(&[&[0x06, 5, 1][..]], 6000),
            Err(DtsError::NoPicture)
        );
    }

    #[test]
    fn clock_conversions_truncate() {
        assert_eq!(ms_to_ticks(23, 44_100), 1014);
        assert_eq!(ticks_to_ns(1014, 44_100) / 1_000_000, 22);
        assert_eq!(ms_to_ticks(6067, VIDEO_CLOCK), 546_030);
        assert_eq!(ticks_to_ns(546_030, VIDEO_CLOCK), 6_067_000_000);
        assert_eq!(poc_diff(2, 62, 6), 4);
        assert_eq!(poc_diff(62, 2, 6), -4);
    }
}
