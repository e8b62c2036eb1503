//! What a service stream's output carried: its spans by kind, the tones
//! its reads hold, and whether the two agree. Which spans carried the dub
//! depends on how fast the STS answered, so the outcome keeps only what
//! holds at any speed (the count, the agreement, dub or not) and the split
//! goes to the report.

use ingest::{MediaKind, SpanAudio};
use serde::Serialize;

use super::report::OutputSpans;
use crate::observe::service::ObservedServiceStream;
use crate::plan::service::OutputAudio;

/// A tone carries a read when it holds this share of the audio's energy.
const CARRIES: f64 = 0.5;
/// A tone is absent below this share.
const ABSENT: f64 = 0.05;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutputFacts {
    /// Spans the manifest records. Which of them carried the dub and which
    /// the fallback depends on how fast the STS answered, so that split
    /// goes to the report.
    pub spans: usize,
    /// Reads of `live/<id>/out` (one per output publish).
    pub reads: usize,
    /// Every read holds every picture from its first keyframe, in order.
    pub every_picture: bool,
    /// The output sent as many pictures as the worker wrote to its
    /// segments (known where one service run saw the whole stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_every_segment_picture: Option<bool>,
    /// Every read that runs to the input's end keeps the audio in place
    /// within one audio frame.
    pub aligned: bool,
    /// The tones heard agree with the manifest's spans: the dub's tone
    /// where a span says dub, and no dub where none does.
    pub heard_as_recorded: bool,
    /// What the spans carried: `dub` where any span carried the STS's
    /// answer (the others carried the fallback, their dub being late),
    /// else the fallback.
    pub carries: Option<OutputAudio>,
    /// The spans by kind, for the report and the unmet's message.
    #[serde(skip)]
    pub(crate) kinds: OutputSpans,
    /// The shares of the dub's and the original's tones in the reads.
    #[serde(skip)]
    pub(crate) heard: (f64, f64),
}

impl OutputSpans {
    fn of(stream: &ObservedServiceStream) -> Self {
        stream.spans().iter().fold(Self::default(), |mut kinds, span| {
            match span.audio {
                SpanAudio::Dub => kinds.dub += 1,
                SpanAudio::Original => kinds.original += 1,
                SpanAudio::Silence => kinds.silence += 1,
            }
            kinds
        })
    }

    fn total(self) -> usize {
        self.dub + self.original + self.silence
    }

    /// What the spans carried, in the terms of `OutputFacts::carries`.
    fn carry(self) -> Option<OutputAudio> {
        match (self.dub, self.original, self.silence) {
            (1.., _, _) => Some(OutputAudio::Dub),
            (0, 1.., 0) => Some(OutputAudio::Original),
            (0, 0, 1..) => Some(OutputAudio::Silence),
            (0, 0, 0) => None,
            (0, 1.., 1..) => Some(OutputAudio::Mixed),
        }
    }
}

/// Whether tones heard at these shares of the output's audio agree with
/// the spans: the dub heard where any span carried it and not where none
/// did, the original heard where every span fell back to it and not where
/// every span carried the dub.
fn heard_as_recorded(kinds: OutputSpans, dub: f64, original: f64) -> bool {
    match (kinds.dub, kinds.original, kinds.silence) {
        (0, 0, 0) => true,
        (0, 0, _) => dub < ABSENT && original < ABSENT,
        (0, _, 0) => dub < ABSENT && original >= CARRIES,
        (0, _, _) => dub < ABSENT,
        (_, 0, 0) => dub >= CARRIES && original < ABSENT,
        _ => dub >= ABSENT,
    }
}

pub(crate) fn output_facts(stream: &ObservedServiceStream, one_run: bool) -> Option<OutputFacts> {
    let kinds = OutputSpans::of(stream);
    if kinds.total() == 0 && stream.reads.is_empty() {
        return None;
    }
    let (dub, original, weight) = stream.reads.iter().fold((0.0, 0.0, 0.0), |(d, o, w), r| {
        let n = r.pictures.max(1) as f64;
        (d + r.dub_share * n, o + r.original_share * n, w + n)
    });
    let written: u64 = stream
        .segments()
        .iter()
        .filter(|s| s.kind == MediaKind::Video)
        .map(|s| s.frames)
        .sum();
    Some(OutputFacts {
        spans: kinds.total(),
        reads: stream.reads.len(),
        every_picture: !stream.reads.is_empty() && stream.reads.iter().all(|r| r.contiguous),
        sent_every_segment_picture: one_run
            .then(|| stream.view.as_ref().map(|v| v.output_pictures == written))
            .flatten(),
        aligned: stream.reads.iter().all(|r| r.aligned != Some(false)),
        heard_as_recorded: weight > 0.0 && heard_as_recorded(kinds, dub / weight, original / weight),
        carries: kinds.carry(),
        kinds,
        heard: if weight > 0.0 {
            (dub / weight, original / weight)
        } else {
            (0.0, 0.0)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(dub: usize, original: usize, silence: usize) -> OutputSpans {
        OutputSpans {
            dub,
            original,
            silence,
        }
    }

    #[test]
    fn a_dub_that_came_late_for_some_spans_still_says_dub() {
        assert_eq!(spans(5, 0, 0).carry(), Some(OutputAudio::Dub));
        assert_eq!(spans(4, 1, 0).carry(), Some(OutputAudio::Dub));
        assert_eq!(spans(0, 3, 0).carry(), Some(OutputAudio::Original));
        assert_eq!(spans(0, 0, 2).carry(), Some(OutputAudio::Silence));
        assert_eq!(spans(0, 0, 0).carry(), None);
    }

    #[test]
    fn the_tones_heard_must_agree_with_the_spans() {
        assert!(heard_as_recorded(spans(5, 0, 0), 0.9, 0.0));
        assert!(
            !heard_as_recorded(spans(5, 0, 0), 0.9, 0.3),
            "the original where all is dub"
        );
        assert!(heard_as_recorded(spans(4, 1, 0), 0.7, 0.2));
        assert!(
            !heard_as_recorded(spans(4, 1, 0), 0.0, 0.9),
            "no dub heard where a span says dub"
        );
        assert!(heard_as_recorded(spans(0, 3, 0), 0.0, 0.8));
        assert!(
            !heard_as_recorded(spans(0, 3, 0), 0.2, 0.8),
            "a dub heard where none was sent"
        );
        assert!(heard_as_recorded(spans(0, 0, 2), 0.0, 0.01));
        assert!(
            !heard_as_recorded(spans(0, 0, 2), 0.0, 0.6),
            "the original where silence"
        );
    }
}
