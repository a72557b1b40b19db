//! The SLA timer's one error type, and what it means to a gRPC client and to the consumer.

use tonic::Status;

use crate::{SERVICE, domain::DomainError};

/// What can go wrong in the SLA timer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    /// The policy or the calendar of the configuration is not usable.
    #[error("[sla_timer]: {0}")]
    Domain(#[from] DomainError),
    /// The calendar file named by `[reference] calendar` is not a valid calendar.
    #[error("the working-day calendar ([reference] calendar) is invalid: {0}")]
    Calendar(String),
    /// A stored clock the domain cannot read (edited by hand, or written by a newer version).
    #[error("stored clock {clock_id} is unreadable: {reason}")]
    CorruptClock { clock_id: String, reason: String },
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        jiesu_kit::internal_status(SERVICE, &e)
    }
}

jiesu_kit::service_error!(Error);
