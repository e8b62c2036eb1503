//! What the service does, in the Prometheus text format, through the
//! maintained `prometheus-client`: streams discovered, active and refused;
//! worker starts, restarts and failures; segments and bytes per track;
//! fragments by status; the STS round trip and the output's delay as
//! histograms; output spans by audio; reconnects; whether the API answers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Track {
    pub track: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Status {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Audio {
    pub audio: String,
}

pub(crate) struct Metrics {
    registry: Registry,
    pub discovered: Counter,
    pub active: Gauge,
    pub refused: Family<Reason, Counter>,
    pub worker_starts: Counter,
    pub worker_restarts: Counter,
    pub worker_failures: Counter,
    pub segments: Family<Track, Counter>,
    pub segment_bytes: Family<Track, Counter>,
    pub fragments: Family<Status, Counter>,
    pub sts_round_trip: Histogram,
    pub output_delay: Histogram,
    pub output_spans: Family<Audio, Counter>,
    pub reconnects: Counter,
    pub api_up: Gauge,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("dubbing");
        let metrics = Self {
            discovered: Counter::default(),
            active: Gauge::default(),
            refused: Family::default(),
            worker_starts: Counter::default(),
            worker_restarts: Counter::default(),
            worker_failures: Counter::default(),
            segments: Family::default(),
            segment_bytes: Family::default(),
            fragments: Family::default(),
            // 50 ms to ~100 s.
            sts_round_trip: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            // 1 s to ~60 s: the output runs seconds behind its input.
            output_delay: Histogram::new(exponential_buckets(1.0, 1.5, 11)),
            output_spans: Family::default(),
            reconnects: Counter::default(),
            api_up: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "streams_discovered",
            "Input streams seen available for the first time",
            metrics.discovered.clone(),
        );
        registry.register("streams_active", "Streams with a worker", metrics.active.clone());
        registry.register(
            "streams_refused",
            "Input paths refused, by reason",
            metrics.refused.clone(),
        );
        registry.register("worker_starts", "Workers started", metrics.worker_starts.clone());
        registry.register(
            "worker_restarts",
            "Workers started again after a failure",
            metrics.worker_restarts.clone(),
        );
        registry.register(
            "worker_failures",
            "Workers that ended with an error",
            metrics.worker_failures.clone(),
        );
        registry.register("segments", "Segments written, by track", metrics.segments.clone());
        registry.register(
            "segment_bytes",
            "Bytes of segments written, by track",
            metrics.segment_bytes.clone(),
        );
        registry.register(
            "fragments",
            "STS fragments by final status",
            metrics.fragments.clone(),
        );
        registry.register(
            "sts_round_trip_seconds",
            "From an audio segment written to its dub in place",
            metrics.sts_round_trip.clone(),
        );
        registry.register(
            "output_delay_seconds",
            "How far behind its input a span's first frame left for the output",
            metrics.output_delay.clone(),
        );
        registry.register(
            "output_spans",
            "Output audio spans, by what they carried",
            metrics.output_spans.clone(),
        );
        registry.register(
            "reconnects",
            "Input reconnect attempts",
            metrics.reconnects.clone(),
        );
        registry.register(
            "api_up",
            "Whether MediaMTX's Control API answered the last poll",
            metrics.api_up.clone(),
        );
        Self { registry, ..metrics }
    }

    /// The text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}
