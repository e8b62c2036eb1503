//! Keeps a worker that retries from flooding the terminal: while a server
//! refuses or a stream is missing, the worker tries again several times a
//! second, each attempt two events. A person needs the first failure, a
//! word now and then that it goes on (after 2, 4, 8, ... identical
//! failures), and how long it lasted once something else happens. JSON
//! output is not summarised: a program reading it gets every event.

use std::time::{Duration, Instant};

use ingest::WorkerEvent;

#[derive(Debug, Default)]
pub(crate) struct Repeats {
    /// The failure being repeated, since when, how often, and how many
    /// repeats have gone unsaid.
    current: Option<Streak>,
}

#[derive(Debug)]
struct Streak {
    reason: String,
    since: Instant,
    count: u32,
    unsaid: u32,
    next_word: u32,
}

impl Repeats {
    /// Whether `event` gets its own line (`describe`d by the caller), and
    /// any summary to print before it. `now` is when it arrived.
    pub(crate) fn judge(&mut self, event: &WorkerEvent, now: Instant) -> (Vec<String>, bool) {
        match event {
            // The reconnect line already said that another attempt comes.
            WorkerEvent::Connecting { attempt, .. } if *attempt > 1 => (Vec::new(), false),
            WorkerEvent::Reconnecting { reason, delay_ms, .. } => {
                if let Some(streak) = self.current.as_mut().filter(|s| s.reason == *reason) {
                    streak.count += 1;
                    if streak.count < streak.next_word {
                        streak.unsaid += 1;
                        return (Vec::new(), false);
                    }
                    streak.next_word *= 2;
                    streak.unsaid = 0;
                    let line = format!(
                        "reconnecting: still failing, {} times in {} (next attempt in {delay_ms} ms): {reason}",
                        streak.count,
                        seconds(now.duration_since(streak.since))
                    );
                    return (vec![line], false);
                }
                let said = self.end_streak(now);
                self.current = Some(Streak {
                    reason: reason.clone(),
                    since: now,
                    count: 1,
                    unsaid: 0,
                    next_word: 2,
                });
                (said, true)
            }
            _ => (self.end_streak(now), true),
        }
    }

    /// What is left to say about a streak that ended.
    fn end_streak(&mut self, now: Instant) -> Vec<String> {
        match self.current.take() {
            Some(streak) if streak.unsaid > 0 => vec![format!(
                "(the same failure {} times in all, over {})",
                streak.count,
                seconds(now.duration_since(streak.since))
            )],
            _ => Vec::new(),
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconnecting(attempt: u32, reason: &str) -> WorkerEvent {
        WorkerEvent::Reconnecting {
            attempt,
            delay_ms: 200,
            reason: reason.to_owned(),
        }
    }

    fn connecting(attempt: u32) -> WorkerEvent {
        WorkerEvent::Connecting {
            connection: 1,
            attempt,
            url: "rtmp://h/live/a/in".into(),
        }
    }

    /// Lines printed for `events`, one every 200 ms.
    fn printed(events: &[WorkerEvent]) -> Vec<String> {
        let start = Instant::now();
        let mut repeats = Repeats::default();
        let mut lines = Vec::new();
        for (i, event) in events.iter().enumerate() {
            let (said, own) = repeats.judge(event, start + Duration::from_millis(200 * i as u64));
            lines.extend(said);
            if own {
                lines.push(format!("{event:?}").split_whitespace().next().unwrap().to_owned());
            }
        }
        lines
    }

    #[test]
    fn a_repeated_failure_is_said_once_then_at_doubling_counts() {
        let mut events = vec![connecting(1)];
        for attempt in 1..=20 {
            events.push(reconnecting(attempt, "refused"));
            events.push(connecting(attempt + 1));
        }
        events.push(WorkerEvent::Playing { connection: 1 });
        let lines = printed(&events);
        let words: Vec<&String> = lines.iter().filter(|l| l.contains("still failing")).collect();
        assert_eq!(words.len(), 4, "at 2, 4, 8 and 16: {lines:#?}");
        assert!(words[0].contains("2 times"), "{}", words[0]);
        assert!(words[3].contains("16 times in 6.0 s"), "{}", words[3]);
        // Connecting once, Reconnecting once, four words, the summary, Playing.
        assert_eq!(lines.len(), 8, "{lines:#?}");
        assert!(lines[6].contains("20 times in all, over 8.0 s"), "{}", lines[6]);
        assert!(lines[7].starts_with("Playing"), "{lines:#?}");
    }

    #[test]
    fn a_new_reason_is_said_at_once() {
        let lines = printed(&[
            reconnecting(1, "refused"),
            reconnecting(2, "refused"),
            reconnecting(3, "refused"),
            reconnecting(4, "no stream"),
        ]);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert!(lines[1].contains("2 times"), "{lines:#?}");
        assert!(lines[2].contains("3 times in all"), "{lines:#?}");
        assert!(lines[3].starts_with("Reconnecting"), "{lines:#?}");
    }
}
