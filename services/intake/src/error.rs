//! Intake's one error type, and what it means to a gRPC client and to the consumer.

use jiesu_proto::v1::FieldViolation;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

use crate::SERVICE;

/// What can go wrong in intake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The shared mechanics, the database included.
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("the submission is not acceptable")]
    Invalid(Vec<FieldViolation>),
    /// The caller may not do this (the reason says who may).
    #[error("{0}")]
    Refused(String),
    /// Over a limit for now (the reason says when to retry).
    #[error("{0}")]
    Busy(String),
}

impl Error {
    /// Two concurrent first submissions of one (channel, channel_ref) on PostgreSQL: the
    /// loser's insert fails on the unique key.
    pub fn is_duplicate_key(&self) -> bool {
        matches!(self, Error::Kit(jiesu_kit::Error::Database(e)) if jiesu_kit::db::is_unique_violation(e))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(violations) => {
                let summary = violations.iter().map(|v| format!("{}: {}", v.field, v.reason)).collect::<Vec<_>>().join("; ");
                let zh = violations.iter().map(|v| v.reason_zh.as_str()).collect::<Vec<_>>().join("；");
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.reason.clone());
                }
                details.set_localized_message("zh-CN", zh);
                Status::with_error_details(tonic::Code::InvalidArgument, format!("submission rejected: {summary}"), details)
            }
            Error::Refused(why) => Status::permission_denied(why),
            Error::Busy(why) => Status::resource_exhausted(why),
            Error::Kit(e) => jiesu_kit::internal_status(SERVICE, &e),
        }
    }
}

jiesu_kit::service_error!(Error);
