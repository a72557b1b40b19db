//! Events dispatch reacts to: a classified case is dispatched; the revisit's verdict reopens or
//! closes it.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Incoming, Outgoing, Tx};
use jiesu_proto::v1::{CaseClassified, CaseReopened, RevisitRecorded};

use crate::{Dispatch, Error};

/// The event types of dispatch's durable consumer.
pub const EVENT_TYPES: &[&str] = &["case.classified", "case.reopened", "revisit.recorded"];

/// Dispatch's handler of the events stream.
pub struct Events {
    pub dispatch: Arc<Dispatch>,
}

impl Handler for Events {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        let result = match msg.kind.as_str() {
            "case.classified" => self.dispatch.dispatch_classified(tx, &msg.decode::<CaseClassified>()?).await,
            "case.reopened" => self.dispatch.reopen(tx, &msg.decode::<CaseReopened>()?).await.map(|()| vec![]),
            "revisit.recorded" => self.dispatch.on_revisit(tx, &msg.decode::<RevisitRecorded>()?).await,
            other => return Err(HandlerError::Reject(format!("dispatch does not consume {other} events"))),
        };
        result.map_err(|e| classify(e, &msg.kind))
    }
}

/// Which failures are worth retrying.
fn classify(e: Error, kind: &str) -> HandlerError {
    match e {
        // The event contradicts the case (a wrong round, a closed case reopened twice…) or is
        // malformed: it will never apply. Dead-lettered, visible, replayable.
        Error::Transition(_) | Error::Invalid(_) | Error::Corrupt(_) => HandlerError::Reject(format!("{kind}: {e}")),
        // An unknown case may be one whose case.classified is still being redelivered.
        Error::NotFound(_) | Error::Conflict(_) | Error::Kit(_) | Error::Database(_) => HandlerError::Retry(format!("{kind}: {e}")),
    }
}
