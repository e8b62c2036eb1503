//! Container formats segments are written in.

pub mod mpegts;
