//! Events revisit reacts to: a resolved case waits for its revisit.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Incoming, Outgoing, Tx};
use jiesu_proto::v1::CaseResolved;

use crate::{Error, Revisit};

/// The event types of revisit's durable consumer.
pub const EVENT_TYPES: &[&str] = &["case.resolved"];

/// Revisit's handler of the events stream.
pub struct Events {
    pub revisit: Arc<Revisit>,
}

impl Handler for Events {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        match msg.kind.as_str() {
            "case.resolved" => {
                let ev = msg.decode::<CaseResolved>()?;
                self.revisit.on_resolved(tx, &ev).await.map_err(|e| match e {
                    // A malformed event never becomes well-formed: dead-letter it, visibly.
                    Error::BadEvent(_) => HandlerError::Reject(format!("case.resolved: {e}")),
                    other => HandlerError::Retry(format!("case.resolved: {other}")),
                })?;
                Ok(vec![])
            }
            other => Err(HandlerError::Reject(format!("revisit does not consume {other} events"))),
        }
    }
}
