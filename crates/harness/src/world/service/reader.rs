//! An independent reader of one stream's dubbed output: ffmpeg, over RTMP,
//! copying `live/<id>/out` to an FLV file each time the server makes it
//! available (the output ends with its input and resumes when the input
//! returns), until the scenario is over.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use media_tools::flv::FlvTag;
use tokio::sync::watch;

use super::until_done;
use crate::error::HarnessError;
use crate::world::server::{MediaServer, Word};

/// How long one wait for the output to (re)appear lasts before it is asked
/// again; the scenario's end stops the waiting.
const WAIT_SLICE: Duration = Duration::from_secs(30);
/// An output is read to its end; ffmpeg is given this long after the
/// scenario's end to see it.
const LAST_READ: Duration = Duration::from_secs(15);

/// One read of the output, from a publish's availability to its end.
#[derive(Debug, Clone)]
pub struct OutputRead {
    pub file: PathBuf,
    pub tags: Vec<FlvTag>,
    /// ffmpeg's exit, as it said it.
    pub exit: String,
}

/// Reads `path` every time it becomes available, until `done`.
pub(crate) async fn read_every_output(
    server: &MediaServer,
    path: String,
    dir: PathBuf,
    mut done: watch::Receiver<bool>,
) -> Result<Vec<OutputRead>, HarnessError> {
    std::fs::create_dir_all(&dir).map_err(|source| HarnessError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut reads = Vec::new();
    let mut since = Instant::now();
    loop {
        let word = tokio::select! {
            word = server.available(&path, since, WAIT_SLICE) => word,
            () = until_done(&mut done) => return Ok(reads),
        };
        match word {
            Word::Said { .. } => {}
            Word::Silent => continue,
            Word::Unknown => {
                return Err(HarnessError::Server(format!(
                    "the server cannot say when {path} is available"
                )));
            }
        }
        let file = dir.join(format!("read-{}.flv", reads.len()));
        let read = read_once(server, &path, &file, &mut done).await?;
        since = Instant::now();
        reads.push(read);
    }
}

async fn read_once(
    server: &MediaServer,
    path: &str,
    file: &Path,
    done: &mut watch::Receiver<bool>,
) -> Result<OutputRead, HarnessError> {
    let log = file.with_extension("log");
    let stderr = std::fs::File::create(&log).map_err(|source| HarnessError::Io {
        path: log.clone(),
        source,
    })?;
    let mut child = media_tools::command("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(server.url(path))
        .args(["-c", "copy", "-f", "flv"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| media_tools::ToolError::Spawn {
            program: "ffmpeg",
            source,
        })?;
    let exit = tokio::select! {
        status = child.wait() => status.map_or_else(|e| e.to_string(), |s| s.to_string()),
        () = async {
            until_done(done).await;
            tokio::time::sleep(LAST_READ).await;
        } => {
            let _ = child.kill().await;
            "killed: the output had not ended when the scenario did".to_owned()
        }
    };
    let tags = std::fs::read(file)
        .ok()
        .and_then(|bytes| media_tools::flv::read_tags(&bytes))
        .unwrap_or_default();
    Ok(OutputRead {
        file: file.to_owned(),
        tags,
        exit,
    })
}
