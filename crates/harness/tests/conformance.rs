//! The media-server conformance suite (`harness::conformance`), one test
//! per behaviour, against the server E2E_SERVER names (embedded by default;
//! `mediamtx` with E2E_MEDIAMTX_IMAGE; `external=...`). Run it through
//! `cargo xtask conformance`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use harness::conformance::{self, Material};
use harness::suite::{self, ServerChoice};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let server: ServerChoice = match std::env::var(suite::ENV_SERVER).unwrap_or_default().parse() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let unavailable = server.unavailable();
    if let Some(reason) = &unavailable {
        eprintln!("conformance checks skipped: {reason}");
    }
    let server = Arc::new(server);
    let trials = conformance::checks()
        .into_iter()
        .map(|check| {
            let skip = unavailable.clone().or_else(|| check.cannot_run_on(&server));
            if let Some(reason) = &skip {
                eprintln!("skipped {}: {reason}", check.name);
            }
            let server = server.clone();
            let kind = check.name.split("::").next().unwrap_or_default();
            Trial::test(check.name, move || run(&check, &server))
                .with_kind(kind)
                .with_ignored_flag(skip.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn run(check: &conformance::Check, server: &ServerChoice) -> Result<(), Failed> {
    let material = material()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let image = std::env::var(suite::ENV_MEDIAMTX_IMAGE)
        .ok()
        .filter(|i| !i.is_empty());
    let run_dir = run_dir();
    runtime
        .block_on(check.run_on(server, image.as_deref(), material, run_dir))
        .map_err(Failed::from)
}

/// The fixtures, built once for every check of this process.
fn material() -> Result<Arc<Material>, String> {
    static MATERIAL: OnceLock<Result<Arc<Material>, String>> = OnceLock::new();
    MATERIAL
        .get_or_init(|| {
            let cache = harness::workspace_root().join("fixtures").join(".cache");
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(Material::build(&cache))
                .map(Arc::new)
                .map_err(|e| format!("building the conformance fixtures: {e}"))
        })
        .clone()
}

/// One folder per process run, holding each check's server log.
fn run_dir() -> &'static std::path::Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("conformance")
            .join(std::process::id().to_string())
    })
}
