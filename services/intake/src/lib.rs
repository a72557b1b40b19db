//! # jiesu-intake — 受理
//!
//! Receives citizens' requests from every channel — gRPC `Submit`, or a JetStream message on
//! `jiesu.intake.<channel>` (protobuf or JSON) — validates them, answers a rejection with every
//! reason, registers each (channel, channel_ref) once, gives it its public case number and emits
//! `case.received`. The citizen's name and phone stay in this service's database; other services
//! ask `GetContact` when they must reach the citizen.

pub mod api;
pub mod attachments;
pub mod consume;
pub mod domain;
mod error;
pub mod policy;
pub mod sealing;
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
#[derive(Clone, Deserialize)]
pub struct Settings {
    /// The channels this district accepts; a new channel is a new entry here and a producer.
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub limits: Limits,
    /// Keys the citizen's name and phone are sealed with at rest: key id → 32 bytes of base64.
    /// Keep retired keys here until no stored contact uses them.
    #[serde(default)]
    pub contact_keys: std::collections::BTreeMap<String, String>,
    /// The key new contacts are sealed with; empty: stored in clear (never in production).
    #[serde(default)]
    pub contact_key: String,
    /// The key of the phone's keyed hash (base64), for finding the same citizen again.
    #[serde(default)]
    pub contact_hash_key: String,
    /// Where uploaded files are kept, by content hash, in a directory per district under it.
    #[serde(default = "default_attachments_dir")]
    pub attachments_dir: std::path::PathBuf,
    /// How many files of each kind a submission may carry, and how large.
    #[serde(default)]
    pub attachments: attachments::AttachmentLimits,
    /// Wrong query codes one case number tolerates in an hour before its status page refuses
    /// lookups for the rest of the hour (查询码防猜测).
    #[serde(default = "default_status_misses")]
    pub status_misses_per_hour: u32,
}

fn default_attachments_dir() -> std::path::PathBuf {
    "data/attachments".into()
}

fn default_status_misses() -> u32 {
    10
}

impl std::fmt::Debug for sealing::ContactSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactSeal")
    }
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Intake's second consumer: who owns each case (from `case.dispatched`), for the contact rules.
pub const PROGRESS_CONSUMER: &str = "intake-progress";

/// Starts intake: its consumer of every channel's subject and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    domain::check_channels(&config.settings.channels).map_err(jiesu_kit::Error::Config)?;
    let s = &config.settings;
    let seal = sealing::ContactSeal::new(&s.contact_keys, &s.contact_key, &s.contact_hash_key)
        .map_err(|e| jiesu_kit::Error::Config(e.to_string()))?;
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    if !seal.seals() {
        tracing::warn!("[intake] contact_key is not set: citizens' names and phones are stored in clear; never run a district like this");
    }
    let dir = s.attachments_dir.join(&config.district.code);
    let store = attachments::AttachmentStore::open(&dir)
        .map_err(|e| jiesu_kit::Error::Config(format!("[intake] attachments_dir {}: {e}", dir.display())))?;
    let intake = Arc::new(Intake {
        attachments: Arc::new(store),
        seal,
        timezone: config.timezone(),
        settings: config.settings.clone(),
        district: config.district.clone(),
        subjects: host.broker.subjects.clone(),
    });
    host.consume(Arc::new(consume::Events { intake: intake.clone() }));
    host.consume_as(PROGRESS_CONSUMER, Arc::new(consume::Progress));
    let api = api::IntakeApi { intake, commands: host.commands(), db: host.db.clone(), rates: Default::default() };
    Ok(host.serve(jiesu_proto::v1::intake_service_server::IntakeServiceServer::new(api))?)
}
