//! `jiesu.v1.ClassificationService`.

use std::sync::Arc;

use jiesu_kit::{
    CaseKey, Commands, Db,
    auth::{self, Identity},
    text::has_control,
    time::millis_to_proto,
};
use jiesu_proto::v1::{
    CaseRef, ClassificationView, ClassifyRequest, ConfirmClassificationRequest, GetTaxonomyRequest, ListHotspotsRequest,
    ListHotspotsResponse, ListPendingReviewsRequest, ListPendingReviewsResponse, ListSimilarCasesRequest, ListSimilarCasesResponse,
    PendingReview, ReclassifyRequest, SimilarCase, TaxonomyCategory, TaxonomySubItem, TaxonomyView,
    classification_service_server::ClassificationService,
};
use jiesu_reference::Urgency;
use tonic::{Request, Response, Status};

use crate::{Classifier, Error, domain::REQUEST_TYPES, policy, service::Verdict, store};

pub struct ClassificationApi {
    pub classifier: Arc<Classifier>,
    pub db: Db,
    pub clock: jiesu_kit::clock::SharedClock,
    pub commands: Commands,
}

/// Longest text a dry-run classification accepts, in characters.
const MAX_TEXT: usize = 10_000;
/// Longest note on a review, in characters.
const MAX_NOTE: usize = 500;
/// Most waiting cases or similar cases one call lists.
const MAX_LIST: u32 = 200;

fn validate_text(title: &str, description: &str) -> Result<(), Error> {
    if title.trim().is_empty() && description.trim().is_empty() {
        return Err(Error::Invalid("title or description is required: there is nothing to classify".into()));
    }
    if has_control(title, false) || has_control(description, true) {
        return Err(Error::Invalid("title or description contains control characters (only a description may break lines)".into()));
    }
    if title.chars().count() + description.chars().count() > MAX_TEXT {
        return Err(Error::Invalid(format!("title and description together exceed {MAX_TEXT} characters")));
    }
    Ok(())
}

/// A code of the organisation (street, community, grid): short, printable, optional.
fn validate_code(field: &str, code: &str) -> Result<(), Error> {
    if has_control(code, false) || code.chars().count() > 64 {
        return Err(Error::Invalid(format!("{field} is not a code of the organisation (at most 64 printable characters)")));
    }
    Ok(())
}

fn validate_note(note: &str) -> Result<String, Error> {
    let note = note.trim();
    if has_control(note, true) {
        return Err(Error::Invalid("note contains control characters".into()));
    }
    let chars = note.chars().count();
    if chars > MAX_NOTE {
        return Err(Error::Invalid(format!("note is {chars} characters long; at most {MAX_NOTE} are allowed")));
    }
    Ok(note.to_string())
}

/// The verified caller; a review is always someone's, so a call without one is refused even
/// where a district lets anonymous calls through.
fn verified<T>(request: &Request<T>) -> Result<&Identity, Error> {
    auth::caller(request)
        .ok_or_else(|| Error::Unauthenticated("this action needs a verified identity: send `authorization: Bearer <token>`".into()))
}

/// Checks `rule` against the caller, when there is one (the server has refused calls without a
/// token where tokens are required).
fn allowed<T>(request: &Request<T>, rule: fn(&Identity) -> Result<(), auth::Refusal>) -> Result<(), Error> {
    match auth::caller(request) {
        Some(who) => Ok(rule(who)?),
        None => Ok(()),
    }
}

impl ClassificationApi {
    /// The case as it now stands, with its review and its repeat chain.
    async fn view_of(&self, row: &store::ClassificationRow) -> Result<ClassificationView, Error> {
        let correction = store::correction(&self.db, &row.case_id).await?;
        let mark = store::mark_of(&self.db, &row.case_id).await?;
        Ok(self.classifier.view_with(row, correction.as_ref(), mark.as_ref()))
    }

    /// Releases a waiting case with a person's verdict, as one command.
    async fn decide<T>(
        &self,
        request: &Request<T>,
        case: Option<&CaseRef>,
        verdict: impl FnOnce(&store::ClassificationRow) -> Result<Verdict, Error>,
    ) -> Result<Response<ClassificationView>, Status> {
        let who = verified(request)?;
        policy::may_review(who).map_err(Error::from)?;
        let key = CaseKey::required(case)?;
        let model = store::get(&self.db, &key).await?.ok_or_else(|| key.not_found(crate::SERVICE))?;
        let mut verdict = verdict(&model)?;
        verdict.reviewer_subject = who.subject.clone();
        verdict.reviewer_name = if who.name.trim().is_empty() { who.subject.clone() } else { who.name.clone() };
        let mut command = self.commands.begin(request).await.map_err(Error::from)?;
        let decided = self.classifier.release(&mut command.work(), &model.case_id, &verdict).await?;
        command.commit().await.map_err(Error::from)?;
        Ok(Response::new(self.view_of(&decided).await?))
    }
}

#[tonic::async_trait]
impl ClassificationService for ClassificationApi {
    async fn get_taxonomy(&self, _request: Request<GetTaxonomyRequest>) -> Result<Response<TaxonomyView>, Status> {
        let taxonomy = &self.classifier.taxonomy;
        let categories = taxonomy
            .categories()
            .iter()
            .map(|c| TaxonomyCategory {
                code: c.code.clone(),
                name: c.name.clone(),
                sub_items: c
                    .sub_items
                    .iter()
                    .map(|s| TaxonomySubItem { code: s.code.clone(), name: s.name.clone(), description: s.description.clone() })
                    .collect(),
            })
            .collect();
        Ok(Response::new(TaxonomyView { version: taxonomy.as_file().version.clone(), categories }))
    }

    async fn classify(&self, request: Request<ClassifyRequest>) -> Result<Response<ClassificationView>, Status> {
        let r = request.into_inner();
        validate_text(&r.title, &r.description)?;
        let row = self.classifier.decide(&r.title, &r.description);
        let mut view = self.classifier.view(&row);
        view.timeline.clear();
        Ok(Response::new(view))
    }

    async fn list_hotspots(&self, request: Request<ListHotspotsRequest>) -> Result<Response<ListHotspotsResponse>, Status> {
        let street = request.into_inner().street;
        validate_code("street", &street)?;
        let now = jiesu_kit::time::to_millis(self.clock.now());
        let rows = store::hotspots(&self.db, now - self.classifier.hotspots.window_ms(), street.trim()).await?;
        Ok(Response::new(ListHotspotsResponse { hotspots: rows.iter().map(|h| self.classifier.hotspot_view(h)).collect() }))
    }

    async fn get_classification(&self, request: Request<CaseRef>) -> Result<Response<ClassificationView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| key.not_found(crate::SERVICE))?;
        Ok(Response::new(self.view_of(&row).await?))
    }

    async fn list_pending_reviews(
        &self,
        request: Request<ListPendingReviewsRequest>,
    ) -> Result<Response<ListPendingReviewsResponse>, Status> {
        allowed(&request, policy::may_read_queue)?;
        let r = request.into_inner();
        validate_code("street", &r.street)?;
        if r.limit > MAX_LIST {
            return Err(Error::Invalid(format!("limit {} is more than {MAX_LIST}", r.limit)).into());
        }
        let limit = if r.limit == 0 { 50 } else { r.limit };
        let (rows, total) = store::waiting(&self.db, r.street.trim(), limit).await?;
        let reviews = rows
            .iter()
            .map(|(w, c)| PendingReview {
                classification: Some(self.classifier.view(c)),
                title: w.title.clone(),
                description: w.description.clone(),
                channel: w.channel.clone(),
                location: Some(w.place().to_location()),
                waiting_since: Some(millis_to_proto(w.waiting_since)),
                why: w.why.clone(),
                case_no: w.case_no.clone(),
            })
            .collect();
        Ok(Response::new(ListPendingReviewsResponse { reviews, total: u32::try_from(total).unwrap_or(u32::MAX) }))
    }

    async fn confirm_classification(&self, request: Request<ConfirmClassificationRequest>) -> Result<Response<ClassificationView>, Status> {
        let r = request.get_ref().clone();
        let note = validate_note(&r.note)?;
        self.decide(&request, r.case.as_ref(), |model| {
            Ok(Verdict {
                sub_item: model.sub_item.clone(),
                urgency: Urgency::from_key(&model.urgency),
                request_type: model.request_type.clone(),
                corrected: false,
                reviewer_subject: String::new(),
                reviewer_name: String::new(),
                note,
            })
        })
        .await
    }

    async fn reclassify(&self, request: Request<ReclassifyRequest>) -> Result<Response<ClassificationView>, Status> {
        let r = request.get_ref().clone();
        let sub_item = r.sub_item.trim().to_string();
        if sub_item.is_empty() {
            return Err(Error::Invalid("sub_item is required: the sub-item the case belongs to, such as \"01.03\"".into()).into());
        }
        if self.classifier.taxonomy.sub_item(&sub_item).is_none() {
            return Err(Error::Invalid(format!("sub_item {sub_item:?} is not a sub-item of the district's taxonomy")).into());
        }
        let request_type = r.request_type.trim().to_string();
        if !request_type.is_empty() && !REQUEST_TYPES.contains(&request_type.as_str()) {
            return Err(Error::Invalid(format!("request_type {request_type:?} is not one of {}", REQUEST_TYPES.join(", "))).into());
        }
        let urgency = match jiesu_proto::v1::Urgency::try_from(r.urgency) {
            Ok(jiesu_proto::v1::Urgency::Unspecified) => None,
            Ok(u) => Some(Urgency::from_proto(u)),
            Err(_) => return Err(Error::Invalid(format!("urgency {} is not an urgency", r.urgency)).into()),
        };
        let note = validate_note(&r.note)?;
        self.decide(&request, r.case.as_ref(), |model| {
            let urgency = urgency.unwrap_or_else(|| Urgency::from_key(&model.urgency));
            let request_type = if request_type.is_empty() { model.request_type.clone() } else { request_type };
            let corrected = sub_item != model.sub_item || urgency.key() != model.urgency || request_type != model.request_type;
            Ok(Verdict { sub_item, urgency, request_type, corrected, reviewer_subject: String::new(), reviewer_name: String::new(), note })
        })
        .await
    }

    async fn list_similar_cases(&self, request: Request<ListSimilarCasesRequest>) -> Result<Response<ListSimilarCasesResponse>, Status> {
        allowed(&request, policy::may_look_for_similar)?;
        let r = request.into_inner();
        let place = r.location.unwrap_or_default();
        for (field, code) in [("location.street", &place.street), ("location.community", &place.community), ("location.grid", &place.grid)]
        {
            validate_code(field, code)?;
        }
        if place.community.trim().is_empty() {
            return Err(Error::Invalid("location.community is required: similar cases are looked for in the same community".into()).into());
        }
        let sub_item = match r.sub_item.trim() {
            "" => {
                validate_text(&r.title, &r.description)?;
                self.classifier.decide(&r.title, &r.description).sub_item
            }
            code if self.classifier.taxonomy.sub_item(code).is_some() => code.to_string(),
            code => return Err(Error::Invalid(format!("sub_item {code:?} is not a sub-item of the district's taxonomy")).into()),
        };
        let now = jiesu_kit::time::to_millis(self.clock.now());
        let from = now - self.classifier.repeats.window_ms();
        let rows = store::similar(&self.db, &sub_item, place.community.trim(), place.grid.trim(), from, 20).await?;
        let cases = rows
            .into_iter()
            .map(|m| SimilarCase {
                same_grid: !m.grid.is_empty() && m.grid == place.grid.trim(),
                case_id: m.case_id,
                case_no: m.case_no,
                sub_item: m.sub_item,
                title: m.title,
                community: m.community,
                grid: m.grid,
                classified_at: Some(millis_to_proto(m.at_ms)),
            })
            .collect();
        Ok(Response::new(ListSimilarCasesResponse { sub_item, cases }))
    }
}
