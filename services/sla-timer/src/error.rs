//! The SLA timer's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_kit::HandlerError;
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

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Kit(e.into())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        jiesu_kit::internal_status(SERVICE, &e)
    }
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Kit(e) => e.into(),
            // Retrying cannot make a stored clock readable: dead-letter it, visibly.
            other => HandlerError::reject(other),
        }
    }
}
