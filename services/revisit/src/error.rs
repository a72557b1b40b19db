//! Revisit's one error type, and what it means to a gRPC client and to the consumer.

use tonic::Status;

use crate::SERVICE;

/// What can go wrong in revisit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    /// Every problem of a request, each naming its field.
    #[error("the revisit cannot be recorded: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Nothing to record: the case was never resolved, or its latest revisit is recorded.
    #[error("case {0} has no revisit waiting: it has not been resolved, or its revisit is already recorded")]
    NothingPending(String),
    #[error("revisit {0} was recorded by someone else meanwhile; ask again to see it")]
    Conflict(String),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NothingPending(_) => Status::failed_precondition(e.to_string()),
            Error::Conflict(_) => Status::aborted(e.to_string()),
            Error::Kit(e) => jiesu_kit::internal_status(SERVICE, &e),
        }
    }
}

jiesu_kit::service_error!(Error);
