//! Figures, ratios and targets from the level results, rendered as a
//! markdown report and a CSV (one row per figure, contenders side by side).

use media_tools::Pace;

use crate::contenders::Contender;
use crate::machine::Machine;
use crate::results::{ContenderResult, LevelResult};
use crate::run::pace_name;

/// Media length the CPU figures are normalised to, seconds (the seed fixture).
const PER_MEDIA_S: f64 = 30.0;
const BYTES_PER_MB: f64 = 1e6;

/// What a figure is computed from.
struct Ctx<'a> {
    level: &'a LevelResult,
    result: &'a ContenderResult,
    /// The same contender at one stream and the same pace, if measured.
    baseline: Option<&'a ContenderResult>,
}

struct Figure {
    key: &'static str,
    label: &'static str,
    /// Only meaningful at this pace (`None`: both).
    pace: Option<Pace>,
    value: fn(&Ctx) -> Option<f64>,
}

fn per_stream(ctx: &Ctx, total: f64) -> f64 {
    total / ctx.level.streams as f64
}

fn rss_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / BYTES_PER_MB
}

const FIGURES: &[Figure] = &[
    Figure {
        key: "cpu_s_per_stream_per_30s",
        label: "CPU-s per stream per 30 s of media",
        pace: None,
        value: |c| Some(per_stream(c, c.result.cpu_s) * PER_MEDIA_S / c.level.media_s),
    },
    Figure {
        key: "cpu_pct_per_stream",
        label: "CPU per stream, % of one core",
        pace: Some(Pace::Realtime),
        value: |c| Some(per_stream(c, c.result.cpu_s) / c.level.media_s * 100.0),
    },
    Figure {
        key: "peak_rss_mb_total",
        label: "Peak RSS, all processes (MB)",
        pace: None,
        value: |c| Some(rss_mb(c.result.peak_rss_kib)),
    },
    Figure {
        key: "peak_rss_mb_per_stream",
        label: "Peak RSS per stream (MB)",
        pace: None,
        value: |c| Some(per_stream(c, rss_mb(c.result.peak_rss_kib))),
    },
    Figure {
        key: "rss_mb_per_added_stream",
        label: "RSS per added stream vs 1 stream (MB)",
        pace: None,
        value: |c| {
            let base = c.baseline?;
            (c.level.streams > 1).then(|| {
                (rss_mb(c.result.peak_rss_kib) - rss_mb(base.peak_rss_kib)) / (c.level.streams - 1) as f64
            })
        },
    },
    Figure {
        key: "lag_p50_ms",
        label: "Availability lag p50 (ms)",
        pace: Some(Pace::Realtime),
        value: |c| c.result.lag_ms.map(|p| p.p50),
    },
    Figure {
        key: "lag_p95_ms",
        label: "Availability lag p95 (ms)",
        pace: Some(Pace::Realtime),
        value: |c| c.result.lag_ms.map(|p| p.p95),
    },
    Figure {
        key: "lag_p99_ms",
        label: "Availability lag p99 (ms)",
        pace: Some(Pace::Realtime),
        value: |c| c.result.lag_ms.map(|p| p.p99),
    },
    Figure {
        key: "lag_max_ms",
        label: "Availability lag max (ms)",
        pace: Some(Pace::Realtime),
        value: |c| c.result.lag_ms.map(|p| p.max),
    },
    Figure {
        key: "lag_samples",
        label: "Timed segments",
        pace: Some(Pace::Realtime),
        value: |c| c.result.lag_ms.map(|p| p.count as f64),
    },
    Figure {
        key: "first_segment_s_p50",
        label: "Time to first segment, p50 over streams (s)",
        pace: Some(Pace::Realtime),
        value: |c| c.result.first_segment_s.map(|p| p.p50),
    },
    Figure {
        key: "lost_frames",
        label: "Lost frames (video + audio, all streams)",
        pace: None,
        value: |c| Some((c.result.lost.video + c.result.lost.audio) as f64),
    },
    Figure {
        key: "duplicated_frames",
        label: "Duplicated frames (video + audio, all streams)",
        pace: None,
        value: |c| Some((c.result.duplicated.video + c.result.duplicated.audio) as f64),
    },
    Figure {
        key: "failed_processes",
        label: "Processes that failed",
        pace: None,
        value: |c| Some(c.result.failed_processes as f64),
    },
    Figure {
        key: "stopped_processes",
        label: "Processes still running 30 s after the stream ended (stopped)",
        pace: None,
        value: |c| Some(c.result.stopped_processes as f64),
    },
];

/// One figure at one level, every contender side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub pace: Pace,
    pub streams: usize,
    pub key: &'static str,
    pub label: &'static str,
    /// In [`Contender::ALL`] order.
    pub values: [Option<f64>; 3],
}

impl Row {
    pub fn value(&self, contender: Contender) -> Option<f64> {
        let i = Contender::ALL.iter().position(|c| *c == contender)?;
        self.values[i]
    }

    /// ours / `peer`, when both were measured and the peer's is not zero.
    pub fn ratio(&self, peer: Contender) -> Option<f64> {
        ratio(self.value(Contender::Ours)?, self.value(peer)?)
    }
}

pub fn ratio(ours: f64, peer: f64) -> Option<f64> {
    (peer != 0.0 && ours.is_finite() && peer.is_finite()).then(|| ours / peer)
}

fn baseline<'a>(
    levels: &'a [LevelResult],
    level: &LevelResult,
    contender: Contender,
) -> Option<&'a ContenderResult> {
    levels
        .iter()
        .find(|l| l.pace == level.pace && l.streams == 1)
        .and_then(|l| l.contender(contender))
}

pub fn rows(levels: &[LevelResult]) -> Vec<Row> {
    let mut rows = Vec::new();
    for level in levels {
        for figure in FIGURES.iter().filter(|f| f.pace.is_none_or(|p| p == level.pace)) {
            let values = Contender::ALL.map(|contender| {
                let result = level.contender(contender)?;
                let ctx = Ctx {
                    level,
                    result,
                    baseline: baseline(levels, level, contender),
                };
                (figure.value)(&ctx)
            });
            if values.iter().any(Option::is_some) {
                rows.push(Row {
                    pace: level.pace,
                    streams: level.streams,
                    key: figure.key,
                    label: figure.label,
                    values,
                });
            }
        }
    }
    rows
}

fn find<'a>(rows: &'a [Row], pace: Pace, streams: usize, key: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.pace == pace && r.streams == streams && r.key == key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Met,
    Missed,
    NotMeasured,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Met => "met",
            Self::Missed => "MISSED",
            Self::NotMeasured => "not measured",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    pub status: Status,
}

fn check(target: &str, measured: Vec<(String, bool)>) -> TargetCheck {
    let status = if measured.is_empty() {
        Status::NotMeasured
    } else if measured.iter().all(|(_, ok)| *ok) {
        Status::Met
    } else {
        Status::Missed
    };
    TargetCheck {
        target: target.to_owned(),
        measured: if measured.is_empty() {
            "-".to_owned()
        } else {
            measured
                .into_iter()
                .map(|(m, _)| m)
                .collect::<Vec<_>>()
                .join("; ")
        },
        status,
    }
}

/// The targets, judged on whatever levels were run.
pub fn targets(levels: &[LevelResult]) -> Vec<TargetCheck> {
    let rows = rows(levels);
    let cpu_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.pace == Pace::Fast && r.key == "cpu_s_per_stream_per_30s")
        .collect();
    let cpu_vs = |peer: Contender, limit: f64| -> Vec<(String, bool)> {
        cpu_rows
            .iter()
            .filter_map(|r| {
                let q = r.ratio(peer)?;
                Some((format!("{}: {} x", r.streams, fmt(q)), q <= limit))
            })
            .collect()
    };
    let frame_interval = levels.first().map_or(1000.0 / 30.0, |l| l.frame_interval_ms);
    let ours_at = |pace: Pace, streams: usize, key: &str| {
        find(&rows, pace, streams, key).and_then(|r| r.value(Contender::Ours))
    };
    let p99_64: Vec<_> = ours_at(Pace::Realtime, 64, "lag_p99_ms")
        .map(|v| (format!("{} ms", fmt(v)), v < 300.0))
        .into_iter()
        .collect();
    let lost_64: Vec<_> = [Pace::Fast, Pace::Realtime]
        .into_iter()
        .filter_map(|pace| {
            let v = ours_at(pace, 64, "lost_frames")?;
            Some((format!("{}: {v:.0}", pace_name(pace)), v == 0.0))
        })
        .collect();
    let rss_64: Vec<_> = [Pace::Fast, Pace::Realtime]
        .into_iter()
        .filter_map(|pace| {
            let v = ours_at(pace, 64, "rss_mb_per_added_stream")?;
            Some((format!("{}: {} MB", pace_name(pace), fmt(v)), v < 5.0))
        })
        .collect();
    let one_limit = frame_interval + 50.0;
    let p99_1: Vec<_> = ours_at(Pace::Realtime, 1, "lag_p99_ms")
        .map(|v| {
            (
                format!("{} ms (limit {} ms)", fmt(v), fmt(one_limit)),
                v <= one_limit,
            )
        })
        .into_iter()
        .collect();
    vec![
        check(
            "Per-stream CPU at most splitmuxsink's (ours/gst <= 1, fast pace, by streams)",
            cpu_vs(Contender::Gst, 1.0),
        ),
        check(
            "Per-stream CPU under half of ffmpeg's (ours/ffmpeg < 0.5, fast pace, by streams)",
            cpu_vs(Contender::Ffmpeg, 0.5 - f64::EPSILON),
        ),
        check("64 streams in one process: availability lag p99 < 300 ms", p99_64),
        check("64 streams in one process: no lost frames", lost_64),
        check("64 streams in one process: < 5 MB RSS per added stream", rss_64),
        check(
            "1 stream: availability lag p99 within 50 ms of one frame interval",
            p99_1,
        ),
    ]
}

/// Compact numbers: three significant-ish digits, no noise.
pub fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), fmt)
}

pub fn csv(levels: &[LevelResult]) -> String {
    let mut out = String::from("pace,streams,figure,ours,ffmpeg,gst,ours_over_ffmpeg,ours_over_gst\n");
    let plain = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
    for row in rows(levels) {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            pace_name(row.pace),
            row.streams,
            row.key,
            plain(row.values[0]),
            plain(row.values[1]),
            plain(row.values[2]),
            plain(row.ratio(Contender::Ffmpeg)),
            plain(row.ratio(Contender::Gst)),
        ));
    }
    out
}

pub struct ReportContext<'a> {
    pub machine: &'a Machine,
    pub date: &'a str,
    pub command: &'a str,
}

/// The same report as one self-contained page: the markdown rendered to
/// HTML with the plot inline (no script, no external file), so it opens
/// offline and from a CI artifact, as the scenario suite's report does.
pub fn html(markdown: &str, svg: &str) -> String {
    let mut body = String::new();
    pulldown_cmark::html::push_html(
        &mut body,
        pulldown_cmark::Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES),
    );
    // The plot's XML prologue has no place inside a page.
    let svg = svg.find("<svg").map_or(svg, |at| &svg[at..]);
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ingest benchmark</title>\
         <style>body{{font:14px/1.4 system-ui,sans-serif;margin:1.5em}}table{{border-collapse:collapse}}\
         td,th{{padding:.2em .6em;border-bottom:1px solid #ddd}}</style></head><body>{svg}{body}</body></html>\n"
    )
}

pub fn markdown(levels: &[LevelResult], ctx: &ReportContext) -> String {
    let mut out = String::new();
    out.push_str("# Ingest benchmark: ours vs ffmpeg segment vs GStreamer splitmuxsink\n\n");
    out.push_str(&format!("- Date (UTC): {}\n", ctx.date));
    out.push_str(&format!("- Command: `{}`\n", ctx.command));
    out.push_str(&format!("- Machine: {}\n", ctx.machine.summary()));
    out.push_str(&format!("- Tools: {}\n", ctx.machine.tools()));
    out.push_str(
        "- Ours = every stream in ONE process (`bench drive`, the ingest library, reading with \
         rtmpsrc unless the command says `--source`); ffmpeg and \
         gst = one process per stream. All read the same gated publish of the seed fixture \
         (1280x720 30 fps H.264 + AAC) from the embedded RTMP server on loopback.\n\n",
    );
    out.push_str("## Targets\n\n| Target | Measured | Status |\n|---|---|---|\n");
    for t in targets(levels) {
        out.push_str(&format!("| {} | {} | {} |\n", t.target, t.measured, t.status));
    }
    let rows = rows(levels);
    for level in levels {
        out.push_str(&format!(
            "\n## {} pace, {} stream{} ({} s of media per stream, {} s wall)\n\n",
            pace_name(level.pace),
            level.streams,
            if level.streams == 1 { "" } else { "s" },
            fmt(level.media_s),
            fmt(level.wall_s),
        ));
        out.push_str(
            "| Figure | ours | ffmpeg | gst | ours/ffmpeg | ours/gst |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for row in rows
            .iter()
            .filter(|r| r.pace == level.pace && r.streams == level.streams)
        {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                row.label,
                cell(row.values[0]),
                cell(row.values[1]),
                cell(row.values[2]),
                cell(row.ratio(Contender::Ffmpeg)),
                cell(row.ratio(Contender::Gst)),
            ));
        }
    }
    out.push_str(
        "\nAvailability lag: the moment a finished segment file appears (inotify close-write \
         or moved-to) minus the moment the publisher sent that segment's last frame; the last \
         segment of each stream (closed by the end of the stream) is not timed. CPU and memory \
         come from the kernel: CPU from each reaped process's rusage (wait4), peak RSS from \
         its VmHWM high-water mark. Frames are counted with ffprobe (packets) and compared \
         with what every reader receives: the fixture from its first keyframe (each publish \
         holds after a lead-in until every contender reads, and the server, as MediaMTX, sends \
         a reader audio at once and video from the next IDR); for our ingest less the audio \
         frame that precedes the first picture, which it drops by rule. Ratios are ours \
         divided by the peer's figure.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_holds_the_tables_and_the_plot_inline() {
        let page = html(
            "# Bench\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n",
            "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><rect/></svg>",
        );
        assert!(page.contains("<h1>Bench</h1>"), "{page}");
        assert!(page.contains("<td>2</td>"), "{page}");
        assert!(page.contains("<svg xmlns"), "{page}");
        assert!(!page.contains("<?xml"), "{page}");
        assert!(!page.contains("<script"), "{page}");
    }
    use crate::measure::frames::FrameCount;
    use crate::measure::stats::Percentiles;

    fn result(contender: Contender, cpu_s: f64, rss_kib: u64, p99: f64) -> ContenderResult {
        ContenderResult {
            contender,
            processes: 1,
            failed_processes: 0,
            stopped_processes: 0,
            cpu_s,
            peak_rss_kib: rss_kib,
            frames: FrameCount {
                video: 900,
                audio: 1408,
            },
            expected: FrameCount {
                video: 900,
                audio: 1408,
            },
            lost: FrameCount::default(),
            duplicated: FrameCount::default(),
            video_segments: 5,
            lag_ms: Percentiles::of(&[p99 / 2.0, p99]),
            first_segment_s: Percentiles::of(&[6.05]),
            untimed_segments: 0,
        }
    }

    fn level(pace: Pace, streams: usize, scale: f64) -> LevelResult {
        let n = streams as f64;
        LevelResult {
            pace,
            streams,
            media_s: 30.0,
            frame_interval_ms: 1000.0 / 30.0,
            wall_s: 31.0,
            contenders: vec![
                result(
                    Contender::Ours,
                    0.04 * n * scale,
                    20_000 + 2_000 * (streams as u64 - 1),
                    70.0,
                ),
                result(Contender::Ffmpeg, 0.15 * n, 58_000 * streams as u64, 90.0),
                result(Contender::Gst, 0.12 * n, 18_000 * streams as u64, 2_100.0),
            ],
        }
    }

    #[test]
    fn ratios_need_both_sides_and_a_nonzero_peer() {
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
        let row = Row {
            pace: Pace::Fast,
            streams: 1,
            key: "k",
            label: "l",
            values: [Some(2.0), None, Some(8.0)],
        };
        assert_eq!(row.ratio(Contender::Ffmpeg), None);
        assert_eq!(row.ratio(Contender::Gst), Some(0.25));
    }

    #[test]
    fn figures_are_normalised_per_stream_and_per_30_s() {
        let levels = [level(Pace::Fast, 1, 1.0), level(Pace::Fast, 8, 1.0)];
        let rows = rows(&levels);
        let cpu = find(&rows, Pace::Fast, 8, "cpu_s_per_stream_per_30s").unwrap();
        assert!((cpu.value(Contender::Ours).unwrap() - 0.04).abs() < 1e-9);
        let added = find(&rows, Pace::Fast, 8, "rss_mb_per_added_stream").unwrap();
        assert!((added.value(Contender::Ours).unwrap() - 2.048).abs() < 1e-9);
        assert!(find(&rows, Pace::Fast, 1, "rss_mb_per_added_stream").is_none());
        assert!(
            find(&rows, Pace::Fast, 8, "lag_p99_ms").is_none(),
            "no lag at fast pace"
        );
    }

    #[test]
    fn targets_report_met_missed_and_not_measured() {
        let levels = [
            level(Pace::Fast, 1, 1.0),
            level(Pace::Fast, 64, 1.0),
            level(Pace::Realtime, 1, 1.0),
        ];
        let checks = targets(&levels);
        let status: Vec<Status> = checks.iter().map(|c| c.status).collect();
        assert_eq!(
            status,
            [
                Status::Met,
                Status::Met,
                Status::NotMeasured,
                Status::Met,
                Status::Met,
                Status::Met
            ]
        );
        let slow = [level(Pace::Fast, 1, 2.0)];
        assert_eq!(
            targets(&slow)[1].status,
            Status::Missed,
            "0.08 is not under half of 0.15"
        );
    }

    #[test]
    fn markdown_and_csv_carry_every_level() {
        let levels = [level(Pace::Fast, 1, 1.0), level(Pace::Realtime, 1, 1.0)];
        let machine = Machine::fixed("test cpu", 2, 24.0);
        let md = markdown(
            &levels,
            &ReportContext {
                machine: &machine,
                date: "2025-01-01 00:00",
                command: "cargo xtask bench --quick",
            },
        );
        assert!(md.contains("## fast pace, 1 stream"), "{md}");
        assert!(md.contains("## realtime pace, 1 stream"), "{md}");
        assert!(
            md.contains("| CPU-s per stream per 30 s of media | 0.040 | 0.150 | 0.120 | 0.267 | 0.333 |"),
            "{md}"
        );
        assert!(
            md.contains("| Availability lag p99 (ms) | 70 | 90 | 2100 | 0.778 | 0.033 |"),
            "{md}"
        );
        let csv = csv(&levels);
        assert!(csv.starts_with("pace,streams,figure,ours,ffmpeg,gst,ours_over_ffmpeg,ours_over_gst\n"));
        assert!(
            csv.contains("\nrealtime,1,lag_p99_ms,70.000000,90.000000,2100.000000,0.777778,0.033333\n"),
            "{csv}"
        );
    }

    #[test]
    fn numbers_are_compact() {
        assert_eq!(fmt(1234.56), "1235");
        assert_eq!(fmt(45.678), "45.7");
        assert_eq!(fmt(2.345), "2.35");
        assert_eq!(fmt(0.1234), "0.123");
        assert_eq!(fmt(0.0), "0");
    }
}
