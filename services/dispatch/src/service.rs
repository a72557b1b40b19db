//! Dispatch's use cases (派单与办理): the routing and the handling loop's steps, shared by the
//! gRPC API and the consumer. Each runs inside the caller's [`Work`] and emits its events there.

use jiesu_kit::{CaseIds, CaseKey, Tx, Work};
use jiesu_proto::{
    Event,
    v1::{
        CaseAccepted, CaseClassified, CaseClosed, CaseContacted, CaseDispatched, CaseReopened, CaseResolved, RevisitRecorded, Satisfaction,
    },
};
use jiesu_reference::Urgency;

use crate::{
    Error,
    domain::{self, Change, Matrix, Organisation, Place},
    store,
};

/// The routing and the handling loop's steps, shared by the gRPC API and the consumer. Each
/// step runs inside the caller's transaction and returns the events to put in the outbox.
pub struct Dispatch {
    pub matrix: Matrix,
    pub org: Organisation,
}

/// Who did something, for the history: a person's name, or the service itself.
const SYSTEM: &str = "system";

impl Dispatch {
    /// 派单: creates the case of a `case.classified` and routes it. A case dispatch already
    /// holds (a re-classification, a re-sent event) is left as it is.
    pub async fn dispatch_classified(&self, work: &mut Work<'_>, ev: &CaseClassified) -> Result<(), Error> {
        let meta = ev.meta.as_ref().expect("the kit checked the meta");
        let (case_id, case_no) = (meta.case_id.trim(), meta.case_no.trim());
        if store::find(work.tx, &CaseKey::Id(case_id.to_string())).await?.is_some() {
            tracing::info!(case_id, "case already dispatched; classification event ignored");
            return Ok(());
        }
        let location = ev.location.clone().unwrap_or_default();
        let place = Place { street: location.street, community: location.community };
        // A classification without a sub-item still routes by its category.
        let code = if ev.sub_item.trim().is_empty() { ev.category.trim() } else { ev.sub_item.trim() };
        let route = domain::route(&self.matrix, &self.org, code, &place);
        let unit_name = self.org.name_of(&route.lead).to_string();
        let street = self.org.street_of(&place.street, &place.community).unwrap_or_default().to_string();
        let category = if ev.category.trim().is_empty() { domain::category_of(code) } else { ev.category.trim() };
        let at = work.now_millis();
        let created = store::insert_case(
            work.tx,
            &store::NewCase {
                case_id,
                case_no,
                unit_id: &route.lead,
                unit_name: &unit_name,
                assisting: &route.assisting,
                sub_item: code,
                category,
                urgency: Urgency::from_proto(ev.urgency()).key(),
                title: &ev.title,
                street: &street,
                community: place.community.trim(),
                at,
            },
        )
        .await?;
        if !created {
            return Ok(());
        }
        let assisting_names: Vec<&str> = route.assisting.iter().map(|a| self.org.name_of(a)).collect();
        let detail = domain::dispatched_detail(&unit_name, &assisting_names);
        store::add_history(work.tx, case_id, at, "dispatched", &detail, SYSTEM).await?;
        let event = CaseDispatched {
            meta: None,
            unit_id: route.lead.clone(),
            unit_name,
            assisting_unit_ids: route.assisting.clone(),
            sub_item: code.to_string(),
            urgency: ev.urgency,
            round: 1,
            title: ev.title.clone(),
        };
        tracing::info!(case_id, unit_id = %route.lead, rule = ?route.rule, "case dispatched");
        work.emit(CaseIds { case_id, case_no }, event);
        Ok(())
    }

    /// 签收 by `unit_id`; no event when the unit had already signed.
    pub async fn accept(&self, work: &mut Work<'_>, key: &CaseKey, unit_id: &str, accepted_by: &str) -> Result<String, Error> {
        let row = find_case(work.tx, key).await?;
        let Change::Applied(next) = row.state()?.accept(unit_id)? else {
            return Ok(row.case_id);
        };
        let at = work.now_millis();
        store::mark_accepted(work.tx, &row, accepted_by, at).await?;
        store::add_history(work.tx, &row.case_id, at, "accepted", &domain::accepted_detail(&row.unit_name, accepted_by), accepted_by)
            .await?;
        let event = CaseAccepted { meta: None, unit_id: row.unit_id.clone(), accepted_by: accepted_by.to_string(), round: next.round };
        tracing::info!(case_id = %row.case_id, unit_id, round = next.round, "case accepted");
        work.emit(row.ids(), event);
        Ok(row.case_id)
    }

    /// 联系: `unit_id` reached the citizen; recorded and announced each time it is reported.
    pub async fn contact(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        unit_id: &str,
        contacted_by: &str,
        note: &str,
    ) -> Result<String, Error> {
        let row = find_case(work.tx, key).await?;
        let state = row.state()?;
        let note = state.contact(unit_id, note)?;
        let at = work.now_millis();
        store::add_history(work.tx, &row.case_id, at, "contacted", &domain::contacted_detail(contacted_by, &note), contacted_by).await?;
        let event =
            CaseContacted { meta: None, unit_id: row.unit_id.clone(), contacted_by: contacted_by.to_string(), round: state.round, note };
        tracing::info!(case_id = %row.case_id, unit_id, round = state.round, "citizen contacted");
        work.emit(row.ids(), event);
        Ok(row.case_id)
    }

    /// 办结 by `unit_id` with its reply to the citizen.
    pub async fn resolve(
        &self,
        work: &mut Work<'_>,
        key: &CaseKey,
        unit_id: &str,
        resolved_by: &str,
        reply: &str,
    ) -> Result<String, Error> {
        let row = find_case(work.tx, key).await?;
        let (next, reply) = row.state()?.resolve(unit_id, reply)?;
        let at = work.now_millis();
        store::mark_resolved(work.tx, &row, resolved_by, &reply, at).await?;
        store::add_history(work.tx, &row.case_id, at, "resolved", &domain::resolved_detail(&reply), resolved_by).await?;
        let event = CaseResolved {
            meta: None,
            unit_id: row.unit_id.clone(),
            resolved_by: resolved_by.to_string(),
            reply,
            round: next.round,
            urgency: Urgency::from_key(&row.urgency).to_proto() as i32,
        };
        tracing::info!(case_id = %row.case_id, unit_id, round = next.round, "case resolved");
        work.emit(row.ids(), event);
        Ok(row.case_id)
    }

    /// 重新办理 after a dissatisfied or unsolved revisit. Emits nothing: the services that care
    /// (sla-timer, notification) consume `case.reopened` themselves.
    pub async fn reopen(&self, work: &mut Work<'_>, ev: &CaseReopened) -> Result<(), Error> {
        let row = find_case(work.tx, &CaseKey::Id(event_case_id(ev))).await?;
        let state = row.state()?;
        let round = if ev.round == 0 { state.round + 1 } else { ev.round };
        let Change::Applied(next) = state.reopen(round)? else {
            tracing::info!(case_id = %row.case_id, round, "reopening already applied");
            return Ok(());
        };
        let at = work.now_millis();
        store::mark_reopened(work.tx, &row, next.round, at).await?;
        store::add_history(work.tx, &row.case_id, at, "reopened", &domain::reopened_detail(&ev.reason, next.round), SYSTEM).await?;
        tracing::info!(case_id = %row.case_id, unit_id = %row.unit_id, round = next.round, "case reopened");
        Ok(())
    }

    /// 结案 when the revisit found the citizen (basically) satisfied and the problem solved;
    /// any other verdict is left to the `case.reopened` that accompanies it.
    pub async fn on_revisit(&self, work: &mut Work<'_>, ev: &RevisitRecorded) -> Result<(), Error> {
        if !domain::verdict_closes(ev.satisfaction(), ev.solved) {
            return Ok(());
        }
        let row = find_case(work.tx, &CaseKey::Id(event_case_id(ev))).await?;
        let state = row.state()?;
        let round = if ev.round == 0 { state.round } else { ev.round };
        let Change::Applied(next) = state.close(round)? else {
            tracing::info!(case_id = %row.case_id, round, "revisit verdict changes nothing (repeated or stale)");
            return Ok(());
        };
        let at = work.now_millis();
        store::mark_closed(work.tx, &row, at).await?;
        let actor = if ev.recorded_by.trim().is_empty() { SYSTEM } else { ev.recorded_by.trim() };
        store::add_history(work.tx, &row.case_id, at, "closed", &domain::closed_detail(ev.satisfaction()), actor).await?;
        let event = CaseClosed { meta: None, round: next.round };
        tracing::info!(case_id = %row.case_id, round = next.round, satisfied = ev.satisfaction() == Satisfaction::Satisfied, "case closed");
        work.emit(row.ids(), event);
        Ok(())
    }
}

async fn find_case(tx: &mut Tx, key: &CaseKey) -> Result<store::CaseRow, Error> {
    store::find(tx, key).await?.ok_or_else(|| Error::NotFound(key.describe()))
}

/// The case an event is about (its meta was checked by the kit).
fn event_case_id(ev: &impl Event) -> String {
    ev.meta().map(|m| m.case_id.trim().to_string()).unwrap_or_default()
}
