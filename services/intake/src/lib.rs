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
mod error;
pub mod policy;
pub mod service;
pub mod store;

use std::sync::Arc;

use jiesu_kit::{
    DistrictConfig,
    clock::SharedClock,
    host::{Host, Running},
};
use serde::Deserialize;

pub use domain::{Channel, Limits};
pub use error::Error;
pub use service::{Intake, Registered};

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

/// Intake's second consumer: who owns each case (from `case.dispatched`), for the contact rules.
pub const OWNERS_CONSUMER: &str = "intake-owners";

/// Starts intake: its consumer of every channel's subject and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    domain::check_channels(&config.settings.channels).map_err(jiesu_kit::Error::Config)?;
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    let intake = Arc::new(Intake {
        timezone: config.timezone(),
        settings: config.settings.clone(),
        district: config.district.clone(),
        subjects: host.broker.subjects.clone(),
    });
    host.consume(Arc::new(consume::Events { intake: intake.clone() }));
    host.consume_as(OWNERS_CONSUMER, Arc::new(consume::Owners));
    let api = api::IntakeApi { intake, commands: host.commands(), db: host.db.clone() };
    Ok(host.serve(jiesu_proto::v1::intake_service_server::IntakeServiceServer::new(api))?)
}
