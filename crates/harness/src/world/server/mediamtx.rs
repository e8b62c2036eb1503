//! MediaMTX as a testcontainers module: the production media server, one
//! container per run, removed on every exit path (`ContainerAsync` removes
//! it on drop; the harness also removes it explicitly).
//!
//! The plain image is built FROM scratch and declares no ports, so the
//! module exposes RTMP, API and metrics itself, mounts a configuration that
//! lets the API and metrics answer through a port mapping, and waits for the
//! RTMP listener line (`INF [RTMP] ` appears only there at start-up, in every
//! version).
//!
//! The world starts it through [`super::MediaServer::container`]: the
//! module's ports are mapped to free host ports, read back from the
//! running container.

use std::borrow::Cow;
use std::collections::BTreeMap;

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::{CopyToContainer, Image};

pub(crate) const NAME: &str = "bluenviron/mediamtx";
/// A pinned release; the facts this module relies on were read from 1.19-1.20.
pub(crate) const TAG: &str = "1.20.1";
pub(crate) const RTMP_PORT: ContainerPort = ContainerPort::Tcp(1935);
pub(crate) const API_PORT: ContainerPort = ContainerPort::Tcp(9997);
pub(crate) const METRICS_PORT: ContainerPort = ContainerPort::Tcp(9998);
/// Printed once, when the RTMP listener is up (v1.19+: "started with
/// listener on", older: "listener opened on").
pub(crate) const READY_LINE: &str = "INF [RTMP] ";
/// Printed once the API listens, after RTMP (and, on a real MediaMTX, after
/// its other listeners): Docker's port proxy accepts connections before
/// that and then drops them, so a request sent earlier gets no answer.
pub(crate) const API_READY_LINE: &str = "INF [API] ";
pub(crate) const CONFIG_PATH: &str = "/mediamtx.yml";
/// The repository's configuration (also used by docker-compose.e2e.yml).
pub(crate) const CONFIG: &str = include_str!("../../../../../mediamtx.yml");

const PORTS: [ContainerPort; 3] = [RTMP_PORT, API_PORT, METRICS_PORT];

#[derive(Debug, Clone)]
pub(crate) struct MediaMtx {
    name: String,
    tag: String,
    env: BTreeMap<String, String>,
    config: Option<CopyToContainer>,
    /// Files put into the container (a hook's program).
    files: Vec<CopyToContainer>,
}

impl Default for MediaMtx {
    fn default() -> Self {
        // The environment repeats the essentials of the mounted file, so a
        // replaced configuration still serves RTMP, the API and metrics.
        let env = [
            ("MTX_RTMP", "yes"),
            ("MTX_RTMPADDRESS", ":1935"),
            ("MTX_API", "yes"),
            ("MTX_APIADDRESS", ":9997"),
            ("MTX_METRICS", "yes"),
            ("MTX_METRICSADDRESS", ":9998"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            name: NAME.to_owned(),
            tag: TAG.to_owned(),
            env,
            config: Some(CopyToContainer::new(CONFIG.as_bytes().to_vec(), CONFIG_PATH)),
            files: Vec::new(),
        }
    }
}

impl MediaMtx {
    /// Sets a MediaMTX setting through its environment (`MTX_<KEY>`), e.g.
    /// `with_env("MTX_PATHDEFAULTS_OVERRIDEPUBLISHER", "no")`.
    pub(crate) fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Without the repository's configuration file: MediaMTX's defaults,
    /// with RTMP and the API switched on through the environment only (so
    /// the API keeps its default access rule: loopback only).
    pub(crate) fn without_config(mut self) -> Self {
        self.config = None;
        self
    }

    /// Copies the host's `source` into the container at `target`, its mode
    /// kept (an executable stays one).
    pub(crate) fn with_file(mut self, source: &std::path::Path, target: &str) -> Self {
        self.files.push(CopyToContainer::new(source.to_owned(), target));
        self
    }

    /// Another image, e.g. a local stand-in: `NAME:TAG` (tag defaults to latest).
    pub(crate) fn with_image(mut self, reference: &str) -> Self {
        let (name, tag) = match reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((name, tag)) => (name, tag),
            None => (reference, "latest"),
        };
        self.name = name.to_owned();
        self.tag = tag.to_owned();
        self
    }
}

impl Image for MediaMtx {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![
            WaitFor::message_on_stdout(READY_LINE),
            WaitFor::message_on_stdout(API_READY_LINE),
        ]
    }

    fn env_vars(&self) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn copy_to_sources(&self) -> impl IntoIterator<Item = &CopyToContainer> {
        self.config.iter().chain(&self.files)
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &PORTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_is_the_pinned_release() {
        let image = MediaMtx::default();
        assert_eq!((image.name(), image.tag()), ("bluenviron/mediamtx", "1.20.1"));
        assert_eq!(image.expose_ports(), &[RTMP_PORT, API_PORT, METRICS_PORT]);
    }

    #[test]
    fn waits_for_the_rtmp_and_api_listener_lines() {
        let conditions = MediaMtx::default().ready_conditions();
        assert_eq!(conditions.len(), 2);
        assert_eq!(
            format!("{:?}", conditions[0]),
            format!("{:?}", WaitFor::message_on_stdout("INF [RTMP] "))
        );
        assert_eq!(
            format!("{:?}", conditions[1]),
            format!("{:?}", WaitFor::message_on_stdout("INF [API] "))
        );
    }

    #[test]
    fn environment_enables_rtmp_api_and_metrics() {
        let image = MediaMtx::default();
        let env: BTreeMap<String, String> = image
            .env_vars()
            .into_iter()
            .map(|(k, v)| (k.into().into_owned(), v.into().into_owned()))
            .collect();
        for (key, value) in [("MTX_RTMP", "yes"), ("MTX_API", "yes"), ("MTX_METRICS", "yes")] {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
        }
    }

    #[test]
    fn mounted_config_opens_api_and_metrics_to_any_address() {
        let image = MediaMtx::default();
        assert_eq!(image.copy_to_sources().into_iter().count(), 1);
        let config: serde_yaml::Value = serde_yaml::from_str(CONFIG).unwrap();
        // MediaMTX reads yes/no as booleans, as its own stock file writes them.
        assert_eq!(config["rtmp"].as_str(), Some("yes"));
        let user = &config["authInternalUsers"][0];
        assert_eq!(user["ips"].as_sequence().map(Vec::len), Some(0));
        let actions: Vec<&str> = user["permissions"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|p| p["action"].as_str())
            .collect();
        for needed in ["publish", "read", "api", "metrics"] {
            assert!(actions.contains(&needed), "{needed} missing from {actions:?}");
        }
    }

    #[test]
    fn image_reference_parses_name_and_tag() {
        let image = MediaMtx::default().with_image("rtmp-server-standin:local");
        assert_eq!((image.name(), image.tag()), ("rtmp-server-standin", "local"));
        let registry = MediaMtx::default().with_image("localhost:5000/mediamtx");
        assert_eq!(
            (registry.name(), registry.tag()),
            ("localhost:5000/mediamtx", "latest")
        );
    }
}
