//! When a published path becomes readable, and what an early reader meets.

use std::time::Instant;

use super::material::{config, frames};
use super::probe::{Probe, ensure, payload, read_to_close, read_until, send};
use super::recordings::{recorded_line, shape};
use super::{Check, CheckFailure, Need, Verdict, check};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!("readiness", unready_until_two_seconds_of_media, &[]),
        check!("readiness", log_says_available_then_publishing, &[Need::Log]),
        check!("readiness", early_reader_is_closed_without_an_answer, &[]),
    ]
}

/// A path is readable only once the server has analysed 2 s of the
/// publisher's media (gortmplib's `analyzePeriod`): after 1 s and a pause a
/// reader is turned away; once 3 s have been sent it is accepted.
async fn unready_until_two_seconds_of_media(probe: &Probe) -> Verdict {
    let path = probe.path();
    let tags = &probe.material.plain;
    let since = Instant::now();
    let mut publisher = probe.publish(&path).await?;
    let first_second = [config(tags), frames(tags, 0, 1000)].concat();
    send(&mut publisher, &first_second).await?;
    probe.taken(&path, payload(&first_second)).await?;

    let mut early = probe.play(&path).await?;
    let read = read_to_close(&mut early).await?;
    ensure(read.closed && read.tags().next().is_none(), || {
        format!(
            "after 1 s of media a reader was not turned away: it got {:?}",
            read.messages
        )
    })?;
    if let Ok(api) = probe.api() {
        let found = api
            .path(&path)
            .await
            .map_err(|e| CheckFailure::from(e.to_string()))?;
        ensure(found.is_none(), || {
            format!("after 1 s of media the API lists {path} already: {found:?}")
        })?;
    }

    send(&mut publisher, &frames(tags, 1000, 3000)).await?;
    probe.available(&path, since).await?;
    let mut reader = probe.play(&path).await?;
    let read = read_until(&mut reader, |r| r.tags().next().is_some()).await?;
    ensure(read.statuses().contains(&"NetStream.Play.Start"), || {
        format!(
            "after 3 s of media a reader was not accepted: {:?}",
            read.messages
        )
    })
}

/// Once ready, MediaMTX says the path is available, then that the
/// connection publishes to it, in the recorded words.
async fn log_says_available_then_publishing(probe: &Probe) -> Verdict {
    let path = probe.path();
    let since = Instant::now();
    let _publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    probe
        .line(since, "the publishing line", |l| {
            l.contains(&format!("is publishing to path '{path}'"))
        })
        .await?;
    let lines: Vec<String> = probe
        .log()?
        .excerpt(since, &[&path])
        .iter()
        .map(|l| shape(l, &path))
        .collect();
    let expected = [
        recorded_line("stream is available and online", "live/test/in"),
        recorded_line("is publishing to path", "live/test/in"),
    ];
    let found: Vec<usize> = expected
        .iter()
        .map(|e| lines.iter().position(|l| l == e))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("expected the lines {expected:?}, the server logged {lines:?}"))?;
    ensure(found[0] < found[1], || {
        format!("the availability line must come before the publishing line: {lines:?}")
    })
}

/// A reader of a path nobody publishes is closed at once, without an RTMP
/// answer, and the server says why in the recorded words.
async fn early_reader_is_closed_without_an_answer(probe: &Probe) -> Verdict {
    let path = probe.path();
    let since = Instant::now();
    let mut player = probe.play(&path).await?;
    let read = read_to_close(&mut player).await?;
    ensure(read.closed && read.statuses().is_empty(), || {
        format!(
            "the server answered a reader of an unpublished path: {:?}",
            read.messages
        )
    })?;
    if probe.log().is_ok() {
        let line = probe
            .line(since, "why it closed the reader", |l| {
                l.contains(&path) && l.contains("closed:")
            })
            .await?;
        let expected = recorded_line("closed: no stream is available", "live/nothing");
        ensure(shape(&line, &path) == expected, || {
            format!("logged {line:?}, MediaMTX logs {expected:?}")
        })?;
    }
    Ok(())
}
