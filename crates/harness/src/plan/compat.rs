//! Whether a scenario can run on its fixture at all, decided before anything
//! starts: an expectation the fixture cannot satisfy is an authoring error,
//! not a test failure.

use std::time::Duration;

use media_tools::FixtureRecipe;

use crate::plan::scenario::{ExpectedOutcome, Scenario};

const DEFAULT_SEGMENT: Duration = Duration::from_secs(6);

/// Spacing of cuts: the first keyframe at or after each target duration.
pub(crate) fn cut_spacing(target: Duration, gop: Duration) -> Duration {
    let gops = (target.as_secs_f64() / gop.as_secs_f64() - 1e-9).ceil().max(1.0);
    gop.mul_f64(gops)
}

/// What cannot go with a live publish: where the ingest joins depends on
/// the server and the moment, so only what holds wherever it joined may be
/// expected, and a live publisher is never stopped, restarted or held.
fn live_problems(scenario: &Scenario) -> Vec<String> {
    let publish = &scenario.publish;
    let mut problems = Vec::new();
    if !publish.live {
        if scenario.ingest.join_after.is_some() {
            problems.push(
                "ingest.join_after needs publish.live: a staged publish waits for the ingest".to_owned(),
            );
        }
        return problems;
    }
    for (what, set) in [
        ("publish.start_delay", publish.start_delay.is_some()),
        ("publish.restart_at", publish.restart_at.is_some()),
        ("publish.takeover_at", publish.takeover_at.is_some()),
        ("faults", !scenario.faults.is_empty()),
    ] {
        if set {
            problems.push(format!("{what} cannot be combined with publish.live"));
        }
    }
    let expect = &scenario.expect;
    if expect.video_segments.is_some() || expect.audio_segments.is_some() || expect.partial_last.is_some() {
        problems.push(
            "with publish.live, segment counts and a partial last segment depend on where the ingest joined: expect what holds wherever it joins (keyframe_aligned, av_parity, every picture after its first)".to_owned(),
        );
    }
    problems
}

/// The reasons a scenario cannot run on `fixture` (empty when it can).
pub(crate) fn check(scenario: &Scenario, fixture: Option<&FixtureRecipe>) -> Vec<String> {
    let mut problems = crate::plan::service::problems(scenario);
    if scenario.service.is_some() {
        return problems;
    }
    let expect = &scenario.expect;
    let Some(fixture) = fixture else {
        if expect.outcome == ExpectedOutcome::Completed {
            problems.push("expects a completed ingest but publishes no fixture".to_owned());
        }
        return problems;
    };
    let length = Duration::from_secs_f64(fixture.duration_s);
    for (what, at) in [
        ("stop_after", scenario.publish.stop_after),
        ("restart_at", scenario.publish.restart_at),
        ("takeover_at", scenario.publish.takeover_at),
    ] {
        if let Some(at) = at.filter(|at| *at >= length) {
            problems.push(format!(
                "publish.{what} is {at:?}, but fixture '{}' lasts only {length:?}",
                fixture.name
            ));
        }
    }
    if scenario.publish.restart_at.is_some() && scenario.publish.takeover_at.is_some() {
        problems.push("publish.restart_at and publish.takeover_at cannot both be set: a stream has one second publisher".to_owned());
    }
    problems.extend(live_problems(scenario));
    let completes = expect.outcome == ExpectedOutcome::Completed;
    if completes && !(fixture.video && fixture.audio) {
        problems.push(format!(
            "expects a completed ingest, but fixture '{}' lacks a track the ingest requires",
            fixture.name
        ));
    }
    let target = scenario.ingest.segment_duration.unwrap_or(DEFAULT_SEGMENT);
    let gop = Duration::from_secs_f64(fixture.gop_s);
    let spacing = cut_spacing(target, gop);
    let published = scenario.publish.stop_after.unwrap_or(length).min(length);
    for fault in &scenario.faults {
        if fault.at() >= length {
            problems.push(format!(
                "a fault is planned at {:?}, but fixture '{}' lasts only {length:?}",
                fault.at(),
                fixture.name
            ));
        }
    }
    let ends_publisher = scenario
        .faults
        .iter()
        .filter(|f| f.publisher_back_at().is_some())
        .count();
    if ends_publisher > 1 {
        problems
            .push("only one fault may end the publisher (a publisher cut or a server restart)".to_owned());
    }
    if ends_publisher > 0 && (scenario.publish.restart_at.is_some() || scenario.publish.takeover_at.is_some())
    {
        problems.push(
            "a fault that ends the publisher cannot be combined with publish.restart_at or publish.takeover_at: a stream has one second publisher".to_owned(),
        );
    }
    for fault in &scenario.faults {
        if let crate::plan::faults::Fault::Cut {
            side: crate::plan::faults::Side::Ingest,
            back_after: Some(_),
            ..
        } = fault
        {
            problems.push("back_after is for a publisher cut: the ingest reconnects by itself".to_owned());
        }
    }
    if let Some(sts) = &scenario.sts {
        if let Some(at) = sts.restart_at.filter(|at| *at >= length) {
            problems.push(format!(
                "sts.restart_at is {at:?}, but fixture '{}' lasts only {length:?}",
                fixture.name
            ));
        }
        if sts.down && sts.restart_at.is_some() {
            problems.push(
                "sts.down and sts.restart_at cannot both be set: a peer that is down cannot restart"
                    .to_owned(),
            );
        }
    }
    // Where a fault can lose media, or a live-joining ingest starts, how
    // many segments remain is the scenario's to state, not the fixture's.
    let loses_media = scenario
        .faults
        .iter()
        .any(crate::plan::faults::Fault::may_lose_media);
    if completes
        && !scenario.publish.live
        && scenario.publish.restart_at.is_none()
        && scenario.publish.takeover_at.is_none()
        && !loses_media
    {
        // Whole spacings, plus a last (possibly partial) segment.
        let possible = (published.as_secs_f64() / spacing.as_secs_f64() - 1e-6)
            .ceil()
            .max(1.0) as u64;
        for (what, wanted) in [("video", expect.video_segments), ("audio", expect.audio_segments)] {
            if let Some(wanted) = wanted.filter(|w| *w != possible) {
                problems.push(format!(
                    "expects {wanted} {what} segments, but publishing {published:?} of fixture '{}' cut every {spacing:?} gives {possible}",
                    fixture.name
                ));
            }
        }
    }
    if let Some(duration) = expect
        .segment_duration
        .as_ref()
        .filter(|d| spacing.abs_diff(d.target) > d.tolerance)
    {
        problems.push(format!(
            "expects {:?} segments, but fixture '{}' has a {gop:?} GOP, so a {target:?} target cuts every {spacing:?}",
            duration.target, fixture.name
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn scenario(yaml: &str) -> Scenario {
        Scenario::parse(yaml, Path::new("t.yaml")).unwrap()
    }

    #[test]
    fn spacing_rounds_up_to_whole_gops() {
        let s = |x| Duration::from_secs(x);
        assert_eq!(cut_spacing(s(6), s(2)), s(6));
        assert_eq!(cut_spacing(s(6), s(4)), s(8));
        assert_eq!(cut_spacing(s(6), s(5)), s(10));
        assert_eq!(cut_spacing(s(1), s(2)), s(2));
    }

    #[test]
    fn refuses_a_4s_gop_expectation_on_a_2s_gop_fixture() {
        let s = scenario(
            "description: d\nfixture: f\nexpect:\n  outcome: completed\n  segment_duration: {target: 8s, tolerance: 40ms}\n",
        );
        let problems = check(&s, Some(&FixtureRecipe::seed("f")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("2s GOP") && problems[0].contains("every 6s"),
            "{problems:?}"
        );
        let mut four = FixtureRecipe::seed("f");
        four.gop_s = 4.0;
        assert!(check(&s, Some(&four)).is_empty());
    }

    #[test]
    fn refuses_segment_counts_the_fixture_cannot_give() {
        let s = scenario("description: d\nfixture: f\nexpect: {outcome: completed, video_segments: 6}\n");
        let problems = check(&s, Some(&FixtureRecipe::seed("f")));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("gives 5"), "{problems:?}");
        let stopped = scenario(
            "description: d\nfixture: f\npublish: {stop_after: 20s}\nexpect: {outcome: completed, video_segments: 4}\n",
        );
        assert!(check(&stopped, Some(&FixtureRecipe::seed("f"))).is_empty());
    }

    #[test]
    fn a_live_publish_takes_no_staging_and_no_counts() {
        let live = scenario(
            "description: d\nfixture: f\npublish: {live: true}\ningest: {join_after: 5s}\nexpect: {outcome: completed, keyframe_aligned: true}\n",
        );
        assert!(check(&live, Some(&FixtureRecipe::seed("f"))).is_empty());
        let staged = scenario(
            "description: d\nfixture: f\npublish: {live: true, restart_at: 10s}\nexpect: {outcome: completed, video_segments: 5}\n",
        );
        let problems = check(&staged, Some(&FixtureRecipe::seed("f")));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("restart_at cannot be combined"),
            "{problems:?}"
        );
        assert!(problems[1].contains("where the ingest joined"), "{problems:?}");
        let joining =
            scenario("description: d\nfixture: f\ningest: {join_after: 5s}\nexpect: {outcome: completed}\n");
        let problems = check(&joining, Some(&FixtureRecipe::seed("f")));
        assert!(
            problems[0].contains("join_after needs publish.live"),
            "{problems:?}"
        );
    }

    #[test]
    fn refuses_completion_without_both_tracks_and_cuts_past_the_end() {
        let s = scenario(
            "description: d\nfixture: f\npublish: {stop_after: 40s}\nexpect: {outcome: completed}\n",
        );
        let mut video_only = FixtureRecipe::seed("f");
        video_only.audio = false;
        let problems = check(&s, Some(&video_only));
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
