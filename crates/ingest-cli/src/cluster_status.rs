//! `ingest cluster status`: the whole assignment of a cluster, read from
//! its JetStream buckets: each stream, who serves it now, since which
//! change of owner, and where its numbering stands.

use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The cluster's NATS server, e.g. nats://nats:4222
    #[arg(long, value_name = "URL")]
    nats: String,
    /// The lease bucket the instances use
    #[arg(long, default_value = "ingest-leases")]
    bucket: String,
    /// One JSON object per stream instead of a table
    #[arg(long)]
    json: bool,
}

pub(crate) async fn status(args: &StatusArgs) -> Result<()> {
    let mut config = cluster::ClusterConfig::new(args.nats.clone(), format!("status-{}", std::process::id()));
    config.bucket.clone_from(&args.bucket);
    let leases = cluster::Leases::open(config)
        .await
        .context("opening the cluster's buckets")?;
    let streams = leases.streams().await.context("reading the cluster's streams")?;
    if args.json {
        for (stream, state, holder) in &streams {
            let line = serde_json::json!({
                "stream": stream,
                "served_by": holder.as_ref().map(|h| &h.owner),
                "epoch": state.epoch,
                "last_owner": state.owner,
                "previous_owner": state.previous_owner,
                "next_segment": state.next_segment,
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:>5} {:>12}  previous owner",
        "stream", "served by", "epoch", "next segment"
    );
    for (stream, state, holder) in &streams {
        let served_by = holder.as_ref().map_or("(nobody)", |h| h.owner.as_str());
        println!(
            "{stream:<24} {served_by:<16} {:>5} {:>12}  {}",
            state.epoch,
            state.next_segment,
            state.previous_owner.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
