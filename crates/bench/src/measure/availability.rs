//! When segment files become available: the first close-after-write (a
//! file written in place, as ffmpeg's segment muxer and splitmuxsink do) or
//! moved-to (a file renamed into place, as our ingest does) of each file in
//! the watched directories, stamped with the bench's monotonic clock, the
//! same clock that stamps the publisher's frames.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result};
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

/// How often the watcher thread checks for the stop request.
const POLL_MS: libc::c_int = 50;

/// First-availability instant of every file that appeared, by full path.
pub type Appearances = HashMap<PathBuf, Instant>;

/// What the watcher has seen so far, and a signal for each addition.
type Seen = Arc<(Mutex<Appearances>, Condvar)>;

pub struct AvailabilityWatch {
    stop: Arc<AtomicBool>,
    seen: Seen,
    thread: Option<JoinHandle<Result<()>>>,
}

impl AvailabilityWatch {
    /// Watches `dirs` (which must exist) from now on. Hidden files (names
    /// starting with '.') are in-progress temporaries and are ignored.
    pub fn start(dirs: &[PathBuf]) -> Result<Self> {
        let inotify = Inotify::init().context("inotify_init")?;
        let mut by_wd: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
        for dir in dirs {
            let wd = inotify
                .watches()
                .add(dir, WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO)
                .with_context(|| format!("watching {}", dir.display()))?;
            by_wd.insert(wd, dir.clone());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Seen::default();
        let (thread_stop, thread_seen) = (stop.clone(), seen.clone());
        let thread = std::thread::Builder::new()
            .name("availability".into())
            .spawn(move || watch(inotify, by_wd, &thread_stop, &thread_seen))
            .context("starting the availability watcher")?;
        Ok(Self {
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// Waits until at least `count` files have appeared; `false` if the
    /// deadline passed first.
    #[cfg(test)]
    pub fn wait_for(&self, count: usize, timeout: std::time::Duration) -> bool {
        let (seen, added) = &*self.seen;
        let guard = seen.lock().expect("availability lock");
        let (guard, _) = added
            .wait_timeout_while(guard, timeout, |seen| seen.len() < count)
            .expect("availability lock");
        guard.len() >= count
    }

    /// Stops watching and returns what appeared.
    pub fn finish(mut self) -> Result<Appearances> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("finish is called once")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the availability watcher panicked"))??;
        Ok(std::mem::take(
            &mut *self.seen.0.lock().expect("availability lock"),
        ))
    }
}

impl Drop for AvailabilityWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(
    mut inotify: Inotify,
    by_wd: HashMap<WatchDescriptor, PathBuf>,
    stop: &AtomicBool,
    seen: &Seen,
) -> Result<()> {
    let (appearances, added) = &**seen;
    let mut buffer = vec![0u8; 64 * 1024];
    let mut pollfd = libc::pollfd {
        fd: inotify.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pollfd, 1, POLL_MS) };
        if ready <= 0 {
            continue;
        }
        // Stamp before parsing: the batch became readable at this moment.
        let now = Instant::now();
        let events = match inotify.read_events(&mut buffer) {
            Ok(events) => events,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e).context("reading inotify events"),
        };
        for event in events {
            if event.mask.contains(EventMask::Q_OVERFLOW) {
                tracing::warn!("inotify queue overflowed: some segment times are missing");
                continue;
            }
            let (Some(name), Some(dir)) = (event.name, by_wd.get(&event.wd)) else {
                continue;
            };
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            appearances
                .lock()
                .expect("availability lock")
                .entry(dir.join(name))
                .or_insert(now);
            added.notify_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_written_and_renamed_files_but_not_temporaries() {
        let dir = std::env::temp_dir().join(format!("bench-avail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let watch = AvailabilityWatch::start(std::slice::from_ref(&dir)).unwrap();
        let before = Instant::now();
        std::fs::write(dir.join("o000.ts"), b"x").unwrap();
        std::fs::write(dir.join(".video_000000.ts.part"), b"x").unwrap();
        std::fs::rename(dir.join(".video_000000.ts.part"), dir.join("video_000000.ts")).unwrap();
        assert!(
            watch.wait_for(2, std::time::Duration::from_secs(10)),
            "both files seen"
        );
        let seen = watch.finish().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut names: Vec<_> = seen
            .keys()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["o000.ts", "video_000000.ts"]);
        assert!(seen.values().all(|t| *t >= before));
    }
}
