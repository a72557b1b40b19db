//! Readiness: what every long-running part of a service (each consumer, the outbox relay) says
//! about itself. `/readyz` and the gRPC health service both answer from it, so neither says
//! "serving" while a consumer is dead.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tokio::sync::watch;

/// The state of a service's parts. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Readiness {
    parts: Arc<Mutex<BTreeMap<String, Option<String>>>>,
    changed: watch::Sender<bool>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self { parts: Default::default(), changed: watch::channel(true).0 }
    }
}

impl Readiness {
    /// `part` works.
    pub fn ok(&self, part: &str) {
        self.set(part, None);
    }

    /// `part` does not work, and why.
    pub fn failing(&self, part: &str, reason: &str) {
        self.set(part, Some(reason.to_string()));
    }

    fn set(&self, part: &str, problem: Option<String>) {
        let ready = {
            let mut parts = self.parts.lock().expect("readiness lock");
            parts.insert(part.to_string(), problem);
            parts.values().all(Option::is_none)
        };
        self.changed.send_if_modified(|r| std::mem::replace(r, ready) != ready);
    }

    /// What does not work, one line per part.
    pub fn problems(&self) -> Vec<String> {
        let parts = self.parts.lock().expect("readiness lock");
        parts.iter().filter_map(|(part, p)| p.as_ref().map(|p| format!("{part}: {p}"))).collect()
    }

    /// Follows readiness as it changes (`true`: every part works).
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_part_is() {
        let r = Readiness::default();
        let w = r.watch();
        r.failing("consumer a", "starting");
        r.ok("relay");
        assert!(!*w.borrow());
        assert_eq!(r.problems(), vec!["consumer a: starting".to_string()]);
        r.ok("consumer a");
        assert!(*w.borrow());
        assert!(r.problems().is_empty());
    }
}
