//! Classification in-process against a real nats-server and a temporary SQLite database: each
//! `case.received` becomes exactly one `case.classified`, however often it arrives, and the
//! gRPC API classifies text on request and answers for the cases it classified.

use jiesu_proto::v1::{
    CaseClassified, CaseReceived, CaseRef, ClassifyRequest, Location, Urgency, case_ref::Ref,
    classification_service_client::ClassificationServiceClient,
};
use jiesu_testkit::{Harness, event_meta};
use tonic::{Code, transport::Channel};

const CASE_ID: &str = "0192f0c8-0000-7000-8000-0000000000c1";
const CASE_NO: &str = "DM20261130-0001";

async fn classification() -> (Harness, ClassificationServiceClient<Channel>) {
    let h = Harness::start("classification", |c, k| async move { jiesu_classification::start(&c, k).await }).await;
    let client = ClassificationServiceClient::new(h.channel().await);
    (h, client)
}

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
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_in_one_community_raises_one_hot_spot() {
    use jiesu_proto::v1::{InsightHotspot, ListHotspotsRequest};
    let (h, mut client) = classification().await;
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
        event.location = Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), ..Default::default() });
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
    assert_eq!(hot.len(), 1, "one hot spot for the burst: {hot:#?}");
    let spot = &hot[0];
    assert_eq!((spot.sub_item.as_str(), spot.community.as_str(), spot.count), ("01.03", "cm-lizhi", 5), "{spot:?}");
    assert_eq!(spot.sub_item_name, "占道经营与乱停放");
    assert_eq!(spot.case_ids.len(), 5);
    assert!(spot.case_ids.iter().all(|c| ids[..5].contains(c)));
    assert_eq!(spot.meta.as_ref().unwrap().case_id, ids[4], "the case that tipped it");
    let listed = client.list_hotspots(ListHotspotsRequest { street: "st-dongmen".into() }).await.unwrap().into_inner().hotspots;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].hotspot_id, spot.hotspot_id);
    assert!(client.list_hotspots(ListHotspotsRequest { street: "st-xinan".into() }).await.unwrap().into_inner().hotspots.is_empty());
}
