//! # jiesu-classification — 分类
//!
//! Reads each received case and decides its category and sub-item in the district's taxonomy
//! (分类体系; Jiesu's default: 10 categories, 22 sub-items) and its urgency (紧急/一般/复杂),
//! by keyword rules, then emits `case.classified` for dispatch. Cases nothing matches go to the
//! fallback sub-item, flagged for a clerk's review.

pub mod api;
pub mod consume;
pub mod domain;
mod error;
pub mod service;
pub mod store;

use std::sync::Arc;

use jiesu_kit::{
    DistrictConfig,
    clock::SharedClock,
    host::{Host, Running},
};
use serde::Deserialize;

use domain::Taxonomy;
pub use error::Error;
pub use service::Classifier;

pub const SERVICE: &str = "classification";

/// `[classification]`: nothing beyond the common keys yet; the taxonomy is reference data
/// (`[reference] taxonomy = "taxonomy.toml"`, else the built-in default).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Loads the district's taxonomy (validated: every problem reported), else the default.
pub fn load_taxonomy(config: &Config) -> Result<Taxonomy, Error> {
    match config.reference_text("taxonomy")? {
        Some(text) => Ok(Taxonomy::parse(&text)?),
        None => Ok(Taxonomy::default_taxonomy()),
    }
}

pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let taxonomy = load_taxonomy(&config)?;
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    let classifier = Arc::new(Classifier { taxonomy });
    host.consume(Arc::new(consume::Events { classifier: classifier.clone() }));
    let api = api::ClassificationApi { classifier, db: host.db.clone() };
    Ok(host.serve(jiesu_proto::v1::classification_service_server::ClassificationServiceServer::new(api))?)
}
