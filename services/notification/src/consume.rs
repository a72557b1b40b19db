//! The events someone must hear of.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Incoming, Work};
use tokio::sync::Notify;

use crate::Notifier;

jiesu_kit::consumes! {
    /// The events of notification's durable consumer.
    pub enum Consumed { CaseReceived, CaseDispatched, SlaWarning, SlaBreached, CaseAssistAdded, CaseReturned, CaseEscalated, CaseClosed }
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
            Consumed::SlaWarning(e) => n.on_sla_for_unit(work, &as_alert(e), true).await?,
            Consumed::SlaBreached(e) => {
                n.on_breached(work, &e).await?;
                n.on_sla_for_unit(work, &e, false).await?;
            }
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

/// `sla.warning` and `sla.breached` have the same fields, tag for tag (events.proto): one shape
/// serves both.
fn as_alert(e: jiesu_proto::v1::SlaWarning) -> jiesu_proto::v1::SlaBreached {
    jiesu_proto::v1::SlaBreached {
        meta: e.meta,
        clock_id: e.clock_id,
        milestone: e.milestone,
        milestone_name: e.milestone_name,
        version: e.version,
        deadline: e.deadline,
        unit_id: e.unit_id,
        level: e.level,
    }
}
