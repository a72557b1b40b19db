//! Classification in-process against a real nats-server and a temporary SQLite database: each
//! `case.received` becomes exactly one `case.classified`, however often it arrives, and the
//! gRPC API classifies text on request and answers for the cases it classified.

use jiesu_proto::v1::{
    CaseClassified, CaseReceived, CaseRef, ClassifyRequest, Location, Urgency, case_ref::Ref,
    classification_service_client::ClassificationServiceClient,
};
use jiesu_testkit::{Backend, Harness, event_meta};
use tonic::{Code, transport::Channel};

const CASE_ID: &str = "0192f0c8-0000-7000-8000-0000000000c1";
const CASE_NO: &str = "DM20261130-0001";

async fn classification() -> (Harness, ClassificationServiceClient<Channel>) {
    classification_on(Backend::Sqlite).await
}

async fn classification_on(backend: Backend) -> (Harness, ClassificationServiceClient<Channel>) {
    let h = Harness::start_with("classification", backend, |c, k| async move { jiesu_classification::start(&c, k).await }).await;
    let client = ClassificationServiceClient::new(h.channel().await);
    (h, client)
}

// What the review queue, the repeats and the hot spots keep, they keep on both engines.
jiesu_testkit::on_both_backends!(
    a_burst_in_one_community_raises_one_hot_spot,
    repeats_are_linked_to_the_first_case_and_duplicates_merged,
    a_doubtful_case_waits_for_review_and_a_reclassification_releases_it,
);

fn received(event_id: &str, title: &str, description: &str) -> CaseReceived {
    CaseReceived {
        meta: Some(event_meta(event_id, CASE_ID, CASE_NO)),
        channel: "hotline".into(),
        channel_ref: "call-1".into(),
        title: title.into(),
        description: description.into(),
        location: Some(Location { street: "st-dongmen".into(), ..Default::default() }),
        ..Default::default()
    }
}

fn by_id(id: &str) -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(id.into())) }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_received_case_is_classified_once() {
    let (h, mut client) = classification().await;
    let first = uuid::Uuid::now_v7().to_string();
    let event = received(&first, "楼下饭馆油烟扰民", "楼下饭馆排油烟，熏得家里不能开窗。");
    assert!(h.publish(&event).await);
    assert!(!h.publish(&event).await, "JetStream drops a re-send with the same id");
    // The same event under another message id (a replay after the duplicate window): the inbox
    // does not know it, the classification's own key does.
    assert!(h.publish_as("replayed", &event).await);
    h.handled(&first).await.unwrap();
    h.handled("replayed").await.unwrap();

    let classified = h.events::<CaseClassified>().await;
    assert_eq!(classified.len(), 1, "one case.classified per case");
    let c = &classified[0];
    assert_eq!(c.category, "05", "{c:?}");
    assert_eq!(c.title, "楼下饭馆油烟扰民");
    assert_eq!(c.location.as_ref().map(|l| l.street.as_str()), Some("st-dongmen"));
    let meta = c.meta.as_ref().unwrap();
    assert_eq!((meta.case_id.as_str(), meta.case_no.as_str(), meta.causation_id.as_str()), (CASE_ID, CASE_NO, first.as_str()));

    let view = client.get_classification(by_id(CASE_ID)).await.unwrap().into_inner();
    assert_eq!((view.sub_item.as_str(), view.confidence), (c.sub_item.as_str(), c.confidence));
    assert_eq!(view.timeline.len(), 1);
    assert_eq!(client.get_classification(by_id("no-such-case")).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(client.get_classification(CaseRef { r#ref: None }).await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn classify_answers_for_text_and_refuses_what_is_not_text() {
    let (_h, mut client) = classification().await;
    let view = client
        .classify(ClassifyRequest {
            title: "燃气泄漏".into(), description: "楼道里有很重的煤气味，怀疑燃气泄漏。".into()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.urgency(), Urgency::Emergency, "{view:?}");
    assert!(view.case_id.is_empty(), "classifying text records nothing");

    let err = client.classify(ClassifyRequest { title: String::new(), description: "  ".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = client.classify(ClassifyRequest { title: "油烟\u{1b}[2J".into(), description: "油烟扰民".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "control characters are refused");
    assert!(!err.message().contains('\u{1b}'));
}

/// 未诉先办: a burst of the same problem in one community raises one hot spot with the cases
/// behind it; more of them in the same window raise no second one, and another community's
/// cases are counted apart.
async fn a_burst_in_one_community_raises_one_hot_spot(backend: Backend) {
    use jiesu_proto::v1::{InsightHotspot, ListHotspotsRequest};
    let (h, mut client) = classification_on(backend).await;
    let texts = [
        "我们小区车位被人私装了地锁，停不进去",
        "荔枝花园地面车位又多了几个地锁，谁装的",
        "小区里公共车位装地锁占着，物业不管",
        "楼下公共停车位被私人地锁锁住了",
        "又有人在小区装地锁占车位，太过分了",
        "地锁越来越多，公共车位都成私人的了",
    ];
    let mut ids = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let case_id = format!("0192f0c8-0000-7000-8000-0000000001{i:02}");
        let event_id = uuid::Uuid::now_v7().to_string();
        let mut event = received(&event_id, "", text);
        event.meta = Some(event_meta(&event_id, &case_id, &format!("DM20261201-01{i:02}")));
        // Five in one grid (网格), the sixth in the next.
        let grid = if i < 5 { "g-lizhi-01" } else { "g-lizhi-02" };
        event.location =
            Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), grid: grid.into(), ..Default::default() });
        assert!(h.publish(&event).await);
        h.handled(&event_id).await.unwrap();
        ids.push(case_id);
    }
    // The same problem once in another community: counted apart.
    let other = uuid::Uuid::now_v7().to_string();
    let mut event = received(&other, "", "小区车位被人装了地锁");
    event.meta = Some(event_meta(&other, "0192f0c8-0000-7000-8000-000000000199", "DM20261201-0199"));
    event.location = Some(Location { street: "st-dongmen".into(), community: "cm-other".into(), ..Default::default() });
    h.publish(&event).await;
    h.handled(&other).await.unwrap();

    let hot = h.events::<InsightHotspot>().await;
    assert_eq!(hot.len(), 2, "one hot spot for the community's burst and one for its grid's: {hot:#?}");
    let in_grid = hot.iter().find(|s| !s.grid.is_empty()).expect("the grid's hot spot");
    assert_eq!((in_grid.grid.as_str(), in_grid.community.as_str(), in_grid.count), ("g-lizhi-01", "cm-lizhi", 5), "{in_grid:?}");
    let spot = hot.iter().find(|s| s.grid.is_empty()).expect("the community's hot spot");
    assert_eq!((spot.sub_item.as_str(), spot.community.as_str(), spot.count), ("01.03", "cm-lizhi", 5), "{spot:?}");
    assert_eq!(spot.sub_item_name, "占道经营与乱停放");
    assert_eq!(spot.case_ids.len(), 5);
    assert!(spot.case_ids.iter().all(|c| ids[..5].contains(c)));
    assert_eq!(spot.meta.as_ref().unwrap().case_id, ids[4], "the case that tipped it");
    let listed = client.list_hotspots(ListHotspotsRequest { street: "st-dongmen".into() }).await.unwrap().into_inner().hotspots;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|l| l.hotspot_id == spot.hotspot_id));
    assert!(client.list_hotspots(ListHotspotsRequest { street: "st-xinan".into() }).await.unwrap().into_inner().hotspots.is_empty());
}

fn citizen_case(n: u32, channel: &str, text: &str, citizen_key: &str, address: &str) -> (String, CaseReceived) {
    let event_id = uuid::Uuid::now_v7().to_string();
    let case_id = format!("0192f0c8-0000-7000-8000-0000000002{n:02}");
    let mut event = received(&event_id, "", text);
    event.meta = Some(event_meta(&event_id, &case_id, &format!("DM20261201-02{n:02}")));
    event.channel = channel.into();
    event.channel_ref = format!("ref-{n}");
    event.citizen_key = citizen_key.into();
    event.location =
        Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), address: address.into(), ..Default::default() });
    (event_id, event)
}

/// 重复诉求: the same citizen, then the same address, with the same problem, are linked to the
/// first case; the same words from the same channel minutes later are merged and never sent on;
/// similar cases are listed for a clerk about to file another.
async fn repeats_are_linked_to_the_first_case_and_duplicates_merged(backend: Backend) {
    use jiesu_proto::v1::{CaseMerged, CaseRepeatDetected, ListSimilarCasesRequest};
    let (h, mut client) = classification_on(backend).await;
    let cases = [
        citizen_case(1, "hotline", "楼下工地半夜还在施工，电钻声吵得根本睡不着", "key-a", "朝阳路12号"),
        // The same citizen, other words, another channel: a repeat by the citizen.
        citizen_case(2, "web", "工地晚上十一点多还在打桩，已经反映过一次了，还是吵", "key-a", ""),
        // A neighbour at the same address, written differently: a repeat by the place.
        citizen_case(3, "hotline", "夜里工地施工噪音太大，老人孩子都睡不了觉", "key-b", "朝阳路 １２ 号"),
        // The neighbour's call logged twice: a duplicate.
        citizen_case(4, "hotline", "夜里工地施工噪音太大，老人孩子都睡不了觉。", "key-b", "朝阳路12号"),
        // Someone else elsewhere about the same: nothing to link.
        citizen_case(5, "hotline", "工地半夜施工，噪音扰民", "key-c", "幸福路3号"),
    ];
    for (event_id, event) in &cases {
        assert!(h.publish(event).await);
        h.handled(event_id).await.unwrap();
    }
    let case_id = |i: usize| cases[i].1.meta.as_ref().unwrap().case_id.clone();
    let case_no = |i: usize| cases[i].1.meta.as_ref().unwrap().case_no.clone();

    let repeats = h.events::<CaseRepeatDetected>().await;
    let got: Vec<_> = repeats
        .iter()
        .map(|r| {
            (r.meta.as_ref().unwrap().case_id.clone(), r.first_case_id.clone(), r.previous_case_id.clone(), r.repeat_count, r.by.clone())
        })
        .collect();
    assert_eq!(
        got,
        [(case_id(1), case_id(0), case_id(0), 2, "citizen".to_string()), (case_id(2), case_id(0), case_id(0), 3, "place".to_string())],
        "{repeats:#?}"
    );
    assert_eq!(repeats[0].first_case_no, case_no(0));
    let merged = h.events::<CaseMerged>().await;
    assert_eq!(merged.len(), 1, "{merged:#?}");
    assert_eq!((merged[0].meta.as_ref().unwrap().case_id.clone(), merged[0].into_case_id.clone()), (case_id(3), case_id(2)));
    let classified: Vec<_> = h.events::<CaseClassified>().await.into_iter().map(|c| c.meta.unwrap().case_id).collect();
    assert_eq!(classified, [case_id(0), case_id(1), case_id(2), case_id(4)], "a duplicate is not sent on");

    let view = client.get_classification(by_id(&case_id(2))).await.unwrap().into_inner();
    assert_eq!((view.repeat_of_case_no.as_str(), view.repeat_count), (case_no(0).as_str(), 3));
    assert!(view.timeline.iter().any(|t| t.event == "repeat_detected" && t.detail.contains("第3次")), "{:?}", view.timeline);
    let view = client.get_classification(by_id(&case_id(3))).await.unwrap().into_inner();
    assert!(view.timeline.iter().any(|t| t.event == "merged" && t.detail.contains(&case_no(2))), "{:?}", view.timeline);
    let view = client.get_classification(by_id(&case_id(4))).await.unwrap().into_inner();
    assert_eq!((view.repeat_of_case_no.as_str(), view.repeat_count), ("", 0));

    // Before filing a fifth: the community's earlier cases of the sub-item, duplicates left out.
    let similar = client
        .list_similar_cases(ListSimilarCasesRequest {
            description: "晚上工地施工太吵了".into(),
            location: Some(Location { community: "cm-lizhi".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(similar.sub_item, "05.01");
    let listed: Vec<_> = similar.cases.iter().map(|c| c.case_id.clone()).collect();
    assert_eq!(listed, [case_id(4), case_id(2), case_id(1), case_id(0)], "the latest first");
    let err =
        client.list_similar_cases(ListSimilarCasesRequest { description: "工地太吵".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("community"), "{}", err.message());
}

/// 待人工复核: a case the classifier is not sure of waits — no case.classified — until a person
/// at the centre decides; a reclassification releases it with the person's sub-item, kept for
/// the next training run. Who may read and decide is checked.
async fn a_doubtful_case_waits_for_review_and_a_reclassification_releases_it(backend: Backend) {
    use jiesu_kit::auth::Role;
    use jiesu_proto::v1::{CaseReviewRequested, CaseReviewed, ConfirmClassificationRequest, ListPendingReviewsRequest, ReclassifyRequest};
    let mut bed = jiesu_testkit::TestBed::new(jiesu_testkit::demo_config(), &["classification"]);
    let signer = bed.require_tokens();
    let start = |c, k| async move { jiesu_classification::start(&c, k).await };
    let h = Harness::start_on_backend(bed, "classification", backend, std::sync::Arc::new(jiesu_kit::SystemClock), start).await;
    let client = ClassificationServiceClient::new(h.channel().await);
    fn signed<T>(signer: &jiesu_kit::auth::Signer, role: Role, unit: Option<&str>, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert("authorization", jiesu_testkit::bearer(signer, "agent-7", role, unit));
        r
    }
    macro_rules! as_ {
        ($role:expr, $unit:expr, $msg:expr) => {
            signed(&signer, $role, $unit, $msg)
        };
    }

    // Too vague to say where it belongs; and, beside it, a clear one that goes straight on.
    let vague = uuid::Uuid::now_v7().to_string();
    let mut event = received(&vague, "", "你好，我想反映个情况，这事拖了挺久了，一直没人管");
    event.location = Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), ..Default::default() });
    assert!(h.publish(&event).await);
    h.handled(&vague).await.unwrap();
    let clear = uuid::Uuid::now_v7().to_string();
    let mut other = received(&clear, "楼下饭馆油烟扰民", "楼下饭馆排油烟，熏得家里不能开窗。");
    other.meta = Some(event_meta(&clear, "0192f0c8-0000-7000-8000-0000000000c2", "DM20261130-0002"));
    assert!(h.publish(&other).await);
    h.handled(&clear).await.unwrap();

    let asked = h.events::<CaseReviewRequested>().await;
    assert_eq!(asked.len(), 1, "{asked:#?}");
    assert_eq!(asked[0].meta.as_ref().unwrap().case_id, CASE_ID);
    assert!(["low_confidence", "close_candidates"].contains(&asked[0].why.as_str()), "{:?}", asked[0]);
    let classified = h.events::<CaseClassified>().await;
    assert_eq!(classified.len(), 1, "only the clear case went on: {classified:#?}");

    // The queue: the centre reads it, with the citizen's words; a unit may not.
    let pending = client
        .clone()
        .list_pending_reviews(as_!(Role::CentreAgent, None, ListPendingReviewsRequest { street: "st-dongmen".into(), limit: 10 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.total, 1);
    let p = &pending.reviews[0];
    assert_eq!((p.classification.as_ref().unwrap().case_id.as_str(), p.case_no.as_str()), (CASE_ID, CASE_NO));
    assert_eq!(p.classification.as_ref().unwrap().review, "waiting");
    assert!(p.description.contains("一直没人管"));
    assert!(p.waiting_since.is_some());
    let refused = client
        .clone()
        .list_pending_reviews(as_!(Role::UnitHandler, Some("st-dongmen"), ListPendingReviewsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    let reclassify = |sub_item: &str| ReclassifyRequest {
        case: Some(by_id(CASE_ID)),
        sub_item: sub_item.into(),
        urgency: Urgency::Complex as i32,
        request_type: "complaint".into(),
        note: "市民补充说明是小区门口占道摆摊".into(),
    };
    // Refusals: no token, a role that does not decide, a sub-item not in the taxonomy.
    let err = client.clone().reclassify(reclassify("01.03")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client.clone().reclassify(as_!(Role::Auditor, None, reclassify("01.03"))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client.clone().reclassify(as_!(Role::CentreAgent, None, reclassify("99.99"))).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("99.99"), "{}", err.message());
    assert_eq!(h.events::<CaseClassified>().await.len(), 1, "refusals release nothing");

    // The agent's correction releases the case with their sub-item.
    let view = client.clone().reclassify(as_!(Role::CentreAgent, None, reclassify("01.03"))).await.unwrap().into_inner();
    assert_eq!((view.sub_item.as_str(), view.review.as_str(), view.urgency()), ("01.03", "reclassified", Urgency::Complex));
    assert!(
        view.timeline.iter().any(|t| t.event == "reclassified" && t.actor == "agent-7" && t.detail.contains("占道")),
        "{:?}",
        view.timeline
    );
    // The events leave through the outbox after the answer: wait until it is empty.
    h.settled().await.expect("the outbox to be sent");
    let reviewed = h.events::<CaseReviewed>().await;
    assert_eq!(reviewed.len(), 1);
    assert!(reviewed[0].corrected);
    assert_eq!(reviewed[0].sub_item, "01.03");
    let classified = h.events::<CaseClassified>().await;
    let released = classified.iter().find(|c| c.meta.as_ref().unwrap().case_id == CASE_ID).expect("case.classified once released");
    assert_eq!((released.sub_item.as_str(), released.urgency()), ("01.03", Urgency::Complex));
    assert_eq!(released.location.as_ref().unwrap().community, "cm-lizhi");

    // Decided once: a second verdict is refused, saying what happened.
    let err = client.clone().reclassify(as_!(Role::CentreSupervisor, None, reclassify("05.01"))).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("no longer waits"), "{}", err.message());
    let err = client
        .clone()
        .confirm_classification(as_!(
            Role::CentreAgent,
            None,
            ConfirmClassificationRequest { case: Some(by_id(CASE_ID)), note: String::new() }
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let pending = client
        .clone()
        .list_pending_reviews(as_!(Role::CentreSupervisor, None, ListPendingReviewsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pending.total, 0);
    // Kept for audit and for the next training run.
    assert_eq!(
        h.db.count("SELECT COUNT(*) FROM corrections WHERE corrected AND reviewer_subject = 'agent-7' AND sub_item = '01.03'")
            .await
            .unwrap(),
        1
    );
}
