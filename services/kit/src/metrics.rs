//! Prometheus metrics every service exposes on `/metrics`; a service may register its own.

use std::sync::{Arc, Mutex};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

type Labels = Vec<(&'static str, String)>;

/// The shared metrics of one service. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    /// Messages a consumer finished with, by consumer, event type and outcome
    /// (`handled`, `duplicate`, `retried`, `dead_lettered`).
    pub consumed: Family<Labels, Counter>,
    /// Seconds spent handling one message (transaction included).
    pub handle_seconds: Histogram,
    pub outbox_published: Counter,
    pub outbox_backlog: Gauge,
    pub dead_letters_open: Gauge,
}

impl Metrics {
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix_and_labels(
            "jiesu",
            [(std::borrow::Cow::Borrowed("service"), std::borrow::Cow::Owned(service.to_string()))].into_iter(),
        );
        let consumed = Family::<Labels, Counter>::default();
        let handle_seconds = Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]);
        let outbox_published = Counter::default();
        let outbox_backlog = Gauge::default();
        let dead_letters_open = Gauge::default();
        registry.register("messages_consumed", "Messages a consumer finished with", consumed.clone());
        registry.register("handle_seconds", "Time to handle one message", handle_seconds.clone());
        registry.register("outbox_published", "Events the relay published", outbox_published.clone());
        registry.register("outbox_backlog", "Events written but not yet published", outbox_backlog.clone());
        registry.register("dead_letters_open", "Messages in the dead-letter table, not replayed", dead_letters_open.clone());
        Self { registry: Arc::new(Mutex::new(registry)), consumed, handle_seconds, outbox_published, outbox_backlog, dead_letters_open }
    }

    /// Registers a service's own metric.
    pub fn register(&self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        self.registry.lock().expect("metrics registry").register(name, help, metric);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry.lock().expect("metrics registry"));
        out
    }

    pub(crate) fn count(&self, consumer: &str, event_type: &str, outcome: &'static str) {
        self.consumed
            .get_or_create(&vec![
                ("consumer", consumer.to_string()),
                ("event_type", event_type.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }
}
