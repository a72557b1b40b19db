//! `jiesu.v1.IntakeService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Db, outbox, time::{millis_to_proto, to_millis}};
use jiesu_proto::v1::{
    CaseRef, Contact, Location, SubmissionView, SubmitRequest, SubmitResponse, TimelineEntry,
    intake_service_server::IntakeService,
};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{Error, Intake, domain::mask_phone, store};

pub struct IntakeApi {
    pub intake: Arc<Intake>,
    pub db: Db,
    pub relay_wake: Arc<Notify>,
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
            other => {
                tracing::error!(error = %other, "intake request failed");
                Status::internal(format!("intake could not complete the request: {other}"))
            }
        }
    }
}

impl IntakeApi {
    async fn submit_once(&self, req: &SubmitRequest) -> Result<SubmitResponse, Error> {
        let submission = req.submission.clone().unwrap_or_default();
        let mut tx = self.db.begin().await?;
        let (registered, events) = match self.intake.register(&mut tx, &submission).await {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        outbox::write(&mut tx, &events, to_millis(self.intake.clock.now())).await?;
        tx.commit().await?;
        if !events.is_empty() {
            self.relay_wake.notify_one();
        }
        Ok(registered.to_proto())
    }
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitResponse>, Status> {
        let req = request.into_inner();
        match self.submit_once(&req).await {
            Ok(r) => Ok(Response::new(r)),
            // Two concurrent first submissions of one (channel, channel_ref) on PostgreSQL: the
            // loser's insert fails on the unique key; asking again returns the winner's case.
            Err(Error::Kit(jiesu_kit::Error::Database(e))) | Err(Error::Database(e)) if jiesu_kit::db::is_unique_violation(&e) => {
                Ok(Response::new(self.submit_once(&req).await?))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_submission(&self, request: Request<CaseRef>) -> Result<Response<SubmissionView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        let channel_name = self
            .intake
            .settings
            .channels
            .iter()
            .find(|c| c.id == row.channel)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| row.channel.clone());
        Ok(Response::new(SubmissionView {
            case_id: row.case_id,
            case_no: row.case_no.clone(),
            channel: row.channel,
            channel_ref: row.channel_ref,
            title: row.title,
            description: row.description,
            location: Some(Location {
                street: row.street,
                community: row.community,
                grid: row.grid,
                address: row.address,
                latitude: row.latitude,
                longitude: row.longitude,
            }),
            masked_phone: mask_phone(&row.citizen_phone),
            received_at: Some(millis_to_proto(row.received_at)),
            timeline: vec![TimelineEntry {
                at: Some(millis_to_proto(row.received_at)),
                service: "intake".into(),
                event: "received".into(),
                detail: format!("经{channel_name}受理，编号{}", row.case_no),
            }],
        }))
    }

    async fn get_contact(&self, request: Request<CaseRef>) -> Result<Response<Contact>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        Ok(Response::new(Contact {
            case_id: row.case_id,
            name: row.citizen_name,
            phone: row.citizen_phone,
            anonymous: row.anonymous,
        }))
    }
}

fn not_found(key: &CaseKey) -> Status {
    let (what, value) = key.column_and_value();
    Status::not_found(format!("no case with {what} {value:?}"))
}
