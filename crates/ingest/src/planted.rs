//! Deliberate defects, compiled only with the `planted-faults` feature, so
//! the scenario harness can prove it catches a broken ingest (its self-test
//! plants a fault, runs a scenario, and expects it to fail). Without the
//! feature every call here is a no-op.

use crate::media::MediaBuffer;
#[cfg(feature = "planted-faults")]
use crate::media::MediaKind;

#[cfg(feature = "planted-faults")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Cuts land one picture after each keyframe, so segments start on a
    /// predicted picture.
    MisalignedCuts,
    /// Audio buffers are thrown away.
    DropAudio,
}

#[cfg(feature = "planted-faults")]
static PLANTED: std::sync::Mutex<Option<Fault>> = std::sync::Mutex::new(None);

/// Plants (or with `None` removes) a fault for every session started after.
#[cfg(feature = "planted-faults")]
pub fn plant(fault: Option<Fault>) {
    *PLANTED.lock().expect("planted fault lock") = fault;
}

/// The fault state of one session.
#[derive(Debug, Default)]
pub(crate) struct PlantedFaults {
    #[cfg(feature = "planted-faults")]
    fault: Option<Fault>,
    #[cfg(feature = "planted-faults")]
    previous_was_key: bool,
}

impl PlantedFaults {
    pub fn current() -> Self {
        #[cfg(feature = "planted-faults")]
        {
            Self {
                fault: *PLANTED.lock().expect("planted fault lock"),
                previous_was_key: false,
            }
        }
        #[cfg(not(feature = "planted-faults"))]
        Self::default()
    }

    /// The buffer as the faulty ingest would see it, or `None` to drop it.
    pub fn apply(&mut self, buffer: MediaBuffer) -> Option<MediaBuffer> {
        #[cfg(feature = "planted-faults")]
        {
            let mut buffer = buffer;
            match (self.fault, buffer.kind) {
                (Some(Fault::DropAudio), MediaKind::Audio) => return None,
                (Some(Fault::MisalignedCuts), MediaKind::Video) => {
                    // Each picture takes the previous one's keyframe flag.
                    std::mem::swap(&mut buffer.keyframe, &mut self.previous_was_key);
                }
                _ => {}
            }
            Some(buffer)
        }
        #[cfg(not(feature = "planted-faults"))]
        Some(buffer)
    }
}
