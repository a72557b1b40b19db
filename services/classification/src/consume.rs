//! `case.received` → classify → `case.classified`.

use std::sync::Arc;

use jiesu_kit::{Handler, HandlerError, Incoming, Outgoing, Tx, time::to_millis};
use jiesu_proto::v1::{CaseClassified, CaseReceived, EventMeta};

use crate::{Classifier, store};

pub struct Received {
    pub classifier: Arc<Classifier>,
}

impl Handler for Received {
    async fn handle(&self, tx: &mut Tx, msg: &Incoming) -> Result<Vec<Outgoing>, HandlerError> {
        let received: CaseReceived = msg.decode()?;
        let meta = received.meta.clone().unwrap_or_default();
        if meta.case_id.is_empty() {
            return Err(HandlerError::Reject("case.received without a case_id".into()));
        }
        let c = &self.classifier;
        // The channel's own category (a mailbox form's 信件类型) is weaker evidence than the
        // title but better than nothing: read it as part of the description.
        let description = format!("{}\n{}", received.description, received.category_hint);
        let result = c.taxonomy.classify(&received.title, &description);
        let now = c.clock.now();
        let row = store::ClassificationRow {
            case_id: meta.case_id.clone(),
            case_no: meta.case_no.clone(),
            category: result.category.clone(),
            sub_item: result.sub_item.clone(),
            urgency: result.urgency.as_str().to_string(),
            confidence: f64::from(result.confidence),
            matched_keywords: serde_json::to_string(&result.matched).expect("json"),
            fallback: result.fallback,
            classified_at: to_millis(now),
        };
        if !store::record_classification(tx, &row).await? {
            // Classified before (a second case.received for the case): nothing new to say.
            return Ok(vec![]);
        }
        let view = c.view(&row);
        let event = CaseClassified {
            meta: Some(EventMeta {
                event_id: uuid::Uuid::now_v7().to_string(),
                case_id: meta.case_id.clone(),
                case_no: meta.case_no.clone(),
                occurred_at: Some(jiesu_kit::time::to_proto(now)),
                causation_id: meta.event_id.clone(),
                district: meta.district.clone(),
            }),
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
        };
        tracing::info!(case_id = %meta.case_id, sub_item = %row.sub_item, urgency = %row.urgency, "case classified");
        let id = event.meta.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
        Ok(vec![Outgoing::event(&c.subjects, "case.classified", id, &meta.case_id, &event)])
    }
}
