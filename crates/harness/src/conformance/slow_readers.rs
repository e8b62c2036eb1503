//! Readers that fall behind or leave while the stream goes on: MediaMTX
//! skips what a slow reader cannot take and says so, and logs a reader's
//! close, in the recorded words.

use std::time::Instant;

use super::material::{frames, shifted};
use super::probe::{Probe, ensure, read_into, send};
use super::recordings::{recorded_line, shape};
use super::{Check, CheckFailure, Need, Verdict, check};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!("reading", a_slow_reader_is_told_and_skipped, &[Need::Log]),
        check!("reading", a_reader_that_leaves_is_logged, &[Need::Log]),
    ]
}

/// A reader that does not read falls behind; the server drops frames for
/// it and says so (`reader is too slow, discarding N frames`), and the
/// publisher is not held up.
async fn a_slow_reader_is_told_and_skipped(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let mut publisher = probe.publish_available(&path, tags, 3000).await?;
    let since = Instant::now();
    // Asks to play, then never reads.
    let mut stalled = probe.play(&path).await?;
    probe.reading(&path, since, &mut stalled).await?;
    // Four minutes of media (about 45 MB), as fast as the server takes it:
    // more than any socket buffers, so the reader's queue overflows.
    for round in 0..20u32 {
        let offset = 12_000 * (round + 1);
        send(&mut publisher, &shifted(&frames(tags, 0, u32::MAX), offset)).await?;
    }
    let line = probe
        .line(since, "that a reader is too slow", |l| {
            l.contains("reader is too slow, discarding")
        })
        .await?;
    let prefix = "WAR [RTMP] [conn ADDR] reader is too slow, discarding ";
    let got = shape(&line, &path);
    let counted = got.strip_prefix(prefix).and_then(|rest| rest.split_once(' '));
    let worded = counted.is_some_and(|(n, noun)| {
        n.parse::<u64>()
            .is_ok_and(|n| noun == if n == 1 { "frame" } else { "frames" })
    });
    ensure(worded, || {
        format!("logged {line:?}; MediaMTX logs \"{prefix}N frames\"")
    })
}

/// A reader that hangs up while the stream goes on: the server says the
/// connection closed (a broken pipe on its next write, or EOF), in the
/// recorded words.
async fn a_reader_that_leaves_is_logged(probe: &Probe) -> Verdict {
    let tags = &probe.material.plain;
    let path = probe.path();
    let mut publisher = probe.publish_available(&path, tags, 3000).await?;
    let since = Instant::now();
    let mut player = probe.play(&path).await?;
    let mut read = probe.reading(&path, since, &mut player).await?;
    read_into(&mut player, &mut read, |r| r.tags().next().is_some()).await?;
    let reading = probe
        .line(since, "the reading line", |l| {
            l.contains(&format!("is reading from path '{path}'"))
        })
        .await?;
    let conn = reading
        .split("[conn ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .ok_or_else(|| format!("no connection in {reading:?}"))?
        .to_owned();
    drop(player);
    let closed = probe.line(since, "that the reader left", |l| {
        l.contains(&format!("[conn {conn}] closed:"))
    });
    let publishing = async {
        for round in 0..10u32 {
            send(
                &mut publisher,
                &shifted(&frames(tags, 3000, u32::MAX), 12_000 * round),
            )
            .await?;
        }
        Err::<String, CheckFailure>(
            "the publisher sent 2 minutes of media and the reader's close was never logged".into(),
        )
    };
    let line = tokio::select! {
        line = closed => line?,
        failed = publishing => return failed.map(|_| ()),
    };
    let got = shape(&line, &path);
    let broken_pipe = recorded_line("write: broken pipe", "live/test/in");
    let eof = recorded_line("closed: EOF", "live/test/in");
    ensure(got == broken_pipe || got == eof, || {
        format!("logged {line:?}; MediaMTX logs {broken_pipe:?} or {eof:?}")
    })
}
