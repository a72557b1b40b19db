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
