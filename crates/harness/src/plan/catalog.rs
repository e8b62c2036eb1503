//! Finding scenarios and fixture recipes on disk.

use std::path::{Path, PathBuf};

use media_tools::FixtureRecipe;

use crate::error::HarnessError;
use crate::plan::scenario::{Scenario, ScenarioFile};

pub(crate) const FIXTURES_FILE: &str = "fixtures.yaml";

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/harness sits two levels below the root")
        .to_owned()
}

/// Every `*.yaml` scenario below `dir`, sorted by name.
pub(crate) fn load_scenarios(dir: &Path) -> Result<Vec<ScenarioFile>, HarnessError> {
    let mut files = Vec::new();
    collect_yaml(dir, &mut files)?;
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| HarnessError::Io {
                path: path.clone(),
                source,
            })?;
            let scenario = Scenario::parse(&text, &path)?;
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .with_extension("")
                .to_string_lossy()
                .replace('\\', "/");
            Ok(ScenarioFile { name, path, scenario })
        })
        .collect()
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HarnessError> {
    let entries = std::fs::read_dir(dir).map_err(|source| HarnessError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The fixture recipes of `fixtures/fixtures.yaml`.
#[derive(Debug, Clone)]
pub struct FixtureCatalog {
    pub path: PathBuf,
    pub recipes: Vec<FixtureRecipe>,
}

impl FixtureCatalog {
    pub fn load(path: &Path) -> Result<Self, HarnessError> {
        let text = std::fs::read_to_string(path).map_err(|source| HarnessError::Io {
            path: path.to_owned(),
            source,
        })?;
        let recipes: Vec<FixtureRecipe> =
            serde_yaml::from_str(&text).map_err(|e| HarnessError::yaml(path, &e))?;
        let invalid = |message: String| HarnessError::Incompatible {
            path: path.to_owned(),
            message,
        };
        for (i, recipe) in recipes.iter().enumerate() {
            recipe.validate().map_err(|e| invalid(e.to_string()))?;
            if recipes[..i].iter().any(|r| r.name == recipe.name) {
                return Err(invalid(format!("fixture '{}' is defined twice", recipe.name)));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            recipes,
        })
    }

    pub fn get(&self, name: &str) -> Option<&FixtureRecipe> {
        self.recipes.iter().find(|r| r.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.recipes.iter().map(|r| r.name.as_str()).collect()
    }

    /// Where built fixtures are cached (git-ignored).
    pub fn cache_dir(&self) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(".cache")
    }
}
