//! `--cluster N`: N streams served by 3 `ingest serve` instances sharing
//! their leases through a real nats-server (JetStream); once every stream
//! is served, the instance serving the most is killed with SIGKILL.
//!
//! ```text
//! publishers ──► server ──► instance 0 ─┐
//!                     ├───► instance 1 ─┼─ leases ─► nats-server (JetStream)
//!                     └───► instance 2 ─┘
//!   /v1/streams of each, every 50 ms ──► takeover time per stream, streams served twice
//!   manifests ──► segment indexes written twice, the gap each takeover states
//! ```
//!
//! Targets: every stream of the dead instance served again with a takeover
//! p99 under 5 s, no stream ever seen served by two instances, no segment
//! index written by two owners.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ingest::{Manifest, ManifestEntry};
use serde::Serialize;

use crate::fixture::Fixture;
use crate::machine::Machine;
use crate::measure::process::Process;
use crate::run::{free_port, fresh_run_dir, realtime_feeds, release_spread};
use crate::service_mode::serve_command;
use crate::side_run::SideRun;

const INSTANCES: usize = 3;
const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often each instance's `/v1/streams` is asked.
const ASK_EVERY: Duration = Duration::from_millis(50);
/// Bounds for each phase: every stream served, the takeover.
const PHASE: Duration = Duration::from_secs(60);
/// The takeover target, p99.
const TAKEOVER_P99: Duration = Duration::from_secs(5);

pub struct Options {
    pub streams: usize,
    pub media_s: f64,
    pub out: PathBuf,
    pub fixture_cache: PathBuf,
    pub command: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterOutcome {
    pub streams: usize,
    pub instances: usize,
    pub lease_ttl_s: f64,
    /// Streams each instance served before the kill.
    pub spread: Vec<usize>,
    /// Streams of the killed instance, and how many were served again.
    pub victims: usize,
    pub taken_over: usize,
    pub takeover_p50_ms: Option<f64>,
    pub takeover_p99_ms: Option<f64>,
    pub takeover_max_ms: Option<f64>,
    /// Polls that saw a stream served by two instances at once.
    pub served_twice: usize,
    /// Segment indexes of one stream written by two owners.
    pub written_twice: usize,
    /// What each takeover's new owner states it could not receive, s.
    pub gap_p50_s: Option<f64>,
    pub gap_max_s: Option<f64>,
}

impl ClusterOutcome {
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.taken_over < self.victims {
            failures.push(format!(
                "{} of {} streams of the killed instance were not served again",
                self.victims - self.taken_over,
                self.victims
            ));
        }
        match self.takeover_p99_ms {
            Some(p99) if p99 <= TAKEOVER_P99.as_secs_f64() * 1e3 => {}
            Some(p99) => failures.push(format!("takeover p99 {p99:.0} ms is over {TAKEOVER_P99:?}")),
            None => failures.push("no takeover was seen".to_owned()),
        }
        if self.served_twice > 0 {
            failures.push(format!("{} polls saw a stream served twice", self.served_twice));
        }
        if self.written_twice > 0 {
            failures.push(format!(
                "{} segment indexes written by two owners",
                self.written_twice
            ));
        }
        failures
    }
}

pub async fn run(options: Options) -> Result<()> {
    let run = SideRun::prepare(&options.out, &options.fixture_cache, options.media_s).await?;
    let outcome = observe(&options, &run.fixture).await?;
    let markdown = markdown(&outcome, &run.machine, &run.date, &options.command);
    run.write("cluster.md", &markdown)?;
    run.write_json("cluster", &options.command, &outcome)?;
    run.conclude(&markdown, "cluster targets missed", outcome.failures())
}

struct Instance {
    process: Process,
    http: String,
    out: PathBuf,
}

async fn observe(options: &Options, fixture: &Fixture) -> Result<ClusterOutcome> {
    let root = options.out.join("runs/cluster");
    let logs = fresh_run_dir(&root)?;
    let server = rtmp_server::RtmpServer::start(rtmp_server::ServerConfig {
        read_timeout: Duration::from_secs(60),
        ..rtmp_server::ServerConfig::with_api()
    })
    .context("starting the embedded RTMP server")?;
    let nats = cluster::testing::NatsServer::start().await;

    let mut instances = Vec::new();
    for k in 0..INSTANCES {
        let http = format!("127.0.0.1:{}", free_port()?);
        let out = root.join(format!("segments-{k}"));
        let mut command = serve_command(&server, &out, &http, options.streams)?;
        command
            .args(["--nats", &nats.url(), "--instance", &format!("i{k}")])
            .args(["--lease-ttl", &format!("{}s", LEASE_TTL.as_secs())]);
        let process = Process::spawn(
            command,
            &format!("instance-{k}"),
            &logs.join(format!("instance-{k}.log")),
        )?;
        instances.push(Instance { process, http, out });
    }

    let (streams, mut feeds) = realtime_feeds(&server, fixture, "clu", options.streams, &logs)?;
    release_spread(&mut feeds).await;

    let client = reqwest::Client::new();
    let ids: Vec<String> = streams.iter().map(|s| s.id.clone()).collect();
    let mut served_twice = 0;
    // Every stream served by one instance, with a segment written.
    let began = Instant::now();
    let mut ask = tokio::time::interval(ASK_EVERY);
    let owners = loop {
        ask.tick().await;
        let seen = ask_all(&client, &instances).await;
        served_twice += twice(&seen);
        let owners = owners_of(&seen, &ids);
        if owners.len() == ids.len() {
            break owners;
        }
        if began.elapsed() > PHASE {
            bail!(
                "only {} of {} streams were served within {PHASE:?}",
                owners.len(),
                ids.len()
            );
        }
    };
    let spread: Vec<usize> = (0..INSTANCES)
        .map(|k| owners.values().filter(|o| **o == k).count())
        .collect();
    let victim = (0..INSTANCES).max_by_key(|k| spread[*k]).unwrap_or(0);
    let victims: Vec<String> = owners
        .iter()
        .filter(|(_, o)| **o == victim)
        .map(|(id, _)| id.clone())
        .collect();

    instances[victim].process.signal(libc::SIGKILL);
    let killed = Instant::now();
    let mut takeover: BTreeMap<String, Duration> = BTreeMap::new();
    let survivors: Vec<usize> = (0..INSTANCES).filter(|k| *k != victim).collect();
    while takeover.len() < victims.len() && killed.elapsed() < PHASE {
        ask.tick().await;
        let seen = ask_some(&client, &instances, &survivors).await;
        served_twice += twice(&seen);
        for (id, states) in &seen {
            if victims.contains(id) && states.iter().any(|(_, s)| s == "running") {
                takeover.entry(id.clone()).or_insert_with(|| killed.elapsed());
            }
        }
    }

    let publish_timeout = Duration::from_secs_f64(options.media_s) + Duration::from_secs(60);
    for feed in &mut feeds {
        if let Err(e) = feed.finish(publish_timeout).await {
            tracing::warn!("a publisher failed: {e:#}");
        }
    }
    drop(feeds);
    for k in &survivors {
        instances[*k].process.signal(libc::SIGTERM);
    }
    for k in &survivors {
        let _ = tokio::time::timeout(PHASE, instances[*k].process.wait()).await;
    }
    let _ = instances[victim].process.wait().await;

    let (written_twice, gaps) = from_manifests(&instances, &ids);
    let mut times: Vec<f64> = takeover.values().map(|d| d.as_secs_f64() * 1e3).collect();
    times.sort_by(f64::total_cmp);
    let mut gaps = gaps;
    gaps.sort_by(f64::total_cmp);
    drop(server);
    Ok(ClusterOutcome {
        streams: options.streams,
        instances: INSTANCES,
        lease_ttl_s: LEASE_TTL.as_secs_f64(),
        spread,
        victims: victims.len(),
        taken_over: takeover.len(),
        takeover_p50_ms: media_tools::percentile(&times, 50.0),
        takeover_p99_ms: media_tools::percentile(&times, 99.0),
        takeover_max_ms: times.last().copied(),
        served_twice,
        written_twice,
        gap_p50_s: media_tools::percentile(&gaps, 50.0),
        gap_max_s: gaps.last().copied(),
    })
}

/// Each stream's state on each instance asked: (instance, state).
type Seen = BTreeMap<String, Vec<(usize, String)>>;

async fn ask_all(client: &reqwest::Client, instances: &[Instance]) -> Seen {
    let all: Vec<usize> = (0..instances.len()).collect();
    ask_some(client, instances, &all).await
}

async fn ask_some(client: &reqwest::Client, instances: &[Instance], which: &[usize]) -> Seen {
    let mut seen = Seen::new();
    for k in which {
        let Ok(answer) = client
            .get(format!("http://{}/v1/streams", instances[*k].http))
            .send()
            .await
        else {
            continue;
        };
        let Ok(view) = answer.json::<service::StreamsView>().await else {
            continue;
        };
        for stream in view.streams {
            seen.entry(stream.id).or_default().push((*k, stream.state));
        }
    }
    seen
}

/// Streams seen running on two instances in one poll.
fn twice(seen: &Seen) -> usize {
    seen.values()
        .filter(|states| states.iter().filter(|(_, s)| s == "running").count() > 1)
        .count()
}

/// The instance running each stream, for streams running on exactly one.
fn owners_of(seen: &Seen, ids: &[String]) -> BTreeMap<String, usize> {
    ids.iter()
        .filter_map(|id| {
            let running: Vec<usize> = seen
                .get(id)?
                .iter()
                .filter(|(_, s)| s == "running")
                .map(|(k, _)| *k)
                .collect();
            (running.len() == 1).then(|| (id.clone(), running[0]))
        })
        .collect()
}

/// Segment indexes written by two owners, and each takeover's stated gap.
fn from_manifests(instances: &[Instance], ids: &[String]) -> (usize, Vec<f64>) {
    let mut twice = 0;
    let mut gaps = Vec::new();
    for id in ids {
        let mut written: BTreeSet<(String, u64)> = BTreeSet::new();
        for instance in instances {
            let entries =
                Manifest::read(&instance.out.join(id).join(ingest::MANIFEST_FILE)).unwrap_or_default();
            let took_over = entries.iter().any(|e| matches!(e, ManifestEntry::Takeover(_)));
            for entry in &entries {
                match entry {
                    ManifestEntry::Segment(s) if !written.insert((s.kind.as_str().to_owned(), s.index)) => {
                        twice += 1;
                    }
                    ManifestEntry::Connection(c) if took_over => {
                        if let Some(span) = c.join.not_received {
                            gaps.push(span.to_s - span.from_s);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    (twice, gaps)
}

fn markdown(outcome: &ClusterOutcome, machine: &Machine, date: &str, command: &str) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0} ms"));
    let s = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} s"));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    format!(
        "# Cluster benchmark\n\n{date}, `{command}`, {}\n\n\
         {} streams of the seed fixture (real time) served by {} `ingest serve` instances sharing \
         leases (TTL {:.0} s) through a nats-server; once every stream was served, the instance \
         serving the most was killed with SIGKILL.\n\n\
         | figure | value |\n| --- | --- |\n\
         | streams per instance before the kill | {:?} |\n\
         | streams of the killed instance served again | {} of {} |\n\
         | takeover after the kill, p50 / p99 / max | {} / {} / {} |\n\
         | polls that saw a stream served twice | {} |\n\
         | segment indexes written by two owners | {} |\n\
         | gap each new owner states, p50 / max | {} / {} |\n\n\
         | target | |\n| --- | --- |\n\
         | takeover p99 under {:?} | {} |\n\
         | never served twice | {} |\n",
        machine.summary(),
        outcome.streams,
        outcome.instances,
        outcome.lease_ttl_s,
        outcome.spread,
        outcome.taken_over,
        outcome.victims,
        ms(outcome.takeover_p50_ms),
        ms(outcome.takeover_p99_ms),
        ms(outcome.takeover_max_ms),
        outcome.served_twice,
        outcome.written_twice,
        s(outcome.gap_p50_s),
        s(outcome.gap_max_s),
        TAKEOVER_P99,
        verdict(
            outcome
                .takeover_p99_ms
                .is_some_and(|p| p <= TAKEOVER_P99.as_secs_f64() * 1e3)
        ),
        verdict(outcome.served_twice == 0 && outcome.written_twice == 0),
    )
}
