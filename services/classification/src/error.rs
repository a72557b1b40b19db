//! Classification's one error type, and what it means to a gRPC client and to the consumer.

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
    /// `[classification]` settings that cannot be used.
    #[error("{0}")]
    Settings(String),
    /// A classifier model file that cannot be used.
    #[error("the classifier model cannot be used: {0}")]
    Model(String),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        jiesu_kit::internal_status(SERVICE, &e)
    }
}

jiesu_kit::service_error!(Error);
