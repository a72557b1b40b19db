//! # jiesu-dispatch — 派单与办理
//!
//! The owner of the handling loop. A classified case (`case.classified`) is routed through the
//! district's responsibility matrix (职责清单) to a lead unit and its assisting units and
//! announced with `case.dispatched`. The unit signs for it (签收, gRPC `Accept` →
//! `case.accepted`) and resolves it with its reply to the citizen (办结, `Resolve` →
//! `case.resolved`). The revisit's verdict either closes the case (`revisit.recorded`,
//! satisfied and solved → `case.closed`, 结案) or reopens it (`case.reopened`): the same unit
//! keeps it for the next round (首问首办).

pub mod api;
pub mod consume;
pub mod domain;
mod error;
pub mod policy;
pub mod service;
pub mod store;
pub mod workflow;

use std::sync::Arc;

use jiesu_kit::{
    DistrictConfig,
    clock::SharedClock,
    host::{Host, Running},
};
use serde::Deserialize;

use crate::domain::{Matrix, Organisation, Rule};
pub use error::Error;
pub use service::Dispatch;

/// The service's name: its config section, durable consumer and database.
pub const SERVICE: &str = "dispatch";

/// `[dispatch]` of the district file.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Where a case goes when no rule of the matrix fits (the centre triages it by hand).
    #[serde(default = "centre")]
    pub fallback_unit: String,
    /// The responsibility matrix (职责清单): `[[dispatch.matrix]]` rules.
    #[serde(default)]
    pub matrix: Vec<Rule>,
}

fn centre() -> String {
    "centre".to_string()
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Reads and checks the organisation and the matrix: every problem at once.
fn load_routing(config: &Config) -> Result<(Matrix, Organisation), Error> {
    let org: Organisation = config
        .reference("organisation")?
        .ok_or_else(|| jiesu_kit::Error::Config("[reference] names no organisation file: dispatch routes cases to its units".into()))?;
    let matrix = Matrix { rules: config.settings.matrix.clone(), fallback_unit: config.settings.fallback_unit.trim().to_string() };
    let problems = matrix.problems(&org);
    if !problems.is_empty() {
        return Err(jiesu_kit::Error::Config(problems.join("; ")).into());
    }
    Ok((matrix, org))
}

/// Starts dispatch: its consumer of classification and revisit events and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let (matrix, org) = load_routing(&config)?;
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    let dispatch = Arc::new(Dispatch { matrix, org });
    host.consume(Arc::new(consume::Events { dispatch: dispatch.clone() }));
    let api = api::DispatchApi { dispatch, commands: host.commands(), db: host.db.clone() };
    Ok(host.serve(jiesu_proto::v1::dispatch_service_server::DispatchServiceServer::new(api))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> DistrictConfig {
        DistrictConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml")).unwrap()
    }

    #[test]
    fn the_demo_district_routes() {
        let config: Config = demo().service(SERVICE).unwrap();
        let (matrix, org) = load_routing(&config).unwrap();
        assert_eq!(matrix.fallback_unit, "centre");
        let at = |street: &str| domain::Place { street: street.into(), community: String::new() };
        let r = domain::route(&matrix, &org, "01.03", &at("st-xinan"));
        assert_eq!(
            (r.lead.as_str(), r.assisting.clone()),
            ("st-xinan", vec!["dept-urban-management".to_string(), "cm-haibin".to_string()])
        );
        assert_eq!(domain::route(&matrix, &org, "01.03", &at("st-dongmen")).lead, "st-dongmen");
        assert_eq!(domain::route(&matrix, &org, "03.01", &at("st-dongmen")).lead, "dept-water");
        assert_eq!(domain::route(&matrix, &org, "07.01", &at("st-dongmen")).lead, "centre");
    }

    #[test]
    fn a_bad_matrix_stops_the_start_with_every_problem() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml");
        let mut text = std::fs::read_to_string(path).unwrap();
        // An array-of-tables entry may come anywhere in the file: this one joins the matrix.
        text.push_str("\n[[dispatch.matrix]]\nsub_item = \"05\"\nstreet = \"st-nowhere\"\nlead = \"dept-ghost\"\n");
        let mut d = DistrictConfig::parse(&text, std::path::Path::new(path).parent().unwrap()).unwrap();
        d.set("dispatch.fallback_unit", "nobody");
        let config: Config = d.service(SERVICE).unwrap();
        let err = load_routing(&config).unwrap_err().to_string();
        assert!(err.contains("fallback_unit \"nobody\""), "{err}");
        assert!(err.contains("street must be"), "{err}");
        assert!(err.contains("lead \"dept-ghost\""), "{err}");
    }
}
