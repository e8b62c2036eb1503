//! The part of MediaMTX's configuration the stand-in honours, read the way
//! MediaMTX reads it: `mediamtx.yml` (the path given, else `mediamtx.yml`
//! in the working directory when it exists), then `MTX_<KEY>` environment
//! variables, which override the file. Unknown keys are ignored.
//!
//! | key | env | effect |
//! | --- | --- | --- |
//! | `rtmpAddress` | `MTX_RTMPADDRESS` | RTMP listener (`:1935`) |
//! | `api`, `apiAddress` | `MTX_API`, `MTX_APIADDRESS` | Control API (off, `:9997`) |
//! | `readTimeout`, `writeTimeout` | `MTX_READTIMEOUT`, ... | `10s` each |
//! | `writeQueueSize` | `MTX_WRITEQUEUESIZE` | 512 |
//! | `pathDefaults.overridePublisher` | `MTX_PATHDEFAULTS_OVERRIDEPUBLISHER` | yes |
//! | `authInternalUsers[i].ips` with an `api` permission | `MTX_AUTHINTERNALUSERS_<i>_IPS` | who may use the API |
//! | `pathDefaults.runOnAvailable`, `runOnAvailableRestart`, `runOnUnavailable` (also under `paths.all_others`) | `MTX_PATHDEFAULTS_RUNONAVAILABLE`, ... | path hooks |
//! | their deprecated names `runOnReady`, `runOnReadyRestart`, `runOnNotReady` | `MTX_PATHDEFAULTS_RUNONREADY`, ... | the same, with MediaMTX's warning; they win over the new names |
//! | `rtspAddress` | `MTX_RTSPADDRESS` | only its port, for hooks' `RTSP_PORT` (`:8554`) |

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rtmp_server::{ApiAccess, IpNetwork, ServerConfig};
use serde_yaml::Value;

/// One entry of `authInternalUsers` (only what decides API access).
#[derive(Debug, Clone, PartialEq)]
struct InternalUser {
    user: String,
    ips: Vec<String>,
    actions: Vec<String>,
}

/// MediaMTX's default users: anyone may publish and read; the API only
/// from loopback.
fn default_users() -> Vec<InternalUser> {
    vec![
        InternalUser {
            user: "any".into(),
            ips: vec![],
            actions: vec!["publish".into(), "read".into(), "playback".into()],
        },
        InternalUser {
            user: "any".into(),
            ips: vec!["127.0.0.1".into(), "::1".into()],
            actions: vec!["api".into(), "metrics".into(), "pprof".into()],
        },
    ]
}

#[derive(Debug)]
pub struct Loaded {
    pub config: ServerConfig,
    /// The file read, if any (MediaMTX logs it).
    pub file: Option<PathBuf>,
    /// What MediaMTX warns about the settings (deprecated names).
    pub warnings: Vec<String>,
}

/// A hook's setting: its name, its deprecated name, and MediaMTX's env key
/// suffix for each.
const HOOK_SETTINGS: [(&str, &str); 3] = [
    ("runOnAvailable", "runOnReady"),
    ("runOnAvailableRestart", "runOnReadyRestart"),
    ("runOnUnavailable", "runOnNotReady"),
];

pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Loaded> {
    let file = match explicit {
        Some(path) => Some(path.to_owned()),
        None => Some(PathBuf::from("mediamtx.yml")).filter(|p| p.exists()),
    };
    let document = match &file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Value::Null,
    };
    let setting = |key: &str, env_key: &str| -> Option<Value> {
        env(env_key)
            .map(Value::String)
            .or_else(|| lookup(&document, key).cloned())
    };

    let mut config = ServerConfig {
        listen: listen_address(":1935")?,
        ..ServerConfig::default()
    };
    if let Some(value) = setting("rtmpAddress", "MTX_RTMPADDRESS") {
        config.listen = listen_address(&text(&value))?;
    }
    let api = setting("api", "MTX_API")
        .map(|v| boolean(&v, "api"))
        .transpose()?
        .unwrap_or(false);
    if api {
        let address =
            setting("apiAddress", "MTX_APIADDRESS").map_or_else(|| ":9997".to_owned(), |v| text(&v));
        config.api_listen = Some(listen_address(&address)?);
    }
    if let Some(v) = setting("readTimeout", "MTX_READTIMEOUT") {
        config.read_timeout = duration(&v, "readTimeout")?;
    }
    if let Some(v) = setting("writeTimeout", "MTX_WRITETIMEOUT") {
        config.write_timeout = duration(&v, "writeTimeout")?;
    }
    if let Some(v) = setting("writeQueueSize", "MTX_WRITEQUEUESIZE") {
        config.write_queue_size = text(&v)
            .parse()
            .with_context(|| format!("invalid writeQueueSize '{}'", text(&v)))?;
    }
    if let Some(v) = setting(
        "pathDefaults.overridePublisher",
        "MTX_PATHDEFAULTS_OVERRIDEPUBLISHER",
    ) {
        config.override_publisher = boolean(&v, "overridePublisher")?;
    }
    config.api_access = api_access(&users(&document, env)?)?;
    let mut warnings = Vec::new();
    if let Some(v) = setting("rtspAddress", "MTX_RTSPADDRESS") {
        config.hooks.rtsp_port = text(&v).rsplit(':').next().unwrap_or_default().to_owned();
    }
    for (name, deprecated) in HOOK_SETTINGS {
        // A path's own setting (all_others) over the defaults; the
        // deprecated name over the new one, as MediaMTX applies them.
        let of = |key: &str| {
            lookup(&document, &format!("paths.all_others.{key}"))
                .cloned()
                .or_else(|| {
                    setting(
                        &format!("pathDefaults.{key}"),
                        &format!("MTX_PATHDEFAULTS_{}", key.to_uppercase()),
                    )
                })
        };
        let value = match of(deprecated) {
            Some(old) => {
                warnings.push(format!(
                    "parameter '{deprecated}' is deprecated and has been replaced with '{name}'"
                ));
                Some(old)
            }
            None => of(name),
        };
        let Some(value) = value else {
            continue;
        };
        match name {
            "runOnAvailable" => config.hooks.run_on_available = text(&value),
            "runOnUnavailable" => config.hooks.run_on_unavailable = text(&value),
            _ => config.hooks.run_on_available_restart = boolean(&value, name)?,
        }
    }
    Ok(Loaded {
        config,
        file,
        warnings,
    })
}

fn lookup<'a>(document: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(document, |v, key| v.get(key))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_owned(),
    }
}

fn boolean(value: &Value, key: &str) -> Result<bool> {
    match text(value).as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        other => bail!("invalid value for {key}: '{other}' (expected yes or no)"),
    }
}

fn duration(value: &Value, key: &str) -> Result<Duration> {
    humantime::parse_duration(&text(value)).with_context(|| format!("invalid {key} '{}'", text(value)))
}

/// `:1935` (all interfaces), `0.0.0.0:1935`, `[::]:1935` or `IP:PORT`.
pub fn listen_address(value: &str) -> Result<SocketAddr> {
    if let Some(port) = value.strip_prefix(':') {
        let port = port
            .parse()
            .with_context(|| format!("invalid port in '{value}'"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    value
        .parse()
        .with_context(|| format!("invalid listen address '{value}' (expected ':PORT' or 'IP:PORT')"))
}

fn users(document: &Value, env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<InternalUser>> {
    let mut users = match lookup(document, "authInternalUsers").and_then(Value::as_sequence) {
        None => default_users(),
        Some(entries) => entries
            .iter()
            .map(|entry| InternalUser {
                user: entry.get("user").map(text).unwrap_or_default(),
                ips: entry
                    .get("ips")
                    .and_then(Value::as_sequence)
                    .map(|ips| ips.iter().map(text).collect())
                    .unwrap_or_default(),
                actions: entry
                    .get("permissions")
                    .and_then(Value::as_sequence)
                    .map(|ps| ps.iter().filter_map(|p| p.get("action")).map(text).collect())
                    .unwrap_or_default(),
            })
            .collect(),
    };
    for (i, user) in users.iter_mut().enumerate() {
        if let Some(ips) = env(&format!("MTX_AUTHINTERNALUSERS_{i}_IPS")) {
            user.ips = ips.split(',').map(str::to_owned).collect();
        }
    }
    Ok(users)
}

/// Anonymous users granted `api`: no `ips` means any address.
fn api_access(users: &[InternalUser]) -> Result<ApiAccess> {
    let mut networks = Vec::new();
    for user in users
        .iter()
        .filter(|u| u.user == "any" && u.actions.iter().any(|a| a == "api"))
    {
        if user.ips.is_empty() {
            return Ok(ApiAccess::Anyone);
        }
        for ip in &user.ips {
            networks.push(ip.parse::<IpNetwork>().map_err(anyhow::Error::msg)?);
        }
    }
    Ok(ApiAccess::Only(networks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_mediamtx_defaults() {
        let loaded = load(None, &no_env).unwrap();
        assert_eq!(loaded.config.listen.port(), 1935);
        assert_eq!(loaded.config.api_listen, None);
        assert!(loaded.config.override_publisher);
        assert!(!loaded.config.api_access.allows("172.17.0.1".parse().unwrap()));
        assert!(loaded.config.api_access.allows("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn the_repository_config_opens_the_api_to_any_address() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../mediamtx.yml");
        let loaded = load(Some(Path::new(file)), &no_env).unwrap();
        assert_eq!(loaded.config.api_listen.map(|a| a.port()), Some(9997));
        assert_eq!(loaded.config.api_access, ApiAccess::Anyone);
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |key: &str| match key {
            "MTX_API" => Some("yes".to_owned()),
            "MTX_APIADDRESS" => Some("127.0.0.1:0".to_owned()),
            "MTX_PATHDEFAULTS_OVERRIDEPUBLISHER" => Some("no".to_owned()),
            "MTX_READTIMEOUT" => Some("3s".to_owned()),
            "MTX_AUTHINTERNALUSERS_1_IPS" => Some("0.0.0.0/0,::/0".to_owned()),
            _ => None,
        };
        let config = load(None, &env).unwrap().config;
        assert_eq!(config.api_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert!(!config.override_publisher);
        assert_eq!(config.read_timeout, Duration::from_secs(3));
        assert!(config.api_access.allows("172.17.0.1".parse().unwrap()));
    }

    #[test]
    fn an_empty_ips_variable_is_refused_as_mediamtx_refuses_it() {
        let env = |key: &str| (key == "MTX_AUTHINTERNALUSERS_1_IPS").then(String::new);
        let error = load(None, &env).unwrap_err().to_string();
        assert_eq!(error, "unable to parse IP/CIDR ''");
    }

    #[test]
    fn hooks_are_read_with_their_deprecated_names_winning_and_warned_of() {
        let env = |key: &str| match key {
            "MTX_PATHDEFAULTS_RUNONREADY" => Some("/hook ready $MTX_PATH".to_owned()),
            "MTX_PATHDEFAULTS_RUNONAVAILABLE" => Some("/hook available".to_owned()),
            "MTX_PATHDEFAULTS_RUNONREADYRESTART" => Some("yes".to_owned()),
            "MTX_PATHDEFAULTS_RUNONUNAVAILABLE" => Some("/hook gone".to_owned()),
            "MTX_RTSPADDRESS" => Some(":8555".to_owned()),
            _ => None,
        };
        let loaded = load(None, &env).unwrap();
        let hooks = &loaded.config.hooks;
        assert_eq!(hooks.run_on_available, "/hook ready $MTX_PATH");
        assert!(hooks.run_on_available_restart);
        assert_eq!(hooks.run_on_unavailable, "/hook gone");
        assert_eq!(hooks.rtsp_port, "8555");
        assert_eq!(
            loaded.warnings,
            [
                "parameter 'runOnReady' is deprecated and has been replaced with 'runOnAvailable'",
                "parameter 'runOnReadyRestart' is deprecated and has been replaced with 'runOnAvailableRestart'",
            ]
        );
    }
}
