//! The machine and tool versions a report was measured on, and the date.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub ffmpeg: String,
    pub gstreamer: String,
}

impl Machine {
    pub fn detect() -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        let os_release = read("/etc/os-release");
        Self {
            cpu: field(&cpuinfo, "model name", ':').unwrap_or_else(|| "unknown CPU".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: field(&meminfo, "MemTotal", ':')
                .and_then(|v| v.trim_end_matches(" kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
            os: field(&os_release, "PRETTY_NAME", '=')
                .map(|v| v.trim_matches('"').to_owned())
                .unwrap_or_else(|| "unknown OS".into()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            ffmpeg: first_line("ffmpeg", &["-version"]),
            gstreamer: first_line("gst-launch-1.0", &["--version"]),
        }
    }

    /// A machine for tests.
    #[cfg(test)]
    pub fn fixed(cpu: &str, cores: usize, memory_gib: f64) -> Self {
        Self {
            cpu: cpu.into(),
            cores,
            memory_gib,
            os: "os".into(),
            kernel: "k".into(),
            ffmpeg: "ffmpeg".into(),
            gstreamer: "gst".into(),
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {:.0} GiB, {}, Linux {}",
            self.cpu, self.cores, self.memory_gib, self.os, self.kernel
        )
    }

    pub fn tools(&self) -> String {
        format!("{}; {}", self.ffmpeg, self.gstreamer)
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn field(text: &str, key: &str, separator: char) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(separator)?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

fn first_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .map(|l| l.split(" Copyright").next().unwrap_or(&l).trim().to_owned())
        .unwrap_or_else(|| format!("{program}: not found"))
}

/// `YYYY-MM-DD HH:MM` in UTC, without a date crate.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

fn utc(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let (hh, mm) = ((unix_secs % 86_400) / 3600, (unix_secs % 3600) / 60);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_764_160_980), "2025-11-26 12:43");
    }

    #[test]
    fn fields_of_proc_files() {
        let text = "processor\t: 0\nmodel name\t: Some CPU @ 2GHz\n";
        assert_eq!(field(text, "model name", ':').as_deref(), Some("Some CPU @ 2GHz"));
        assert_eq!(
            field("PRETTY_NAME=\"Debian\"", "PRETTY_NAME", '=').as_deref(),
            Some("\"Debian\"")
        );
    }
}
