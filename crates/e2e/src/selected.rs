//! Which scenarios a run plays: those the filters, tags and shard select,
//! less those the server cannot play (skipped with the reason, never failed
//! and never passed).

use harness::suite::Suite;
use harness::{ScenarioFile, Selection};

use crate::args::Args;

pub(crate) struct Selected<'a> {
    pub suite: &'a Suite,
    /// Indices into the suite's scenarios, to run.
    pub run: Vec<usize>,
    /// Scenarios the server cannot play: (name, reason).
    pub skipped: Vec<(String, String)>,
    retries: u32,
}

impl<'a> Selected<'a> {
    pub fn from(args: &Args, suite: &'a Suite) -> Self {
        let selection = Selection {
            filters: args.filters.clone(),
            tags: args.tags.clone(),
            skip_tags: args.skip_tags.clone(),
            shard: args.shard,
        };
        let (run, unplayable): (Vec<usize>, Vec<usize>) = selection
            .apply(&suite.scenarios)
            .into_iter()
            .partition(|&i| args.server.cannot_run(&suite.scenarios[i].scenario).is_none());
        let skipped = unplayable
            .into_iter()
            .map(|i| {
                let file = &suite.scenarios[i];
                let reason = args.server.cannot_run(&file.scenario).unwrap_or_default();
                (file.name.clone(), reason)
            })
            .collect();
        Self {
            suite,
            run,
            skipped,
            retries: args.retries,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.run.is_empty() && self.skipped.is_empty()
    }

    pub fn files(&self) -> impl Iterator<Item = &'a ScenarioFile> + '_ {
        self.run.iter().map(|&i| &self.suite.scenarios[i])
    }

    /// Every stream id the run may use, retries included (nginx-rtmp must
    /// know them before it starts).
    pub fn stream_ids(&self, run_id: &str) -> Vec<String> {
        self.files()
            .flat_map(|file| {
                (0..file.scenario.streams).flat_map(move |k| {
                    (1..=self.retries + 1)
                        .map(move |attempt| harness::stream_id(&file.name, k, run_id, attempt))
                })
            })
            .collect()
    }

    pub fn list(&self) {
        for file in self.files() {
            println!(
                "{}  [{}]  {}",
                file.name,
                file.scenario.tags.join(", "),
                file.scenario.description
            );
        }
        for (name, reason) in &self.skipped {
            println!("{name}  (skipped: {reason})");
        }
    }
}
