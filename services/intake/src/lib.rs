//! # jiesu-intake — 受理
//!
//! Receives citizens' requests from every channel — gRPC `Submit`, or a JetStream message on
//! `jiesu.intake.<channel>` (protobuf or JSON) — validates them, answers a rejection with every
//! reason, registers each (channel, channel_ref) once, gives it its public case number and emits
//! `case.received`. The citizen's name and phone stay in this service's database; other services
//! ask `GetContact` when they must reach the citizen.

pub mod api;
pub mod consume;
pub mod domain;
pub mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jiesu_kit::{
    DistrictConfig, Outgoing, Subjects, Tx,
    clock::SharedClock,
    db::Migrations,
    host::{Host, Running},
    time::{from_proto, to_millis, to_proto},
};
use jiesu_proto::v1::{CaseReceived, EventMeta, FieldViolation, Submission, SubmitResponse};
use serde::Deserialize;

pub use domain::{Channel, Limits};

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "intake";

/// `[intake]` of the district file.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The channels this district accepts; a new channel is a new entry here and a producer.
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub limits: Limits,
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// What can go wrong in intake.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the submission is not acceptable")]
    Invalid(Vec<FieldViolation>),
}

/// The result of registering a submission.
#[derive(Debug, Clone)]
pub struct Registered {
    pub case_id: String,
    pub case_no: String,
    pub received_at: i64,
    /// This (channel, channel_ref) had been registered before: nothing new happened.
    pub duplicate: bool,
}

impl Registered {
    pub fn to_proto(&self) -> SubmitResponse {
        SubmitResponse {
            case_id: self.case_id.clone(),
            case_no: self.case_no.clone(),
            duplicate: self.duplicate,
            received_at: Some(jiesu_kit::time::millis_to_proto(self.received_at)),
        }
    }
}

/// Registration, shared by the gRPC API and the NATS consumer.
pub struct Intake {
    pub settings: Settings,
    pub district: jiesu_kit::config::District,
    pub timezone: chrono_tz::Tz,
    pub subjects: Subjects,
    pub clock: SharedClock,
}

impl Intake {
    /// Validates and registers a submission inside `tx`; returns the events to emit.
    pub async fn register(&self, tx: &mut Tx, submission: &Submission) -> Result<(Registered, Vec<Outgoing>), Error> {
        let clean = domain::validate(submission, &self.settings.channels, &self.settings.limits).map_err(Error::Invalid)?;
        if let Some(row) = store::find_by_channel_ref(tx, &clean.channel, &clean.channel_ref).await? {
            let original = Registered { case_id: row.case_id, case_no: row.case_no, received_at: row.received_at, duplicate: true };
            return Ok((original, vec![]));
        }
        let now = self.clock.now();
        let local_day = now.with_timezone(&self.timezone).date_naive();
        let seq = store::next_sequence(tx, &local_day.format("%Y-%m-%d").to_string()).await?;
        let case_no = domain::case_no(&self.district.case_no_prefix, local_day, seq);
        let case_id = uuid::Uuid::now_v7().to_string();
        let submitted_at = clean.submitted_at.as_ref().and_then(from_proto).filter(|t| *t <= now).unwrap_or(now);
        store::record_submission(tx, &case_id, &case_no, &clean, to_millis(submitted_at), to_millis(now)).await?;
        let event_id = uuid::Uuid::now_v7().to_string();
        let event = self.received_event(&event_id, &case_id, &case_no, &clean, now);
        let out = Outgoing::event(&self.subjects, "case.received", event_id, &case_id, &event);
        tracing::info!(case_id = %case_id, case_no = %case_no, channel = %clean.channel, "case received");
        Ok((Registered { case_id, case_no, received_at: to_millis(now), duplicate: false }, vec![out]))
    }

    fn received_event(&self, event_id: &str, case_id: &str, case_no: &str, s: &Submission, now: DateTime<Utc>) -> CaseReceived {
        let has_contact = s.citizen.as_ref().is_some_and(|c| !c.phone.is_empty());
        CaseReceived {
            meta: Some(EventMeta {
                event_id: event_id.to_string(),
                case_id: case_id.to_string(),
                case_no: case_no.to_string(),
                occurred_at: Some(to_proto(now)),
                causation_id: String::new(),
                district: self.district.code.clone(),
            }),
            channel: s.channel.clone(),
            channel_ref: s.channel_ref.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            location: s.location.clone(),
            attachment_count: s.attachments.len() as u32,
            category_hint: s.category_hint.clone(),
            has_contact,
        }
    }
}

fn migrations() -> Migrations {
    Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }
}

/// Starts intake: its consumer of every channel's subject and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    if config.settings.channels.is_empty() {
        return Err(jiesu_kit::Error::Config("[intake] lists no channels: add at least one [[intake.channels]]".into()).into());
    }
    let mut host = Host::start(&config, &migrations(), clock.clone()).await?;
    let intake = Arc::new(Intake {
        timezone: config.timezone(),
        settings: config.settings.clone(),
        district: config.district.clone(),
        subjects: host.broker.subjects.clone(),
        clock,
    });
    let stream = host.broker.subjects.submissions_stream();
    let filter = vec![host.broker.subjects.intake_all()];
    host.consume(SERVICE, stream, filter, Arc::new(consume::Submissions { intake: intake.clone() }));
    let api = api::IntakeApi { intake, db: host.db.clone(), relay_wake: host.relay_wake.clone() };
    let routes = tonic::service::Routes::new(jiesu_proto::v1::intake_service_server::IntakeServiceServer::new(api));
    Ok(host.serve(routes, vec!["jiesu.v1.IntakeService"])?)
}

/// Runs intake until stopped (the binary's entry point).
pub async fn run(district: DistrictConfig) -> Result<(), Error> {
    let running = start(&district, Arc::new(jiesu_kit::SystemClock)).await?;
    Ok(running.until_stopped().await?)
}
