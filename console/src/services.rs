//! The services' gRPC APIs, called as the signed-in person: every call carries a token minted
//! for them (their subject, name, roles and unit), so each service decides what they may see and
//! do by its own rules. The console adds no permission of its own.

use std::time::Duration;

use jiesu_kit::{
    auth::{ServiceChannel, ServiceCredentials, Signer, service_channel},
    tls::Tls,
};
use jiesu_proto::v1::{
    classification_service_client::ClassificationServiceClient, dispatch_service_client::DispatchServiceClient,
    intake_service_client::IntakeServiceClient, revisit_service_client::RevisitServiceClient, sla_service_client::SlaServiceClient,
};
use tonic::metadata::{Ascii, MetadataValue};

use crate::{Error, Settings, accounts::Account};

/// How long one call may take before the page says the service is not answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The clients, connected on first use (the console starts while a service is down).
#[derive(Clone)]
pub struct Services {
    signer: Option<Signer>,
    token_ttl: Duration,
    intake: IntakeServiceClient<ServiceChannel>,
    classification: ClassificationServiceClient<ServiceChannel>,
    dispatch: DispatchServiceClient<ServiceChannel>,
    sla: SlaServiceClient<ServiceChannel>,
    revisit: RevisitServiceClient<ServiceChannel>,
}

impl Services {
    pub fn connect(settings: &Settings, tls: Option<&Tls>, signer: Option<Signer>, token_ttl: Duration) -> Result<Self, Error> {
        // No credentials of the console's own: each call carries the person's token instead.
        let channel = |name: &str, url: &str| {
            service_channel(url, tls, ServiceCredentials::new(crate::NAME, None), CALL_TIMEOUT)
                .map_err(|e| Error::Config(format!("{name}: {e}")))
        };
        Ok(Self {
            signer,
            token_ttl,
            intake: IntakeServiceClient::new(channel("intake_url", &settings.intake_url)?),
            classification: ClassificationServiceClient::new(channel("classification_url", &settings.classification_url)?),
            dispatch: DispatchServiceClient::new(channel("dispatch_url", &settings.dispatch_url)?),
            sla: SlaServiceClient::new(channel("sla_url", &settings.sla_url)?),
            revisit: RevisitServiceClient::new(channel("revisit_url", &settings.revisit_url)?),
        })
    }

    /// The services as `account` calls them, with a token minted now.
    pub fn as_person(&self, account: &Account) -> Caller {
        let bearer = self.signer.as_ref().and_then(|signer| {
            let token =
                signer.issue_now(account.token_subject(), &account.name, &account.roles, account.unit.as_deref(), self.token_ttl).ok()?;
            format!("Bearer {token}").parse().ok()
        });
        Caller { services: self.clone(), bearer }
    }
}

/// The clients of one person, for one page.
pub struct Caller {
    services: Services,
    bearer: Option<MetadataValue<Ascii>>,
}

impl Caller {
    /// `message` as the person's request.
    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(bearer) = &self.bearer {
            request.metadata_mut().insert("authorization", bearer.clone());
        }
        request
    }

    /// `message` as the person's request, saying why (`jiesu-purpose`, kept in intake's record
    /// of who read a citizen's contact).
    pub fn req_because<T>(&self, message: T, purpose: &str) -> tonic::Request<T> {
        let mut request = self.req(message);
        // As UTF-8 bytes, which HTTP/2 carries and intake reads back as text; control characters
        // cannot travel and are dropped.
        let clean: String = purpose.chars().filter(|c| !c.is_control()).take(200).collect();
        if let Ok(value) = MetadataValue::<Ascii>::try_from(clean.as_bytes()) {
            request.metadata_mut().insert("jiesu-purpose", value);
        }
        request
    }

    pub fn intake(&self) -> IntakeServiceClient<ServiceChannel> {
        self.services.intake.clone()
    }
    pub fn classification(&self) -> ClassificationServiceClient<ServiceChannel> {
        self.services.classification.clone()
    }
    pub fn dispatch(&self) -> DispatchServiceClient<ServiceChannel> {
        self.services.dispatch.clone()
    }
    pub fn sla(&self) -> SlaServiceClient<ServiceChannel> {
        self.services.sla.clone()
    }
    pub fn revisit(&self) -> RevisitServiceClient<ServiceChannel> {
        self.services.revisit.clone()
    }
}
