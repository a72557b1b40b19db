//! Which clocks each case event starts, restarts, hands over, pauses and stops (时限的启停规则).
//!
//! [`plan`] is a pure function of the case's stored clocks and one event, so the rules are
//! tested without a database and a redelivered or late event gives the same, harmless answer.
//!
//! Three kinds of milestone:
//! - those with rules of their own (dispatch, accept, contact, reply, resolve, escalate), whose
//!   handling of transfers, reopenings and late events is below;
//! - assisting parts (协办): a clock per assisting unit, from the part's deadline;
//! - those that follow the events the policy lists for them (verify, response, and any a
//!   district adds): armed by a start event, met by a stop event.
//!
//! Any of them may pause and resume on the events the policy lists (挂起, e.g. while a return is
//! under review): a paused clock fires nothing, and on resuming its deadline moves by the time
//! its limit would have counted meanwhile.
//!
//! Handling rounds: a case is dispatched in round 1 and every reopening starts the next round
//! (`round` of the events). A clock remembers the round it was armed for, which is how a
//! duplicate, a stale event of an earlier round, a transfer within a round and a new round are
//! told apart. A round of 0 means the producer did not say; it is read as "the current round".

use chrono::{DateTime, Utc};

use super::{Calendar, Clock, ClockState, Facts, Level, Milestone, Policy, Trigger, UnitHours, Urgency};

/// A case event, as far as the clocks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvent {
    /// `case.received`: the dispatch (分拨) and escalation (包案) clocks start.
    Received,
    /// `case.classified`: only the facts that choose limits change.
    Classified,
    /// `case.dispatched`: a unit owns the case (派单); accept, reply and resolve clocks start,
    /// and a clock for each assisting part the dispatch names (`parts`: unit, deadline).
    Dispatched { round: u32, unit_id: String, urgency: Urgency, parts: Vec<(String, Option<DateTime<Utc>>)> },
    /// `case.accepted`: the unit signed for it (签收); the contact clock starts.
    Accepted { round: u32 },
    /// `case.contacted`: the unit reached the citizen (联系); the contact clock stops.
    Contacted { round: u32 },
    /// `case.verified`: the facts are checked on site (核实).
    Verified { round: u32 },
    /// `case.replied`: the written response is given (答复); the reply clock stops.
    Replied { round: u32 },
    /// `case.staged`: handled as far as possible now (阶段性办结); reply and resolve are met for
    /// this round, to be checked again on the date the unit gave.
    Staged { round: u32 },
    /// `case.returned`: the unit sent the case back (退回).
    Returned,
    /// `case.return_reviewed`: the centre ruled on the return (退回审核).
    ReturnReviewed,
    /// `case.extension_requested` (延期申请).
    ExtensionRequested,
    /// `case.extension_decided`, approved (延期): the resolve clock now runs to `deadline`.
    ExtensionApproved { deadline: DateTime<Utc> },
    /// `case.extension_decided`, refused.
    ExtensionRefused,
    /// `case.assist_added`: an assisting unit is called in (协办), to answer by `deadline`.
    AssistAdded { unit_id: String, deadline: Option<DateTime<Utc>> },
    /// `case.assist_answered`: an assisting unit answered its part.
    AssistAnswered { unit_id: String },
    /// `case.escalated`: a leader took the case over (包案).
    Escalated,
    /// `case.resolved`: the unit closed it with a reply (办结); every clock of the round stops.
    Resolved { round: u32 },
    /// `case.reopened`: the revisit found it unsolved; the resolve clock starts again (重新计时)
    /// and the escalation clock resumes, still counting from receipt.
    Reopened { round: u32 },
    /// `case.closed`: the case is finished (结案); nothing runs any more.
    Closed,
}

impl CaseEvent {
    /// The name a policy uses for this event in `start`, `stop`, `pause` and `resume`.
    pub fn trigger(&self) -> Option<Trigger> {
        Some(match self {
            CaseEvent::Received => Trigger::Received,
            CaseEvent::Classified | CaseEvent::AssistAdded { .. } | CaseEvent::AssistAnswered { .. } => return None,
            CaseEvent::Dispatched { .. } => Trigger::Dispatched,
            CaseEvent::Accepted { .. } => Trigger::Accepted,
            CaseEvent::Contacted { .. } => Trigger::Contacted,
            CaseEvent::Verified { .. } => Trigger::Verified,
            CaseEvent::Replied { .. } => Trigger::Replied,
            CaseEvent::Staged { .. } => Trigger::Staged,
            CaseEvent::Returned => Trigger::Returned,
            CaseEvent::ReturnReviewed => Trigger::ReturnReviewed,
            CaseEvent::ExtensionRequested => Trigger::ExtensionRequested,
            CaseEvent::ExtensionApproved { .. } | CaseEvent::ExtensionRefused => Trigger::ExtensionDecided,
            CaseEvent::Escalated => Trigger::Escalated,
            CaseEvent::Resolved { .. } => Trigger::Resolved,
            CaseEvent::Reopened { .. } => Trigger::Reopened,
            CaseEvent::Closed => Trigger::Closed,
        })
    }

    /// The handling round the event names (0: not said, or not about a round).
    pub fn round(&self) -> u32 {
        match self {
            CaseEvent::Dispatched { round, .. }
            | CaseEvent::Accepted { round }
            | CaseEvent::Contacted { round }
            | CaseEvent::Verified { round }
            | CaseEvent::Replied { round }
            | CaseEvent::Staged { round }
            | CaseEvent::Resolved { round }
            | CaseEvent::Reopened { round } => *round,
            _ => 0,
        }
    }
}

/// One clock of a case as the service keeps it: the pure clock and what it was armed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub clock: Clock,
    /// The handling round it was armed for (0 for the dispatch and escalation clocks, which
    /// start before round 1).
    pub round: u32,
    /// The unit answerable for the milestone (承办单位); empty before dispatch.
    pub unit_id: String,
    /// The urgency of the case when the clock was armed.
    pub urgency: Urgency,
    /// Which part of the case: the assisting unit for an [`Milestone::Assist`] clock, else empty.
    pub part: String,
}

impl Tracked {
    /// Not yet stopped: armed, warned or breached (a breached milestone still awaits being met).
    pub fn is_running(&self) -> bool {
        self.clock.state != ClockState::Stopped
    }

    /// The clock's milestone and part, which name it within its case.
    pub fn key(&self) -> (Milestone, &str) {
        (self.clock.milestone, &self.part)
    }
}

/// Why a clock was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The milestone was met (or overtaken: a case resolved before its contact clock ran out).
    Met,
    /// The case was closed (结案).
    Closed,
    /// A new round, or the case resolved, made the clock moot.
    Superseded,
}

impl StopReason {
    /// The `snake_case` name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Met => "met",
            StopReason::Closed => "closed",
            StopReason::Superseded => "superseded",
        }
    }
}

/// What an event does to one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Start the clock, or restart it one version up, replacing the older version.
    Arm(Tracked),
    /// Stop the running clock of this version, ending on `level`.
    Stop { milestone: Milestone, part: String, version: u32, reason: StopReason, level: Level },
    /// The running clock now answers to another unit; its times do not change, because a case
    /// handed on (转办) must not win its handler a fresh limit (no 转圈 to hide delay).
    Reassign { milestone: Milestone, version: u32, unit_id: String },
    /// An approved extension: the running clock of `version` becomes `clock` (one version up, the
    /// same start, the new deadline and yellow point, its colour so far kept); the deadline it had
    /// is kept as the original for the statistics.
    Move { milestone: Milestone, version: u32, clock: Clock },
    /// The clock of `version` paused (`clock` has `paused_at`) or resumed (its times moved).
    Pause { milestone: Milestone, part: String, version: u32, clock: Clock },
    /// The paused clock of `version` running again as `clock`.
    Resume { milestone: Milestone, part: String, version: u32, clock: Clock },
    /// The classification chose another limit for the running clock of `version`: `clock` has
    /// the same start and state, and the deadline the new limit gives.
    Refit { milestone: Milestone, version: u32, clock: Clock },
}

impl Change {
    /// The milestone and part of the clock it changes.
    pub fn key(&self) -> (Milestone, &str) {
        match self {
            Change::Arm(t) => t.key(),
            Change::Stop { milestone, part, .. } | Change::Pause { milestone, part, .. } | Change::Resume { milestone, part, .. } => {
                (*milestone, part)
            }
            Change::Reassign { milestone, .. } | Change::Move { milestone, .. } | Change::Refit { milestone, .. } => (*milestone, ""),
        }
    }
}

/// What `event`, which happened at `at`, does to a case whose clocks are `existing` and whose
/// limits are chosen by `facts` (as they stand after the event).
///
/// Graceful with redelivered and out-of-order events: stopping a clock that was never armed
/// does nothing; arming a clock already armed for the same round and unit does nothing; an
/// event of an earlier round than the clock's is ignored; `case.received` after the case was
/// dispatched, or `case.dispatched` after it was accepted, does not start a clock that would
/// only ever go red.
pub fn plan(
    existing: &[Tracked],
    event: &CaseEvent,
    at: DateTime<Utc>,
    policy: &Policy,
    calendar: &Calendar,
    hours: &UnitHours,
    facts: &Facts,
) -> Vec<Change> {
    let planner = Planner { existing, at, policy, calendar, hours, facts };
    let mut changes = planner.own_rules(event);
    planner.parts(event, &mut changes);
    planner.event_driven(event, &mut changes);
    planner.pauses(event, &mut changes);
    changes
}

struct Planner<'a> {
    existing: &'a [Tracked],
    at: DateTime<Utc>,
    policy: &'a Policy,
    calendar: &'a Calendar,
    hours: &'a UnitHours,
    facts: &'a Facts,
}

impl Planner<'_> {
    fn find(&self, m: Milestone) -> Option<&Tracked> {
        self.existing.iter().find(|t| t.clock.milestone == m && t.part.is_empty())
    }

    fn arm_from(
        &self,
        start: DateTime<Utc>,
        m: Milestone,
        previous: Option<&Tracked>,
        round: u32,
        unit_id: &str,
        urgency: Urgency,
    ) -> Option<Change> {
        if !self.policy.enabled(m) {
            return None;
        }
        let version = match previous {
            None => 1,
            Some(p) => p.clock.version.checked_add(1)?,
        };
        let facts = Facts { urgency, ..self.facts.clone() };
        let clock = Clock::arm_for(m, version, start, self.policy, &facts, self.calendar, self.hours.of(unit_id));
        Some(Change::Arm(Tracked { clock, round, unit_id: unit_id.to_owned(), urgency, part: String::new() }))
    }

    fn arm(&self, m: Milestone, previous: Option<&Tracked>, round: u32, unit_id: &str, urgency: Urgency) -> Option<Change> {
        self.arm_from(self.at, m, previous, round, unit_id, urgency)
    }

    fn stop(&self, t: &Tracked, reason: StopReason) -> Option<Change> {
        let mut clock = t.clock.clone();
        clock.stop(self.at).ok().map(|level| Change::Stop {
            milestone: t.clock.milestone,
            part: t.part.clone(),
            version: t.clock.version,
            reason,
            level,
        })
    }

    /// The unit answerable for the case now: the resolve clock's, else the accept clock's.
    fn current_unit(&self) -> (&str, Urgency) {
        [Milestone::Resolve, Milestone::Accept, Milestone::Escalate]
            .into_iter()
            .filter_map(|m| self.find(m))
            .find(|t| !t.unit_id.is_empty())
            .map_or(("", self.facts.urgency), |t| (t.unit_id.as_str(), t.urgency))
    }

    /// The milestones with rules of their own.
    fn own_rules(&self, event: &CaseEvent) -> Vec<Change> {
        let find = |m| self.find(m);
        // An event of round 0 (unknown) concerns whatever round the clock is in.
        let concerns = |t: &Tracked, round: u32| round == 0 || t.round <= round;
        let mut changes = Vec::new();
        match event {
            CaseEvent::Received => {
                // Any clock at all means the case was received before, or already dispatched.
                if self.existing.is_empty() {
                    changes.extend(self.arm(Milestone::Dispatch, None, 0, "", Urgency::Normal));
                }
                if find(Milestone::Escalate).is_none() {
                    changes.extend(self.arm(Milestone::Escalate, None, 0, "", Urgency::Normal));
                }
            }
            CaseEvent::Dispatched { round, unit_id, urgency, .. } => {
                let round = (*round).max(1);
                if let Some(d) = find(Milestone::Dispatch).filter(|t| t.is_running()) {
                    changes.extend(self.stop(d, StopReason::Met));
                }
                let accepted_this_round = find(Milestone::Contact).is_some_and(|c| c.round >= round);
                for m in [Milestone::Accept, Milestone::Reply, Milestone::Resolve] {
                    match find(m) {
                        None if m == Milestone::Accept && accepted_this_round => {}
                        None => changes.extend(self.arm(m, None, round, unit_id, *urgency)),
                        Some(t) if t.round < round => changes.extend(self.arm(m, Some(t), round, unit_id, *urgency)),
                        Some(t) if t.round > round || t.unit_id == *unit_id => {}
                        // The same round, another unit: a transfer. The new unit must sign anew…
                        Some(t) if m == Milestone::Accept => {
                            changes.extend(self.arm(m, Some(t), round, unit_id, *urgency));
                        }
                        // …but the citizen's wait goes on.
                        Some(t) if t.is_running() => {
                            changes.push(Change::Reassign { milestone: m, version: t.clock.version, unit_id: unit_id.clone() })
                        }
                        Some(_) => {}
                    }
                }
                // The escalation clock names the unit answerable for the case as a whole.
                if let Some(e) = find(Milestone::Escalate).filter(|t| t.is_running() && t.unit_id != *unit_id) {
                    changes.push(Change::Reassign { milestone: Milestone::Escalate, version: e.clock.version, unit_id: unit_id.clone() });
                }
                if let Some(c) = find(Milestone::Contact).filter(|t| t.is_running()) {
                    if c.round < round {
                        changes.extend(self.stop(c, StopReason::Superseded));
                    } else if c.round == round && c.unit_id != *unit_id {
                        changes.push(Change::Reassign {
                            milestone: Milestone::Contact,
                            version: c.clock.version,
                            unit_id: unit_id.clone(),
                        });
                    }
                }
            }
            CaseEvent::Accepted { round } => {
                let accept = find(Milestone::Accept);
                if accept.is_some_and(|a| *round != 0 && a.round > *round) {
                    return changes; // a signature of an earlier round, arriving late
                }
                if let Some(a) = accept.filter(|t| t.is_running() && concerns(t, *round)) {
                    changes.extend(self.stop(a, StopReason::Met));
                }
                let round = match (*round, accept) {
                    (0, Some(a)) => a.round.max(1),
                    (r, _) => r.max(1),
                };
                let unit = accept.map_or("", |a| a.unit_id.as_str());
                let urgency = accept.map_or(Urgency::Normal, |a| a.urgency);
                match find(Milestone::Contact) {
                    None => changes.extend(self.arm(Milestone::Contact, None, round, unit, urgency)),
                    Some(c) if c.round < round => {
                        changes.extend(self.arm(Milestone::Contact, Some(c), round, unit, urgency));
                    }
                    Some(_) => {}
                }
            }
            CaseEvent::Contacted { round } => {
                if let Some(t) = find(Milestone::Contact).filter(|t| t.is_running() && concerns(t, *round)) {
                    changes.extend(self.stop(t, StopReason::Met));
                }
            }
            CaseEvent::Replied { round } => {
                for m in [Milestone::Contact, Milestone::Reply] {
                    if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                        changes.extend(self.stop(t, StopReason::Met));
                    }
                }
            }
            CaseEvent::Staged { round } => {
                for m in [Milestone::Contact, Milestone::Reply, Milestone::Resolve] {
                    if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                        changes.extend(self.stop(t, StopReason::Met));
                    }
                }
            }
            CaseEvent::ExtensionApproved { deadline } => {
                // A clock already red stays red: the extension came after the limit was missed.
                if let Some(t) = find(Milestone::Resolve).filter(|t| matches!(t.clock.state, ClockState::Armed | ClockState::Warned))
                    && let Some(clock) = t.clock.moved_to(*deadline, self.policy)
                {
                    changes.push(Change::Move { milestone: Milestone::Resolve, version: t.clock.version, clock });
                }
            }
            CaseEvent::Resolved { round } => {
                for m in
                    [Milestone::Dispatch, Milestone::Accept, Milestone::Contact, Milestone::Reply, Milestone::Resolve, Milestone::Escalate]
                {
                    if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                        changes.extend(self.stop(t, StopReason::Met));
                    }
                }
            }
            CaseEvent::Reopened { round } => {
                match find(Milestone::Resolve) {
                    Some(r) if *round != 0 && r.round >= *round => return changes, // already reopened
                    Some(r) => {
                        let next = if *round == 0 { r.round + 1 } else { *round };
                        changes.extend(self.arm(Milestone::Resolve, Some(r), next, &r.unit_id, r.urgency));
                    }
                    // Reopened before the dispatch reached us: time it as an ordinary case until
                    // the dispatch (same round) hands it to its unit.
                    None => changes.extend(self.arm(Milestone::Resolve, None, (*round).max(1), "", Urgency::Normal)),
                }
                // Unresolved again: the 50 working days still count from receipt, so a case that
                // keeps coming back is escalated (包案) as soon as that time is up.
                if let Some(e) = find(Milestone::Escalate).filter(|e| !e.is_running()) {
                    changes.extend(self.arm_from(e.clock.started_at, Milestone::Escalate, Some(e), e.round, &e.unit_id, e.urgency));
                }
            }
            CaseEvent::Closed => {
                for t in self.existing.iter().filter(|t| t.is_running()) {
                    changes.extend(self.stop(t, StopReason::Closed));
                }
            }
            CaseEvent::Classified => {
                // Clocks armed before the case was classified (dispatch, escalate) may now have
                // another limit (a rule by urgency, category or request type), counted from their
                // start. An extended clock keeps its approved deadline.
                for t in self.existing.iter().filter(|t| t.is_running() && t.part.is_empty() && t.clock.paused_at.is_none()) {
                    let m = t.clock.milestone;
                    let facts = Facts { urgency: if t.unit_id.is_empty() { self.facts.urgency } else { t.urgency }, ..self.facts.clone() };
                    let hours = self.hours.of(&t.unit_id);
                    let fresh = Clock::arm_for(m, t.clock.version, t.clock.started_at, self.policy, &facts, self.calendar, hours);
                    if fresh.deadline != t.clock.deadline
                        && let Some(version) = t.clock.version.checked_add(1)
                    {
                        let clock = Clock { version, state: t.clock.state, ..fresh };
                        changes.push(Change::Refit { milestone: m, version: t.clock.version, clock });
                    }
                }
            }
            CaseEvent::Escalated => {
                // Escalated already (by a person, or by a red rung): the 包案 clock has done its work.
                if let Some(e) = find(Milestone::Escalate).filter(|t| t.is_running()) {
                    changes.extend(self.stop(e, StopReason::Met));
                }
            }
            CaseEvent::Verified { .. }
            | CaseEvent::Returned
            | CaseEvent::ReturnReviewed
            | CaseEvent::ExtensionRequested
            | CaseEvent::ExtensionRefused
            | CaseEvent::AssistAdded { .. }
            | CaseEvent::AssistAnswered { .. } => {}
        }
        changes
    }

    /// Assisting parts (协办): each its own clock, from its deadline; answered, it stops; the
    /// case resolved, the parts still open are moot.
    fn parts(&self, event: &CaseEvent, changes: &mut Vec<Change>) {
        if !self.policy.enabled(Milestone::Assist) {
            return;
        }
        let part = |unit: &str| self.existing.iter().find(|t| t.clock.milestone == Milestone::Assist && t.part == unit);
        let mut arm = |unit: &str, deadline: Option<DateTime<Utc>>, round: u32| {
            let previous = part(unit);
            if unit.is_empty() || previous.is_some_and(Tracked::is_running) || changes.iter().any(|c| c.key() == (Milestone::Assist, unit))
            {
                return;
            }
            let Some(version) = previous.map_or(Some(1), |p| p.clock.version.checked_add(1)) else { return };
            let clock = match deadline {
                Some(d) => Clock::arm_until(Milestone::Assist, version, self.at, d.max(self.at), self.policy, self.calendar),
                None => Clock::arm_for(Milestone::Assist, version, self.at, self.policy, self.facts, self.calendar, self.hours.of(unit)),
            };
            let urgency = self.current_unit().1;
            changes.push(Change::Arm(Tracked { clock, round, unit_id: unit.to_owned(), urgency, part: unit.to_owned() }));
        };
        match event {
            CaseEvent::AssistAdded { unit_id, deadline } => {
                let round = self.find(Milestone::Resolve).map_or(1, |r| r.round.max(1));
                arm(unit_id, *deadline, round);
            }
            CaseEvent::Dispatched { round, parts, .. } => {
                for (unit, deadline) in parts {
                    arm(unit, *deadline, (*round).max(1));
                }
            }
            CaseEvent::AssistAnswered { unit_id } => {
                if let Some(t) = part(unit_id).filter(|t| t.is_running()) {
                    changes.extend(self.stop(t, StopReason::Met));
                }
            }
            CaseEvent::Resolved { .. } => {
                let open = self.existing.iter().filter(|t| t.clock.milestone == Milestone::Assist && t.is_running());
                let stops: Vec<_> = open.filter_map(|t| self.stop(t, StopReason::Superseded)).collect();
                changes.extend(stops);
            }
            _ => {}
        }
    }

    /// The milestones that follow the events the policy lists for them.
    fn event_driven(&self, event: &CaseEvent, changes: &mut Vec<Change>) {
        let Some(trigger) = event.trigger() else { return };
        let round = event.round();
        for m in self.policy.event_driven() {
            if changes.iter().any(|c| c.key() == (m, "")) {
                continue; // closed, say: already stopped by the rules every clock follows
            }
            let (start, stop) = self.policy.start_stop(m);
            let existing = self.find(m);
            if stop.contains(&trigger) {
                if let Some(t) = existing.filter(|t| t.is_running() && (round == 0 || t.round <= round)) {
                    changes.extend(self.stop(t, StopReason::Met));
                }
                continue;
            }
            if !start.contains(&trigger) {
                if let (CaseEvent::Dispatched { unit_id, .. }, Some(t)) = (event, existing)
                    && t.is_running()
                    && t.unit_id != *unit_id
                {
                    changes.push(Change::Reassign { milestone: m, version: t.clock.version, unit_id: unit_id.clone() });
                }
                continue;
            }
            let (unit, urgency) = match event {
                CaseEvent::Dispatched { unit_id, urgency, .. } => (unit_id.as_str(), *urgency),
                _ => self.current_unit(),
            };
            let round = match (round, existing) {
                (0, Some(t)) if !t.is_running() => t.round + 1,
                (0, Some(t)) => t.round,
                (0, None) => self.find(Milestone::Resolve).map_or(0, |r| r.round),
                (r, _) => r,
            };
            match existing {
                None => changes.extend(self.arm(m, None, round, unit, urgency)),
                // Started again in a later round (a reopened case): a fresh clock.
                Some(t) if t.round < round => changes.extend(self.arm(m, Some(t), round, unit, urgency)),
                // The same round, another unit: handed over, its time goes on.
                Some(t) if t.is_running() && t.round == round && t.unit_id != unit && !unit.is_empty() => {
                    changes.push(Change::Reassign { milestone: m, version: t.clock.version, unit_id: unit.to_owned() })
                }
                Some(_) => {}
            }
        }
    }

    /// Pauses and resumes, on any clock this event did not otherwise change.
    fn pauses(&self, event: &CaseEvent, changes: &mut Vec<Change>) {
        let Some(trigger) = event.trigger() else { return };
        let mut more = Vec::new();
        for t in self.existing.iter().filter(|t| t.is_running()) {
            if changes.iter().any(|c| c.key() == t.key()) {
                continue;
            }
            let (milestone, part, version) = (t.clock.milestone, t.part.clone(), t.clock.version);
            match self.policy.pauses(milestone, trigger) {
                (true, _) => {
                    if let Some(clock) = t.clock.paused(self.at) {
                        more.push(Change::Pause { milestone, part, version, clock });
                    }
                }
                (_, true) => {
                    let limit = self.policy.limit_for(milestone, &Facts { urgency: t.urgency, ..self.facts.clone() });
                    if let Some(clock) = t.clock.resumed(self.at, limit, self.policy, self.calendar, self.hours.of(&t.unit_id)) {
                        more.push(Change::Resume { milestone, part, version, clock });
                    }
                }
                _ => {}
            }
        }
        changes.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Limit, LimitRule, MilestoneSpec, Selector};
    use chrono::TimeDelta;

    const T0: &str = "2026-03-02T01:00:00Z"; // Monday 09:00 in Beijing

    fn t0() -> DateTime<Utc> {
        T0.parse().unwrap()
    }

    fn mins(n: i64) -> DateTime<Utc> {
        t0() + TimeDelta::minutes(n)
    }

    /// The milestones with rules of their own only: what most tests look at.
    fn own_rules_only() -> Policy {
        let off = MilestoneSpec { enabled: Some(false), ..MilestoneSpec::default() };
        let milestones = [Milestone::Verify, Milestone::Response].map(|m| (m, off.clone())).into();
        Policy { milestones, ..Policy::default() }
    }

    /// Plays events in order, applying each plan the way the store does.
    struct Case {
        clocks: Vec<Tracked>,
        policy: Policy,
        facts: Facts,
        hours: UnitHours,
    }

    impl Case {
        fn new() -> Self {
            Case::with(own_rules_only())
        }

        fn with(policy: Policy) -> Self {
            policy.validate().unwrap();
            Case { clocks: Vec::new(), policy, facts: Facts::default(), hours: UnitHours::default() }
        }

        fn on(&mut self, event: CaseEvent, at: DateTime<Utc>) -> Vec<Change> {
            if let CaseEvent::Dispatched { urgency, .. } = &event {
                self.facts.urgency = *urgency;
            }
            let changes = plan(&self.clocks, &event, at, &self.policy, &Calendar::china_default(), &self.hours, &self.facts);
            for c in &changes {
                match c {
                    Change::Arm(t) => {
                        self.clocks.retain(|x| x.key() != t.key());
                        self.clocks.push(t.clone());
                    }
                    Change::Stop { milestone, part, .. } => {
                        self.part_mut(*milestone, part).clock.state = ClockState::Stopped;
                    }
                    Change::Reassign { milestone, unit_id, .. } => self.get_mut(*milestone).unit_id = unit_id.clone(),
                    Change::Move { milestone, clock, .. } | Change::Refit { milestone, clock, .. } => {
                        self.get_mut(*milestone).clock = clock.clone()
                    }
                    Change::Pause { milestone, part, clock, .. } | Change::Resume { milestone, part, clock, .. } => {
                        self.part_mut(*milestone, part).clock = clock.clone()
                    }
                }
            }
            changes
        }

        fn get(&self, m: Milestone) -> &Tracked {
            self.clocks.iter().find(|t| t.clock.milestone == m && t.part.is_empty()).unwrap()
        }

        fn part(&self, m: Milestone, part: &str) -> &Tracked {
            self.clocks.iter().find(|t| t.key() == (m, part)).unwrap()
        }

        fn get_mut(&mut self, m: Milestone) -> &mut Tracked {
            self.part_mut(m, "")
        }

        fn part_mut(&mut self, m: Milestone, part: &str) -> &mut Tracked {
            self.clocks.iter_mut().find(|t| t.key() == (m, part)).unwrap()
        }

        fn has(&self, m: Milestone) -> bool {
            self.clocks.iter().any(|t| t.clock.milestone == m)
        }
    }

    fn dispatched(round: u32, unit: &str, urgency: Urgency) -> CaseEvent {
        CaseEvent::Dispatched { round, unit_id: unit.into(), urgency, parts: Vec::new() }
    }

    fn armed(changes: &[Change]) -> Vec<(Milestone, u32)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Arm(t) => Some((t.clock.milestone, t.clock.version)),
                _ => None,
            })
            .collect()
    }

    fn stopped(changes: &[Change]) -> Vec<(Milestone, StopReason, Level)> {
        changes
            .iter()
            .filter_map(|c| match c {
                Change::Stop { milestone, reason, level, .. } => Some((*milestone, *reason, *level)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_whole_loop_on_time() {
        let mut case = Case::new();
        let c = case.on(CaseEvent::Received, t0());
        assert_eq!(armed(&c), [(Milestone::Dispatch, 1), (Milestone::Escalate, 1)]);
        assert_eq!(case.get(Milestone::Dispatch).clock.deadline, mins(60));
        assert_eq!(case.get(Milestone::Dispatch).round, 0);
        // 50 working days from Monday 2 March 2026: 清明 and 劳动节 off, Saturday 9 May on.
        assert_eq!(case.get(Milestone::Escalate).clock.deadline, "2026-05-14T01:00:00Z".parse::<DateTime<Utc>>().unwrap());

        let c = case.on(dispatched(1, "st-dongmen", Urgency::Emergency), mins(20));
        assert_eq!(stopped(&c), [(Milestone::Dispatch, StopReason::Met, Level::Green)]);
        assert_eq!(armed(&c), [(Milestone::Accept, 1), (Milestone::Reply, 1), (Milestone::Resolve, 1)]);
        assert_eq!(case.get(Milestone::Escalate).unit_id, "st-dongmen");
        let resolve = case.get(Milestone::Resolve);
        assert_eq!(resolve.clock.deadline, mins(20 + 120), "emergency: 2 h");
        assert_eq!(resolve.unit_id, "st-dongmen");
        assert_eq!(resolve.urgency, Urgency::Emergency);
        assert_eq!(case.get(Milestone::Accept).clock.deadline, mins(30));

        let c = case.on(CaseEvent::Accepted { round: 1 }, mins(29));
        assert_eq!(stopped(&c), [(Milestone::Accept, StopReason::Met, Level::Yellow)]);
        assert_eq!(armed(&c), [(Milestone::Contact, 1)]);
        let contact = case.get(Milestone::Contact);
        assert_eq!(contact.clock.started_at, mins(29));
        assert_eq!(contact.unit_id, "st-dongmen");

        // Contact reported late (30 minutes after signing: red), once; a repeat changes nothing.
        let c = case.on(CaseEvent::Contacted { round: 1 }, mins(29 + 31));
        assert_eq!(stopped(&c), [(Milestone::Contact, StopReason::Met, Level::Red)]);
        assert!(case.on(CaseEvent::Contacted { round: 1 }, mins(70)).is_empty());

        let c = case.on(CaseEvent::Resolved { round: 1 }, mins(100));
        assert_eq!(
            stopped(&c),
            [
                (Milestone::Reply, StopReason::Met, Level::Green),
                (Milestone::Resolve, StopReason::Met, Level::Green),
                (Milestone::Escalate, StopReason::Met, Level::Green),
            ]
        );
        let c = case.on(CaseEvent::Closed, mins(200));
        assert!(c.is_empty(), "nothing left running: {c:?}");
    }

    #[test]
    fn the_dispatch_urgency_sets_the_resolve_limit() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        case.on(dispatched(1, "u", Urgency::Complex), t0());
        // Complex: 3 working days from Monday 09:00 → Thursday 09:00.
        assert_eq!(case.get(Milestone::Resolve).clock.deadline, "2026-03-05T01:00:00Z".parse::<DateTime<Utc>>().unwrap());
    }

    #[test]
    fn repeated_events_change_nothing() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        assert!(case.on(CaseEvent::Received, mins(1)).is_empty());
        case.on(dispatched(1, "u", Urgency::Normal), mins(5));
        assert!(case.on(dispatched(1, "u", Urgency::Normal), mins(6)).is_empty());
        case.on(CaseEvent::Accepted { round: 1 }, mins(7));
        assert!(case.on(CaseEvent::Accepted { round: 1 }, mins(8)).is_empty());
        case.on(CaseEvent::Resolved { round: 1 }, mins(9));
        assert!(case.on(CaseEvent::Resolved { round: 1 }, mins(10)).is_empty());
        case.on(CaseEvent::Closed, mins(11));
        assert!(case.on(CaseEvent::Closed, mins(12)).is_empty());
    }

    #[test]
    fn stopping_what_was_never_armed_does_nothing() {
        let mut case = Case::new();
        assert!(case.on(CaseEvent::Resolved { round: 1 }, t0()).is_empty());
        assert!(case.on(CaseEvent::Closed, t0()).is_empty());
        assert!(case.clocks.is_empty());
    }

    #[test]
    fn received_after_dispatched_arms_no_dispatch_clock() {
        let mut case = Case::new();
        let c = case.on(dispatched(1, "u", Urgency::Normal), mins(10));
        assert_eq!(armed(&c).len(), 3);
        assert!(stopped(&c).is_empty());
        let c = case.on(CaseEvent::Received, t0());
        assert_eq!(armed(&c), [(Milestone::Escalate, 1)], "escalation still counts from receipt");
        assert!(!case.has(Milestone::Dispatch));
    }

    #[test]
    fn dispatched_after_accepted_arms_no_accept_clock() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        let c = case.on(CaseEvent::Accepted { round: 1 }, mins(8));
        assert_eq!(armed(&c), [(Milestone::Contact, 1)]);
        assert_eq!(case.get(Milestone::Contact).unit_id, "");
        let c = case.on(dispatched(1, "u", Urgency::Normal), mins(5));
        assert_eq!(armed(&c), [(Milestone::Reply, 1), (Milestone::Resolve, 1)]);
        assert!(!case.has(Milestone::Accept));
        // The contact clock learns its unit from the late dispatch.
        assert_eq!(case.get(Milestone::Contact).unit_id, "u");
    }

    #[test]
    fn reopening_rearms_resolve_one_version_up_with_the_dispatch_urgency() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        case.on(dispatched(1, "u", Urgency::Emergency), mins(1));
        case.on(CaseEvent::Accepted { round: 1 }, mins(2));
        case.on(CaseEvent::Resolved { round: 1 }, mins(30));
        let c = case.on(CaseEvent::Reopened { round: 2 }, mins(600));
        assert_eq!(armed(&c), [(Milestone::Resolve, 2), (Milestone::Escalate, 2)]);
        let e = case.get(Milestone::Escalate);
        assert_eq!((e.clock.started_at, e.unit_id.as_str()), (t0(), "u"), "still from receipt");
        let r = case.get(Milestone::Resolve);
        assert_eq!((r.round, r.urgency, r.unit_id.as_str()), (2, Urgency::Emergency, "u"));
        assert_eq!(r.clock.started_at, mins(600));
        assert_eq!(r.clock.deadline, mins(600 + 120));
        assert_eq!(r.clock.state, ClockState::Armed);
        // The same reopening again, or a stale one, changes nothing.
        assert!(case.on(CaseEvent::Reopened { round: 2 }, mins(601)).is_empty());
        assert!(case.on(CaseEvent::Reopened { round: 1 }, mins(602)).is_empty());

        // The new round's dispatch to the same unit: a fresh accept, the resolve clock kept.
        let c = case.on(dispatched(2, "u", Urgency::Emergency), mins(610));
        assert_eq!(armed(&c), [(Milestone::Accept, 2), (Milestone::Reply, 2)]);
        assert_eq!(case.get(Milestone::Resolve).clock.started_at, mins(600));
        // A late dispatch of round 1 is stale.
        assert!(case.on(dispatched(1, "u", Urgency::Emergency), mins(611)).is_empty());
        // Accepting round 2 rearms the contact clock.
        let c = case.on(CaseEvent::Accepted { round: 2 }, mins(612));
        assert_eq!(armed(&c), [(Milestone::Contact, 2)]);
    }

    #[test]
    fn reopening_without_a_round_counts_on() {
        let mut case = Case::new();
        case.on(dispatched(1, "u", Urgency::Normal), t0());
        case.on(CaseEvent::Resolved { round: 0 }, mins(5));
        let c = case.on(CaseEvent::Reopened { round: 0 }, mins(60));
        assert_eq!(armed(&c), [(Milestone::Resolve, 2)]);
        assert_eq!(case.get(Milestone::Resolve).round, 2);
    }

    #[test]
    fn reopening_an_unknown_case_times_it_as_normal() {
        let mut case = Case::new();
        let c = case.on(CaseEvent::Reopened { round: 2 }, t0());
        assert_eq!(armed(&c), [(Milestone::Resolve, 1)]);
        let r = case.get(Milestone::Resolve);
        assert_eq!((r.round, r.urgency), (2, Urgency::Normal));
        // Its dispatch, arriving late, tells whose it is.
        case.on(dispatched(2, "u", Urgency::Normal), mins(1));
        assert_eq!(case.get(Milestone::Resolve).unit_id, "u");
    }

    #[test]
    fn a_transfer_within_the_round_rearms_accept_and_hands_the_rest_over() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        case.on(dispatched(1, "a", Urgency::Normal), mins(1));
        let c = case.on(dispatched(1, "b", Urgency::Normal), mins(30));
        assert_eq!(armed(&c), [(Milestone::Accept, 2)]);
        let accept = case.get(Milestone::Accept);
        assert_eq!((accept.unit_id.as_str(), accept.clock.started_at), ("b", mins(30)));
        let resolve = case.get(Milestone::Resolve);
        assert_eq!((resolve.unit_id.as_str(), resolve.clock.started_at, resolve.clock.version), ("b", mins(1), 1));
        assert_eq!(case.get(Milestone::Reply).unit_id, "b");
    }

    #[test]
    fn a_new_round_supersedes_the_old_contact_clock() {
        let mut case = Case::new();
        case.on(dispatched(1, "a", Urgency::Normal), t0());
        case.on(CaseEvent::Accepted { round: 1 }, mins(1));
        let c = case.on(dispatched(2, "a", Urgency::Normal), mins(5));
        assert_eq!(stopped(&c), [(Milestone::Contact, StopReason::Superseded, Level::Green)]);
    }

    #[test]
    fn events_of_an_earlier_round_stop_nothing_of_a_later_one() {
        let mut case = Case::new();
        case.on(dispatched(2, "u", Urgency::Normal), t0());
        assert!(case.on(CaseEvent::Accepted { round: 1 }, mins(1)).is_empty());
        assert!(case.get(Milestone::Accept).is_running());
        assert!(case.on(CaseEvent::Resolved { round: 1 }, mins(2)).is_empty());
        // Round 0 means the current round.
        let c = case.on(CaseEvent::Resolved { round: 0 }, mins(3));
        assert_eq!(stopped(&c).len(), 3);
    }

    #[test]
    fn closing_stops_every_running_clock_even_a_breached_one() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        case.on(dispatched(1, "u", Urgency::Normal), mins(1));
        case.get_mut(Milestone::Accept).clock.state = ClockState::Breached;
        let c = case.on(CaseEvent::Closed, mins(90));
        assert_eq!(
            stopped(&c),
            [
                (Milestone::Escalate, StopReason::Closed, Level::Green),
                (Milestone::Accept, StopReason::Closed, Level::Red),
                (Milestone::Reply, StopReason::Closed, Level::Green),
                (Milestone::Resolve, StopReason::Closed, Level::Green),
            ]
        );
    }

    #[test]
    fn the_written_response_meets_the_reply_clock_and_staged_completion_the_resolve_clock() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, mins(0));
        case.on(dispatched(1, "a", Urgency::Normal), mins(10));
        case.on(CaseEvent::Accepted { round: 1 }, mins(15));
        let changes = case.on(CaseEvent::Replied { round: 1 }, mins(25));
        assert_eq!(
            stopped(&changes),
            vec![(Milestone::Contact, StopReason::Met, Level::Green), (Milestone::Reply, StopReason::Met, Level::Green)]
        );
        assert!(case.get(Milestone::Resolve).is_running(), "resolving is still to come");
        let changes = case.on(CaseEvent::Staged { round: 1 }, mins(120));
        assert_eq!(stopped(&changes), vec![(Milestone::Resolve, StopReason::Met, Level::Green)]);
        assert!(case.get(Milestone::Escalate).is_running(), "a staged case can still be escalated");
    }

    #[test]
    fn an_approved_extension_moves_the_resolve_clock_one_version_up() {
        let mut case = Case::new();
        case.on(dispatched(1, "a", Urgency::Normal), mins(0));
        let before = case.get(Milestone::Resolve).clock.clone();
        // An earlier deadline is no extension; nothing moves.
        assert!(case.on(CaseEvent::ExtensionApproved { deadline: before.deadline - TimeDelta::hours(1) }, mins(5)).is_empty());
        let until = before.deadline + TimeDelta::days(7);
        let changes = case.on(CaseEvent::ExtensionApproved { deadline: until }, mins(30));
        assert!(matches!(&changes[..], [Change::Move { milestone: Milestone::Resolve, version: 1, .. }]), "{changes:?}");
        let after = &case.get(Milestone::Resolve).clock;
        assert_eq!((after.version, after.started_at, after.deadline, after.state), (2, before.started_at, until, ClockState::Armed));
        assert!(after.warn_at > before.warn_at && after.warn_at < until);
        // A clock already red is not moved: the limit was missed before the extension came.
        case.get_mut(Milestone::Resolve).clock.state = ClockState::Breached;
        assert!(case.on(CaseEvent::ExtensionApproved { deadline: until + TimeDelta::days(1) }, mins(40)).is_empty());
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn verify_and_response_follow_their_events_by_default() {
        let mut case = Case::with(Policy::default());
        case.on(CaseEvent::Received, t0());
        let c = case.on(dispatched(1, "a", Urgency::Normal), mins(10));
        assert_eq!(armed(&c), [(Milestone::Accept, 1), (Milestone::Reply, 1), (Milestone::Resolve, 1), (Milestone::Response, 1)]);
        // 3 working days from Monday 09:10.
        assert_eq!(case.get(Milestone::Response).clock.deadline, at("2026-03-05T01:10:00Z"));
        assert_eq!(case.get(Milestone::Response).unit_id, "a");
        let c = case.on(CaseEvent::Accepted { round: 1 }, mins(15));
        assert_eq!(armed(&c), [(Milestone::Contact, 1), (Milestone::Verify, 1)]);
        assert_eq!(case.get(Milestone::Verify).clock.deadline, mins(45), "the 30 of 1030");
        let c = case.on(CaseEvent::Verified { round: 1 }, mins(50));
        assert_eq!(stopped(&c), [(Milestone::Verify, StopReason::Met, Level::Red)]);
        // A transfer hands the written response over with the rest.
        let c = case.on(dispatched(1, "b", Urgency::Normal), mins(60));
        assert!(c.contains(&Change::Reassign { milestone: Milestone::Response, version: 1, unit_id: "b".into() }), "{c:?}");
        let c = case.on(CaseEvent::Replied { round: 1 }, mins(70));
        assert_eq!(stopped(&c).iter().map(|s| s.0).collect::<Vec<_>>(), [Milestone::Contact, Milestone::Reply, Milestone::Response]);
        // Reopened: a fresh written response is due.
        case.on(CaseEvent::Resolved { round: 1 }, mins(80));
        let c = case.on(CaseEvent::Reopened { round: 2 }, mins(90));
        assert_eq!(armed(&c), [(Milestone::Resolve, 2), (Milestone::Escalate, 2), (Milestone::Response, 2)]);
        assert_eq!(case.get(Milestone::Response).round, 2);
        // Closing stops it once.
        let c = case.on(CaseEvent::Closed, mins(100));
        assert_eq!(stopped(&c).iter().filter(|s| s.0 == Milestone::Response).count(), 1);
    }

    #[test]
    fn a_district_adds_a_milestone_as_data() {
        let policy: Policy = toml::from_str(
            r#"
            [milestones.callback]
            limit = "2wd"
            start = ["resolved"]
            stop = ["closed", "reopened"]
            "#,
        )
        .unwrap();
        let callback: Milestone = "callback".parse().unwrap();
        let mut case = Case::with(policy);
        case.on(dispatched(1, "a", Urgency::Normal), t0());
        let c = case.on(CaseEvent::Resolved { round: 1 }, mins(60));
        assert!(armed(&c).contains(&(callback, 1)), "{c:?}");
        let clock = &case.get(callback).clock;
        assert_eq!(clock.deadline, at("2026-03-04T02:00:00Z"));
        assert_eq!(case.get(callback).unit_id, "a");
        let c = case.on(CaseEvent::Closed, mins(120));
        assert_eq!(stopped(&c).iter().filter(|s| s.0 == callback).count(), 1);
    }

    #[test]
    fn a_return_under_review_pauses_the_resolve_clock_if_the_district_so_rules() {
        let policy: Policy = toml::from_str(
            r#"
            [milestones.resolve]
            pause = ["returned"]
            resume = ["return_reviewed"]
            [milestones.verify]
            enabled = false
            [milestones.response_document]
            enabled = false
            "#,
        )
        .unwrap();
        let mut case = Case::with(policy);
        case.on(dispatched(1, "a", Urgency::Normal), t0());
        let before = case.get(Milestone::Resolve).clock.clone();
        let c = case.on(CaseEvent::Returned, mins(60));
        assert!(matches!(&c[..], [Change::Pause { milestone: Milestone::Resolve, version: 1, .. }]), "{c:?}");
        let paused = case.get(Milestone::Resolve).clock.clone();
        assert_eq!((paused.version, paused.paused_at), (2, Some(mins(60))));
        assert_eq!(paused.due(before.deadline + TimeDelta::days(3)), None, "a paused clock never fires");
        assert_eq!(paused.next_wake(), None);
        // A second return while paused changes nothing.
        assert!(case.on(CaseEvent::Returned, mins(61)).is_empty());
        let c = case.on(CaseEvent::ReturnReviewed, mins(300));
        assert!(matches!(&c[..], [Change::Resume { milestone: Milestone::Resolve, version: 2, .. }]), "{c:?}");
        let resumed = &case.get(Milestone::Resolve).clock;
        assert_eq!(resumed.version, 3);
        assert_eq!(resumed.paused_at, None);
        assert_eq!(resumed.deadline, before.deadline + TimeDelta::minutes(240), "24 h elapsed: four hours given back");
        assert_eq!(resumed.warn_at, before.warn_at + TimeDelta::minutes(240));
        assert_eq!(resumed.started_at, before.started_at);
        // Other clocks were not paused.
        assert_eq!(case.get(Milestone::Accept).clock.paused_at, None);
    }

    #[test]
    fn every_assisting_part_has_its_own_clock() {
        let mut case = Case::new();
        let d1 = mins(600);
        let c = case.on(
            CaseEvent::Dispatched { round: 1, unit_id: "lead".into(), urgency: Urgency::Normal, parts: vec![("b".into(), Some(d1))] },
            t0(),
        );
        assert!(armed(&c).contains(&(Milestone::Assist, 1)));
        let b = case.part(Milestone::Assist, "b");
        assert_eq!((b.unit_id.as_str(), b.clock.deadline, b.round), ("b", d1, 1));
        // Another part called in later, without a deadline: the case's own limit.
        let c = case.on(CaseEvent::AssistAdded { unit_id: "c".into(), deadline: None }, mins(30));
        assert_eq!(armed(&c), [(Milestone::Assist, 1)]);
        assert_eq!(case.part(Milestone::Assist, "c").clock.deadline, mins(30 + 24 * 60));
        // The same part added again (a redelivery) changes nothing.
        assert!(case.on(CaseEvent::AssistAdded { unit_id: "c".into(), deadline: None }, mins(31)).is_empty());
        let c = case.on(CaseEvent::AssistAnswered { unit_id: "b".into() }, mins(100));
        assert!(
            matches!(&c[..], [Change::Stop { milestone: Milestone::Assist, part, reason: StopReason::Met, level: Level::Green, .. }] if part == "b"),
            "{c:?}"
        );
        assert!(case.part(Milestone::Assist, "c").is_running());
        let c = case.on(CaseEvent::Resolved { round: 1 }, mins(200));
        assert!(
            c.iter().any(
                |c| matches!(c, Change::Stop { milestone: Milestone::Assist, part, reason: StopReason::Superseded, .. } if part == "c")
            ),
            "{c:?}"
        );
        assert!(case.clocks.iter().all(|t| !t.is_running() || t.clock.milestone == Milestone::Escalate));
    }

    #[test]
    fn the_most_specific_rule_picks_the_limit() {
        let policy = Policy {
            rules: vec![
                LimitRule {
                    when: Selector { urgency: Some(Urgency::Emergency), ..Selector::default() },
                    limits: [(Milestone::Resolve, Limit::Minutes(90))].into(),
                },
                LimitRule {
                    when: Selector { channel: Some("hotline".into()), urgency: Some(Urgency::Emergency), ..Selector::default() },
                    limits: [(Milestone::Resolve, Limit::Hours(1))].into(),
                },
                LimitRule {
                    when: Selector { category: Some("03".into()), ..Selector::default() },
                    limits: [(Milestone::Dispatch, Limit::Hours(3))].into(),
                },
                LimitRule {
                    when: Selector { category: Some("03.02".into()), ..Selector::default() },
                    limits: [(Milestone::Dispatch, Limit::Hours(2))].into(),
                },
            ],
            ..own_rules_only()
        };
        policy.validate().unwrap();
        let facts = |channel: &str, urgency, category: &str| Facts {
            channel: channel.into(),
            urgency,
            category: category.into(),
            request_type: String::new(),
        };
        assert_eq!(policy.limit_for(Milestone::Resolve, &facts("hotline", Urgency::Emergency, "")), Limit::Hours(1));
        assert_eq!(policy.limit_for(Milestone::Resolve, &facts("mailbox", Urgency::Emergency, "")), Limit::Minutes(90));
        assert_eq!(policy.limit_for(Milestone::Resolve, &facts("hotline", Urgency::Normal, "")), Limit::Hours(24));
        assert_eq!(policy.limit_for(Milestone::Dispatch, &facts("", Urgency::Normal, "03.01")), Limit::Hours(3));
        assert_eq!(policy.limit_for(Milestone::Dispatch, &facts("", Urgency::Normal, "03.02")), Limit::Hours(2));
        assert_eq!(
            policy.limit_for(Milestone::Dispatch, &facts("", Urgency::Normal, "030")),
            Limit::Hours(1),
            "a prefix is not a category"
        );
        // The case's facts choose its clocks.
        let mut case = Case::with(policy);
        case.facts = facts("hotline", Urgency::Emergency, "03.02");
        case.on(CaseEvent::Received, t0());
        assert_eq!(case.get(Milestone::Dispatch).clock.deadline, mins(120));
        case.on(dispatched(1, "a", Urgency::Emergency), mins(10));
        assert_eq!(case.get(Milestone::Resolve).clock.deadline, mins(70));
    }

    #[test]
    fn the_classification_refits_the_clocks_armed_before_it() {
        let policy = Policy {
            rules: vec![LimitRule {
                when: Selector { urgency: Some(Urgency::Emergency), ..Selector::default() },
                limits: [(Milestone::Dispatch, Limit::Minutes(15))].into(),
            }],
            ..own_rules_only()
        };
        let mut case = Case::with(policy);
        case.on(CaseEvent::Received, t0());
        assert_eq!(case.get(Milestone::Dispatch).clock.deadline, mins(60));
        // Classified as an emergency five minutes on: the dispatch clock now runs 15 minutes from receipt.
        case.facts.urgency = Urgency::Emergency;
        let c = case.on(CaseEvent::Classified, mins(5));
        assert!(matches!(&c[..], [Change::Refit { milestone: Milestone::Dispatch, version: 1, .. }]), "{c:?}");
        let d = &case.get(Milestone::Dispatch).clock;
        assert_eq!((d.version, d.started_at, d.deadline, d.state), (2, t0(), mins(15), ClockState::Armed));
        // Nothing else changed, and the same classification again changes nothing.
        assert!(case.on(CaseEvent::Classified, mins(6)).is_empty());
    }

    #[test]
    fn an_escalated_case_meets_its_escalation_clock() {
        let mut case = Case::new();
        case.on(CaseEvent::Received, t0());
        case.on(dispatched(1, "a", Urgency::Normal), mins(5));
        let c = case.on(CaseEvent::Escalated, mins(60));
        assert_eq!(stopped(&c), [(Milestone::Escalate, StopReason::Met, Level::Green)]);
        assert!(case.get(Milestone::Resolve).is_running(), "the unit keeps working it");
        assert!(case.on(CaseEvent::Escalated, mins(61)).is_empty());
    }

    #[test]
    fn red_for_long_enough_climbs_the_ladder() {
        let policy: Policy = toml::from_str("[milestones.resolve]\nescalate_after_red = \"2wd\"\n").unwrap();
        let mut case = Case::with(policy);
        case.on(dispatched(1, "a", Urgency::Normal), t0());
        let mut clock = case.get(Milestone::Resolve).clock.clone();
        // Deadline Tuesday 09:00; two working days later is Thursday 09:00.
        assert_eq!(clock.escalate_at, Some(at("2026-03-05T01:00:00Z")));
        let mut fired = Vec::new();
        while let Some(wake) = clock.next_wake() {
            let firing = clock.due(wake).unwrap();
            clock.apply(firing).unwrap();
            fired.push((firing, wake));
        }
        assert_eq!(
            fired,
            [
                (crate::domain::Firing::Warning, clock.warn_at),
                (crate::domain::Firing::Breach, at("2026-03-03T01:00:00Z")),
                (crate::domain::Firing::Escalation, at("2026-03-05T01:00:00Z")),
            ]
        );
        assert_eq!(clock.state, ClockState::Escalated);
        // Without the rung, red is the end.
        assert_eq!(Case::new().policy.escalate_after_red(Milestone::Resolve), None);
    }

    #[test]
    fn policies_that_cannot_work_are_refused_naming_the_entry() {
        let bad = |text: &str| toml::from_str::<Policy>(text).unwrap().validate().unwrap_err().to_string();
        let err = bad("[milestones.callback]\nstart = [\"resolved\"]\n");
        assert!(err.contains("milestones.callback has no limit") && err.contains("milestones.callback needs the events"), "{err}");
        let err = bad("[milestones.resolve]\nstart = [\"accepted\"]\n");
        assert!(err.contains("milestones.resolve: resolve starts and stops by rules of its own"), "{err}");
        let err = bad("[milestones.resolve]\npause = [\"returned\"]\n");
        assert!(err.contains("must have events that resume it"), "{err}");
        let err = bad("[milestones.resolve]\npause = [\"returned\"]\nresume = [\"returned\"]\n");
        assert!(err.contains("\"returned\" is both in pause and in resume"), "{err}");
        let err = bad(
            "[[rules]]\nwhen = { urgency = \"emergency\" }\nlimits = { resolve = \"0m\" }\n[[rules]]\nwhen = { urgency = \"emergency\" }\nlimits = { dispatch = \"2h\" }\n",
        );
        assert!(err.contains("rules[0].limits.resolve is 0m") && err.contains("rules[1] selects the same cases as rules[0]"), "{err}");
        let err = bad("[[rules]]\nwhen = { channel = \"\" }\nlimits = { nowhere = \"2h\" }\n");
        assert!(err.contains("\"nowhere\", which is no milestone") && err.contains("rules[0].when.channel is empty"), "{err}");
        let err =
            toml::from_str::<Policy>("[milestones.x]\nlimit = \"1h\"\nstart = [\"sent\"]\nstop = [\"closed\"]\n").unwrap_err().to_string();
        assert!(err.contains("sent"), "{err}");
        let err = toml::from_str::<Policy>("[milestones.Bad]\nlimit = \"1h\"\n").unwrap_err().to_string();
        assert!(err.contains("Bad"), "{err}");
        let err =
            toml::from_str::<Policy>("[[rules]]\nwhen = { colour = \"red\" }\nlimits = { resolve = \"2h\" }\n").unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn working_hours_count_on_the_answerable_units_hours() {
        let policy = Policy { accept: Limit::WorkingHours(2), ..own_rules_only() };
        let hours =
            UnitHours { book: jiesu_reference::time::HoursBook::default(), by_unit: [("centre".to_string(), "always".to_string())].into() };
        // Friday 6 March 2026, 17:00 in Beijing.
        let friday = at("2026-03-06T09:00:00Z");
        for (unit, deadline) in [("dept-water", "2026-03-09T02:00:00Z"), ("centre", "2026-03-06T11:00:00Z")] {
            let mut case = Case::with(policy.clone());
            case.hours = hours.clone();
            case.on(dispatched(1, unit, Urgency::Normal), friday);
            assert_eq!(case.get(Milestone::Accept).clock.deadline, at(deadline), "{unit}");
        }
    }
}
