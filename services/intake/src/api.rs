//! `jiesu.v1.IntakeService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Commands, Db, auth, time::millis_to_proto};
use jiesu_proto::v1::{
    CaseRef, Contact, ContactRead, ListContactReadsRequest, ListContactReadsResponse, Location, SubmissionView, SubmitRequest,
    SubmitResponse, TimelineEntry, intake_service_server::IntakeService,
};
use tonic::{Request, Response, Status};

use crate::{Error, Intake, domain::mask_phone, policy, store};

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
        if let Some(who) = auth::caller(&request) {
            let owner = store::owner(&self.db, &row.case_id).await?;
            policy::may_read_submission(who, owner.as_deref())?;
        }
        let masked_phone = mask_phone(&self.intake.contact(&row)?.1);
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
            masked_phone,
            received_at: Some(millis_to_proto(row.received_at)),
            timeline: vec![TimelineEntry {
                at: Some(millis_to_proto(row.received_at)),
                service: "intake".into(),
                event: "received".into(),
                detail: format!("经{channel_name}受理，编号{}", row.case_no),
                actor: String::new(),
            }],
        }))
    }

    /// The citizen's contact, for those who must reach them (see [`policy::may_read_contact`]).
    /// Every request is recorded, allowed or refused; the caller says why in the metadata
    /// `jiesu-purpose`.
    async fn get_contact(&self, request: Request<CaseRef>) -> Result<Response<Contact>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?;
        let who = auth::caller(&request);
        let verdict = match who {
            Some(who) => {
                let owner = store::owner(&self.db, &row.case_id).await?;
                policy::may_read_contact(who, owner.as_deref())
            }
            // Only where `[auth] required = false` lets an anonymous caller in at all.
            None => Ok(()),
        };
        // Said in Chinese as often as not: the header's bytes as UTF-8, not only visible ASCII.
        let purpose: String = request
            .metadata()
            .get(PURPOSE)
            .map(|v| String::from_utf8_lossy(v.as_encoded_bytes()).into_owned())
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let read = store::ContactReadRow {
            read_id: uuid::Uuid::now_v7().to_string(),
            at: jiesu_kit::time::to_millis(self.commands.now()),
            case_id: row.case_id.clone(),
            reader: who.map_or_else(|| "anonymous".to_string(), |w| w.subject.clone()),
            reader_name: who.map(|w| w.name.clone()).unwrap_or_default(),
            roles: who.map(|w| w.roles.iter().map(|r| r.key()).collect::<Vec<_>>().join(",")).unwrap_or_default(),
            unit_id: who.and_then(|w| w.unit.clone()).unwrap_or_default(),
            purpose: purpose.replace(|c: char| c.is_control(), " "),
            allowed: verdict.is_ok(),
            refusal: verdict.as_ref().err().map(|r| r.0.clone()).unwrap_or_default(),
        };
        store::record_read(&self.db, &read).await?;
        if let Err(refusal) = verdict {
            tracing::warn!(case_id = %row.case_id, reader = %read.reader, "contact read refused");
            return Err(Status::permission_denied(refusal.0));
        }
        let (name, phone) = self.intake.contact(&row)?;
        Ok(Response::new(Contact { case_id: row.case_id, name, phone, anonymous: row.anonymous }))
    }

    async fn list_contact_reads(&self, request: Request<ListContactReadsRequest>) -> Result<Response<ListContactReadsResponse>, Status> {
        match auth::caller(&request) {
            Some(who) => policy::may_audit(who).map_err(|r| Status::permission_denied(r.0))?,
            None => return Err(Status::unauthenticated("the record of contact reads is for verified auditors: send a token")),
        }
        let req = request.get_ref();
        let limit = match req.limit {
            0 => 100,
            n if n > 1000 => return Err(Status::invalid_argument(format!("limit {n} is over the maximum of 1000"))),
            n => n,
        };
        let case_id = match req.case.as_ref().filter(|c| c.r#ref.is_some()) {
            None => None,
            Some(r) => {
                let key = CaseKey::required(Some(r))?;
                Some(store::get(&self.db, &key).await?.ok_or_else(|| not_found(&key))?.case_id)
            }
        };
        let rows = store::contact_reads(&self.db, case_id.as_deref(), limit).await?;
        let reads = rows
            .into_iter()
            .map(|r| ContactRead {
                at: Some(millis_to_proto(r.at)),
                case_id: r.case_id,
                reader: r.reader,
                reader_name: r.reader_name,
                roles: r.roles.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
                unit_id: r.unit_id,
                purpose: r.purpose,
                allowed: r.allowed,
                refusal: r.refusal,
            })
            .collect();
        Ok(Response::new(ListContactReadsResponse { reads }))
    }
}

/// The metadata a caller of `GetContact` says why in (调阅事由), recorded with the read.
pub const PURPOSE: &str = "jiesu-purpose";

fn not_found(key: &CaseKey) -> Status {
    Status::not_found(format!("no case with {}", key.describe()))
}
