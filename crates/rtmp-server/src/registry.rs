//! Who is connected and who publishes or reads which path. One lock guards
//! the maps (taken on connect, publish, play and leave); each path has its
//! own lock, so frames of different paths never contend.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, watch};

use crate::info::{ConnInfo, ConnState, PathConn, PathInfo};
use crate::media::Frame;
use crate::relay::PathRelay;

pub(crate) type ConnId = u64;

/// Byte and frame counters a connection updates without taking any lock.
#[derive(Debug, Default)]
pub(crate) struct ConnStats {
    pub inbound: AtomicU64,
    pub outbound: AtomicU64,
    pub discarded: AtomicU64,
}

/// Limits every new path is created with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathLimits {
    pub reader_capacity: usize,
    pub gop_max_frames: usize,
    pub gop_max_bytes: usize,
}

pub(crate) type SharedPath = Arc<Mutex<PathRelay>>;

struct ConnEntry {
    remote: SocketAddr,
    state: ConnState,
    path: Option<String>,
    stats: Arc<ConnStats>,
    kick: Arc<Notify>,
}

struct PathEntry {
    publisher: ConnId,
    relay: SharedPath,
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

pub(crate) struct Registry {
    limits: PathLimits,
    maps: Mutex<Maps>,
    /// Bumped whenever a connection, path, publisher or reader comes or goes.
    changed: watch::Sender<u64>,
}

impl Registry {
    pub fn new(limits: PathLimits) -> Self {
        Self {
            limits,
            maps: Mutex::default(),
            changed: watch::Sender::new(0),
        }
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        // A panic while holding the lock leaves consistent maps (every
        // mutation is a single insert/remove), so poisoning is ignored.
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
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
                remote,
                state: ConnState::Idle,
                path: None,
                stats: stats.clone(),
                kick: kick.clone(),
            },
        );
        drop(maps);
        self.bump();
        ConnHandle { id, stats, kick }
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// Forgets a connection and whatever role it had. Returns the path it
    /// stopped publishing, if any (its readers are then closed, after they
    /// drained what was queued for them).
    pub fn close(&self, id: ConnId) -> Option<String> {
        let mut maps = self.maps();
        let entry = maps.conns.remove(&id)?;
        drop(maps);
        let unpublished = match (entry.state, entry.path) {
            (ConnState::Publish, Some(path)) => self.unpublish(id, &path).then_some(path),
            (ConnState::Read, Some(path)) => {
                self.stop_reading(id, &path);
                None
            }
            _ => None,
        };
        self.bump();
        unpublished
    }

    /// Claims `path` for `id`. `None` if someone already publishes it.
    pub fn publish(&self, id: ConnId, path: &str) -> Option<SharedPath> {
        let mut maps = self.maps();
        if maps.paths.contains_key(path) {
            return None;
        }
        let limits = self.limits;
        let relay = Arc::new(Mutex::new(PathRelay::new(
            limits.reader_capacity,
            limits.gop_max_frames,
            limits.gop_max_bytes,
        )));
        maps.paths.insert(
            path.to_owned(),
            PathEntry {
                publisher: id,
                relay: relay.clone(),
            },
        );
        set_role(&mut maps, id, ConnState::Publish, Some(path));
        drop(maps);
        self.bump();
        Some(relay)
    }

    /// Releases `path` if `id` publishes it. Dropping the path's relay drops
    /// every reader's sender, which is how readers learn the stream ended.
    pub fn unpublish(&self, id: ConnId, path: &str) -> bool {
        let mut maps = self.maps();
        if maps.paths.get(path).is_none_or(|p| p.publisher != id) {
            return false;
        }
        let removed = maps.paths.remove(path);
        set_role(&mut maps, id, ConnState::Idle, None);
        drop(maps);
        if let Some(entry) = removed {
            // The publisher's task may still hold the relay for a moment;
            // readers must not wait for that.
            lock(&entry.relay).close_readers();
        }
        self.bump();
        true
    }

    /// Adds `id` as a reader of `path`; `None` if nobody publishes it.
    pub fn play(&self, id: ConnId, path: &str) -> Option<(mpsc::Receiver<Frame>, Vec<String>)> {
        let mut maps = self.maps();
        let relay = maps.paths.get(path)?.relay.clone();
        let stats = maps.conns.get(&id)?.stats.clone();
        set_role(&mut maps, id, ConnState::Read, Some(path));
        // Still under the map lock, so the publisher cannot leave in between.
        let mut relay = lock(&relay);
        let playing = (relay.add_reader(id, stats), relay.tracks());
        drop(relay);
        drop(maps);
        self.bump();
        Some(playing)
    }

    pub fn stop_reading(&self, id: ConnId, path: &str) {
        let mut maps = self.maps();
        if let Some(entry) = maps.paths.get(path) {
            lock(&entry.relay).remove_reader(id);
        }
        set_role(&mut maps, id, ConnState::Idle, None);
        drop(maps);
        self.bump();
    }

    pub fn has_publisher(&self, path: &str) -> bool {
        self.maps().paths.contains_key(path)
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

    pub fn publisher_of(&self, path: &str) -> Option<ConnId> {
        self.maps().paths.get(path).map(|p| p.publisher)
    }

    pub fn connections(&self) -> Vec<ConnInfo> {
        let maps = self.maps();
        let mut list: Vec<_> = maps
            .conns
            .iter()
            .map(|(id, c)| ConnInfo {
                id: id.to_string(),
                remote_addr: c.remote,
                state: c.state,
                path: c.path.clone().unwrap_or_default(),
                inbound_bytes: c.stats.inbound.load(Ordering::Relaxed),
                outbound_bytes: c.stats.outbound.load(Ordering::Relaxed),
                outbound_frames_discarded: c.stats.discarded.load(Ordering::Relaxed),
            })
            .collect();
        list.sort_by_key(|c| c.id.parse::<u64>().unwrap_or_default());
        list
    }

    pub fn paths(&self) -> Vec<PathInfo> {
        let maps = self.maps();
        let conn = |id: ConnId| PathConn {
            id: id.to_string(),
            remote_addr: maps
                .conns
                .get(&id)
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.remote),
        };
        let mut list: Vec<_> = maps
            .paths
            .iter()
            .map(|(name, entry)| {
                let relay = lock(&entry.relay);
                PathInfo {
                    name: name.clone(),
                    ready: relay.ready(),
                    source: conn(entry.publisher),
                    tracks: relay.tracks(),
                    readers: relay.reader_ids().map(conn).collect(),
                    inbound_bytes: relay.inbound_bytes,
                    outbound_bytes: relay.outbound_bytes,
                }
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }
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

    fn registry() -> Registry {
        Registry::new(PathLimits {
            reader_capacity: 16,
            gop_max_frames: 8,
            gop_max_bytes: 1 << 20,
        })
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn one_publisher_per_path() {
        let reg = registry();
        let a = reg.open(addr(1));
        let b = reg.open(addr(2));
        assert!(reg.publish(a.id, "live/x/in").is_some());
        assert!(reg.publish(b.id, "live/x/in").is_none());
        assert!(reg.publish(b.id, "live/y/in").is_some());
        assert_eq!(reg.publisher_of("live/x/in"), Some(a.id));
    }

    #[test]
    fn reading_needs_a_publisher_and_ends_with_it() {
        let reg = registry();
        let publisher = reg.open(addr(1));
        let reader = reg.open(addr(2));
        assert!(reg.play(reader.id, "live/x/in").is_none());
        let _relay = reg.publish(publisher.id, "live/x/in").unwrap();
        let (mut rx, _) = reg.play(reader.id, "live/x/in").unwrap();
        assert_eq!(reg.connections()[1].state, ConnState::Read);
        assert_eq!(reg.paths()[0].readers.len(), 1);
        assert_eq!(reg.close(publisher.id).as_deref(), Some("live/x/in"));
        assert!(rx.try_recv().is_err() && rx.is_closed());
        assert!(reg.paths().is_empty());
    }

    #[test]
    fn closing_a_reader_removes_it_from_the_path() {
        let reg = registry();
        let publisher = reg.open(addr(1));
        let reader = reg.open(addr(2));
        let _relay = reg.publish(publisher.id, "p").unwrap();
        let _rx = reg.play(reader.id, "p").unwrap();
        assert_eq!(reg.close(reader.id), None);
        assert!(reg.paths()[0].readers.is_empty());
        assert_eq!(reg.connections().len(), 1);
    }

    #[test]
    fn kick_unknown_connection_is_false() {
        let reg = registry();
        let c = reg.open(addr(1));
        assert!(reg.kick(c.id));
        assert!(!reg.kick(c.id + 1));
    }
}
