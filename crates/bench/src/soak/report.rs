//! The soak's markdown report: the RSS figures, the manifest's tiling per
//! track, and the verdict with its reasons.

use crate::measure::contiguity::TrackTiling;
use crate::report::ReportContext;

use super::{MAX_GROWTH_BYTES, SoakOutcome, WARMUP_S};

fn mb(kib: u64) -> String {
    format!("{:.2} MB", kib as f64 * 1024.0 / 1e6)
}

fn signed_mb(kib: i64) -> String {
    format!("{:+.3} MB", kib as f64 * 1024.0 / 1e6)
}

pub fn markdown(soak: &SoakOutcome, ctx: &ReportContext) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# Soak: one stream, {:.0} s of media in real time\n\n",
        soak.media_s
    ));
    out.push_str(&format!("- Date (UTC): {}\n", ctx.date));
    out.push_str(&format!("- Command: `{}`\n", ctx.command));
    out.push_str(&format!("- Machine: {}\n", ctx.machine.summary()));
    out.push_str(&format!("- Tools: {}\n", ctx.machine.tools()));
    out.push_str(&format!(
        "- Ours: `bench drive` (the ingest library, one worker, {}) as a child process; its \
         `VmRSS` read every 5 s from the release of the publisher ({} samples, `soak.csv`). \
         Release to the ingest's exit: {:.1} s.\n\n",
        soak.source,
        soak.samples.len(),
        soak.wall_s
    ));

    out.push_str("## Memory\n\n| Figure | Value |\n|---|---:|\n");
    match &soak.growth {
        Some(g) => {
            let rows = [
                (
                    format!("RSS at {:.0} s (first sample after {WARMUP_S:.0} s)", g.warm_at_s),
                    mb(g.warm_kib),
                ),
                (format!("RSS at the end ({:.0} s)", g.end_at_s), mb(g.end_kib)),
                ("RSS max (all samples)".to_owned(), mb(g.max_kib)),
                (
                    "Growth after the first minute (end - 1 min)".to_owned(),
                    signed_mb(g.growth_kib),
                ),
                (
                    "Highest sample above the 1-min one".to_owned(),
                    signed_mb(g.peak_above_warm_kib),
                ),
                (
                    "Trend after the first minute (least squares)".to_owned(),
                    format!("{:+.1} KiB/min", g.trend_kib_per_min),
                ),
                ("Peak RSS (VmHWM)".to_owned(), mb(soak.peak_rss_kib)),
            ];
            for (label, value) in rows {
                out.push_str(&format!("| {label} | {value} |\n"));
            }
        }
        None => out.push_str(&format!("| RSS after {WARMUP_S:.0} s | no sample |\n")),
    }
    out.push_str(&format!(
        "| CPU | {:.1} CPU-s ({:.2} % of a core) |\n",
        soak.cpu_s,
        soak.cpu_s / soak.media_s * 100.0
    ));

    out.push_str(
        "\n## Segments (manifest)\n\n| Track | Segments | Indices | Media covered | Frames (expected) \
         | Worst join | Connections | Contiguous |\n|---|---:|---|---:|---:|---:|---:|---|\n",
    );
    let frames = soak.frames();
    for track in &soak.tracks {
        let expected = match track.kind {
            ingest::MediaKind::Video => soak.expected.video,
            ingest::MediaKind::Audio => soak.expected.audio,
        };
        out.push_str(&track_row(track, expected));
    }
    out.push_str(&format!(
        "\nFrames lost: video {}, audio {}.\n",
        soak.expected.video as i64 - frames.video as i64,
        soak.expected.audio as i64 - frames.audio as i64
    ));

    let failures = soak.failures();
    out.push_str(&format!(
        "\n## Verdict\n\n**{}**: growth after the first minute under {:.0} MB, every track's \
         segments consecutive and each starting where the previous ended within one frame, \
         every frame of the feed in them, the ingest ending cleanly with the stream.\n",
        if failures.is_empty() { "PASS" } else { "FAIL" },
        MAX_GROWTH_BYTES as f64 / 1e6
    ));
    for failure in failures {
        out.push_str(&format!("\n- {failure}"));
    }
    out.push('\n');
    out
}

fn track_row(track: &TrackTiling, expected: u64) -> String {
    let indices = match (track.first_index, track.last_index) {
        (Some(first), Some(last)) => format!("{first}-{last}"),
        _ => "-".to_owned(),
    };
    let contiguous = if track.is_contiguous() {
        "yes".to_owned()
    } else {
        let n = track.breaks.len();
        format!("no ({n} break{})", if n == 1 { "" } else { "s" })
    };
    format!(
        "| {} | {} | {} | {:.2} s | {} ({}) | {:.2} ms | {} | {} |\n",
        track.kind,
        track.segments,
        indices,
        track.covered_s,
        track.frames,
        expected,
        track.worst_join_ms,
        track.connections,
        contiguous
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Machine;
    use crate::measure::contiguity::Break;

    fn render(soak: &SoakOutcome) -> String {
        let machine = Machine::fixed("CPU", 2, 24.0);
        let ctx = ReportContext {
            machine: &machine,
            date: "2026-12-01 12:00",
            command: "cargo xtask bench --soak 10m",
        };
        markdown(soak, &ctx)
    }

    #[test]
    fn a_passing_soak_shows_its_figures() {
        let text = render(&super::super::tests::outcome(20_100));
        assert!(
            text.contains("| RSS at 60 s (first sample after 60 s) | 20.48 MB |"),
            "{text}"
        );
        assert!(
            text.contains("| Growth after the first minute (end - 1 min) | +0.102 MB |"),
            "{text}"
        );
        assert!(
            text.contains("| video | 100 | 0-99 | 600.00 s | 100 (0) | 0.00 ms | 1 | yes |"),
            "{text}"
        );
        assert!(text.contains("**PASS**"), "{text}");
    }

    #[test]
    fn a_failing_soak_lists_why() {
        let mut soak = super::super::tests::outcome(25_000);
        soak.tracks[1].breaks.push(Break::Time { index: 7, ms: 80.0 });
        let text = render(&soak);
        assert!(text.contains("**FAIL**"), "{text}");
        assert!(
            text.contains("- RSS grew 5.12 MB after the first minute"),
            "{text}"
        );
        assert!(
            text.contains("| audio | 100 | 0-99 | 600.00 s | 100 (0) | 0.00 ms | 1 | no (1 break) |"),
            "{text}"
        );
    }
}
