//! Revisit in-process against a real nats-server and a temporary SQLite database.

use jiesu_proto::v1::{
    CaseRef, CaseReopened, CaseResolved, RecordRequest, RevisitRecorded, Satisfaction, Urgency, case_ref::Ref,
    revisit_service_client::RevisitServiceClient,
};
use jiesu_testkit::{Backend, Harness, event_meta};
use tonic::{Code, transport::Channel};

const CASE_ID: &str = "0192f0c8-0000-7000-8000-000000000002";
const CASE_NO: &str = "DM20261123-0002";

jiesu_testkit::on_both_backends!(revisits_reopen_dissatisfied_cases_and_record_satisfied_ones);

/// Revisit in-process, and a client of its gRPC API.
async fn revisit(backend: Backend) -> (Harness, RevisitServiceClient<Channel>) {
    let h = Harness::start_with("revisit", backend, |c, k| async move { jiesu_revisit::start(&c, k).await }).await;
    let client = RevisitServiceClient::new(h.channel().await);
    (h, client)
}

/// Publishes `case.resolved` of `round` with the given event id and waits until revisit has
/// handled it (or JetStream dropped it as a duplicate).
async fn resolved(h: &Harness, msg_id: &str, round: u32) {
    let event = CaseResolved {
        meta: Some(event_meta(msg_id, CASE_ID, CASE_NO)),
        unit_id: "st-dongmen".into(),
        resolved_by: "王五".into(),
        reply: "已处理。".into(),
        round,
        urgency: Urgency::Normal as i32,
    };
    if h.publish(&event).await {
        h.handled(msg_id).await.unwrap();
    }
}

async fn record(
    client: &mut RevisitServiceClient<Channel>,
    satisfaction: Satisfaction,
    solved: bool,
) -> Result<jiesu_proto::v1::RevisitView, tonic::Status> {
    let req = RecordRequest {
        case: Some(by_no()),
        satisfaction: satisfaction as i32,
        solved,
        comment: "摊点还在".into(),
        recorded_by: "回访员小陈".into(),
    };
    client.record(req).await.map(|r| r.into_inner())
}

fn by_no() -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseNo(CASE_NO.into())) }
}

fn by_id() -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(CASE_ID.into())) }
}

async fn revisits_reopen_dissatisfied_cases_and_record_satisfied_ones(backend: Backend) {
    let (mut h, mut client) = revisit(backend).await;

    // Nothing resolved yet: nothing to record.
    let err = record(&mut client, Satisfaction::Satisfied, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let unknown = client.list_revisits(by_id()).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "a case with no revisit yet is not an empty success");

    // ---- case.resolved opens one revisit for the round, however often it arrives.
    let first = uuid::Uuid::now_v7().to_string();
    resolved(&h, &first, 1).await;
    resolved(&h, &first, 1).await;
    resolved(&h, &uuid::Uuid::now_v7().to_string(), 1).await;
    let list = client.list_revisits(by_id()).await.unwrap().into_inner();
    assert_eq!(list.revisits.len(), 1);
    assert_eq!((list.revisits[0].status.as_str(), list.revisits[0].round), ("pending", 1));
    assert_eq!(list.timeline.len(), 1);
    assert_eq!((list.timeline[0].service.as_str(), list.timeline[0].detail.as_str()), ("revisit", "已办结，待回访"));

    // ---- Bad answers are refused with every reason.
    let bad = RecordRequest { case: Some(by_no()), satisfaction: 0, solved: true, comment: String::new(), recorded_by: String::new() };
    let err = client.record(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("satisfaction is required") && err.message().contains("recorded_by is required"), "{}", err.message());

    // ---- Dissatisfied and unsolved: recorded, and the case reopened into round 2.
    let view = record(&mut client, Satisfaction::Dissatisfied, false).await.unwrap();
    assert_eq!((view.status.as_str(), view.round, view.reopened), ("recorded", 1, true));
    assert_eq!(view.satisfaction(), Satisfaction::Dissatisfied);
    assert_eq!(view.comment, "摊点还在");
    h.settled().await.unwrap();
    let recorded = h.events::<RevisitRecorded>().await;
    let reopened = h.events::<CaseReopened>().await;
    assert_eq!((recorded.len(), reopened.len()), (1, 1));
    let rec = recorded[0].clone();
    assert_eq!((rec.satisfaction(), rec.solved, rec.round, rec.recorded_by.as_str()), (Satisfaction::Dissatisfied, false, 1, "回访员小陈"));
    assert_eq!(rec.revisit_id, view.revisit_id);
    let rec_meta = rec.meta.unwrap();
    assert_eq!((rec_meta.case_id.as_str(), rec_meta.case_no.as_str()), (CASE_ID, CASE_NO));
    let re = reopened[0].clone();
    assert_eq!((re.round, re.reason.as_str(), re.revisit_id.as_str()), (2, "回访不满意，问题未解决", view.revisit_id.as_str()));
    assert_eq!(re.meta.unwrap().causation_id, rec_meta.event_id);

    // ---- Nothing pending any more.
    let err = record(&mut client, Satisfaction::Satisfied, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        format!("case {CASE_NO} has no revisit waiting: it has not been resolved, or its revisit is already recorded")
    );

    // ---- Round 2 resolved, then satisfied: only revisit.recorded.
    resolved(&h, &uuid::Uuid::now_v7().to_string(), 2).await;
    let view = record(&mut client, Satisfaction::Satisfied, true).await.unwrap();
    assert_eq!((view.round, view.reopened), (2, false));
    h.settled().await.unwrap();
    let recorded = h.events::<RevisitRecorded>().await;
    assert_eq!(recorded.len(), 2);
    let rec = recorded[1].clone();
    assert_eq!((rec.satisfaction(), rec.solved, rec.round), (Satisfaction::Satisfied, true, 2));
    assert_eq!(h.events::<CaseReopened>().await.len(), 1, "a satisfied answer reopens nothing");

    let list = client.list_revisits(by_no()).await.unwrap().into_inner();
    assert_eq!(list.revisits.iter().map(|r| r.round).collect::<Vec<_>>(), [1, 2]);
    let details: Vec<_> = list.timeline.iter().map(|t| t.detail.as_str()).collect();
    assert_eq!(details, ["已办结，待回访", "回访：不满意，问题未解决，已重新交办", "已办结，待回访（第2轮）", "回访：满意，问题已解决"]);

    let dead = h.db.count("SELECT COUNT(*) FROM dead_letters").await.unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
    h.db.close().await;
    h.stop().await;
}

/// Trust (issue 6): only revisit agents record the citizen's verdict.
#[tokio::test(flavor = "multi_thread")]
async fn only_revisit_agents_record_and_units_read_only_their_own() {
    use jiesu_kit::auth::Role;
    let (h, signer) = Harness::start_with_tokens("revisit", |c, k| async move { jiesu_revisit::start(&c, k).await }).await;
    resolved(&h, &uuid::Uuid::now_v7().to_string(), 1).await;
    let bearer = |role: Role, unit: Option<&str>| jiesu_testkit::bearer(&signer, "u-1", role, unit);
    let client = RevisitServiceClient::new(h.channel().await);
    let record_as = |auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(RecordRequest {
            case: Some(by_no()),
            satisfaction: Satisfaction::Satisfied as i32,
            solved: true,
            comment: String::new(),
            recorded_by: "回访员小陈".into(),
        });
        if let Some(a) = auth {
            req.metadata_mut().insert("authorization", a);
        }
        async move { client.record(req).await }
    };
    assert_eq!(record_as(None).await.unwrap_err().code(), Code::Unauthenticated);
    let refused = record_as(Some(bearer(Role::UnitHandler, Some("st-dongmen")))).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("for revisit agents"), "{}", refused.message());
    let list_as = |auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(by_id());
        req.metadata_mut().insert("authorization", auth);
        async move { client.list_revisits(req).await }
    };
    assert!(list_as(bearer(Role::UnitHandler, Some("st-dongmen"))).await.is_ok(), "the owning unit reads its revisits");
    assert_eq!(list_as(bearer(Role::UnitHandler, Some("st-xinan"))).await.unwrap_err().code(), Code::PermissionDenied);
    assert!(record_as(Some(bearer(Role::RevisitAgent, None))).await.is_ok());
}
