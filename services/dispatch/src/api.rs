//! `jiesu.v1.DispatchService`.

use std::sync::Arc;

use jiesu_kit::{
    CaseKey, Command, Commands, Db,
    auth::{self, Identity},
    time::millis_to_proto,
};
use jiesu_proto::v1::{
    self as pb, AcceptRequest, CaseRef, CaseView, ContactRequest, ListCasesRequest, ListCasesResponse, PreviewRouteRequest,
    PreviewRouteResponse, ResolveRequest, TimelineEntry, dispatch_service_server::DispatchService,
};
use tonic::{Request, Response, Status};

use crate::{
    Dispatch, Error, SERVICE,
    domain::{self, CaseStatus},
    policy,
    store::{self, CaseRow, HistoryRow},
};

/// Page size of `ListCases` when the request names none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page of `ListCases`.
pub const MAX_LIMIT: u32 = 500;

pub struct DispatchApi {
    pub dispatch: Arc<Dispatch>,
    pub commands: Commands,
    pub db: Db,
}

/// The unit a command acts for: a verified caller's own unit (see [`policy::acting_unit`]);
/// only an anonymous caller, where a district still allows one, names it in the request.
fn acting_unit<'a, T>(request: &'a Request<T>, requested: &'a str) -> Result<&'a str, Error> {
    if let Some(who) = auth::caller(request) {
        return Ok(policy::acting_unit(who, requested)?);
    }
    let unit_id = requested.trim();
    if unit_id.is_empty() {
        Err(Error::Invalid("unit_id is required: the unit doing this, which must own the case".into()))
    } else {
        Ok(unit_id)
    }
}

impl DispatchApi {
    /// Ends a command begun on `tx`: on success its state change, history and events commit
    /// together; then the case as it now stands. On failure nothing is kept.
    async fn finish(&self, command: Command, case_id: String) -> Result<CaseView, Error> {
        command.commit().await?;
        self.view(&CaseKey::Id(case_id)).await
    }

    async fn view(&self, key: &CaseKey) -> Result<CaseView, Error> {
        self.view_as(None, key).await
    }

    /// The case, if `who` may see it.
    async fn view_as(&self, who: Option<&Identity>, key: &CaseKey) -> Result<CaseView, Error> {
        let row = store::get(&self.db, key).await?.ok_or_else(|| Error::NotFound(key.describe()))?;
        if let Some(who) = who {
            let assisting = row.assisting_ids();
            policy::may_view(who, policy::Parties { owner: &row.unit_id, assisting: &assisting })?;
        }
        let history = store::history(&self.db, &row.case_id).await?;
        Ok(case_view(row, &history))
    }
}

/// A stored case as the API shows it; `history` becomes its timeline.
fn case_view(row: CaseRow, history: &[HistoryRow]) -> CaseView {
    let status = CaseStatus::parse(&row.status).map_or(pb::CaseStatus::Unspecified, CaseStatus::to_proto);
    CaseView {
        assisting_unit_ids: row.assisting_ids(),
        case_id: row.case_id,
        case_no: row.case_no,
        status: status as i32,
        unit_id: row.unit_id,
        unit_name: row.unit_name,
        sub_item: row.sub_item,
        urgency: jiesu_reference::Urgency::from_key(&row.urgency).to_proto() as i32,
        round: u32::try_from(row.round).unwrap_or_default(),
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
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl DispatchService for DispatchApi {
    async fn accept(&self, request: Request<AcceptRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = CaseKey::required(req.case.as_ref())?;
        let unit = acting_unit(&request, &req.unit_id)?;
        let by = domain::validate_person("accepted_by", &req.accepted_by).map_err(Error::Invalid)?;
        let mut command = self.commands.begin(&request).await.map_err(Error::from)?;
        let case_id = self.dispatch.accept(&mut command.work(), &key, unit, &by).await?;
        let view = self.finish(command, case_id).await?;
        Ok(Response::new(view))
    }

    async fn contact(&self, request: Request<ContactRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = CaseKey::required(req.case.as_ref())?;
        let unit = acting_unit(&request, &req.unit_id)?;
        let by = domain::validate_person("contacted_by", &req.contacted_by).map_err(Error::Invalid)?;
        let mut command = self.commands.begin(&request).await.map_err(Error::from)?;
        let case_id = self.dispatch.contact(&mut command.work(), &key, unit, &by, &req.note).await?;
        let view = self.finish(command, case_id).await?;
        Ok(Response::new(view))
    }

    async fn resolve(&self, request: Request<ResolveRequest>) -> Result<Response<CaseView>, Status> {
        let req = request.get_ref();
        let key = CaseKey::required(req.case.as_ref())?;
        let unit = acting_unit(&request, &req.unit_id)?;
        let by = domain::validate_person("resolved_by", &req.resolved_by).map_err(Error::Invalid)?;
        let mut command = self.commands.begin(&request).await.map_err(Error::from)?;
        let case_id = self.dispatch.resolve(&mut command.work(), &key, unit, &by, &req.reply).await?;
        let view = self.finish(command, case_id).await?;
        Ok(Response::new(view))
    }

    async fn get_case(&self, request: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        Ok(Response::new(self.view_as(auth::caller(&request), &key).await?))
    }

    /// Cases ordered by case id, without their timelines (ask `GetCase` for one).
    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, Status> {
        let scope = match auth::caller(&request) {
            Some(who) => policy::list_scope(who, &request.get_ref().unit_id).map_err(Error::from)?,
            None => Some(request.get_ref().unit_id.trim().to_string()).filter(|u| !u.is_empty()),
        };
        let req = request.into_inner();
        let limit = match req.limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(Status::invalid_argument(format!("limit {n} is over the maximum of {MAX_LIMIT}; page with after_case_id")));
            }
            n => n,
        };
        let status = match pb::CaseStatus::try_from(req.status) {
            Ok(s) => CaseStatus::from_proto(s),
            Err(_) => return Err(Status::invalid_argument(format!("status {} is not a jiesu.v1.CaseStatus", req.status))),
        };
        let rows = store::list(&self.db, scope.as_deref().unwrap_or(""), status, req.after_case_id.trim(), limit).await?;
        Ok(Response::new(ListCasesResponse { cases: rows.into_iter().map(|r| case_view(r, &[])).collect() }))
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
        let route = domain::route(&self.dispatch.matrix, org, sub_item, &place);
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
