//! Which scenarios a run takes: name filters, tags, and a CI shard.

use crate::scenario::ScenarioFile;

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
    pub fn apply<'a>(&self, scenarios: &'a [ScenarioFile]) -> Vec<&'a ScenarioFile> {
        scenarios
            .iter()
            .filter(|f| self.filters.is_empty() || self.filters.iter().any(|p| f.name.contains(p.as_str())))
            .filter(|f| self.tags.is_empty() || f.scenario.tags.iter().any(|t| self.tags.contains(t)))
            .filter(|f| !f.scenario.tags.iter().any(|t| self.skip_tags.contains(t)))
            .enumerate()
            .filter(|(i, _)| self.shard.is_none_or(|s| i % s.count == s.index - 1))
            .map(|(_, f)| f)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::scenario::Scenario;

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

    fn names(selected: Vec<&ScenarioFile>) -> Vec<&str> {
        selected.iter().map(|f| f.name.as_str()).collect()
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
        assert_eq!(names(by_tag.apply(&all)), ["b-real", "c-fast"]);
        let skip = Selection {
            skip_tags: vec!["fast".into()],
            ..Selection::default()
        };
        assert_eq!(names(skip.apply(&all)), ["b-real"]);
        let filtered = Selection {
            filters: vec!["fast".into()],
            ..Selection::default()
        };
        assert_eq!(names(filtered.apply(&all)), ["a-fast", "c-fast"]);
        let shards: Vec<Vec<&str>> = (1..=2)
            .map(|k| {
                let s = Selection {
                    shard: Some(Shard { index: k, count: 2 }),
                    ..Selection::default()
                };
                names(s.apply(&all))
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
