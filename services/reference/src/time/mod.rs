//! Time as the district counts it (时限与工作日): the working-day calendar with China's official
//! holidays and make-up working days (法定节假日, 调休), and the time limits (时限) configured as
//! `"10m"`, `"72h"`, `"3wd"`. Shared by dispatch (the return window, the deadline in force) and
//! the SLA timer (every clock), so both count a working day the same way; and business hours
//! (办公时间) for limits in working hours (`"8wh"`).

mod calendar;
mod hours;
mod limit;

pub use calendar::{Calendar, CalendarFile, CalendarYear};
pub use hours::{BusinessHours, HoursBook, HoursEntry, OpenDays};
pub use limit::Limit;

use serde::{Deserialize, Serialize};

use crate::Urgency;

/// Resolve limits (办结时限) by [`Urgency`]: `[sla_timer.policy.resolve]` of the district file.
/// The SLA timer arms the resolve clock with them and dispatch keeps the deadline in force that
/// an extension (延期) moves: both read the same section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResolveLimits {
    /// 紧急 cases.
    pub emergency: Limit,
    /// 一般 cases.
    pub normal: Limit,
    /// 复杂 cases.
    pub complex: Limit,
}

impl Default for ResolveLimits {
    fn default() -> Self {
        ResolveLimits { emergency: Limit::Hours(2), normal: Limit::Hours(24), complex: Limit::WorkingDays(3) }
    }
}

impl ResolveLimits {
    /// Where the district file keeps them.
    pub const SECTION: &'static str = "sla_timer.policy.resolve";

    /// The limit of a case of `urgency`.
    pub fn of(&self, urgency: Urgency) -> Limit {
        match urgency {
            Urgency::Emergency => self.emergency,
            Urgency::Normal => self.normal,
            Urgency::Complex => self.complex,
        }
    }
}

/// A time limit or a calendar that cannot be used, with every problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
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
}
