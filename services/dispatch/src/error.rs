//! Dispatch's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_kit::{HandlerError, ServiceError};
use tonic::Status;

use crate::{SERVICE, workflow::Refusal};

/// What can go wrong in dispatch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    /// The workflow refused (wrong unit, wrong stage, a window passed, bad text): the rule says which.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no case with {0}")]
    NotFound(String),
    /// The action needs a verified identity and the call carried none.
    #[error("{0}")]
    Unauthenticated(String),
    /// A request or event field is not acceptable; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The caller's role or unit does not allow it (the rule says which).
    #[error(transparent)]
    Forbidden(#[from] crate::policy::Refusal),
    #[error("case {0} changed while this request was handled; try again")]
    Conflict(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => Status::not_found(e.to_string()),
            Error::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::Refused(r) => {
                let mut status = if r.is_bad_input() {
                    Status::invalid_argument(r.to_string())
                } else if r.is_forbidden() {
                    Status::permission_denied(r.to_string())
                } else {
                    Status::failed_precondition(r.to_string())
                };
                if let Ok(rule) = r.rule.parse() {
                    status.metadata_mut().insert("jiesu-refusal", rule);
                }
                status
            }
            Error::Conflict(_) => Status::aborted(e.to_string()),
            Error::Forbidden(_) => Status::permission_denied(e.to_string()),
            Error::Kit(_) | Error::Corrupt(_) => jiesu_kit::internal_status(SERVICE, &e),
        }
    }
}

impl ServiceError for Error {
    fn into_kit(self) -> Result<jiesu_kit::Error, Self> {
        match self {
            Error::Kit(e) => Ok(e),
            other => Err(other),
        }
    }

    fn into_handler_error(self) -> HandlerError {
        match self {
            Error::Kit(e) => e.into(),
            // The event contradicts the case (a wrong round, a closed case reopened twice…) or is
            // malformed: it will never apply. Dead-lettered, visible, replayable.
            e @ (Error::Refused(_) | Error::Invalid(_) | Error::Corrupt(_) | Error::Forbidden(_) | Error::Unauthenticated(_)) => {
                HandlerError::reject(e)
            }
            // An unknown case may be one whose case.classified is still being redelivered.
            e @ (Error::NotFound(_) | Error::Conflict(_)) => HandlerError::retry(e),
        }
    }
}
