//! Events dispatch reacts to: a classified case is dispatched; the revisit's verdict reopens or
//! closes it; SLA alerts colour it and may supervise or escalate it.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Work};

use crate::{Dispatch, service::event_case_id};

jiesu_kit::consumes! {
    /// The events of dispatch's durable consumer.
    pub enum Consumed { CaseClassified, CaseReopened, RevisitRecorded, SlaWarning, SlaBreached, SlaEscalationDue }
}

/// Dispatch's handler of the events stream.
pub struct Events {
    pub dispatch: Arc<Dispatch>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        let d = &self.dispatch;
        match msg {
            Consumed::CaseClassified(ev) => d.dispatch_classified(work, &ev).await?,
            Consumed::CaseReopened(ev) => d.reopen(work, &ev).await?,
            Consumed::RevisitRecorded(ev) => d.on_revisit(work, &ev).await?,
            Consumed::SlaWarning(ev) => d.on_sla(work, &event_case_id(&ev), &ev.milestone, "yellow").await?,
            Consumed::SlaBreached(ev) => d.on_sla(work, &event_case_id(&ev), &ev.milestone, "red").await?,
            Consumed::SlaEscalationDue(ev) => d.on_sla(work, &event_case_id(&ev), &ev.milestone, "escalate").await?,
        }
        Ok(())
    }
}
