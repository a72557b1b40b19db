//! Classification's use cases (分类): the taxonomy, the classification of a received case, and
//! the view of a stored result.

use jiesu_kit::{CaseIds, Work, time::millis_to_proto};
use jiesu_proto::v1::{CaseClassified, CaseReceived, ClassificationView, TimelineEntry};
use jiesu_reference::Urgency;

use crate::{Error, SERVICE, domain::Taxonomy, store};

/// The taxonomy and what the handlers share.
pub struct Classifier {
    pub taxonomy: Taxonomy,
}

impl Classifier {
    /// The API view of a stored result, names looked up in the taxonomy.
    pub fn view(&self, row: &store::ClassificationRow) -> ClassificationView {
        let category_name = self.taxonomy.category(&row.category).map(|c| c.name.clone()).unwrap_or_default();
        let sub_item_name = self.taxonomy.sub_item(&row.sub_item).map(|s| s.name.clone()).unwrap_or_default();
        let urgency = Urgency::from_key(&row.urgency);
        let matched: Vec<String> = serde_json::from_str(&row.matched_keywords).unwrap_or_default();
        let detail = if row.fallback {
            format!("未能自动识别，归入“{sub_item_name}”，待人工复核")
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
    /// 分类: `case.received` → classify → `case.classified`.
    pub async fn classify_received(&self, work: &mut Work<'_>, received: &CaseReceived) -> Result<(), Error> {
        let meta = received.meta.clone().unwrap_or_default();
        let c = self;
        // The channel's own category (a mailbox form's 信件类型) is weaker evidence than the
        // title but better than nothing: read it as part of the description.
        let description = format!("{}\n{}", received.description, received.category_hint);
        let result = c.taxonomy.classify(&received.title, &description);
        let row = store::ClassificationRow {
            case_id: meta.case_id.clone(),
            case_no: meta.case_no.clone(),
            category: result.category.clone(),
            sub_item: result.sub_item.clone(),
            urgency: result.urgency.key().to_string(),
            confidence: f64::from(result.confidence),
            matched_keywords: serde_json::to_string(&result.matched).expect("json"),
            fallback: result.fallback,
            classified_at: work.now_millis(),
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
            // The keyword classifier does not tell the kind of request: not decided.
            request_type: String::new(),
        };
        tracing::info!(case_id = %meta.case_id, sub_item = %row.sub_item, urgency = %row.urgency, "case classified");
        work.emit(CaseIds { case_id: &meta.case_id, case_no: &meta.case_no }, event);
        Ok(())
    }
}
