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
//! | [`outbox`] | events written in the handler's transaction, published by a relay afterwards |
//! | [`consumer`] | durable pull consumers with an inbox (exactly-once effects), back-off, dead letters |
//! | [`telemetry`] | `tracing`, OTLP export, W3C context through NATS headers and gRPC metadata |
//! | [`server`] | gRPC with health and reflection; the admin port with `/healthz`, `/readyz`, `/metrics` |
//! | [`host`] | starts all of the above for a service and stops it cleanly |
//! | [`testing`] | a real `nats-server` on a free port, for tests |

pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
mod error;
pub mod host;
pub mod messaging;
pub mod metrics;
pub mod outbox;
pub mod server;
pub mod telemetry;
pub mod testing;
pub mod time;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{DistrictConfig, ServiceConfig};
pub use consumer::{Handler, HandlerError, Incoming};
pub use db::{Db, Tx};
pub use error::Error;
pub use host::{Host, Running};
pub use messaging::Subjects;
pub use outbox::Outgoing;
