//! Pure rules of the SLA timer (时限计时): working-day calendars, time limits, the SLA policy,
//! the state machine of one milestone clock, and which case events start and stop which clocks.
//!
//! Nothing here does I/O or reads the wall clock: every function is handed the instant it needs,
//! so the rules are tested without waiting and replaying an event gives the same answer.

mod clock;
mod lifecycle;
mod policy;

pub use clock::{Clock, ClockState, Firing, Level, warning_point};
pub use jiesu_reference::time::{Calendar, CalendarFile, CalendarYear, Limit, ResolveLimits, TimeError};
pub use lifecycle::{CaseEvent, Change, StopReason, Tracked, plan};
pub use policy::{Facts, LimitRule, Milestone, MilestoneSpec, Policy, Selector, Trigger, Urgency, YellowPoint};

/// Each unit's business hours (办公时间), on which limits in working hours are counted: the
/// district's named sets and which set each unit keeps; a unit without one keeps the default.
#[derive(Debug, Clone, Default)]
pub struct UnitHours {
    pub book: jiesu_reference::time::HoursBook,
    /// Unit id → the name of its set in `book`.
    pub by_unit: std::collections::BTreeMap<String, String>,
}

impl UnitHours {
    /// The hours of `unit_id` (the default set for a unit without its own, or none yet).
    pub fn of(&self, unit_id: &str) -> &jiesu_reference::time::BusinessHours {
        self.named(unit_id).1
    }

    /// [`UnitHours::of`] with the name of the set.
    pub fn named(&self, unit_id: &str) -> (&str, &jiesu_reference::time::BusinessHours) {
        self.by_unit
            .get(unit_id)
            .and_then(|name| self.book.get(name).map(|h| (name.as_str(), h)))
            .unwrap_or_else(|| self.book.default_hours())
    }
}

/// Everything the domain rules can reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A time limit (时限) or a working-day calendar (工作日历) that cannot be used.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// An SLA policy (时限标准) with one or more problems, all listed.
    #[error("invalid SLA policy: {}", .0.join("; "))]
    InvalidPolicy(Vec<String>),
    /// A milestone name that is not one of [`Milestone::ALL`].
    #[error("unknown milestone {0:?}")]
    UnknownMilestone(String),
    /// A clock state name that is not one of [`ClockState::ALL`].
    #[error("unknown clock state {0:?}")]
    UnknownClockState(String),
    /// A firing that the clock's state does not allow (each transition happens at most once).
    #[error("cannot apply {firing} to a clock that is {state}")]
    InvalidTransition {
        /// The clock's state when the firing was applied.
        state: ClockState,
        /// The firing that was refused.
        firing: Firing,
    },
    /// `stop` on a clock that is already stopped.
    #[error("clock is already stopped")]
    AlreadyStopped,
    /// A clock re-armed more times than its version number can count.
    #[error("clock version {0} cannot be incremented")]
    VersionOverflow(u32),
}
