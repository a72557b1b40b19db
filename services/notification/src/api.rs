//! `jiesu.v1.NotificationService`.

use std::sync::Arc;

use jiesu_kit::auth::Role;
use jiesu_kit::{CaseKey, Db, time::millis_to_proto};
use jiesu_proto::v1::{
    CaseRef, DeliveryView, ListDeliveriesResponse, TimelineEntry, VerificationCodeRequest, VerificationCodeSent,
    notification_service_server::NotificationService,
};
use tonic::{Request, Response, Status};

use crate::{
    Error, SERVICE,
    domain::{self, DeliveryFacts, RecipientKind},
    store::{self, DeliveryRow},
    worker::{WebhookBody, send_to_webhook},
};

pub struct NotificationApi {
    pub db: Db,
    pub units: Arc<jiesu_reference::Organisation>,
    /// The SMS gateway, for verification codes: the webhook sink, when configured.
    pub webhook: Option<(reqwest::Client, String)>,
    pub district_name: String,
    /// Verification codes sent per number in the last hour.
    pub codes_sent: std::sync::Mutex<jiesu_kit::rate::RateLimiter>,
}

/// Verification codes one number may receive in an hour: enough to retry, too few to harass.
const CODES_PER_HOUR: u32 = 5;

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

    async fn send_verification_code(&self, request: Request<VerificationCodeRequest>) -> Result<Response<VerificationCodeSent>, Status> {
        if let Some(who) = jiesu_kit::auth::caller(&request)
            && !(who.has(Role::ChannelIntegrator) || who.has(Role::Service))
        {
            return Err(Status::permission_denied(format!(
                "{} may not send verification codes: channel producers and services may",
                who.describe()
            )));
        }
        let req = request.get_ref();
        let phone: String = req.phone.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        let phone = phone.strip_prefix("+86").unwrap_or(&phone).to_string();
        if !(phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit())) {
            return Err(Status::invalid_argument("phone: a verification code goes to a mainland mobile (11 digits starting with 1)"));
        }
        if !(4..=8).contains(&req.code.len()) || !req.code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Status::invalid_argument("code: 4 to 8 digits"));
        }
        let Some((http, url)) = &self.webhook else {
            return Err(Status::failed_precondition("no SMS gateway is configured ([notification] webhook_url): codes cannot be sent"));
        };
        let masked = domain::mask_phone(&phone);
        let now = chrono::Utc::now();
        if let Err(wait) =
            self.codes_sent.lock().expect("rate table").hit(&phone, CODES_PER_HOUR, std::time::Duration::from_secs(3600), now)
        {
            return Err(Status::resource_exhausted(format!("too many codes to {masked} this hour: retry in {wait} s")));
        }
        let text = format!("【{}】您的验证码是{}，10分钟内有效。如非本人操作，请忽略本短信。", self.district_name, req.code);
        let delivery_id = uuid::Uuid::now_v7().to_string();
        let body = WebhookBody {
            delivery_id: &delivery_id,
            case_id: "",
            case_no: "",
            recipient_kind: "citizen",
            recipient: &masked,
            phone: Some(&phone),
            template: "verification_code",
            text: &text,
            event_id: "",
        };
        match send_to_webhook(http, url, &body).await {
            Ok(()) => {
                tracing::info!(phone = %masked, "verification code sent");
                Ok(Response::new(VerificationCodeSent { masked_phone: masked }))
            }
            Err(failure) => {
                tracing::warn!(reason = %failure.message, "a verification code could not be sent");
                Err(Status::unavailable("the SMS gateway did not take the code: try again shortly"))
            }
        }
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
