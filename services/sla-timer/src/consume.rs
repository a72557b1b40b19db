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
    domain::{CaseEvent, Change, Clock, Facts, Milestone, Tracked, plan},
    store::{self, ClockRow, HistoryRow},
};

jiesu_kit::consumes! {
    /// The case events that start, restart, hand over and stop clocks.
    pub enum Consumed {
        CaseReceived,
        CaseClassified,
        CaseDispatched,
        CaseAccepted,
        CaseContacted,
        CaseVerified,
        CaseReplied,
        CaseStaged,
        CaseReturned,
        CaseReturnReviewed,
        CaseExtensionRequested,
        CaseExtensionDecided,
        CaseAssistAdded,
        CaseAssistAnswered,
        CaseEscalated,
        CaseResolved,
        CaseReopened,
        CaseClosed,
        CaseMerged,
    }
}

/// Consumes the case events that start, stop, pause and resume clocks, and those that tell the
/// facts the limits are chosen by (channel, classification, urgency).
/// Emits nothing itself: alerts come from the [`timer`](crate::timer), which it wakes after each
/// commit so that a newly armed clock is in the firing window at once.
pub struct Events {
    pub rules: Arc<Rules>,
    pub timer_wake: Arc<Notify>,
    /// When each set of uncovered years was last warned of: once an hour is loud enough, once a
    /// case would bury the log (every case of a December runs into the next year).
    pub warned: std::sync::Mutex<std::collections::HashMap<Vec<i32>, std::time::Instant>>,
}

impl Handler for Events {
    type Message = Consumed;

    async fn handle(&self, work: &mut Work<'_>, msg: Consumed) -> Result<(), HandlerError> {
        let (meta, event, learnt) = decode(msg);
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
        let mut stored = store::facts(tx, case_id).await?;
        if learnt.apply(&mut stored) {
            store::save_facts(tx, case_id, &stored, now_ms).await?;
        }
        let facts = Facts {
            channel: stored.channel.clone(),
            urgency: Urgency::from_key(&stored.urgency),
            request_type: stored.request_type.clone(),
            category: stored.category.clone(),
        };
        let changes = plan(&existing, &event, at, &self.rules.policy, &self.rules.calendar, &self.rules.hours, &facts);
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
            if t.clock.milestone == Milestone::Assist {
                continue; // its deadline was given by the lead unit
            }
            if limit.elapsed().is_some() {
                continue; // elapsed time does not depend on the holidays
            }
            let years = self.rules.calendar.uncovered_years(t.clock.started_at, t.clock.deadline);
            let due = {
                let mut warned = self.warned.lock().expect("warned years");
                let last = warned.get(&years).copied();
                let due = last.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(3600));
                if due && !years.is_empty() {
                    warned.insert(years.clone(), std::time::Instant::now());
                }
                due
            };
            if !years.is_empty() && due {
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
            Change::Stop { milestone, part, version, reason, level } => {
                let id = store::clock_id(case_id, *milestone, part);
                let stopped = store::stop(tx, &id, *version, self.at_ms, self.now_ms).await?;
                let tracked = existing.iter().find(|t| t.key() == (*milestone, part.as_str()));
                if let (true, Some(t)) = (stopped, tracked) {
                    self.history(tx, t, reason.as_str(), self.at_ms).await?;
                    tracing::info!(case_id, %milestone, part, version, reason = reason.as_str(), %level, "clock stopped");
                }
            }
            Change::Move { milestone, version, clock } => self.retime(tx, existing, *milestone, "", *version, clock, "moved").await?,
            Change::Refit { milestone, version, clock } => self.retime(tx, existing, *milestone, "", *version, clock, "refitted").await?,
            Change::Pause { milestone, part, version, clock } => {
                self.retime(tx, existing, *milestone, part, *version, clock, "paused").await?
            }
            Change::Resume { milestone, part, version, clock } => {
                self.retime(tx, existing, *milestone, part, *version, clock, "resumed").await?
            }
            Change::Reassign { milestone, version, unit_id } => {
                let id = store::clock_id(case_id, *milestone, "");
                if store::reassign(tx, &id, *version, unit_id, self.now_ms).await? {
                    tracing::info!(case_id, %milestone, version, unit_id = %unit_id, "clock handed to another unit");
                }
            }
        }
        Ok(())
    }

    /// A clock's new times: `moved` by an extension, `refitted` to its classification, `paused`
    /// or `resumed`.
    #[allow(clippy::too_many_arguments)]
    async fn retime(
        &self,
        tx: &mut Tx,
        existing: &[Tracked],
        milestone: Milestone,
        part: &str,
        version: u32,
        clock: &Clock,
        what: &str,
    ) -> Result<(), Error> {
        let id = store::clock_id(self.case_id, milestone, part);
        if store::retime(tx, &id, version, clock, what == "moved", self.now_ms).await? {
            if let Some(t) = existing.iter().find(|t| t.key() == (milestone, part)) {
                self.history(tx, &Tracked { clock: clock.clone(), ..t.clone() }, what, self.at_ms).await?;
            }
            tracing::info!(case_id = self.case_id, %milestone, part, version = clock.version, deadline = %clock.deadline, "clock {what}");
        }
        Ok(())
    }

    async fn history(&self, tx: &mut Tx, t: &Tracked, event: &str, happened_at: i64) -> Result<(), Error> {
        let c = &t.clock;
        let row = HistoryRow {
            clock_id: store::clock_id(self.case_id, c.milestone, &t.part),
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

/// What an event tells about the facts the limits are chosen by.
#[derive(Debug, Default)]
struct Learnt {
    channel: Option<String>,
    urgency: Option<Urgency>,
    request_type: Option<String>,
    category: Option<String>,
}

impl Learnt {
    /// Writes what is new into `row`; `true` if anything changed.
    fn apply(self, row: &mut store::FactsRow) -> bool {
        let mut changed = false;
        let mut set = |field: &mut String, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty() && v != field) {
                *field = v;
                changed = true;
            }
        };
        set(&mut row.channel, self.channel);
        set(&mut row.urgency, self.urgency.map(|u| u.key().to_string()));
        set(&mut row.request_type, self.request_type);
        set(&mut row.category, self.category);
        changed
    }
}

/// The event's metadata, what it means for the clocks, and what it tells about the case.
fn decode(msg: Consumed) -> (EventMeta, CaseEvent, Learnt) {
    fn meta(e: &impl Event) -> EventMeta {
        e.meta().cloned().unwrap_or_default()
    }
    let nothing = Learnt::default;
    match msg {
        Consumed::CaseReceived(e) => (meta(&e), CaseEvent::Received, Learnt { channel: Some(e.channel), ..nothing() }),
        Consumed::CaseClassified(e) => {
            let urgency = Urgency::from_proto(e.urgency());
            let category = if e.sub_item.is_empty() { e.category.clone() } else { e.sub_item.clone() };
            let learnt =
                Learnt { urgency: Some(urgency), request_type: Some(e.request_type.clone()), category: Some(category), ..nothing() };
            (meta(&e), CaseEvent::Classified, learnt)
        }
        Consumed::CaseDispatched(e) => {
            let urgency = Urgency::from_proto(e.urgency());
            let parts = e.parts.iter().map(|p| (p.unit_id.clone(), p.deadline.as_ref().and_then(from_proto))).collect();
            let learnt = Learnt { urgency: Some(urgency), ..nothing() };
            (meta(&e), CaseEvent::Dispatched { round: e.round, unit_id: e.unit_id, urgency, parts }, learnt)
        }
        Consumed::CaseAccepted(e) => (meta(&e), CaseEvent::Accepted { round: e.round }, nothing()),
        Consumed::CaseContacted(e) => (meta(&e), CaseEvent::Contacted { round: e.round }, nothing()),
        Consumed::CaseVerified(e) => (meta(&e), CaseEvent::Verified { round: e.round }, nothing()),
        Consumed::CaseReplied(e) => (meta(&e), CaseEvent::Replied { round: e.round }, nothing()),
        Consumed::CaseStaged(e) => (meta(&e), CaseEvent::Staged { round: e.round }, nothing()),
        Consumed::CaseReturned(e) => (meta(&e), CaseEvent::Returned, nothing()),
        Consumed::CaseReturnReviewed(e) => (meta(&e), CaseEvent::ReturnReviewed, nothing()),
        Consumed::CaseExtensionRequested(e) => (meta(&e), CaseEvent::ExtensionRequested, nothing()),
        Consumed::CaseExtensionDecided(e) => {
            let deadline = e.deadline.as_ref().and_then(from_proto).filter(|_| e.approved);
            let event = deadline.map_or(CaseEvent::ExtensionRefused, |deadline| CaseEvent::ExtensionApproved { deadline });
            (meta(&e), event, nothing())
        }
        Consumed::CaseAssistAdded(e) => {
            let meta = meta(&e);
            let part = e.part.unwrap_or_default();
            let deadline = part.deadline.as_ref().and_then(from_proto);
            (meta, CaseEvent::AssistAdded { unit_id: part.unit_id, deadline }, nothing())
        }
        Consumed::CaseAssistAnswered(e) => (meta(&e), CaseEvent::AssistAnswered { unit_id: e.unit_id }, nothing()),
        Consumed::CaseEscalated(e) => (meta(&e), CaseEvent::Escalated, nothing()),
        Consumed::CaseResolved(e) => (meta(&e), CaseEvent::Resolved { round: e.round }, nothing()),
        Consumed::CaseReopened(e) => (meta(&e), CaseEvent::Reopened { round: e.round }, nothing()),
        Consumed::CaseClosed(e) => (meta(&e), CaseEvent::Closed, nothing()),
        // A duplicate merged into an earlier case (重复提交) is never handled on its own.
        Consumed::CaseMerged(e) => (meta(&e), CaseEvent::Closed, nothing()),
    }
}
