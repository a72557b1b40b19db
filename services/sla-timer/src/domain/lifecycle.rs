//! Which clocks each case event starts, restarts, hands over and stops (时限的启停规则).
//!
//! [`plan`] is a pure function of the case's stored clocks and one event, so the rules are
//! tested without a database and a redelivered or late event gives the same, harmless answer.
//!
//! Handling rounds: a case is dispatched in round 1 and every reopening starts the next round
//! (`round` of the events). A clock remembers the round it was armed for, which is how a
//! duplicate, a stale event of an earlier round, a transfer within a round and a new round are
//! told apart. A round of 0 means the producer did not say; it is read as "the current round".

use chrono::{DateTime, Utc};

use super::{Calendar, Clock, ClockState, Level, Milestone, Policy, Urgency};

/// A case event, as far as the clocks care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEvent {
    /// `case.received`: the dispatch (分拨) and escalation (包案) clocks start.
    Received,
    /// `case.dispatched`: a unit owns the case (派单); accept, reply and resolve clocks start.
    Dispatched { round: u32, unit_id: String, urgency: Urgency },
    /// `case.accepted`: the unit signed for it (签收); the contact clock starts.
    Accepted { round: u32 },
    /// `case.contacted`: the unit reached the citizen (联系); the contact clock stops.
    Contacted { round: u32 },
    /// `case.replied`: the written response is given (答复); the reply clock stops.
    Replied { round: u32 },
    /// `case.staged`: handled as far as possible now (阶段性办结); reply and resolve are met for
    /// this round, to be checked again on the date the unit gave.
    Staged { round: u32 },
    /// `case.extension_decided`, approved (延期): the resolve clock now runs to `deadline`.
    ExtensionApproved { deadline: DateTime<Utc> },
    /// `case.resolved`: the unit closed it with a reply (办结); every clock of the round stops.
    Resolved { round: u32 },
    /// `case.reopened`: the revisit found it unsolved; the resolve clock starts again (重新计时)
    /// and the escalation clock resumes, still counting from receipt.
    Reopened { round: u32 },
    /// `case.closed`: the case is finished (结案); nothing runs any more.
    Closed,
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
}

impl Tracked {
    /// Not yet stopped: armed, warned or breached (a breached milestone still awaits being met).
    pub fn is_running(&self) -> bool {
        self.clock.state != ClockState::Stopped
    }
}

/// Why a clock was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The milestone was met (or overtaken: a case resolved before its contact clock ran out).
    Met,
    /// The case was closed (结案).
    Closed,
    /// A new round made the clock of the earlier round moot.
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
    Stop { milestone: Milestone, version: u32, reason: StopReason, level: Level },
    /// The running clock now answers to another unit; its times do not change, because a case
    /// handed on (转办) must not win its handler a fresh limit (no 转圈 to hide delay).
    Reassign { milestone: Milestone, version: u32, unit_id: String },
    /// An approved extension: the running clock of `version` becomes `clock` (one version up, the
    /// same start, the new deadline and yellow point, its colour so far kept); the deadline it had
    /// is kept as the original for the statistics.
    Move { milestone: Milestone, version: u32, clock: Clock },
}

/// What `event`, which happened at `at`, does to a case whose clocks are `existing`.
///
/// Graceful with redelivered and out-of-order events: stopping a clock that was never armed
/// does nothing; arming a clock already armed for the same round and unit does nothing; an
/// event of an earlier round than the clock's is ignored; `case.received` after the case was
/// dispatched, or `case.dispatched` after it was accepted, does not start a clock that would
/// only ever go red.
pub fn plan(existing: &[Tracked], event: &CaseEvent, at: DateTime<Utc>, policy: &Policy, calendar: &Calendar) -> Vec<Change> {
    let find = |m: Milestone| existing.iter().find(|t| t.clock.milestone == m);
    let arm_from = |start: DateTime<Utc>, m: Milestone, previous: Option<&Tracked>, round: u32, unit_id: &str, urgency: Urgency| {
        let clock = match previous {
            None => Some(Clock::arm(m, 1, start, policy, urgency, calendar)),
            Some(p) => p.clock.rearm(start, policy, urgency, calendar).ok(),
        };
        clock.map(|clock| Change::Arm(Tracked { clock, round, unit_id: unit_id.to_owned(), urgency }))
    };
    let arm = |m: Milestone, previous: Option<&Tracked>, round: u32, unit_id: &str, urgency: Urgency| {
        arm_from(at, m, previous, round, unit_id, urgency)
    };
    let stop = |t: &Tracked, reason: StopReason| {
        let mut clock = t.clock.clone();
        clock.stop(at).ok().map(|level| Change::Stop { milestone: t.clock.milestone, version: t.clock.version, reason, level })
    };
    // An event of round 0 (unknown) concerns whatever round the clock is in.
    let concerns = |t: &Tracked, round: u32| round == 0 || t.round <= round;

    let mut changes = Vec::new();
    match event {
        CaseEvent::Received => {
            // Any clock at all means the case was received before, or already dispatched.
            if existing.is_empty() {
                changes.extend(arm(Milestone::Dispatch, None, 0, "", Urgency::Normal));
            }
            if find(Milestone::Escalate).is_none() {
                changes.extend(arm(Milestone::Escalate, None, 0, "", Urgency::Normal));
            }
        }
        CaseEvent::Dispatched { round, unit_id, urgency } => {
            let round = (*round).max(1);
            if let Some(d) = find(Milestone::Dispatch).filter(|t| t.is_running()) {
                changes.extend(stop(d, StopReason::Met));
            }
            let accepted_this_round = find(Milestone::Contact).is_some_and(|c| c.round >= round);
            for m in [Milestone::Accept, Milestone::Reply, Milestone::Resolve] {
                match find(m) {
                    None if m == Milestone::Accept && accepted_this_round => {}
                    None => changes.extend(arm(m, None, round, unit_id, *urgency)),
                    Some(t) if t.round < round => changes.extend(arm(m, Some(t), round, unit_id, *urgency)),
                    Some(t) if t.round > round || t.unit_id == *unit_id => {}
                    // The same round, another unit: a transfer. The new unit must sign anew…
                    Some(t) if m == Milestone::Accept => {
                        changes.extend(arm(m, Some(t), round, unit_id, *urgency));
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
                    changes.extend(stop(c, StopReason::Superseded));
                } else if c.round == round && c.unit_id != *unit_id {
                    changes.push(Change::Reassign { milestone: Milestone::Contact, version: c.clock.version, unit_id: unit_id.clone() });
                }
            }
        }
        CaseEvent::Accepted { round } => {
            let accept = find(Milestone::Accept);
            if accept.is_some_and(|a| *round != 0 && a.round > *round) {
                return changes; // a signature of an earlier round, arriving late
            }
            if let Some(a) = accept.filter(|t| t.is_running() && concerns(t, *round)) {
                changes.extend(stop(a, StopReason::Met));
            }
            let round = match (*round, accept) {
                (0, Some(a)) => a.round.max(1),
                (r, _) => r.max(1),
            };
            let unit = accept.map_or("", |a| a.unit_id.as_str());
            let urgency = accept.map_or(Urgency::Normal, |a| a.urgency);
            match find(Milestone::Contact) {
                None => changes.extend(arm(Milestone::Contact, None, round, unit, urgency)),
                Some(c) if c.round < round => {
                    changes.extend(arm(Milestone::Contact, Some(c), round, unit, urgency));
                }
                Some(_) => {}
            }
        }
        CaseEvent::Contacted { round } => {
            if let Some(t) = find(Milestone::Contact).filter(|t| t.is_running() && concerns(t, *round)) {
                changes.extend(stop(t, StopReason::Met));
            }
        }
        CaseEvent::Replied { round } => {
            for m in [Milestone::Contact, Milestone::Reply] {
                if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                    changes.extend(stop(t, StopReason::Met));
                }
            }
        }
        CaseEvent::Staged { round } => {
            for m in [Milestone::Contact, Milestone::Reply, Milestone::Resolve] {
                if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                    changes.extend(stop(t, StopReason::Met));
                }
            }
        }
        CaseEvent::ExtensionApproved { deadline } => {
            // A clock already red stays red: the extension came after the limit was missed.
            if let Some(t) = find(Milestone::Resolve).filter(|t| matches!(t.clock.state, ClockState::Armed | ClockState::Warned))
                && let Some(clock) = t.clock.moved_to(*deadline, policy)
            {
                changes.push(Change::Move { milestone: Milestone::Resolve, version: t.clock.version, clock });
            }
        }
        CaseEvent::Resolved { round } => {
            for m in [Milestone::Dispatch, Milestone::Accept, Milestone::Contact, Milestone::Reply, Milestone::Resolve, Milestone::Escalate]
            {
                if let Some(t) = find(m).filter(|t| t.is_running() && concerns(t, *round)) {
                    changes.extend(stop(t, StopReason::Met));
                }
            }
        }
        CaseEvent::Reopened { round } => {
            match find(Milestone::Resolve) {
                Some(r) if *round != 0 && r.round >= *round => return changes, // already reopened
                Some(r) => {
                    let next = if *round == 0 { r.round + 1 } else { *round };
                    changes.extend(arm(Milestone::Resolve, Some(r), next, &r.unit_id, r.urgency));
                }
                // Reopened before the dispatch reached us: time it as an ordinary case until
                // the dispatch (same round) hands it to its unit.
                None => changes.extend(arm(Milestone::Resolve, None, (*round).max(1), "", Urgency::Normal)),
            }
            // Unresolved again: the 50 working days still count from receipt, so a case that
            // keeps coming back is escalated (包案) as soon as that time is up.
            if let Some(e) = find(Milestone::Escalate).filter(|e| !e.is_running()) {
                changes.extend(arm_from(e.clock.started_at, Milestone::Escalate, Some(e), e.round, &e.unit_id, e.urgency));
            }
        }
        CaseEvent::Closed => {
            for t in existing.iter().filter(|t| t.is_running()) {
                changes.extend(stop(t, StopReason::Closed));
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const T0: &str = "2026-03-02T01:00:00Z"; // Monday 09:00 in Beijing

    fn t0() -> DateTime<Utc> {
        T0.parse().unwrap()
    }

    fn mins(n: i64) -> DateTime<Utc> {
        t0() + TimeDelta::minutes(n)
    }

    /// Plays events in order, applying each plan the way the store does.
    struct Case {
        clocks: Vec<Tracked>,
    }

    impl Case {
        fn new() -> Self {
            Case { clocks: Vec::new() }
        }

        fn on(&mut self, event: CaseEvent, at: DateTime<Utc>) -> Vec<Change> {
            let changes = plan(&self.clocks, &event, at, &Policy::default(), &Calendar::china_default());
            for c in &changes {
                match c {
                    Change::Arm(t) => {
                        self.clocks.retain(|x| x.clock.milestone != t.clock.milestone);
                        self.clocks.push(t.clone());
                    }
                    Change::Stop { milestone, .. } => {
                        self.get_mut(*milestone).clock.state = ClockState::Stopped;
                    }
                    Change::Reassign { milestone, unit_id, .. } => self.get_mut(*milestone).unit_id = unit_id.clone(),
                    Change::Move { milestone, clock, .. } => self.get_mut(*milestone).clock = clock.clone(),
                }
            }
            changes
        }

        fn get(&self, m: Milestone) -> &Tracked {
            self.clocks.iter().find(|t| t.clock.milestone == m).unwrap()
        }

        fn get_mut(&mut self, m: Milestone) -> &mut Tracked {
            self.clocks.iter_mut().find(|t| t.clock.milestone == m).unwrap()
        }

        fn has(&self, m: Milestone) -> bool {
            self.clocks.iter().any(|t| t.clock.milestone == m)
        }
    }

    fn dispatched(round: u32, unit: &str, urgency: Urgency) -> CaseEvent {
        CaseEvent::Dispatched { round, unit_id: unit.into(), urgency }
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
}
