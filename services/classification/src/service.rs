//! Classification's use cases (分类): the classification of a received case; a doubtful one held
//! for a person (待人工复核) and released by their decision; a decided case linked to the cases
//! it repeats (重复诉求), merged when it is a duplicate, counted for hot spots (热点) and sent
//! on to dispatch; the view of a stored result.

use jiesu_kit::{CaseIds, Work, time::millis_to_proto};
use jiesu_proto::v1::{
    CaseClassified, CaseMerged, CaseReceived, CaseRepeatDetected, CaseReviewRequested, CaseReviewed, ClassificationCandidate,
    ClassificationView, InsightHotspot, TimelineEntry,
};
use jiesu_reference::Urgency;

use crate::{
    Error, SERVICE,
    domain::{self, ClassifierModel, Doubt, HotspotRules, RepeatRules, ReviewRules, Taxonomy, request_type_zh},
    store::{self, Place, Spot, review},
};

/// The taxonomy, the trained model when there is one, and the district's rules.
pub struct Classifier {
    pub taxonomy: Taxonomy,
    pub model: Option<ClassifierModel>,
    /// When a sub-item rising in one community is a hot spot (热点).
    pub hotspots: HotspotRules,
    /// When a case waits for a person (待人工复核).
    pub review: ReviewRules,
    /// When a case repeats an earlier one (重复诉求).
    pub repeats: RepeatRules,
    pub metrics: Outcomes,
}

/// `jiesu_classification_outcomes_total{outcome}`: what became of the cases classified —
/// `classified`, `review_requested`, `confirmed`, `reclassified`, `repeat`, `duplicate`,
/// `hotspot`. Counted when decided; a transaction retried after a failure may count twice.
#[derive(Clone, Default)]
pub struct Outcomes(
    prometheus_client::metrics::family::Family<Vec<(&'static str, &'static str)>, prometheus_client::metrics::counter::Counter>,
);

impl Outcomes {
    pub fn register(&self, metrics: &jiesu_kit::metrics::Metrics) {
        metrics.register("classification_outcomes", "What became of the cases classified, by outcome", self.0.clone());
    }

    fn count(&self, outcome: &'static str) {
        self.0.get_or_create(&vec![("outcome", outcome)]).inc();
    }
}

/// What classification keeps of a received case to send it on: the request and where, and the
/// citizen only as the keyed hash of their phone.
#[derive(Debug, Clone)]
pub struct Request {
    pub case_id: String,
    pub case_no: String,
    pub channel: String,
    pub title: String,
    /// What the model read: the description and the channel's category hint.
    pub description: String,
    pub place: Place,
    pub citizen_key: String,
}

impl Request {
    pub fn received(e: &CaseReceived) -> Request {
        let meta = e.meta.clone().unwrap_or_default();
        // The channel's own category (a mailbox form's 信件类型) is weaker evidence than the
        // title but better than nothing: read it as part of the description.
        let description = match e.category_hint.trim() {
            "" => e.description.clone(),
            hint => format!("{}\n{hint}", e.description),
        };
        Request {
            case_id: meta.case_id,
            case_no: meta.case_no,
            channel: e.channel.clone(),
            title: e.title.clone(),
            description,
            place: Place::of(e.location.as_ref()),
            citizen_key: e.citizen_key.clone(),
        }
    }

    fn waiting(r: &store::ReviewRow) -> Request {
        Request {
            case_id: r.case_id.clone(),
            case_no: r.case_no.clone(),
            channel: r.channel.clone(),
            title: r.title.clone(),
            description: r.description.clone(),
            place: r.place(),
            citizen_key: r.citizen_key.clone(),
        }
    }

    fn ids(&self) -> CaseIds<'_> {
        CaseIds { case_id: &self.case_id, case_no: &self.case_no }
    }
}

/// A person's decision on a waiting case (确认 or 改判).
#[derive(Debug, Clone)]
pub struct Verdict {
    pub sub_item: String,
    pub urgency: Urgency,
    pub request_type: String,
    pub corrected: bool,
    pub reviewer_subject: String,
    pub reviewer_name: String,
    pub note: String,
}

impl Classifier {
    /// The API view of a stored result, names looked up in the taxonomy.
    pub fn view(&self, row: &store::ClassificationRow) -> ClassificationView {
        self.view_with(row, None, None)
    }

    /// The view with what happened since the decision: a person's review, and the repeat chain.
    pub fn view_with(
        &self,
        row: &store::ClassificationRow,
        correction: Option<&store::CorrectionRow>,
        mark: Option<&store::MarkRow>,
    ) -> ClassificationView {
        let category_name = self.taxonomy.category(&row.category).map(|c| c.name.clone()).unwrap_or_default();
        let sub_item_name = self.taxonomy.sub_item(&row.sub_item).map(|s| s.name.clone()).unwrap_or_default();
        let urgency = Urgency::from_key(&row.urgency);
        let matched: Vec<String> = serde_json::from_str(&row.matched_keywords).unwrap_or_default();
        let candidates = row.candidates();
        let detail = if let Some(c) = correction {
            // What the model first said; the person's decision follows in the timeline.
            format!(
                "模型初判为“{}”（置信度{:.0}%），把握不足，转人工复核",
                self.sub_item_name(&c.model_sub_item),
                c.model_confidence * 100.0
            )
        } else if row.fallback {
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
        let mut timeline = vec![TimelineEntry {
            at: Some(millis_to_proto(row.classified_at)),
            service: SERVICE.into(),
            event: "classified".into(),
            detail,
            actor: String::new(),
        }];
        if let Some(c) = correction {
            let decided = self.taxonomy.sub_item(&c.sub_item).map(|s| s.name.as_str()).unwrap_or_default();
            let detail = match (c.corrected, c.note.trim()) {
                (false, "") => format!("人工复核：确认“{decided}”"),
                (false, note) => format!("人工复核：确认“{decided}”（{note}）"),
                (true, "") => format!("人工复核：改判为“{decided}”"),
                (true, note) => format!("人工复核：改判为“{decided}”（{note}）"),
            };
            let event = if c.corrected { "reclassified" } else { "confirmed" };
            timeline.push(TimelineEntry {
                at: Some(millis_to_proto(c.decided_at)),
                service: SERVICE.into(),
                event: event.into(),
                detail,
                actor: c.reviewer_name.clone(),
            });
        } else if row.review == review::WAITING {
            timeline.push(TimelineEntry {
                at: Some(millis_to_proto(row.classified_at)),
                service: SERVICE.into(),
                event: "review_requested".into(),
                detail: "待人工复核：分类把握不足，确认或改判后派单".into(),
                actor: String::new(),
            });
        }
        let (mut repeat_of_case_no, mut repeat_count) = (String::new(), 0);
        if let Some(m) = mark {
            let entry = if !m.duplicate_of.is_empty() {
                Some(("merged", format!("与{}重复提交，已合并，不再单独派单", m.duplicate_of)))
            } else if m.chain > 1 {
                Some(("repeat_detected", format!("重复诉求：第{}次反映，首次为{}", m.chain, m.first_case_no)))
            } else {
                None
            };
            if let Some((event, detail)) = entry {
                repeat_of_case_no = m.first_case_no.clone();
                repeat_count = u32::try_from(m.chain).unwrap_or(0);
                timeline.push(TimelineEntry {
                    at: Some(millis_to_proto(m.at_ms)),
                    service: SERVICE.into(),
                    event: event.into(),
                    detail,
                    actor: String::new(),
                });
            }
        }
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
            timeline,
            review: row.review.clone(),
            repeat_of_case_no,
            repeat_count,
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
                    review: String::new(),
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
                    review: String::new(),
                }
            }
        }
    }

    /// 分类: `case.received` → classify → `case.classified`, or the review queue when in doubt.
    pub async fn classify_received(&self, work: &mut Work<'_>, received: &CaseReceived) -> Result<(), Error> {
        let request = Request::received(received);
        let mut row = store::ClassificationRow {
            case_id: request.case_id.clone(),
            case_no: request.case_no.clone(),
            classified_at: work.now_millis(),
            ..self.decide(&request.title, &request.description)
        };
        let runner_up = row.candidates().into_iter().nth(1);
        let doubt =
            self.review.doubt(Urgency::from_key(&row.urgency), row.confidence as f32, runner_up.as_ref().map(|r| r.1), row.fallback);
        if doubt.is_some() {
            row.review = review::WAITING.into();
        }
        if !store::record_classification(work.tx, &row).await? {
            // Classified before (a second case.received for the case): nothing new to say.
            return Ok(());
        }
        match doubt {
            Some(doubt) => self.hold(work, &row, &request, doubt, runner_up.map(|r| r.0)).await,
            None => self.send_on(work, &row, &request).await,
        }
    }

    /// 待人工复核: keeps the case for a person and says so; it goes on when one decides.
    async fn hold(
        &self,
        work: &mut Work<'_>,
        row: &store::ClassificationRow,
        request: &Request,
        doubt: Doubt,
        runner_up: Option<String>,
    ) -> Result<(), Error> {
        let waiting = store::ReviewRow {
            case_id: request.case_id.clone(),
            case_no: request.case_no.clone(),
            channel: request.channel.clone(),
            title: request.title.clone(),
            description: request.description.clone(),
            street: request.place.street.clone(),
            location: serde_json::to_string(&request.place).expect("json"),
            citizen_key: request.citizen_key.clone(),
            why: doubt.key().into(),
            waiting_since: row.classified_at,
            released_at: 0,
        };
        store::insert_review(work.tx, &waiting).await?;
        tracing::info!(case_id = %row.case_id, sub_item = %row.sub_item, confidence = row.confidence, why = doubt.key(),
            "case waits for review");
        let event = CaseReviewRequested {
            meta: None,
            sub_item: row.sub_item.clone(),
            sub_item_name: self.sub_item_name(&row.sub_item),
            confidence: row.confidence as f32,
            runner_up: if doubt == Doubt::CloseCandidates { runner_up.unwrap_or_default() } else { String::new() },
            why: doubt.key().into(),
            title: request.title.clone(),
            location: Some(request.place.to_location()),
        };
        work.emit(request.ids(), event);
        self.metrics.count("review_requested");
        Ok(())
    }

    /// 确认 / 改判: a person's verdict releases a waiting case; the decision is kept for audit
    /// and for the next training run, and the case goes on as if the classifier had decided so.
    pub async fn release(&self, work: &mut Work<'_>, case_id: &str, verdict: &Verdict) -> Result<store::ClassificationRow, Error> {
        let (waiting, model) = store::review_in(work.tx, case_id)
            .await?
            .ok_or_else(|| Error::NotWaiting(format!("case {case_id} never waited for review: it was classified without doubt")))?;
        if waiting.released_at != 0 {
            return Err(Error::NotWaiting(format!(
                "case {} no longer waits for review: it was {} as “{}”",
                waiting.case_no,
                if model.review == review::RECLASSIFIED { "reclassified" } else { "confirmed" },
                self.sub_item_name(&model.sub_item)
            )));
        }
        let category = self
            .taxonomy
            .category_of(&verdict.sub_item)
            .map(|c| c.code.clone())
            .ok_or_else(|| Error::Invalid(format!("sub_item {:?} is not a sub-item of the taxonomy", verdict.sub_item)))?;
        let now = work.now_millis();
        let decided = store::ClassificationRow {
            category,
            sub_item: verdict.sub_item.clone(),
            urgency: verdict.urgency.key().into(),
            request_type: verdict.request_type.clone(),
            review: if verdict.corrected { review::RECLASSIFIED } else { review::CONFIRMED }.into(),
            // A person's decision is certain; the model's guess and reason stay in the correction.
            confidence: 1.0,
            matched_keywords: if verdict.corrected { "[]".into() } else { model.matched_keywords.clone() },
            ..model.clone()
        };
        if !store::release(work.tx, &decided, now).await? {
            return Err(Error::NotWaiting(format!("case {} was released by someone else a moment ago", waiting.case_no)));
        }
        store::insert_correction(
            work.tx,
            &store::CorrectionRow {
                case_id: model.case_id.clone(),
                case_no: model.case_no.clone(),
                channel: waiting.channel.clone(),
                text: format!("{}\n{}", waiting.title, waiting.description).trim().to_string(),
                model_version: model.model_version.clone(),
                model_sub_item: model.sub_item.clone(),
                model_urgency: model.urgency.clone(),
                model_request_type: model.request_type.clone(),
                model_confidence: model.confidence,
                sub_item: decided.sub_item.clone(),
                urgency: decided.urgency.clone(),
                request_type: decided.request_type.clone(),
                corrected: verdict.corrected,
                reviewer_subject: verdict.reviewer_subject.clone(),
                reviewer_name: verdict.reviewer_name.clone(),
                note: verdict.note.clone(),
                decided_at: now,
            },
        )
        .await?;
        tracing::info!(case_id = %model.case_id, model_sub_item = %model.sub_item, sub_item = %decided.sub_item,
            corrected = verdict.corrected, reviewer = %verdict.reviewer_subject, "review decided");
        let request = Request::waiting(&waiting);
        let event = CaseReviewed {
            meta: None,
            model_sub_item: model.sub_item.clone(),
            sub_item: decided.sub_item.clone(),
            corrected: verdict.corrected,
            reviewer: verdict.reviewer_name.clone(),
            waiting_since: Some(millis_to_proto(waiting.waiting_since)),
        };
        work.emit(request.ids(), event);
        self.metrics.count(if verdict.corrected { "reclassified" } else { "confirmed" });
        self.send_on(work, &decided, &request).await?;
        Ok(decided)
    }

    /// A decided case goes on: linked to the case it repeats (or merged into it when it is a
    /// duplicate), announced to dispatch, and counted where it happened.
    async fn send_on(&self, work: &mut Work<'_>, row: &store::ClassificationRow, request: &Request) -> Result<(), Error> {
        if self.link_repeat(work, row, request).await? {
            return Ok(());
        }
        let view = self.view(row);
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
            title: request.title.clone(),
            location: Some(request.place.to_location()),
            request_type: view.request_type,
            model_version: view.model_version,
        };
        tracing::info!(case_id = %row.case_id, sub_item = %row.sub_item, urgency = %row.urgency,
            confidence = row.confidence, model = %row.model_version, review = %row.review, "case classified");
        work.emit(request.ids(), event);
        self.metrics.count("classified");
        self.watch_hotspots(work, row, &request.place).await?;
        Ok(())
    }

    /// 重复诉求: remembers the case by its citizen, place and words, and links it to the latest
    /// case it repeats; `true` when it is a duplicate, merged into that case and not sent on.
    async fn link_repeat(&self, work: &mut Work<'_>, row: &store::ClassificationRow, request: &Request) -> Result<bool, Error> {
        let now = work.now_millis();
        let mut stored = store::MarkRow {
            case_id: request.case_id.clone(),
            case_no: request.case_no.clone(),
            channel: request.channel.clone(),
            sub_item: row.sub_item.clone(),
            citizen_key: request.citizen_key.clone(),
            street: request.place.street.trim().to_string(),
            community: request.place.community.trim().to_string(),
            grid: request.place.grid.trim().to_string(),
            place: domain::normalise(&request.place.address),
            digest: domain::digest(&request.title, &request.description),
            title: request.title.clone(),
            at_ms: now,
            first_case_id: request.case_id.clone(),
            first_case_no: request.case_no.clone(),
            chain: 1,
            duplicate_of: String::new(),
        };
        let mark = stored.mark();
        // Nobody and nowhere to match on (an anonymous report without an address): no lookup.
        let earlier = if mark.citizen_key.is_empty() && mark.place.is_empty() {
            Vec::new()
        } else {
            store::earlier_marks(work.tx, &mark, now - self.repeats.window_ms()).await?
        };
        let link = domain::link(&self.repeats, &mark, &earlier);
        if let Some(link) = &link {
            stored.first_case_id = link.first_case_id.to_string();
            stored.first_case_no = link.first_case_no.to_string();
            stored.chain = store::chain_length(work.tx, link.first_case_id).await? + i64::from(!link.duplicate);
            if link.duplicate {
                stored.duplicate_of = link.previous.case_no.clone();
            }
        }
        // Also what hot spots are counted on (`watch_hotspots`).
        store::insert_mark(work.tx, &stored).await?;
        let Some(link) = link else { return Ok(false) };
        if link.duplicate {
            tracing::info!(case_id = %row.case_id, into = %link.previous.case_id, "duplicate merged");
            let event = CaseMerged {
                meta: None,
                into_case_id: link.previous.case_id.clone(),
                into_case_no: link.previous.case_no.clone(),
                channel: request.channel.clone(),
                sub_item: row.sub_item.clone(),
            };
            work.emit(request.ids(), event);
            self.metrics.count("duplicate");
            return Ok(true);
        }
        tracing::info!(case_id = %row.case_id, first = %link.first_case_id, count = stored.chain, by = link.by.key(), "repeat linked");
        let event = CaseRepeatDetected {
            meta: None,
            first_case_id: link.first_case_id.to_string(),
            first_case_no: link.first_case_no.to_string(),
            previous_case_id: link.previous.case_id.clone(),
            previous_case_no: link.previous.case_no.clone(),
            repeat_count: u32::try_from(stored.chain).unwrap_or(u32::MAX),
            by: link.by.key().into(),
            sub_item: row.sub_item.clone(),
        };
        work.emit(request.ids(), event);
        self.metrics.count("repeat");
        Ok(false)
    }

    fn sub_item_name(&self, code: &str) -> String {
        self.taxonomy.sub_item(code).map(|s| s.name.clone()).unwrap_or_default()
    }

    /// 未诉先办: counts the case where it happened — its community, and its grid where known —
    /// and raises a hot spot when its sub-item rises there beyond the place's own baseline, once
    /// per window.
    async fn watch_hotspots(&self, work: &mut Work<'_>, row: &store::ClassificationRow, place: &Place) -> Result<(), Error> {
        let (community, grid) = (place.community.trim(), place.grid.trim());
        // The case is counted in its mark, recorded by `link_repeat` before.
        if community.is_empty() {
            return Ok(());
        }
        self.watch_spot(work, row, place, Spot::Community(community)).await?;
        if !grid.is_empty() {
            self.watch_spot(work, row, place, Spot::Grid(grid)).await?;
        }
        Ok(())
    }

    async fn watch_spot(&self, work: &mut Work<'_>, row: &store::ClassificationRow, place: &Place, spot: Spot<'_>) -> Result<(), Error> {
        let now = work.now_millis();
        let window = self.hotspots.window_ms();
        let start = now - window;
        let recent = store::area_cases(work.tx, &row.sub_item, spot, start, now + 1).await?;
        let before_from = start - window * i64::from(self.hotspots.baseline_windows);
        let before = store::count_area_cases(work.tx, &row.sub_item, spot, before_from, start).await?;
        let count = u32::try_from(recent.len()).unwrap_or(u32::MAX);
        let Some(baseline) = self.hotspots.hot(count, u32::try_from(before).unwrap_or(u32::MAX)) else { return Ok(()) };
        if store::raised_since(work.tx, &row.sub_item, spot, start).await? {
            return Ok(()); // raised already in this window
        }
        let case_ids: Vec<String> = recent.into_iter().take(100).collect();
        let hotspot = store::HotspotRow {
            hotspot_id: uuid::Uuid::now_v7().to_string(),
            sub_item: row.sub_item.clone(),
            street: place.street.trim().to_string(),
            community: place.community.trim().to_string(),
            grid: if let Spot::Grid(g) = spot { g.to_string() } else { String::new() },
            count: i64::from(count),
            baseline,
            window_start: start,
            raised_at: now,
            case_ids: serde_json::to_string(&case_ids).expect("json"),
        };
        store::insert_hotspot(work.tx, &hotspot).await?;
        tracing::info!(sub_item = %row.sub_item, community = %hotspot.community, grid = %hotspot.grid, count, baseline, "hot spot raised");
        let event = self.hotspot_view(&hotspot);
        work.emit(CaseIds { case_id: &row.case_id, case_no: &row.case_no }, event);
        self.metrics.count("hotspot");
        Ok(())
    }

    /// A stored hot spot as the event and the API show it.
    pub fn hotspot_view(&self, h: &store::HotspotRow) -> InsightHotspot {
        InsightHotspot {
            meta: None,
            hotspot_id: h.hotspot_id.clone(),
            sub_item: h.sub_item.clone(),
            sub_item_name: self.sub_item_name(&h.sub_item),
            street: h.street.clone(),
            community: h.community.clone(),
            count: u32::try_from(h.count).unwrap_or(0),
            baseline: h.baseline,
            window_start: Some(millis_to_proto(h.window_start)),
            raised_at: Some(millis_to_proto(h.raised_at)),
            case_ids: serde_json::from_str(&h.case_ids).unwrap_or_default(),
            grid: h.grid.clone(),
        }
    }
}
