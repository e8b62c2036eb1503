//! MediaMTX's path hooks, given by their deprecated names as a deployment
//! written for an older MediaMTX gives them (`runOnReady`, `runOnNotReady`,
//! `runOnReadyRestart`): the same command runs on every server, a static
//! busybox shell that prints what it was given (MediaMTX expands the
//! variables in the command line itself) and waits for its SIGINT.
//!
//! From MediaMTX 1.20.1's source (`internal/hooks/on_available.go`,
//! `internal/externalcmd`): the command starts when the path becomes
//! available, logged before the path's "available and online" line; it
//! gets `MTX_PATH`, `RTSP_PATH`, `RTSP_PORT`, `MTX_QUERY`,
//! `MTX_SOURCE_TYPE` and `MTX_SOURCE_ID`; when the publisher leaves, the
//! command's process group gets SIGINT, `runOnAvailable command stopped` is
//! logged and `runOnUnavailable` is launched with the same environment. A
//! restarted command starts again 5 s after it exits, each exit logged as
//! `command exited with code 0`, whatever its code (on Unix MediaMTX never
//! reads the code). A server that reads a configuration warns of the
//! deprecated names.

use std::time::{Duration, Instant};

use super::probe::{Probe, ensure};
use super::{Check, Need, Verdict, check};
use crate::world::server::{HookCommands, ServerSettings};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!(
            "hooks",
            run_on_ready_gets_mediamtx_s_environment_and_sigint_when_the_publisher_leaves,
            &[Need::Log, Need::OwnServer],
            || ServerSettings {
                hooks: Some(HookCommands {
                    run_on_ready: ON_READY.to_owned(),
                    run_on_ready_restart: false,
                    run_on_not_ready: ON_NOT_READY.to_owned(),
                }),
                ..ServerSettings::default()
            }
        ),
        check!(
            "hooks",
            run_on_ready_restart_starts_it_again_5s_after_each_exit,
            &[Need::Log, Need::OwnServer],
            || ServerSettings {
                hooks: Some(HookCommands {
                    run_on_ready: EXITS_AT_ONCE.to_owned(),
                    run_on_ready_restart: true,
                    run_on_not_ready: String::new(),
                }),
                ..ServerSettings::default()
            }
        ),
    ]
}

/// Says what it was given, then waits until interrupted, saying so.
const ON_READY: &str = "{busybox} sh -c 'echo \"hook ready path=$MTX_PATH rtsp_path=$RTSP_PATH rtsp_port=$RTSP_PORT query=$MTX_QUERY type=$MTX_SOURCE_TYPE id=$MTX_SOURCE_ID\"; trap \"echo hook interrupted path=$MTX_PATH; exit 0\" INT; while true; do sleep 0.1; done'";
const ON_NOT_READY: &str = "{busybox} sh -c 'echo \"hook not ready path=$MTX_PATH id=$MTX_SOURCE_ID\"'";
/// Says it ran and exits with a code MediaMTX does not read.
const EXITS_AT_ONCE: &str = "{busybox} sh -c 'echo \"hook ran path=$MTX_PATH\"; exit 3'";
/// MediaMTX's pause before a restarted command runs again.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// The value of `key=` in a hook's line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}

async fn run_on_ready_gets_mediamtx_s_environment_and_sigint_when_the_publisher_leaves(
    probe: &Probe,
) -> Verdict {
    let path = probe.path();
    let since = Instant::now();
    let publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    let started = probe
        .line(since, "that runOnAvailable started", |l| {
            l.contains(&format!("[path {path}] runOnAvailable command started"))
        })
        .await?;
    let available = probe
        .line(since, "that the path is available", |l| {
            l.contains(&format!("[path {path}] stream is available and online"))
        })
        .await?;
    let log = probe.log()?;
    let order = log.excerpt(since, &[&format!("[path {path}]")]);
    let position = |wanted: &str| order.iter().position(|l| l == wanted);
    ensure(position(&started) < position(&available), || {
        format!("MediaMTX starts the hook before it says the path is available; logged {order:?}")
    })?;
    let ready = probe
        .line(since, "the hook's output", |l| {
            l.starts_with("hook ready") && l.contains(&path)
        })
        .await?;
    for (key, expected) in [
        ("path", path.as_str()),
        ("rtsp_path", path.as_str()),
        ("rtsp_port", "8554"),
        ("query", ""),
        ("type", "rtmpConn"),
    ] {
        ensure(field(&ready, key) == Some(expected), || {
            format!(
                "the hook got {key}={:?}, MediaMTX gives {expected:?}: {ready}",
                field(&ready, key)
            )
        })?;
    }
    let id = field(&ready, "id").unwrap_or_default().to_owned();
    ensure(is_uuid(&id), || {
        format!("MTX_SOURCE_ID is the publisher's UUID, got {id:?}")
    })?;
    if let Ok(api) = probe.api() {
        let conns = api.rtmp_conns().await.map_err(|e| e.to_string())?;
        ensure(conns.items.iter().any(|c| c.id == id && c.path == path), || {
            format!("MTX_SOURCE_ID {id} is not the id of {path}'s publisher in /v3/rtmpconns/list")
        })?;
    }

    let left = Instant::now();
    publisher.finish().await.map_err(|e| e.to_string())?;
    probe
        .line(left, "that runOnAvailable was stopped", |l| {
            l.contains(&format!("[path {path}] runOnAvailable command stopped"))
        })
        .await?;
    probe
        .line(left, "the hook saying SIGINT reached it", |l| {
            l == format!("hook interrupted path={path}")
        })
        .await?;
    probe
        .line(left, "that runOnUnavailable was launched", |l| {
            l.contains(&format!("[path {path}] runOnUnavailable command launched"))
        })
        .await?;
    let not_ready = probe
        .line(left, "runOnUnavailable's output", |l| {
            l.starts_with("hook not ready") && l.contains(&path)
        })
        .await?;
    ensure(field(&not_ready, "id") == Some(id.as_str()), || {
        format!("runOnUnavailable gets the environment runOnAvailable got (MTX_SOURCE_ID {id}): {not_ready}")
    })?;
    // Where the settings are read from a configuration, MediaMTX warns of
    // the deprecated names once, at start.
    if probe.server().reads_settings() {
        probe
            .line(probe.started(), "the deprecation warning", |l| {
                l.contains(
                    "WAR parameter 'runOnReady' is deprecated and has been replaced with 'runOnAvailable'",
                )
            })
            .await?;
    }
    Ok(())
}

async fn run_on_ready_restart_starts_it_again_5s_after_each_exit(probe: &Probe) -> Verdict {
    let path = probe.path();
    let since = Instant::now();
    let publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    let ran = format!("hook ran path={path}");
    let first = probe
        .log()?
        .wait_for(since, |l| l == ran, super::probe::WAIT)
        .await;
    let first = first.ok_or("the restarted hook never ran")?;
    let exited = probe
        .line(since, "the hook's exit", |l| {
            l.contains(&format!(
                "[path {path}] runOnAvailable command exited: command exited with code 0"
            ))
        })
        .await?;
    let _ = exited;
    let again = probe
        .log()?
        .wait_for(
            first.at + Duration::from_millis(1),
            |l| l == ran,
            super::probe::WAIT,
        )
        .await
        .ok_or("the restarted hook never ran a second time")?;
    let pause = again.at.saturating_duration_since(first.at);
    // Slowness only lengthens the pause; it cannot make it shorter.
    ensure(pause >= RESTART_PAUSE - Duration::from_millis(500), || {
        format!("the hook ran again after {pause:?}; MediaMTX waits {RESTART_PAUSE:?}")
    })?;
    drop(publisher);
    Ok(())
}
