//! Pure rules of the SLA timer (时限计时): working-day calendars, time limits, the SLA policy,
//! the state machine of one milestone clock, and which case events start and stop which clocks.
//!
//! Nothing here does I/O or reads the wall clock: every function is handed the instant it needs,
//! so the rules are tested without waiting and replaying an event gives the same answer.

mod calendar;
mod clock;
mod lifecycle;
mod limit;
mod policy;

pub use calendar::{Calendar, CalendarFile, CalendarYear};
pub use clock::{Clock, ClockState, Firing, Level};
pub use lifecycle::{CaseEvent, Change, StopReason, Tracked, plan};
pub use limit::Limit;
pub use policy::{Milestone, Policy, ResolveLimits, Urgency};

/// Everything the domain rules can reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A time limit (时限) string that is not one of `0`, `<n>m`, `<n>h`, `<n>d`, `<n>wd`.
    #[error("invalid time limit {input:?}: {reason}")]
    InvalidLimit {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A working-day calendar (工作日历) with one or more problems, all listed.
    #[error("invalid working-day calendar: {}", .0.join("; "))]
    InvalidCalendar(Vec<String>),
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
