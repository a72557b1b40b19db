//! The events as they pass (实时刷新): the console listens to every event subject as its own NATS
//! user (which may only listen), and tells the open pages that something changed, so a queue
//! reloads itself. Only the event's type goes to the browsers — never a case id, which a person
//! who cannot see the case should not learn of either; the queue they reload asks the services
//! under their own identity.

use std::time::Duration;

use futures::StreamExt;
use jiesu_kit::{
    Subjects,
    config::NatsSettings,
    messaging::{connect_options, server_addrs},
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The events the console listens to.
#[derive(Clone)]
pub struct Live {
    sender: broadcast::Sender<String>,
}

impl Live {
    /// Starts listening (reconnecting by itself: the console serves its pages while NATS is
    /// away, only without the live refresh).
    pub async fn start(nats: &NatsSettings, cancel: CancellationToken) -> Self {
        let (sender, _) = broadcast::channel(256);
        let live = Self { sender: sender.clone() };
        let subjects = Subjects::new(&nats.subject_root);
        let options = match connect_options(nats, crate::NAME) {
            Ok(o) => o.retry_on_initial_connect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the console's NATS credentials: queues will not refresh by themselves");
                return live;
            }
        };
        let servers = match server_addrs(nats) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no NATS address: queues will not refresh by themselves");
                return live;
            }
        };
        tokio::spawn(async move {
            let client = tokio::select! {
                _ = cancel.cancelled() => return,
                c = options.connect(servers) => match c {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot connect to NATS: queues will not refresh by themselves");
                        return;
                    }
                },
            };
            let mut events = match client.subscribe(subjects.event(">")).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen to the events: queues will not refresh by themselves");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    message = events.next() => match message {
                        Some(m) => {
                            if let Some(kind) = subjects.event_type_of(&m.subject) {
                                // Nobody listening is fine: no page is open.
                                let _ = sender.send(kind.to_string());
                            }
                        }
                        None => return,
                    },
                }
            }
        });
        live
    }

    /// A listener for one open page.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.sender.subscribe()
    }

    /// Tells the open pages that something changed (after an action of this console, so the
    /// actor's other pages refresh even before the event comes back).
    pub fn nudge(&self, kind: &str) {
        let _ = self.sender.send(kind.to_string());
    }
}

/// How long signals are gathered before a page is told: a burst of events (a case received,
/// classified, dispatched, its clocks armed) is one refresh.
pub const GATHER: Duration = Duration::from_millis(400);
