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
    ///
    /// Packets are assembled in one stack buffer straight from the PES
    /// header and the frame's bytes: nothing is allocated per packet and the
    /// frame is never copied into an intermediate PES buffer.
    pub fn write_frame(&mut self, pts: u64, dts: u64, keyframe: bool, data: &[u8]) -> io::Result<()> {
        let pts90 = to_90khz(pts);
        let dts90 = to_90khz(dts);
        let header = pes_header(self.kind, pts90, dts90, data.len());
        let total = header.len() + data.len();
        let mut packet = [0u8; PACKET];
        let mut offset = 0;
        while offset < total {
            let first = offset == 0;
            // Adaptation field contents (after its length byte): the first
            // packet of a frame carries the clock reference, since each file
            // holds one stream, which is therefore the PCR stream too.
            let mut field_len = if first { 7 } else { 0 };
            let mut has_field = first;
            let room = PAYLOAD - if has_field { 1 + field_len } else { 0 };
            let payload = (total - offset).min(room);
            if payload < room {
                // The last packet is padded with adaptation-field stuffing:
                // the length byte alone covers one byte, more needs flags.
                let stuffing = room - payload;
                field_len += if has_field { stuffing } else { stuffing - 1 };
                has_field = true;
            }
            packet[0] = 0x47;
            packet[1] = if first { 0x40 } else { 0 } | (MEDIA_PID >> 8) as u8;
            packet[2] = MEDIA_PID as u8;
            packet[3] = if has_field { 0x30 } else { 0x10 } | self.media_cc;
            self.media_cc = (self.media_cc + 1) & 0x0F;
            let mut at = 4;
            if has_field {
                packet[at] = field_len as u8;
                at += 1;
                if field_len > 0 {
                    let flags_end = at + 1;
                    packet[at] = if first {
                        0x10 | if keyframe { 0x40 } else { 0 }
                    } else {
                        0
                    };
                    if first {
                        packet[flags_end..flags_end + 6].copy_from_slice(&pcr_bytes(dts90));
                    }
                    let filled = if first { flags_end + 6 } else { flags_end };
                    packet[filled..at + field_len].fill(0xFF);
                    at += field_len;
                }
            }
            copy_span(&header, data, offset, &mut packet[at..at + payload]);
            debug_assert_eq!(at + payload, PACKET);
            self.out.write_all(&packet)?;
            self.bytes_written += PACKET as u64;
            offset += payload;
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

/// The PES header of a frame of `data_len` bytes (at most 19 bytes).
fn pes_header(kind: MediaKind, pts90: u64, dts90: u64, data_len: usize) -> Vec<u8> {
    let with_dts = kind == MediaKind::Video && dts90 != pts90;
    let header_data_len: usize = if with_dts { 10 } else { 5 };
    let mut pes = Vec::with_capacity(9 + header_data_len);
    pes.extend_from_slice(&[0x00, 0x00, 0x01]);
    pes.push(match kind {
        MediaKind::Video => 0xE0,
        MediaKind::Audio => 0xC0,
    });
    let length = 3 + header_data_len + data_len;
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
    pes
}

/// Fills `out` with bytes `offset..` of `header` followed by `data`.
fn copy_span(header: &[u8], data: &[u8], offset: usize, out: &mut [u8]) {
    let from_header = header.len().saturating_sub(offset).min(out.len());
    out[..from_header].copy_from_slice(&header[offset.min(header.len())..][..from_header]);
    let data_start = (offset + from_header) - header.len();
    let rest = out.len() - from_header;
    out[from_header..].copy_from_slice(&data[data_start..data_start + rest]);
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

    /// Media packets' payloads, adaptation fields skipped, concatenated.
    fn media_payload(ts: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in ts
            .chunks(PACKET)
            .filter(|p| (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])) == MEDIA_PID)
        {
            let start = if p[3] & 0x20 != 0 { 5 + p[4] as usize } else { 4 };
            out.extend_from_slice(&p[start..]);
        }
        out
    }

    #[test]
    fn payloads_reassemble_into_the_pes_of_each_frame() {
        let frames: Vec<Vec<u8>> = [1usize, 164, 165, 170, 176, 177, 183, 184, 185, 368, 5000]
            .iter()
            .map(|&n| (0..n).map(|i| (i % 251) as u8).collect())
            .collect();
        for kind in MediaKind::ALL {
            let mut writer = TsWriter::new(Vec::new(), kind).unwrap();
            let mut expected = Vec::new();
            for (i, frame) in frames.iter().enumerate() {
                let t = i as u64 * 40_000_000;
                writer.write_frame(t + 80_000_000, t, i == 0, frame).unwrap();
                expected.extend(pes_header(
                    kind,
                    to_90khz(t + 80_000_000),
                    to_90khz(t),
                    frame.len(),
                ));
                expected.extend_from_slice(frame);
            }
            let ts = writer.into_inner();
            assert!(ts.chunks(PACKET).all(|p| p.len() == PACKET && p[0] == 0x47));
            assert_eq!(media_payload(&ts), expected, "{kind}");
        }
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
