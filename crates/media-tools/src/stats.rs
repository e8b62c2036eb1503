//! The one percentile every report here uses: nearest rank, so a figure is
//! always a sample that was measured, never an interpolation between two.

/// The smallest sample with at least `p` percent of the samples at or
/// below it, from an ascending slice; `None` for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn picks_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[10.0, 20.0, 30.0], 50.0), Some(20.0));
        assert_eq!(percentile(&[10.0, 20.0, 30.0], 95.0), Some(30.0));
        assert_eq!(percentile(&[5.0], 0.0), Some(5.0));
        assert_eq!(percentile(&[], 99.0), None);
    }
}
