//! The delivery worker: sends due deliveries, outside any database transaction, and schedules the
//! retry of those that fail (svix-style business retries kept in the database).

use std::{sync::Arc, time::Duration};

use jiesu_kit::auth::ServiceCredentials;
use jiesu_kit::{Db, clock::SharedClock, time::to_millis};
use jiesu_proto::v1::{CaseRef, case_ref::Ref, intake_service_client::IntakeServiceClient};
use prometheus_client::metrics::{counter::Counter, family::Family};
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;

use crate::{
    Error, Settings,
    domain::{Phone, RecipientKind, RetryPolicy, Sink, Status},
    store::{self, AttemptOutcome, DeliveryRow},
};

/// Deliveries claimed per round; small, so one slow endpoint holds few others back.
const BATCH: i64 = 16;
/// How long a claimed delivery is left to its worker before another may try it: longer than the
/// worst attempt (intake's answer plus the webhook's timeout).
const LEASE: Duration = Duration::from_secs(60);
/// Fallback poll, besides the wake-up after each handled event (retries come due on their own).
const POLL: Duration = Duration::from_secs(1);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const INTAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Intake's gRPC client: each call a CLIENT span whose context the call carries, with
/// notification's own token.
pub type IntakeClient = IntakeServiceClient<jiesu_kit::auth::ServiceChannel>;

/// A client of intake that connects on first use, so notification starts while intake is down;
/// over TLS when the district has certificates.
pub fn intake_client(url: &str, tls: Option<&jiesu_kit::tls::Tls>, credentials: ServiceCredentials) -> Result<IntakeClient, Error> {
    let channel = jiesu_kit::auth::service_channel(url, tls, credentials, INTAKE_TIMEOUT)
        .map_err(|e| Error::Settings(format!("notification.intake_url: {e}")))?;
    Ok(IntakeServiceClient::new(channel))
}

/// `jiesu_notification_deliveries_total{sink, outcome}`: attempts by outcome (sent, retry, failed).
#[derive(Clone, Default)]
pub struct DeliveryMetrics {
    attempts: Family<Vec<(&'static str, String)>, Counter>,
}

impl DeliveryMetrics {
    pub fn register(&self, metrics: &jiesu_kit::metrics::Metrics) {
        metrics.register("notification_deliveries", "Delivery attempts, by sink and outcome", self.attempts.clone());
    }

    fn count(&self, sink: &str, outcome: Status) {
        let outcome = match outcome {
            Status::Pending => "retry",
            Status::Sent => "sent",
            Status::Failed => "failed",
        };
        self.attempts.get_or_create(&vec![("sink", sink.to_string()), ("outcome", outcome.to_string())]).inc();
    }
}

/// Why an attempt did not go through.
#[derive(Debug)]
pub struct Failure {
    /// For the database and logs: never contains a phone number.
    pub message: String,
    /// No retry can fix it (the citizen left no number): give up at once.
    permanent: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }
}

/// What the webhook receives.
#[derive(Serialize)]
pub struct WebhookBody<'a> {
    pub delivery_id: &'a str,
    pub case_id: &'a str,
    pub case_no: &'a str,
    pub recipient_kind: &'a str,
    /// A unit id, the supervisor's unit id, or a citizen's masked phone.
    pub recipient: &'a str,
    /// The citizen's full number, for the SMS gateway (citizens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    pub template: &'a str,
    pub text: &'a str,
    /// Lets the receiver recognise a delivery sent twice (a worker that died before recording).
    pub event_id: &'a str,
}

/// Posts one body to the webhook (the SMS gateway, the units' app), with the trace context and
/// the delivery id as `Idempotency-Key`.
pub async fn send_to_webhook(http: &reqwest::Client, url: &str, body: &WebhookBody<'_>) -> Result<(), Failure> {
    let json = serde_json::to_vec(body).map_err(|e| Failure::permanent(format!("cannot serialise the webhook body: {e}")))?;
    let mut request = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").header("Idempotency-Key", body.delivery_id);
    for (k, v) in jiesu_kit::telemetry::current_context() {
        request = request.header(k, v);
    }
    match request.body(json).send().await {
        // The response body is not recorded: a gateway may echo the number back.
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(Failure::retry(format!("the webhook answered HTTP {}", r.status()))),
        // Without the URL: it may carry the gateway's key.
        Err(e) => Err(Failure::retry(format!("the webhook request failed: {}", error_chain(&e.without_url())))),
    }
}

/// The webhook's HTTP client.
pub fn webhook_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .map_err(|e| Error::Settings(format!("cannot build the webhook's HTTP client: {e}")))
}

/// Sends deliveries.
pub struct Worker {
    db: Db,
    clock: SharedClock,
    intake: IntakeClient,
    http: reqwest::Client,
    webhook_url: String,
    policy: RetryPolicy,
    wake: Arc<Notify>,
    metrics: DeliveryMetrics,
}

impl Worker {
    pub fn new(
        db: Db,
        clock: SharedClock,
        intake: IntakeClient,
        settings: &Settings,
        wake: Arc<Notify>,
        metrics: DeliveryMetrics,
    ) -> Result<Self, Error> {
        let http = webhook_client()?;
        Ok(Self {
            db,
            clock,
            intake,
            http,
            webhook_url: settings.webhook_url.trim().to_string(),
            policy: settings.retry_policy(),
            wake,
            metrics,
        })
    }

    /// Sends due deliveries until cancelled; wakes when an event was handled, and every second.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), jiesu_kit::Error> {
        loop {
            let full = tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                round = self.round() => match round {
                    Ok(n) => n as i64 == BATCH,
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery round failed; will retry");
                        false
                    }
                },
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Claims the due deliveries and attempts them side by side; returns how many were claimed.
    pub async fn round(&self) -> Result<usize, Error> {
        let now = to_millis(self.clock.now());
        let due = store::claim_due(&self.db, now, now + LEASE.as_millis() as i64, BATCH).await?;
        let n = due.len();
        let results = futures::future::join_all(due.iter().map(|d| self.deliver(d))).await;
        for (d, r) in due.iter().zip(results) {
            if let Err(e) = r {
                // Left leased: it is tried again once the lease has passed.
                tracing::error!(case_id = %d.case_id, delivery_id = %d.delivery_id, error = %e, "cannot record a delivery attempt");
            }
        }
        Ok(n)
    }

    async fn deliver(&self, d: &DeliveryRow) -> Result<(), Error> {
        let span = tracing::info_span!(
            "deliver",
            case_id = %d.case_id,
            delivery_id = %d.delivery_id,
            sink = %d.sink,
            recipient_kind = %d.recipient_kind,
        );
        let trace: std::collections::BTreeMap<String, String> = serde_json::from_str(&d.trace_context).unwrap_or_default();
        jiesu_kit::telemetry::set_parent(&span, |k| trace.get(k).map(String::as_str));
        async {
            let (recipient, result) = self.attempt(d).await;
            let outcome = self.outcome(d, recipient, result);
            self.metrics.count(&d.sink, outcome.status);
            store::record_attempt(&self.db, &d.delivery_id, &outcome).await
        }
        .instrument(span)
        .await
    }

    /// One attempt; returns the recipient as it should be stored and how it went.
    async fn attempt(&self, d: &DeliveryRow) -> (String, Result<(), Failure>) {
        let kind = match d.kind() {
            Ok(k) => k,
            Err(e) => return (d.recipient.clone(), Err(Failure::permanent(e.to_string()))),
        };
        let phone = if kind == RecipientKind::Citizen {
            match self.phone(&d.case_id).await {
                Ok(p) => Some(p),
                Err(f) => return (d.recipient.clone(), Err(f)),
            }
        } else {
            None
        };
        let recipient = phone.as_ref().map(Phone::masked).unwrap_or_else(|| d.recipient.clone());
        let result = match d.sink() {
            Ok(Sink::Log) => {
                tracing::info!(
                    case_id = %d.case_id,
                    case_no = %d.case_no,
                    recipient_kind = %d.recipient_kind,
                    recipient = %recipient,
                    template = %d.template,
                    text = %d.text,
                    "notification delivered to the log"
                );
                Ok(())
            }
            Ok(Sink::Webhook) => self.post(d, &recipient, phone.as_ref()).await,
            Err(e) => Err(Failure::permanent(e.to_string())),
        };
        (recipient, result)
    }

    /// Asks intake for the citizen's phone number.
    async fn phone(&self, case_id: &str) -> Result<Phone, Failure> {
        let mut request = tonic::Request::new(CaseRef { r#ref: Some(Ref::CaseId(case_id.to_string())) });
        request.metadata_mut().insert("jiesu-purpose", tonic::metadata::MetadataValue::from_static("notification: text the citizen"));
        let mut intake = self.intake.clone();
        match intake.get_contact(request).await {
            Ok(contact) => {
                Phone::new(contact.into_inner().phone).ok_or_else(|| Failure::permanent("the citizen left no phone number with intake"))
            }
            Err(s) if s.code() == Code::NotFound => Err(Failure::permanent(format!("intake does not know the case: {}", s.message()))),
            Err(s) => Err(Failure::retry(format!("cannot get the citizen's contact from intake: {:?}: {}", s.code(), s.message()))),
        }
    }

    async fn post(&self, d: &DeliveryRow, recipient: &str, phone: Option<&Phone>) -> Result<(), Failure> {
        let body = WebhookBody {
            delivery_id: &d.delivery_id,
            case_id: &d.case_id,
            case_no: &d.case_no,
            recipient_kind: &d.recipient_kind,
            recipient,
            phone: phone.map(Phone::expose),
            template: &d.template,
            text: &d.text,
            event_id: &d.event_id,
        };
        send_to_webhook(&self.http, &self.webhook_url, &body).await
    }

    /// Settles the attempt: sent, retried later on the policy's schedule, or given up.
    fn outcome(&self, d: &DeliveryRow, recipient: String, result: Result<(), Failure>) -> AttemptOutcome {
        let now = self.clock.now();
        let attempts = d.attempts + 1;
        match result {
            Ok(()) => {
                if d.sink != Sink::Log.as_str() {
                    tracing::info!(case_id = %d.case_id, attempts, "notification delivered to the webhook");
                }
                AttemptOutcome {
                    status: Status::Sent,
                    attempts,
                    recipient,
                    next_attempt_at: to_millis(now),
                    last_error: d.last_error.clone(),
                    sent_at: Some(to_millis(now)),
                }
            }
            Err(f) => {
                let delay = if f.permanent { None } else { self.policy.delay_after(attempts.clamp(0, u32::MAX as i64) as u32) };
                let (status, next) = match delay {
                    Some(delay) => (Status::Pending, now + delay),
                    None => (Status::Failed, now),
                };
                tracing::warn!(
                    case_id = %d.case_id,
                    attempts,
                    error = %f.message,
                    status = status.as_str(),
                    next_attempt_at = %next,
                    "delivery attempt failed"
                );
                AttemptOutcome { status, attempts, recipient, next_attempt_at: to_millis(next), last_error: f.message, sent_at: None }
            }
        }
    }
}

/// An error and its causes in one line (reqwest's own message hides the reason).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
