//! `jiesu.v1.DispatchService`: one method per workflow action, named after the domain, plus the
//! queries. Every action takes its actor from the verified token ([`policy::actor`]); the
//! workflow decides whether that actor may do it to this case now.

use std::sync::Arc;

use jiesu_kit::{
    CaseKey, Command, Commands, Db,
    auth::{self, Identity},
    clock::SharedClock,
    time::{from_proto, millis_to_proto, to_millis, to_proto},
};
use jiesu_proto::v1::{
    self as pb, AcceptAssistRequest, AcceptRequest, AddAssistingRequest, AnswerAssistRequest, CaseCount, CaseRef, CaseView,
    CloseAsUnreasonableRequest, ContactRequest, CountCasesRequest, CountCasesResponse, DecideExtensionRequest, DispatchRequest,
    EscalateRequest, GetOrganisationRequest, LeaderView, ListCasesRequest, ListCasesResponse, OrganisationView, PeriodFigure,
    PeriodFiguresRequest, PeriodFiguresResponse, PreviewRouteRequest, PreviewRouteResponse, ReplyRequest, RequestExtensionRequest,
    ResolveRequest, ReturnRequest, ReviewReturnRequest, StageResolveRequest, SuperviseRequest, TimelineEntry, TransferRequest, UnitView,
    VerifyRequest, dispatch_service_server::DispatchService,
};
use tonic::{Request, Response, Status};

use crate::{
    Dispatch, Error, SERVICE, domain, policy,
    service::{Who, letter_view},
    store::{self, CaseRow, HistoryRow},
    workflow::{Actor, Case, Letter, Stage},
};

/// Page size of `ListCases` when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page of `ListCases`.
pub const MAX_LIMIT: u32 = 500;

pub struct DispatchApi {
    pub dispatch: Arc<Dispatch>,
    pub commands: Commands,
    pub db: Db,
    pub clock: SharedClock,
}

/// The name that goes into the record: the token's.
fn name_of(who: &Identity) -> &str {
    if who.name.trim().is_empty() { &who.subject } else { &who.name }
}

/// The actor of a unit's step (签收, 联系, 办结, a part's answer): the verified caller, whose unit
/// is its token's; only an anonymous caller, where a district still allows one, names the unit
/// and the person in the request.
fn unit_step<'a, T>(request: &'a Request<T>, unit_id: &'a str, person: &'a str, person_field: &str) -> Result<Who<'a>, Error> {
    if let Some(who) = auth::caller(request) {
        let actor = policy::actor(who)?;
        if let Actor::Unit(_) = actor {
            policy::acting_unit(who, unit_id)?;
        }
        return Ok(Who { actor, name: name_of(who) });
    }
    let unit_id = unit_id.trim();
    if unit_id.is_empty() {
        return Err(Error::Invalid("unit_id is required: the unit doing this, which must own the case".into()));
    }
    domain::validate_person(person_field, person).map_err(Error::Invalid)?;
    Ok(Who { actor: Actor::Unit(unit_id), name: person.trim() })
}

/// The actor of any other action: only a verified caller.
fn verified<T>(request: &Request<T>) -> Result<Who<'_>, Error> {
    let who = auth::caller(request)
        .ok_or_else(|| Error::Unauthenticated("this action needs a verified identity: send `authorization: Bearer <token>`".into()))?;
    Ok(Who { actor: policy::actor(who)?, name: name_of(who) })
}

fn key_of(case: Option<&CaseRef>) -> Result<CaseKey, Status> {
    CaseKey::required(case)
}

fn instant(field: &str, t: Option<&prost_types::Timestamp>) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let t = t.ok_or_else(|| Error::Invalid(format!("{field} is required")))?;
    from_proto(t).ok_or_else(|| Error::Invalid(format!("{field} is not a valid instant")))
}

fn letter_of(letter: Option<&pb::ResponseLetter>) -> Option<Letter> {
    letter.map(|l| Letter { verification: l.verification.clone(), handling: l.handling.clone(), next_steps: l.next_steps.clone() })
}

/// Runs one action as a command: its change, history and events commit together, and the
/// answer is the case as it now stands.
macro_rules! command {
    ($api:expr, $request:expr, |$work:ident| $body:expr) => {{
        let mut command = $api.commands.begin($request).await.map_err(Error::from)?;
        let case_id = {
            let $work = &mut command.work();
            $body.await?
        };
        Ok(Response::new($api.finish(command, case_id).await?))
    }};
}

impl DispatchApi {
    /// Ends a command begun on `tx`: on success its state change, history and events commit
    /// together; then the case as it now stands. On failure nothing is kept.
    async fn finish(&self, command: Command, case_id: String) -> Result<CaseView, Error> {
        command.commit().await?;
        self.view_as(None, &CaseKey::Id(case_id)).await
    }

    /// The case, if `who` may see it.
    async fn view_as(&self, who: Option<&Identity>, key: &CaseKey) -> Result<CaseView, Error> {
        let row = store::get(&self.db, key).await?.ok_or_else(|| Error::NotFound(key.describe()))?;
        if let Some(who) = who {
            let assisting = row.assisting_ids();
            let overseen = self.overseen_by(who);
            policy::may_view(who, policy::Parties { owner: &row.unit_id, assisting: &assisting, leader: &row.leader_id, overseen })?;
        }
        let history = store::history(&self.db, &row.case_id).await?;
        self.case_view(row, &history)
    }

    /// A stored case as the API shows it; `history` becomes its timeline.
    fn case_view(&self, row: CaseRow, history: &[HistoryRow]) -> Result<CaseView, Error> {
        let case: Case = self.dispatch.case_of(&row)?;
        let now = self.clock.now();
        let open = !matches!(case.stage, Stage::StagedResolved | Stage::Resolved | Stage::Closed);
        Ok(CaseView {
            assisting_unit_ids: row.assisting_ids(),
            status: domain::status_of(case.stage) as i32,
            unit_id: row.unit_id,
            unit_name: row.unit_name,
            sub_item: row.sub_item,
            urgency: jiesu_reference::Urgency::from_key(&row.urgency).to_proto() as i32,
            round: case.round,
            title: row.title,
            reply: row.reply,
            dispatched_at: Some(millis_to_proto(row.dispatched_at)),
            updated_at: Some(millis_to_proto(row.updated_at)),
            timeline: history
                .iter()
                .map(|h| TimelineEntry {
                    at: Some(millis_to_proto(h.at)),
                    service: SERVICE.into(),
                    event: h.event.clone(),
                    detail: h.detail.clone(),
                    actor: h.actor.clone(),
                })
                .collect(),
            manual_queue: case.owner.is_none() && case.stage != Stage::Closed,
            parts: self.dispatch.parts_view(&case.assisting),
            pending_return: case.pending_return.as_ref().map(|p| pb::PendingReturn {
                unit_id: p.unit.clone(),
                reason: domain::return_reason_to_proto(p.reason) as i32,
                text: p.text.clone(),
            }),
            returns: case.returns,
            pending_extension: case
                .pending_extension
                .as_ref()
                .map(|e| pb::PendingExtension { until: Some(to_proto(e.until)), reason: e.reason.clone() }),
            deadline: Some(to_proto(case.deadline)),
            original_deadline: Some(to_proto(case.original_deadline)),
            leader_id: case.leader.clone().unwrap_or_default(),
            supervised: case.supervised,
            supervision_notes: case.supervision_notes.clone(),
            unreasonable: case.unreasonable,
            next_check: case.next_check.map(to_proto),
            letter: case.reply_letter.as_ref().map(letter_view),
            colour: row.colour,
            overdue: open && case.deadline < now,
            case_id: row.case_id,
            case_no: row.case_no,
        })
    }
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn accept(&self, request: Request<AcceptRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = unit_step(&request, &req.unit_id, &req.accepted_by, "accepted_by")?;
        command!(self, &request, |work| self.dispatch.accept(work, &key, who))
    }

    async fn contact(&self, request: Request<ContactRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = unit_step(&request, &req.unit_id, &req.contacted_by, "contacted_by")?;
        command!(self, &request, |work| self.dispatch.contact(work, &key, who, &req.note))
    }

    async fn verify(&self, request: Request<VerifyRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.verify(work, &key, who, &req.note))
    }

    async fn reply(&self, request: Request<ReplyRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let letter =
            letter_of(req.letter.as_ref()).ok_or_else(|| Error::Invalid("letter is required: the written response (处理意见书)".into()))?;
        command!(self, &request, |work| self.dispatch.reply(work, &key, who, letter))
    }

    async fn resolve(&self, request: Request<ResolveRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = unit_step(&request, &req.unit_id, &req.resolved_by, "resolved_by")?;
        // The one-line answer of a unit that resolves in one step is its response's handling.
        let letter = letter_of(req.letter.as_ref()).or_else(|| {
            (!req.reply.trim().is_empty()).then(|| Letter {
                verification: String::new(),
                handling: req.reply.clone(),
                next_steps: String::new(),
            })
        });
        command!(self, &request, |work| self.dispatch.resolve(work, &key, who, letter))
    }

    async fn stage_resolve(&self, request: Request<StageResolveRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let next_check = instant("next_check", req.next_check.as_ref())?;
        command!(self, &request, |work| self.dispatch.stage_resolve(work, &key, who, next_check))
    }

    async fn r#return(&self, request: Request<ReturnRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let reason = pb::ReturnReason::try_from(req.reason)
            .ok()
            .and_then(domain::return_reason_of)
            .ok_or_else(|| Error::Invalid(format!("reason {} is not a return reason: give one of jiesu.v1.ReturnReason", req.reason)))?;
        command!(self, &request, |work| self.dispatch.return_case(work, &key, who, reason, &req.text))
    }

    async fn review_return(&self, request: Request<ReviewReturnRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let to = match (req.uphold, req.to_unit_id.trim()) {
            (true, "") => {
                return Err(Error::Invalid("to_unit_id is required when the return is upheld: where the case goes now".into()).into());
            }
            (true, to) => Some(to),
            (false, "") => None,
            (false, _) => return Err(Error::Invalid("to_unit_id is only for an upheld return (uphold = true)".into()).into()),
        };
        command!(self, &request, |work| self.dispatch.review_return(work, &key, who, to, &req.ruling))
    }

    async fn dispatch(&self, request: Request<DispatchRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.dispatch_manually(work, &key, who, &req.to_unit_id, &req.reason))
    }

    async fn transfer(&self, request: Request<TransferRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.transfer(work, &key, who, &req.to_unit_id, &req.reason))
    }

    async fn add_assisting(&self, request: Request<AddAssistingRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let deadline = match req.deadline.as_ref() {
            None => None,
            Some(t) => Some(instant("deadline", Some(t))?),
        };
        command!(self, &request, |work| self.dispatch.add_assisting(work, &key, who, &req.unit_id, deadline, &req.note))
    }

    async fn accept_assist(&self, request: Request<AcceptAssistRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = unit_step(&request, &req.unit_id, &req.accepted_by, "accepted_by")?;
        command!(self, &request, |work| self.dispatch.accept_assist(work, &key, who))
    }

    async fn answer_assist(&self, request: Request<AnswerAssistRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = unit_step(&request, &req.unit_id, &req.answered_by, "answered_by")?;
        command!(self, &request, |work| self.dispatch.answer_assist(work, &key, who, &req.answer))
    }

    async fn request_extension(&self, request: Request<RequestExtensionRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        let until = instant("until", req.until.as_ref())?;
        command!(self, &request, |work| self.dispatch.request_extension(work, &key, who, until, &req.reason))
    }

    async fn decide_extension(&self, request: Request<DecideExtensionRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.decide_extension(work, &key, who, req.approve, &req.reason))
    }

    async fn escalate(&self, request: Request<EscalateRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.escalate(work, &key, who, &req.leader_id, &req.reason))
    }

    async fn supervise(&self, request: Request<SuperviseRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.supervise(work, &key, who, &req.note))
    }

    async fn close_as_unreasonable(&self, request: Request<CloseAsUnreasonableRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = key_of(req.case.as_ref())?;
        let who = verified(&request)?;
        command!(self, &request, |work| self.dispatch.close_as_unreasonable(work, &key, who, &req.explanation))
    }

    async fn get_case(&self, request: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        Ok(Response::new(self.view_as(auth::caller(&request), &key).await?))
    }

    /// Cases ordered by case id, without their timelines (ask `GetCase` for one).
    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, Status> {
        let (unit_id, leader_id) = self.scope(&request, &request.get_ref().unit_id, &request.get_ref().leader_id)?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!("limit {n} is over the maximum of {MAX_LIMIT}; page with after_case_id")));
            }
            n => n,
        };
        let stage = match pb::CaseStatus::try_from(req.status) {
            Ok(s) => domain::stage_of(s),
            Err(_) => return Err(Status::invalid_argument(format!("status {} is not a jiesu.v1.CaseStatus", req.status))),
        };
        let colour = req.colour.trim();
        if !matches!(colour, "" | "green" | "yellow" | "red") {
            return Err(Status::invalid_argument(format!("colour {colour:?} is not one of green, yellow, red")));
        }
        let filter = store::Filter {
            unit_id,
            leader_id,
            stage,
            manual_queue: req.manual_queue,
            return_pending: req.return_pending,
            extension_pending: req.extension_pending,
            escalated: req.escalated,
            supervised: req.supervised,
            overdue: req.overdue,
            colour: colour.to_string(),
            open_only: req.open_only,
            now: to_millis(self.clock.now()),
        };
        let rows = store::list(&self.db, &filter, req.after_case_id.trim(), limit).await?;
        let cases = rows.into_iter().map(|r| self.case_view(r, &[])).collect::<Result<_, _>>()?;
        Ok(Response::new(ListCasesResponse { cases }))
    }

    async fn count_cases(&self, request: Request<CountCasesRequest>) -> Result<Response<CountCasesResponse>, Status> {
        let (unit_id, leader_id) = self.scope(&request, &request.get_ref().unit_id, "")?;
        let filter = store::Filter { unit_id, leader_id, now: to_millis(self.clock.now()), ..Default::default() };
        let (rows, flags, reopens) = store::count(&self.db, &filter).await?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let counts = rows
            .into_iter()
            .map(|r| CaseCount {
                status: store::parse_stage(&r.status).map_or(pb::CaseStatus::Unspecified, domain::status_of) as i32,
                unit_id: r.unit_id,
                count: n(r.count),
            })
            .collect();
        Ok(Response::new(CountCasesResponse {
            counts,
            manual_queue: n(flags.manual_queue),
            return_pending: n(flags.return_pending),
            extension_pending: n(flags.extension_pending),
            escalated: n(flags.escalated),
            supervised: n(flags.supervised),
            overdue: n(flags.overdue),
            yellow: n(flags.yellow),
            red: n(flags.red),
            reopens: reopens.into_iter().map(|r| pb::UnitReopens { unit_id: r.unit_id, reopens: n(r.reopens) }).collect(),
        }))
    }

    async fn period_figures(&self, request: Request<PeriodFiguresRequest>) -> Result<Response<PeriodFiguresResponse>, Status> {
        let (unit_id, leader_id) = self.scope(&request, &request.get_ref().unit_id, "")?;
        let req = request.get_ref();
        let from =
            req.from.as_ref().and_then(from_proto).ok_or_else(|| Error::Invalid("from is required: the start of the period".into()))?;
        let to = match &req.to {
            Some(t) => from_proto(t).ok_or_else(|| Error::Invalid("to is not a valid instant".into()))?,
            None => self.clock.now(),
        };
        if to <= from {
            return Err(Error::Invalid(format!("to ({to}) must be after from ({from})")).into());
        }
        let filter = store::Filter { unit_id, leader_id, now: to_millis(self.clock.now()), ..Default::default() };
        let rows = store::period(&self.db, &filter, to_millis(from), to_millis(to)).await?;
        let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
        let figures = rows
            .into_iter()
            .map(|r| PeriodFigure { unit_id: r.unit_id, category: r.category, dispatched: n(r.dispatched), resolved: n(r.resolved) })
            .collect();
        Ok(Response::new(PeriodFiguresResponse { figures }))
    }

    async fn get_organisation(&self, request: Request<GetOrganisationRequest>) -> Result<Response<OrganisationView>, Status> {
        if let Some(who) = auth::caller(&request) {
            policy::may_read_organisation(who).map_err(Error::from)?;
        }
        let org = &self.dispatch.org;
        Ok(Response::new(OrganisationView {
            version: org.version.clone(),
            units: org
                .units
                .iter()
                .map(|u| UnitView {
                    id: u.id.clone(),
                    name: u.name.clone(),
                    kind: u.kind.key().into(),
                    parent: u.parent.clone().unwrap_or_default(),
                    duty: u
                        .duty
                        .iter()
                        .map(|d| pb::DutyContact { name: d.name.clone(), phone: d.phone.clone(), hours: d.hours.clone() })
                        .collect(),
                })
                .collect(),
            leaders: org
                .leaders
                .iter()
                .map(|l| LeaderView { id: l.id.clone(), name: l.name.clone(), title: l.title.clone(), oversees: l.oversees.clone() })
                .collect(),
        }))
    }

    async fn preview_route(&self, request: Request<PreviewRouteRequest>) -> Result<Response<PreviewRouteResponse>, Status> {
        if let Some(who) = auth::caller(&request) {
            policy::may_preview_routes(who).map_err(Error::from)?;
        }
        let req = request.into_inner();
        let place = domain::Place { street: req.street.trim().to_string(), community: req.community.trim().to_string() };
        let org = &self.dispatch.org;
        for (field, id) in [("street", &place.street), ("community", &place.community)] {
            if !id.is_empty() && !org.contains(id) {
                return Err(Error::Invalid(format!("{field} {id:?} is not a unit of the district's organisation")).into());
            }
        }
        let sub_item = req.sub_item.trim();
        let at = match req.at.as_ref() {
            None => self.clock.now(),
            Some(t) => instant("at", Some(t))?,
        };
        let route = domain::route(&self.dispatch.matrix, org, sub_item, &place, at.with_timezone(&self.dispatch.timezone).date_naive());
        let rule = route.rule.map(|i| domain::describe_rule(i, &self.dispatch.matrix.rules[i])).unwrap_or_default();
        Ok(Response::new(PreviewRouteResponse {
            lead_unit_name: org.name_of(&route.lead).to_string(),
            lead_unit_id: route.lead,
            assisting_unit_ids: route.assisting,
            fallback: route.rule.is_none(),
            rule,
        }))
    }
}

impl DispatchApi {
    /// The units `who` oversees as a leader (分管单位); none for anyone else.
    fn overseen_by(&self, who: &Identity) -> &[String] {
        match self.dispatch.org.leader(&who.subject) {
            Some(l) if who.has(jiesu_kit::auth::Role::Leader) => &l.oversees,
            _ => &[],
        }
    }

    /// The unit and the leader a list or a count is narrowed to, given what the caller may see: a
    /// unit its own cases, a leader those escalated to them (or a unit's they oversee), the centre
    /// anything it asks for.
    fn scope<T>(&self, request: &Request<T>, unit_id: &str, leader_id: &str) -> Result<(String, String), Error> {
        let leader_id = leader_id.trim().to_string();
        match auth::caller(request) {
            Some(who) => {
                let unit = policy::list_scope(who, unit_id)?.unwrap_or_default();
                let leader = match policy::leader_scope(who, &unit, self.overseen_by(who)) {
                    Some(me) => me.to_string(),
                    None if policy::acts_as_leader(who) => String::new(),
                    None => leader_id,
                };
                Ok((unit, leader))
            }
            None => Ok((unit_id.trim().to_string(), leader_id)),
        }
    }
}
