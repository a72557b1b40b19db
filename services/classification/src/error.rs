//! Classification's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_kit::auth::Refusal;
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
    /// A request field is not acceptable; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The action needs a verified identity and the call carried none.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow it; the rule says which.
    #[error(transparent)]
    Forbidden(#[from] Refusal),
    /// The case is not in a state the action applies to (no longer waiting for review).
    #[error("{0}")]
    NotWaiting(String),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
            Error::Forbidden(_) => Status::permission_denied(e.to_string()),
            Error::NotWaiting(_) => Status::failed_precondition(e.to_string()),
            Error::Kit(_) | Error::Taxonomy(_) | Error::Settings(_) | Error::Model(_) => jiesu_kit::internal_status(SERVICE, &e),
        }
    }
}

jiesu_kit::service_error!(Error);
