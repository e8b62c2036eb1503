//! Just enough MPEG-TS demuxing to lift the AAC stream out of an audio
//! segment: PAT -> PMT -> the first ADTS AAC elementary stream (stream type
//! 0x0F) -> its PES payloads, concatenated. The ADTS frames are already in
//! the PES payloads, so this copies bytes and decodes nothing.
//!
//! Hand-written rather than taken from a crate: `mpeg2ts-reader` is built
//! for long multi-program streams (demux contexts, filter-switch macros,
//! per-stream consumer traits), which is more code to wire up than these
//! ~150 lines, and `mpeg2ts` brings its own error framework; both would be
//! a dependency for one PID of one small file. What is needed is exactly
//! what the ingest's own writer (and ffmpeg's) produce: single-packet PSI
//! sections, one program, one audio stream. Anything else is refused with
//! a reason instead of being guessed at.

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0x0000;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DemuxError {
    #[error("not MPEG-TS: {0} bytes is not a whole number of 188-byte packets")]
    Length(usize),
    #[error("not MPEG-TS: no sync byte at packet {0}")]
    NoSync(usize),
    #[error("packet {packet}: {reason}")]
    Corrupt { packet: usize, reason: String },
    #[error("no PAT/PMT naming an AAC (ADTS) stream")]
    NoAacStream,
    #[error("the AAC stream carries no audio")]
    Empty,
}

struct Packet<'a> {
    pid: u16,
    unit_start: bool,
    continuity: u8,
    payload: Option<&'a [u8]>,
}

fn packet(bytes: &[u8], index: usize) -> Result<Packet<'_>, DemuxError> {
    let corrupt = |reason: &str| DemuxError::Corrupt {
        packet: index,
        reason: reason.into(),
    };
    if bytes[0] != SYNC {
        return Err(DemuxError::NoSync(index));
    }
    if bytes[1] & 0x80 != 0 {
        return Err(corrupt("transport error indicator set"));
    }
    let control = (bytes[3] >> 4) & 0x03;
    let mut start = 4;
    if control & 0x02 != 0 {
        start += 1 + usize::from(bytes[4]);
        if start > PACKET {
            return Err(corrupt("adaptation field runs past the packet"));
        }
    }
    Ok(Packet {
        pid: (u16::from(bytes[1] & 0x1F) << 8) | u16::from(bytes[2]),
        unit_start: bytes[1] & 0x40 != 0,
        continuity: bytes[3] & 0x0F,
        payload: (control & 0x01 != 0).then(|| &bytes[start..]),
    })
}

/// The section of a PSI packet (after its pointer field), cut to its
/// declared length without the CRC.
fn section(payload: &[u8], table_id: u8, index: usize) -> Result<&[u8], DemuxError> {
    let corrupt = |reason: &str| DemuxError::Corrupt {
        packet: index,
        reason: reason.into(),
    };
    let pointer = usize::from(*payload.first().ok_or_else(|| corrupt("empty PSI packet"))?);
    let section = payload
        .get(1 + pointer..)
        .ok_or_else(|| corrupt("PSI pointer field runs past the packet"))?;
    if section.len() < 3 || section[0] != table_id {
        return Err(corrupt(&format!("expected PSI table 0x{table_id:02x}")));
    }
    let length = (usize::from(section[1] & 0x0F) << 8) | usize::from(section[2]);
    if length < 9 || 3 + length > section.len() {
        return Err(corrupt(
            "PSI section spans packets or is too short; not supported",
        ));
    }
    Ok(&section[..3 + length - 4])
}

fn pmt_pid(pat: &[u8]) -> Option<u16> {
    pat[8..]
        .chunks_exact(4)
        .find(|entry| u16::from_be_bytes([entry[0], entry[1]]) != 0)
        .map(|entry| (u16::from(entry[2] & 0x1F) << 8) | u16::from(entry[3]))
}

fn aac_pid(pmt: &[u8], index: usize) -> Result<Option<u16>, DemuxError> {
    if pmt.len() < 12 {
        return Err(DemuxError::Corrupt {
            packet: index,
            reason: "PMT too short".into(),
        });
    }
    let program_info = (usize::from(pmt[10] & 0x0F) << 8) | usize::from(pmt[11]);
    let mut at = 12 + program_info;
    while at + 5 <= pmt.len() {
        let stream_type = pmt[at];
        let pid = (u16::from(pmt[at + 1] & 0x1F) << 8) | u16::from(pmt[at + 2]);
        if stream_type == STREAM_TYPE_AAC_ADTS {
            return Ok(Some(pid));
        }
        at += 5 + ((usize::from(pmt[at + 3] & 0x0F) << 8) | usize::from(pmt[at + 4]));
    }
    Ok(None)
}

/// The PES payload after its header.
fn pes_payload(payload: &[u8], index: usize) -> Result<&[u8], DemuxError> {
    let corrupt = |reason: &str| DemuxError::Corrupt {
        packet: index,
        reason: reason.into(),
    };
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return Err(corrupt("PES packet without a start code"));
    }
    let start = 9 + usize::from(payload[8]);
    payload
        .get(start..)
        .ok_or_else(|| corrupt("PES header runs past the packet"))
}

/// The ADTS frames of the segment's AAC stream, in order.
pub(crate) fn adts_from_ts(ts: &[u8]) -> Result<Vec<u8>, DemuxError> {
    if ts.is_empty() || !ts.len().is_multiple_of(PACKET) {
        return Err(DemuxError::Length(ts.len()));
    }
    let mut pmt: Option<u16> = None;
    let mut audio: Option<u16> = None;
    let mut last_continuity: Option<u8> = None;
    let mut in_pes = false;
    let mut out = Vec::with_capacity(ts.len());
    for (index, bytes) in ts.chunks_exact(PACKET).enumerate() {
        let packet = packet(bytes, index)?;
        let Some(payload) = packet.payload else { continue };
        if packet.pid == PAT_PID && packet.unit_start {
            pmt = pmt_pid(section(payload, 0x00, index)?);
        } else if Some(packet.pid) == pmt && packet.unit_start && audio.is_none() {
            audio = aac_pid(section(payload, 0x02, index)?, index)?;
        } else if audio.is_some() && Some(packet.pid) == audio {
            // A lost packet would splice two ADTS frames into garbage.
            if let Some(last) = last_continuity
                && packet.continuity != (last + 1) & 0x0F
            {
                return Err(DemuxError::Corrupt {
                    packet: index,
                    reason: format!("continuity counter jumps from {last} to {}", packet.continuity),
                });
            }
            last_continuity = Some(packet.continuity);
            if packet.unit_start {
                in_pes = true;
                out.extend_from_slice(pes_payload(payload, index)?);
            } else if in_pes {
                out.extend_from_slice(payload);
            }
        }
    }
    match audio {
        None => Err(DemuxError::NoAacStream),
        Some(_) if out.is_empty() => Err(DemuxError::Empty),
        Some(_) => Ok(out),
    }
}

/// Test material: a segment laid out as the ingest's `TsWriter` writes it
/// (PAT, PMT, one PES per frame starting with a PCR adaptation field, the
/// last packet of each frame padded with stuffing).
#[cfg(test)]
pub(crate) fn test_segment(frames: &[Vec<u8>]) -> Vec<u8> {
    const PMT_PID: u16 = 0x1000;
    const MEDIA_PID: u16 = 0x0100;
    fn psi(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00];
        p.extend_from_slice(section);
        p.resize(PACKET, 0xFF);
        p
    }
    let pat = [0x00, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0x00, 0, 0, 0, 0];
    let pmt = [
        0x02, 0xB0, 18, 0, 1, 0xC1, 0, 0, 0xE1, 0x00, 0xF0, 0x00, 0x0F, 0xE1, 0x00, 0xF0, 0x00, 0, 0, 0, 0,
    ];
    let mut out = psi(0, &pat);
    out.extend(psi(PMT_PID, &pmt));
    let mut cc = 0u8;
    for frame in frames {
        let mut pes = vec![0, 0, 1, 0xC0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1];
        pes.extend_from_slice(frame);
        let mut offset = 0;
        while offset < pes.len() {
            let first = offset == 0;
            let mut header = vec![
                0x47,
                if first { 0x40 } else { 0 } | (MEDIA_PID >> 8) as u8,
                MEDIA_PID as u8,
                0,
            ];
            let mut field: Vec<u8> = if first {
                vec![0x10, 0, 0, 0, 0, 0, 0]
            } else {
                vec![]
            };
            let room = |field: &Vec<u8>, has: bool| 184 - if has { 1 + field.len() } else { 0 };
            let mut has_field = first;
            let take = (pes.len() - offset).min(room(&field, has_field));
            if take < room(&field, has_field) {
                let stuffing = room(&field, has_field) - take;
                if has_field {
                    field.extend(std::iter::repeat_n(0xFF, stuffing));
                } else if stuffing == 1 {
                    has_field = true;
                } else {
                    has_field = true;
                    field.push(0x00);
                    field.extend(std::iter::repeat_n(0xFF, stuffing - 2));
                }
            }
            header[3] = if has_field { 0x30 } else { 0x10 } | cc;
            cc = (cc + 1) & 0x0F;
            if has_field {
                header.push(field.len() as u8);
                header.extend_from_slice(&field);
            }
            header.extend_from_slice(&pes[offset..offset + take]);
            assert_eq!(header.len(), PACKET);
            out.extend(header);
            offset += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::adts;

    fn frames() -> Vec<Vec<u8>> {
        // Sizes that end PES packets at every kind of boundary: one byte
        // short of a packet, exactly a packet, spanning several.
        [1usize, 150, 169, 170, 171, 176, 177, 178, 400, 800]
            .iter()
            .enumerate()
            .map(|(i, &n)| adts::test_frame(n, i as u8))
            .collect()
    }

    #[test]
    fn lifts_the_adts_frames_byte_for_byte() {
        let frames = frames();
        let ts = test_segment(&frames);
        let adts_bytes = adts_from_ts(&ts).unwrap();
        assert_eq!(adts_bytes, frames.concat());
        assert_eq!(adts::scan(&adts_bytes).unwrap().frames, frames.len());
    }

    #[test]
    fn refuses_what_is_not_a_single_aac_stream() {
        assert_eq!(adts_from_ts(&[0x47; 100]), Err(DemuxError::Length(100)));
        assert_eq!(adts_from_ts(&[0u8; 188]), Err(DemuxError::NoSync(0)));
        let ts = test_segment(&frames());
        assert_eq!(adts_from_ts(&ts[2 * PACKET..]), Err(DemuxError::NoAacStream));
        assert_eq!(adts_from_ts(&ts[..2 * PACKET]), Err(DemuxError::Empty));
    }

    #[test]
    fn a_lost_packet_is_reported_not_spliced() {
        let ts = test_segment(&frames());
        let mut lossy = ts[..3 * PACKET].to_vec();
        lossy.extend_from_slice(&ts[4 * PACKET..]);
        let err = adts_from_ts(&lossy).unwrap_err();
        assert!(err.to_string().contains("continuity"), "{err}");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Real packet headers with random bodies, so parsing gets past the
        // sync byte and into PSI, PES and adaptation fields.
        let valid = test_segment(&frames());
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..5_000 {
            let mut ts = valid.clone();
            for _ in 0..rng.usize(1..40) {
                let at = rng.usize(..ts.len());
                if !at.is_multiple_of(PACKET) {
                    ts[at] = rng.u8(..);
                }
            }
            let _ = adts_from_ts(&ts).map(|adts_bytes| adts::scan(&adts_bytes));
        }
    }
}
