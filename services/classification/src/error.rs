//! Classification's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_kit::HandlerError;
use tonic::Status;

use crate::{SERVICE, domain};

/// What can go wrong in classification.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("the taxonomy is not valid: {0}")]
    Taxonomy(#[from] domain::DomainError),
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
            other => HandlerError::reject(other),
        }
    }
}
