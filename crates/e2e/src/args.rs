//! The command line, declared once: `--help` is the manual.

use std::path::PathBuf;

use clap::Parser;
use harness::Shard;
use harness::suite::ServerChoice;
use ingest::SourceElement;

#[derive(Debug, Parser)]
#[command(about = "Run the YAML scenarios against a real RTMP server, real ffmpeg and the real ingest")]
pub(crate) struct Args {
    /// Run only scenarios whose name contains one of these
    pub(crate) filters: Vec<String>,
    /// List the selected scenarios and exit
    #[arg(long)]
    pub(crate) list: bool,
    /// Run only scenarios with this tag (repeatable)
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Skip scenarios with this tag (repeatable)
    #[arg(long = "skip-tag")]
    pub(crate) skip_tags: Vec<String>,
    /// Media server: embedded, mediamtx (Docker, via testcontainers), nginx
    /// (nginx-rtmp started here), or external=rtmp://HOST:PORT[,api=http://HOST:PORT]
    /// (e.g. docker compose -f docker-compose.e2e.yml up -d)
    #[arg(long, default_value = "embedded")]
    pub(crate) server: ServerChoice,
    /// Image for --server mediamtx (default: the pinned bluenviron/mediamtx)
    #[arg(long, value_name = "NAME:TAG")]
    pub(crate) mediamtx_image: Option<String>,
    /// Override every scenario's source element: rtmpsrc or rtmp2src
    #[arg(long)]
    pub(crate) source: Option<SourceElement>,
    /// CPU-bound scenarios run at once (default: CPU count); realtime ones
    /// are paced by the clock and run alongside
    #[arg(long)]
    pub(crate) jobs: Option<usize>,
    /// Realtime scenarios run at once (default: 3 per CPU): each mostly
    /// waits on the clock, but a machine that runs too many at once is slow
    /// to reconnect, which moves where a fault's gap ends
    #[arg(long)]
    pub(crate) realtime_jobs: Option<usize>,
    /// Run shard K of N (1-based), e.g. 2/4
    #[arg(long)]
    pub(crate) shard: Option<Shard>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// Keep artifacts of passing scenarios too (failures always keep theirs)
    #[arg(long)]
    pub(crate) keep_artifacts: bool,
    /// Run a failing scenario up to N more times (each attempt with its own
    /// folder and stream ids)
    #[arg(long, default_value_t = 0)]
    pub(crate) retries: u32,
    /// Token in every stream id (default: the process id); fix it when the
    /// server must know the ids in advance (nginx-rtmp, see --print-nginx-conf)
    #[arg(long)]
    pub(crate) run_id: Option<String>,
    /// Accept changed or new outcome snapshots
    #[arg(long)]
    pub(crate) update_snapshots: bool,
    /// Print the JSON Schema of scenario files and exit
    #[arg(long)]
    pub(crate) print_schema: bool,
    /// Build every fixture recipe into the cache and exit
    #[arg(long)]
    pub(crate) build_fixtures: bool,
    /// Print an nginx-rtmp configuration serving the selected scenarios'
    /// streams on HOST:PORT (with --run-id, which fixes their ids) and exit
    #[arg(long, value_name = "HOST:PORT", requires = "run_id")]
    pub(crate) print_nginx_conf: Option<String>,
    /// nginx-rtmp's module, for --print-nginx-conf
    #[arg(long, default_value = "/usr/lib/nginx/modules/ngx_rtmp_module.so")]
    pub(crate) nginx_module: String,
}
