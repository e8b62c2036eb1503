//! What happens to a path's publisher and readers: a second publisher takes
//! over (or is refused), a silent publisher times out, a leaving one ends
//! its readers.

use std::time::{Duration, Instant};

use media_tools::RtmpPublisher;
use media_tools::flv::AUDIO;

use super::material::{config, frames, shifted};
use super::probe::{Probe, WAIT, ensure, read_into, read_to_close, read_until, read_what_arrived, send};
use super::recordings::{recorded_line, shape};
use super::{Check, CheckFailure, Need, Verdict, check};
use crate::world::server::ServerSettings;

pub(super) fn checks() -> Vec<Check> {
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
        check!(
            "publishers",
            a_publisher_leaving_drops_what_its_readers_had_queued,
            &[Need::Log]
        ),
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
        .map_err(|_| CheckFailure::from(format!("the server did not close {who} within {WAIT:?}")))
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
    // MediaMTX accepts the publish, analyses it, then closes the connection
    // without a word; a publisher still sending meets the close as a reset
    // (a broken pipe), which is the refusal, not a failure of the check.
    match second.send_all(&second_stream(tags, 3000)).await {
        Ok(()) => {}
        Err(e) if e.is_closed_by_server() => {}
        Err(e) => return Err(format!("sending media: {e}").into()),
    }
    let said = tokio::time::timeout(WAIT, second.statuses_until_closed())
        .await
        .map_err(|_| {
            CheckFailure::from(format!(
                "the server did not close the second publisher within {WAIT:?}"
            ))
        })?;
    ensure(said.is_empty(), || {
        format!("the server said {said:?} before closing the second publisher; MediaMTX says nothing")
    })?;
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
    publisher
        .finish()
        .await
        .map_err(|e| CheckFailure::from(e.to_string()))?;
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

/// A publisher that leaves while a reader has frames queued (the reader
/// stopped reading): MediaMTX cancels the reader, which closes its socket at
/// once, so the log says `closed: terminated` right away (not a write
/// timeout after the queue was written), the queued frames never come, and
/// nothing announces the end: no `UnpublishNotify`, no stream EOF.
async fn a_publisher_leaving_drops_what_its_readers_had_queued(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let mut publisher = probe.publish_available(&path, tags, 3000).await?;
    let since = Instant::now();
    let mut reader = probe.play(&path).await?;
    let mut read = probe.reading(&path, since, &mut reader).await?;
    let reading = probe
        .line(since, "the reading line", |l| {
            l.contains(&format!("is reading from path '{path}'"))
        })
        .await?;
    let conn = conn_of(&reading).ok_or("no connection in the reading line")?;
    // The reader reads no more: five minutes of media (about 55 MB) fill
    // every socket buffer between it and the server (a Docker port
    // mapping's proxy holds 10 MB and more), and the rest waits for it in
    // the server's queue (or overflows it).
    let mut last_sent = 0;
    for round in 1..=25u32 {
        let more = super::material::shifted(&frames(tags, 0, u32::MAX), 12_000 * round);
        last_sent = more.iter().map(|t| t.timestamp).max().unwrap_or(last_sent);
        send(&mut publisher, &more).await?;
    }
    let left = Instant::now();
    publisher
        .finish()
        .await
        .map_err(|e| CheckFailure::from(e.to_string()))?;
    let closed = probe
        .line(left, "why the reader closed", |l| {
            l.contains(&format!("[conn {conn}] closed:"))
        })
        .await?;
    let expected = recorded_line("closed: terminated", "live/test/in");
    ensure(shape(&closed, &path) == expected, || {
        format!("logged {closed:?} for the stalled reader; MediaMTX closes it at once: {expected:?}")
    })?;
    // Now the reader reads what reached it before the close.
    read_what_arrived(&mut reader, &mut read).await?;
    let last_got = read.tags().map(|t| t.timestamp).max().unwrap_or(0);
    ensure(last_got < last_sent, || {
        format!(
            "the stalled reader got media up to {last_got} ms, the end of what was sent: the server wrote its queue before closing; MediaMTX drops it"
        )
    })?;
    let announced: Vec<&str> = read
        .statuses()
        .into_iter()
        .filter(|s| {
            !matches!(
                *s,
                "NetStream.Play.Reset"
                    | "NetStream.Play.Start"
                    | "NetStream.Data.Start"
                    | "NetStream.Play.PublishNotify"
            )
        })
        .collect();
    ensure(announced.is_empty() && !read.stream_eof(), || {
        format!(
            "the reader was told {announced:?} (stream EOF: {}); MediaMTX says nothing, it closes the connection",
            read.stream_eof()
        )
    })
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
