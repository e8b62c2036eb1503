//! Summary statistics of latency samples.

use serde::Serialize;

/// Nearest-rank percentiles: every reported figure is a latency that was
/// actually observed, which matters with the few samples of a short run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// `None` for no samples; NaNs are ignored.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| !s.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            count: sorted.len(),
            p50: nearest_rank(&sorted, 50.0),
            p95: nearest_rank(&sorted, 95.0),
            p99: nearest_rank(&sorted, 99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Called with samples only (`of` returns `None` for none).
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    media_tools::percentile(sorted, p).expect("at least one sample")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_a_hundred_samples() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!(
            (p.count, p.p50, p.p95, p.p99, p.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
    }

    #[test]
    fn few_samples_report_observed_values() {
        let p = Percentiles::of(&[30.0, 10.0, 20.0]).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max), (20.0, 30.0, 30.0, 30.0));
        let one = Percentiles::of(&[7.0]).unwrap();
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
    }

    #[test]
    fn no_samples_no_percentiles() {
        assert_eq!(Percentiles::of(&[]), None);
        assert_eq!(Percentiles::of(&[f64::NAN]), None);
    }
}
