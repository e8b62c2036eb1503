//! Which scenarios a run takes: name filters, tags, and a CI shard.

use crate::plan::scenario::ScenarioFile;

#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Substrings of scenario names; empty takes all.
    pub filters: Vec<String>,
    /// Only scenarios with at least one of these tags.
    pub tags: Vec<String>,
    /// No scenario with any of these tags.
    pub skip_tags: Vec<String>,
    pub shard: Option<Shard>,
}

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid shard '{s}'; expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Selection {
    /// Indices into `scenarios` of the selected ones, in order.
    pub fn apply(&self, scenarios: &[ScenarioFile]) -> Vec<usize> {
        scenarios
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                self.filters.is_empty() || self.filters.iter().any(|p| f.name.contains(p.as_str()))
            })
            .filter(|(_, f)| self.tags.is_empty() || f.scenario.tags.iter().any(|t| self.tags.contains(t)))
            .filter(|(_, f)| !f.scenario.tags.iter().any(|t| self.skip_tags.contains(t)))
            .map(|(i, _)| i)
            .enumerate()
            .filter(|(n, _)| self.shard.is_none_or(|s| n % s.count == s.index - 1))
            .map(|(_, i)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plan::scenario::Scenario;

    fn file(name: &str, tags: &[&str]) -> ScenarioFile {
        let yaml = format!(
            "description: d\ntags: [{}]\nexpect: {{outcome: completed}}\n",
            tags.join(", ")
        );
        ScenarioFile {
            name: name.into(),
            path: PathBuf::from(name),
            scenario: Scenario::parse(&yaml, &PathBuf::from(name)).unwrap(),
        }
    }

    fn names(all: &[ScenarioFile], selected: Vec<usize>) -> Vec<&str> {
        selected.iter().map(|&i| all[i].name.as_str()).collect()
    }

    #[test]
    fn filters_tags_and_shards_combine() {
        let all = [
            file("a-fast", &["fast"]),
            file("b-real", &["realtime", "smoke"]),
            file("c-fast", &["fast", "smoke"]),
        ];
        let by_tag = Selection {
            tags: vec!["smoke".into()],
            ..Selection::default()
        };
        assert_eq!(names(&all, by_tag.apply(&all)), ["b-real", "c-fast"]);
        let skip = Selection {
            skip_tags: vec!["fast".into()],
            ..Selection::default()
        };
        assert_eq!(names(&all, skip.apply(&all)), ["b-real"]);
        let filtered = Selection {
            filters: vec!["fast".into()],
            ..Selection::default()
        };
        assert_eq!(names(&all, filtered.apply(&all)), ["a-fast", "c-fast"]);
        let shards: Vec<Vec<&str>> = (1..=2)
            .map(|k| {
                let s = Selection {
                    shard: Some(Shard { index: k, count: 2 }),
                    ..Selection::default()
                };
                names(&all, s.apply(&all))
            })
            .collect();
        assert_eq!(shards, [vec!["a-fast", "c-fast"], vec!["b-real"]]);
    }

    #[test]
    fn shard_syntax_is_checked() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["0/4", "5/4", "x/4", "4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
