//! GStreamer for the whole process: initialised once, with its logging
//! set up before any source loads, and the elements the ingest needs
//! checked by name.

use std::sync::OnceLock;

use crate::error::IngestError;

/// Initialises GStreamer once per process.
pub fn gst_init() -> Result<(), IngestError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        crate::gst_logging::configure();
        Ok(())
    })
    .clone()
    .map_err(IngestError::GstInit)
}

/// Fails with the name of the first element that is not installed.
pub fn check_elements(names: &[&str]) -> Result<(), IngestError> {
    gst_init()?;
    for name in names {
        if gstreamer::ElementFactory::find(name).is_none() {
            return Err(IngestError::MissingElement {
                element: (*name).to_owned(),
                reason: "no such element factory is registered".into(),
            });
        }
    }
    Ok(())
}
