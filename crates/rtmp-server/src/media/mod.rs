//! The stream as MediaMTX carries it: publisher tags become units
//! ([`units`]), each reader turns units back into tags of its own
//! ([`reader`]). Codec knowledge lives in [`h264`], [`dts`] and [`aac`].

pub(crate) mod aac;
pub(crate) mod dts;
pub(crate) mod h264;
pub(crate) mod reader;
mod tag;
pub(crate) mod tracks;
pub(crate) mod units;

pub(crate) use tag::*;
