//! Classification's use cases (分类): the taxonomy, the classification of a received case, and
//! the view of a stored result.

use jiesu_kit::{CaseIds, Work, time::millis_to_proto};
use jiesu_proto::v1::{CaseClassified, CaseReceived, ClassificationCandidate, ClassificationView, InsightHotspot, TimelineEntry};
use jiesu_reference::Urgency;

use crate::{
    Error, SERVICE,
    domain::{ClassifierModel, HotspotRules, Taxonomy, request_type_zh},
    store,
};

/// The taxonomy, the trained model when there is one, and what the handlers share.
pub struct Classifier {
    pub taxonomy: Taxonomy,
    pub model: Option<ClassifierModel>,
    /// When a sub-item rising in one community is a hot spot (热点).
    pub hotspots: HotspotRules,
}

impl Classifier {
    /// The API view of a stored result, names looked up in the taxonomy.
    pub fn view(&self, row: &store::ClassificationRow) -> ClassificationView {
        let category_name = self.taxonomy.category(&row.category).map(|c| c.name.clone()).unwrap_or_default();
        let sub_item_name = self.taxonomy.sub_item(&row.sub_item).map(|s| s.name.clone()).unwrap_or_default();
        let urgency = Urgency::from_key(&row.urgency);
        let matched: Vec<String> = serde_json::from_str(&row.matched_keywords).unwrap_or_default();
        let candidates: Vec<(String, f32)> = serde_json::from_str(&row.candidates).unwrap_or_default();
        let detail = if row.fallback {
            format!("未能自动识别，归入“{sub_item_name}”，待人工复核")
        } else if !row.model_version.is_empty() {
            format!(
                "分类为“{category_name} / {sub_item_name}”（置信度{:.0}%），紧急程度：{}，诉求类型：{}（依据：{}）",
                row.confidence * 100.0,
                urgency.name_zh(),
                request_type_zh(&row.request_type),
                matched.join("、")
            )
        } else {
            format!("分类为“{category_name} / {sub_item_name}”，紧急程度：{}（命中：{}）", urgency.name_zh(), matched.join("、"))
        };
        ClassificationView {
            case_id: row.case_id.clone(),
            category: row.category.clone(),
            category_name,
            sub_item: row.sub_item.clone(),
            sub_item_name,
            urgency: urgency.to_proto() as i32,
            confidence: row.confidence as f32,
            matched_keywords: matched,
            fallback: row.fallback,
            request_type: row.request_type.clone(),
            model_version: row.model_version.clone(),
            candidates: candidates
                .into_iter()
                .map(|(code, probability)| ClassificationCandidate {
                    sub_item_name: self.taxonomy.sub_item(&code).map(|s| s.name.clone()).unwrap_or_default(),
                    sub_item: code,
                    probability,
                })
                .collect(),
            timeline: vec![TimelineEntry {
                at: Some(millis_to_proto(row.classified_at)),
                service: SERVICE.into(),
                event: "classified".into(),
                detail,
                actor: String::new(),
            }],
        }
    }
}

impl Classifier {
    /// Decides the classification of a text (no case, no time yet): by the model when there is
    /// one, else by the keyword rules.
    pub fn decide(&self, title: &str, description: &str) -> store::ClassificationRow {
        match &self.model {
            Some(model) => {
                let text = format!("{title}\n{description}");
                let d = model.classify(&self.taxonomy, &text);
                let best = d
                    .candidates
                    .first()
                    .cloned()
                    .unwrap_or(crate::domain::Candidate { sub_item: self.taxonomy.fallback().code.clone(), probability: 0.0 });
                let category = self.taxonomy.category_of(&best.sub_item).map(|c| c.code.clone()).unwrap_or_default();
                let because: Vec<String> = d.emergency_because.iter().chain(&d.reason).cloned().collect();
                let candidates: Vec<(String, f32)> = d.candidates.iter().map(|c| (c.sub_item.clone(), c.probability)).collect();
                store::ClassificationRow {
                    case_id: String::new(),
                    case_no: String::new(),
                    category,
                    sub_item: best.sub_item,
                    urgency: d.urgency.key().to_string(),
                    confidence: f64::from(best.probability),
                    matched_keywords: serde_json::to_string(&because).expect("json"),
                    fallback: false,
                    classified_at: 0,
                    model_version: d.model_version,
                    request_type: d.request_type,
                    candidates: serde_json::to_string(&candidates).expect("json"),
                }
            }
            None => {
                let result = self.taxonomy.classify(title, description);
                store::ClassificationRow {
                    case_id: String::new(),
                    case_no: String::new(),
                    category: result.category.clone(),
                    sub_item: result.sub_item.clone(),
                    urgency: result.urgency.key().to_string(),
                    confidence: f64::from(result.confidence),
                    matched_keywords: serde_json::to_string(&result.matched).expect("json"),
                    fallback: result.fallback,
                    classified_at: 0,
                    model_version: String::new(),
                    request_type: String::new(),
                    candidates: "[]".into(),
                }
            }
        }
    }

    /// 分类: `case.received` → classify → `case.classified`.
    pub async fn classify_received(&self, work: &mut Work<'_>, received: &CaseReceived) -> Result<(), Error> {
        let meta = received.meta.clone().unwrap_or_default();
        let c = self;
        // The channel's own category (a mailbox form's 信件类型) is weaker evidence than the
        // title but better than nothing: read it as part of the description.
        let description = format!("{}\n{}", received.description, received.category_hint);
        let row = store::ClassificationRow {
            case_id: meta.case_id.clone(),
            case_no: meta.case_no.clone(),
            classified_at: work.now_millis(),
            ..c.decide(&received.title, &description)
        };
        if !store::record_classification(work.tx, &row).await? {
            // Classified before (a second case.received for the case): nothing new to say.
            return Ok(());
        }
        let view = c.view(&row);
        let event = CaseClassified {
            meta: None,
            category: view.category,
            category_name: view.category_name,
            sub_item: view.sub_item,
            sub_item_name: view.sub_item_name,
            urgency: view.urgency,
            confidence: view.confidence,
            matched_keywords: view.matched_keywords,
            fallback: view.fallback,
            title: received.title.clone(),
            location: received.location.clone(),
            request_type: view.request_type,
            model_version: view.model_version,
        };
        tracing::info!(case_id = %meta.case_id, sub_item = %row.sub_item, urgency = %row.urgency,
            confidence = row.confidence, model = %row.model_version, "case classified");
        work.emit(CaseIds { case_id: &meta.case_id, case_no: &meta.case_no }, event);
        if let Some(place) = received.location.as_ref().filter(|l| !l.community.trim().is_empty()) {
            self.watch_hotspot(work, &row, &place.street, &place.community).await?;
        }
        Ok(())
    }

    /// 未诉先办: counts the case where it happened and raises a hot spot when its sub-item rises
    /// there beyond the place's own baseline — once per window.
    async fn watch_hotspot(&self, work: &mut Work<'_>, row: &store::ClassificationRow, street: &str, community: &str) -> Result<(), Error> {
        let now = row.classified_at;
        if !store::record_area_case(work.tx, &row.case_id, &row.sub_item, street, community, now).await? {
            return Ok(());
        }
        let window = self.hotspots.window_ms();
        let start = now - window;
        let recent = store::area_cases(work.tx, &row.sub_item, community, start, now + 1).await?;
        let before_from = start - window * i64::from(self.hotspots.baseline_windows);
        let before = store::count_area_cases(work.tx, &row.sub_item, community, before_from, start).await?;
        let count = u32::try_from(recent.len()).unwrap_or(u32::MAX);
        let Some(baseline) = self.hotspots.hot(count, u32::try_from(before).unwrap_or(u32::MAX)) else { return Ok(()) };
        if store::raised_since(work.tx, &row.sub_item, community, start).await? {
            return Ok(()); // raised already in this window
        }
        let case_ids: Vec<String> = recent.into_iter().take(100).collect();
        let hotspot = store::HotspotRow {
            hotspot_id: uuid::Uuid::now_v7().to_string(),
            sub_item: row.sub_item.clone(),
            street: street.to_string(),
            community: community.to_string(),
            count: i64::from(count),
            baseline,
            window_start: start,
            raised_at: now,
            case_ids: serde_json::to_string(&case_ids).expect("json"),
        };
        store::insert_hotspot(work.tx, &hotspot).await?;
        tracing::info!(sub_item = %row.sub_item, community, count, baseline, "hot spot raised");
        let event = self.hotspot_view(&hotspot);
        work.emit(CaseIds { case_id: &row.case_id, case_no: &row.case_no }, event);
        Ok(())
    }

    /// A stored hot spot as the event and the API show it.
    pub fn hotspot_view(&self, h: &store::HotspotRow) -> InsightHotspot {
        InsightHotspot {
            meta: None,
            hotspot_id: h.hotspot_id.clone(),
            sub_item: h.sub_item.clone(),
            sub_item_name: self.taxonomy.sub_item(&h.sub_item).map(|s| s.name.clone()).unwrap_or_default(),
            street: h.street.clone(),
            community: h.community.clone(),
            count: u32::try_from(h.count).unwrap_or(0),
            baseline: h.baseline,
            window_start: Some(millis_to_proto(h.window_start)),
            raised_at: Some(millis_to_proto(h.raised_at)),
            case_ids: serde_json::from_str(&h.case_ids).unwrap_or_default(),
        }
    }
}
