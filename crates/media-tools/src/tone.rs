//! Which tone a stretch of audio carries: the fixtures speak a 440-Hz sine
//! and the echo STS, with `--tone-hz`, answers another, so a reader of the
//! dubbed output can tell, span by span, the dub from the original. Audio is
//! decoded by ffmpeg to mono 16-bit PCM; the share of a frequency is
//! measured with the Goertzel filter (one DFT bin, no FFT crate needed).

use std::path::Path;

use crate::error::{ToolError, run_tool};

/// The rate audio is decoded at for [`tone_share`].
pub const DECODE_RATE_HZ: u32 = 16_000;

/// Decodes the first audio track of `file` (any container ffmpeg reads) to
/// mono signed 16-bit samples at [`DECODE_RATE_HZ`].
pub async fn decode_mono(file: &Path) -> Result<Vec<i16>, ToolError> {
    let output = run_tool(
        "ffmpeg",
        crate::child::one_shot("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(file)
            .args([
                "-vn",
                "-ac",
                "1",
                "-ar",
                &DECODE_RATE_HZ.to_string(),
                "-f",
                "s16le",
                "-",
            ]),
        &format!("decoding the audio of {}: ", file.display()),
    )
    .await?;
    Ok(output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// The share (0 to 1) of the energy of `samples` (at `rate` Hz) that lies
/// at `hz`: near 1 for a pure tone of `hz`, near 0 for another tone or
/// silence. Measured over tenths of a second, each on its own, so tones
/// that restart (a dub per span, each from phase 0) still add up.
pub fn tone_share(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let total: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    if total == 0.0 {
        return 0.0;
    }
    let window = (rate as usize / 10).max(1);
    let at_hz: f64 = samples.chunks(window).map(|w| bin_energy(w, rate, hz)).sum();
    (at_hz / total).min(1.0)
}

/// The energy of `samples` in the DFT bin of `hz` (Goertzel), scaled so a
/// pure sine of `hz` gives its whole energy.
fn bin_energy(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0_f64, 0.0_f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A sine of amplitude A over n samples has power (A n / 2)^2 in its bin
    // and energy A^2 n / 2 in all.
    2.0 * power / n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f64, rate: u32, seconds: f64) -> Vec<i16> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|k| (8000.0 * (2.0 * std::f64::consts::PI * hz * k as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    #[test]
    fn a_tone_is_told_from_another_and_from_silence() {
        let rate = DECODE_RATE_HZ;
        let a440 = sine(440.0, rate, 1.0);
        let a1000 = sine(1000.0, rate, 1.0);
        assert!(tone_share(&a440, rate, 440.0) > 0.9);
        assert!(tone_share(&a440, rate, 1000.0) < 0.01);
        assert!(tone_share(&a1000, rate, 1000.0) > 0.9);
        assert!(tone_share(&a1000, rate, 440.0) < 0.01);
        assert_eq!(tone_share(&vec![0; 1000], rate, 440.0), 0.0);
        // A tone that restarts from phase 0 every 0.37 s is still the tone.
        let restarting: Vec<i16> = (0..5).flat_map(|_| sine(1000.0, rate, 0.37)).collect();
        assert!(tone_share(&restarting, rate, 1000.0) > 0.8);
        let mixed: Vec<i16> = a440.iter().zip(&a1000).map(|(a, b)| a / 2 + b / 2).collect();
        let (low, high) = (tone_share(&mixed, rate, 440.0), tone_share(&mixed, rate, 1000.0));
        assert!(
            (0.4..0.6).contains(&low) && (0.4..0.6).contains(&high),
            "{low} {high}"
        );
    }
}
