//! Case events that start, restart, hand over and stop clocks. The rules are
//! [`domain::plan`](crate::domain::plan); this is the I/O around them, inside the transaction
//! the kit opened for the message (so a redelivered event is recognised by the inbox).

use std::sync::Arc;

use jiesu_kit::{
    Handler, HandlerError, Incoming, Outgoing, Tx,
    clock::SharedClock,
    time::{from_proto, to_millis},
};
use jiesu_proto::v1::{
    CaseAccepted, CaseClosed, CaseContacted, CaseDispatched, CaseReceived, CaseReopened, CaseResolved, EventMeta,
    Urgency as ProtoUrgency,
};
use tokio::sync::Notify;

use crate::{
    Error, Rules,
    domain::{CaseEvent, Change, Tracked, Urgency, plan},
    store::{self, ClockRow, HistoryRow},
};

/// Consumes `case.received`, `.dispatched`, `.accepted`, `.resolved`, `.reopened` and `.closed`.
/// Emits nothing itself: alerts come from the [`timer`](crate::timer), which it wakes after each
/// commit so that a newly armed clock is in the firing window at once.
pub struct CaseEvents {
    pub rules: Arc<Rules>,
    pub clock: SharedClock,
    pub timer_wake: Arc<Notify>,
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            // Retrying cannot make a stored clock readable: dead-letter it, visibly.
            Error::CorruptClock { .. } => HandlerError::Reject(e.to_string()),
            other => HandlerError::Retry(other.to_string()),
        }
    }
}

/// The domain's urgency for the proto's; unspecified (classification did not say) is normal.
pub fn urgency_from_proto(u: ProtoUrgency) -> Urgency {
    match u {
        ProtoUrgency::Emergency => Urgency::Emergency,
        ProtoUrgency::Complex => Urgency::Complex,
        ProtoUrgency::Normal | ProtoUrgency::Unspecified => Urgency::Normal,
    }
}

impl Handler for CaseEvents {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        let (meta, event) = decode(msg)?;
        let case_id = meta.case_id.trim();
        if case_id.is_empty() {
            return Err(HandlerError::Reject(format!("{} event {} has an empty meta.case_id", msg.kind, msg.message_id)));
        }
        let at = match meta.occurred_at.as_ref().and_then(from_proto) {
            Some(t) => t,
            None => {
                // Timing from receipt is a close second best to not timing the case at all.
                tracing::warn!(case_id, event_type = %msg.kind, "event has no meta.occurred_at; timing from now");
                self.clock.now()
            }
        };
        let rows = store::case_clocks(tx, case_id).await?;
        let existing = rows.iter().map(ClockRow::tracked).collect::<Result<Vec<_>, _>>()?;
        let case_no = match meta.case_no.trim() {
            "" => rows.iter().map(|r| r.case_no.as_str()).find(|n| !n.is_empty()).unwrap_or_default(),
            no => no,
        };
        let armed_by = if meta.event_id.is_empty() { msg.message_id.as_str() } else { meta.event_id.as_str() };
        let changes = plan(&existing, &event, at, &self.rules.policy, &self.rules.calendar);
        let step = Step { case_id, case_no, armed_by, at_ms: to_millis(at), now_ms: to_millis(self.clock.now()) };
        for change in &changes {
            step.apply(tx, change, &existing).await?;
        }
        Ok(Vec::new())
    }

    fn committed(&self, _msg: &Incoming) {
        self.timer_wake.notify_one();
    }
}

/// What every change of one event shares.
struct Step<'a> {
    case_id: &'a str,
    case_no: &'a str,
    armed_by: &'a str,
    at_ms: i64,
    now_ms: i64,
}

impl Step<'_> {
    async fn apply(&self, tx: &mut Tx, change: &Change, existing: &[Tracked]) -> Result<(), Error> {
        let case_id = self.case_id;
        match change {
            Change::Arm(t) => {
                let c = &t.clock;
                if store::arm(tx, case_id, self.case_no, t, self.armed_by, self.now_ms).await? {
                    // When it was armed (the event), not when it counts from: a resumed escalation
                    // clock counts from receipt but was restarted now.
                    self.history(tx, t, "armed", self.at_ms).await?;
                    tracing::info!(case_id, milestone = %c.milestone, version = c.version, deadline = %c.deadline,
                        unit_id = %t.unit_id, "clock armed");
                }
            }
            Change::Stop { milestone, version, reason, level } => {
                let id = store::clock_id(case_id, *milestone);
                let stopped = store::stop(tx, &id, *version, self.at_ms, self.now_ms).await?;
                let tracked = existing.iter().find(|t| t.clock.milestone == *milestone);
                if let (true, Some(t)) = (stopped, tracked) {
                    self.history(tx, t, reason.as_str(), self.at_ms).await?;
                    tracing::info!(case_id, %milestone, version, reason = reason.as_str(), %level, "clock stopped");
                }
            }
            Change::Reassign { milestone, version, unit_id } => {
                let id = store::clock_id(case_id, *milestone);
                if store::reassign(tx, &id, *version, unit_id, self.now_ms).await? {
                    tracing::info!(case_id, %milestone, version, unit_id = %unit_id, "clock handed to another unit");
                }
            }
        }
        Ok(())
    }

    async fn history(&self, tx: &mut Tx, t: &Tracked, event: &str, happened_at: i64) -> Result<(), Error> {
        let c = &t.clock;
        let row = HistoryRow {
            clock_id: store::clock_id(self.case_id, c.milestone),
            version: i64::from(c.version),
            event: event.to_string(),
            case_id: self.case_id.to_string(),
            milestone: c.milestone.as_str().to_string(),
            happened_at,
            deadline: to_millis(c.deadline),
        };
        store::record_history(tx, &row).await
    }
}

/// The event's metadata and what it means for the clocks.
fn decode(msg: &Incoming) -> Result<(EventMeta, CaseEvent), HandlerError> {
    let (meta, event) = match msg.kind.as_str() {
        "case.received" => (msg.decode::<CaseReceived>()?.meta, CaseEvent::Received),
        "case.dispatched" => {
            let e = msg.decode::<CaseDispatched>()?;
            let urgency = urgency_from_proto(e.urgency());
            (e.meta, CaseEvent::Dispatched { round: e.round, unit_id: e.unit_id, urgency })
        }
        "case.accepted" => {
            let e = msg.decode::<CaseAccepted>()?;
            (e.meta, CaseEvent::Accepted { round: e.round })
        }
        "case.contacted" => {
            let e = msg.decode::<CaseContacted>()?;
            (e.meta, CaseEvent::Contacted { round: e.round })
        }
        "case.resolved" => {
            let e = msg.decode::<CaseResolved>()?;
            (e.meta, CaseEvent::Resolved { round: e.round })
        }
        "case.reopened" => {
            let e = msg.decode::<CaseReopened>()?;
            (e.meta, CaseEvent::Reopened { round: e.round })
        }
        "case.closed" => (msg.decode::<CaseClosed>()?.meta, CaseEvent::Closed),
        other => return Err(HandlerError::Reject(format!("the SLA timer does not handle {other:?} events"))),
    };
    let meta = meta.ok_or_else(|| HandlerError::Reject(format!("{} event {} has no meta", msg.kind, msg.message_id)))?;
    Ok((meta, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_urgency_is_normal() {
        assert_eq!(urgency_from_proto(ProtoUrgency::Unspecified), Urgency::Normal);
        assert_eq!(urgency_from_proto(ProtoUrgency::Normal), Urgency::Normal);
        assert_eq!(urgency_from_proto(ProtoUrgency::Emergency), Urgency::Emergency);
        assert_eq!(urgency_from_proto(ProtoUrgency::Complex), Urgency::Complex);
    }
}
