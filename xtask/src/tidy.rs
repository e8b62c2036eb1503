//! Rules of the codebase that no compiler checks, kept by a test (run with
//! `cargo xtask test`, as every test is):
//! - a library carries no dependency only binaries use (clap, anyhow,
//!   tracing-subscriber): those live in the `*-cli` crates and `e2e`;
//! - the product libraries (ingest, rtmp-server, sts, rtmp-chunks,
//!   reconnect) show no internal module: their API is re-exported at the
//!   crate root, and a public module only exists behind a feature (the
//!   planted faults);
//! - `cargo xtask deps` checks for exactly the GStreamer elements the
//!   ingest builds its pipelines from.
//!
//! The sources are read as text: xtask must build on a machine without
//! GStreamer, so it cannot link the ingest to ask it.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    const BIN_ONLY: [&str; 3] = ["clap", "anyhow", "tracing-subscriber"];
    const PRODUCT_LIBRARIES: [&str; 5] = ["ingest", "rtmp-server", "sts", "rtmp-chunks", "reconnect"];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn read(path: &str) -> String {
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every workspace member that has a library target.
    fn libraries() -> Vec<(String, toml::Table)> {
        let workspace: toml::Table = read("Cargo.toml").parse().unwrap();
        let members = workspace["workspace"]["members"].as_array().unwrap();
        members
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .filter(|m| root().join(m).join("src/lib.rs").exists())
            .map(|m| {
                let manifest: toml::Table = read(&format!("{m}/Cargo.toml")).parse().unwrap();
                (m, manifest)
            })
            .collect()
    }

    #[test]
    fn no_library_depends_on_what_only_binaries_use() {
        let mut offenders = Vec::new();
        for (member, manifest) in libraries() {
            let Some(deps) = manifest.get("dependencies").and_then(|d| d.as_table()) else {
                continue;
            };
            for dep in BIN_ONLY.iter().filter(|d| deps.contains_key(**d)) {
                offenders.push(format!("{member} depends on {dep}"));
            }
        }
        assert!(
            offenders.is_empty(),
            "move these to the crate's binary crate: {offenders:?}"
        );
    }

    #[test]
    fn product_libraries_show_no_internal_module() {
        let mut offenders = Vec::new();
        for name in PRODUCT_LIBRARIES {
            let path = format!("crates/{name}/src/lib.rs");
            let text = read(&path);
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let gated = i > 0 && lines[i - 1].trim_start().starts_with("#[cfg(feature");
                if line.starts_with("pub mod ") && !gated {
                    offenders.push(format!("{path}:{}: {line}", i + 1));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "make these private and re-export their API at the root: {offenders:?}"
        );
    }

    /// The quoted names in the array constant `name` of `source`.
    fn quoted_in_const(source: &str, name: &str) -> BTreeSet<String> {
        let start = source
            .find(&format!("const {name}"))
            .unwrap_or_else(|| panic!("no const {name}"));
        let body = &source[start..];
        let body = &body[body.find('=').unwrap()..body.find("];").unwrap()];
        body.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    }

    #[test]
    fn deps_checks_exactly_the_elements_the_ingest_uses() {
        let mut used = quoted_in_const(&read("crates/ingest/src/pipeline.rs"), "REQUIRED_ELEMENTS");
        let decoder = read("crates/ingest/src/dubbing/decoder.rs");
        used.extend(quoted_in_const(&decoder, "ELEMENTS"));
        // One AAC decoder is enough; deps installs the one Debian has.
        let decoders = quoted_in_const(&decoder, "AAC_DECODERS");
        let checked: BTreeSet<String> = crate::deps::REQUIREMENTS
            .iter()
            .filter_map(|r| match r.check {
                crate::deps::Check::Element(e) => Some(e.to_owned()),
                _ => None,
            })
            .collect();
        let decoders_checked: Vec<&String> = checked.intersection(&decoders).collect();
        assert_eq!(
            decoders_checked.len(),
            1,
            "deps checks one AAC decoder of {decoders:?}"
        );
        let checked: BTreeSet<String> = checked.difference(&decoders).cloned().collect();
        assert_eq!(
            checked, used,
            "cargo xtask deps and the ingest's pipelines disagree"
        );
    }
}
