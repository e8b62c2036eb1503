//! What happens to a path's publisher and readers: a second publisher takes
//! over (or is refused), a silent publisher times out, a leaving one ends
//! its readers.

use std::time::{Duration, Instant};

use media_tools::RtmpPublisher;
use media_tools::flv::AUDIO;

use super::material::{config, frames, shifted};
use super::probe::{Probe, WAIT, ensure, read_into, read_to_close, read_until, send};
use super::recordings::{recorded_line, shape};
use super::{Check, Need, Verdict, check};
use crate::server::ServerSettings;

pub fn checks() -> Vec<Check> {
    vec![
        check!("publishers", a_second_publisher_takes_over, &[]),
        check!(
            "publishers",
            override_publisher_no_refuses_the_second,
            &[Need::OwnServer],
            || {
                ServerSettings {
                    refuse_second_publisher: true,
                    ..ServerSettings::default()
                }
            }
        ),
        check!(
            "publishers",
            a_silent_publisher_is_closed_after_read_timeout,
            &[Need::OwnServer],
            || {
                ServerSettings {
                    read_timeout: Some(SHORT_READ_TIMEOUT),
                    ..ServerSettings::default()
                }
            }
        ),
        check!("publishers", a_publisher_leaving_ends_its_readers, &[]),
    ]
}

/// Short enough for a quick check, long enough for the analysis.
const SHORT_READ_TIMEOUT: Duration = Duration::from_secs(3);
/// The second publisher's timeline starts here, far from the first one's.
const SECOND_TIMELINE_MS: u32 = 100_000;

/// Resolves when the server closes the publisher's connection.
async fn closed_by_server(publisher: &mut RtmpPublisher, who: &str) -> Verdict {
    tokio::time::timeout(WAIT, publisher.closed_by_server())
        .await
        .map_err(|_| format!("the server did not close {who} within {WAIT:?}"))
}

/// The connection (`ip:port` as the server names it) in a log line.
fn conn_of(line: &str) -> Option<String> {
    Some(line.split("[conn ").nth(1)?.split(']').next()?.to_owned())
}

/// The second publisher's stream: configuration, then frames on its own
/// timeline.
fn second_stream(tags: &[media_tools::flv::FlvTag], until_ms: u32) -> Vec<media_tools::flv::FlvTag> {
    [
        config(tags),
        shifted(&frames(tags, 0, until_ms), SECOND_TIMELINE_MS),
    ]
    .concat()
}

/// With `overridePublisher` (the default), a second publisher is analysed,
/// then takes the path: the first publisher and every reader are closed, and
/// a new reader gets the new publisher's timeline.
async fn a_second_publisher_takes_over(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let mut first = probe.publish_available(&path, tags, 3000).await?;
    let since = Instant::now();
    let mut reader = probe.play(&path).await?;
    probe.reading(&path, since, &mut reader).await?;
    let takeover = Instant::now();
    let mut second = probe.publish(&path).await?;
    send(&mut second, &second_stream(tags, 3000)).await?;
    closed_by_server(&mut first, "the first publisher").await?;
    let read = read_to_close(&mut reader).await?;
    ensure(read.closed, || {
        "the first publisher's reader was not closed".into()
    })?;
    if probe.log().is_ok() {
        probe
            .line(takeover, "that it closes the existing publisher", |l| {
                l.contains(&format!("[path {path}] closing existing publisher"))
            })
            .await?;
    }
    let since = Instant::now();
    let mut late = probe.play(&path).await?;
    let mut read = probe.reading(&path, since, &mut late).await?;
    let more = shifted(&frames(tags, 3000, u32::MAX), SECOND_TIMELINE_MS);
    let (sent, got) = tokio::join!(
        send(&mut second, &more),
        read_into(&mut late, &mut read, |r| !r.frames(AUDIO).is_empty())
    );
    got?;
    sent?;
    let first_audio = read.frames(AUDIO).first().map(|t| t.timestamp);
    ensure(first_audio.is_some_and(|ms| ms >= SECOND_TIMELINE_MS), || {
        format!(
            "after the takeover a reader's audio starts at {first_audio:?} ms, not on the second publisher's timeline"
        )
    })
}

/// With `overridePublisher: no` the second publisher is closed after its
/// analysis, in the recorded words, and the first one keeps the path.
async fn override_publisher_no_refuses_the_second(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let _first = probe.publish_available(&path, tags, 3000).await?;
    let since = Instant::now();
    let mut second = probe.publish(&path).await?;
    send(&mut second, &second_stream(tags, 3000)).await?;
    closed_by_server(&mut second, "the second publisher").await?;
    if probe.log().is_ok() {
        let line = probe
            .line(since, "why it closed the second publisher", |l| {
                l.contains("closed: ") && l.contains(&path)
            })
            .await?;
        let expected = recorded_line("closed: someone is already publishing", "live/test/in");
        ensure(shape(&line, &path) == expected, || {
            format!("logged {line:?}; MediaMTX logs {expected:?}")
        })?;
    }
    let mut reader = probe.play(&path).await?;
    let read = read_until(&mut reader, |r| r.tags().next().is_some()).await?;
    ensure(read.statuses().contains(&"NetStream.Play.Start"), || {
        format!(
            "the first publisher lost the path: a reader got {:?}",
            read.messages
        )
    })
}

/// A publisher that stops sending is closed after `readTimeout` (`read tcp
/// ...: i/o timeout`) and its readers with it (`terminated`).
async fn a_silent_publisher_is_closed_after_read_timeout(probe: &Probe) -> Verdict {
    let path = probe.path();
    let mut publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    let since = Instant::now();
    let mut reader = probe.play(&path).await?;
    probe.reading(&path, since, &mut reader).await?;
    closed_by_server(&mut publisher, "the silent publisher").await?;
    let read = read_to_close(&mut reader).await?;
    ensure(read.closed, || {
        "the silent publisher's reader was not closed".into()
    })?;
    if probe.log().is_ok() {
        expect_closes(probe, since, &path, "closed: read tcp", "i/o timeout").await?;
    }
    Ok(())
}

/// A publisher that leaves: `closed: EOF`, its readers `closed: terminated`,
/// and nothing said about the path itself.
async fn a_publisher_leaving_ends_its_readers(probe: &Probe) -> Verdict {
    let path = probe.path();
    let publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    let since = Instant::now();
    let mut reader = probe.play(&path).await?;
    probe.reading(&path, since, &mut reader).await?;
    publisher.finish().await.map_err(|e| e.to_string())?;
    let read = read_to_close(&mut reader).await?;
    ensure(read.closed, || {
        "the reader of a publisher that left was not closed".into()
    })?;
    if probe.log().is_ok() {
        expect_closes(probe, since, &path, "closed: EOF", "closed: EOF").await?;
        let path_lines: Vec<String> = probe
            .log()?
            .excerpt(since, &[&format!("[path {path}]")])
            .into_iter()
            .filter(|l| l.starts_with("INF"))
            .collect();
        ensure(path_lines.is_empty(), || {
            format!(
                "MediaMTX says nothing about the path at INF level when its publisher leaves; logged {path_lines:?}"
            )
        })?;
    }
    Ok(())
}

/// The publisher's closing line has the recorded shape (found by
/// `recorded`), and the reader's says `terminated`.
async fn expect_closes(probe: &Probe, since: Instant, path: &str, needle: &str, recorded: &str) -> Verdict {
    let publishing = probe
        .line(probe.started(), "the publishing line", |l| {
            l.contains(&format!("is publishing to path '{path}'"))
        })
        .await?;
    let reading = probe
        .line(since, "the reading line", |l| {
            l.contains(&format!("is reading from path '{path}'"))
        })
        .await?;
    let (publisher, reader) = (conn_of(&publishing), conn_of(&reading));
    let publisher = publisher.ok_or("no connection in the publishing line")?;
    let reader = reader.ok_or("no connection in the reading line")?;
    let publisher_line = probe
        .line(since, "why the publisher closed", |l| {
            l.contains(&format!("[conn {publisher}] closed:"))
        })
        .await?;
    let expected = recorded_line(recorded, "live/test/in");
    ensure(
        publisher_line.contains(needle) && shape(&publisher_line, path) == expected,
        || format!("logged {publisher_line:?}; MediaMTX logs {expected:?}"),
    )?;
    let reader_line = probe
        .line(since, "why the reader closed", |l| {
            l.contains(&format!("[conn {reader}] closed:"))
        })
        .await?;
    let expected = recorded_line("closed: terminated", "live/test/in");
    ensure(shape(&reader_line, path) == expected, || {
        format!("logged {reader_line:?}; MediaMTX logs {expected:?}")
    })
}
