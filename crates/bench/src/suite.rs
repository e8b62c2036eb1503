//! The whole benchmark: which levels run at which pace, in what order, and
//! the report files rewritten after every level (an interrupted full run
//! still leaves its figures so far).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use ingest::SourceElement;
use media_tools::Pace;

use crate::contenders::Contender;
use crate::fixture::Fixture;
use crate::machine::{Machine, utc_now};
use crate::report::{self, ReportContext};
use crate::results::LevelResult;
use crate::run::{LevelSpec, pace_name, run_level};

/// One level at one pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub pace: Pace,
    pub streams: usize,
    pub media_s: f64,
}

pub struct Options {
    pub quick: bool,
    pub levels: Vec<usize>,
    pub paces: Vec<Pace>,
    pub fast_secs: f64,
    pub realtime_secs: f64,
    pub contenders: Vec<Contender>,
    /// What our ingest reads with.
    pub source: SourceElement,
    pub until_break: bool,
    pub max_streams: usize,
    pub out: PathBuf,
    pub fixture_cache: PathBuf,
    pub keep_segments: bool,
    pub grace: Duration,
    /// How the run was invoked, for the report.
    pub command: String,
}

/// `--quick`: fast pace at 1 and 8 streams, and one 30-s realtime stream.
pub fn plan(options: &Options) -> Vec<Step> {
    if options.quick {
        return vec![
            Step {
                pace: Pace::Fast,
                streams: 1,
                media_s: options.fast_secs,
            },
            Step {
                pace: Pace::Fast,
                streams: 8,
                media_s: options.fast_secs,
            },
            Step {
                pace: Pace::Realtime,
                streams: 1,
                media_s: 30.0,
            },
        ];
    }
    let mut levels = options.levels.clone();
    levels.sort_unstable();
    levels.dedup();
    // Cost first: it is quick, and a broken contender shows up early.
    [Pace::Fast, Pace::Realtime]
        .into_iter()
        .filter(|p| options.paces.contains(p))
        .flat_map(|pace| {
            let media_s = match pace {
                Pace::Fast => options.fast_secs,
                Pace::Realtime => options.realtime_secs,
            };
            levels.iter().map(move |&streams| Step {
                pace,
                streams,
                media_s,
            })
        })
        .collect()
}

/// Whether our ingest still meets the scale targets at this level.
fn holds(level: &LevelResult) -> bool {
    level.contender(Contender::Ours).is_some_and(|ours| {
        ours.lost.video + ours.lost.audio == 0
            && ours.failed_processes == 0
            && ours.lag_ms.is_some_and(|lag| lag.p99 < 300.0)
    })
}

pub async fn run(options: Options) -> Result<()> {
    let work = options.out.join("runs");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let machine = Machine::detect();
    let date = utc_now();
    let mut fixtures: BTreeMap<u64, Fixture> = BTreeMap::new();
    let mut levels: Vec<LevelResult> = Vec::new();
    let mut steps = plan(&options);
    let mut i = 0;
    while i < steps.len() {
        let step = steps[i];
        i += 1;
        let key = step.media_s.to_bits();
        if let Entry::Vacant(slot) = fixtures.entry(key) {
            let cache = options.out.join("fixtures");
            slot.insert(Fixture::prepare(&options.fixture_cache, &cache, step.media_s).await?);
        }
        tracing::info!(
            pace = pace_name(step.pace),
            streams = step.streams,
            media_s = step.media_s,
            "level starts"
        );
        let spec = LevelSpec {
            pace: step.pace,
            streams: step.streams,
            fixture: &fixtures[&key],
            contenders: &options.contenders,
            source: options.source,
            work: &work,
            grace: options.grace,
            keep_segments: options.keep_segments,
        };
        let level = run_level(&spec)
            .await
            .with_context(|| format!("{} pace, {} streams", pace_name(step.pace), step.streams))?;
        let extend = options.until_break
            && i == steps.len()
            && step.pace == Pace::Realtime
            && holds(&level)
            && step.streams + 32 <= options.max_streams;
        if extend {
            steps.push(Step {
                streams: step.streams + 32,
                ..step
            });
        }
        levels.push(level);
        write_outputs(&options.out, &levels, &machine, &date, &options.command)?;
    }
    println!("{}", std::fs::read_to_string(options.out.join("results.md"))?);
    tracing::info!("report: {}", options.out.join("results.md").display());
    Ok(())
}

fn write_outputs(
    out: &Path,
    levels: &[LevelResult],
    machine: &Machine,
    date: &str,
    command: &str,
) -> Result<()> {
    let ctx = ReportContext {
        machine,
        date,
        command,
    };
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    let markdown = report::markdown(levels, &ctx);
    write("results.md", markdown.clone())?;
    write("results.csv", report::csv(levels))?;
    write(
        "results.json",
        serde_json::to_string_pretty(&serde_json::json!({
            "date": date, "command": command, "machine": machine, "levels": levels,
        }))?,
    )?;
    crate::plot::render(levels, &out.join("results.svg"))?;
    let svg = std::fs::read_to_string(out.join("results.svg")).context("reading the plot back")?;
    write("index.html", report::html(&markdown, &svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(quick: bool) -> Options {
        Options {
            quick,
            levels: vec![64, 1, 8, 32, 8],
            paces: vec![Pace::Realtime, Pace::Fast],
            fast_secs: 30.0,
            realtime_secs: 60.0,
            contenders: Contender::ALL.to_vec(),
            source: SourceElement::Rtmpsrc,
            until_break: false,
            max_streams: 256,
            out: PathBuf::new(),
            fixture_cache: PathBuf::new(),
            keep_segments: false,
            grace: Duration::from_secs(1),
            command: String::new(),
        }
    }

    #[test]
    fn quick_plan_is_two_fast_levels_and_one_realtime_stream() {
        let steps = plan(&options(true));
        let shape: Vec<_> = steps.iter().map(|s| (pace_name(s.pace), s.streams)).collect();
        assert_eq!(shape, [("fast", 1), ("fast", 8), ("realtime", 1)]);
    }

    #[test]
    fn full_plan_runs_fast_then_realtime_by_increasing_streams() {
        let steps = plan(&options(false));
        let shape: Vec<_> = steps
            .iter()
            .map(|s| (pace_name(s.pace), s.streams, s.media_s))
            .collect();
        assert_eq!(
            shape,
            [
                ("fast", 1, 30.0),
                ("fast", 8, 30.0),
                ("fast", 32, 30.0),
                ("fast", 64, 30.0),
                ("realtime", 1, 60.0),
                ("realtime", 8, 60.0),
                ("realtime", 32, 60.0),
                ("realtime", 64, 60.0)
            ]
        );
    }
}
