//! Server-side SVG for the HTML report: a stream's timeline as lanes of
//! bars and marks, and latencies as dots against their budget. Written by
//! hand because the drawings are a few dozen rectangles and lines, and the
//! page must open offline, without JavaScript or a plotting library.

use std::fmt::Write as _;

use ingest::{FragmentStatus, MediaKind};

use super::timeline::{Mark, Span, Timeline};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 110.0;
const ROW: f64 = 18.0;

/// Escapes text for HTML and SVG.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Drawing {
    out: String,
    scale: f64,
    rows: usize,
}

impl Drawing {
    fn new(end_s: f64) -> Self {
        Self {
            out: String::new(),
            scale: (WIDTH - LEFT - 10.0) / end_s.max(1.0),
            rows: 0,
        }
    }

    fn x(&self, s: f64) -> f64 {
        LEFT + s * self.scale
    }

    /// Starts a lane; returns its top.
    fn lane(&mut self, label: &str) -> f64 {
        let y = 20.0 + self.rows as f64 * ROW;
        self.rows += 1;
        let _ = write!(
            self.out,
            r#"<text x="4" y="{:.1}" class="lane">{}</text>"#,
            y + 12.0,
            escape(label)
        );
        y
    }

    fn bar(&mut self, y: f64, span: Span, class: &str, title: &str, label: Option<&str>) {
        let (x, w) = (
            self.x(span.from_s),
            ((span.to_s - span.from_s) * self.scale).max(1.0),
        );
        let _ = write!(
            self.out,
            r#"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" class="{class}"><title>{}</title></rect>"#,
            y + 2.0,
            ROW - 4.0,
            escape(title)
        );
        if let Some(label) = label.filter(|_| w > 14.0) {
            let _ = write!(
                self.out,
                r#"<text x="{:.1}" y="{:.1}" class="label">{}</text>"#,
                x + 3.0,
                y + 13.0,
                escape(label)
            );
        }
    }

    fn mark(&mut self, y: f64, mark: &Mark, class: &str) {
        let x = self.x(mark.at_s);
        let _ = write!(
            self.out,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" class="{class}"><title>{:.3} s: {}</title></line>"#,
            y + 1.0,
            y + ROW - 1.0,
            mark.at_s,
            escape(&mark.what)
        );
    }

    fn axis(&mut self, end_s: f64, unit: &str) -> String {
        let y = 20.0 + self.rows as f64 * ROW + 4.0;
        let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0]
            .into_iter()
            .find(|s| end_s / s <= 12.0)
            .unwrap_or(120.0);
        let mut t = 0.0;
        while t <= end_s + 1e-9 {
            let x = self.x(t);
            let _ = write!(
                self.out,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="14" y2="{y:.1}" class="grid"/><text x="{x:.1}" y="{:.1}" class="tick">{t}</text>"#,
                y + 12.0
            );
            t += step;
        }
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{:.0}" role="img"><text x="4" y="11" class="tick">{}</text>{}</svg>"#,
            y + 18.0,
            escape(unit),
            self.out
        )
    }
}

/// The stream's segments, gaps, join and faults on its own timeline.
pub(crate) fn media(timeline: &Timeline) -> String {
    let end = timeline.media_end_s();
    let mut d = Drawing::new(end);
    for kind in MediaKind::ALL {
        let y = d.lane(&format!("{kind} segments"));
        for s in timeline.segments.iter().filter(|s| s.kind == kind) {
            let span = Span {
                from_s: s.start_s,
                to_s: s.start_s + s.duration_s,
            };
            let class = match (s.partial, s.keyframe || kind == MediaKind::Audio) {
                (_, false) => "seg bad",
                (true, true) => "seg partial",
                (false, true) => "seg",
            };
            let title = format!(
                "{kind} {}: {:.3}-{:.3} s{}{}",
                s.index,
                span.from_s,
                span.to_s,
                if s.partial { ", partial" } else { "" },
                if kind == MediaKind::Video && !s.keyframe {
                    ", does not start with a keyframe"
                } else {
                    ""
                }
            );
            d.bar(y, span, class, &title, Some(&s.index.to_string()));
        }
    }
    let y = d.lane("gaps, join");
    if let Some(span) = timeline.not_received {
        d.bar(
            y,
            span,
            "notreceived",
            "not received: before the first picture",
            None,
        );
    }
    for gap in &timeline.gaps {
        let title = format!("gap {:.3}-{:.3} s", gap.from_s, gap.to_s);
        d.bar(y, *gap, "gap", &title, None);
    }
    let y = d.lane("faults");
    for fault in &timeline.faults {
        d.mark(y, fault, "fault");
    }
    d.axis(end, "stream time (s)")
}

/// Connections, reconnects, segment writes and STS fragments on the wall
/// clock.
pub(crate) fn wall(timeline: &Timeline) -> String {
    let end = timeline.wall_end_s();
    let mut d = Drawing::new(end);
    let y = d.lane("connected");
    for (k, span) in timeline.connections.iter().enumerate() {
        let title = format!("connection {}: {:.3}-{:.3} s", k + 1, span.from_s, span.to_s);
        d.bar(y, *span, "conn", &title, None);
    }
    let y = d.lane("reconnects");
    for mark in &timeline.reconnects {
        d.mark(y, mark, "reconnect");
    }
    let y = d.lane("segments written");
    for mark in &timeline.writes {
        d.mark(y, mark, "write");
    }
    if !timeline.fragments.is_empty() {
        let y = d.lane("STS fragments");
        for f in &timeline.fragments {
            let class = match f.status {
                FragmentStatus::Processed => "frag ok",
                FragmentStatus::Failed | FragmentStatus::NotSent => "frag bad",
                FragmentStatus::Sent | FragmentStatus::Acked => "frag open",
            };
            let span = Span {
                from_s: f.sent_s,
                to_s: f.settled_s.unwrap_or(end),
            };
            let title = format!("fragment {}: {:?}", f.index, f.status);
            d.bar(y, span, class, &title, Some(&f.index.to_string()));
        }
    }
    d.axis(end, "wall clock (s since the stream started)")
}

/// Latencies (ms) as dots, one per measurement, with the budget as a line.
pub(crate) fn latencies(values: &[f64], budget_ms: Option<f64>) -> String {
    let top = values.iter().copied().chain(budget_ms).fold(1.0, f64::max) * 1.1;
    let (w, h) = (WIDTH, 120.0);
    let y = |ms: f64| h - 14.0 - ms / top * (h - 24.0);
    let step = (w - LEFT) / values.len().max(1) as f64;
    let mut out = String::new();
    for (i, ms) in values.iter().enumerate() {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" class="dot"><title>{ms:.1} ms</title></circle>"#,
            LEFT + step * (i as f64 + 0.5),
            y(*ms)
        );
    }
    if let Some(budget) = budget_ms {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" x2="{w}" y1="{0:.1}" y2="{0:.1}" class="budget"/><text x="4" y="{0:.1}" class="tick">budget {budget:.0} ms</text>"#,
            y(budget)
        );
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img"><text x="4" y="11" class="tick">segment write latency (ms), max {:.1}</text>{out}</svg>"#,
        values.iter().copied().fold(0.0, f64::max)
    )
}
