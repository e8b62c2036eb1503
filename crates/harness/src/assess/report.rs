//! Raw figures and the latency budgets' verdicts: timings vary run to run,
//! so they go to `report.json`, and a missed budget fails the run with its
//! figure, but none enters a snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::plan::scenario::LatencyBudgets;

/// One latency budget: what was allowed, what was measured (the worst
/// case over the run), and whether it was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetCheck {
    pub budget_ms: f64,
    pub measured_ms: Option<f64>,
    pub met: bool,
}

/// Raw figures: timings vary run to run, so they go here, not in snapshots.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub wall_time_s: f64,
    /// Per publish: from the stream becoming available (or the publisher's
    /// start, see `timed_from`) to the ingest reading, and to its first
    /// audio and video.
    pub attach_ms: Vec<f64>,
    pub first_buffer_ms: Vec<f64>,
    pub timed_from: Vec<&'static str>,
    pub write_latency_ms: Vec<f64>,
    pub write_latency_p50_ms: Option<f64>,
    pub write_latency_p99_ms: Option<f64>,
    pub write_latency_max_ms: Option<f64>,
    pub budgets: BTreeMap<&'static str, BudgetCheck>,
    /// What the fixture windows could deliver, per stream.
    pub deliverable_video_frames: Vec<usize>,
    pub deliverable_audio_frames: Vec<usize>,
    /// With a live publish: the stream's time of each stream's first
    /// picture (where its ingest joined).
    pub joined_at_s: Vec<f64>,
    pub publisher_failures: Vec<String>,
    /// Service scenarios: pictures each read of an output got from its
    /// first keyframe (where the reader joined depends on the moment).
    pub output_pictures: Vec<usize>,
    /// Service scenarios: each output span's delay behind its input, and
    /// how far apart the longest and shortest are.
    pub output_delay_ms: Vec<f64>,
    pub output_delay_spread_ms: Option<f64>,
    /// Service scenarios: the output spans that carried the dub and those
    /// that fell back (their dub came late, which depends on the machine).
    pub output_spans: OutputSpans,
    /// Cluster scenarios: each takeover's gap on the stream's timeline (s).
    pub takeover_gaps_s: Vec<f64>,
    /// Cluster scenarios: the faults, as played.
    pub cluster_events: Vec<crate::world::service::cluster::ClusterEvent>,
}

/// Output spans by what they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OutputSpans {
    pub dub: usize,
    pub original: usize,
    pub silence: usize,
}

fn check_budget(measured: Option<f64>, budget: Option<Duration>) -> Option<BudgetCheck> {
    let budget_ms = budget?.as_secs_f64() * 1e3;
    Some(BudgetCheck {
        budget_ms,
        measured_ms: measured,
        met: measured.is_some_and(|ms| ms <= budget_ms),
    })
}

/// Checks every budget the scenario sets against the report's worst figures.
pub(crate) fn check_budgets(
    budgets: &LatencyBudgets,
    report: &Report,
) -> BTreeMap<&'static str, BudgetCheck> {
    let worst = |figures: &[f64]| figures.iter().copied().reduce(f64::max);
    [
        ("attach", check_budget(worst(&report.attach_ms), budgets.attach)),
        (
            "first_buffer",
            check_budget(worst(&report.first_buffer_ms), budgets.first_buffer),
        ),
        (
            "segment_write_p99",
            check_budget(report.write_latency_p99_ms, budgets.segment_write_p99),
        ),
    ]
    .into_iter()
    .filter_map(|(name, check)| check.map(|c| (name, c)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_checked_on_the_worst_figure() {
        let budgets = LatencyBudgets {
            attach: Some(Duration::from_millis(500)),
            first_buffer: Some(Duration::from_secs(2)),
            segment_write_p99: Some(Duration::from_millis(300)),
            output_delay_spread: None,
        };
        let report = Report {
            attach_ms: vec![120.0, 640.0],
            first_buffer_ms: vec![300.0],
            ..Report::default()
        };
        let checks = check_budgets(&budgets, &report);
        assert!(!checks["attach"].met);
        assert_eq!(checks["attach"].measured_ms, Some(640.0));
        assert!(checks["first_buffer"].met);
        assert!(!checks["segment_write_p99"].met, "not measured is not met");
        assert!(check_budgets(&LatencyBudgets::default(), &report).is_empty());
    }
}
