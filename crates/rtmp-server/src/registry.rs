//! Who is connected and who publishes or reads which path, with MediaMTX's
//! rules: a path exists once its publisher's analysis is done; a second
//! publisher takes the path over (closing the first one and every reader)
//! unless `overridePublisher` is off; readers of a path without a stream
//! are refused. One lock guards the maps (taken on connect, publish, play
//! and leave); each path has its own lock, so units of different paths
//! never contend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::gop_cache::GopCache;
use crate::info::{
    AudioProps, CodecProps, ConnInfo, ConnState, PathConn, PathInfo, TrackInfo, VideoProps, go_time,
};
use crate::log::LogSink;
use crate::media::tracks::{AudioTrack, Tracks};
use crate::relay::{Joined, PathRelay};
use crate::stats::{ConnId, ConnStats};

/// How every new path is set up.
#[derive(Debug, Clone)]
pub(crate) struct PathSettings {
    pub queue_capacity: usize,
    /// `Some((units, bytes))` to keep a GOP cache.
    pub gop_cache: Option<(usize, usize)>,
    pub override_publisher: bool,
    pub hooks: crate::hooks::PathHooks,
}

pub(crate) type SharedPath = Arc<Mutex<PathRelay>>;

struct ConnEntry {
    uuid: Uuid,
    created: SystemTime,
    remote: SocketAddr,
    state: ConnState,
    path: Option<String>,
    query: String,
    user_agent: String,
    stats: Arc<ConnStats>,
    kick: Arc<Notify>,
}

struct PathEntry {
    publisher: ConnId,
    relay: SharedPath,
    available_at: SystemTime,
    online_at: SystemTime,
    /// Run when the path stops being available (its hooks).
    unavailable: crate::hooks::Unavailable,
}

#[derive(Default)]
struct Maps {
    next_id: ConnId,
    conns: HashMap<ConnId, ConnEntry>,
    paths: HashMap<String, PathEntry>,
}

/// Handed to a new connection.
pub(crate) struct ConnHandle {
    pub id: ConnId,
    pub stats: Arc<ConnStats>,
    pub kick: Arc<Notify>,
}

/// Why a publisher may not take a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PublishRefused {
    #[error("someone is already publishing to path '{0}'")]
    Busy(String),
}

/// Why a kick through the API failed (MediaMTX's answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LookupError {
    #[error("invalid UUID: {0}")]
    InvalidId(String),
    #[error("connection not found")]
    NotFound,
}

pub(crate) struct Registry {
    settings: PathSettings,
    log: LogSink,
    maps: Mutex<Maps>,
    /// Bumped whenever a connection, path, publisher or reader comes or goes.
    changed: watch::Sender<u64>,
}

impl Registry {
    pub fn new(settings: PathSettings, log: LogSink) -> Self {
        Self {
            settings,
            log,
            maps: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        // A panic while holding the lock leaves consistent maps (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    pub fn open(&self, remote: SocketAddr) -> ConnHandle {
        let mut maps = self.maps();
        maps.next_id += 1;
        let id = maps.next_id;
        let stats = Arc::new(ConnStats::default());
        let kick = Arc::new(Notify::new());
        maps.conns.insert(
            id,
            ConnEntry {
                uuid: Uuid::new_v4(),
                created: SystemTime::now(),
                remote,
                state: ConnState::Idle,
                path: None,
                query: String::new(),
                user_agent: String::new(),
                stats: stats.clone(),
                kick: kick.clone(),
            },
        );
        drop(maps);
        self.bump();
        ConnHandle { id, stats, kick }
    }

    /// What the client said about itself (its `flashVer` and URL query).
    pub fn describe_client(&self, id: ConnId, user_agent: &str, query: &str) {
        if let Some(entry) = self.maps().conns.get_mut(&id) {
            entry.user_agent = user_agent.to_owned();
            entry.query = query.to_owned();
        }
    }

    /// Forgets a connection and whatever role it had.
    pub fn close(&self, id: ConnId) {
        let Some(entry) = self.maps().conns.remove(&id) else {
            return;
        };
        match (entry.state, entry.path) {
            (ConnState::Publish, Some(path)) => self.remove_publisher(id, &path),
            (ConnState::Read, Some(path)) => self.remove_reader(id, &path),
            _ => {}
        }
        self.bump();
    }

    /// Makes `path` available with `id` as its publisher, taking it over
    /// from a previous publisher if the settings allow. Logs MediaMTX's
    /// path lines; the caller then logs its own "is publishing" line.
    pub fn add_publisher(
        &self,
        id: ConnId,
        path: &str,
        tracks: Tracks,
    ) -> Result<SharedPath, PublishRefused> {
        let mut maps = self.maps();
        if let Some(previous) = maps.paths.get(path) {
            if !self.settings.override_publisher {
                return Err(PublishRefused::Busy(path.to_owned()));
            }
            self.log.path(path, "closing existing publisher");
            if let Some(publisher) = maps.conns.get(&previous.publisher) {
                publisher.kick.notify_one();
            }
            let previous = maps.paths.remove(path).expect("checked above");
            set_role(&mut maps, previous.publisher, ConnState::Idle, None);
            terminate_readers(&maps, &previous.relay);
            previous.unavailable.fire();
        }
        let summary = tracks.summary();
        let gop = self
            .settings
            .gop_cache
            .map(|(units, bytes)| GopCache::new(units, bytes));
        let relay = Arc::new(Mutex::new(PathRelay::new(
            tracks,
            self.settings.queue_capacity,
            gop,
        )));
        let available_at = SystemTime::now();
        // MediaMTX starts the hook, then says the path is available.
        let (query, uuid) = maps
            .conns
            .get(&id)
            .map(|c| (c.query.clone(), c.uuid.to_string()))
            .unwrap_or_default();
        let unavailable = crate::hooks::on_available(
            &self.settings.hooks,
            &crate::hooks::Source {
                path,
                query: &query,
                id: uuid,
            },
            &self.log,
        );
        maps.paths.insert(
            path.to_owned(),
            PathEntry {
                publisher: id,
                relay: relay.clone(),
                available_at,
                online_at: SystemTime::now(),
                unavailable,
            },
        );
        set_role(&mut maps, id, ConnState::Publish, Some(path));
        self.log
            .path(path, format_args!("stream is available and online, {summary}"));
        drop(maps);
        self.bump();
        Ok(relay)
    }

    /// Releases `path` if `id` publishes it; its readers are closed at once,
    /// and what was queued for them is dropped (MediaMTX cancels each
    /// reader, which closes its socket without writing its queue).
    pub fn remove_publisher(&self, id: ConnId, path: &str) {
        let mut maps = self.maps();
        if maps.paths.get(path).is_none_or(|p| p.publisher != id) {
            return;
        }
        let removed = maps.paths.remove(path).expect("checked above");
        set_role(&mut maps, id, ConnState::Idle, None);
        terminate_readers(&maps, &removed.relay);
        removed.unavailable.fire();
        drop(maps);
        self.bump();
    }

    /// Adds `id` as a reader of `path`; `None` if the path has no stream.
    pub fn add_reader(&self, id: ConnId, path: &str) -> Option<Joined> {
        let mut maps = self.maps();
        let relay = maps.paths.get(path)?.relay.clone();
        let stats = maps.conns.get(&id)?.stats.clone();
        set_role(&mut maps, id, ConnState::Read, Some(path));
        // Still under the map lock, so the publisher cannot leave in between.
        let joined = lock(&relay).add_reader(id, stats);
        drop(maps);
        self.bump();
        Some(joined)
    }

    pub fn remove_reader(&self, id: ConnId, path: &str) {
        let mut maps = self.maps();
        if let Some(entry) = maps.paths.get(path) {
            lock(&entry.relay).remove_reader(id);
        }
        set_role(&mut maps, id, ConnState::Idle, None);
        drop(maps);
        self.bump();
    }

    pub fn has_stream(&self, path: &str) -> bool {
        self.maps().paths.contains_key(path)
    }

    pub fn publisher_of(&self, path: &str) -> Option<ConnId> {
        self.maps().paths.get(path).map(|p| p.publisher)
    }

    /// Changes whenever the registry does (see `changed`).
    pub fn watch_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn kick(&self, id: ConnId) -> bool {
        match self.maps().conns.get(&id) {
            Some(entry) => {
                // notify_one stores a permit, so a kick is never lost even if
                // the connection is not waiting right now.
                entry.kick.notify_one();
                true
            }
            None => false,
        }
    }

    /// Kicks the connection with this UUID (MediaMTX `rtmpconns/kick`).
    pub fn kick_uuid(&self, uuid: &str) -> Result<(), LookupError> {
        let wanted = Uuid::parse_str(uuid).map_err(|e| LookupError::InvalidId(e.to_string()))?;
        let maps = self.maps();
        let entry = maps
            .conns
            .values()
            .find(|c| c.uuid == wanted)
            .ok_or(LookupError::NotFound)?;
        entry.kick.notify_one();
        Ok(())
    }

    /// Connections, oldest first.
    pub fn connections(&self) -> Vec<ConnInfo> {
        let maps = self.maps();
        let mut conns: Vec<&ConnEntry> = maps.conns.values().collect();
        conns.sort_by_key(|c| c.created);
        conns.into_iter().map(conn_info).collect()
    }

    pub fn connection(&self, uuid: &str) -> Result<ConnInfo, LookupError> {
        let wanted = Uuid::parse_str(uuid).map_err(|e| LookupError::InvalidId(e.to_string()))?;
        let maps = self.maps();
        maps.conns
            .values()
            .find(|c| c.uuid == wanted)
            .map(conn_info)
            .ok_or(LookupError::NotFound)
    }

    /// Paths with a stream, by name.
    pub fn paths(&self) -> Vec<PathInfo> {
        let maps = self.maps();
        let mut paths: Vec<PathInfo> = maps
            .paths
            .iter()
            .map(|(name, p)| path_info(&maps, name, p))
            .collect();
        paths.sort_by(|a, b| a.name.cmp(&b.name));
        paths
    }

    pub fn path(&self, name: &str) -> Option<PathInfo> {
        let maps = self.maps();
        maps.paths.get(name).map(|p| path_info(&maps, name, p))
    }
}

fn conn_ref(maps: &Maps, id: ConnId) -> PathConn {
    PathConn {
        kind: "rtmpConn".to_owned(),
        id: maps
            .conns
            .get(&id)
            .map_or_else(String::new, |c| c.uuid.to_string()),
    }
}

fn conn_info(c: &ConnEntry) -> ConnInfo {
    let inbound = c.stats.inbound.load(Ordering::Relaxed);
    let outbound = c.stats.outbound.load(Ordering::Relaxed);
    ConnInfo {
        id: c.uuid.to_string(),
        created: go_time(c.created),
        remote_addr: c.remote.to_string(),
        state: c.state,
        path: c.path.clone().unwrap_or_default(),
        query: c.query.clone(),
        user: String::new(),
        user_agent: c.user_agent.clone(),
        inbound_bytes: inbound,
        outbound_bytes: outbound,
        outbound_frames_discarded: c.stats.discarded.load(Ordering::Relaxed),
        bytes_received: inbound,
        bytes_sent: outbound,
    }
}

fn path_info(maps: &Maps, name: &str, entry: &PathEntry) -> PathInfo {
    let relay = lock(&entry.relay);
    let tracks = relay.tracks();
    let available = Some(go_time(entry.available_at));
    PathInfo {
        name: name.to_owned(),
        conf_name: "all_others".to_owned(),
        ready: true,
        ready_time: available.clone(),
        available: true,
        available_time: available,
        online: true,
        online_time: Some(go_time(entry.online_at)),
        source: Some(conn_ref(maps, entry.publisher)),
        tracks: tracks.codecs().into_iter().map(str::to_owned).collect(),
        tracks2: track_infos(tracks),
        readers: relay.reader_ids().map(|id| conn_ref(maps, id)).collect(),
        inbound_bytes: relay.inbound_bytes,
        outbound_bytes: relay.outbound_bytes,
        inbound_frames_in_error: 0,
        bytes_received: relay.inbound_bytes,
        bytes_sent: relay.outbound_bytes,
    }
}

fn track_infos(tracks: &Tracks) -> Vec<TrackInfo> {
    let video = tracks.video.as_ref().map(|v| TrackInfo {
        codec: "H264".to_owned(),
        codec_props: v.info.as_ref().map_or(CodecProps::None {}, |info| {
            CodecProps::Video(VideoProps {
                width: info.width,
                height: info.height,
                profile: info.profile_name(),
                level: info.level_name(),
            })
        }),
    });
    let audio = tracks.audio.as_ref().map(|a| TrackInfo {
        codec: a.codec().to_owned(),
        codec_props: match a {
            AudioTrack::Aac {
                params: Some(params), ..
            } => CodecProps::Audio(AudioProps {
                sample_rate: params.sample_rate,
                channel_count: params.channels,
            }),
            _ => CodecProps::None {},
        },
    });
    video.into_iter().chain(audio).collect()
}

/// Ends every reader of a path that lost its publisher: each is kicked (it
/// closes without writing what it had queued) and its queue is closed.
fn terminate_readers(maps: &Maps, relay: &SharedPath) {
    let mut relay = lock(relay);
    for reader in relay.reader_ids() {
        if let Some(conn) = maps.conns.get(&reader) {
            conn.kick.notify_one();
        }
    }
    relay.close_readers();
}

pub(crate) fn lock(relay: &SharedPath) -> MutexGuard<'_, PathRelay> {
    relay.lock().unwrap_or_else(|e| e.into_inner())
}

fn set_role(maps: &mut Maps, id: ConnId, state: ConnState, path: Option<&str>) {
    if let Some(entry) = maps.conns.get_mut(&id) {
        entry.state = state;
        entry.path = path.map(str::to_owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn registry(override_publisher: bool) -> (Registry, tokio::sync::broadcast::Receiver<String>) {
        let log = LogSink::new(64);
        let lines = log.subscribe();
        let settings = PathSettings {
            queue_capacity: 16,
            gop_cache: None,
            override_publisher,
            hooks: crate::hooks::PathHooks::default(),
        };
        (Registry::new(settings, log), lines)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn audio() -> Tracks {
        Tracks {
            video: None,
            audio: Some(AudioTrack::aac(Bytes::from_static(&[0x11, 0x90]))),
        }
    }

    fn drain(lines: &mut tokio::sync::broadcast::Receiver<String>) -> Vec<String> {
        std::iter::from_fn(|| lines.try_recv().ok()).collect()
    }

    #[test]
    fn a_second_publisher_takes_over_and_closes_the_readers() {
        let (reg, mut lines) = registry(true);
        let (a, b, reader) = (reg.open(addr(1)), reg.open(addr(2)), reg.open(addr(3)));
        reg.add_publisher(a.id, "live/x/in", audio()).unwrap();
        let mut joined = reg.add_reader(reader.id, "live/x/in").unwrap();
        drain(&mut lines);
        reg.add_publisher(b.id, "live/x/in", audio()).unwrap();
        assert_eq!(
            drain(&mut lines),
            [
                "INF [path live/x/in] closing existing publisher",
                "INF [path live/x/in] stream is available and online, 1 track (MPEG-4 Audio)"
            ]
        );
        assert!(joined.units.try_recv().is_err() && joined.units.is_closed());
        assert_eq!(reg.publisher_of("live/x/in"), Some(b.id));
        // The first publisher's departure no longer touches the path.
        reg.close(a.id);
        assert!(reg.has_stream("live/x/in"));
    }

    #[test]
    fn without_override_the_second_publisher_is_refused() {
        let (reg, _) = registry(false);
        let (a, b) = (reg.open(addr(1)), reg.open(addr(2)));
        reg.add_publisher(a.id, "p", audio()).unwrap();
        let Err(refused) = reg.add_publisher(b.id, "p", audio()) else {
            panic!("the second publisher must be refused");
        };
        assert_eq!(refused.to_string(), "someone is already publishing to path 'p'");
    }

    #[test]
    fn reading_needs_a_stream_and_ends_with_it() {
        let (reg, _) = registry(true);
        let (publisher, reader) = (reg.open(addr(1)), reg.open(addr(2)));
        assert!(reg.add_reader(reader.id, "p").is_none());
        reg.add_publisher(publisher.id, "p", audio()).unwrap();
        let joined = reg.add_reader(reader.id, "p").unwrap();
        let conns = reg.connections();
        assert_eq!(
            conns.iter().map(|c| c.state).collect::<Vec<_>>(),
            [ConnState::Publish, ConnState::Read]
        );
        let path = reg.path("p").unwrap();
        assert_eq!(path.readers[0].id, conns[1].id);
        assert_eq!(path.source.as_ref().unwrap().id, conns[0].id);
        reg.close(publisher.id);
        assert!(joined.units.is_closed());
        assert!(reg.paths().is_empty());
    }

    #[test]
    fn connections_are_found_and_kicked_by_uuid() {
        let (reg, _) = registry(true);
        let conn = reg.open(addr(1));
        let id = reg.connections()[0].id.clone();
        assert_eq!(reg.connection(&id).unwrap().remote_addr, "127.0.0.1:1");
        assert!(reg.kick_uuid(&id).is_ok());
        assert!(matches!(reg.kick_uuid("abc"), Err(LookupError::InvalidId(_))));
        assert_eq!(
            reg.kick_uuid(&Uuid::new_v4().to_string()),
            Err(LookupError::NotFound)
        );
        assert!(reg.kick(conn.id));
        assert!(!reg.kick(conn.id + 1));
    }
}
