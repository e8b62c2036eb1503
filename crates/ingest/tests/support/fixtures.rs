//! Fixtures for the tests of every crate that runs a worker (the service's
//! tests include this file too): built once per machine, cached by recipe.

use std::path::{Path, PathBuf};

use media_tools::FixtureRecipe;

/// Builds (once per machine, cached by recipe) and returns a fixture.
pub async fn fixture(recipe: &FixtureRecipe) -> PathBuf {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    recipe.ensure_built(&cache).await.expect("fixture builds")
}

/// A small, quick-to-encode variant of the seed fixture.
pub fn small_recipe(name: &str, seconds: f64) -> FixtureRecipe {
    FixtureRecipe {
        width: 320,
        height: 240,
        duration_s: seconds,
        ..FixtureRecipe::seed(name)
    }
}
