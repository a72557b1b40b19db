//! Notification's one error type, and what it means to a gRPC client and to the consumer.

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

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => Status::not_found(e.to_string()),
            other => jiesu_kit::internal_status(SERVICE, &other),
        }
    }
}

jiesu_kit::service_error!(Error);
