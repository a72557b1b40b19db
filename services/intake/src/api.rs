//! `jiesu.v1.IntakeService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Commands, Db, time::millis_to_proto};
use jiesu_proto::v1::{
    CaseRef, Contact, Location, SubmissionView, SubmitRequest, SubmitResponse, TimelineEntry, intake_service_server::IntakeService,
};
use tonic::{Request, Response, Status};

use crate::{Error, Intake, domain::mask_phone, store};

pub struct IntakeApi {
    pub intake: Arc<Intake>,
    pub commands: Commands,
    pub db: Db,
}

impl IntakeApi {
    async fn submit_once(&self, request: &Request<SubmitRequest>) -> Result<SubmitResponse, Error> {
        let submission = request.get_ref().submission.clone().unwrap_or_default();
        let mut command = self.commands.begin(request).await?;
        let now = command.now();
        let registered = self.intake.register(&mut command.work(), &submission, now).await?;
        command.commit().await?;
        Ok(registered.to_proto())
    }
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitResponse>, Status> {
        match self.submit_once(&request).await {
            Ok(r) => Ok(Response::new(r)),
            // The loser of two concurrent first submissions asks again: the winner's case.
            Err(e) if e.is_duplicate_key() => Ok(Response::new(self.submit_once(&request).await?)),
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
        Ok(Response::new(Contact { case_id: row.case_id, name: row.citizen_name, phone: row.citizen_phone, anonymous: row.anonymous }))
    }
}

fn not_found(key: &CaseKey) -> Status {
    Status::not_found(format!("no case with {}", key.describe()))
}
