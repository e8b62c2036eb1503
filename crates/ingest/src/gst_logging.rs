//! GStreamer's own logging, set up once per process.
//!
//! When rtmpsrc's plugin loads it maps the threshold of the "rtmp" debug
//! category onto librtmp's log level, and it maps "no threshold" (what
//! GStreamer has when `GST_DEBUG` is unset) to librtmp's most verbose level:
//! librtmp then hex-dumps every packet into log lines nobody reads, which
//! costs the reading thread about a third of its CPU. Giving the category a
//! threshold of ERROR before the plugin loads keeps librtmp quiet.
//!
//! That threshold would also print librtmp's error lines on stderr, which
//! without `GST_DEBUG` nobody asked for (the ingest reports every failure
//! itself, and librtmp's lines can name the user part of a URL as a host),
//! so GStreamer's default output is then switched off: exactly as silent as
//! GStreamer is by default. With `GST_DEBUG` set, its output is left alone.

use gstreamer as gst;

/// Call right after `gst::init`, before any rtmpsrc is created.
pub(crate) fn configure() {
    let user_setting = std::env::var("GST_DEBUG").ok();
    if user_setting.is_none() {
        gst::log::remove_default_log_function();
    }
    let user_chose_rtmp = user_setting.is_some_and(|s| s.contains("rtmp"));
    if !user_chose_rtmp && gst::log::get_default_threshold() < gst::DebugLevel::Error {
        gst::log::set_threshold_for_name("rtmp", gst::DebugLevel::Error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn librtmp_gets_an_error_threshold_unless_gst_debug_says_otherwise() {
        crate::gst_runtime::gst_init().unwrap();
        // Loading rtmpsrc's plugin registers the category and reads it.
        gst::ElementFactory::make("rtmpsrc").build().unwrap();
        let category = gst::DebugCategory::get("rtmp").expect("rtmpsrc's plugin registers \"rtmp\"");
        if std::env::var_os("GST_DEBUG").is_none() {
            assert_eq!(category.threshold(), gst::DebugLevel::Error);
        }
    }
}
