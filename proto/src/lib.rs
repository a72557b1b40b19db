//! The Jiesu contract (`jiesu.v1`): the case model, every event payload and every gRPC service,
//! generated from `proto/jiesu/v1/*.proto` at build time (protox, no system `protoc`).

#![allow(clippy::all)]

/// Messages and services of `jiesu.v1`.
pub mod v1 {
    tonic::include_proto!("jiesu.v1");
}

/// The encoded `FileDescriptorSet` of `jiesu.v1`, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/jiesu_descriptor.bin"));

pub use prost_types::Timestamp;

/// A message of the contract that knows its own type name: an event (`case.received`), or one of
/// intake's answers to a producer (`submission.accepted`).
pub trait Named {
    /// The type name: the last tokens of the subject and the `Jiesu-Event-Type` header.
    const TYPE: &'static str;
}

/// An event of the contract (`jiesu.event.<TYPE>`): a [`Named`] protobuf message carrying its
/// [`EventMeta`](v1::EventMeta). Services publish and consume events through this trait and never
/// spell a type name themselves.
pub trait Event: Named + prost::Message + Default + Clone + Send + Sync + 'static {
    fn meta(&self) -> Option<&v1::EventMeta>;
    fn set_meta(&mut self, meta: v1::EventMeta);
}

macro_rules! contract {
    (events { $($event:ident => $name:literal,)+ } answers { $($answer:ident => $aname:literal,)+ }) => {
        $(
            impl Named for v1::$event {
                const TYPE: &'static str = $name;
            }
            impl Event for v1::$event {
                fn meta(&self) -> Option<&v1::EventMeta> {
                    self.meta.as_ref()
                }
                fn set_meta(&mut self, meta: v1::EventMeta) {
                    self.meta = Some(meta);
                }
            }
        )+
        $(
            impl Named for v1::$answer {
                const TYPE: &'static str = $aname;
            }
        )+
        /// Every event type of the contract.
        pub const EVENT_TYPES: &[&str] = &[$($name),+];
    };
}

contract! {
    events {
        CaseReceived => "case.received",
        CaseClassified => "case.classified",
        CaseQueued => "case.queued",
        CaseDispatched => "case.dispatched",
        CaseAccepted => "case.accepted",
        CaseContacted => "case.contacted",
        CaseVerified => "case.verified",
        CaseReplied => "case.replied",
        CaseStaged => "case.staged",
        CaseResolved => "case.resolved",
        CaseReturned => "case.returned",
        CaseReturnReviewed => "case.return_reviewed",
        CaseAssistAdded => "case.assist_added",
        CaseAssistAccepted => "case.assist_accepted",
        CaseAssistAnswered => "case.assist_answered",
        CaseExtensionRequested => "case.extension_requested",
        CaseExtensionDecided => "case.extension_decided",
        CaseEscalated => "case.escalated",
        CaseSupervised => "case.supervised",
        CaseReopened => "case.reopened",
        CaseClosed => "case.closed",
        CaseReviewRequested => "case.review_requested",
        CaseReviewed => "case.reviewed",
        CaseRepeatDetected => "case.repeat_detected",
        CaseMerged => "case.merged",
        SlaWarning => "sla.warning",
        SlaBreached => "sla.breached",
        SlaEscalationDue => "sla.escalation_due",
        RevisitRecorded => "revisit.recorded",
        InsightHotspot => "insight.hotspot",
    }
    answers {
        SubmissionAccepted => "submission.accepted",
        SubmissionRejected => "submission.rejected",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_type_is_aggregate_dot_name_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for t in super::EVENT_TYPES {
            let (aggregate, name) = t.split_once('.').expect("aggregate.name");
            assert!(!aggregate.is_empty() && !name.is_empty() && !name.contains('.'), "{t}");
            assert!(seen.insert(*t), "{t} twice");
        }
    }
}
