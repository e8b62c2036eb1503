//! Prerequisites: what must be on the machine, how to tell, and which
//! Debian package brings it.

use anyhow::{Result, bail};
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Deps {
    /// Only report; never install
    #[arg(long)]
    check: bool,
}

impl Deps {
    pub fn run(self, sh: &Shell) -> Result<()> {
        if self.check {
            let missing = missing(sh);
            report(&missing);
            if !missing.is_empty() {
                bail!("missing prerequisites; run: {}", install_command(&missing, false));
            }
            return Ok(());
        }
        ensure(sh)?;
        // The echo STS peer the sts crate's tests talk to.
        let python = crate::sts_peer::ensure_echo_peer(sh)?;
        eprintln!("echo STS peer: {}", python.display());
        Ok(())
    }
}

pub(crate) struct Requirement {
    what: &'static str,
    package: &'static str,
    pub(crate) check: Check,
}

pub(crate) enum Check {
    PkgConfig(&'static str),
    Element(&'static str),
    Program(&'static str),
    File(&'static str),
}

pub(crate) const REQUIREMENTS: &[Requirement] = &[
    Requirement {
        what: "pkg-config",
        package: "pkg-config",
        check: Check::Program("pkg-config"),
    },
    Requirement {
        what: "pkg-config gstreamer-1.0",
        package: "libgstreamer1.0-dev",
        check: Check::PkgConfig("gstreamer-1.0"),
    },
    Requirement {
        what: "pkg-config gstreamer-app-1.0",
        package: "libgstreamer-plugins-base1.0-dev",
        check: Check::PkgConfig("gstreamer-app-1.0"),
    },
    Requirement {
        what: "gst-inspect-1.0",
        package: "gstreamer1.0-tools",
        check: Check::Program("gst-inspect-1.0"),
    },
    Requirement {
        what: "element rtmpsrc",
        package: "gstreamer1.0-plugins-bad",
        check: Check::Element("rtmpsrc"),
    },
    Requirement {
        what: "element rtmp2src",
        package: "gstreamer1.0-plugins-bad",
        check: Check::Element("rtmp2src"),
    },
    Requirement {
        what: "element h264parse",
        package: "gstreamer1.0-plugins-bad",
        check: Check::Element("h264parse"),
    },
    Requirement {
        what: "element flvdemux",
        package: "gstreamer1.0-plugins-good",
        check: Check::Element("flvdemux"),
    },
    Requirement {
        what: "element aacparse",
        package: "gstreamer1.0-plugins-good",
        check: Check::Element("aacparse"),
    },
    Requirement {
        what: "element queue",
        package: "libgstreamer1.0-0",
        check: Check::Element("queue"),
    },
    Requirement {
        what: "element appsink",
        package: "gstreamer1.0-plugins-base",
        check: Check::Element("appsink"),
    },
    Requirement {
        what: "element capsfilter",
        package: "libgstreamer1.0-0",
        check: Check::Element("capsfilter"),
    },
    Requirement {
        what: "element appsrc",
        package: "gstreamer1.0-plugins-base",
        check: Check::Element("appsrc"),
    },
    Requirement {
        what: "element tsdemux",
        package: "gstreamer1.0-plugins-bad",
        check: Check::Element("tsdemux"),
    },
    Requirement {
        what: "element faad",
        package: "gstreamer1.0-plugins-bad",
        check: Check::Element("faad"),
    },
    Requirement {
        what: "element audioconvert",
        package: "gstreamer1.0-plugins-base",
        check: Check::Element("audioconvert"),
    },
    Requirement {
        what: "element audioresample",
        package: "gstreamer1.0-plugins-base",
        check: Check::Element("audioresample"),
    },
    Requirement {
        what: "ffmpeg",
        package: "ffmpeg",
        check: Check::Program("ffmpeg"),
    },
    // The HTML report's test opens a real run's report in a real browser.
    Requirement {
        what: "chromium (headless, for the report test)",
        package: "chromium",
        check: Check::Program("chromium"),
    },
    Requirement {
        what: "ffprobe",
        package: "ffmpeg",
        check: Check::Program("ffprobe"),
    },
    // A shell that runs anywhere, a FROM-scratch MediaMTX image included:
    // the hook conformance checks run the same hook command on every server.
    Requirement {
        what: "busybox, statically linked (the hook checks' shell)",
        package: "busybox-static",
        check: Check::File("/bin/busybox"),
    },
    // The cluster's leases live in JetStream: its tests start a real one.
    Requirement {
        what: "nats-server (JetStream, for the cluster's leases)",
        package: "nats-server",
        check: Check::File("/usr/sbin/nats-server"),
    },
];

/// What `cargo xtask e2e --server nginx` needs beyond [`REQUIREMENTS`].
pub(crate) const NGINX: &[Requirement] = &[
    Requirement {
        what: "nginx",
        package: "nginx",
        check: Check::Program("nginx"),
    },
    Requirement {
        what: "the nginx-rtmp module",
        package: "libnginx-mod-rtmp",
        check: Check::File("/usr/lib/nginx/modules/ngx_rtmp_module.so"),
    },
];

fn present(sh: &Shell, check: &Check) -> bool {
    let quiet = |c: xshell::Cmd<'_>| c.quiet().ignore_stdout().ignore_stderr().run().is_ok();
    match check {
        Check::Program(name) => quiet(cmd!(sh, "sh -c 'command -v \"$0\"' {name}")),
        Check::PkgConfig(module) => quiet(cmd!(sh, "pkg-config --exists {module}")),
        Check::Element(element) => quiet(cmd!(sh, "gst-inspect-1.0 --exists {element}")),
        Check::File(path) => std::path::Path::new(path).exists(),
    }
}

fn missing(sh: &Shell) -> Vec<&'static Requirement> {
    missing_of(sh, REQUIREMENTS)
}

fn missing_of(sh: &Shell, requirements: &'static [Requirement]) -> Vec<&'static Requirement> {
    requirements.iter().filter(|r| !present(sh, &r.check)).collect()
}

fn packages(missing: &[&Requirement]) -> Vec<&'static str> {
    let mut packages: Vec<&str> = missing.iter().map(|r| r.package).collect();
    packages.sort_unstable();
    packages.dedup();
    packages
}

fn install_command(missing: &[&Requirement], as_root: bool) -> String {
    let sudo = if as_root { "" } else { "sudo " };
    format!(
        "{sudo}apt-get update && {sudo}apt-get install -y --no-install-recommends {}",
        packages(missing).join(" ")
    )
}

fn report(missing: &[&Requirement]) {
    for r in missing {
        eprintln!("missing: {} (Debian package {})", r.what, r.package);
    }
}

fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0")
}

/// Makes sure every prerequisite is present, installing with apt as root.
pub fn ensure(sh: &Shell) -> Result<()> {
    ensure_all(sh, REQUIREMENTS)
}

/// [`ensure`] for nginx-rtmp (`--server nginx`).
pub fn ensure_nginx(sh: &Shell) -> Result<()> {
    ensure_all(sh, NGINX)
}

fn ensure_all(sh: &Shell, requirements: &'static [Requirement]) -> Result<()> {
    let missing = missing_of(sh, requirements);
    if missing.is_empty() {
        return Ok(());
    }
    report(&missing);
    let has_apt = present(sh, &Check::Program("apt-get"));
    if !is_root(sh) || !has_apt {
        bail!(
            "missing prerequisites; install them with:\n    {}",
            install_command(&missing, false)
        );
    }
    let packages = packages(&missing);
    let listed = packages.join(" ");
    eprintln!("installing: {listed}");
    cmd!(sh, "apt-get update -qq").run()?;
    cmd!(sh, "apt-get install -y -qq --no-install-recommends {packages...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    let still = missing_of(sh, requirements);
    if !still.is_empty() {
        report(&still);
        bail!("prerequisites still missing after installing: {listed}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_command_names_each_package_once() {
        let missing: Vec<&Requirement> = REQUIREMENTS.iter().collect();
        let command = install_command(&missing, false);
        assert_eq!(
            command.matches("gstreamer1.0-plugins-bad").count(),
            1,
            "{command}"
        );
        assert!(
            command.starts_with("sudo apt-get update && sudo apt-get install"),
            "{command}"
        );
        assert!(command.contains("ffmpeg"));
    }
}
