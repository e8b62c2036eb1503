//! Scale: 64 paths at 2 Mbit/s each, one publisher and one reader per path,
//! all rml_rtmp clients in this process. The server's share is measured from
//! the CPU time of its own threads (named `rtmp-server`), so the clients'
//! work is not counted. Target: < 10 % of one core; memory about one GOP
//! per path. Run with `cargo bench -p rtmp-server --bench paths`.

mod client;

use std::time::{Duration, Instant};

use client::{ANALYSIS_MS, Client, video};
use rtmp_server::{RtmpServer, ServerConfig};

const PATHS: usize = 64;
const FPS: u64 = 30;
/// 2 Mbit/s at 30 fps.
const FRAME_BYTES: usize = 2_000_000 / 8 / FPS as usize;
const GOP_FRAMES: u64 = 60;
const WARMUP: Duration = Duration::from_secs(3);
const MEASURE: Duration = Duration::from_secs(10);

/// CPU seconds spent so far by this process's threads called `name`.
fn thread_cpu_seconds(name: &str) -> f64 {
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if &stat[open + 1..close] != name {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        ticks += fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    }
    ticks as f64 / ticks_per_second
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let server = RtmpServer::start(ServerConfig::default()).expect("server");
    let rss_before = rss_kib();
    let stop_at = Instant::now() + WARMUP + MEASURE;
    let mut threads = Vec::new();
    for path in 0..PATHS {
        let mut publisher = Client::publisher(&server, &format!("live/p{path}"), "in");
        let mut reader = Client::reader(&server, &format!("live/p{path}"), "in");
        threads.push(std::thread::spawn(move || {
            let start = Instant::now();
            let mut frame = 1u64;
            while Instant::now() < stop_at {
                // Timestamps go on after the analysed lead-in; the reader's
                // video starts at the first IDR.
                publisher.publish_video(
                    video(frame, frame % GOP_FRAMES == 1, FRAME_BYTES),
                    ANALYSIS_MS + (frame * 1000 / FPS) as u32,
                );
                frame += 1;
                // A live encoder's pace: the next frame is due at frame/FPS.
                let due = start + Duration::from_millis(frame * 1000 / FPS);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }));
        threads.push(std::thread::spawn(move || {
            use std::io::Read;
            reader
                .socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            // Read and decode until the server closes the path at the end.
            while let Ok(n @ 1..) = reader.socket.read(&mut reader.buf) {
                let results = reader.session.handle_input(&reader.buf[..n]).expect("valid RTMP");
                reader.apply(results);
            }
        }));
    }
    std::thread::sleep(WARMUP);
    let cpu_start = thread_cpu_seconds("rtmp-server");
    let measured_from = Instant::now();
    std::thread::sleep(MEASURE);
    let cpu = thread_cpu_seconds("rtmp-server") - cpu_start;
    let share = cpu / measured_from.elapsed().as_secs_f64();
    let rss_loaded = rss_kib();
    for t in threads {
        let _ = t.join();
    }
    let gop_kib = GOP_FRAMES * FRAME_BYTES as u64 / 1024;
    println!(
        "{PATHS} paths at 2 Mbit/s with one reader each: server threads used {:.1} % of one core \
         ({cpu:.2} CPU-s over {:.1} s); target < 10 %: {}",
        share * 100.0,
        measured_from.elapsed().as_secs_f64(),
        if share < 0.10 { "met" } else { "MISSED" }
    );
    println!(
        "process RSS grew by {} KiB ({} KiB per path, clients included); one GOP is {gop_kib} KiB",
        rss_loaded.saturating_sub(rss_before),
        rss_loaded.saturating_sub(rss_before) / PATHS as u64
    );
    server.shutdown();
}
