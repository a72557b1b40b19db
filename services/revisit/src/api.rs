//! `jiesu.v1.RevisitService`.

use std::sync::Arc;

use jiesu_kit::{
    CaseKey, Db, outbox,
    time::{millis_to_proto, to_millis},
};
use jiesu_proto::v1::{
    CaseRef, ListRevisitsResponse, RecordRequest, RevisitView, TimelineEntry, revisit_service_server::RevisitService,
};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::{
    Error, Revisit, SERVICE, domain,
    store::{self, RevisitRow},
};

pub struct RevisitApi {
    pub revisit: Arc<Revisit>,
    pub db: Db,
    pub relay_wake: Arc<Notify>,
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid(_) => Status::invalid_argument(e.to_string()),
            Error::NothingPending(_) => Status::failed_precondition(e.to_string()),
            Error::Conflict(_) => Status::aborted(e.to_string()),
            other => {
                tracing::error!(error = %other, "revisit request failed");
                Status::internal(format!("revisit could not complete the request: {other}"))
            }
        }
    }
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

impl RevisitApi {
    async fn record_once(&self, key: &CaseKey, verdict: &domain::Verdict) -> Result<RevisitView, Error> {
        let mut tx = self.db.begin().await?;
        let (row, events) = match self.revisit.record(&mut tx, key, verdict).await {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        outbox::write(&mut tx, &events, to_millis(self.revisit.clock.now())).await?;
        tx.commit().await?;
        self.relay_wake.notify_one();
        Ok(view(row))
    }
}

#[tonic::async_trait]
impl RevisitService for RevisitApi {
    async fn record(&self, request: Request<RecordRequest>) -> Result<Response<RevisitView>, Status> {
        let req = request.into_inner();
        let key = CaseKey::required(req.case.as_ref())?;
        let verdict = domain::validate(req.satisfaction, req.solved, &req.comment, &req.recorded_by).map_err(Error::Invalid)?;
        Ok(Response::new(self.record_once(&key, &verdict).await?))
    }

    /// A case revisit has never seen (not resolved yet) has no revisits: an empty answer.
    async fn list_revisits(&self, request: Request<CaseRef>) -> Result<Response<ListRevisitsResponse>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let rows = store::of_case(&self.db, &key).await?;
        let timeline = timeline(&rows);
        Ok(Response::new(ListRevisitsResponse { revisits: rows.into_iter().map(view).collect(), timeline }))
    }
}
