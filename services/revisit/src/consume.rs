//! Events revisit reacts to: a resolved case waits for its revisit.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Work};

use crate::Revisit;

jiesu_kit::consumes! {
    /// The events of revisit's durable consumer.
    pub enum Consumed { CaseResolved }
}

/// Revisit's handler of the events stream.
pub struct Events {
    pub revisit: Arc<Revisit>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        match msg {
            Consumed::CaseResolved(ev) => Ok(self.revisit.on_resolved(work, &ev).await?),
        }
    }
}
