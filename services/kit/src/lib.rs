//! # jiesu-kit — the shared mechanics of every Jiesu service
//!
//! Everything a service needs that is not its own domain lives here, once:
//!
//! | module | what it gives a service |
//! |---|---|
//! | [`config`] | the district's `jiesu.toml`, a section per service, `JIESU__…` environment overrides |
//! | [`clock`] | injected time, so deadlines are tested without waiting |
//! | [`db`] | SQLite (default) or PostgreSQL chosen once from the URL, migrations, `BEGIN IMMEDIATE` |
//! | [`messaging`] | NATS connection, subjects, streams, the headers every message carries |
//! | [`access`] | who may publish and consume what on NATS: users, permissions, server config, provisioning |
//! | [`work`] | one message's or command's transaction and the events it emits (ids, meta) |
//! | [`outbox`] | events written in the handler's transaction, published by a relay afterwards |
//! | [`consumer`] | durable pull consumers with an inbox (exactly-once effects), back-off, dead letters |
//! | [`telemetry`] | `tracing`, OTLP export, W3C context through NATS headers and gRPC metadata |
//! | [`server`] | gRPC with health and reflection; the admin port with `/healthz`, `/readyz`, `/metrics` |
//! | [`health`] | readiness of every consumer and the relay, for `/readyz` and gRPC health |
//! | [`host`] | starts all of the above for a service and stops it cleanly |
//! | [`web`] | what the two web fronts share: security headers, the client's address, random tokens |

pub mod access;
pub mod auth;
mod case_trace;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
mod error;
pub mod health;
pub mod host;
pub mod messaging;
pub mod metrics;
pub mod outbox;
pub mod rate;
pub mod server;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod tls;
pub mod web;
pub mod work;

/// The contract, for services and for the kit's macros.
pub use jiesu_proto as proto;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{DistrictConfig, ServiceConfig};
pub use consumer::{Handler, HandlerError, Inbound, Incoming, ServiceError};
pub use db::{Db, Tx};
pub use error::{Error, internal_status};
pub use host::{Host, Running};
pub use messaging::Subjects;
pub use outbox::Outgoing;
pub use work::{CaseIds, Command, Commands, Work};

/// Resolves a `jiesu.v1.CaseRef` into what a store looks cases up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseKey {
    Id(String),
    No(String),
}

impl CaseKey {
    /// `None` when the reference is empty.
    pub fn from_proto(r: Option<&jiesu_proto::v1::CaseRef>) -> Option<Self> {
        use jiesu_proto::v1::case_ref::Ref;
        match r?.r#ref.as_ref()? {
            Ref::CaseId(id) if !id.trim().is_empty() => Some(CaseKey::Id(id.trim().to_string())),
            Ref::CaseNo(no) if !no.trim().is_empty() => Some(CaseKey::No(no.trim().to_string())),
            _ => None,
        }
    }

    /// The column to match and the value: `case_id` or `case_no`.
    pub fn column_and_value(&self) -> (&'static str, &str) {
        match self {
            CaseKey::Id(v) => ("case_id", v),
            CaseKey::No(v) => ("case_no", v),
        }
    }

    /// A `tonic::Status` for a missing, empty or impossible reference (never echoing it back).
    pub fn required(r: Option<&jiesu_proto::v1::CaseRef>) -> Result<Self, tonic::Status> {
        let key = Self::from_proto(r).ok_or_else(|| tonic::Status::invalid_argument("a case_id or case_no is required"))?;
        let (column, value) = key.column_and_value();
        if value.chars().count() > Self::MAX_CHARS || value.chars().any(char::is_control) {
            return Err(tonic::Status::invalid_argument(format!(
                "{column} is not a case reference (at most {} printable characters)",
                Self::MAX_CHARS
            )));
        }
        Ok(key)
    }

    /// The longest case id or case number there is (a UUID is 36).
    pub const MAX_CHARS: usize = 64;

    /// `case_id "…"` or `case_no "…"`, for messages.
    pub fn describe(&self) -> String {
        let (column, value) = self.column_and_value();
        format!("{column} {value:?}")
    }

    /// NOT_FOUND for a case this service holds nothing of: the one answer of every lookup, so
    /// that an unknown case is never an empty success.
    pub fn not_found(&self, service: &str) -> tonic::Status {
        tonic::Status::not_found(format!(
            "{service} has nothing for the case with {} (not reached {service} yet, or unknown)",
            self.describe()
        ))
    }
}
