//! Dispatch in-process against a real nats-server and a temporary SQLite database: the whole
//! handling loop driven by the events it consumes and its gRPC commands.

use jiesu_proto::v1::{
    AcceptRequest, AnswerAssistRequest, CaseAccepted, CaseClassified, CaseClosed, CaseDispatched, CaseRef, CaseReopened, CaseResolved,
    CaseStatus, ContactRequest, EventMeta, ListCasesRequest, Location, ResolveRequest, RevisitRecorded, Satisfaction, Urgency,
    case_ref::Ref, dispatch_service_client::DispatchServiceClient,
};
use jiesu_testkit::{Backend, Harness, event_meta};
use tonic::{Code, transport::Channel};

const CASE_ID: &str = "0192f0c8-0000-7000-8000-000000000001";
const CASE_NO: &str = "DM20261123-0001";

jiesu_testkit::on_both_backends!(the_handling_loop_from_dispatch_to_closure);

/// Dispatch in-process, and a client of its gRPC API.
async fn dispatch(backend: Backend) -> (Harness, DispatchServiceClient<Channel>) {
    let h = Harness::start_with("dispatch", backend, |c, k| async move { jiesu_dispatch::start(&c, k).await }).await;
    let client = DispatchServiceClient::new(h.channel().await);
    (h, client)
}

async fn case(client: &mut DispatchServiceClient<Channel>) -> jiesu_proto::v1::CaseView {
    client.get_case(by_id()).await.expect("GetCase").into_inner()
}

fn by_id() -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(CASE_ID.into())) }
}

fn meta(event_id: &str) -> Option<EventMeta> {
    Some(event_meta(event_id, CASE_ID, CASE_NO))
}

fn classified(event_id: &str) -> CaseClassified {
    CaseClassified {
        meta: meta(event_id),
        category: "01".into(),
        category_name: "城市管理".into(),
        sub_item: "01.03".into(),
        sub_item_name: "占道经营与乱停放".into(),
        urgency: Urgency::Normal as i32,
        confidence: 0.9,
        matched_keywords: vec!["占道".into()],
        fallback: false,
        title: "小区门口占道经营".into(),
        location: Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), ..Default::default() }),
        request_type: "complaint".into(),
        model_version: String::new(),
    }
}

fn accept(unit: &str) -> AcceptRequest {
    AcceptRequest { case: Some(by_id()), unit_id: unit.into(), accepted_by: "王五".into() }
}

fn resolve(unit: &str, reply: &str) -> ResolveRequest {
    ResolveRequest { case: Some(by_id()), unit_id: unit.into(), resolved_by: "王五".into(), reply: reply.into(), letter: None }
}

fn contact(unit: &str) -> ContactRequest {
    ContactRequest { case: Some(by_id()), unit_id: unit.into(), contacted_by: "王五".into(), note: "已电话联系市民".into() }
}

/// The assisting unit of the matrix (城市管理委员会) answers its part of the joint case.
fn answer_part(answer: &str) -> AnswerAssistRequest {
    AnswerAssistRequest {
        case: Some(by_id()), answer: answer.into(), unit_id: "dept-urban-management".into(), answered_by: "赵六".into()
    }
}

async fn the_handling_loop_from_dispatch_to_closure(backend: Backend) {
    let (mut h, mut client) = dispatch(backend).await;

    // ---- case.classified: one case and one case.dispatched, however often it arrives.
    let (first, second) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    assert!(h.publish(&classified(&first)).await);
    assert!(!h.publish(&classified(&first)).await, "JetStream de-duplicates a re-send");
    assert!(h.publish(&classified(&second)).await, "a new event for the same case");
    h.handled(&first).await.unwrap();
    h.handled(&second).await.unwrap();
    let dispatched = h.events::<CaseDispatched>().await;
    assert_eq!(dispatched.len(), 1, "one case.dispatched");
    let d = dispatched[0].clone();
    assert_eq!(d.unit_id, "st-dongmen");
    assert_eq!(d.unit_name, "东门街道");
    assert_eq!(d.assisting_unit_ids, vec!["dept-urban-management".to_string()]);
    assert_eq!((d.sub_item.as_str(), d.urgency(), d.round, d.title.as_str()), ("01.03", Urgency::Normal, 1, "小区门口占道经营"));
    let m = d.meta.unwrap();
    assert_eq!((m.case_id.as_str(), m.case_no.as_str(), m.causation_id.as_str()), (CASE_ID, CASE_NO, first.as_str()));
    let n = h.db.count("SELECT COUNT(*) FROM cases").await.unwrap();
    assert_eq!(n, 1, "one case");

    let view = case(&mut client).await;
    assert_eq!(view.status(), CaseStatus::Dispatched);
    assert_eq!((view.case_no.as_str(), view.round), (CASE_NO, 1));
    assert_eq!(view.timeline.len(), 1);
    assert_eq!(view.timeline[0].detail, "派单至东门街道（协办：城市管理委员会）");
    assert_eq!(view.timeline[0].service, "dispatch");

    // ---- Accept: only the owner; a second accept changes nothing.
    let err = client.accept(accept("st-xinan")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().ends_with("[not-owner]"), "{}", err.message());
    assert_eq!(err.metadata().get("jiesu-refusal").unwrap(), "not-owner");
    let err = client.resolve(resolve("st-dongmen", "已处理")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = client.accept(AcceptRequest { accepted_by: " ".into(), ..accept("st-dongmen") }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("accepted_by is required"), "{}", err.message());

    let view = client.accept(accept("st-dongmen")).await.unwrap().into_inner();
    assert_eq!(view.status(), CaseStatus::Accepted);
    assert_eq!(view.timeline.last().unwrap().detail, "东门街道已签收（签收人：王五）");
    let again = client.accept(accept("st-dongmen")).await.unwrap().into_inner();
    assert_eq!(again.timeline.len(), view.timeline.len(), "accepting twice is a no-op");
    h.settled().await.unwrap();
    let accepted = h.events::<CaseAccepted>().await;
    assert_eq!(accepted.len(), 1, "one case.accepted");
    let a = accepted[0].clone();
    assert_eq!((a.unit_id.as_str(), a.accepted_by.as_str(), a.round), ("st-dongmen", "王五", 1));

    // ---- Contact, then resolve: a reply is required; not before the assisting part is answered;
    // resolved once.
    let err = client.resolve(resolve("st-dongmen", "已处理")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "the citizen is contacted first: {err:?}");
    client.contact(contact("st-dongmen")).await.unwrap();
    let err = client.resolve(resolve("st-dongmen", "  ")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("reply is required"), "{}", err.message());
    let err = client.resolve(resolve("st-dongmen", "已联合城管清理占道摊点。")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("dept-urban-management has not answered"), "{}", err.message());
    let view = case(&mut client).await;
    assert_eq!(view.status(), CaseStatus::Contacted, "a refused step leaves nothing half done");
    client.answer_assist(answer_part("已派执法队员清理。")).await.unwrap();
    let view = client.resolve(resolve("st-dongmen", "已联合城管清理占道摊点。")).await.unwrap().into_inner();
    assert_eq!(view.status(), CaseStatus::Resolved);
    assert_eq!(view.reply, "已联合城管清理占道摊点。");
    assert_eq!(view.timeline.last().unwrap().detail, "已办结");
    assert_eq!(view.timeline.last().unwrap().actor, "王五");
    let err = client.resolve(resolve("st-dongmen", "再次办结")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("[wrong-stage]"), "{}", err.message());
    h.settled().await.unwrap();
    let resolved = h.events::<CaseResolved>().await;
    assert_eq!(resolved.len(), 1, "one case.resolved");
    let r = resolved[0].clone();
    assert_eq!((r.round, r.urgency(), r.reply.as_str()), (1, Urgency::Normal, "已联合城管清理占道摊点。"));

    // ---- case.reopened: the same unit handles round 2, without a new dispatch.
    let reopened_id = uuid::Uuid::now_v7().to_string();
    let reopened =
        CaseReopened { meta: meta(&reopened_id), reason: "回访不满意，问题未解决".into(), revisit_id: "rv-1".into(), round: 2 };
    h.publish(&reopened).await;
    h.handled(&reopened_id).await.unwrap();
    let view = case(&mut client).await;
    assert_eq!((view.status(), view.round, view.unit_id.as_str()), (CaseStatus::Reopened, 2, "st-dongmen"));
    assert_eq!(view.timeline.last().unwrap().detail, "回访不满意，问题未解决，重新办理（第2轮）");
    assert_eq!(h.events::<CaseDispatched>().await.len(), 1, "a reopening is not a new dispatch");

    client.contact(contact("st-dongmen")).await.unwrap();
    client.answer_assist(answer_part("已加强巡查。")).await.unwrap();
    let view = client.resolve(resolve("st-dongmen", "已彻底清理并安装隔离栏。")).await.unwrap().into_inner();
    assert_eq!((view.status(), view.round), (CaseStatus::Resolved, 2));
    h.settled().await.unwrap();
    let resolved = h.events::<CaseResolved>().await;
    assert_eq!(resolved.len(), 2);
    assert_eq!(resolved[1].clone().round, 2);

    // ---- revisit.recorded, satisfied and solved: closed.
    let recorded_id = uuid::Uuid::now_v7().to_string();
    let recorded = RevisitRecorded {
        meta: meta(&recorded_id),
        revisit_id: "rv-2".into(),
        satisfaction: Satisfaction::Satisfied as i32,
        solved: true,
        comment: String::new(),
        recorded_by: "回访员小陈".into(),
        round: 2,
    };
    h.publish(&recorded).await;
    h.handled(&recorded_id).await.unwrap();
    let view = case(&mut client).await;
    assert_eq!(view.status(), CaseStatus::Closed);
    assert_eq!(view.timeline.last().unwrap().detail, "回访满意，已结案");
    let closed = h.events::<CaseClosed>().await;
    assert_eq!(closed.len(), 1, "one case.closed");
    let c = closed[0].clone();
    assert_eq!((c.round, c.meta.unwrap().causation_id), (2, recorded_id.clone()));
    let events: Vec<_> = view.timeline.iter().map(|t| t.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "dispatched",
            "accepted",
            "contacted",
            "assist_answered",
            "replied",
            "resolved",
            "reopened",
            "contacted",
            "assist_answered",
            "replied",
            "resolved",
            "closed"
        ]
    );

    // ---- Queries.
    let list = |unit: &str, status: CaseStatus, limit: u32| ListCasesRequest {
        unit_id: unit.into(),
        status: status as i32,
        limit,
        ..Default::default()
    };
    let cases = client.list_cases(list("st-dongmen", CaseStatus::Unspecified, 0)).await.unwrap().into_inner().cases;
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].case_id, CASE_ID);
    assert_eq!(client.list_cases(list("", CaseStatus::Closed, 10)).await.unwrap().into_inner().cases.len(), 1);
    assert!(client.list_cases(list("", CaseStatus::Dispatched, 10)).await.unwrap().into_inner().cases.is_empty());
    assert!(client.list_cases(list("st-xinan", CaseStatus::Unspecified, 10)).await.unwrap().into_inner().cases.is_empty());
    let after = ListCasesRequest { after_case_id: CASE_ID.into(), ..list("", CaseStatus::Unspecified, 10) };
    assert!(client.list_cases(after).await.unwrap().into_inner().cases.is_empty(), "paging past the last case");
    let err = client.list_cases(list("", CaseStatus::Unspecified, 501)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("maximum of 500"), "{}", err.message());
    let by_no = CaseRef { r#ref: Some(Ref::CaseNo(CASE_NO.into())) };
    assert_eq!(client.get_case(by_no).await.unwrap().into_inner().case_id, CASE_ID);
    let unknown = CaseRef { r#ref: Some(Ref::CaseNo("DM19990101-0001".into())) };
    assert_eq!(client.get_case(unknown).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(client.get_case(CaseRef { r#ref: None }).await.unwrap_err().code(), Code::InvalidArgument);

    let dead = h.db.count("SELECT COUNT(*) FROM dead_letters").await.unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
    h.db.close().await;
    h.stop().await;
}

/// Trust (issue 6): with tokens required, a unit sees and handles only its own cases, and the
/// unit it acts for is its token's.
#[tokio::test(flavor = "multi_thread")]
async fn a_unit_sees_and_handles_only_its_own_cases() {
    use jiesu_kit::auth::Role;
    let (h, signer) = Harness::start_with_tokens("dispatch", |c, k| async move { jiesu_dispatch::start(&c, k).await }).await;
    let first = uuid::Uuid::now_v7().to_string();
    h.publish(&classified(&first)).await;
    h.handled(&first).await.unwrap();

    let token = |role: Role, unit: Option<&str>| jiesu_testkit::bearer(&signer, "u-1", role, unit);
    let client = DispatchServiceClient::new(h.channel().await);
    let call = |auth: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>, unit: &str| {
        let mut client = client.clone();
        let unit = unit.to_string();
        async move {
            let mut get = tonic::Request::new(by_id());
            let mut accept_req = tonic::Request::new(accept(&unit));
            if let Some(a) = auth {
                get.metadata_mut().insert("authorization", a.clone());
                accept_req.metadata_mut().insert("authorization", a);
            }
            (client.get_case(get).await.map(|r| r.into_inner()), client.accept(accept_req).await.map(|r| r.into_inner()))
        }
    };
    let denied = |r: Result<jiesu_proto::v1::CaseView, tonic::Status>, code: Code, why: &str| {
        let status = r.expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(why), "{why}: {}", status.message());
    };

    let (get, acc) = call(None, "st-dongmen").await;
    denied(get, Code::Unauthenticated, "no bearer token");
    denied(acc, Code::Unauthenticated, "no bearer token");
    // Another street's handler: neither sees nor signs for the case.
    let (get, acc) = call(Some(token(Role::UnitHandler, Some("st-xinan"))), "").await;
    denied(get, Code::PermissionDenied, "owns or assists");
    denied(acc, Code::PermissionDenied, "[not-owner]");
    // The owner's handler naming another unit in the request: refused, not corrected.
    let (_, acc) = call(Some(token(Role::UnitHandler, Some("st-dongmen"))), "st-xinan").await;
    denied(acc, Code::PermissionDenied, "acts for unit st-dongmen (its token), not for st-xinan");
    // A revisit agent reads the case (to call the citizen back about its reply) but does not handle it.
    let (get, acc) = call(Some(token(Role::RevisitAgent, None)), "").await;
    assert_eq!(get.expect("a revisit agent reads the case").unit_id, "st-dongmen");
    denied(acc, Code::PermissionDenied, "may not act on cases");
    // The owner's handler, unit from the token: signs for it.
    let (get, acc) = call(Some(token(Role::UnitHandler, Some("st-dongmen"))), "").await;
    assert_eq!(get.unwrap().unit_id, "st-dongmen");
    assert_eq!(acc.unwrap().status(), CaseStatus::Accepted);

    // Listing: a unit only its own; the centre any.
    let list = |auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>, unit: &str| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(ListCasesRequest { unit_id: unit.into(), limit: 10, ..Default::default() });
        req.metadata_mut().insert("authorization", auth);
        async move { client.list_cases(req).await }
    };
    assert_eq!(list(token(Role::UnitHandler, Some("st-dongmen")), "").await.unwrap().into_inner().cases.len(), 1);
    let refused = list(token(Role::UnitHandler, Some("st-xinan")), "st-dongmen").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(list(token(Role::CentreAgent, None), "").await.unwrap().into_inner().cases.len(), 1);
}

/// Where a case would go, and which rule decided (派单预演): for the centre; nothing dispatched.
#[tokio::test(flavor = "multi_thread")]
async fn the_centre_previews_a_route_and_sees_the_rule_that_decided() {
    use jiesu_kit::auth::Role;
    use jiesu_proto::v1::PreviewRouteRequest;
    let (h, signer) = Harness::start_with_tokens("dispatch", |c, k| async move { jiesu_dispatch::start(&c, k).await }).await;
    let client = DispatchServiceClient::new(h.channel().await);
    let preview = |role: Role, unit: Option<&str>, sub_item: &str, street: &str, community: &str| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(PreviewRouteRequest {
            sub_item: sub_item.into(),
            street: street.into(),
            community: community.into(),
            at: None,
        });
        req.metadata_mut().insert("authorization", jiesu_testkit::bearer(&signer, "u-1", role, unit));
        async move { client.preview_route(req).await.map(|r| r.into_inner()) }
    };

    // A parking lock in 荔枝社区: the street office of the place leads (属地管理), named by its rule.
    let r = preview(Role::CentreAgent, None, "01.03", "", "cm-lizhi").await.unwrap();
    assert_eq!((r.lead_unit_id.as_str(), r.fallback), ("st-dongmen", false));
    assert!(r.rule.starts_with("dispatch.matrix[") && r.rule.contains("@street"), "{}", r.rule);
    assert!(!r.lead_unit_name.is_empty() && r.lead_unit_name != r.lead_unit_id);
    // Illegal construction: the department leads, the street assists.
    let r = preview(Role::Auditor, None, "01.02", "st-xinan", "").await.unwrap();
    assert_eq!((r.lead_unit_id.as_str(), r.assisting_unit_ids.as_slice()), ("dept-urban-management", &["st-xinan".to_string()][..]));
    // Nothing fits a category-level rule needing a street the place lacks: the fallback.
    let r = preview(Role::CentreAgent, None, "01.03", "", "").await.unwrap();
    assert!(r.fallback || r.lead_unit_id == "centre", "{r:?}");
    // An unknown place is bad input, not a silent fallback.
    let err = preview(Role::CentreAgent, None, "01.03", "st-nowhere", "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("st-nowhere"), "{}", err.message());
    // A unit does not browse the centre's responsibility list.
    let err = preview(Role::UnitHandler, Some("st-dongmen"), "01.03", "st-dongmen", "").await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("may not preview routes"), "{}", err.message());
    // Nothing was dispatched.
    assert_eq!(h.db.count("SELECT COUNT(*) FROM cases").await.unwrap(), 0);
}
