//! `rtmp-server`: the stand-in for the MediaMTX binary and image. It reads
//! the same configuration (`mediamtx.yml`, `MTX_*`; see
//! [`mediamtx_config`]), prints MediaMTX's start-up and event lines on
//! stdout (`YYYY/MM/DD HH:MM:SS INF [RTMP] started with listener on :1935
//! (TCP/RTMP)`) and exits 0 on SIGTERM/SIGINT.

mod mediamtx_config;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use rtmp_server::{HOOK_OUTPUT_TARGET, LOG_TARGET, RtmpServer};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Embedded RTMP server that behaves as MediaMTX 1.20.1 (RTMP and its
/// Control API only).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// RTMP listen address, MediaMTX style (`:1935` means all interfaces);
    /// overrides the configuration
    #[arg(long)]
    listen: Option<String>,
    /// MediaMTX configuration file (default: mediamtx.yml in the working
    /// directory, when there is one)
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .event_format(MediaMtxFormat)
        .with_writer(std::io::stdout)
        .with_max_level(Level::INFO)
        .init();
    tracing::info!(
        target: LOG_TARGET,
        "rtmp-server v{}, a stand-in for MediaMTX 1.20.1 (RTMP and Control API)",
        env!("CARGO_PKG_VERSION")
    );

    let env = |key: &str| std::env::var(key).ok();
    let loaded = mediamtx_config::load(args.config.as_deref(), &env)?;
    if let Some(file) = &loaded.file {
        tracing::info!(target: LOG_TARGET, "configuration loaded from {}", file.display());
    }
    for warning in &loaded.warnings {
        tracing::warn!(target: LOG_TARGET, "{warning}");
    }
    let mut config = loaded.config;
    if let Some(listen) = &args.listen {
        config.listen = mediamtx_config::listen_address(listen)?;
    }
    let server = RtmpServer::start(config).context("starting the RTMP server")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal runtime")?;
    runtime.block_on(wait_for_termination())?;
    tracing::info!(target: LOG_TARGET, "shutting down gracefully");
    server.shutdown();
    Ok(())
}

async fn wait_for_termination() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// MediaMTX's line format: `2024/05/01 12:00:00 INF message` (UTC here: a
/// scratch image has no time zone data).
struct MediaMtxFormat;

impl<S, N> FormatEvent<S, N> for MediaMtxFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // A hook's output is the command's own, as MediaMTX passes it on.
        if event.metadata().target() == HOOK_OUTPUT_TARGET {
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            return writeln!(writer);
        }
        let level = match *event.metadata().level() {
            Level::ERROR => "ERR",
            Level::WARN => "WAR",
            Level::INFO => "INF",
            _ => "DEB",
        };
        write!(writer, "{} {level} ", utc_timestamp(SystemTime::now()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn utc_timestamp(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}/{month:02}/{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date, using the 400-year
/// era arithmetic (eras start on March 1st so leap days fall at the end).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_utc_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29 23:59:59
        assert_eq!(utc_timestamp(t), "2024/02/29 23:59:59");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970/01/01 00:00:00");
    }

    #[test]
    fn parses_mediamtx_addresses() {
        use super::mediamtx_config::listen_address;
        assert_eq!(listen_address(":1935").unwrap(), "0.0.0.0:1935".parse().unwrap());
        assert_eq!(
            listen_address("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(listen_address("nonsense").is_err());
    }
}
