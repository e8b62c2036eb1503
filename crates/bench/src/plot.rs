//! The report's figure: availability lag percentiles (realtime pace) and
//! CPU per stream (both paces) against the number of concurrent streams,
//! one colour per contender. SVG through plotters without a font backend:
//! text is emitted as `<text>` for the viewer to render, so nothing depends
//! on system fonts.

use std::path::Path;

use anyhow::{Result, anyhow};
use media_tools::Pace;
use plotters::prelude::*;

use crate::contenders::Contender;
use crate::report::{Row, rows};
use crate::results::LevelResult;

const SIZE: (u32, u32) = (1200, 500);

fn colour(contender: Contender) -> RGBColor {
    match contender {
        Contender::Ours => RGBColor(31, 119, 180),
        Contender::Ffmpeg => RGBColor(214, 39, 40),
        Contender::Gst => RGBColor(44, 160, 44),
    }
}

/// How a point is drawn; one per percentile or pace.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Triangle,
    Cross,
}

struct Series {
    label: String,
    colour: RGBColor,
    marker: Marker,
    points: Vec<(f64, f64)>,
}

/// (streams, value) of one contender's figure at one pace, by streams.
fn points(rows: &[Row], pace: Pace, key: &str, contender: Contender) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.pace == pace && r.key == key)
        .filter_map(|r| Some((r.streams as f64, r.value(contender)?)))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

pub fn render(levels: &[LevelResult], path: &Path) -> Result<()> {
    let rows = rows(levels);
    let mut lag = Vec::new();
    let mut cpu = Vec::new();
    for contender in Contender::ALL {
        for (key, name, marker) in [
            ("lag_p50_ms", "p50", Marker::Circle),
            ("lag_p95_ms", "p95", Marker::Triangle),
            ("lag_p99_ms", "p99", Marker::Cross),
        ] {
            lag.push(Series {
                label: format!("{} {name}", contender.name()),
                colour: colour(contender),
                marker,
                points: points(&rows, Pace::Realtime, key, contender),
            });
        }
        for (pace, name, marker) in [
            (Pace::Fast, "fast", Marker::Circle),
            (Pace::Realtime, "realtime", Marker::Triangle),
        ] {
            cpu.push(Series {
                label: format!("{} {name}", contender.name()),
                colour: colour(contender),
                marker,
                points: points(&rows, pace, "cpu_s_per_stream_per_30s", contender),
            });
        }
    }
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
    let (left, right) = root.split_horizontally(SIZE.0 / 2);
    panel(
        &left,
        "Segment availability lag (realtime)",
        "lag, ms (log)",
        &lag,
    )?;
    panel(&right, "CPU per stream", "CPU-s per 30 s of media (log)", &cpu)?;
    root.present()
        .map_err(|e| anyhow!("writing {}: {e:?}", path.display()))
}

fn panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<()> {
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(_, y)| *y > 0.0)
        .collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.3;
    let y_min = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max);
    let (y_min, y_max) = if all.is_empty() {
        (0.1, 1.0)
    } else {
        (y_min / 1.5, y_max * 1.5)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(|e| anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc("concurrent streams (log)")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    for s in series.iter().filter(|s| !s.points.is_empty()) {
        let colour = s.colour;
        // Log axes cannot show zero or negative values.
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(|(_, y)| *y > 0.0).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        let style = colour.filled();
        let drawn = match s.marker {
            Marker::Circle => chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, style))),
            Marker::Triangle => chart.draw_series(points.iter().map(|p| TriangleMarker::new(*p, 5, style))),
            Marker::Cross => {
                chart.draw_series(points.iter().map(|p| Cross::new(*p, 5, colour.stroke_width(2))))
            }
        };
        drawn.map_err(|e| anyhow!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}
