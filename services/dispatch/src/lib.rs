//! # jiesu-dispatch — 派单与办理
//!
//! The owner of the handling workflow. A classified case (`case.classified`) is routed through
//! the district's responsibility list (责任清单) to a lead unit and its assisting units
//! (`case.dispatched`), or to the centre's manual queue when no rule fits (`case.queued`). From
//! there every step is a gRPC action of [`api`], allowed or refused by the pure [`workflow`] and
//! announced with its `case.*` event: signing (签收), contacting (联系), verifying (核实), the
//! written response (答复), resolving (办结) or staged completion, returns (退回) and the centre's
//! ruling, manual dispatch and transfer, joint handling (多方联动), extensions (延期), escalation
//! (提级) and supervision (督办), unreasonable requests. The revisit's verdict closes the case
//! (结案) or reopens it for the same owner (重办); SLA alerts colour it, and a breach supervises
//! or escalates it. `docs/workflow.md` draws the whole of it.

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
use jiesu_reference::time::{Calendar, ResolveLimits};
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
    /// Working days after dispatch within which a unit may return a case (退回时限).
    #[serde(default = "two")]
    pub return_window_days: u32,
    /// Returns a case may have; after them only the centre moves it (no 转圈).
    #[serde(default = "two")]
    pub max_returns: u32,
    /// Reopenings (repeated complaints about the same case, 重复投诉) after which the case goes to
    /// the leader overseeing its unit (提级); 0: never by count.
    #[serde(default = "two")]
    pub escalate_after_reopens: u32,
}

fn centre() -> String {
    "centre".to_string()
}

fn two() -> u32 {
    2
}

/// `[sla_timer.policy.resolve]`, the one part of the SLA policy dispatch reads: the deadline in
/// force that an extension moves is the resolve clock's.
#[derive(Debug, Default, Deserialize)]
struct SlaSection {
    #[serde(default)]
    policy: PolicySection,
}

#[derive(Debug, Default, Deserialize)]
struct PolicySection {
    #[serde(default)]
    resolve: ResolveLimits,
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Reads and checks the organisation and the matrix: every problem at once.
fn load_routing(config: &Config) -> Result<(Matrix, Organisation), Error> {
    let org: Organisation = config
        .reference("organisation")?
        .ok_or_else(|| jiesu_kit::Error::Config("[reference] names no organisation file: dispatch routes cases to its units".into()))?;
    let matrix = Matrix { rules: config.settings.matrix.clone(), fallback_unit: config.settings.fallback_unit.trim().to_string() };
    let file = config.reference_file("organisation").map(|p| p.display().to_string()).unwrap_or_default();
    let mut problems: Vec<String> = org.problems().into_iter().map(|p| format!("organisation file {file}: {p}")).collect();
    problems.extend(matrix.problems(&org));
    if !problems.is_empty() {
        return Err(jiesu_kit::Error::Config(problems.join("; ")).into());
    }
    Ok((matrix, org))
}

/// Starts dispatch: its consumer of classification and revisit events and its gRPC API.
pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let (matrix, org) = load_routing(&config)?;
    let dispatch = Arc::new(Dispatch {
        matrix,
        org,
        rules: workflow::Rules { return_window_days: config.settings.return_window_days, max_returns: config.settings.max_returns },
        calendar: Calendar::from_reference(config.reference_text("calendar")?.as_deref())
            .map_err(|e| jiesu_kit::Error::Config(format!("reference file calendar: {e}")))?,
        limits: district.part::<SlaSection>("sla_timer")?.policy.resolve,
        timezone: config.timezone(),
        escalate_after_reopens: config.settings.escalate_after_reopens,
    });
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock.clone()).await?;
    host.consume(Arc::new(consume::Events { dispatch: dispatch.clone() }));
    let api = api::DispatchApi { dispatch, commands: host.commands(), db: host.db.clone(), clock };
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
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let r = domain::route(&matrix, &org, "01.03", &at("st-xinan"), day);
        assert_eq!(
            (r.lead.as_str(), r.assisting.clone()),
            ("st-xinan", vec!["dept-urban-management".to_string(), "cm-haibin".to_string()])
        );
        assert_eq!(domain::route(&matrix, &org, "01.03", &at("st-dongmen"), day).lead, "st-dongmen");
        assert_eq!(domain::route(&matrix, &org, "03.01", &at("st-dongmen"), day).lead, "dept-water");
        assert_eq!(domain::route(&matrix, &org, "07.01", &at("st-dongmen"), day).lead, "centre");
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
