//! # jiesu-classification — 分类
//!
//! Reads each received case and decides its category and sub-item in the district's taxonomy
//! (分类体系; Jiesu's default: 10 categories, 22 sub-items), its urgency (紧急/一般/复杂) and the
//! kind of request (咨询/求助/投诉/举报/建议) with a trained model ([`domain::ClassifierModel`],
//! emergencies by rule), then emits `case.classified` for dispatch with the model's version.
//! Without a model for the district's taxonomy it falls back to keyword rules, and says so.

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

use domain::{ClassifierModel, Taxonomy};
pub use error::Error;
pub use service::Classifier;

pub const SERVICE: &str = "classification";

/// `[classification]`: the hot-spot rules; the taxonomy and the model are reference data
/// (`[reference] taxonomy = "taxonomy.toml"`, `classifier_model = "…"`, else the built-in ones).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `[classification.hotspots]`: when a sub-item rising in one community is a hot spot (热点).
    pub hotspots: domain::HotspotRules,
    /// `[classification.review]`: when a doubtful case waits for a person (待人工复核).
    pub review: domain::ReviewRules,
    /// `[classification.repeats]`: how far back a repeat (重复诉求) is looked for.
    pub repeats: domain::RepeatRules,
}

impl Settings {
    /// Every problem with the settings, naming the key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.hotspots.problems();
        p.extend(self.review.problems());
        p.extend(self.repeats.problems());
        p
    }
}

pub type Config = jiesu_kit::ServiceConfig<Settings>;

/// Loads the district's taxonomy (validated: every problem reported), else the default.
pub fn load_taxonomy(config: &Config) -> Result<Taxonomy, Error> {
    match config.reference_text("taxonomy")? {
        Some(text) => Ok(Taxonomy::parse(&text)?),
        None => Ok(Taxonomy::default_taxonomy()),
    }
}

/// The model trained on the default taxonomy and the project's labelled requests
/// (`jiesu-classifier train`), for districts that keep the default taxonomy.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../model/classifier.bin");

/// The district's model (`[reference] classifier_model = "…"`), else the built-in one if it was
/// trained for the district's taxonomy, else none: the keyword rules decide, and a warning says so.
pub fn load_model(config: &Config, taxonomy: &Taxonomy) -> Result<Option<ClassifierModel>, Error> {
    if let Some(path) = config.reference_file("classifier_model") {
        let bytes = std::fs::read(&path).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let model = ClassifierModel::from_bytes(&bytes).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        model.fits(taxonomy).map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        return Ok(Some(model));
    }
    let model = ClassifierModel::from_bytes(DEFAULT_MODEL).map_err(Error::Model)?;
    match model.fits(taxonomy) {
        Ok(()) => Ok(Some(model)),
        Err(why) => {
            tracing::warn!(
                "the built-in classifier model does not fit the district's taxonomy ({why}): classifying by keyword rules; \
                 train one with `jiesu-classifier train --taxonomy …` and set [reference] classifier_model"
            );
            Ok(None)
        }
    }
}

pub async fn start(district: &DistrictConfig, clock: SharedClock) -> Result<Running, Error> {
    let config: Config = district.service(SERVICE)?;
    let problems = config.settings.problems();
    if !problems.is_empty() {
        return Err(Error::Settings(format!("[classification]: {}", problems.join("; "))));
    }
    let taxonomy = load_taxonomy(&config)?;
    let model = load_model(&config, &taxonomy)?;
    if let Some(m) = &model {
        tracing::info!(model = %m.version, trained_on = m.trained_on, "classifier model loaded");
    }
    let mut host = Host::start(&config, &jiesu_kit::migrations!(), clock).await?;
    let s = &config.settings;
    let metrics = service::Outcomes::default();
    metrics.register(&host.metrics);
    let classifier = Arc::new(Classifier {
        taxonomy,
        model,
        hotspots: s.hotspots.clone(),
        review: s.review.clone(),
        repeats: s.repeats.clone(),
        metrics,
    });
    host.consume(Arc::new(consume::Events { classifier: classifier.clone() }));
    let api = api::ClassificationApi { classifier, db: host.db.clone(), clock: host.clock.clone(), commands: host.commands() };
    Ok(host.serve(jiesu_proto::v1::classification_service_server::ClassificationServiceServer::new(api))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Urgency;

    /// The built-in model, on requests phrased in ways the labelled set does not use.
    #[test]
    fn the_built_in_model_decides_sub_item_urgency_and_kind() {
        let taxonomy = Taxonomy::default_taxonomy();
        let model = ClassifierModel::from_bytes(DEFAULT_MODEL).unwrap();
        model.fits(&taxonomy).unwrap();
        let cases = [
            ("我们楼门口老有人乱挺车，消防通道都给堵死了", "01.03", Urgency::Normal),
            ("想问下咱们这片明天是不是要停水，停到几点", "03.01", Urgency::Normal),
            ("楼道里一股臭鸡蛋味，熏得人头疼，是不是哪家漏了", "03.03", Urgency::Emergency),
            ("万一着火了，这楼道里堆的杂物人都跑不出去", "09.01", Urgency::Normal),
            ("包工头拖了我们三个月工钱，人都找不着了", "06.01", Urgency::Normal),
        ];
        for (text, sub_item, urgency) in cases {
            let d = model.classify(&taxonomy, text);
            assert_eq!((d.candidates[0].sub_item.as_str(), d.urgency), (sub_item, urgency), "{text}: {d:?}");
            assert_eq!(d.candidates.len(), 3);
            assert!(d.candidates.windows(2).all(|w| w[0].probability >= w[1].probability));
            assert!(!d.reason.is_empty() && d.reason.iter().all(|r| r.chars().count() >= 2), "{text}: {:?}", d.reason);
            assert_eq!(d.model_version, model.version);
        }
        let d = model.classify(&taxonomy, "想问下咱们这片明天是不是要停水，停到几点");
        assert_eq!(d.request_type, "consultation", "{d:?}");
    }
}
