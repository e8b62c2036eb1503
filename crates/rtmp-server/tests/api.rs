//! The server's own account of itself: library snapshots, kicks and the
//! HTTP Control API, with MediaMTX's shapes, against real publishers and
//! readers.

mod common;

use common::*;
use rtmp_server::{ConnState, ItemList, PathInfo, RtmpServer, ServerConfig, ServerError};
use std::time::Duration;

#[tokio::test]
async fn snapshots_and_the_http_api_describe_publisher_and_reader() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = RtmpServer::start(ServerConfig::with_api()).unwrap();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/api/in");

    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/api/in", DEADLINE).await.unwrap();
    let publishing = log.wait_for(&["is publishing to path 'live/api/in'"]).await;
    assert!(
        publishing.starts_with("INF [RTMP] [conn 127.0.0.1:"),
        "{publishing}"
    );

    let mut reader = ffmpeg_decoder(&url).spawn().unwrap();
    log.wait_for(&["is reading from path 'live/api/in', 2 tracks (H264, MPEG-4 Audio)"])
        .await;

    let paths = server.paths();
    assert_eq!(paths.len(), 1);
    let path = &paths[0];
    assert_eq!(path.name, "live/api/in");
    assert!(path.available && path.ready && path.online);
    assert_eq!(path.tracks, vec!["H264", "MPEG-4 Audio"]);
    assert_eq!(path.readers.len(), 1);

    let conns = server.connections();
    let states: Vec<_> = conns.iter().map(|c| c.state).collect();
    assert_eq!(states, vec![ConnState::Publish, ConnState::Read]);
    assert_eq!(conns[0].id, path.source.as_ref().unwrap().id);
    assert_eq!(conns[1].id, path.readers[0].id);
    assert!(
        conns
            .iter()
            .all(|c| c.path == "live/api/in" && c.inbound_bytes > 0)
    );

    // The same facts over HTTP, in MediaMTX's JSON.
    let api = format!("http://{}", server.api_addr().unwrap());
    let list: ItemList<PathInfo> = reqwest::get(format!("{api}/v3/paths/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((list.item_count, list.page_count), (1, 1));
    assert_eq!(list.items[0].name, "live/api/in");
    let raw: serde_json::Value = reqwest::get(format!("{api}/v3/rtmpconns/list"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["items"][1]["state"], "read");
    let missing = reqwest::get(format!("{api}/v3/paths/get/live/none/in"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.text().await.unwrap(),
        r#"{"status":"error","error":"path not found"}"#
    );
    log.wait_for(&["ERR [API] path not found"]).await;

    // Kicking the reader through the API closes it and only it.
    let kicked = reqwest::Client::new()
        .post(format!("{api}/v3/rtmpconns/kick/{}", conns[1].id))
        .send()
        .await
        .unwrap();
    assert_eq!(kicked.text().await.unwrap(), r#"{"status":"ok"}"#);
    log.wait_for(&["closed: terminated"]).await;
    wait_exit(&mut reader).await;
    assert!(!server.kick("no-such-id"));
    assert!(publisher.release().await.success());
    server
        .wait_for_state(|s| s.connections().is_empty(), DEADLINE)
        .await
        .unwrap();
}

#[tokio::test]
async fn wait_for_stream_times_out() {
    let server = start_server();
    let err = server
        .wait_for_stream("live/never/in", Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, ServerError::PublisherTimeout { .. }), "{err}");
}

#[test]
fn start_reports_bind_errors_and_urls() {
    let server = start_server();
    let taken = ServerConfig {
        listen: server.local_addr(),
        ..ServerConfig::default()
    };
    assert!(matches!(RtmpServer::start(taken), Err(ServerError::Bind { .. })));
    let port = server.local_addr().port();
    assert_eq!(
        server.url("/live/a/in"),
        format!("rtmp://127.0.0.1:{port}/live/a/in")
    );
    assert!(server.api_addr().is_none(), "no API unless asked for");
    server.shutdown();
}

/// Works from a blocking caller without any runtime: the server runs on its own.
#[test]
fn serves_callers_without_a_runtime() {
    let server = start_server();
    let mut socket = std::net::TcpStream::connect(server.local_addr()).unwrap();
    use std::io::{Read, Write};
    socket.write_all(&[0x03]).unwrap();
    socket.write_all(&[0u8; 1536]).unwrap();
    let mut s0s1s2 = [0u8; 3073];
    socket.read_exact(&mut s0s1s2).unwrap();
    assert_eq!(s0s1s2[0], 3);
    drop(server);
}

#[tokio::test]
async fn a_restart_closes_everything_and_serves_again_on_the_same_ports() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let mut server = RtmpServer::start(ServerConfig::with_api()).unwrap();
    let (rtmp, api) = (server.local_addr(), server.api_addr());
    let mut log = LogWatch::new(&server);
    let url = server.url("live/restart/in");
    let publisher = HeldPublisher::start_paced(&file, &url, media_tools::Pace::Realtime).await;
    server.wait_for_stream("live/restart/in", DEADLINE).await.unwrap();

    // The restart joins the server's thread: off the runtime's workers.
    let server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();
    assert_eq!((server.local_addr(), server.api_addr()), (rtmp, api));
    assert!(
        server.paths().is_empty(),
        "a restarted server knows no path: {:?}",
        server.paths()
    );
    // ffmpeg loses its connection: it fails rather than finishing.
    assert!(!publisher.release().await.success());
    // Subscribed after the first start: this is the restart's line.
    log.wait_for(&["[RTMP] started with listener on"]).await;

    // Publishing and reading work again on the same address.
    let again = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/restart/in", DEADLINE).await.unwrap();
    assert!(again.release().await.success());
}
