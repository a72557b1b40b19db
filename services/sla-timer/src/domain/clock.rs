use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use jiesu_reference::time::BusinessHours;

use super::{Calendar, DomainError, Facts, Limit, Milestone, Policy, Urgency};

/// Where a milestone clock (计时器) stands; persisted with the clock, so each firing happens once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Running, no warning yet (green, 绿).
    Armed,
    /// The warning has fired (yellow, 预警黄).
    Warned,
    /// The deadline has passed and the breach has fired (red, 警报红).
    Breached,
    /// Red for as long as the ladder allows, and escalated to a leader (红灯提级).
    Escalated,
    /// The milestone was met or the clock cancelled; nothing fires any more.
    Stopped,
}

impl ClockState {
    /// Every state, in the order a clock can pass through them.
    pub const ALL: [ClockState; 5] =
        [ClockState::Armed, ClockState::Warned, ClockState::Breached, ClockState::Escalated, ClockState::Stopped];

    /// The `snake_case` name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Armed => "armed",
            ClockState::Warned => "warned",
            ClockState::Breached => "breached",
            ClockState::Escalated => "escalated",
            ClockState::Stopped => "stopped",
        }
    }
}

impl fmt::Display for ClockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClockState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClockState::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| DomainError::UnknownClockState(s.to_owned()))
    }
}

/// The colour level (颜色等级) supervisors see for a milestone at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 绿: within the limit, before the warning point.
    Green,
    /// 黄 (预警): past the warning point, deadline not yet reached.
    Yellow,
    /// 红 (警报): past the deadline.
    Red,
}

impl Level {
    /// The `snake_case` name used in storage and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Green => "green",
            Level::Yellow => "yellow",
            Level::Red => "red",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a clock emits when it is due: the `sla.warning` or the `sla.breached` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Firing {
    /// The warning point is reached (预警).
    Warning,
    /// The deadline has passed (超时 / 超期).
    Breach,
    /// Red for the ladder's time and still not met: escalate to a leader (提级).
    Escalation,
}

impl Firing {
    /// The `snake_case` name used in storage and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Firing::Warning => "warning",
            Firing::Breach => "breach",
            Firing::Escalation => "escalation",
        }
    }
}

impl fmt::Display for Firing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The pure state of one milestone clock (计时器) of a case.
///
/// `version` grows each time the milestone is re-armed (a reopened case), so a firing computed
/// for an older version can be recognised and dropped: the service fires on (clock id, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clock {
    /// The milestone this clock times.
    pub milestone: Milestone,
    /// Arming generation, starting wherever the caller starts it.
    pub version: u32,
    /// When the milestone's span began.
    pub started_at: DateTime<Utc>,
    /// When the clock turns yellow; never after `deadline`.
    pub warn_at: DateTime<Utc>,
    /// When the clock turns red (截止时间).
    pub deadline: DateTime<Utc>,
    /// What has fired so far.
    pub state: ClockState,
    /// When a red clock still not met is escalated (the ladder's last rung), if the policy says.
    pub escalate_at: Option<DateTime<Utc>>,
    /// Since when the clock is paused (挂起); nothing fires while it is.
    pub paused_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// Arms the clock of `milestone` starting at `start`, with the policy's limit for `urgency`.
    ///
    /// The warning point is the policy's fraction of the elapsed span (also for working-day
    /// limits, so a 3-working-day limit across a holiday warns late in the holiday, not at a fixed
    /// number of working days), rounded down to the second so it never comes after the deadline.
    /// `policy` should have passed [`Policy::validate`]; a fraction outside [0, 1] is clamped and
    /// NaN means no warning before the deadline.
    pub fn arm(milestone: Milestone, version: u32, start: DateTime<Utc>, policy: &Policy, urgency: Urgency, calendar: &Calendar) -> Clock {
        Clock::arm_for(milestone, version, start, policy, &Facts::of(urgency), calendar, &BusinessHours::office())
    }

    /// [`Clock::arm`] with the limit the policy chooses for a case with these `facts`, working
    /// hours counted on `hours` (the answerable unit's).
    pub fn arm_for(
        milestone: Milestone,
        version: u32,
        start: DateTime<Utc>,
        policy: &Policy,
        facts: &Facts,
        calendar: &Calendar,
        hours: &BusinessHours,
    ) -> Clock {
        let deadline = calendar.deadline_in(start, policy.limit_for(milestone, facts), hours);
        Clock::arm_until(milestone, version, start, deadline.max(start), policy, calendar)
    }

    /// A clock running from `start` to a `deadline` given by someone else (an assisting part's
    /// deadline, set by the lead unit).
    pub fn arm_until(
        milestone: Milestone,
        version: u32,
        start: DateTime<Utc>,
        deadline: DateTime<Utc>,
        policy: &Policy,
        calendar: &Calendar,
    ) -> Clock {
        Clock {
            milestone,
            version,
            started_at: start,
            warn_at: policy.yellow_at(milestone, start, deadline),
            deadline,
            state: ClockState::Armed,
            escalate_at: policy.escalate_after_red(milestone).map(|l| calendar.deadline(deadline, l)),
            paused_at: None,
        }
    }

    /// The same clock paused at `at` (挂起), one version up so that a firing planned before is
    /// stale. `None` if it is stopped or already paused.
    pub fn paused(&self, at: DateTime<Utc>) -> Option<Clock> {
        if self.state == ClockState::Stopped || self.paused_at.is_some() {
            return None;
        }
        Some(Clock { version: self.version.checked_add(1)?, paused_at: Some(at), ..self.clone() })
    }

    /// The paused clock running again from `at`, one version up, its yellow point, deadline and
    /// escalation moved by the time its `limit` would have counted during the pause. `None` if
    /// it is not paused.
    pub fn resumed(&self, at: DateTime<Utc>, limit: Limit, policy: &Policy, calendar: &Calendar, hours: &BusinessHours) -> Option<Clock> {
        let paused = self.paused_at?;
        let shift = |t: DateTime<Utc>| calendar.after_pause(t, paused, at, limit, hours);
        let deadline = shift(self.deadline);
        Some(Clock {
            version: self.version.checked_add(1)?,
            warn_at: shift(self.warn_at).min(deadline),
            deadline,
            escalate_at: policy.escalate_after_red(self.milestone).map(|l| calendar.deadline(deadline, l)),
            paused_at: None,
            ..self.clone()
        })
    }

    /// The clock for the same milestone of a reopened case (重新计时), one version up, armed
    /// afresh from `start` whatever this clock's state.
    pub fn rearm(&self, start: DateTime<Utc>, policy: &Policy, urgency: Urgency, calendar: &Calendar) -> Result<Clock, DomainError> {
        let version = self.version.checked_add(1).ok_or(DomainError::VersionOverflow(self.version))?;
        Ok(Clock::arm(self.milestone, version, start, policy, urgency, calendar))
    }

    /// The same clock moved to a later `deadline` (an approved extension, 延期), one version up so
    /// that a firing planned for the old deadline is recognised as stale; the yellow point is
    /// recomputed over the whole span, and a clock already yellow stays yellow (it never warns
    /// twice). `None` when the deadline is not later, or the clock is not running short of red.
    pub fn moved_to(&self, deadline: DateTime<Utc>, policy: &Policy) -> Option<Clock> {
        if deadline <= self.deadline || !matches!(self.state, ClockState::Armed | ClockState::Warned) {
            return None;
        }
        Some(Clock {
            version: self.version.checked_add(1)?,
            warn_at: policy.yellow_at(self.milestone, self.started_at, deadline),
            deadline,
            escalate_at: self.escalate_at.map(|at| at + (deadline - self.deadline)),
            ..self.clone()
        })
    }

    /// What should fire at `now`, if anything.
    ///
    /// Past the deadline it is always the breach, even if the warning never fired (the service
    /// was down): a warning about a deadline already missed would only mislead.
    pub fn due(&self, now: DateTime<Utc>) -> Option<Firing> {
        if self.paused_at.is_some() {
            return None;
        }
        match self.state {
            ClockState::Armed | ClockState::Warned if now >= self.deadline => Some(Firing::Breach),
            ClockState::Armed if now >= self.warn_at => Some(Firing::Warning),
            ClockState::Breached if self.escalate_at.is_some_and(|at| now >= at) => Some(Firing::Escalation),
            _ => None,
        }
    }

    /// Records that `firing` has been emitted and returns the new state.
    ///
    /// Refuses anything that would happen twice or out of order (a warning after the breach, any
    /// firing on a stopped clock), leaving the clock unchanged, so a duplicate is caught before
    /// it becomes a second event.
    pub fn apply(&mut self, firing: Firing) -> Result<ClockState, DomainError> {
        let next = match (self.state, firing) {
            (ClockState::Armed, Firing::Warning) => ClockState::Warned,
            (ClockState::Armed | ClockState::Warned, Firing::Breach) => ClockState::Breached,
            (ClockState::Breached, Firing::Escalation) => ClockState::Escalated,
            (state, firing) => return Err(DomainError::InvalidTransition { state, firing }),
        };
        self.state = next;
        Ok(next)
    }

    /// Stops the clock because the milestone was met or the case cancelled, and returns the level
    /// it ended on at `now` (red means met late; it still stops, so it can be counted).
    pub fn stop(&mut self, now: DateTime<Utc>) -> Result<Level, DomainError> {
        if self.state == ClockState::Stopped {
            return Err(DomainError::AlreadyStopped);
        }
        self.state = ClockState::Stopped;
        Ok(self.level_at(now))
    }

    /// The next instant at which [`due`](Self::due) may return something; `None` once nothing
    /// more can fire. It may lie in the past (the service was down): then the clock is due now.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        if self.paused_at.is_some() {
            return None;
        }
        match self.state {
            ClockState::Armed => Some(self.warn_at),
            ClockState::Warned => Some(self.deadline),
            ClockState::Breached => self.escalate_at,
            ClockState::Escalated | ClockState::Stopped => None,
        }
    }

    /// The colour of the milestone at `now` judged by time alone, whatever has fired yet.
    pub fn level_at(&self, now: DateTime<Utc>) -> Level {
        if now >= self.deadline {
            Level::Red
        } else if now >= self.warn_at {
            Level::Yellow
        } else {
            Level::Green
        }
    }
}

/// `start + fraction × (deadline − start)`, in whole seconds. The fraction is taken to a
/// millionth and the product computed in integers, because in binary floating point
/// 0.41 × 600 s is 245.999…, which would round down to 245 s instead of 246 s.
pub fn warning_point(start: DateTime<Utc>, deadline: DateTime<Utc>, fraction: f64) -> DateTime<Utc> {
    let fraction = if fraction.is_nan() { 1.0 } else { fraction.clamp(0.0, 1.0) };
    let micro = (fraction * 1e6).round() as i64;
    let span = (deadline - start).num_seconds().max(0);
    let offset = i128::from(span) * i128::from(micro) / 1_000_000;
    // offset ≤ span, and start + span ≤ deadline, so neither conversion nor addition can fail.
    start + TimeDelta::seconds(offset as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Limit;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const START: &str = "2026-03-02T01:00:00Z"; // Monday 09:00 in Beijing

    /// An accept clock: 10 minutes, warning at 8.
    fn accept() -> Clock {
        Clock::arm(Milestone::Accept, 1, t(START), &Policy::default(), Urgency::Normal, &Calendar::china_default())
    }

    fn in_state(state: ClockState) -> Clock {
        Clock { state, ..accept() }
    }

    #[test]
    fn arm_computes_warning_point_and_deadline() {
        let c = accept();
        assert_eq!(c.milestone, Milestone::Accept);
        assert_eq!(c.version, 1);
        assert_eq!(c.started_at, t(START));
        assert_eq!(c.warn_at, t("2026-03-02T01:08:00Z"));
        assert_eq!(c.deadline, t("2026-03-02T01:10:00Z"));
        assert_eq!(c.state, ClockState::Armed);
    }

    #[test]
    fn arm_uses_the_urgency_only_for_resolve() {
        let (p, cal) = (Policy::default(), Calendar::china_default());
        let arm = |m, u| Clock::arm(m, 0, t(START), &p, u, &cal);
        assert_eq!(arm(Milestone::Resolve, Urgency::Emergency).deadline, t("2026-03-02T03:00:00Z"));
        assert_eq!(arm(Milestone::Resolve, Urgency::Normal).deadline, t("2026-03-03T01:00:00Z"));
        assert_eq!(arm(Milestone::Resolve, Urgency::Complex).deadline, t("2026-03-05T01:00:00Z"));
        assert_eq!(arm(Milestone::Dispatch, Urgency::Emergency), arm(Milestone::Dispatch, Urgency::Complex));
    }

    #[test]
    fn the_warning_point_of_a_working_day_limit_is_a_fraction_of_elapsed_time() {
        // Complex case dispatched Friday 13 Feb 2026 10:00 Beijing, before 春节: deadline
        // Wednesday 25 Feb 10:00, twelve days later; 80 % of that is 9.6 days.
        let start = t("2026-02-13T02:00:00Z");
        let c = Clock::arm(Milestone::Resolve, 0, start, &Policy::default(), Urgency::Complex, &Calendar::china_default());
        assert_eq!(c.deadline, t("2026-02-25T02:00:00Z"));
        assert_eq!(c.warn_at, t("2026-02-22T16:24:00Z"));
    }

    #[test]
    fn the_warning_point_rounds_down_to_the_second_without_float_error() {
        let cal = Calendar::china_default();
        let at = |warn_at: f64, accept: Limit| {
            let p = Policy { warn_at, accept, ..Policy::default() };
            let c = Clock::arm(Milestone::Accept, 0, t(START), &p, Urgency::Normal, &cal);
            (c.warn_at - c.started_at).num_seconds()
        };
        assert_eq!(at(0.41, Limit::Minutes(10)), 246);
        assert_eq!(at(0.57, Limit::Minutes(10)), 342);
        assert_eq!(at(0.333, Limit::Minutes(1)), 19); // 19.98 s
        assert_eq!(at(0.999_999, Limit::Minutes(1)), 59);
        // Unvalidated fractions are clamped rather than trusted.
        assert_eq!(at(1.5, Limit::Minutes(1)), 60);
        assert_eq!(at(-1.0, Limit::Minutes(1)), 0);
        assert_eq!(at(f64::NAN, Limit::Minutes(1)), 60);
    }

    #[test]
    fn sub_second_starts_keep_whole_second_offsets() {
        let start = t("2026-03-02T01:00:00.750Z");
        let c = Clock::arm(Milestone::Accept, 0, start, &Policy::default(), Urgency::Normal, &Calendar::china_default());
        assert_eq!(c.warn_at, t("2026-03-02T01:08:00.750Z"));
        assert_eq!(c.deadline, t("2026-03-02T01:10:00.750Z"));
    }

    #[test]
    fn due_while_armed() {
        let c = accept();
        assert_eq!(c.due(t(START)), None);
        assert_eq!(c.due(t("2026-03-02T01:07:59Z")), None);
        assert_eq!(c.due(t("2026-03-02T01:08:00Z")), Some(Firing::Warning));
        assert_eq!(c.due(t("2026-03-02T01:09:59Z")), Some(Firing::Warning));
        // The warning was missed: straight to the breach, no stale warning.
        assert_eq!(c.due(t("2026-03-02T01:10:00Z")), Some(Firing::Breach));
        assert_eq!(c.due(t("2026-03-09T00:00:00Z")), Some(Firing::Breach));
    }

    #[test]
    fn due_in_the_other_states() {
        let warned = in_state(ClockState::Warned);
        assert_eq!(warned.due(t("2026-03-02T01:08:00Z")), None);
        assert_eq!(warned.due(t("2026-03-02T01:09:59Z")), None);
        assert_eq!(warned.due(t("2026-03-02T01:10:00Z")), Some(Firing::Breach));
        for state in [ClockState::Breached, ClockState::Stopped] {
            let c = in_state(state);
            for now in [START, "2026-03-02T01:08:00Z", "2026-03-02T01:10:00Z", "2027-01-01T00:00:00Z"] {
                assert_eq!(c.due(t(now)), None, "{state} at {now}");
            }
        }
    }

    #[test]
    fn a_zero_span_clock_is_due_for_breach_at_once() {
        let p = Policy { accept: Limit::IMMEDIATE, ..Policy::default() };
        let c = Clock::arm(Milestone::Accept, 0, t(START), &p, Urgency::Normal, &Calendar::china_default());
        assert_eq!((c.warn_at, c.deadline), (t(START), t(START)));
        assert_eq!(c.due(t(START)), Some(Firing::Breach));
    }

    #[test]
    fn every_transition() {
        use ClockState::*;
        use Firing::*;
        let table = [
            (Armed, Warning, Some(Warned)),
            (Armed, Breach, Some(Breached)),
            (Warned, Warning, None),
            (Warned, Breach, Some(Breached)),
            (Breached, Warning, None),
            (Breached, Breach, None),
            (Stopped, Warning, None),
            (Stopped, Breach, None),
        ];
        for (from, firing, to) in table {
            let mut c = in_state(from);
            let want = to.ok_or(DomainError::InvalidTransition { state: from, firing });
            assert_eq!(c.apply(firing), want, "{from} + {firing}");
            // A refused firing leaves the clock as it was.
            assert_eq!(c.state, to.unwrap_or(from));
        }
        let err = in_state(Breached).apply(Breach).unwrap_err().to_string();
        assert_eq!(err, "cannot apply breach to a clock that is breached");
    }

    #[test]
    fn stop_returns_the_level_it_ended_on() {
        for (now, level) in [
            (START, Level::Green),
            ("2026-03-02T01:07:59Z", Level::Green),
            ("2026-03-02T01:08:00Z", Level::Yellow),
            ("2026-03-02T01:09:59Z", Level::Yellow),
            ("2026-03-02T01:10:00Z", Level::Red),
        ] {
            for state in [ClockState::Armed, ClockState::Warned, ClockState::Breached] {
                let mut c = in_state(state);
                assert_eq!(c.stop(t(now)), Ok(level), "{state} at {now}");
                assert_eq!(c.state, ClockState::Stopped);
                assert_eq!(c.stop(t(now)), Err(DomainError::AlreadyStopped));
            }
        }
    }

    #[test]
    fn next_wake_in_every_state() {
        assert_eq!(in_state(ClockState::Armed).next_wake(), Some(t("2026-03-02T01:08:00Z")));
        assert_eq!(in_state(ClockState::Warned).next_wake(), Some(t("2026-03-02T01:10:00Z")));
        assert_eq!(in_state(ClockState::Breached).next_wake(), None);
        assert_eq!(in_state(ClockState::Stopped).next_wake(), None);
    }

    #[test]
    fn driving_a_clock_by_its_wake_times_fires_each_event_once() {
        let mut c = accept();
        let mut fired = Vec::new();
        while let Some(wake) = c.next_wake() {
            let firing = c.due(wake).expect("due at its wake time");
            c.apply(firing).unwrap();
            fired.push((firing, wake));
        }
        assert_eq!(fired, [(Firing::Warning, t("2026-03-02T01:08:00Z")), (Firing::Breach, t("2026-03-02T01:10:00Z"))]);
    }

    #[test]
    fn a_service_back_after_the_deadline_fires_only_the_breach() {
        let mut c = accept();
        let now = t("2026-03-02T05:00:00Z");
        assert!(c.next_wake().unwrap() < now);
        assert_eq!(c.due(now), Some(Firing::Breach));
        c.apply(Firing::Breach).unwrap();
        assert_eq!(c.due(now), None);
        assert_eq!(c.next_wake(), None);
    }

    #[test]
    fn rearm_bumps_the_version_and_starts_afresh() {
        let (p, cal) = (Policy::default(), Calendar::china_default());
        let mut old = accept();
        old.apply(Firing::Breach).unwrap();
        let again = t("2026-03-10T02:00:00Z");
        let new = old.rearm(again, &p, Urgency::Normal, &cal).unwrap();
        assert_eq!(new, Clock::arm(Milestone::Accept, 2, again, &p, Urgency::Normal, &cal));
        assert_eq!(new.state, ClockState::Armed);
        let last = Clock { version: u32::MAX, ..accept() };
        assert_eq!(last.rearm(again, &p, Urgency::Normal, &cal), Err(DomainError::VersionOverflow(u32::MAX)));
    }

    #[test]
    fn level_at_boundaries() {
        let c = accept();
        assert_eq!(c.level_at(t("2026-03-02T00:59:00Z")), Level::Green);
        assert_eq!(c.level_at(t("2026-03-02T01:08:00Z")), Level::Yellow);
        assert_eq!(c.level_at(t("2026-03-02T01:10:00Z")), Level::Red);
        assert!(Level::Green < Level::Yellow && Level::Yellow < Level::Red);
    }

    #[test]
    fn names_round_trip() {
        for (s, name) in ClockState::ALL.into_iter().zip(["armed", "warned", "breached", "escalated", "stopped"]) {
            assert_eq!(s.as_str(), name);
            assert_eq!(s.to_string(), name);
            assert_eq!(name.parse::<ClockState>(), Ok(s));
        }
        assert_eq!("red".parse::<ClockState>(), Err(DomainError::UnknownClockState("red".to_owned())));
        assert_eq!([Level::Green, Level::Yellow, Level::Red].map(Level::as_str), ["green", "yellow", "red"]);
        assert_eq!([Firing::Warning, Firing::Breach].map(|f| f.to_string()), ["warning", "breach"]);
    }
}
