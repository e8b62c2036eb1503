//! Start-up: the line a container's readiness wait keys on.

use super::probe::{Probe, ensure};
use super::{Check, Need, Verdict, check};

pub(super) fn checks() -> Vec<Check> {
    vec![check!(
        "startup",
        rtmp_listener_line_is_the_only_rtmp_line,
        &[Need::Log]
    )]
}

/// `INF [RTMP] started with listener on ... (TCP/RTMP)` is logged, and
/// until a client connects it is the only line with `INF [RTMP] `, which is
/// why a container may be awaited on that prefix.
async fn rtmp_listener_line_is_the_only_rtmp_line(probe: &Probe) -> Verdict {
    let line = probe
        .line(probe.started(), "its RTMP listener line", |l| {
            l.contains("INF [RTMP] ")
        })
        .await?;
    ensure(
        line.contains("INF [RTMP] started with listener on ") && line.ends_with(" (TCP/RTMP)"),
        || format!("the first `INF [RTMP] ` line is not the listener line: {line:?}"),
    )
}
