//! Where the service of a scenario answers now (a restart moves it, a
//! cluster has one address per live instance), and asking it: its
//! `/v1/streams`, merged over a cluster's instances, and what it was heard
//! refusing.

use std::time::Duration;

use service::StreamsView;
use tokio::sync::watch;

/// How often the service's `/v1/streams` is asked while waiting on it.
pub(crate) const ASK_EVERY: Duration = Duration::from_millis(100);
/// How long a service (or an instance) is given to answer `/v1/streams`:
/// a paused instance never does.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Paths the service said it refused, with its reason, whenever it was
/// asked during the run (a refusal for capacity ends when a slot frees).
pub(crate) type RefusalsSeen = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// Where the service runs now (each restart gives it a new HTTP address),
/// and what it was heard refusing.
#[derive(Clone)]
pub(crate) struct ServiceAddress {
    /// The HTTP bases of the service, or of a cluster's live instances.
    base: watch::Receiver<Vec<String>>,
    refusals: RefusalsSeen,
}

impl ServiceAddress {
    pub(crate) fn new(base: watch::Receiver<Vec<String>>, refusals: RefusalsSeen) -> Self {
        Self { base, refusals }
    }

    /// `/v1/streams` of the service running now, once there is one; of a
    /// cluster, every answering instance's streams that it serves itself.
    pub(crate) async fn streams(&mut self, client: &reqwest::Client) -> Option<StreamsView> {
        let bases = current(&mut self.base).await?;
        let mut merged: Option<StreamsView> = None;
        for base in bases {
            let Some(mut view) = streams_at(client, &base, ANSWER_WITHIN).await else {
                continue;
            };
            view.streams.retain(|s| s.state != "elsewhere");
            let mut seen = self.refusals.lock().expect("refusals lock");
            for refused in &view.refused {
                seen.entry(refused.path.clone())
                    .or_insert_with(|| refused.reason.clone());
            }
            match &mut merged {
                None => merged = Some(view),
                Some(all) => {
                    all.streams.extend(view.streams);
                    all.refused.extend(view.refused);
                }
            }
        }
        merged
    }

    /// Asks `/v1/streams` until `wanted` holds; false at `deadline`.
    pub(crate) async fn wait_for(
        &mut self,
        client: &reqwest::Client,
        deadline: tokio::time::Instant,
        wanted: impl Fn(&StreamsView) -> bool,
    ) -> bool {
        let mut ask = tokio::time::interval(ASK_EVERY);
        loop {
            tokio::select! {
                _ = ask.tick() => {
                    if self.streams(client).await.is_some_and(|v| wanted(&v)) {
                        return true;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return false,
            }
        }
    }
}

/// `/v1/streams` of the one service or instance at `base`; `None` if it
/// did not answer `within` (a paused one never does).
pub(crate) async fn streams_at(
    client: &reqwest::Client,
    base: &str,
    within: Duration,
) -> Option<StreamsView> {
    let answer = client
        .get(format!("{base}/v1/streams"))
        .timeout(within)
        .send()
        .await
        .ok()?;
    answer.json::<StreamsView>().await.ok()
}

/// The addresses of the service running now, once there is one (`None`
/// if the scenario is over). The guard `wait_for` gives is not held across
/// an await.
async fn current(base: &mut watch::Receiver<Vec<String>>) -> Option<Vec<String>> {
    Some(base.wait_for(|b| !b.is_empty()).await.ok()?.clone())
}

/// Returns once the scenario is over.
pub(crate) async fn until_done(done: &mut watch::Receiver<bool>) {
    let _ = done.wait_for(|d| *d).await.is_ok();
}
