//! Events classification reacts to: a received case is classified.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Work};

use crate::Classifier;

jiesu_kit::consumes! {
    /// The events of classification's durable consumer.
    pub enum Consumed { CaseReceived }
}

/// Classification's handler of the events stream.
pub struct Events {
    pub classifier: Arc<Classifier>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        match msg {
            Consumed::CaseReceived(e) => Ok(self.classifier.classify_received(work, &e).await?),
        }
    }
}
