//! # jiesu-classification — 分类
//!
//! Reads each received case and decides its category and sub-item in the district's taxonomy
//! (分类体系; Jiesu's default: 10 categories, 22 sub-items) and its urgency (紧急/一般/复杂),
//! by keyword rules, then emits `case.classified` for dispatch. Cases nothing matches go to the
//! fallback sub-item, flagged for a clerk's review.

pub mod api;
pub mod consume;
pub mod domain;
pub mod store;

use std::sync::Arc;

use jiesu_kit::{DistrictConfig, Subjects, clock::SharedClock, db::Migrations, host::{Host, Running}, time::millis_to_proto};
use jiesu_proto::v1::{ClassificationView, TimelineEntry, Urgency as ProtoUrgency};
use serde::Deserialize;

use domain::{Taxonomy, Urgency};

pub const SERVICE: &str = "classification";

/// `[classification]`: nothing beyond the common keys yet; the taxonomy is reference data
/// (`[reference] taxonomy = "taxonomy.toml"`, else the built-in default).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the taxonomy is not valid: {0}")]
    Taxonomy(#[from] domain::DomainError),
}

impl From<Error> for jiesu_kit::HandlerError {
    fn from(e: Error) -> Self {
        jiesu_kit::HandlerError::Retry(e.to_string())
    }
}

/// The taxonomy and what the handlers share.
pub struct Classifier {
    pub taxonomy: Taxonomy,
    pub subjects: Subjects,
    pub clock: SharedClock,
}

impl Classifier {
    /// The API view of a stored result, names looked up in the taxonomy.
    pub fn view(&self, row: &store::ClassificationRow) -> ClassificationView {
        let category_name = self.taxonomy.category(&row.category).map(|c| c.name.clone()).unwrap_or_default();
        let sub_item_name = self.taxonomy.sub_item(&row.sub_item).map(|s| s.name.clone()).unwrap_or_default();
        let urgency: Urgency = row.urgency.parse().unwrap_or(Urgency::Normal);
        let matched: Vec<String> = serde_json::from_str(&row.matched_keywords).unwrap_or_default();
        let detail = if row.fallback {
            format!("未能自动识别，归入“{sub_item_name}”，待人工复核")
        } else {
            format!(
                "分类为“{category_name} / {sub_item_name}”，紧急程度：{}（命中：{}）",
                urgency.label_zh(),
                matched.join("、")
            )
        };
        ClassificationView {
            case_id: row.case_id.clone(),
            category: row.category.clone(),
            category_name,
            sub_item: row.sub_item.clone(),
            sub_item_name,
            urgency: proto_urgency(urgency) as i32,
            confidence: row.confidence as f32,
            matched_keywords: matched,
            fallback: row.fallback,
            timeline: vec![TimelineEntry {
                at: Some(millis_to_proto(row.classified_at)),
                service: SERVICE.into(),
                event: "classified".into(),
                detail,
            }],
        }
    }
}

pub fn proto_urgency(u: Urgency) -> ProtoUrgency {
    match u {
        Urgency::Emergency => ProtoUrgency::Emergency,
        Urgency::Normal => ProtoUrgency::Normal,
        Urgency::Complex => ProtoUrgency::Complex,
    }
}

fn migrations() -> Migrations {
    Migrations { sqlite: sqlx::migrate!("migrations/sqlite"), postgres: sqlx::migrate!("migrations/postgres") }
}

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
    let mut host = Host::start(&config, &migrations(), clock.clone()).await?;
    let classifier = Arc::new(Classifier { taxonomy, subjects: host.broker.subjects.clone(), clock });
    host.consume_events(SERVICE, &["case.received"], Arc::new(consume::Received { classifier: classifier.clone() }));
    let api = api::ClassificationApi { classifier, db: host.db.clone() };
    let routes = tonic::service::Routes::new(
        jiesu_proto::v1::classification_service_server::ClassificationServiceServer::new(api),
    );
    Ok(host.serve(routes, vec!["jiesu.v1.ClassificationService"])?)
}

pub async fn run(district: DistrictConfig) -> Result<(), Error> {
    let running = start(&district, Arc::new(jiesu_kit::SystemClock)).await?;
    Ok(running.until_stopped().await?)
}
