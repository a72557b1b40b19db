//! Case events that start, restart, hand over and stop clocks. The rules are
//! [`domain::plan`](crate::domain::plan); this is the I/O around them, inside the transaction
//! the kit opened for the message (so a redelivered event is recognised by the inbox).

use std::sync::Arc;

use jiesu_kit::{
    Handler, HandlerError, Incoming, Tx, Work,
    time::{from_proto, to_millis},
};
use jiesu_proto::{Event, v1::EventMeta};
use jiesu_reference::Urgency;
use tokio::sync::Notify;

use crate::{
    Error, Rules,
    domain::{CaseEvent, Change, Tracked, plan},
    store::{self, ClockRow, HistoryRow},
};

jiesu_kit::consumes! {
    /// The case events that start, restart, hand over and stop clocks.
    pub enum Consumed {
        CaseReceived,
        CaseDispatched,
        CaseAccepted,
        CaseContacted,
        CaseReplied,
        CaseStaged,
        CaseExtensionDecided,
        CaseResolved,
        CaseReopened,
        CaseClosed,
    }
}

/// Consumes `case.received`, `.dispatched`, `.accepted`, `.contacted`, `.replied`, `.staged`,
/// `.extension_decided`, `.resolved`, `.reopened` and `.closed`.
/// Emits nothing itself: alerts come from the [`timer`](crate::timer), which it wakes after each
/// commit so that a newly armed clock is in the firing window at once.
pub struct Events {
    pub rules: Arc<Rules>,
    pub timer_wake: Arc<Notify>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        let (meta, event) = decode(msg);
        // A refused extension changes no clock.
        let Some(event) = event else { return Ok(()) };
        let case_id = meta.case_id.trim();
        let at = match meta.occurred_at.as_ref().and_then(from_proto) {
            Some(t) => t,
            None => {
                // Timing from receipt is a close second best to not timing the case at all.
                tracing::warn!(case_id, "event has no meta.occurred_at; timing from now");
                work.now()
            }
        };
        let now_ms = work.now_millis();
        let tx = &mut *work.tx;
        let rows = store::case_clocks(tx, case_id).await?;
        let existing = rows.iter().map(ClockRow::tracked).collect::<Result<Vec<_>, _>>()?;
        let case_no = match meta.case_no.trim() {
            "" => rows.iter().map(|r| r.case_no.as_str()).find(|n| !n.is_empty()).unwrap_or_default(),
            no => no,
        };
        let armed_by = meta.event_id.as_str();
        let changes = plan(&existing, &event, at, &self.rules.policy, &self.rules.calendar);
        self.warn_of_uncovered_years(case_id, &changes);
        let step = Step { case_id, case_no, armed_by, at_ms: to_millis(at), now_ms };
        for change in &changes {
            step.apply(tx, change, &existing).await?;
        }
        Ok(())
    }

    fn committed(&self, _msg: &Incoming) {
        self.timer_wake.notify_one();
    }
}

impl Events {
    /// A working-day limit counted across a year the calendar has no official schedule for is
    /// counted Monday to Friday, which is likely wrong: said loudly, with the year to add.
    fn warn_of_uncovered_years(&self, case_id: &str, changes: &[Change]) {
        for change in changes {
            let Change::Arm(t) = change else { continue };
            let limit = self.rules.policy.limit(t.clock.milestone, t.urgency);
            if limit.elapsed().is_some() {
                continue; // elapsed time does not depend on the holidays
            }
            let years = self.rules.calendar.uncovered_years(t.clock.started_at, t.clock.deadline);
            if !years.is_empty() {
                tracing::warn!(
                    case_id, milestone = %t.clock.milestone, ?years,
                    "a working-day deadline runs into years without an official holiday schedule and is counted Monday to Friday there: \
                     add them to the calendar file"
                );
            }
        }
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
            Change::Move { milestone, version, clock } => {
                let id = store::clock_id(case_id, *milestone);
                if store::move_deadline(tx, &id, *version, clock, self.now_ms).await? {
                    let t =
                        existing.iter().find(|t| t.clock.milestone == *milestone).map(|t| Tracked { clock: clock.clone(), ..t.clone() });
                    if let Some(t) = t {
                        self.history(tx, &t, "moved", self.at_ms).await?;
                    }
                    tracing::info!(case_id, %milestone, version = clock.version, deadline = %clock.deadline, "clock moved by an extension");
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

/// The event's metadata and what it means for the clocks (nothing, for a refused extension).
fn decode(msg: Consumed) -> (EventMeta, Option<CaseEvent>) {
    fn meta(e: &impl Event) -> EventMeta {
        e.meta().cloned().unwrap_or_default()
    }
    match msg {
        Consumed::CaseReceived(e) => (meta(&e), Some(CaseEvent::Received)),
        Consumed::CaseDispatched(e) => {
            let urgency = Urgency::from_proto(e.urgency());
            (meta(&e), Some(CaseEvent::Dispatched { round: e.round, unit_id: e.unit_id, urgency }))
        }
        Consumed::CaseAccepted(e) => (meta(&e), Some(CaseEvent::Accepted { round: e.round })),
        Consumed::CaseContacted(e) => (meta(&e), Some(CaseEvent::Contacted { round: e.round })),
        Consumed::CaseReplied(e) => (meta(&e), Some(CaseEvent::Replied { round: e.round })),
        Consumed::CaseStaged(e) => (meta(&e), Some(CaseEvent::Staged { round: e.round })),
        Consumed::CaseExtensionDecided(e) => {
            let deadline = e.deadline.as_ref().and_then(from_proto).filter(|_| e.approved);
            (meta(&e), deadline.map(|deadline| CaseEvent::ExtensionApproved { deadline }))
        }
        Consumed::CaseResolved(e) => (meta(&e), Some(CaseEvent::Resolved { round: e.round })),
        Consumed::CaseReopened(e) => (meta(&e), Some(CaseEvent::Reopened { round: e.round })),
        Consumed::CaseClosed(e) => (meta(&e), Some(CaseEvent::Closed)),
    }
}
