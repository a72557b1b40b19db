//! `jiesu.v1.RevisitService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Commands, Db, auth, time::millis_to_proto};
use jiesu_proto::v1::{
    CaseRef, ListDueRequest, ListRevisitsResponse, RecordRequest, RevisitView, TimelineEntry, revisit_service_server::RevisitService,
};
use tonic::{Request, Response, Status};

use crate::{
    Error, Revisit, SERVICE, domain, policy,
    store::{self, RevisitRow},
};

pub struct RevisitApi {
    pub revisit: Arc<Revisit>,
    pub commands: Commands,
    pub db: Db,
}

fn view(row: RevisitRow) -> RevisitView {
    RevisitView {
        round: row.round(),
        status: row.status,
        satisfaction: domain::parse_satisfaction(&row.satisfaction) as i32,
        solved: row.solved,
        comment: row.comment,
        created_at: Some(millis_to_proto(row.created_at)),
        recorded_at: row.recorded_at.map(millis_to_proto),
        reopened: row.reopened,
        revisit_id: row.revisit_id,
        case_id: row.case_id,
        case_no: row.case_no,
    }
}

/// What revisit saw happen to a case: each round waiting, then answered.
fn timeline(rows: &[RevisitRow]) -> Vec<TimelineEntry> {
    let entry = |at: i64, event: &str, detail: String| TimelineEntry {
        at: Some(millis_to_proto(at)),
        service: SERVICE.into(),
        event: event.into(),
        detail,
        actor: String::new(),
    };
    let mut out = Vec::new();
    for r in rows {
        out.push(entry(r.created_at, "revisit_pending", domain::pending_detail(r.round())));
        if let Some(at) = r.recorded_at {
            let satisfaction = domain::parse_satisfaction(&r.satisfaction);
            out.push(entry(at, "revisit_recorded", domain::recorded_detail(satisfaction, r.solved, r.reopened)));
        }
    }
    out
}

#[tonic::async_trait]
impl RevisitService for RevisitApi {
    async fn record(&self, request: Request<RecordRequest>) -> Result<Response<RevisitView>, Status> {
        if let Some(who) = auth::caller(&request) {
            policy::may_record(who)?;
        }
        let req = request.get_ref();
        let key = CaseKey::required(req.case.as_ref())?;
        // Who called the citizen back: as the request says, else the verified caller's name.
        let recorded_by = match (req.recorded_by.trim(), auth::caller(&request)) {
            ("", Some(who)) => who.name.as_str(),
            (given, _) => given,
        };
        let verdict = domain::validate(req.satisfaction, req.solved, &req.comment, recorded_by).map_err(Error::Invalid)?;
        let mut command = self.commands.begin(&request).await.map_err(Error::from)?;
        let row = self.revisit.record(&mut command.work(), &key, &verdict).await?;
        command.commit().await.map_err(Error::from)?;
        Ok(Response::new(view(row)))
    }

    async fn list_due(&self, request: Request<ListDueRequest>) -> Result<Response<ListRevisitsResponse>, Status> {
        if let Some(who) = auth::caller(&request) {
            policy::may_list_due(who)?;
        }
        let limit = match request.get_ref().limit {
            0 => 100,
            n => n.min(1000),
        };
        let rows = store::due(&self.db, limit).await?;
        Ok(Response::new(ListRevisitsResponse { revisits: rows.into_iter().map(view).collect(), timeline: Vec::new() }))
    }

    /// A case revisit has never seen (not resolved yet) has no revisits: an empty answer.
    async fn list_revisits(&self, request: Request<CaseRef>) -> Result<Response<ListRevisitsResponse>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let rows = store::of_case(&self.db, &key).await?;
        if rows.is_empty() {
            return Err(key.not_found(crate::SERVICE));
        }
        if let (Some(who), Some(latest)) = (auth::caller(&request), rows.last()) {
            policy::may_view(who, &latest.unit_id)?;
        }
        let timeline = timeline(&rows);
        Ok(Response::new(ListRevisitsResponse { revisits: rows.into_iter().map(view).collect(), timeline }))
    }
}
