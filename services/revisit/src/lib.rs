//! # jiesu-revisit — 回访
//!
//! Every resolved case is called back. `case.resolved` opens a revisit task for the case's
//! round (待回访); the revisit clerk records the citizen's answer with gRPC `Record` (回访登记),
//! which emits `revisit.recorded` and — when the citizen is dissatisfied or the problem is not
//! solved — `case.reopened`, sending the case back to the same unit for another round
//! (重新交办). Satisfied and solved, dispatch closes the case on `revisit.recorded`.

pub mod api;
pub mod consume;
pub mod domain;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jiesu_kit::{
    CaseKey, DistrictConfig, Outgoing, Subjects, Tx,
    clock::SharedClock,
    db::Migrations,
    host::{Host, Running},
    time::{to_millis, to_proto},
};
use jiesu_proto::v1::{CaseReopened, CaseResolved, EventMeta, RevisitRecorded};
use serde::Deserialize;

use crate::domain::Verdict;

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "revisit";

/// `[revisit]` of the district file: nothing of its own yet beyond the common keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// What can go wrong in revisit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Every problem of a request, each naming its field.
    #[error("the revisit cannot be recorded: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Nothing to record: the case was never resolved, or its latest revisit is recorded.
    #[error("case {0} has no revisit waiting: it has not been resolved, or its revisit is already recorded")]
    NothingPending(String),
    /// A malformed event.
    #[error("{0}")]
    BadEvent(String),
    #[error("revisit {0} was recorded by someone else meanwhile; ask again to see it")]
    Conflict(String),
}

/// The revisit steps, shared by the gRPC API and the consumer; each runs inside the caller's
/// transaction and returns the events to put in the outbox.
pub struct Revisit {
    pub subjects: Subjects,
    pub clock: SharedClock,
    pub district: String,
}

impl Revisit {
    fn meta(&self, case_id: &str, case_no: &str, now: DateTime<Utc>, causation_id: &str) -> EventMeta {
        EventMeta {
            event_id: uuid::Uuid::now_v7().to_string(),
            case_id: case_id.to_string(),
            case_no: case_no.to_string(),
            occurred_at: Some(to_proto(now)),
            causation_id: causation_id.to_string(),
            district: self.district.clone(),
        }
    }

    /// 待回访: opens the revisit of a resolved case's round; a round that has one keeps it.
    pub async fn on_resolved(&self, tx: &mut Tx, ev: &CaseResolved) -> Result<(), Error> {
        let meta = ev.meta.as_ref().ok_or_else(|| Error::BadEvent("case.resolved has no meta".into()))?;
        let (case_id, case_no) = (meta.case_id.trim(), meta.case_no.trim());
        if case_id.is_empty() || case_no.is_empty() {
            return Err(Error::BadEvent("case.resolved must carry meta.case_id and meta.case_no".into()));
        }
        // proto3 cannot tell round 0 from absent: an event without one is the first round.
        let round = ev.round.max(1);
        let revisit_id = uuid::Uuid::now_v7().to_string();
        let new = store::NewRevisit { revisit_id: &revisit_id, case_id, case_no, round, unit_id: &ev.unit_id, at: to_millis(self.clock.now()) };
        if store::insert_pending(tx, &new).await? {
            tracing::info!(case_id, round, %revisit_id, "revisit pending");
        } else {
            tracing::info!(case_id, round, "revisit of this round already exists");
        }
        Ok(())
    }

    /// 回访登记: records the answer on the case's pending revisit of its latest round. Returns
    /// the revisit as recorded and `revisit.recorded`, followed by `case.reopened` when the
    /// answer reopens the case.
    pub async fn record(&self, tx: &mut Tx, key: &CaseKey, verdict: &Verdict) -> Result<(store::RevisitRow, Vec<Outgoing>), Error> {
        let (_, value) = key.column_and_value();
        let row = match store::latest(tx, key).await? {
            Some(row) if row.is_pending() => row,
            _ => return Err(Error::NothingPending(value.to_string())),
        };
        let reopened = verdict.reopens();
        let now = self.clock.now();
        let at = to_millis(now);
        store::record(tx, &row.revisit_id, verdict, reopened, at).await?;
        let round = row.round();
        let recorded_meta = self.meta(&row.case_id, &row.case_no, now, "");
        let recorded = RevisitRecorded {
            meta: Some(recorded_meta.clone()),
            revisit_id: row.revisit_id.clone(),
            satisfaction: verdict.satisfaction as i32,
            solved: verdict.solved,
            comment: verdict.comment.clone(),
            recorded_by: verdict.recorded_by.clone(),
            round,
        };
        let mut events = vec![Outgoing::event(&self.subjects, "revisit.recorded", recorded_meta.event_id.clone(), &row.case_id, &recorded)];
        if reopened {
            let meta = self.meta(&row.case_id, &row.case_no, now, &recorded_meta.event_id);
            let event = CaseReopened {
                meta: Some(meta.clone()),
                reason: domain::reopen_reason(verdict.satisfaction, verdict.solved),
                revisit_id: row.revisit_id.clone(),
                round: round + 1,
            };
            events.push(Outgoing::event(&self.subjects, "case.reopened", meta.event_id, &row.case_id, &event));
        }
        tracing::info!(
            case_id = %row.case_id,
            round,
            satisfaction = domain::satisfaction_str(verdict.satisfaction),
            solved = verdict.solved,
            reopened,
            "revisit recorded"
        );
        let row = store::RevisitRow {
            status: domain::RevisitStatus::Recorded.as_str().to_string(),
            satisfaction: domain::satisfaction_str(verdict.satisfaction).to_string(),
            solved: verdict.solved,
            comment: verdict.comment.clone(),
            recorded_by: verdict.recorded_by.clone(),
            reopened,
            recorded_at: Some(at),
            ..row
        };
        Ok((row, events))
    }
}

fn migrations() -> Migrations {
    Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }
}

/// Starts revisit: its consumer of `case.resolved` and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let mut host = Host::start(&config, &migrations(), clock.clone()).await?;
    let revisit = Arc::new(Revisit { subjects: host.broker.subjects.clone(), clock, district: config.district.code.clone() });
    host.consume_events(SERVICE, consume::EVENT_TYPES, Arc::new(consume::Events { revisit: revisit.clone() }));
    let api = api::RevisitApi { revisit, db: host.db.clone(), relay_wake: host.relay_wake.clone() };
    let routes = tonic::service::Routes::new(jiesu_proto::v1::revisit_service_server::RevisitServiceServer::new(api));
    Ok(host.serve(routes, vec!["jiesu.v1.RevisitService"])?)
}

/// Runs revisit until stopped (the binary's entry point).
pub async fn run(district: DistrictConfig) -> Result<(), Error> {
    let running = start(&district, Arc::new(jiesu_kit::SystemClock)).await?;
    Ok(running.until_stopped().await?)
}
