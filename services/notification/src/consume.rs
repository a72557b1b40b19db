//! The events someone must hear of.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Incoming, Work};
use tokio::sync::Notify;

use crate::Notifier;

jiesu_kit::consumes! {
    /// The events of notification's durable consumer.
    pub enum Consumed { CaseReceived, CaseDispatched, SlaBreached, CaseAssistAdded, CaseReturned, CaseEscalated, CaseClosed }
}

/// Notification's handler of the events stream; wakes the delivery worker after each commit.
pub struct Events {
    pub notifier: Arc<Notifier>,
    pub wake: Arc<Notify>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        let n = &self.notifier;
        match msg {
            Consumed::CaseReceived(e) => n.on_received(work, &e).await?,
            Consumed::CaseDispatched(e) => n.on_dispatched(work, &e).await?,
            Consumed::SlaBreached(e) => n.on_breached(work, &e).await?,
            Consumed::CaseAssistAdded(e) => n.on_assist_added(work, &e).await?,
            Consumed::CaseReturned(e) => n.on_returned(work, &e).await?,
            Consumed::CaseEscalated(e) => n.on_escalated(work, &e).await?,
            Consumed::CaseClosed(e) => n.on_closed(work, &e).await?,
        }
        Ok(())
    }

    fn committed(&self, _msg: &Incoming) {
        self.wake.notify_one();
    }
}
