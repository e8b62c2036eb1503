//! Child processes with OS accounting: every contender is spawned through
//! here, so each one's CPU time and peak RSS come from the same source.
//!
//! - CPU: user + system time from the kernel's rusage of the reaped child
//!   (`wait4`), exact.
//! - Peak RSS: the kernel's high-water mark `VmHWM` of the child's own
//!   address space, read from /proc/<pid>/status until it exits. Not
//!   `ru_maxrss`: Linux folds the *parent's* RSS at the moment of exec into
//!   it, so every child of a 70-MB bench would report at least 70 MB. A
//!   high-water mark only grows, so sampling misses at most the growth of
//!   the last interval before exit. The interval starts at
//!   [`FIRST_SAMPLE_AFTER`] and doubles up to [`SAMPLE_EVERY`]: the first
//!   read comes right after exec, when the new image has barely mapped
//!   anything, and a child that lives less than one long interval must
//!   still be read once it has grown.
//! - Current RSS: `VmRSS` on demand ([`Process::rss_kib`]), for the soak's
//!   RSS-over-time figure.
//!
//! A child is killed when its handle is dropped (error paths, Ctrl-C) and,
//! through `PR_SET_PDEATHSIG`, when the bench process dies without running
//! destructors (SIGKILL). The death signal is tied to the spawning *thread*,
//! so children must be spawned from a thread that lives as long as the run
//! (the bench's main thread: its runtime is current-thread).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::oneshot;

/// How often a running child's `VmHWM` is read once it has run a while.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// The first interval between reads; each next one is twice as long.
const FIRST_SAMPLE_AFTER: Duration = Duration::from_millis(2);

/// What the kernel accounted for a child once it was reaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User plus system CPU time, seconds.
    pub cpu_s: f64,
    /// Peak resident set size (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
    /// Exited with status 0.
    pub success: bool,
    pub ended_at: Instant,
}

pub struct Process {
    pid: libc::pid_t,
    label: String,
    /// Set under the lock when the child is reaped, so `kill` can never hit
    /// a recycled pid.
    reaped: Arc<Mutex<bool>>,
    exit: Option<oneshot::Receiver<Usage>>,
    usage: Option<Usage>,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(mut command: Command, label: &str, log: &Path) -> Result<Self> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("duplicating a log handle")?)
            .stderr(log_file);
        // SAFETY: prctl is async-signal-safe and touches no shared state.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {label} ({:?})", command.get_program()))?;
        let pid = child.id() as libc::pid_t;
        // The std handle would reap without rusage; our waiter thread reaps.
        drop(child);
        let reaped = Arc::new(Mutex::new(false));
        let (tx, exit) = oneshot::channel();
        let waiter_reaped = reaped.clone();
        std::thread::Builder::new()
            .name(format!("reap-{pid}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                let usage = reap(pid, &waiter_reaped);
                let _ = tx.send(usage);
            })
            .context("starting a reaper thread")?;
        Ok(Self {
            pid,
            label: label.to_owned(),
            reaped,
            exit: Some(exit),
            usage: None,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Waits for the child to exit and returns its accounting. Cancel-safe
    /// (a wait abandoned by a timeout can be resumed) and repeatable.
    pub async fn wait(&mut self) -> Result<Usage> {
        if let Some(usage) = self.usage {
            return Ok(usage);
        }
        let exit = self.exit.as_mut().context("the reaper is gone")?;
        let usage = exit
            .await
            .with_context(|| format!("the reaper of {} vanished", self.label))?;
        self.exit = None;
        self.usage = Some(usage);
        Ok(usage)
    }

    /// The child's resident set (`VmRSS`) now, KiB; `None` once it has
    /// exited (a zombie has no address space). Read under the reaper's lock,
    /// so the pid cannot have been recycled.
    pub fn rss_kib(&self) -> Option<u64> {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status_kib(&status, "VmRSS")
    }

    /// Sends `signal` unless the child has already been reaped.
    pub fn signal(&self, signal: libc::c_int) {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*reaped {
            // SAFETY: plain syscall on a pid we own and have not reaped.
            unsafe {
                libc::kill(self.pid, signal);
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
    }
}

/// Samples the child's peak RSS until it exits, without reaping it (so
/// the pid stays ours), then reaps under the lock with `wait4`, which
/// returns the child's CPU times.
fn reap(pid: libc::pid_t, reaped: &Mutex<bool>) -> Usage {
    let status_file = format!("/proc/{pid}/status");
    let mut peak_rss_kib = 0;
    let mut interval = FIRST_SAMPLE_AFTER;
    loop {
        // SAFETY: zeroed siginfo is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
            )
        };
        // SAFETY: waitid filled (or left zeroed) the siginfo.
        let exited = rc != 0 || unsafe { info.si_pid() } != 0;
        if exited {
            break;
        }
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .as_deref()
            .and_then(|s| status_kib(s, "VmHWM"))
        {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(SAMPLE_EVERY);
    }
    let mut flag = reaped.lock().unwrap_or_else(|e| e.into_inner());
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    *flag = true;
    let ended_at = Instant::now();
    if rc != pid {
        return Usage {
            cpu_s: 0.0,
            peak_rss_kib,
            success: false,
            ended_at,
        };
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib,
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        ended_at,
    }
}

/// `<key>:    12345 kB` (`VmHWM`, `VmRSS`) from /proc/<pid>/status.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    line[key.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn accounts_cpu_and_memory_of_a_child() {
        let dir = tempfile_dir();
        let mut command = Command::new("sh");
        // Burn a little CPU so the figure is not zero, for less time than
        // one long sampling interval: a short life must still be read.
        command.args(["-c", "i=0; while [ $i -lt 50000 ]; do i=$((i+1)); done"]);
        let mut process = Process::spawn(command, "sh", &dir.join("sh.log")).unwrap();
        let usage = process.wait().await.unwrap();
        assert!(usage.success);
        assert!(usage.cpu_s > 0.0, "{usage:?}");
        assert!(usage.peak_rss_kib > 100, "{usage:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_kills_the_child() {
        let dir = tempfile_dir();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut process = Process::spawn(command, "sleep", &dir.join("sleep.log")).unwrap();
        // Keep the reaper's report, then drop the handle: the reaper
        // reports the child's end, which a 30-s sleep only reaches if killed.
        let exit = process.exit.take().unwrap();
        drop(process);
        let usage = tokio::time::timeout(std::time::Duration::from_secs(10), exit)
            .await
            .expect("the child ends once its handle is dropped")
            .unwrap();
        assert!(!usage.success, "killed, not finished: {usage:?}");
    }

    #[test]
    fn reads_the_high_water_mark_and_the_resident_set() {
        let status = "Name:\tffmpeg\nVmPeak:\t  300000 kB\nVmHWM:\t   61234 kB\nVmRSS:\t 50000 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(61234));
        assert_eq!(status_kib(status, "VmRSS"), Some(50000));
        assert_eq!(status_kib("Name: zombie\n", "VmHWM"), None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reads_a_running_childs_resident_set() {
        let dir = tempfile_dir();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut process = Process::spawn(command, "sleep", &dir.join("rss.log")).unwrap();
        // Any size: read in the middle of exec, the new image may hold a few pages.
        let rss = process.rss_kib().expect("a running child has a resident set");
        assert!(rss > 0, "{rss} KiB");
        process.signal(libc::SIGKILL);
        process.wait().await.unwrap();
        assert_eq!(process.rss_kib(), None, "a reaped child has none");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bench-process-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
