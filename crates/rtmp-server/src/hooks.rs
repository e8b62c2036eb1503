//! MediaMTX's path hooks, as 1.20.1 runs them (`internal/hooks`,
//! `internal/externalcmd`): `runOnAvailable` starts when a path becomes
//! available (after the publisher's analysis, before the path's
//! "available and online" line), restarted 5 s after each exit with
//! `runOnAvailableRestart`; when the path becomes unavailable it is stopped
//! (SIGINT to its process group, then waited for) and `runOnUnavailable` is
//! launched, never stopped. `runOnReady`, `runOnReadyRestart` and
//! `runOnNotReady` are their deprecated names (read by the binary's
//! configuration).
//!
//! A command line is split as a shell would split it, without a shell; each
//! part then has `$VAR` and `${VAR}` replaced from the hook's environment
//! (`MTX_PATH`, `RTSP_PATH`, `RTSP_PORT`, `MTX_QUERY` (URL-escaped again),
//! `MTX_SOURCE_TYPE`, `MTX_SOURCE_ID`), else from the server's. The command
//! gets the server's environment plus the hook's; what it prints goes to the
//! server's output as it is (MediaMTX's children inherit its stdout). On
//! Unix MediaMTX 1.20.1 reads every exit as code 0: a restarted command
//! logs `command exited with code 0` whatever its code, and a command that
//! is not restarted logs nothing when it exits, only when it cannot start.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::log::LogSink;

/// MediaMTX waits this long before starting a restarted command again.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

/// The hooks every path runs (MediaMTX's `pathDefaults`); empty commands
/// are not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHooks {
    pub run_on_available: String,
    pub run_on_available_restart: bool,
    pub run_on_unavailable: String,
    /// What `RTSP_PORT` says: the port of MediaMTX's `rtspAddress`.
    pub rtsp_port: String,
}

impl Default for PathHooks {
    fn default() -> Self {
        Self {
            run_on_available: String::new(),
            run_on_available_restart: false,
            run_on_unavailable: String::new(),
            rtsp_port: "8554".to_owned(),
        }
    }
}

/// Who made the path available, for the hook's environment.
pub(crate) struct Source<'a> {
    pub path: &'a str,
    /// The publisher's URL query, as it came.
    pub query: &'a str,
    /// The publisher's connection id (its UUID).
    pub id: String,
}

/// What must happen when the path stops being available.
pub(crate) struct Unavailable {
    hooks: PathHooks,
    env: BTreeMap<String, String>,
    log: LogSink,
    path: String,
    running: Option<oneshot::Sender<()>>,
}

impl Unavailable {
    /// Stops `runOnAvailable` and launches `runOnUnavailable`.
    pub fn fire(mut self) {
        if let Some(terminate) = self.running.take() {
            let _ = terminate.send(());
            self.log.path(&self.path, "runOnAvailable command stopped");
        }
        if !self.hooks.run_on_unavailable.is_empty() {
            self.log.path(&self.path, "runOnUnavailable command launched");
            let command = Command {
                line: self.hooks.run_on_unavailable.clone(),
                env: self.env.clone(),
                log: self.log.clone(),
                path: self.path.clone(),
                restart: false,
                says_exit: false,
            };
            // Launched and left to end on its own: its stop never comes.
            let (keep, terminate) = oneshot::channel::<()>();
            tokio::spawn(async move {
                let _never_sent = keep;
                command.run(terminate).await;
            });
        }
    }
}

/// Starts the path's `runOnAvailable`; what to do when it becomes
/// unavailable.
pub(crate) fn on_available(hooks: &PathHooks, source: &Source<'_>, log: &LogSink) -> Unavailable {
    let env = BTreeMap::from([
        ("MTX_PATH".to_owned(), source.path.to_owned()),
        ("RTSP_PATH".to_owned(), source.path.to_owned()),
        ("RTSP_PORT".to_owned(), hooks.rtsp_port.clone()),
        ("MTX_QUERY".to_owned(), query_escape(source.query)),
        ("MTX_SOURCE_TYPE".to_owned(), "rtmpConn".to_owned()),
        ("MTX_SOURCE_ID".to_owned(), source.id.clone()),
    ]);
    let mut running = None;
    if !hooks.run_on_available.is_empty() {
        log.path(source.path, "runOnAvailable command started");
        let (terminate_tx, terminate) = oneshot::channel();
        let command = Command {
            line: hooks.run_on_available.clone(),
            env: env.clone(),
            log: log.clone(),
            path: source.path.to_owned(),
            restart: hooks.run_on_available_restart,
            says_exit: true,
        };
        tokio::spawn(command.run(terminate));
        running = Some(terminate_tx);
    }
    Unavailable {
        hooks: hooks.clone(),
        env,
        log: log.clone(),
        path: source.path.to_owned(),
        running,
    }
}

struct Command {
    line: String,
    env: BTreeMap<String, String>,
    log: LogSink,
    path: String,
    restart: bool,
    /// `runOnAvailable` logs its exits; `runOnUnavailable` does not.
    says_exit: bool,
}

enum Ended {
    /// It exited (on Unix, MediaMTX reads every exit as code 0).
    Exited,
    /// It could not start.
    Failed(String),
    Terminated,
}

impl Command {
    async fn run(self, mut terminate: oneshot::Receiver<()>) {
        loop {
            let ended = self.once(&mut terminate).await;
            let said = match ended {
                Ended::Terminated => return,
                Ended::Failed(e) => Some(e),
                Ended::Exited if self.restart => Some("command exited with code 0".to_owned()),
                Ended::Exited => None,
            };
            if let Some(said) = said
                && self.says_exit
            {
                self.log
                    .path(&self.path, format_args!("runOnAvailable command exited: {said}"));
            }
            if !self.restart {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(RESTART_PAUSE) => {}
                _ = &mut terminate => return,
            }
        }
    }

    async fn once(&self, terminate: &mut oneshot::Receiver<()>) -> Ended {
        let parts = match shell_words::split(&self.line) {
            Ok(parts) if !parts.is_empty() => parts,
            Ok(_) => return Ended::Failed("empty command".to_owned()),
            Err(e) => return Ended::Failed(e.to_string()),
        };
        let parts: Vec<String> = parts.iter().map(|p| expand(p, &self.env)).collect();
        let mut command = tokio::process::Command::new(&parts[0]);
        command
            .args(&parts[1..])
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a stop reaches its children.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Ended::Failed(spawn_error(&parts[0], &e)),
        };
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let log = self.log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    log.raw(line);
                }
            });
        }
        tokio::select! {
            _ = child.wait() => Ended::Exited,
            _ = terminate => {
                if let Some(pid) = child.id() {
                    interrupt_group(pid);
                }
                // MediaMTX waits for the command however long it takes.
                let _ = child.wait().await;
                Ended::Terminated
            }
        }
    }
}

/// SIGINT to the process group `pid` leads, as MediaMTX sends it.
fn interrupt_group(pid: u32) {
    let Ok(pid) = i32::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it
    // touches no memory of ours.
    unsafe {
        libc::kill(-pid, libc::SIGINT);
    }
}

/// Go's words for a command that could not start.
fn spawn_error(program: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound && !program.contains('/') {
        format!("exec: \"{program}\": executable file not found in $PATH")
    } else {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            _ => e.to_string(),
        };
        format!("fork/exec {program}: {reason}")
    }
}

/// `$VAR` and `${VAR}` from `env`, else from the server's environment;
/// an unknown variable is empty (Go's `os.Expand`).
fn expand(part: &str, env: &BTreeMap<String, String>) -> String {
    let lookup = |name: &str| {
        env.get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut rest = part;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => {
                    out.push_str(&lookup(&braced[..end]));
                    rest = &braced[end + 1..];
                }
                // An unclosed `${` is dropped, as os.Expand drops it.
                None => rest = "",
            }
            continue;
        }
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 {
            // `$` not followed by a name is dropped with the character
            // after it only for Go's special names; keep it simple: keep `$`.
            out.push('$');
            rest = after;
        } else {
            out.push_str(&lookup(&after[..name_len]));
            rest = &after[name_len..];
        }
    }
    out.push_str(rest);
    out
}

/// Go's `url.QueryEscape`: what MediaMTX puts in `MTX_QUERY`.
fn query_escape(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_expanded_from_the_hook_then_the_server() {
        let env = BTreeMap::from([("MTX_PATH".to_owned(), "live/a/in".to_owned())]);
        assert_eq!(expand("$MTX_PATH", &env), "live/a/in");
        assert_eq!(expand("p=${MTX_PATH}/x", &env), "p=live/a/in/x");
        assert_eq!(expand("$NOT_SET_ANYWHERE_42", &env), "");
        assert_eq!(expand("cost: 5$", &env), "cost: 5$");
    }

    #[test]
    fn the_query_is_escaped_as_go_escapes_it() {
        assert_eq!(query_escape("a=1&b=2"), "a%3D1%26b%3D2");
        assert_eq!(query_escape("x y~z"), "x+y~z");
    }

    #[test]
    fn a_command_that_cannot_start_is_said_in_go_s_words() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            spawn_error("curl", &missing),
            "exec: \"curl\": executable file not found in $PATH"
        );
        assert_eq!(
            spawn_error("/bin/curl", &missing),
            "fork/exec /bin/curl: no such file or directory"
        );
    }
}
