//! `jiesu.v1.NotificationService`.

use std::sync::Arc;

use jiesu_kit::{CaseKey, Db, time::millis_to_proto};
use jiesu_proto::v1::{CaseRef, DeliveryView, ListDeliveriesResponse, TimelineEntry, notification_service_server::NotificationService};
use tonic::{Request, Response, Status};

use crate::{
    Error, SERVICE,
    domain::{self, DeliveryFacts, RecipientKind},
    store::{self, DeliveryRow},
};

pub struct NotificationApi {
    pub db: Db,
    pub units: Arc<jiesu_reference::Organisation>,
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    /// The deliveries of a case, oldest first, and what they mean for the case timeline. A case
    /// nobody was told about is NOT_FOUND here, as a case a service does not know is everywhere.
    async fn list_deliveries(&self, request: Request<CaseRef>) -> Result<Response<ListDeliveriesResponse>, Status> {
        let key = CaseKey::required(Some(request.get_ref()))?;
        let rows = store::for_case(&self.db, &key).await?;
        if rows.is_empty() {
            return Err(Error::NotFound(key.describe()).into());
        }
        // A unit sees the notices of the cases it was told of.
        if let Some(who) = jiesu_kit::auth::caller(&request) {
            let units = rows.iter().filter(|r| r.recipient_kind == "unit").map(|r| r.recipient.as_str());
            jiesu_kit::auth::may_see_case(who, units)?;
        }
        let facts = rows.iter().map(|r| self.facts(r)).collect::<Result<Vec<_>, Error>>()?;
        let timeline = domain::timeline(&facts)
            .into_iter()
            .map(|i| TimelineEntry {
                at: Some(millis_to_proto(i.at)),
                service: SERVICE.into(),
                event: i.event.into(),
                detail: i.detail,
                actor: String::new(),
            })
            .collect();
        let deliveries = rows.into_iter().map(view).collect();
        Ok(Response::new(ListDeliveriesResponse { deliveries, timeline }))
    }
}

impl NotificationApi {
    fn facts(&self, r: &DeliveryRow) -> Result<DeliveryFacts, Error> {
        let kind = r.kind()?;
        let recipient_name = match kind {
            RecipientKind::Unit | RecipientKind::Supervisor => self.units.name_or(&r.recipient, "").to_string(),
            RecipientKind::Leader => self.units.leader(&r.recipient).map_or_else(|| r.recipient.clone(), |l| l.name.clone()),
            RecipientKind::Citizen => r.recipient.clone(),
        };
        Ok(DeliveryFacts {
            event_id: r.event_id.clone(),
            recipient_kind: kind,
            recipient_name,
            case_no: r.case_no.clone(),
            template: r.template.clone(),
            sink: r.sink()?,
            status: r.status()?,
            attempts: r.attempts.clamp(0, u32::MAX as i64) as u32,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

fn view(r: DeliveryRow) -> DeliveryView {
    DeliveryView {
        delivery_id: r.delivery_id,
        case_id: r.case_id,
        recipient_kind: r.recipient_kind,
        recipient: r.recipient,
        template: r.template,
        text: r.text,
        sink: r.sink,
        status: r.status,
        attempts: r.attempts.clamp(0, u32::MAX as i64) as u32,
        last_error: r.last_error,
        created_at: Some(millis_to_proto(r.created_at)),
        sent_at: r.sent_at.map(millis_to_proto),
    }
}
