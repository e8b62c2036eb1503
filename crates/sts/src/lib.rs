//! Speech-to-speech (STS) delivery for the live-dubbing pipeline.
//!
//! The ingest writes each audio segment (MPEG-TS holding one AAC stream) to
//! disk; this crate sends every one of them to the STS service over
//! Socket.IO and writes the dubbed answer next to the segment as
//! `dubbed_NNNNNN.aac` (or `.wav` for PCM), reporting each step as an
//! [`StsEvent`].
//!
//! ```no_run
//! # async fn example() -> Result<(), sts::StsError> {
//! use std::time::Duration;
//! use sts::{Fragment, StsClient, StsConfig, StsEvent};
//!
//! let config = StsConfig::new("http://127.0.0.1:5000");
//! let (sts, mut events) = StsClient::start(config, "cam1", "worker-1")?;
//! // From the segment writer, once `audio_000000.ts` is renamed into place:
//! let _ = sts.submit(Fragment {
//!     sequence_number: 0,
//!     path: "segments/cam1/audio_000000.ts".into(),
//!     start: Duration::ZERO,
//!     duration: Duration::from_secs(6),
//!     pts_ns: 0,
//! });
//! tokio::spawn(async move {
//!     while let Some(event) = events.recv().await {
//!         if let StsEvent::FragmentProcessed { dubbed_file, .. } = event {
//!             println!("dubbed: {}", dubbed_file.display());
//!         }
//!     }
//! });
//! let summary = sts.end().await;
//! println!("{} processed, {} failed", summary.processed, summary.failed);
//! # Ok(())
//! # }
//! ```
//!
//! # The segmenter never waits
//!
//! [`StsHandle::submit`] is a non-blocking call usable from any thread (the
//! ingest's GStreamer threads included): it takes a place in a bounded
//! queue and returns. One task per stream does the rest: reading the
//! segment from disk when it is its turn (so memory holds paths, not audio),
//! sending, waiting for answers, reconnecting.
//!
//! # Flow control and the overflow policy
//!
//! - At most `max_inflight` fragments (the STS's figure from `stream:ready`)
//!   are sent and unanswered at any time; `fragment:ack` does not free a
//!   slot, only `fragment:processed` or a fragment `error` does. The others
//!   wait, in sequence order.
//! - `backpressure` is obeyed: nothing is sent until `recommended_delay_ms`
//!   after it arrived (capped by [`Timeouts::max_backpressure_delay`], so a
//!   wrong figure cannot stall a live stream for ever).
//! - [`StsConfig::max_queue`] bounds the fragments held at once, waiting or
//!   in flight. A submission beyond it is **refused, not dropped**: the
//!   segment stays on disk, `submit` returns [`SubmitError::QueueFull`] and
//!   a [`StsEvent::FragmentNotSent`] names the file and the reason. The
//!   newest is refused rather than the oldest evicted, so what is sent stays
//!   in order and nothing already promised to the STS is taken back.
//! - Every fragment ends in exactly one of `FragmentProcessed`,
//!   `FragmentFailed` (with the reason) or `FragmentNotSent`.
//!
//! # Faults
//!
//! - STS unreachable, gone mid-stream, a session-level `error`, a heartbeat
//!   lost, or a malformed message (which closes that session with the reason
//!   logged and reported in [`StsEvent::Disconnected`]): the client
//!   reconnects with exponential backoff ([`ReconnectPolicy`]), sends
//!   `stream:init` again and resends every unanswered fragment with the
//!   **same** `fragment_id`, so the STS can tell a resend from a new
//!   fragment. An answer for a fragment already settled (the STS saw it
//!   twice) is ignored: each fragment is recorded once.
//! - A fragment-level `error` (one naming a `fragment_id`) is retried
//!   [`StsConfig::error_retries`] times (default 1), then that fragment fails
//!   with the STS's code and message.
//! - A fragment unanswered [`Timeouts::fragment`] after submission fails
//!   with the reason (never sent because the STS was unreachable, or sent
//!   and unanswered), so an STS that is down for a whole stream costs bounded
//!   time and memory; [`StsHandle::end`] waits at most [`Timeouts::end`]
//!   before failing what is left and sending `stream:end`.
//!
//! # Layout
//!
//! `client` (the handle) -> `driver` (the per-stream task: connect,
//! backoff, send, settle) using `ledger` (pure flow-control bookkeeping),
//! `session` (one STS session over `socketio`, a minimal Engine.IO v4 /
//! Socket.IO v5 client), `protocol` (the STS messages), `payload` (ADTS out
//! of MPEG-TS, or PCM from the caller's decoder) and `dubbed` (the answer
//! on disk, WAV-wrapped for PCM). Each module's doc says
//! why it is hand-written where it is.
//!
//! # Formats
//!
//! `aac` sends the segment's ADTS frames as they are, without decoding;
//! the dub is written as `dubbed_NNNNNN.aac` if it is whole ADTS frames.
//! `pcm_s16le` sends the segment decoded to interleaved 16-bit PCM at the
//! configured rate and channel count, announced in `stream:init`; the dub
//! is written as `dubbed_NNNNNN.wav` (a WAV header around the returned
//! samples, at the answer's rate and channels, else the announced ones).
//!
//! Decoding AAC needs a media framework and this crate links none: the
//! caller passes a [`PcmDecoder`] to [`StsClient::start_with_decoder`] (the
//! ingest's is GStreamer; the tests' is ffmpeg), and [`StsClient::start`]
//! refuses `pcm_s16le` with [`ConfigError::Unsupported`]. The crate calls
//! it when the fragment's turn to be sent comes, on a blocking thread, so a
//! decode runs neither on the segmenter's threads nor on the driver's task,
//! and a queued fragment is still only a path; whatever it returns is
//! checked to be whole frames.
//!
//! `fragment:data` carries `timestamp` as wall-clock milliseconds since the
//! Unix epoch at submission, `duration_ms` from the manifest, sample rate
//! and channels from the segment's ADTS headers (`aac`) or the decode
//! target (`pcm_s16le`), and `metadata.pts_ns`; a `fragment_id` is `<stream>-<run>-<NNNNNN>`, the run
//! token random per client so a restarted worker never reuses one.
//!
//! # Why the Socket.IO client is hand-written
//!
//! `rust_socketio` 0.6 (`async` feature), the maintained-looking choice on
//! crates.io, does not fit: it routes the STS's `error` event and its own
//! transport and parse errors to the same reserved `Event::Error`
//! callback, so they cannot be told apart; its poll loop carries on after
//! malformed packets instead of letting the caller close the session; it
//! reconnects by itself with its own backoff while this client must redo
//! `stream:init` and resend per session (a manual disconnect not stopping
//! it is an open issue, 1c3t3a/rust-socketio#374, whose fix #466 sits
//! unmerged under a 2025 comment asking whether the library is still
//! maintained); panics on server disconnect
//! (#323, #216) and a missed transport close (#448) are in its record; and
//! it pulls OpenSSL, reqwest and an old tungstenite. Its fork
//! `tf-rust-socketio` shares the design. The subset the STS protocol uses
//! (websocket transport, default namespace, JSON events, ping/pong) is a
//! few hundred lines over `tokio-tungstenite`, tested packet by packet, and
//! never panics or reconnects behind the driver's back. No TLS: the STS is
//! reached over `http`/`ws` next to the worker; `https`/`wss` is refused
//! with [`ConfigError::Unsupported`].
//!
//! # Why the MPEG-TS demux is hand-written
//!
//! The segments hold one program with one ADTS AAC stream and single-packet
//! PSI (the ingest's writer and ffmpeg both write that), so lifting the
//! frames is ~150 lines: PAT -> PMT -> PES payloads of one PID, with the
//! continuity counter checked so a lost packet is an error rather than two
//! spliced frames. `mpeg2ts-reader` would need its demux-context and
//! consumer traits wired up for that one PID, and `mpeg2ts` brings its own
//! error framework.
//!
//! # Testing against a real STS
//!
//! `tools/sts-echo/echo.py` is an echo STS on python-socketio and aiohttp
//! with fault flags; the integration tests (`tests/`) and the benchmark
//! (`benches/delivery.rs`) start it as a child process on a free loopback
//! port, making its venv under `target/sts-echo-venv` when missing.

// Modules stay private: the API is what the crate root re-exports.
mod client;
mod config;
mod driver;
mod dubbed;
mod error;
mod event;
mod fragment;
mod ledger;
mod payload;
mod protocol;
mod session;
mod socketio;

pub use client::{StsClient, StsHandle};
pub use config::{AudioFormat, StsConfig, Timeouts};
pub use error::{ConfigError, StsError, SubmitError};
pub use event::{EndSummary, StsEvent};
pub use fragment::Fragment;
pub use payload::pcm::{DecodeError, PcmDecoder, PcmRequest};
pub use reconnect::ReconnectPolicy;
