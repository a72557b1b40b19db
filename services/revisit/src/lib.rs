//! # jiesu-revisit — 回访
//!
//! Every resolved case is called back. `case.resolved` opens a revisit task for the case's
//! round (待回访); the revisit clerk records the citizen's answer with gRPC `Record` (回访登记),
//! which emits `revisit.recorded` and — when the citizen is dissatisfied or the problem is not
//! solved — `case.reopened`, sending the case back to the same unit for another round
//! (重新交办). Satisfied and solved, dispatch closes the case on `revisit.recorded`.

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

pub use error::Error;
pub use service::Revisit;

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "revisit";

/// `[revisit]` of the district file: nothing of its own yet beyond the common keys.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Starts revisit: its consumer of `case.resolved` and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    let revisit = Arc::new(Revisit);
    host.consume(Arc::new(consume::Events { revisit: revisit.clone() }));
    let api = api::RevisitApi { revisit, commands: host.commands(), db: host.db.clone() };
    Ok(host.serve(jiesu_proto::v1::revisit_service_server::RevisitServiceServer::new(api))?)
}
