//! A minimal MPEG-TS muxer for one elementary stream per file.
//!
//! MPEG-TS is chosen because it needs no index: frames stream straight into
//! the file as they arrive, so closing a segment costs a flush and a rename,
//! and every player and ffprobe open it. Each file starts with PAT and PMT,
//! and (for video) with a keyframe carrying its SPS/PPS, so it decodes alone.

use std::io::{self, Write};

use crate::media::MediaKind;

const PACKET: usize = 188;
const PAYLOAD: usize = PACKET - 4;
const PMT_PID: u16 = 0x1000;
const MEDIA_PID: u16 = 0x0100;
const STREAM_TYPE_H264: u8 = 0x1B;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;

/// Nanoseconds added to every timestamp so B-frame decode times, which run
/// ahead of presentation, never go negative.
const TIMESTAMP_OFFSET_NS: u64 = 1_000_000_000;

pub struct TsWriter<W: Write> {
    out: W,
    kind: MediaKind,
    media_cc: u8,
    bytes_written: u64,
}

impl<W: Write> TsWriter<W> {
    pub fn new(mut out: W, kind: MediaKind) -> io::Result<Self> {
        let stream_type = match kind {
            MediaKind::Video => STREAM_TYPE_H264,
            MediaKind::Audio => STREAM_TYPE_AAC_ADTS,
        };
        out.write_all(&psi_packet(0x0000, &pat_section()))?;
        out.write_all(&psi_packet(PMT_PID, &pmt_section(stream_type)))?;
        Ok(Self {
            out,
            kind,
            media_cc: 0,
            bytes_written: 2 * PACKET as u64,
        })
    }

    /// Writes one access unit (Annex-B picture or ADTS frame). Times are ns.
    pub fn write_frame(&mut self, pts: u64, dts: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        let pts90 = to_90khz(pts);
        let dts90 = to_90khz(dts);
        let pes = pes_packet(self.kind, pts90, dts90, data);
        let mut offset = 0;
        let mut first = true;
        while offset < pes.len() {
            let mut adaptation = Vec::new();
            if first {
                // One stream per file, so it carries the clock reference too.
                adaptation.push(0x10 | if keyframe { 0x40 } else { 0 });
                adaptation.extend_from_slice(&pcr_bytes(dts90));
            }
            let header_room = |af: &Vec<u8>| if af.is_empty() { 0 } else { 1 + af.len() };
            let mut room = PAYLOAD - header_room(&adaptation);
            let remaining = pes.len() - offset;
            let needs_adaptation = !adaptation.is_empty() || remaining < room;
            if remaining < room {
                let stuffing = room - remaining;
                if adaptation.is_empty() {
                    // The length byte alone fills one byte; more needs a flags byte.
                    if stuffing > 1 {
                        adaptation.push(0x00);
                        adaptation.resize(stuffing - 1, 0xFF);
                    }
                } else {
                    adaptation.resize(adaptation.len() + stuffing, 0xFF);
                }
                room = remaining;
            }
            let mut packet = Vec::with_capacity(PACKET);
            packet.push(0x47);
            packet.push(if first { 0x40 } else { 0 } | (MEDIA_PID >> 8) as u8);
            packet.push(MEDIA_PID as u8);
            let control = if needs_adaptation { 0x30 } else { 0x10 };
            packet.push(control | self.media_cc);
            self.media_cc = (self.media_cc + 1) & 0x0F;
            if needs_adaptation {
                packet.push(adaptation.len() as u8);
                packet.extend_from_slice(&adaptation);
            }
            packet.extend_from_slice(&pes[offset..offset + room]);
            debug_assert_eq!(packet.len(), PACKET);
            self.out.write_all(&packet)?;
            self.bytes_written += PACKET as u64;
            offset += room;
            first = false;
        }
        Ok(())
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn to_90khz(ns: u64) -> u64 {
    ((ns + TIMESTAMP_OFFSET_NS) * 9 / 100_000) & ((1 << 33) - 1)
}

fn pes_packet(kind: MediaKind, pts90: u64, dts90: u64, data: &[u8]) -> Vec<u8> {
    let with_dts = kind == MediaKind::Video && dts90 != pts90;
    let header_data_len: usize = if with_dts { 10 } else { 5 };
    let mut pes = Vec::with_capacity(9 + header_data_len + data.len());
    pes.extend_from_slice(&[0x00, 0x00, 0x01]);
    pes.push(match kind {
        MediaKind::Video => 0xE0,
        MediaKind::Audio => 0xC0,
    });
    let length = 3 + header_data_len + data.len();
    // Video PES may exceed 16 bits; 0 means "unbounded", allowed for video.
    let length_field = if length <= 0xFFFF { length as u16 } else { 0 };
    pes.extend_from_slice(&length_field.to_be_bytes());
    pes.push(0x80);
    pes.push(if with_dts { 0xC0 } else { 0x80 });
    pes.push(header_data_len as u8);
    pes.extend_from_slice(&timestamp_bytes(if with_dts { 0x3 } else { 0x2 }, pts90));
    if with_dts {
        pes.extend_from_slice(&timestamp_bytes(0x1, dts90));
    }
    pes.extend_from_slice(data);
    pes
}

fn timestamp_bytes(prefix: u8, ts: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((ts >> 30) & 0x07) as u8) << 1 | 1,
        (ts >> 22) as u8,
        (((ts >> 15) & 0x7F) as u8) << 1 | 1,
        (ts >> 7) as u8,
        ((ts & 0x7F) as u8) << 1 | 1,
    ]
}

fn pcr_bytes(base: u64) -> [u8; 6] {
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) as u8) << 7 | 0x7E,
        0x00,
    ]
}

fn pat_section() -> Vec<u8> {
    let mut s = vec![0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0x00, 0x00];
    s.extend_from_slice(&[0x00, 0x01, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
    with_crc(s)
}

fn pmt_section(stream_type: u8) -> Vec<u8> {
    let mut s = vec![0x02, 0xB0, 18, 0x00, 0x01, 0xC1, 0x00, 0x00];
    s.extend_from_slice(&[0xE0 | (MEDIA_PID >> 8) as u8, MEDIA_PID as u8, 0xF0, 0x00]);
    s.extend_from_slice(&[
        stream_type,
        0xE0 | (MEDIA_PID >> 8) as u8,
        MEDIA_PID as u8,
        0xF0,
        0x00,
    ]);
    with_crc(s)
}

fn with_crc(mut section: Vec<u8>) -> Vec<u8> {
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

fn psi_packet(pid: u16, section: &[u8]) -> [u8; PACKET] {
    let mut packet = [0xFF; PACKET];
    packet[..5].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00]);
    packet[5..5 + section.len()].copy_from_slice(section);
    packet
}

fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_mpeg2_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn every_packet_is_188_bytes_with_sync() {
        let mut writer = TsWriter::new(Vec::new(), MediaKind::Video).unwrap();
        for (i, size) in [1usize, 150, 170, 182, 183, 184, 185, 5000, 70_000]
            .into_iter()
            .enumerate()
        {
            let t = i as u64 * 33_000_000;
            writer
                .write_frame(t + 66_000_000, t, i == 0, &vec![0xAB; size])
                .unwrap();
        }
        let bytes = writer.into_inner();
        assert_eq!(bytes.len() % PACKET, 0);
        assert!(bytes.chunks(PACKET).all(|p| p[0] == 0x47));
    }

    #[test]
    fn continuity_counter_wraps_per_packet() {
        let mut writer = TsWriter::new(Vec::new(), MediaKind::Audio).unwrap();
        for i in 0..20u64 {
            writer
                .write_frame(i * 21_000_000, i * 21_000_000, true, &[0x11; 300])
                .unwrap();
        }
        let bytes = writer.into_inner();
        let counters: Vec<u8> = bytes.chunks(PACKET).skip(2).map(|p| p[3] & 0x0F).collect();
        for pair in counters.windows(2) {
            assert_eq!(pair[1], (pair[0] + 1) & 0x0F);
        }
    }

    #[test]
    fn timestamps_round_trip_through_pes_encoding() {
        let ts = 0x1_2345_6789u64 & ((1 << 33) - 1);
        let b = timestamp_bytes(0x2, ts);
        let decoded = (u64::from(b[0] >> 1) & 0x07) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1);
        assert_eq!(decoded, ts);
    }
}
