//! Child processes that die with their parent: a harness killed with
//! `kill -9` runs no destructor, and its ffmpeg publishers would go on
//! publishing into whatever server is left. The kernel's parent-death
//! signal ends them instead.

/// A tool's command whose process gets SIGKILL when the thread that
/// started it ends (the tokio worker threads that start tools live as long
/// as their runtime).
pub fn command(program: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes one async-signal-safe system call.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// A tool that reads a file and exits on its own (ffprobe, a decode): no
/// parent-death hook, because a hook run between fork and exec makes the
/// start a full fork, which copies the caller's page tables on its runtime
/// thread (27 ms at 600 MB; a harness probing sixty segments at once
/// stalled every publisher and proxy for over a second). Without it, std
/// starts the child with posix_spawn. Killed when its future is dropped.
pub(crate) fn one_shot(program: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command.kill_on_drop(true);
    command
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Whether `pid` has ended: gone, or a zombie waiting to be reaped.
    fn ended(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Err(_) => true,
            Ok(status) => status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
        }
    }

    #[test]
    fn a_child_ends_when_the_thread_that_started_it_ends() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let child = command("sleep").arg("60").spawn().unwrap();
                child.id().unwrap()
            })
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ended(pid) {
            assert!(
                Instant::now() < deadline,
                "sleep {pid} outlived the thread that started it"
            );
            // Asking the kernel again; its answer is what is waited on.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
