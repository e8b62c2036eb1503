//! An independent reader of a worker's dubbed output (the service's tests
//! include this file too).

use std::time::Duration;

use media_tools::flv::FlvTag;
use media_tools::{Received, RtmpPlayer};
use rtmp_server::RtmpServer;

/// Reads `path` on `server` from its publish's start to its end: every
/// tag, in order. The server's log says when the output is published, so
/// the reader starts with the publish and misses nothing.
pub fn read_out(
    server: &RtmpServer,
    path: String,
    deadline: Duration,
) -> tokio::task::JoinHandle<Vec<FlvTag>> {
    let authority = server.local_addr().to_string();
    let mut log = server.subscribe_log();
    tokio::spawn(async move {
        let publishing = format!("is publishing to path '{path}'");
        let published = async {
            while let Ok(line) = log.recv().await {
                if line.contains(&publishing) {
                    return;
                }
            }
        };
        tokio::time::timeout(deadline, published)
            .await
            .unwrap_or_else(|_| panic!("{path} is published within {deadline:?}"));
        let mut player = RtmpPlayer::play(&authority, &path)
            .await
            .expect("the output plays");
        let mut tags = Vec::new();
        while let Ok(Some(message)) = player.next_within(deadline).await {
            if let Received::Tag(tag) = message {
                tags.push(tag);
            }
        }
        tags
    })
}
