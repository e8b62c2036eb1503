//! Whether a process's resident set stays flat over a long run: RSS sampled
//! over time, judged after a warm-up. The first minute is left out because
//! GStreamer's registry, buffer pools and the first segments' allocations
//! settle there; growth after it is what a leak looks like.

use serde::Serialize;

/// One reading of a process's `VmRSS`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RssSample {
    /// Seconds since the stream was released.
    pub at_s: f64,
    pub rss_kib: u64,
}

/// What the samples say about growth after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RssGrowth {
    /// When the warm-up sample was taken (the first at or after the warm-up).
    pub warm_at_s: f64,
    pub warm_kib: u64,
    pub end_at_s: f64,
    pub end_kib: u64,
    /// Over every sample, warm-up included.
    pub max_kib: u64,
    /// End minus warm-up: a leak's net growth, KiB (negative: it shrank).
    pub growth_kib: i64,
    /// Highest sample after the warm-up minus the warm-up sample, KiB: the
    /// transient headroom, which is not a leak unless it persists.
    pub peak_above_warm_kib: i64,
    /// Least-squares slope of the samples from the warm-up on, KiB per
    /// minute: small against noise when flat, steady when leaking.
    pub trend_kib_per_min: f64,
}

impl RssGrowth {
    /// `None` if no sample lies at or after `warmup_s`.
    pub fn of(samples: &[RssSample], warmup_s: f64) -> Option<Self> {
        let start = samples.iter().position(|s| s.at_s >= warmup_s)?;
        let after = &samples[start..];
        let warm = after[0];
        let end = *after.last().expect("after holds the warm sample");
        let peak = after.iter().map(|s| s.rss_kib).max().unwrap_or(warm.rss_kib);
        Some(Self {
            warm_at_s: warm.at_s,
            warm_kib: warm.rss_kib,
            end_at_s: end.at_s,
            end_kib: end.rss_kib,
            max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            growth_kib: end.rss_kib as i64 - warm.rss_kib as i64,
            peak_above_warm_kib: peak as i64 - warm.rss_kib as i64,
            trend_kib_per_min: slope(after) * 60.0,
        })
    }

    /// Net growth in bytes.
    pub fn growth_bytes(&self) -> i64 {
        self.growth_kib * 1024
    }
}

/// KiB per second; 0 for fewer than two distinct instants.
fn slope(samples: &[RssSample]) -> f64 {
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.at_s).sum::<f64>() / n;
    let mean_r = samples.iter().map(|s| s.rss_kib as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for s in samples {
        let dt = s.at_s - mean_t;
        cov += dt * (s.rss_kib as f64 - mean_r);
        var += dt * dt;
    }
    if var > 0.0 { cov / var } else { 0.0 }
}

/// The samples as `at_s,rss_kib` lines.
pub fn csv(samples: &[RssSample]) -> String {
    let mut out = String::from("at_s,rss_kib\n");
    for s in samples {
        out.push_str(&format!("{:.1},{}\n", s.at_s, s.rss_kib));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(f64, u64)]) -> Vec<RssSample> {
        points
            .iter()
            .map(|&(at_s, rss_kib)| RssSample { at_s, rss_kib })
            .collect()
    }

    #[test]
    fn growth_is_measured_from_the_first_sample_after_the_warm_up() {
        // Start-up allocates 15 MB in the first minute; then it is flat but
        // for a transient bump.
        let samples = series(&[
            (0.0, 5_000),
            (30.0, 19_000),
            (55.0, 20_000),
            (60.0, 20_100),
            (120.0, 20_900),
            (180.0, 20_300),
        ]);
        let growth = RssGrowth::of(&samples, 60.0).unwrap();
        assert_eq!((growth.warm_at_s, growth.warm_kib), (60.0, 20_100));
        assert_eq!((growth.end_at_s, growth.end_kib), (180.0, 20_300));
        assert_eq!(growth.max_kib, 20_900);
        assert_eq!(growth.growth_kib, 200);
        assert_eq!(growth.growth_bytes(), 204_800);
        assert_eq!(growth.peak_above_warm_kib, 800);
    }

    #[test]
    fn shrinking_is_negative_growth() {
        let samples = series(&[(61.0, 30_000), (600.0, 29_000)]);
        let growth = RssGrowth::of(&samples, 60.0).unwrap();
        assert_eq!(growth.growth_kib, -1_000);
        assert_eq!(growth.peak_above_warm_kib, 0);
    }

    #[test]
    fn a_steady_leak_shows_as_its_slope() {
        // 100 KiB per minute, sampled every 5 s from minute 1 to 10.
        let samples: Vec<RssSample> = (12..=120u32)
            .map(|i| RssSample {
                at_s: f64::from(i) * 5.0,
                rss_kib: 20_000 + (u64::from(i) - 12) * 100 / 12,
            })
            .collect();
        let growth = RssGrowth::of(&samples, 60.0).unwrap();
        assert!((growth.trend_kib_per_min - 100.0).abs() < 1.0, "{growth:?}");
        assert_eq!(growth.growth_kib, 900);
    }

    #[test]
    fn no_sample_after_the_warm_up_is_no_figure() {
        assert_eq!(RssGrowth::of(&series(&[(10.0, 1), (59.9, 2)]), 60.0), None);
        let one = RssGrowth::of(&series(&[(60.0, 7)]), 60.0).unwrap();
        assert_eq!((one.growth_kib, one.trend_kib_per_min), (0, 0.0));
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_sample() {
        let text = csv(&series(&[(0.0, 1), (5.04, 2)]));
        assert_eq!(text, "at_s,rss_kib\n0.0,1\n5.0,2\n");
    }
}
