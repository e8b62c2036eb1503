//! The STS messages, as the original media-service spoke them.
//!
//! Incoming messages are parsed strictly (a missing `fragment_id`, a wrong
//! type) into a typed [`ServerMessage`]; a shape that does not parse is
//! malformed and closes the session. Unknown event names are skipped, so an
//! STS that adds events does not break older workers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(crate) const STREAM_INIT: &str = "stream:init";
pub(crate) const FRAGMENT_DATA: &str = "fragment:data";
pub(crate) const STREAM_END: &str = "stream:end";

#[derive(Debug, Serialize)]
pub(crate) struct StreamInit<'a> {
    pub stream_id: &'a str,
    pub worker_id: &'a str,
    pub config: InitConfig<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct InitConfig<'a> {
    pub source_language: &'a str,
    pub target_language: &'a str,
    pub voice_profile: &'a str,
    pub format: &'a str,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub chunk_duration_ms: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct FragmentData<'a> {
    pub fragment_id: &'a str,
    pub stream_id: &'a str,
    pub sequence_number: u64,
    /// Wall-clock milliseconds since the Unix epoch at submission.
    pub timestamp: u64,
    pub audio: AudioOut<'a>,
    pub metadata: Metadata,
}

#[derive(Debug, Serialize)]
pub(crate) struct AudioOut<'a> {
    pub format: &'a str,
    pub sample_rate_hz: u32,
    pub channels: u8,
    pub duration_ms: u64,
    pub data_base64: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Metadata {
    pub pts_ns: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct StreamEnd<'a> {
    pub stream_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct StreamReady {
    pub session_id: String,
    pub max_inflight: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct FragmentAck {
    pub fragment_id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct DubbedAudio {
    pub format: String,
    #[serde(default)]
    pub sample_rate_hz: Option<u32>,
    #[serde(default)]
    pub channels: Option<u8>,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    pub data_base64: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct FragmentProcessed {
    pub fragment_id: String,
    #[serde(default)]
    pub sequence_number: Option<u64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub dubbed_audio: Option<DubbedAudio>,
    #[serde(default)]
    pub transcript: Option<String>,
    #[serde(default)]
    pub translated_text: Option<String>,
    #[serde(default)]
    pub processing_time_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Backpressure {
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub recommended_delay_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ErrorMessage {
    /// A string or a number, depending on the STS.
    #[serde(default)]
    pub code: Option<Value>,
    pub message: String,
    #[serde(default)]
    pub fragment_id: Option<String>,
}

impl ErrorMessage {
    pub fn describe(&self) -> String {
        match &self.code {
            Some(Value::String(code)) => format!("STS error {code}: {}", self.message),
            Some(code) => format!("STS error {code}: {}", self.message),
            None => format!("STS error: {}", self.message),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ServerMessage {
    Ready(StreamReady),
    Ack(FragmentAck),
    Processed(Box<FragmentProcessed>),
    Backpressure(Backpressure),
    Error(ErrorMessage),
    Unknown(String),
}

pub(crate) fn parse(name: &str, data: Option<Value>) -> Result<ServerMessage, String> {
    fn typed<T: serde::de::DeserializeOwned>(name: &str, data: Option<Value>) -> Result<T, String> {
        let data = data.ok_or_else(|| format!("{name} without data"))?;
        serde_json::from_value(data).map_err(|e| format!("{name}: {e}"))
    }
    Ok(match name {
        "stream:ready" => {
            let ready: StreamReady = typed(name, data)?;
            // Zero would mean never sending anything: a broken STS, not a
            // request to wait.
            if ready.max_inflight == 0 {
                return Err("stream:ready with max_inflight 0".into());
            }
            ServerMessage::Ready(ready)
        }
        "fragment:ack" => ServerMessage::Ack(typed(name, data)?),
        "fragment:processed" => ServerMessage::Processed(Box::new(typed(name, data)?)),
        "backpressure" => ServerMessage::Backpressure(typed(name, data)?),
        "error" => ServerMessage::Error(typed(name, data)?),
        other => ServerMessage::Unknown(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn server_messages_parse_into_their_types() {
        assert_eq!(
            parse(
                "stream:ready",
                Some(json!({"session_id": "s1", "max_inflight": 3}))
            )
            .unwrap(),
            ServerMessage::Ready(StreamReady {
                session_id: "s1".into(),
                max_inflight: 3
            })
        );
        let processed = parse(
            "fragment:processed",
            Some(json!({
                "fragment_id": "f", "sequence_number": 2, "status": "success",
                "dubbed_audio": {"format": "aac", "sample_rate_hz": 48000, "channels": 2,
                                 "duration_ms": 6000, "data_base64": "AAAA"},
                "transcript": "hello", "translated_text": "hola", "processing_time_ms": 12.5
            })),
        )
        .unwrap();
        let ServerMessage::Processed(p) = processed else {
            panic!("{processed:?}")
        };
        assert_eq!(p.dubbed_audio.unwrap().data_base64, "AAAA");
        let error = parse(
            "error",
            Some(json!({"code": 500, "message": "boom", "fragment_id": "f"})),
        )
        .unwrap();
        let ServerMessage::Error(e) = error else { panic!() };
        assert_eq!(e.describe(), "STS error 500: boom");
        assert_eq!(
            parse("news", None).unwrap(),
            ServerMessage::Unknown("news".into())
        );
    }

    #[test]
    fn wrong_shapes_are_malformed() {
        assert!(parse("fragment:processed", Some(json!("not an object"))).is_err());
        assert!(parse("fragment:processed", Some(json!({"sequence_number": 1}))).is_err());
        assert!(parse("fragment:ack", None).is_err());
        assert!(
            parse(
                "stream:ready",
                Some(json!({"session_id": "s", "max_inflight": 0}))
            )
            .is_err()
        );
        assert!(parse("error", Some(json!({"code": 1}))).is_err());
    }
}
