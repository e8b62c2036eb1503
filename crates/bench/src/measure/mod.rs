//! How every contender is measured, identically: OS accounting of its
//! processes, file availability through inotify, frames through ffprobe;
//! and, for the soak, RSS over time and the manifest's tiling.

pub mod availability;
pub mod contiguity;
pub mod frames;
pub mod process;
pub mod rss;
pub mod stats;
