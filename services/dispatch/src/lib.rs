//! # jiesu-dispatch — 派单与办理
//!
//! The owner of the handling loop. A classified case (`case.classified`) is routed through the
//! district's responsibility matrix (职责清单) to a lead unit and its assisting units and
//! announced with `case.dispatched`. The unit signs for it (签收, gRPC `Accept` →
//! `case.accepted`) and resolves it with its reply to the citizen (办结, `Resolve` →
//! `case.resolved`). The revisit's verdict either closes the case (`revisit.recorded`,
//! satisfied and solved → `case.closed`, 结案) or reopens it (`case.reopened`): the same unit
//! keeps it for the next round (首问首办).

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
use jiesu_proto::v1::{
    CaseAccepted, CaseClassified, CaseClosed, CaseContacted, CaseDispatched, CaseReopened, CaseResolved, EventMeta, RevisitRecorded, Satisfaction,
};
use serde::Deserialize;

use crate::domain::{Change, Matrix, Organisation, Place, Rule, TransitionError};

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "dispatch";

/// `[dispatch]` of the district file.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where a case goes when no rule of the matrix fits (the centre triages it by hand).
    #[serde(default = "centre")]
    pub fallback_unit: String,
    /// The responsibility matrix (职责清单): `[[dispatch.matrix]]` rules.
    #[serde(default)]
    pub matrix: Vec<Rule>,
}

fn centre() -> String {
    "centre".to_string()
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// What can go wrong in dispatch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The state machine refused (wrong unit, wrong state, bad reply).
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("no case with {0}")]
    NotFound(String),
    /// A request or event field is not acceptable; the text says which and why.
    #[error("{0}")]
    Invalid(String),
    #[error("case {0} changed while this request was handled; try again")]
    Conflict(String),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

/// The routing and the handling loop's steps, shared by the gRPC API and the consumer. Each
/// step runs inside the caller's transaction and returns the events to put in the outbox.
pub struct Dispatch {
    pub matrix: Matrix,
    pub org: Organisation,
    pub subjects: Subjects,
    pub clock: SharedClock,
    pub district: String,
}

/// Who did something, for the history: a person's name, or the service itself.
const SYSTEM: &str = "system";

impl Dispatch {
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

    fn event(&self, event_type: &str, meta: &EventMeta, message: &impl prost::Message) -> Outgoing {
        Outgoing::event(&self.subjects, event_type, meta.event_id.clone(), meta.case_id.clone(), message)
    }

    /// 派单: creates the case of a `case.classified` and routes it. A case dispatch already
    /// holds (a re-classification, a re-sent event) is left as it is.
    pub async fn dispatch_classified(&self, tx: &mut Tx, ev: &CaseClassified) -> Result<Vec<Outgoing>, Error> {
        let meta = ev.meta.as_ref().ok_or_else(|| Error::Invalid("case.classified has no meta".into()))?;
        if meta.case_id.trim().is_empty() || meta.case_no.trim().is_empty() {
            return Err(Error::Invalid("case.classified must carry meta.case_id and meta.case_no".into()));
        }
        let (case_id, case_no) = (meta.case_id.trim(), meta.case_no.trim());
        if store::find(tx, &CaseKey::Id(case_id.to_string())).await?.is_some() {
            tracing::info!(case_id, "case already dispatched; classification event ignored");
            return Ok(vec![]);
        }
        let location = ev.location.clone().unwrap_or_default();
        let place = Place { street: location.street, community: location.community };
        // A classification without a sub-item still routes by its category.
        let code = if ev.sub_item.trim().is_empty() { ev.category.trim() } else { ev.sub_item.trim() };
        let route = domain::route(&self.matrix, &self.org, code, &place);
        let unit_name = self.org.name_of(&route.lead).to_string();
        let street = self.org.street_of(&place).unwrap_or_default().to_string();
        let category = if ev.category.trim().is_empty() { domain::category_of(code) } else { ev.category.trim() };
        let now = self.clock.now();
        let at = to_millis(now);
        let created = store::insert_case(
            tx,
            &store::NewCase {
                case_id,
                case_no,
                unit_id: &route.lead,
                unit_name: &unit_name,
                assisting: &route.assisting,
                sub_item: code,
                category,
                urgency: ev.urgency().key(),
                title: &ev.title,
                street: &street,
                community: place.community.trim(),
                at,
            },
        )
        .await?;
        if !created {
            return Ok(vec![]);
        }
        let assisting_names: Vec<&str> = route.assisting.iter().map(|a| self.org.name_of(a)).collect();
        let detail = domain::dispatched_detail(&unit_name, &assisting_names);
        store::add_history(tx, case_id, at, "dispatched", &detail, SYSTEM).await?;
        let out_meta = self.meta(case_id, case_no, now, &meta.event_id);
        let event = CaseDispatched {
            meta: Some(out_meta.clone()),
            unit_id: route.lead.clone(),
            unit_name,
            assisting_unit_ids: route.assisting.clone(),
            sub_item: code.to_string(),
            urgency: ev.urgency,
            round: 1,
            title: ev.title.clone(),
        };
        tracing::info!(case_id, unit_id = %route.lead, rule = ?route.rule, "case dispatched");
        Ok(vec![self.event("case.dispatched", &out_meta, &event)])
    }

    /// 签收 by `unit_id`; no event when the unit had already signed.
    pub async fn accept(&self, tx: &mut Tx, key: &CaseKey, unit_id: &str, accepted_by: &str) -> Result<(String, Vec<Outgoing>), Error> {
        let row = find_case(tx, key).await?;
        let Change::Applied(next) = row.state()?.accept(unit_id)? else {
            return Ok((row.case_id, vec![]));
        };
        let now = self.clock.now();
        let at = to_millis(now);
        store::mark_accepted(tx, &row, accepted_by, at).await?;
        store::add_history(tx, &row.case_id, at, "accepted", &domain::accepted_detail(&row.unit_name, accepted_by), accepted_by).await?;
        let meta = self.meta(&row.case_id, &row.case_no, now, "");
        let event = CaseAccepted { meta: Some(meta.clone()), unit_id: row.unit_id.clone(), accepted_by: accepted_by.to_string(), round: next.round };
        tracing::info!(case_id = %row.case_id, unit_id, round = next.round, "case accepted");
        Ok((row.case_id, vec![self.event("case.accepted", &meta, &event)]))
    }

    /// 联系: `unit_id` reached the citizen; recorded and announced each time it is reported.
    pub async fn contact(&self, tx: &mut Tx, key: &CaseKey, unit_id: &str, contacted_by: &str, note: &str) -> Result<(String, Vec<Outgoing>), Error> {
        let row = find_case(tx, key).await?;
        let state = row.state()?;
        let note = state.contact(unit_id, note)?;
        let now = self.clock.now();
        let at = to_millis(now);
        store::add_history(tx, &row.case_id, at, "contacted", &domain::contacted_detail(contacted_by, &note), contacted_by).await?;
        let meta = self.meta(&row.case_id, &row.case_no, now, "");
        let event = CaseContacted {
            meta: Some(meta.clone()),
            unit_id: row.unit_id.clone(),
            contacted_by: contacted_by.to_string(),
            round: state.round,
            note,
        };
        tracing::info!(case_id = %row.case_id, unit_id, round = state.round, "citizen contacted");
        Ok((row.case_id, vec![self.event("case.contacted", &meta, &event)]))
    }

    /// 办结 by `unit_id` with its reply to the citizen.
    pub async fn resolve(&self, tx: &mut Tx, key: &CaseKey, unit_id: &str, resolved_by: &str, reply: &str) -> Result<(String, Vec<Outgoing>), Error> {
        let row = find_case(tx, key).await?;
        let (next, reply) = row.state()?.resolve(unit_id, reply)?;
        let now = self.clock.now();
        let at = to_millis(now);
        store::mark_resolved(tx, &row, resolved_by, &reply, at).await?;
        store::add_history(tx, &row.case_id, at, "resolved", &domain::resolved_detail(&reply), resolved_by).await?;
        let meta = self.meta(&row.case_id, &row.case_no, now, "");
        let event = CaseResolved {
            meta: Some(meta.clone()),
            unit_id: row.unit_id.clone(),
            resolved_by: resolved_by.to_string(),
            reply,
            round: next.round,
            urgency: jiesu_proto::v1::Urgency::from_key(&row.urgency) as i32,
        };
        tracing::info!(case_id = %row.case_id, unit_id, round = next.round, "case resolved");
        Ok((row.case_id, vec![self.event("case.resolved", &meta, &event)]))
    }

    /// 重新办理 after a dissatisfied or unsolved revisit. Emits nothing: the services that care
    /// (sla-timer, notification) consume `case.reopened` themselves.
    pub async fn reopen(&self, tx: &mut Tx, ev: &CaseReopened) -> Result<(), Error> {
        let case_id = event_case_id(ev.meta.as_ref(), "case.reopened")?;
        let row = find_case(tx, &CaseKey::Id(case_id)).await?;
        let state = row.state()?;
        let round = if ev.round == 0 { state.round + 1 } else { ev.round };
        let Change::Applied(next) = state.reopen(round)? else {
            tracing::info!(case_id = %row.case_id, round, "reopening already applied");
            return Ok(());
        };
        let at = to_millis(self.clock.now());
        store::mark_reopened(tx, &row, next.round, at).await?;
        store::add_history(tx, &row.case_id, at, "reopened", &domain::reopened_detail(&ev.reason, next.round), SYSTEM).await?;
        tracing::info!(case_id = %row.case_id, unit_id = %row.unit_id, round = next.round, "case reopened");
        Ok(())
    }

    /// 结案 when the revisit found the citizen (basically) satisfied and the problem solved;
    /// any other verdict is left to the `case.reopened` that accompanies it.
    pub async fn on_revisit(&self, tx: &mut Tx, ev: &RevisitRecorded) -> Result<Vec<Outgoing>, Error> {
        let case_id = event_case_id(ev.meta.as_ref(), "revisit.recorded")?;
        if !domain::verdict_closes(ev.satisfaction(), ev.solved) {
            return Ok(vec![]);
        }
        let row = find_case(tx, &CaseKey::Id(case_id)).await?;
        let state = row.state()?;
        let round = if ev.round == 0 { state.round } else { ev.round };
        let Change::Applied(next) = state.close(round)? else {
            tracing::info!(case_id = %row.case_id, round, "revisit verdict changes nothing (repeated or stale)");
            return Ok(vec![]);
        };
        let now = self.clock.now();
        let at = to_millis(now);
        store::mark_closed(tx, &row, at).await?;
        let actor = if ev.recorded_by.trim().is_empty() { SYSTEM } else { ev.recorded_by.trim() };
        store::add_history(tx, &row.case_id, at, "closed", &domain::closed_detail(ev.satisfaction()), actor).await?;
        let causation = ev.meta.as_ref().map(|m| m.event_id.as_str()).unwrap_or_default();
        let meta = self.meta(&row.case_id, &row.case_no, now, causation);
        let event = CaseClosed { meta: Some(meta.clone()), round: next.round };
        tracing::info!(case_id = %row.case_id, round = next.round, satisfied = ev.satisfaction() == Satisfaction::Satisfied, "case closed");
        Ok(vec![self.event("case.closed", &meta, &event)])
    }
}

async fn find_case(tx: &mut Tx, key: &CaseKey) -> Result<store::CaseRow, Error> {
    store::find(tx, key).await?.ok_or_else(|| Error::NotFound(describe(key)))
}

/// "case_id \"…\"" or "case_no \"…\"", for messages.
pub fn describe(key: &CaseKey) -> String {
    let (column, value) = key.column_and_value();
    format!("{column} {value:?}")
}

fn event_case_id(meta: Option<&EventMeta>, kind: &str) -> Result<String, Error> {
    match meta.map(|m| m.case_id.trim()) {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(Error::Invalid(format!("{kind} must carry meta.case_id"))),
    }
}

fn migrations() -> Migrations {
    Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }
}

/// Reads and checks the organisation and the matrix: every problem at once.
fn load_routing(config: &Config) -> Result<(Matrix, Organisation), Error> {
    let org: Organisation = config.reference("organisation")?.ok_or_else(|| {
        jiesu_kit::Error::Config("[reference] names no organisation file: dispatch routes cases to its units".into())
    })?;
    let matrix = Matrix { rules: config.settings.matrix.clone(), fallback_unit: config.settings.fallback_unit.trim().to_string() };
    let problems = matrix.problems(&org);
    if !problems.is_empty() {
        return Err(jiesu_kit::Error::Config(problems.join("; ")).into());
    }
    Ok((matrix, org))
}

/// Starts dispatch: its consumer of classification and revisit events and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let (matrix, org) = load_routing(&config)?;
    let mut host = Host::start(&config, &migrations(), clock.clone()).await?;
    let dispatch = Arc::new(Dispatch {
        matrix,
        org,
        subjects: host.broker.subjects.clone(),
        clock,
        district: config.district.code.clone(),
    });
    host.consume_events(SERVICE, consume::EVENT_TYPES, Arc::new(consume::Events { dispatch: dispatch.clone() }));
    let api = api::DispatchApi { dispatch, db: host.db.clone(), relay_wake: host.relay_wake.clone() };
    let routes = tonic::service::Routes::new(jiesu_proto::v1::dispatch_service_server::DispatchServiceServer::new(api));
    Ok(host.serve(routes, vec!["jiesu.v1.DispatchService"])?)
}

/// Runs dispatch until stopped (the binary's entry point).
pub async fn run(district: DistrictConfig) -> Result<(), Error> {
    let running = start(&district, Arc::new(jiesu_kit::SystemClock)).await?;
    Ok(running.until_stopped().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> DistrictConfig {
        DistrictConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml")).unwrap()
    }

    #[test]
    fn the_demo_district_routes() {
        let config: Config = demo().service(SERVICE).unwrap();
        let (matrix, org) = load_routing(&config).unwrap();
        assert_eq!(matrix.fallback_unit, "centre");
        let at = |street: &str| Place { street: street.into(), community: String::new() };
        let r = domain::route(&matrix, &org, "01.03", &at("st-xinan"));
        assert_eq!((r.lead.as_str(), r.assisting.clone()), ("st-xinan", vec!["dept-urban-management".to_string(), "cm-haibin".to_string()]));
        assert_eq!(domain::route(&matrix, &org, "01.03", &at("st-dongmen")).lead, "st-dongmen");
        assert_eq!(domain::route(&matrix, &org, "03.01", &at("st-dongmen")).lead, "dept-water");
        assert_eq!(domain::route(&matrix, &org, "07.01", &at("st-dongmen")).lead, "centre");
    }

    #[test]
    fn a_bad_matrix_stops_the_start_with_every_problem() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml");
        let mut text = std::fs::read_to_string(path).unwrap();
        // An array-of-tables entry may come anywhere in the file: this one joins the matrix.
        text.push_str("\n[[dispatch.matrix]]\nsub_item = \"05\"\nstreet = \"st-nowhere\"\nlead = \"dept-ghost\"\n");
        let mut d = DistrictConfig::parse(&text, std::path::Path::new(path).parent().unwrap()).unwrap();
        d.set("dispatch.fallback_unit", "nobody");
        let config: Config = d.service(SERVICE).unwrap();
        let err = load_routing(&config).unwrap_err().to_string();
        assert!(err.contains("fallback_unit \"nobody\""), "{err}");
        assert!(err.contains("street must be"), "{err}");
        assert!(err.contains("lead \"dept-ghost\""), "{err}");
    }
}
