//! RTMP URLs: validation of what users type, building of what MediaMTX
//! serves, and redaction so credentials never reach a log line.

use std::fmt;

use crate::error::ConfigError;
use crate::stream_id::StreamId;

/// A validated `rtmp://host[:port]/APP/ID/STREAM` URL (MediaMTX's path
/// `APP/ID/STREAM`; the id names the output folder, so it follows the
/// stream id's rules).
///
/// `Display` and `Debug` print the redacted form; only [`RtmpUrl::expose`]
/// returns the URL with credentials, for handing to the source element.
///
/// In a configuration file it is the URL as text, checked when read.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RtmpUrl {
    full: String,
    redacted: String,
    host: String,
    port: u16,
    path: String,
}

pub const DEFAULT_RTMP_PORT: u16 = 1935;

impl TryFrom<String> for RtmpUrl {
    type Error = ConfigError;
    fn try_from(raw: String) -> Result<Self, ConfigError> {
        Self::parse(&raw)
    }
}

/// The URL as given, credentials included: a configuration written back
/// must pull the same stream.
impl From<RtmpUrl> for String {
    fn from(url: RtmpUrl) -> String {
        url.full
    }
}

impl RtmpUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(ConfigError::InvalidUrl {
                url: String::new(),
                reason: "the URL cannot be empty; expected rtmp://HOST[:PORT]/APP/STREAM".into(),
            });
        }
        let redacted_input = redact(trimmed);
        let invalid = |reason: String| ConfigError::InvalidUrl {
            url: redacted_input.clone(),
            reason,
        };
        let parsed = url::Url::parse(trimmed).map_err(|e| {
            invalid(format!(
                "it is not a URL ({e}); expected rtmp://HOST[:PORT]/APP/STREAM"
            ))
        })?;
        match parsed.scheme() {
            "rtmp" => {}
            "rtsp" | "rtsps" => {
                return Err(invalid(
                    "RTSP is not supported: this ingest requires RTMP, so the URL must start with 'rtmp://'"
                        .into(),
                ));
            }
            other => {
                return Err(invalid(format!(
                    "the URL must start with 'rtmp://' (found scheme '{other}')"
                )));
            }
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("the URL has no host; expected rtmp://HOST[:PORT]/APP/STREAM".into()))?
            .to_owned();
        if parsed.port() == Some(0) {
            return Err(invalid(
                "port 0 cannot be connected to; expected a port from 1 to 65535, such as 1935".into(),
            ));
        }
        // The path as typed: the URL parser would resolve `..` and `.` and
        // decode nothing, so checks run on the raw text.
        let path = raw_path(trimmed).ok_or_else(|| {
            invalid(
                "the URL has no stream path; expected rtmp://HOST[:PORT]/APP/ID/STREAM, e.g. /live/<id>/in"
                    .into(),
            )
        })?;
        let segments = check_path(path).map_err(invalid)?;
        Ok(Self {
            full: trimmed.to_owned(),
            redacted: redacted_input,
            host,
            port: parsed.port().unwrap_or(DEFAULT_RTMP_PORT),
            path: segments.join("/"),
        })
    }

    /// The MediaMTX input URL of a stream: `rtmp://{host}:{port}/{app}/{id}/in`.
    pub fn for_stream(host: &str, port: u16, app_path: &str, id: &StreamId) -> Result<Self, ConfigError> {
        Self::parse(&format!("rtmp://{host}:{port}/{}", id.input_path(app_path)))
    }

    /// The same URL (credentials, path and query kept) through a relay at
    /// `local`, where the source element connects instead.
    pub(crate) fn through(&self, local: std::net::SocketAddr) -> RtmpUrl {
        let mut url = url::Url::parse(&self.full).expect("an RtmpUrl is a valid URL");
        url.set_host(Some(&local.ip().to_string()))
            .expect("an IP is a valid host");
        url.set_port(Some(local.port())).expect("rtmp URLs take ports");
        let full = url.to_string();
        RtmpUrl {
            redacted: redact(&full),
            full,
            host: local.ip().to_string(),
            port: local.port(),
            path: self.path.clone(),
        }
    }

    /// The URL with credentials, for the source element only.
    pub fn expose(&self) -> &str {
        &self.full
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server-side path, e.g. `live/abc/in`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The stream id: the path's middle part (`live/<id>/in`), checked
    /// when the URL was parsed.
    pub fn stream_id(&self) -> Result<StreamId, ConfigError> {
        StreamId::parse(self.path.split('/').nth(1).unwrap_or_default())
    }
}

/// The path part of an `rtmp://` URL as typed (without query or fragment),
/// `None` when there is none.
fn raw_path(url: &str) -> Option<&str> {
    let after_scheme = url.split_once("://")?.1;
    let path = &after_scheme[after_scheme.find('/')?..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(&path[..end])
}

/// Splits `/APP/ID/STREAM` into its segments, refusing what would
/// pull one path and write another's folder: empty segments, `.` and `..`,
/// characters outside the stream id's set, and an unsafe id.
fn check_path(path: &str) -> Result<Vec<String>, String> {
    let expected = "expected /APP/ID/STREAM, such as /live/<id>/in";
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    if let Some(dots) = segments.iter().find(|s| matches!(**s, "." | "..")) {
        return Err(format!(
            "the path '{path}' has a '{dots}' part, which would name another path; {expected}"
        ));
    }
    let parts = if trimmed.is_empty() { 0 } else { segments.len() };
    if parts != 3 {
        return Err(format!("the path '{path}' has {parts} part(s); {expected}"));
    }
    for (segment, what) in segments.iter().zip(["application", "stream id", "stream name"]) {
        if segment.is_empty() {
            return Err(format!(
                "the path '{path}' has an empty {what} ('//'); {expected}"
            ));
        }
        if matches!(*segment, "." | "..") {
            return Err(format!(
                "the {what} in '{path}' is '{segment}', which would name another path; {expected}"
            ));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "the {what} '{segment}' contains {bad:?}; URL paths take letters, digits, '-', '_' and '.' ({expected})"
            ));
        }
    }
    StreamId::parse(segments[1]).map_err(|e| format!("{e} (the stream id of '{path}')"))?;
    Ok(segments.into_iter().map(str::to_owned).collect())
}

impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RtmpUrl({})", self.redacted)
    }
}

/// Query keys whose values are secrets (MediaMTX reads `?user=..&pass=..`).
const SECRET_KEYS: [&str; 6] = ["pass", "password", "token", "key", "secret", "auth"];

/// Hides credentials in a URL-ish string, textually, so it also works on
/// messages that merely contain a URL: `user:password@` becomes `***@`, and
/// the values of secret query keys become `***`.
pub fn redact(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &raw[authority_start..];
    let authority_end = rest.find(['/', '?', ' ']).unwrap_or(rest.len());
    let without_userinfo = match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &raw[..authority_start], &rest[at + 1..]),
        None => raw.to_owned(),
    };
    redact_query(&without_userinfo)
}

fn redact_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['?', '&']) {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let pair_end = rest.find(['&', ' ', '"', '\'']).unwrap_or(rest.len());
        let (pair, tail) = rest.split_at(pair_end);
        match pair.split_once('=') {
            Some((key, _)) if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) => {
                out.push_str(key);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[test]
    fn in_a_file_it_is_the_url_as_text_checked_when_read() {
        let url: RtmpUrl = serde_json::from_str(r#""rtmp://u:pw@h:1940/live/cam/in""#).unwrap();
        assert_eq!(url.expose(), "rtmp://u:pw@h:1940/live/cam/in");
        assert_eq!(
            serde_json::to_string(&url).unwrap(),
            r#""rtmp://u:pw@h:1940/live/cam/in""#,
            "written back, it pulls the same stream"
        );
        let refused = serde_json::from_str::<RtmpUrl>(r#""rtmp://h/live/../x/in""#).unwrap_err();
        assert!(refused.to_string().contains("invalid RTMP URL"), "{refused}");
    }

    #[rstest]
    #[case("rtmp://localhost/live/abc/in", "localhost", 1935, "live/abc/in")]
    #[case("rtmp://10.0.0.5:1936/live/abc/in", "10.0.0.5", 1936, "live/abc/in")]
    #[case(
        "rtmp://mediamtx:1935/dub/cam.1_b-2/src",
        "mediamtx",
        1935,
        "dub/cam.1_b-2/src"
    )]
    #[case("  rtmp://h:1/a/b/c/  ", "h", 1, "a/b/c")]
    #[case("rtmp://h/live/abc/in?user=u&pass=p", "h", 1935, "live/abc/in")]
    fn accepts_rtmp_urls(#[case] raw: &str, #[case] host: &str, #[case] port: u16, #[case] path: &str) {
        let url = RtmpUrl::parse(raw).unwrap();
        assert_eq!((url.host(), url.port(), url.path()), (host, port, path));
    }

    #[rstest]
    #[case("", "cannot be empty")]
    #[case("   ", "cannot be empty")]
    #[case("rtsp://host:8554/live/abc", "requires RTMP")]
    #[case("http://host/live/abc/in", "must start with 'rtmp://'")]
    #[case("rtmps://host/live/abc/in", "must start with 'rtmp://'")]
    #[case("host/live/abc/in", "not a URL")]
    #[case("rtmp:///live/abc/in", "no host")]
    #[case("rtmp://host", "no stream path")]
    #[case("rtmp://host/", "has 0 part(s)")]
    #[case("rtmp://host:1935/live", "has 1 part(s)")]
    #[case("rtmp://host/app/stream", "has 2 part(s)")]
    #[case("rtmp://host:0/live/abc/in", "port 0")]
    #[case("rtmp://h/live/../escape/in", "a '..' part, which would name another path")]
    #[case("rtmp://h/live/./in", "a '.' part, which would name another path")]
    #[case("rtmp://h/live/a/b/in", "has 4 part(s)")]
    #[case("rtmp://h/live//in", "empty stream id")]
    #[case("rtmp://h//abc/in", "empty application")]
    #[case("rtmp://h/live/abc/", "has 2 part(s)")]
    #[case("rtmp://h/live/a%20b/in", "contains '%'")]
    #[case("rtmp://h/live/a%00/in", "contains '%'")]
    #[case("rtmp://h/live/a b/in", "contains ' '")]
    #[case("rtmp://h/live/.hidden/in", "starts with '.'")]
    #[case("rtmp://h/li:ve/abc/in", "application 'li:ve' contains ':'")]
    fn refuses_bad_urls(#[case] raw: &str, #[case] fragment: &str) {
        let message = RtmpUrl::parse(raw).unwrap_err().to_string();
        assert!(
            message.contains(fragment),
            "{message:?} should contain {fragment:?}"
        );
    }

    #[test]
    fn refuses_an_overlong_id_by_name() {
        let id = "x".repeat(300);
        let message = RtmpUrl::parse(&format!("rtmp://h/live/{id}/in"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("longer than"), "{message}");
        assert!(message.contains("stream id"), "{message}");
    }

    #[test]
    fn builds_mediamtx_input_url() {
        let id = StreamId::parse("abc").unwrap();
        let url = RtmpUrl::for_stream("mediamtx", 1935, "/live/", &id).unwrap();
        assert_eq!(url.expose(), "rtmp://mediamtx:1935/live/abc/in");
        assert_eq!(url.stream_id().unwrap(), id);
    }

    #[rstest]
    #[case("rtmp://h/live/abc/in", "abc")]
    #[case("rtmp://h/app/xyz/out", "xyz")]
    fn derives_stream_id(#[case] raw: &str, #[case] id: &str) {
        assert_eq!(RtmpUrl::parse(raw).unwrap().stream_id().unwrap().as_str(), id);
    }

    #[test]
    fn query_credentials_never_show() {
        let url = RtmpUrl::parse("rtmp://h:1935/live/abc/in?user=u&pass=s3cret&x=1").unwrap();
        assert_eq!(url.to_string(), "rtmp://h:1935/live/abc/in?user=u&pass=***&x=1");
        assert_eq!(
            redact("error reading rtmp://h/live/a/in?token=abc: refused"),
            "error reading rtmp://h/live/a/in?token=*** refused"
        );
    }

    #[test]
    fn credentials_never_show() {
        let url = RtmpUrl::parse("rtmp://user:s3cret@h:1935/live/abc/in").unwrap();
        assert!(url.expose().contains("s3cret"));
        assert!(!url.to_string().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
        let err = RtmpUrl::parse("rtsp://user:s3cret@h/live/abc").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(err.to_string().contains("***@h"), "{err}");
    }

    #[test]
    fn redaction_hides_the_whole_user_info_and_nothing_else() {
        let url = RtmpUrl::parse("rtmp://user:s3cret@h:1935/live/abc/in?pass=p&Token=t&x=1").unwrap();
        let redacted = "rtmp://***@h:1935/live/abc/in?pass=***&Token=***&x=1";
        assert_eq!(url.to_string(), redacted);
        assert_eq!(format!("{url:?}"), format!("RtmpUrl({redacted})"));
        assert_eq!(redact("no URL here: pass=x"), "no URL here: pass=x");
        assert_eq!(
            redact("rtmp://h/live/a/in and user@example"),
            "rtmp://h/live/a/in and user@example",
            "an @ after the authority is not user info"
        );
    }

    #[test]
    fn through_a_relay_keeps_everything_but_the_address() {
        let url = RtmpUrl::parse("rtmp://user:s3cret@mediamtx:1935/live/abc/in?pass=p").unwrap();
        let relayed = url.through("127.0.0.1:40000".parse().unwrap());
        assert_eq!(
            relayed.expose(),
            "rtmp://user:s3cret@127.0.0.1:40000/live/abc/in?pass=p"
        );
        assert_eq!((relayed.host(), relayed.port()), ("127.0.0.1", 40000));
        assert_eq!(relayed.path(), "live/abc/in");
        assert_eq!(
            relayed.to_string(),
            "rtmp://***@127.0.0.1:40000/live/abc/in?pass=***"
        );
    }
}
