//! H.264 the way MediaMTX treats it between an RTMP publisher and its
//! readers. Each access unit is split into NAL units; parameter sets and
//! access unit delimiters are taken out, and the current SPS and PPS are put
//! back in front of every IDR, so each IDR decodes on its own. The SPS also
//! gives the API's codec properties and what the DTS extractor needs.
//!
//! The SPS is parsed with `h264-reader`. The picture order count is read
//! here instead of through a full slice-header parser, because MediaMTX
//! reads it its own way (from the first 22 bytes of the slice only, without
//! a colour plane id), and the DTS derived from it must come out the same.

use bytes::{BufMut, Bytes, BytesMut};
use h264_reader::nal::sps::{FrameMbsFlags, PicOrderCntType, SeqParameterSet};
use h264_reader::rbsp::{BitRead, BitReader};

pub(crate) const NALU_NON_IDR: u8 = 1;
pub(crate) const NALU_IDR: u8 = 5;
pub(crate) const NALU_SPS: u8 = 7;
pub(crate) const NALU_PPS: u8 = 8;
pub(crate) const NALU_AUD: u8 = 9;

/// MediaMTX refuses access units with more NAL units than this.
const MAX_NALUS_PER_ACCESS_UNIT: usize = 25;
/// MediaMTX reads the picture order count from this many slice bytes.
const MAX_BYTES_TO_GET_POC: usize = 22;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum H264Error {
    #[error("invalid AVCC access unit: {0}")]
    Avcc(&'static str),
    #[error("access unit contains {0} NAL units, more than {MAX_NALUS_PER_ACCESS_UNIT}")]
    TooManyNalus(usize),
    #[error("invalid AVC decoder configuration: {0}")]
    Config(&'static str),
    #[error("invalid SPS: {0}")]
    Sps(String),
    #[error("invalid slice header: {0}")]
    Slice(String),
}

pub(crate) fn nalu_type(nalu: &[u8]) -> u8 {
    nalu.first().map_or(0, |b| b & 0x1f)
}

/// The NAL units of an AVCC access unit (each prefixed by a 4-byte length,
/// as RTMP carries them).
pub(crate) fn split_avcc(mut data: &[u8]) -> Result<Vec<&[u8]>, H264Error> {
    let mut nalus = Vec::new();
    while !data.is_empty() {
        let Some((len, rest)) = data.split_first_chunk::<4>() else {
            return Err(H264Error::Avcc("truncated length prefix"));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len == 0 || len > rest.len() {
            return Err(H264Error::Avcc("NAL unit length out of bounds"));
        }
        nalus.push(&rest[..len]);
        if nalus.len() > MAX_NALUS_PER_ACCESS_UNIT {
            return Err(H264Error::TooManyNalus(nalus.len()));
        }
        data = &rest[len..];
    }
    Ok(nalus)
}

/// Length-prefixes NAL units back into an AVCC payload.
pub(crate) fn join_avcc<'a>(nalus: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = BytesMut::new();
    for nalu in nalus {
        out.put_u32(nalu.len() as u32);
        out.put_slice(nalu);
    }
    out.freeze()
}

/// The first SPS and PPS of an AVCDecoderConfigurationRecord (the body of
/// an RTMP AVC sequence header after its 5-byte tag header).
pub(crate) fn parse_avc_config(record: &[u8]) -> Result<(Bytes, Bytes), H264Error> {
    let take = |data: &mut &[u8], n: usize| -> Result<Vec<u8>, H264Error> {
        if data.len() < n {
            return Err(H264Error::Config("truncated"));
        }
        let (head, rest) = data.split_at(n);
        *data = rest;
        Ok(head.to_vec())
    };
    let mut data = record;
    let header = take(&mut data, 6)?;
    if header[0] != 1 {
        return Err(H264Error::Config("unknown configuration version"));
    }
    let sps_count = usize::from(header[5] & 0x1f);
    let mut sps = None;
    for _ in 0..sps_count {
        let len = take(&mut data, 2)?;
        let unit = take(&mut data, usize::from(u16::from_be_bytes([len[0], len[1]])))?;
        sps.get_or_insert(unit);
    }
    let pps_count = usize::from(take(&mut data, 1)?[0]);
    let mut pps = None;
    for _ in 0..pps_count {
        let len = take(&mut data, 2)?;
        let unit = take(&mut data, usize::from(u16::from_be_bytes([len[0], len[1]])))?;
        pps.get_or_insert(unit);
    }
    match (sps, pps) {
        (Some(sps), Some(pps)) => Ok((Bytes::from(sps), Bytes::from(pps))),
        _ => Err(H264Error::Config("no SPS or no PPS")),
    }
}

/// An AVCDecoderConfigurationRecord for one SPS and one PPS, built the way
/// MediaMTX builds the one it sends readers (4-byte NAL lengths).
pub(crate) fn avc_config(sps: &[u8], pps: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(1);
    out.put_u8(sps.get(1).copied().unwrap_or(0));
    out.put_u8(sps.get(2).copied().unwrap_or(0));
    out.put_u8(sps.get(3).copied().unwrap_or(0));
    out.put_u8(0xff); // reserved bits + lengthSizeMinusOne = 3
    out.put_u8(0xe1); // reserved bits + one SPS
    out.put_u16(sps.len() as u16);
    out.put_slice(sps);
    out.put_u8(1);
    out.put_u16(pps.len() as u16);
    out.put_slice(pps);
    out.freeze()
}

/// What the SPS says that the relay, the API and the DTS extractor need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpsInfo {
    pub width: u32,
    pub height: u32,
    pub profile_idc: u8,
    pub level_idc: u8,
    pub log2_max_frame_num: u32,
    pub picture_order: PictureOrder,
    pub frame_mbs_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PictureOrder {
    /// pic_order_cnt_type 0, with log2_max_pic_order_cnt_lsb.
    Lsb { log2_max_lsb: u32 },
    /// pic_order_cnt_type 1 (MediaMTX's DTS extractor refuses it).
    Delta,
    /// pic_order_cnt_type 2: output order is decode order.
    DecodeOrder,
}

impl SpsInfo {
    pub fn parse(sps: &[u8]) -> Result<Self, H264Error> {
        if nalu_type(sps) != NALU_SPS || sps.len() < 4 {
            return Err(H264Error::Sps("not an SPS NAL unit".into()));
        }
        let rbsp = remove_emulation_prevention(&sps[1..]);
        let parsed = SeqParameterSet::from_bits(BitReader::new(&rbsp[..]))
            .map_err(|e| H264Error::Sps(format!("{e:?}")))?;
        let (width, height) = parsed
            .pixel_dimensions()
            .map_err(|e| H264Error::Sps(format!("{e:?}")))?;
        let picture_order = match parsed.pic_order_cnt {
            PicOrderCntType::TypeZero {
                log2_max_pic_order_cnt_lsb_minus4,
            } => PictureOrder::Lsb {
                log2_max_lsb: u32::from(log2_max_pic_order_cnt_lsb_minus4) + 4,
            },
            PicOrderCntType::TypeOne { .. } => PictureOrder::Delta,
            PicOrderCntType::TypeTwo => PictureOrder::DecodeOrder,
        };
        Ok(Self {
            width,
            height,
            profile_idc: sps[1],
            level_idc: sps[3],
            log2_max_frame_num: u32::from(parsed.log2_max_frame_num()),
            picture_order,
            frame_mbs_only: matches!(parsed.frame_mbs_flags, FrameMbsFlags::Frames),
        })
    }

    /// The profile as MediaMTX's API names it.
    pub fn profile_name(&self) -> String {
        match self.profile_idc {
            66 => "Baseline".into(),
            77 => "Main".into(),
            88 => "Extended".into(),
            100 => "High".into(),
            110 => "High 10".into(),
            122 => "High 4:2:2".into(),
            244 => "High 4:4:4 Predictive".into(),
            other => other.to_string(),
        }
    }

    /// The level as MediaMTX's API writes it: 30 is "3", 31 is "3.1".
    pub fn level_name(&self) -> String {
        match (self.level_idc / 10, self.level_idc % 10) {
            (major, 0) => major.to_string(),
            (major, minor) => format!("{major}.{minor}"),
        }
    }
}

/// Removes emulation prevention bytes (the 03 in 00 00 03).
pub(crate) fn remove_emulation_prevention(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// pic_order_cnt_lsb of a slice, read as MediaMTX reads it.
pub(crate) fn picture_order_count(slice: &[u8], sps: &SpsInfo, idr: bool) -> Result<u32, H264Error> {
    let PictureOrder::Lsb { log2_max_lsb } = sps.picture_order else {
        return Err(H264Error::Slice(
            "pic_order_cnt_lsb exists only with pic_order_cnt_type 0".into(),
        ));
    };
    let end = slice.len().min(1 + MAX_BYTES_TO_GET_POC);
    let bytes = remove_emulation_prevention(slice.get(1..end).unwrap_or_default());
    let mut r = BitReader::new(&bytes[..]);
    let slice_error = |e: h264_reader::rbsp::BitReaderError| H264Error::Slice(format!("{e:?}"));
    r.read_ue("first_mb_in_slice").map_err(slice_error)?;
    r.read_ue("slice_type").map_err(slice_error)?;
    r.read_ue("pic_parameter_set_id").map_err(slice_error)?;
    r.read_var::<u32>(sps.log2_max_frame_num, "frame_num")
        .map_err(slice_error)?;
    if idr {
        r.read_ue("idr_pic_id").map_err(slice_error)?;
    }
    r.read_var::<u32>(log2_max_lsb, "pic_order_cnt_lsb")
        .map_err(slice_error)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// SPS of the seed fixture: 1280x720, High profile, level 3.1 (x264).
    pub const SPS_720P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xb4, 0x02, 0x80, 0x2d, 0xd8, 0x08, 0x80, 0x00, 0x00, 0x03, 0x00, 0x80,
        0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x50,
    ];

    /// SPS of the B-frame fixture (x264, bframes=2): POC type 0.
    pub const SPS_BFRAMES: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc8, 0xf1, 0x83, 0x19, 0x60,
    ];

    #[test]
    fn splits_and_joins_avcc() {
        let au = join_avcc([&[0x09, 0xf0][..], &[0x65, 1, 2, 3][..]]);
        assert_eq!(&au[..6], &[0, 0, 0, 2, 0x09, 0xf0]);
        let nalus = split_avcc(&au).unwrap();
        assert_eq!(
            nalus.iter().map(|n| nalu_type(n)).collect::<Vec<_>>(),
            [NALU_AUD, NALU_IDR]
        );
        assert!(split_avcc(&[0, 0, 0, 9, 1]).is_err());
        assert!(split_avcc(&[0, 0]).is_err());
        let many = join_avcc(std::iter::repeat_n(&[0x41, 0][..], 26));
        assert_eq!(split_avcc(&many), Err(H264Error::TooManyNalus(26)));
    }

    #[test]
    fn reads_sps_facts_the_api_reports() {
        let info = SpsInfo::parse(SPS_720P).unwrap();
        assert_eq!((info.width, info.height), (1280, 720));
        assert_eq!(info.profile_name(), "High");
        assert_eq!(info.level_name(), "3.1");
        assert!(info.frame_mbs_only);
        // x264 without B-frames orders pictures as they are decoded.
        assert_eq!(info.picture_order, PictureOrder::DecodeOrder);
        let bframes = SpsInfo::parse(SPS_BFRAMES).unwrap();
        assert!(matches!(bframes.picture_order, PictureOrder::Lsb { .. }));
        let level_3 = SpsInfo {
            level_idc: 30,
            ..info
        };
        assert_eq!(level_3.level_name(), "3");
        assert!(SpsInfo::parse(&[0x68, 1, 2, 3]).is_err());
    }

    #[test]
    fn configuration_record_round_trips() {
        let pps = [0x68u8, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let record = avc_config(SPS_720P, &pps);
        let (sps, parsed_pps) = parse_avc_config(&record).unwrap();
        assert_eq!(&sps[..], SPS_720P);
        assert_eq!(&parsed_pps[..], &pps);
        assert_eq!(&record[1..4], &SPS_720P[1..4]);
        assert!(parse_avc_config(&record[..8]).is_err());
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            remove_emulation_prevention(&[0, 0, 3, 0, 0, 3, 1, 0, 0, 3]),
            [0, 0, 0, 0, 1, 0, 0]
        );
        assert_eq!(remove_emulation_prevention(&[0, 3, 0]), [0, 3, 0]);
    }
}
