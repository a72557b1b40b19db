//! The revisit steps (回访), shared by the gRPC API and the consumer; each runs inside the
//! caller's [`Work`] and emits its events there.

use jiesu_kit::{CaseIds, CaseKey, Work};
use jiesu_proto::v1::{CaseReopened, CaseResolved, RevisitRecorded};

use crate::{
    Error,
    domain::{self, Verdict},
    store,
};

/// The revisit steps.
pub struct Revisit;

impl Revisit {
    /// 待回访: opens the revisit of a resolved case's round; a round that has one keeps it.
    pub async fn on_resolved(&self, work: &mut Work<'_>, ev: &CaseResolved) -> Result<(), Error> {
        let meta = ev.meta.as_ref().expect("the kit checked the meta");
        let (case_id, case_no) = (meta.case_id.trim(), meta.case_no.trim());
        // proto3 cannot tell round 0 from absent: an event without one is the first round.
        let round = ev.round.max(1);
        let revisit_id = uuid::Uuid::now_v7().to_string();
        let new = store::NewRevisit { revisit_id: &revisit_id, case_id, case_no, round, unit_id: &ev.unit_id, at: work.now_millis() };
        if store::insert_pending(work.tx, &new).await? {
            tracing::info!(case_id, round, %revisit_id, "revisit pending");
        } else {
            tracing::info!(case_id, round, "revisit of this round already exists");
        }
        Ok(())
    }

    /// 回访登记: records the answer on the case's pending revisit of its latest round. Returns
    /// the revisit as recorded and `revisit.recorded`, followed by `case.reopened` when the
    /// answer reopens the case.
    pub async fn record(&self, work: &mut Work<'_>, key: &CaseKey, verdict: &Verdict) -> Result<store::RevisitRow, Error> {
        let (_, value) = key.column_and_value();
        let row = match store::latest(work.tx, key).await? {
            Some(row) if row.is_pending() => row,
            _ => return Err(Error::NothingPending(value.to_string())),
        };
        let reopened = verdict.reopens();
        let at = work.now_millis();
        store::record(work.tx, &row.revisit_id, verdict, reopened, at).await?;
        let round = row.round();
        let case = CaseIds { case_id: &row.case_id, case_no: &row.case_no };
        let recorded = RevisitRecorded {
            meta: None,
            revisit_id: row.revisit_id.clone(),
            satisfaction: verdict.satisfaction as i32,
            solved: verdict.solved,
            comment: verdict.comment.clone(),
            recorded_by: verdict.recorded_by.clone(),
            round,
        };
        let recorded_id = work.emit(case, recorded);
        if reopened {
            let event = CaseReopened {
                meta: None,
                reason: domain::reopen_reason(verdict.satisfaction, verdict.solved),
                revisit_id: row.revisit_id.clone(),
                round: round + 1,
            };
            work.emit_answering(case, event, &recorded_id);
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
        Ok(row)
    }
}
