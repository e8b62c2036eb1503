//! `bench drive`: our ingest pulling every stream in ONE process, the way a
//! deployment would run it. The bench starts this as a child so the kernel
//! accounts its CPU and memory exactly like the peers' processes.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use ingest::{SourceElement, WorkerConfig, WorkerEvent, WorkerRunner};

/// Runs one worker per URL until every stream has ended.
pub fn run(out: PathBuf, source: SourceElement, urls: Vec<String>) -> Result<()> {
    // One thread drains the events; the workers run on their own threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the driver's runtime")?;
    runtime.block_on(async move {
        let mut workers = tokio::task::JoinSet::new();
        for url in urls {
            let mut config = WorkerConfig::for_url(&url).with_context(|| format!("configuring {url}"))?;
            config.output_dir = out.clone();
            config.source = source;
            let mut handle = WorkerRunner::new(config)
                .stop_when_stream_ends(true)
                .spawn()
                .with_context(|| format!("starting the worker for {url}"))?;
            workers.spawn(async move {
                while let Some(event) = handle.next_event().await {
                    if let WorkerEvent::Failed { kind, error } = event {
                        tracing::error!(%url, %kind, "{error}");
                    }
                }
                handle.wait().await.map_err(|e| format!("{url}: {e}"))
            });
        }
        let mut failures = Vec::new();
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(Ok(_summary)) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(format!("a worker task panicked: {e}")),
            }
        }
        if !failures.is_empty() {
            bail!("{} stream(s) failed: {}", failures.len(), failures.join("; "));
        }
        Ok(())
    })
}
