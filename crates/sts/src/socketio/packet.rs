//! Engine.IO v4 and Socket.IO v5 text packets: pure encode and decode, so
//! every malformed shape is a unit test rather than a live surprise.
//!
//! Engine.IO frames one packet per websocket text message, typed by its
//! first character (`0` open, `1` close, `2` ping, `3` pong, `4` message,
//! `5` upgrade, `6` noop). A message carries a Socket.IO packet, typed by
//! its first digit (`0` connect, `1` disconnect, `2` event, `3` ack, `4`
//! connect error, `5`/`6` binary), then an optional `/namespace,`, an
//! optional ack id, and JSON.

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ProtocolError(pub String);

fn malformed(reason: impl Into<String>) -> ProtocolError {
    ProtocolError(reason.into())
}

/// The Engine.IO open packet's heartbeat and size figures (milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Handshake {
    pub sid: String,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnginePacket<'a> {
    Open(Handshake),
    Close,
    Ping,
    Pong,
    Message(&'a str),
    Upgrade,
    Noop,
}

pub(crate) fn decode_engine(text: &str) -> Result<EnginePacket<'_>, ProtocolError> {
    let mut chars = text.chars();
    let kind = chars.next().ok_or_else(|| malformed("empty Engine.IO packet"))?;
    let rest = chars.as_str();
    Ok(match kind {
        '0' => EnginePacket::Open(
            serde_json::from_str(rest).map_err(|e| malformed(format!("Engine.IO open packet: {e}")))?,
        ),
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping,
        '3' => EnginePacket::Pong,
        '4' => EnginePacket::Message(rest),
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        other => return Err(malformed(format!("unknown Engine.IO packet type {other:?}"))),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SocketPacket {
    Connect,
    Disconnect,
    Event {
        name: String,
        data: Option<Value>,
        ack_id: Option<u64>,
    },
    Ack,
    ConnectError {
        message: String,
    },
    Binary,
}

/// A Socket.IO packet and whether it is for the default namespace `/`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub default_namespace: bool,
    pub packet: SocketPacket,
}

pub(crate) fn decode_socket(text: &str) -> Result<Decoded, ProtocolError> {
    let kind = text
        .bytes()
        .next()
        .ok_or_else(|| malformed("empty Socket.IO packet"))?;
    if !kind.is_ascii_digit() {
        return Err(malformed(format!(
            "Socket.IO packet starts with {:?}",
            text.chars().next()
        )));
    }
    // An ASCII first byte: slicing after it stays on a char boundary.
    let mut rest = &text[1..];
    if matches!(kind, b'5' | b'6') {
        return Ok(Decoded {
            default_namespace: true,
            packet: SocketPacket::Binary,
        });
    }
    let mut default_namespace = true;
    if let Some(after) = rest.strip_prefix('/') {
        let (namespace, tail) = after.split_once(',').unwrap_or((after, ""));
        default_namespace = namespace.is_empty();
        rest = tail;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack_id = match digits {
        0 => None,
        _ => Some(
            rest[..digits]
                .parse()
                .map_err(|_| malformed("Socket.IO ack id out of range"))?,
        ),
    };
    let json = &rest[digits..];
    let parse = |what: &str| -> Result<Value, ProtocolError> {
        serde_json::from_str(json).map_err(|e| malformed(format!("{what}: {e}")))
    };
    let packet = match kind {
        b'0' => SocketPacket::Connect,
        b'1' => SocketPacket::Disconnect,
        b'2' => {
            let Value::Array(mut args) = parse("Socket.IO event")? else {
                return Err(malformed("Socket.IO event is not a JSON array"));
            };
            if args.is_empty() {
                return Err(malformed("Socket.IO event without a name"));
            }
            let Value::String(name) = args.remove(0) else {
                return Err(malformed("Socket.IO event name is not a string"));
            };
            SocketPacket::Event {
                name,
                data: (!args.is_empty()).then(|| args.swap_remove(0)),
                ack_id,
            }
        }
        b'3' => SocketPacket::Ack,
        b'4' => {
            let value = if json.is_empty() {
                Value::Null
            } else {
                parse("Socket.IO connect error")?
            };
            let message = match &value {
                Value::Object(map) => map.get("message").and_then(Value::as_str).map(str::to_owned),
                Value::String(message) => Some(message.clone()),
                _ => None,
            };
            SocketPacket::ConnectError {
                message: message.unwrap_or_else(|| value.to_string()),
            }
        }
        other => {
            return Err(malformed(format!(
                "unknown Socket.IO packet type {:?}",
                other as char
            )));
        }
    };
    Ok(Decoded {
        default_namespace,
        packet,
    })
}

/// Joins the default namespace.
pub(crate) const CONNECT: &str = "40";
/// Leaves the default namespace.
pub(crate) const DISCONNECT: &str = "41";
pub(crate) const PONG: &str = "3";

/// `42["name",data]`: an Engine.IO message holding a Socket.IO event.
pub(crate) fn encode_event<T: Serialize>(name: &str, data: &T) -> String {
    let mut text = String::from("42");
    // Serialising plain structs of strings and numbers into a String
    // cannot fail.
    text.push_str(&serde_json::to_string(&(name, data)).expect("event payloads serialise"));
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn engine_packets() {
        let open =
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        assert_eq!(
            decode_engine(open).unwrap(),
            EnginePacket::Open(Handshake {
                sid: "abc".into(),
                ping_interval: 25_000,
                ping_timeout: 20_000,
                max_payload: Some(1_000_000),
            })
        );
        assert_eq!(decode_engine("2").unwrap(), EnginePacket::Ping);
        assert_eq!(decode_engine("6").unwrap(), EnginePacket::Noop);
        assert_eq!(
            decode_engine(r#"42["a"]"#).unwrap(),
            EnginePacket::Message(r#"2["a"]"#)
        );
        assert!(decode_engine("").is_err());
        assert!(decode_engine("9").is_err());
        assert!(decode_engine("0{not json").is_err());
    }

    #[test]
    fn events_with_and_without_data() {
        let decoded = decode_socket(r#"2["stream:ready",{"session_id":"s","max_inflight":3}]"#).unwrap();
        assert_eq!(
            decoded,
            Decoded {
                default_namespace: true,
                packet: SocketPacket::Event {
                    name: "stream:ready".into(),
                    data: Some(json!({"session_id": "s", "max_inflight": 3})),
                    ack_id: None,
                },
            }
        );
        let with_ack = decode_socket(r#"212["ping"]"#).unwrap();
        assert_eq!(
            with_ack.packet,
            SocketPacket::Event {
                name: "ping".into(),
                data: None,
                ack_id: Some(12),
            }
        );
        let other = decode_socket(r#"2/admin,["x",1]"#).unwrap();
        assert!(!other.default_namespace);
        assert!(decode_socket(r#"2/,["x"]"#).unwrap().default_namespace);
    }

    #[test]
    fn connect_disconnect_and_errors() {
        assert_eq!(
            decode_socket(r#"0{"sid":"x"}"#).unwrap().packet,
            SocketPacket::Connect
        );
        assert_eq!(decode_socket("1").unwrap().packet, SocketPacket::Disconnect);
        assert_eq!(
            decode_socket(r#"4{"message":"not authorized"}"#).unwrap().packet,
            SocketPacket::ConnectError {
                message: "not authorized".into()
            }
        );
        assert_eq!(
            decode_socket("51-[\"x\",{}]").unwrap().packet,
            SocketPacket::Binary
        );
    }

    #[test]
    fn malformed_shapes_are_errors() {
        for text in [
            "",
            "2",
            "2{}",
            "2[]",
            "2[1,2]",
            r#"2["fragment:processed",{"broken""#,
            "7[]",
            "é[]",
            "299999999999999999999999[\"x\"]",
        ] {
            assert!(decode_socket(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn events_encode_as_name_then_data() {
        assert_eq!(
            encode_event("stream:end", &json!({"stream_id": "cam1"})),
            r#"42["stream:end",{"stream_id":"cam1"}]"#
        );
    }

    #[test]
    fn arbitrary_text_never_panics() {
        let alphabet: Vec<char> = "0123456789/,[]{}\"-:éa ".chars().collect();
        let mut rng = fastrand::Rng::with_seed(11);
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..24))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let _ = decode_engine(&text);
            let _ = decode_socket(&text);
        }
    }
}
