//! `jiesu.v1.ClassificationService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Db, text::has_control};
use jiesu_proto::v1::{
    CaseRef, ClassificationView, ClassifyRequest, ListHotspotsRequest, ListHotspotsResponse,
    classification_service_server::ClassificationService,
};
use tonic::{Request, Response, Status};

use crate::{Classifier, store};

pub struct ClassificationApi {
    pub classifier: Arc<Classifier>,
    pub db: Db,
    pub clock: jiesu_kit::clock::SharedClock,
}

/// Longest text a dry-run classification accepts, in characters.
const MAX_TEXT: usize = 10_000;

#[tonic::async_trait]
impl ClassificationService for ClassificationApi {
    async fn classify(&self, request: Request<ClassifyRequest>) -> Result<Response<ClassificationView>, Status> {
        let r = request.into_inner();
        if r.title.trim().is_empty() && r.description.trim().is_empty() {
            return Err(Status::invalid_argument("title or description is required: there is nothing to classify"));
        }
        if has_control(&r.title, false) || has_control(&r.description, true) {
            return Err(Status::invalid_argument("title or description contains control characters (only a description may break lines)"));
        }
        if r.title.chars().count() + r.description.chars().count() > MAX_TEXT {
            return Err(Status::invalid_argument(format!("title and description together exceed {MAX_TEXT} characters")));
        }
        let row = self.classifier.decide(&r.title, &r.description);
        let mut view = self.classifier.view(&row);
        view.timeline.clear();
        Ok(Response::new(view))
    }

    async fn list_hotspots(&self, request: Request<ListHotspotsRequest>) -> Result<Response<ListHotspotsResponse>, Status> {
        let street = request.into_inner().street;
        if has_control(&street, false) || street.chars().count() > 64 {
            return Err(Status::invalid_argument("street is not a street code"));
        }
        let now = jiesu_kit::time::to_millis(self.clock.now());
        let rows = store::hotspots(&self.db, now - self.classifier.hotspots.window_ms(), street.trim()).await?;
        Ok(Response::new(ListHotspotsResponse { hotspots: rows.iter().map(|h| self.classifier.hotspot_view(h)).collect() }))
    }

    async fn get_classification(&self, request: Request<CaseRef>) -> Result<Response<ClassificationView>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let row = store::get(&self.db, &key).await?.ok_or_else(|| key.not_found(crate::SERVICE))?;
        Ok(Response::new(self.classifier.view(&row)))
    }
}
