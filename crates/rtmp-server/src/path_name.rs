//! MediaMTX's path naming: an RTMP client splits `rtmp://host/live/id/in`
//! into an application and a stream name (librtmp, GStreamer and ffmpeg
//! 5 at the last slash; other clients elsewhere), so the path is the two
//! joined back together. Query strings (`?user=..`) carry credentials or
//! options, never part of the name; MediaMTX reports them as the
//! connection's `query`.

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

/// The query string of the stream name, else of the application.
pub(crate) fn query_of(app: &str, stream: &str) -> String {
    [stream, app]
        .into_iter()
        .find_map(|s| s.split_once('?').map(|(_, query)| query.to_owned()))
        .unwrap_or_default()
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

    #[test]
    fn keeps_the_query_apart() {
        use super::query_of;
        assert_eq!(query_of("live/a", "in?user=u&pass=p"), "user=u&pass=p");
        assert_eq!(query_of("live?token=1", "in"), "token=1");
        assert_eq!(query_of("live/a", "in"), "");
    }
}
