//! The Control API subset the harness uses, compared with the recorded
//! answer of a real MediaMTX: routes, status codes, error bodies, JSON keys.

use std::collections::BTreeSet;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::probe::{Probe, ensure, read_to_close, read_until};
use super::recordings::{PATHS_LIST, UNAUTHORIZED, key_paths, recorded_line, shape};
use super::{Check, CheckFailure, Need, Verdict, check};
use crate::world::server::ServerSettings;
use crate::world::server::api::{ApiClient, RawAnswer};

pub(super) fn checks() -> Vec<Check> {
    vec![
        check!("api", paths_list_has_the_recorded_shape, &[Need::Api]),
        check!("api", paths_get_takes_a_name_with_slashes, &[Need::Api]),
        check!("api", a_missing_path_is_404, &[Need::Api]),
        check!("api", paths_list_pages, &[Need::Api]),
        check!("api", rtmpconns_list_and_get, &[Need::Api]),
        check!("api", kick_closes_one_connection, &[Need::Api]),
        check!(
            "api",
            stock_access_answers_401_from_outside,
            &[Need::Api, Need::OwnServer],
            || {
                ServerSettings {
                    stock_api_access: true,
                    ..ServerSettings::default()
                }
            }
        ),
    ]
}

/// The fields every `rtmpconns` item has (v1.20.1's `APIRTMPConn`);
/// `userAgent` may be there too.
const CONN_KEYS: [&str; 12] = [
    "id",
    "created",
    "remoteAddr",
    "state",
    "path",
    "query",
    "user",
    "inboundBytes",
    "outboundBytes",
    "outboundFramesDiscarded",
    "bytesReceived",
    "bytesSent",
];

async fn get(api: &ApiClient, route: &str) -> Result<RawAnswer, CheckFailure> {
    api.raw(Method::GET, route)
        .await
        .map_err(|e| CheckFailure::from(e.to_string()))
}

fn json(answer: &RawAnswer) -> Result<Value, CheckFailure> {
    serde_json::from_str(&answer.body)
        .map_err(|e| CheckFailure::from(format!("not JSON ({e}): {}", answer.body)))
}

fn ok_json(answer: &RawAnswer, route: &str) -> Result<Value, CheckFailure> {
    ensure(answer.status == StatusCode::OK, || {
        format!("{route}: {} {}", answer.status, answer.body)
    })?;
    json(answer)
}

/// A path with a publisher and one reader, as the recording has.
async fn one_reader(
    probe: &Probe,
) -> Result<(String, media_tools::RtmpPublisher, media_tools::RtmpPlayer), CheckFailure> {
    let path = probe.path();
    let publisher = probe
        .publish_available(&path, &probe.material.plain, 3000)
        .await?;
    let since = Instant::now();
    let mut reader = probe.play(&path).await?;
    probe.reading(&path, since, &mut reader).await?;
    // The server's word can come before its API shows the reader.
    read_until(&mut reader, |r| r.tags().next().is_some()).await?;
    Ok((path, publisher, reader))
}

fn item_keys(list: &Value) -> BTreeSet<String> {
    key_paths(list)
        .into_iter()
        .filter_map(|k| k.strip_prefix("items[].").map(str::to_owned))
        .collect()
}

/// `/v3/paths/list` with one publisher and one reader has exactly the keys
/// of the recorded answer, and the values say what was published.
async fn paths_list_has_the_recorded_shape(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let (path, _publisher, _reader) = one_reader(probe).await?;
    let list = ok_json(&get(api, "/v3/paths/list").await?, "/v3/paths/list")?;
    let recorded: Value = serde_json::from_str(PATHS_LIST).expect("the recording is JSON");
    let (want, got) = (item_keys(&recorded), item_keys(&list));
    ensure(want == got, || {
        format!(
            "path items differ from the recording: missing {:?}, extra {:?}",
            want.difference(&got).collect::<Vec<_>>(),
            got.difference(&want).collect::<Vec<_>>()
        )
    })?;
    for key in ["itemCount", "pageCount", "items"] {
        ensure(list.get(key).is_some(), || format!("no {key} in {list}"))?;
    }
    let item = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["name"] == path.as_str()))
        .ok_or_else(|| format!("{path} is not listed: {list}"))?;
    let codecs: Vec<&str> = item["tracks2"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["codec"].as_str()).collect())
        .unwrap_or_default();
    let facts = [
        ("available", item["available"] == true),
        ("source.type rtmpConn", item["source"]["type"] == "rtmpConn"),
        (
            "one rtmpConn reader",
            item["readers"]
                .as_array()
                .is_some_and(|r| r.len() == 1 && r[0]["type"] == "rtmpConn"),
        ),
        ("tracks2 H264 + MPEG-4 Audio", codecs == ["H264", "MPEG-4 Audio"]),
        ("width 320", item["tracks2"][0]["codecProps"]["width"] == 320),
        (
            "sampleRate 48000",
            item["tracks2"][1]["codecProps"]["sampleRate"] == 48000,
        ),
        (
            "inboundBytes > 0",
            item["inboundBytes"].as_u64().is_some_and(|b| b > 0),
        ),
    ];
    let wrong: Vec<&str> = facts
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    ensure(wrong.is_empty(), || {
        format!("{path}: expected {wrong:?}; got {item}")
    })
}

/// `/v3/paths/get/<name>` takes the name with its slashes and answers one
/// item of the same shape.
async fn paths_get_takes_a_name_with_slashes(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let (path, _publisher, _reader) = one_reader(probe).await?;
    let route = format!("/v3/paths/get/{path}");
    let item = ok_json(&get(api, &route).await?, &route)?;
    ensure(item["name"] == path.as_str(), || {
        format!("{route} answered {item}")
    })?;
    let recorded: Value = serde_json::from_str(PATHS_LIST).expect("the recording is JSON");
    let want = key_paths(&recorded["items"][0]);
    let got = key_paths(&item);
    ensure(want == got, || {
        format!("{route}: keys {got:?}, recorded {want:?}")
    })
}

/// A path nobody publishes: 404 `{"status":"error","error":"path not
/// found"}`, and the recorded `ERR [API] path not found`.
async fn a_missing_path_is_404(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let since = Instant::now();
    let route = format!("/v3/paths/get/{}", probe.path());
    let answer = get(api, &route).await?;
    ensure(answer.status == StatusCode::NOT_FOUND, || {
        format!("{route}: {} {}", answer.status, answer.body)
    })?;
    let body = json(&answer)?;
    ensure(
        body == serde_json::json!({"status": "error", "error": "path not found"}),
        || format!("{route}: {body}"),
    )?;
    if probe.log().is_ok() {
        let line = probe
            .line(since, "the API error", |l| l.contains("[API]"))
            .await?;
        let expected = recorded_line("ERR [API] path not found", "\u{0}");
        ensure(shape(&line, "\u{0}") == expected, || {
            format!("logged {line:?}; MediaMTX logs {expected:?}")
        })?;
    }
    Ok(())
}

/// `?itemsPerPage=&page=` pages the list; `pageCount` counts the pages.
async fn paths_list_pages(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let mut publishers = Vec::new();
    for _ in 0..3 {
        let path = probe.path();
        publishers.push(
            probe
                .publish_available(&path, &probe.material.plain, 2500)
                .await?,
        );
    }
    let first = ok_json(&get(api, "/v3/paths/list?itemsPerPage=2&page=0").await?, "page 0")?;
    let count = first["itemCount"].as_u64().unwrap_or(0);
    ensure(count >= 3, || {
        format!("3 paths published, itemCount says {count}")
    })?;
    ensure(first["pageCount"].as_u64() == Some(count.div_ceil(2)), || {
        format!("{count} items in pages of 2: pageCount {}", first["pageCount"])
    })?;
    ensure(first["items"].as_array().is_some_and(|i| i.len() == 2), || {
        format!("page 0: {first}")
    })?;
    let second = ok_json(&get(api, "/v3/paths/list?itemsPerPage=2&page=1").await?, "page 1")?;
    let expected = (count - 2).min(2) as usize;
    ensure(
        second["items"].as_array().is_some_and(|i| i.len() == expected),
        || format!("page 1 should hold {expected} items: {second}"),
    )
}

/// `/v3/rtmpconns/list` shows the publisher and the reader with their
/// state and path; `/get/<id>` answers one, 404 for an unknown id.
async fn rtmpconns_list_and_get(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let (path, _publisher, _reader) = one_reader(probe).await?;
    let list = ok_json(&get(api, "/v3/rtmpconns/list").await?, "/v3/rtmpconns/list")?;
    let items: Vec<&Value> = list["items"]
        .as_array()
        .map(|i| i.iter().filter(|c| c["path"] == path.as_str()).collect())
        .unwrap_or_default();
    let states: BTreeSet<&str> = items.iter().filter_map(|c| c["state"].as_str()).collect();
    ensure(states == BTreeSet::from(["publish", "read"]), || {
        format!("connections of {path}: states {states:?} in {list}")
    })?;
    for conn in &items {
        let keys: BTreeSet<String> = conn
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let missing: Vec<_> = CONN_KEYS.iter().filter(|k| !keys.contains(**k)).collect();
        let extra: Vec<_> = keys
            .iter()
            .filter(|k| !CONN_KEYS.contains(&k.as_str()) && *k != "userAgent")
            .collect();
        ensure(missing.is_empty() && extra.is_empty(), || {
            format!("a connection item lacks {missing:?} and has {extra:?}: {conn}")
        })?;
    }
    let id = items[0]["id"].as_str().ok_or("a connection without an id")?;
    let route = format!("/v3/rtmpconns/get/{id}");
    let one = ok_json(&get(api, &route).await?, &route)?;
    ensure(one["id"] == id, || format!("{route} answered {one}"))?;
    let unknown = "/v3/rtmpconns/get/00000000-0000-4000-8000-000000000000";
    let answer = get(api, unknown).await?;
    let body = json(&answer)?;
    ensure(
        answer.status == StatusCode::NOT_FOUND
            && body == serde_json::json!({"status": "error", "error": "connection not found"}),
        || format!("{unknown}: {} {body}", answer.status),
    )
}

/// `POST /v3/rtmpconns/kick/<id>` closes that connection and no other.
async fn kick_closes_one_connection(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let (path, _publisher, mut reader) = one_reader(probe).await?;
    let list = api
        .rtmp_conns()
        .await
        .map_err(|e| CheckFailure::from(e.to_string()))?;
    let id = list
        .items
        .iter()
        .find(|c| c.path == path && c.state == rtmp_server::ConnState::Read)
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("no reader of {path} listed"))?;
    let answer = api
        .raw(Method::POST, &format!("/v3/rtmpconns/kick/{id}"))
        .await
        .map_err(|e| CheckFailure::from(e.to_string()))?;
    let body = json(&answer)?;
    ensure(
        answer.status == StatusCode::OK && body == serde_json::json!({"status": "ok"}),
        || format!("kick: {} {body}", answer.status),
    )?;
    let read = read_to_close(&mut reader).await?;
    ensure(read.closed, || "the kicked reader was not closed".into())?;
    let mut another = probe.play(&path).await?;
    let read = read_until(&mut another, |r| r.tags().next().is_some()).await?;
    ensure(read.statuses().contains(&"NetStream.Play.Start"), || {
        format!("after kicking the reader the path is gone: {:?}", read.messages)
    })
}

/// With MediaMTX's stock access rule the API serves loopback only: asked
/// from another address (as through a Docker port mapping) it answers 401
/// with the recorded body.
async fn stock_access_answers_401_from_outside(probe: &Probe) -> Verdict {
    let api = probe.api()?;
    let outside = match probe.server().embedded_api_addr() {
        // The embedded server listens on every interface: ask it through
        // this machine's own non-loopback address.
        Some(addr) => {
            let port = addr.port();
            let ip = non_loopback_address().ok_or("this machine has no non-loopback address to ask from")?;
            ApiClient::new(&format!("http://{ip}:{port}"))
        }
        // A container is asked through its port mapping already.
        None => api.clone(),
    };
    let answer = get(&outside, "/v3/paths/list").await?;
    let body = json(&answer)?;
    let recorded: Value = serde_json::from_str(UNAUTHORIZED).expect("the recording is JSON");
    ensure(
        answer.status == StatusCode::UNAUTHORIZED && body == recorded,
        || {
            format!(
                "from outside: {} {body}; MediaMTX answers 401 {recorded}",
                answer.status
            )
        },
    )
}

/// The address this machine would send from to a non-local network; no
/// packet is sent.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}
