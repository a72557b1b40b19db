//! Notification's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_kit::HandlerError;
use tonic::Status;

use crate::SERVICE;

/// What can go wrong in notification.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("invalid [notification] settings: {0}")]
    Settings(String),
    #[error("a stored delivery is corrupt: {0}")]
    Corrupt(String),
    /// An event that can never be turned into a notice.
    #[error("{0}")]
    BadEvent(String),
    #[error("notification has no deliveries for the case with {0}")]
    NotFound(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Kit(e.into())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => Status::not_found(e.to_string()),
            other => jiesu_kit::internal_status(SERVICE, &other),
        }
    }
}

impl From<Error> for HandlerError {
    fn from(e: Error) -> Self {
        match e {
            Error::Kit(e) => e.into(),
            other => HandlerError::reject(other),
        }
    }
}
