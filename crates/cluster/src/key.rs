//! Stream ids as bucket keys. A stream id may hold '.', which NATS reads
//! as a subject separator (so `a..b` or `a.` would be refused); '=' is a
//! valid key character that stream ids never hold, so it stands for '.'.

pub(crate) fn of_stream(stream: &str) -> String {
    stream.replace('.', "=")
}

pub(crate) fn to_stream(key: &str) -> String {
    key.replace('=', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_round_trip_through_a_valid_key() {
        for id in ["cam1", "a.b", "a..b", "x.", "a_b-c"] {
            let key = of_stream(id);
            assert!(!key.contains('.'), "{key}");
            assert_eq!(to_stream(&key), id);
        }
    }
}
