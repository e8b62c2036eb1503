//! MediaMTX's path naming: RTMP clients split `rtmp://host/live/id/in` into
//! an application (`live/id`) and a stream name (`in`) at different places
//! (librtmp and GStreamer at the last slash, ffmpeg at the first), so the
//! path is the two joined back together. Query strings (`?user=..`) carry
//! credentials or options, never part of the name.

/// Joins application and stream name into a path such as `live/id/in`.
pub(crate) fn path_name(app: &str, stream: &str) -> String {
    let app = strip_query(app).trim_matches('/');
    let stream = strip_query(stream).trim_matches('/');
    match (app.is_empty(), stream.is_empty()) {
        (true, _) => stream.to_owned(),
        (_, true) => app.to_owned(),
        _ => format!("{app}/{stream}"),
    }
}

fn strip_query(s: &str) -> &str {
    s.split_once('?').map_or(s, |(before, _)| before)
}

#[cfg(test)]
mod tests {
    use super::path_name;
    use rstest::rstest;

    #[rstest]
    #[case::librtmp_split("live/abc", "in", "live/abc/in")]
    #[case::ffmpeg_split("live", "abc/in", "live/abc/in")]
    #[case::trailing_slash_on_app("live/abc/", "in", "live/abc/in")]
    #[case::query_on_stream("live/abc", "in?user=a&pass=b", "live/abc/in")]
    #[case::query_on_app("live?token=1", "in", "live/in")]
    #[case::no_stream("live", "", "live")]
    #[case::no_app("", "in", "in")]
    fn joins_app_and_stream(#[case] app: &str, #[case] stream: &str, #[case] path: &str) {
        assert_eq!(path_name(app, stream), path);
    }
}
