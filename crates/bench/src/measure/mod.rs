//! How every contender is measured, identically: OS accounting of its
//! processes, file availability through inotify, frames through ffprobe.

pub mod availability;
pub mod frames;
pub mod process;
pub mod stats;
