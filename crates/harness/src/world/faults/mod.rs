//! Faults as scenarios: a scenario's `faults:` list (`plan::faults`) is played
//! against the stream's connections through fault proxies ([`proxy`]) and
//! the server's Control API, at media times of the fixture. Every fault is
//! recorded with its time for the artifacts (`faults-<stream>.jsonl`).
//!
//! ```text
//!  ffmpeg ──► [publisher proxy] ──► server ──► [ingest proxy] ──► ingest
//!                 cut, stall, throttle, slice        kick (API)
//! ```

pub(crate) mod proxy;
mod stream;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) use crate::plan::faults::{Fault, Side};
pub(crate) use proxy::{FaultProxy, Flow};
pub(crate) use stream::StreamFaults;

use crate::world::server::api::ApiClient;

/// One thing a fault did, when, and to what.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FaultRecord {
    /// From the stream run's start.
    pub at_ms: f64,
    /// The fixture's media time it was planned for.
    pub media_ms: f64,
    pub what: String,
}

/// The proxies a stream's faults need, and what the faults did.
pub(crate) struct FaultKit {
    ingest: Option<FaultProxy>,
    publisher: Option<FaultProxy>,
    records: Mutex<Vec<FaultRecord>>,
}

impl FaultKit {
    /// Proxies to `server` (`host:port`) for each side `faults` touch;
    /// `None` when there are no faults.
    pub(crate) async fn for_faults(faults: &[Fault], server: &str) -> std::io::Result<Option<Arc<Self>>> {
        if faults.is_empty() {
            return Ok(None);
        }
        let needs = |side| faults.iter().any(|f| f.proxied_sides().contains(&side));
        let ingest = if needs(Side::Ingest) {
            Some(FaultProxy::start(server).await?)
        } else {
            None
        };
        let publisher = if needs(Side::Publisher) {
            Some(FaultProxy::start(server).await?)
        } else {
            None
        };
        Ok(Some(Arc::new(Self {
            ingest,
            publisher,
            records: Mutex::new(Vec::new()),
        })))
    }

    /// `host:port` the side must connect to instead of the server.
    pub(crate) fn authority(&self, side: Side) -> Option<String> {
        self.proxy(side).map(FaultProxy::authority)
    }

    fn proxy(&self, side: Side) -> Option<&FaultProxy> {
        match side {
            Side::Ingest => self.ingest.as_ref(),
            Side::Publisher => self.publisher.as_ref(),
        }
    }

    pub(crate) fn records(&self) -> Vec<FaultRecord> {
        self.records.lock().expect("fault records").clone()
    }

    /// Sends new connections of both sides to `server` (`host:port`).
    pub(crate) fn retarget(&self, server: &str) {
        for proxy in [&self.ingest, &self.publisher].into_iter().flatten() {
            proxy.retarget(server);
        }
    }

    pub(crate) fn record(&self, started: Instant, media: Duration, what: String) {
        tracing::info!(media_ms = media.as_millis() as u64, "fault: {what}");
        self.records.lock().expect("fault records").push(FaultRecord {
            at_ms: started.elapsed().as_secs_f64() * 1e3,
            media_ms: media.as_secs_f64() * 1e3,
            what,
        });
    }

    /// Plays `faults`: media time 0 is `release` (the first frame the
    /// ingest is sent), passing `speed` times faster than realtime. `api`
    /// and `path` serve the kicks. Returns when the last one is over.
    pub(crate) async fn drive(
        self: Arc<Self>,
        faults: Vec<Fault>,
        release: Instant,
        speed: u32,
        started: Instant,
        api: Option<ApiClient>,
        path: String,
    ) {
        let mut actions: Vec<(Duration, Action)> = faults.iter().flat_map(Action::schedule).collect();
        actions.sort_by_key(|(at, _)| *at);
        for (at, action) in actions {
            // The fault's schedule on the media clock is the subject here,
            // as pacing is for a publisher: not a wait for an event.
            tokio::time::sleep_until(tokio::time::Instant::from_std(release + at / speed.max(1))).await;
            let what = self.apply(action, api.as_ref(), &path).await;
            self.record(started, at, what);
        }
    }

    async fn apply(&self, action: Action, api: Option<&ApiClient>, path: &str) -> String {
        match action {
            Action::Kick => kick_reader(api, path).await,
            Action::Cut { side, how } => match self.proxy(side) {
                Some(proxy) => {
                    proxy.cut(how);
                    format!("cut the {side:?} connections ({how:?})")
                }
                None => no_proxy(side),
            },
            Action::Flow { side, flow, what } => match self.proxy(side) {
                Some(proxy) => {
                    proxy.set_flow(flow);
                    what
                }
                None => no_proxy(side),
            },
        }
    }
}

/// [`FaultKit::for_faults`] starts a proxy for every side a fault names,
/// so this is recorded only if that promise is broken.
fn no_proxy(side: Side) -> String {
    format!("no proxy for the {side:?} side (a harness bug)")
}

/// What the driver does at one media time.
#[derive(Debug)]
enum Action {
    Cut {
        side: Side,
        how: proxy::CutKind,
    },
    /// Stall, throttle, slice, and the return to normal when one is over.
    Flow {
        side: Side,
        flow: Flow,
        what: String,
    },
    Kick,
}

impl Action {
    /// What the driver plays for `fault`: its start and, for one that lasts,
    /// its end. A server restart has none: the stream run owns the server.
    fn schedule(fault: &Fault) -> Vec<(Duration, Action)> {
        let flow = |side, flow, what| Action::Flow { side, flow, what };
        let begin = match fault {
            Fault::RestartServer { .. } => return Vec::new(),
            Fault::KickIngest { .. } => Action::Kick,
            Fault::Cut { side, how, .. } => Action::Cut {
                side: *side,
                how: *how,
            },
            Fault::Stall { side, lasting, .. } => flow(
                *side,
                Flow::Stalled,
                format!(
                    "stalled the {side:?} connections for {}",
                    lasting.map_or("ever".to_owned(), |d| format!("{d:?}"))
                ),
            ),
            Fault::Throttle {
                side,
                bytes_per_second,
                lasting,
                ..
            } => flow(
                *side,
                Flow::Throttled {
                    bytes_per_second: *bytes_per_second,
                },
                format!("throttled the {side:?} connections to {bytes_per_second} B/s for {lasting:?}"),
            ),
            Fault::Slice {
                side, bytes, lasting, ..
            } => flow(
                *side,
                Flow::Sliced { bytes: *bytes },
                format!("sliced the {side:?} connections into {bytes}-byte writes for {lasting:?}"),
            ),
        };
        let mut actions = vec![(fault.at(), begin)];
        if let (Action::Flow { side, .. }, Some(lasting)) = (&actions[0].1, fault.lasting()) {
            let side = *side;
            let normal = flow(
                side,
                Flow::Normal,
                format!("{side:?} connections flow normally again"),
            );
            actions.push((fault.at() + lasting, normal));
        }
        actions
    }
}

/// Kicks the connection reading `path` through the server's API.
async fn kick_reader(api: Option<&ApiClient>, path: &str) -> String {
    let Some(api) = api else {
        return "could not kick the ingest: this server has no Control API".to_owned();
    };
    let conns = match api.rtmp_conns().await {
        Ok(conns) => conns,
        Err(e) => return format!("could not kick the ingest: {e}"),
    };
    let Some(reader) = conns
        .items
        .iter()
        .find(|c| c.path == path && c.state == rtmp_server::ConnState::Read)
    else {
        return format!("could not kick the ingest: nobody reads {path}");
    };
    match api.kick(&reader.id).await {
        Ok(()) => format!("kicked the ingest's connection {}", reader.id),
        Err(e) => format!("could not kick the ingest's connection {}: {e}", reader.id),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::world::faults::proxy::CutKind;

    #[test]
    fn the_driver_plays_each_fault_from_its_start_to_its_end_and_leaves_restarts_alone() {
        let faults: Vec<Fault> = serde_yaml::from_str(
            "- {do: stall, at: 8s, side: ingest, for: 5s}\n\
             - {do: stall, at: 9s, side: publisher}\n\
             - {do: cut, at: 3s, side: publisher, back_after: 2s}\n\
             - {do: restart_server, at: 4s}\n\
             - {do: kick_ingest, at: 10s}\n",
        )
        .unwrap();
        let played: Vec<(u64, String)> = faults
            .iter()
            .flat_map(Action::schedule)
            .map(|(at, action)| {
                let what = match action {
                    Action::Cut { side, how } => format!("cut {side:?} {how:?}"),
                    Action::Flow { side, flow, .. } => format!("{flow:?} {side:?}"),
                    Action::Kick => "kick".to_owned(),
                };
                (at.as_secs(), what)
            })
            .collect();
        let expected = [
            (8, "Stalled Ingest"),
            (13, "Normal Ingest"),
            (9, "Stalled Publisher"),
            (3, "cut Publisher Fin"),
            (10, "kick"),
        ];
        assert_eq!(played, expected.map(|(at, what)| (at, what.to_owned())));
    }

    /// An echo server: what a proxy relays comes back.
    async fn echo() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
        s.write_all(bytes).await.unwrap();
        let mut got = vec![0u8; bytes.len()];
        s.read_exact(&mut got).await.unwrap();
        got
    }

    #[tokio::test]
    async fn relays_stalls_and_cuts() {
        let proxy = FaultProxy::start(&echo().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.authority()).await.unwrap();
        assert_eq!(round_trip(&mut client, b"hello").await, b"hello");

        proxy.set_flow(Flow::Stalled);
        client.write_all(b"held").await.unwrap();
        let mut one = [0u8; 1];
        let stalled = tokio::time::timeout(Duration::from_millis(300), client.read(&mut one)).await;
        assert!(stalled.is_err(), "nothing may pass a stall");
        proxy.set_flow(Flow::Normal);
        let mut held = [0u8; 4];
        client.read_exact(&mut held).await.unwrap();
        assert_eq!(&held, b"held", "what waited passes once the stall ends");

        proxy.set_flow(Flow::Sliced { bytes: 1 });
        assert_eq!(round_trip(&mut client, b"sliced").await, b"sliced");
        proxy.set_flow(Flow::Normal);

        proxy.cut(CutKind::Fin);
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(n.is_ok(), "a FIN cut ends the stream cleanly");

        let mut again = TcpStream::connect(proxy.authority()).await.unwrap();
        assert_eq!(
            round_trip(&mut again, b"after").await,
            b"after",
            "later connections pass"
        );
        proxy.cut(CutKind::Rst);
        let mut buf = [0u8; 8];
        let reset = tokio::time::timeout(Duration::from_secs(5), again.read(&mut buf))
            .await
            .unwrap();
        assert!(
            matches!(reset, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset)
                || matches!(reset, Ok(0)),
            "{reset:?}"
        );
    }

    #[tokio::test]
    async fn a_throttle_limits_the_rate() {
        let proxy = FaultProxy::start(&echo().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.authority()).await.unwrap();
        proxy.set_flow(Flow::Throttled {
            bytes_per_second: 20_000,
        });
        let started = Instant::now();
        let payload = vec![7u8; 10_000];
        assert_eq!(round_trip(&mut client, &payload).await, payload);
        // 10 kB each way at 20 kB/s: at least a quarter of a second.
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
    }
}
