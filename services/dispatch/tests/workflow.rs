//! The handling workflow (办理流程) through the real service: each rule of `docs/workflow.md`
//! walked with verified tokens, on SQLite and PostgreSQL, against a real nats-server, with a
//! clock the test moves. Each rule is checked in what the API answers, in the case as stored and
//! in the event other services act on.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use jiesu_kit::{auth::Role, clock::ManualClock, time::to_proto};
use jiesu_proto::v1::{
    AcceptAssistRequest, AcceptRequest, AddAssistingRequest, AnswerAssistRequest, CaseAssistAnswered, CaseClassified, CaseClosed,
    CaseDispatched, CaseEscalated, CaseExtensionDecided, CaseQueued, CaseRef, CaseReturnReviewed, CaseReturned, CaseStatus, CaseSupervised,
    CaseView, CloseAsUnreasonableRequest, ContactRequest, CountCasesRequest, DecideExtensionRequest, DispatchRequest, EscalateRequest,
    ListCasesRequest, Location, ReplyRequest, RequestExtensionRequest, ResolveRequest, ResponseLetter, ReturnReason, ReturnRequest,
    ReviewReturnRequest, SlaBreached, SuperviseRequest, TransferRequest, Urgency, VerifyRequest, case_ref::Ref,
    dispatch_service_client::DispatchServiceClient,
};
use jiesu_proto::v1::{CaseReopened, GetOrganisationRequest};
use jiesu_testkit::{Backend, Harness, TestBed, event_meta};
use tonic::{Code, Request, Status, transport::Channel};

jiesu_testkit::on_both_backends!(every_rule_of_the_workflow);

/// Monday 7 December 2026, 09:00 in Beijing: a working week ahead.
fn monday_morning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 1, 0, 0).unwrap()
}

struct Desk {
    h: Harness,
    clock: ManualClock,
    signer: jiesu_kit::auth::Signer,
    client: DispatchServiceClient<Channel>,
    next: u32,
}

/// Who calls: the centre's agent, a supervisor, a unit's handler, a leader.
#[derive(Clone, Copy)]
enum As<'a> {
    Centre,
    Supervisor,
    Unit(&'a str),
    Leader(&'a str),
}

impl Desk {
    async fn start(backend: Backend) -> Self {
        let mut bed = TestBed::new(jiesu_testkit::demo_config(), &["dispatch"]);
        let signer = bed.require_tokens();
        let clock = ManualClock::new(monday_morning());
        let h = Harness::start_on_backend(bed, "dispatch", backend, Arc::new(clock.clone()), |c, k| async move {
            jiesu_dispatch::start(&c, k).await
        })
        .await;
        let client = DispatchServiceClient::new(h.channel().await);
        Desk { h, clock, signer, client, next: 0 }
    }

    fn req<T>(&self, who: As<'_>, msg: T) -> Request<T> {
        let (subject, role, unit) = match who {
            As::Centre => ("agent-zhang", Role::CentreAgent, None),
            As::Supervisor => ("supervisor-liu", Role::CentreSupervisor, None),
            As::Unit(u) => ("handler-wang", Role::UnitHandler, Some(u)),
            As::Leader(l) => (l, Role::Leader, None),
        };
        let mut r = Request::new(msg);
        r.metadata_mut().insert("authorization", jiesu_testkit::bearer(&self.signer, subject, role, unit));
        r
    }

    /// A classified case of `sub_item` in `community`, as dispatch receives it; its id.
    async fn classified(&mut self, sub_item: &str, community: &str) -> String {
        self.next += 1;
        let case_id = uuid::Uuid::now_v7().to_string();
        let case_no = format!("DM20261207-{:04}", self.next);
        let event_id = uuid::Uuid::now_v7().to_string();
        let ev = CaseClassified {
            meta: Some(event_meta(&event_id, &case_id, &case_no)),
            category: sub_item[..2].into(),
            sub_item: sub_item.into(),
            urgency: Urgency::Normal as i32,
            confidence: 0.9,
            title: format!("诉求{}", self.next),
            location: Some(Location { community: community.into(), ..Default::default() }),
            ..Default::default()
        };
        assert!(self.h.publish(&ev).await);
        self.h.handled(&event_id).await.unwrap();
        case_id
    }

    async fn view(&self, case_id: &str) -> CaseView {
        self.client.clone().get_case(self.req(As::Centre, by_id(case_id))).await.expect("GetCase").into_inner()
    }

    async fn events<E: jiesu_proto::Event>(&self, case_id: &str) -> Vec<E> {
        self.h.settled().await.unwrap();
        self.h.events::<E>().await.into_iter().filter(|e| e.meta().is_some_and(|m| m.case_id == case_id)).collect()
    }
}

fn by_id(case_id: &str) -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(case_id.into())) }
}

fn case(case_id: &str) -> Option<CaseRef> {
    Some(by_id(case_id))
}

/// The refusal's code and rule.
fn refused<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>, code: Code, rule: &str) {
    let status = r.expect_err("refused");
    assert_eq!(status.code(), code, "{status:?}");
    let got = status.metadata().get("jiesu-refusal").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(got, rule, "{}", status.message());
    assert!(status.message().ends_with(&format!("[{rule}]")), "{}", status.message());
}

fn bad<T: std::fmt::Debug>(r: Result<tonic::Response<T>, Status>, words: &str) {
    let status = r.expect_err("bad input");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains(words), "{words}: {}", status.message());
}

async fn every_rule_of_the_workflow(backend: Backend) {
    let mut d = Desk::start(backend).await;
    let c = d.client.clone();
    returns_disputed_and_upheld(&mut d, c.clone()).await;
    joint_handling_and_the_written_response(&mut d, c.clone()).await;
    extensions_keep_the_original_deadline(&mut d, c.clone()).await;
    escalation_supervision_and_leaders(&mut d, c.clone()).await;
    the_manual_queue_transfers_and_unreasonable_requests(&mut d, c.clone()).await;
    sla_breaches_supervise_and_escalate(&mut d, c.clone()).await;
    repeated_complaints_and_the_organisation(&mut d, c.clone()).await;
    counts_for_the_dashboard(&mut d, c).await;
    let dead = d.h.db.count("SELECT COUNT(*) FROM dead_letters").await.unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
    d.h.db.close().await;
    d.h.stop().await;
}

/// 退回: within the window, reviewed by the centre; disputed (sent back) or upheld (re-dispatched);
/// never more than twice; never after the window; never by another unit.
async fn returns_disputed_and_upheld(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    // 03.01 water supply in 荔枝社区 → 水务局 alone.
    let id = d.classified("03.01", "cm-lizhi").await;
    assert_eq!(d.view(&id).await.unit_id, "dept-water");
    let ret = |text: &str| ReturnRequest { case: case(&id), reason: ReturnReason::NotOurRemit as i32, text: text.into() };

    // Another unit cannot return (or do anything to) a case it does not own.
    refused(c.r#return(d.req(As::Unit("st-xinan"), ret("不归我们管"))).await, Code::PermissionDenied, "not-owner");
    refused(
        c.request_extension(d.req(
            As::Unit("st-xinan"),
            RequestExtensionRequest { case: case(&id), until: Some(to_proto(monday_morning() + Duration::days(9))), reason: "x".into() },
        ))
        .await,
        Code::PermissionDenied,
        "not-owner",
    );
    // …and does not even see it.
    let err = c.get_case(d.req(As::Unit("st-xinan"), by_id(&id))).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    bad(c.r#return(d.req(As::Unit("dept-water"), ReturnRequest { reason: 0, ..ret("x") })).await, "return reason");
    refused(c.r#return(d.req(As::Unit("dept-water"), ret("  "))).await, Code::InvalidArgument, "missing-text");

    // First return: the centre disputes it and sends it back with its ruling.
    d.clock.advance(Duration::hours(3));
    let v = c.r#return(d.req(As::Unit("dept-water"), ret("属于小区物业内部管网，非市政供水"))).await.unwrap().into_inner();
    assert_eq!((v.returns, v.pending_return.as_ref().unwrap().unit_id.as_str()), (1, "dept-water"));
    let listed =
        c.list_cases(d.req(As::Centre, ListCasesRequest { return_pending: true, ..Default::default() })).await.unwrap().into_inner().cases;
    assert_eq!(listed.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), [id.as_str()], "the centre's queue of returns");
    refused(
        c.accept(d.req(As::Unit("dept-water"), AcceptRequest { case: case(&id), ..Default::default() })).await,
        Code::FailedPrecondition,
        "return-pending",
    );
    refused(
        c.review_return(d.req(As::Unit("dept-water"), ReviewReturnRequest { case: case(&id), ruling: "x".into(), ..Default::default() }))
            .await,
        Code::PermissionDenied,
        "centre-only",
    );
    bad(
        c.review_return(d.req(As::Centre, ReviewReturnRequest { case: case(&id), uphold: true, ..Default::default() })).await,
        "to_unit_id is required",
    );
    let ruling = ReviewReturnRequest {
        case: case(&id),
        uphold: false,
        ruling: "小区外市政管网属水务局职责，请继续办理".into(),
        ..Default::default()
    };
    let v = c.review_return(d.req(As::Centre, ruling)).await.unwrap().into_inner();
    assert!(v.pending_return.is_none());
    assert_eq!((v.unit_id.as_str(), v.status()), ("dept-water", CaseStatus::Dispatched), "sent back: the unit owns it still");
    let reviewed = d.events::<CaseReturnReviewed>(&id).await;
    assert_eq!(reviewed.len(), 1);
    assert!(!reviewed[0].upheld && reviewed[0].ruling.contains("水务局职责"));

    // Second return: upheld, the case goes to 住建委 with a new dispatch.
    let v = c.r#return(d.req(As::Unit("dept-water"), ret("二次供水设施归住建委管理"))).await.unwrap().into_inner();
    assert_eq!(v.returns, 2);
    bad(
        c.review_return(d.req(
            As::Centre,
            ReviewReturnRequest { case: case(&id), uphold: true, to_unit_id: "dept-nowhere".into(), ..Default::default() },
        ))
        .await,
        "dept-nowhere",
    );
    let upheld =
        ReviewReturnRequest { case: case(&id), uphold: true, to_unit_id: "dept-housing".into(), ruling: "二次供水归住建委".into() };
    let v = c.review_return(d.req(As::Centre, upheld)).await.unwrap().into_inner();
    assert_eq!((v.unit_id.as_str(), v.unit_name.as_str(), v.status()), ("dept-housing", "住房和城乡建设委员会", CaseStatus::Dispatched));
    let dispatched = d.events::<CaseDispatched>(&id).await;
    assert_eq!(dispatched.len(), 2, "the routed dispatch and the re-dispatch");
    let re = &dispatched[1];
    assert_eq!((re.unit_id.as_str(), re.how.as_str(), re.previous_unit_id.as_str()), ("dept-housing", "redispatch", "dept-water"));
    assert_eq!(re.deadline, dispatched[0].deadline, "the clocks keep running through a dispute");
    let returned = d.events::<CaseReturned>(&id).await;
    assert_eq!(returned.iter().map(|r| r.returns).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(returned[0].reason(), ReturnReason::NotOurRemit);

    // No third return: the case does not bounce (转圈); the centre must handle or escalate it.
    refused(c.r#return(d.req(As::Unit("dept-housing"), ret("也不归我们"))).await, Code::FailedPrecondition, "returns-exhausted");

    // The window: two working days after dispatch. A case dispatched on Monday morning cannot be
    // returned on Wednesday afternoon.
    d.clock.set(monday_morning());
    let late = d.classified("03.01", "cm-lizhi").await;
    d.clock.set(monday_morning() + Duration::days(2) + Duration::hours(6));
    let late_ret = ReturnRequest { case: case(&late), reason: ReturnReason::WrongPlace as i32, text: "地址有误".into() };
    refused(c.r#return(d.req(As::Unit("dept-water"), late_ret.clone())).await, Code::FailedPrecondition, "return-window");
    let timeline = d.view(&id).await.timeline;
    let returned_line = timeline.iter().find(|t| t.event == "returned").unwrap();
    assert_eq!(returned_line.detail, "申请退回（不属于本单位职责）：属于小区物业内部管网，非市政供水");
    assert_eq!(returned_line.actor, "handler-wang");
}

/// 多方联动: the lead resolves only when every assisting part — from the list and called in — has
/// answered; the written response (处理意见书) goes with the reply.
async fn joint_handling_and_the_written_response(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    // 01.03 in 海滨社区 (新安街道) → 新安街道 leads, 城管委 and 海滨社区 assist.
    let id = d.classified("01.03", "cm-haibin").await;
    let v = d.view(&id).await;
    assert_eq!(v.unit_id, "st-xinan");
    assert_eq!(v.parts.iter().map(|p| p.unit_id.as_str()).collect::<Vec<_>>(), ["dept-urban-management", "cm-haibin"]);
    let lead = As::Unit("st-xinan");
    c.accept(d.req(lead, AcceptRequest { case: case(&id), ..Default::default() })).await.unwrap();

    // The lead whistles (吹哨) for 住建委 with a deadline of its own; bad input is named.
    let part_deadline = monday_morning() + Duration::days(2);
    let whistle = AddAssistingRequest {
        case: case(&id),
        unit_id: "dept-housing".into(),
        deadline: Some(to_proto(part_deadline)),
        note: "请核查违建".into(),
    };
    bad(c.add_assisting(d.req(lead, AddAssistingRequest { unit_id: "nobody".into(), ..whistle.clone() })).await, "nobody");
    refused(c.add_assisting(d.req(As::Unit("dept-water"), whistle.clone())).await, Code::PermissionDenied, "not-owner");
    let v = c.add_assisting(d.req(lead, whistle.clone())).await.unwrap().into_inner();
    let housing = v.parts.iter().find(|p| p.unit_id == "dept-housing").unwrap();
    assert_eq!(housing.deadline, Some(to_proto(part_deadline)));
    refused(c.add_assisting(d.req(lead, whistle)).await, Code::FailedPrecondition, "already-involved");
    // The assisting unit sees the case and signs for its part.
    assert_eq!(c.get_case(d.req(As::Unit("dept-housing"), by_id(&id))).await.unwrap().into_inner().case_id, id);
    let v = c
        .accept_assist(d.req(As::Unit("dept-housing"), AcceptAssistRequest { case: case(&id), ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.parts.iter().find(|p| p.unit_id == "dept-housing").unwrap().accepted);

    c.contact(d.req(lead, ContactRequest { case: case(&id), note: "约定明早现场核实".into(), ..Default::default() })).await.unwrap();
    c.verify(d.req(lead, VerifyRequest { case: case(&id), note: "现场确有占道".into() })).await.unwrap();
    let letter = ResponseLetter {
        verification: "现场确有商户占道经营".into(),
        handling: "已联合城管劝离，设置隔离栏".into(),
        next_steps: "社区每日巡查".into(),
    };
    bad(c.reply(d.req(lead, ReplyRequest { case: case(&id), letter: None })).await, "letter is required");
    refused(
        c.reply(d.req(lead, ReplyRequest { case: case(&id), letter: Some(ResponseLetter { handling: " ".into(), ..letter.clone() }) }))
            .await,
        Code::InvalidArgument,
        "missing-text",
    );
    let v = c.reply(d.req(lead, ReplyRequest { case: case(&id), letter: Some(letter.clone()) })).await.unwrap().into_inner();
    assert_eq!((v.status(), v.letter.as_ref()), (CaseStatus::Replied, Some(&letter)));

    let resolve = || ResolveRequest { case: case(&id), ..Default::default() };
    refused(c.resolve(d.req(lead, resolve())).await, Code::FailedPrecondition, "assist-unanswered");
    let answer = |unit: &str| AnswerAssistRequest { case: case(&id), answer: format!("{unit}已配合处理"), ..Default::default() };
    refused(c.answer_assist(d.req(As::Unit("st-dongmen"), answer("st-dongmen"))).await, Code::PermissionDenied, "not-assisting");
    c.answer_assist(d.req(As::Unit("dept-urban-management"), answer("dept-urban-management"))).await.unwrap();
    c.answer_assist(d.req(As::Unit("cm-haibin"), answer("cm-haibin"))).await.unwrap();
    refused(c.resolve(d.req(lead, resolve())).await, Code::FailedPrecondition, "assist-unanswered");
    refused(c.answer_assist(d.req(As::Unit("cm-haibin"), answer("cm-haibin"))).await, Code::FailedPrecondition, "part-answered");
    c.answer_assist(d.req(As::Unit("dept-housing"), answer("dept-housing"))).await.unwrap();
    let v = c.resolve(d.req(lead, resolve())).await.unwrap().into_inner();
    assert_eq!((v.status(), v.reply.as_str()), (CaseStatus::Resolved, "已联合城管劝离，设置隔离栏"));
    let answered = d.events::<CaseAssistAnswered>(&id).await;
    assert_eq!(answered.iter().map(|a| a.all_answered).collect::<Vec<_>>(), [false, false, true]);
}

/// 延期: asked before the deadline with a reason, decided by the centre; the original deadline is
/// kept beside the new one.
async fn extensions_keep_the_original_deadline(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    let id = d.classified("03.01", "cm-lizhi").await;
    let v = d.view(&id).await;
    let deadline = v.deadline.unwrap();
    assert_eq!(deadline, to_proto(monday_morning() + Duration::hours(24)), "一般: 24 hours from dispatch");
    let unit = As::Unit("dept-water");
    let until = monday_morning() + Duration::days(10);
    let ask =
        RequestExtensionRequest { case: case(&id), until: Some(to_proto(until)), reason: "需协调供电公司停电检修管网".into() };
    refused(
        c.request_extension(d.req(unit, RequestExtensionRequest { until: Some(to_proto(monday_morning())), ..ask.clone() })).await,
        Code::InvalidArgument,
        "extension-not-later",
    );
    bad(c.request_extension(d.req(unit, RequestExtensionRequest { until: None, ..ask.clone() })).await, "until is required");
    let v = c.request_extension(d.req(unit, ask.clone())).await.unwrap().into_inner();
    assert_eq!(v.pending_extension.unwrap().until, Some(to_proto(until)));
    refused(c.request_extension(d.req(unit, ask.clone())).await, Code::FailedPrecondition, "extension-pending");
    refused(
        c.decide_extension(d.req(unit, DecideExtensionRequest { case: case(&id), approve: true, reason: String::new() })).await,
        Code::PermissionDenied,
        "centre-only",
    );
    let v = c
        .decide_extension(d.req(As::Centre, DecideExtensionRequest { case: case(&id), approve: true, reason: "情况属实".into() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.deadline, v.original_deadline), (Some(to_proto(until)), Some(deadline)));
    let decided = d.events::<CaseExtensionDecided>(&id).await;
    assert_eq!(decided.len(), 1);
    assert!(decided[0].approved);
    assert_eq!((decided[0].deadline, decided[0].original_deadline), (Some(to_proto(until)), Some(deadline)));

    // Past the deadline in force, an extension is no longer asked for: the case is overdue.
    let other = d.classified("03.01", "cm-lizhi").await;
    d.clock.set(monday_morning() + Duration::hours(30));
    let late = RequestExtensionRequest { case: case(&other), ..ask };
    refused(c.request_extension(d.req(unit, late)).await, Code::FailedPrecondition, "past-deadline");
    let overdue =
        c.list_cases(d.req(As::Centre, ListCasesRequest { overdue: true, ..Default::default() })).await.unwrap().into_inner().cases;
    let ids: Vec<&str> = overdue.iter().map(|c| c.case_id.as_str()).collect();
    assert!(ids.contains(&other.as_str()) && !ids.contains(&id.as_str()), "{ids:?}");
    assert!(overdue.iter().all(|c| c.overdue));
}

/// 提级/领导包案 and 督办: the leader becomes the owner of record and sees the case; the unit keeps
/// working it; supervisors, the centre and the case's leader supervise.
async fn escalation_supervision_and_leaders(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    // 08.01 → 市场监管局, a unit no leader oversees: only an escalation shows it to one.
    let id = d.classified("08.01", "cm-lizhi").await;
    let esc = |leader: &str| EscalateRequest { case: case(&id), leader_id: leader.into(), reason: "群众反映强烈".into() };
    refused(c.escalate(d.req(As::Unit("dept-market"), esc("leader-wang"))).await, Code::PermissionDenied, "centre-only");
    bad(c.escalate(d.req(As::Centre, esc("mayor"))).await, "not a leader");
    // A leader sees nothing before the case is escalated to them.
    assert_eq!(c.get_case(d.req(As::Leader("leader-wang"), by_id(&id))).await.unwrap_err().code(), Code::PermissionDenied);
    let v = c.escalate(d.req(As::Centre, esc("leader-wang"))).await.unwrap().into_inner();
    assert_eq!((v.leader_id.as_str(), v.unit_id.as_str()), ("leader-wang", "dept-market"));
    let escalated = d.events::<CaseEscalated>(&id).await;
    assert_eq!((escalated[0].leader_id.as_str(), escalated[0].leader_name.as_str()), ("leader-wang", "王副区长"));
    // The leader sees it and lists it; another leader does not.
    assert_eq!(c.get_case(d.req(As::Leader("leader-wang"), by_id(&id))).await.unwrap().into_inner().case_id, id);
    assert_eq!(c.get_case(d.req(As::Leader("leader-li"), by_id(&id))).await.unwrap_err().code(), Code::PermissionDenied);
    let mine = c.list_cases(d.req(As::Leader("leader-wang"), ListCasesRequest::default())).await.unwrap().into_inner().cases;
    assert_eq!(mine.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    assert!(c.list_cases(d.req(As::Leader("leader-li"), ListCasesRequest::default())).await.unwrap().into_inner().cases.is_empty());
    // A leader's own units' figures: every case of a unit they oversee, and no other unit's.
    let overseen = ListCasesRequest { unit_id: "dept-water".into(), ..Default::default() };
    let water = c.list_cases(d.req(As::Leader("leader-wang"), overseen.clone())).await.unwrap().into_inner().cases;
    assert!(water.len() > 1 && water.iter().all(|c| c.unit_id == "dept-water"), "{} cases", water.len());
    let one = &water.iter().find(|c| c.leader_id.is_empty()).expect("a case not escalated").case_id;
    assert_eq!(c.get_case(d.req(As::Leader("leader-wang"), by_id(one))).await.unwrap().into_inner().case_id, *one);
    assert_eq!(c.get_case(d.req(As::Leader("leader-li"), by_id(one))).await.unwrap_err().code(), Code::PermissionDenied);
    let not_overseen = c.list_cases(d.req(As::Leader("leader-li"), overseen)).await.unwrap().into_inner().cases;
    assert!(not_overseen.is_empty(), "leader-li does not oversee 水务局 and has none of its cases escalated");
    // The unit keeps working it.
    c.accept(d.req(As::Unit("dept-market"), AcceptRequest { case: case(&id), ..Default::default() })).await.unwrap();

    // Supervision: the leader of the case, a supervisor; not a unit, not another leader.
    let note = |n: &str| SuperviseRequest { case: case(&id), note: n.into() };
    refused(c.supervise(d.req(As::Unit("dept-market"), note("x"))).await, Code::PermissionDenied, "not-supervisor");
    refused(c.supervise(d.req(As::Leader("leader-li"), note("x"))).await, Code::PermissionDenied, "not-supervisor");
    c.supervise(d.req(As::Leader("leader-wang"), note("请三日内办结并报告"))).await.unwrap();
    let v = c.supervise(d.req(As::Supervisor, note("已电话督促"))).await.unwrap().into_inner();
    assert!(v.supervised);
    assert_eq!(v.supervision_notes, ["请三日内办结并报告", "已电话督促"]);
    let supervised = d.events::<CaseSupervised>(&id).await;
    assert_eq!(supervised.iter().map(|s| s.supervised_by.as_str()).collect::<Vec<_>>(), ["leader-wang", "supervisor-liu"]);
    let listed = c
        .list_cases(d.req(As::Centre, ListCasesRequest { supervised: true, escalated: true, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(listed.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
}

/// The manual queue (待人工派单), transfers (改派) and unreasonable requests (不合理诉求).
async fn the_manual_queue_transfers_and_unreasonable_requests(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    // 07.01: no rule of the demo list fits → the centre's manual queue, announced as queued.
    let id = d.classified("07.01", "cm-lizhi").await;
    let v = d.view(&id).await;
    assert!(v.manual_queue && v.unit_id.is_empty(), "{v:?}");
    assert_eq!(d.events::<CaseQueued>(&id).await.len(), 1);
    assert!(d.events::<CaseDispatched>(&id).await.is_empty(), "not dispatched: the dispatch clock runs on");
    let queue =
        c.list_cases(d.req(As::Centre, ListCasesRequest { manual_queue: true, ..Default::default() })).await.unwrap().into_inner().cases;
    assert!(queue.iter().any(|c| c.case_id == id));
    refused(
        c.dispatch(
            d.req(As::Unit("st-dongmen"), DispatchRequest { case: case(&id), to_unit_id: "st-dongmen".into(), reason: String::new() }),
        )
        .await,
        Code::PermissionDenied,
        "centre-only",
    );
    bad(
        c.dispatch(d.req(As::Centre, DispatchRequest { case: case(&id), to_unit_id: "centre".into(), reason: String::new() })).await,
        "handling unit",
    );
    let v = c
        .dispatch(d.req(As::Centre, DispatchRequest { case: case(&id), to_unit_id: "st-dongmen".into(), reason: "属地管理".into() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((v.unit_id.as_str(), v.manual_queue), ("st-dongmen", false));
    refused(
        c.dispatch(d.req(As::Centre, DispatchRequest { case: case(&id), to_unit_id: "dept-water".into(), reason: String::new() })).await,
        Code::FailedPrecondition,
        "has-owner",
    );

    // A transfer needs a reason and moves the case to a new owner, who signs for it.
    c.accept(d.req(As::Unit("st-dongmen"), AcceptRequest { case: case(&id), ..Default::default() })).await.unwrap();
    let transfer = TransferRequest { case: case(&id), to_unit_id: "dept-market".into(), reason: "  ".into() };
    refused(c.transfer(d.req(As::Centre, transfer.clone())).await, Code::InvalidArgument, "missing-text");
    let v = c.transfer(d.req(As::Centre, TransferRequest { reason: "涉及市场监管".into(), ..transfer })).await.unwrap().into_inner();
    assert_eq!((v.unit_id.as_str(), v.status()), ("dept-market", CaseStatus::Dispatched));
    let hows: Vec<String> = d.events::<CaseDispatched>(&id).await.into_iter().map(|e| e.how).collect();
    assert_eq!(hows, ["manual", "transfer"]);
    // The old owner has no say any more.
    refused(
        c.accept(d.req(As::Unit("st-dongmen"), AcceptRequest { case: case(&id), ..Default::default() })).await,
        Code::PermissionDenied,
        "not-owner",
    );

    // Closed as unreasonable, with what the citizen is told; nothing more happens to it.
    refused(
        c.close_as_unreasonable(d.req(As::Unit("dept-market"), CloseAsUnreasonableRequest { case: case(&id), explanation: "x".into() }))
            .await,
        Code::PermissionDenied,
        "centre-only",
    );
    let explanation = "您的诉求涉及民事纠纷，已告知可通过人民调解或诉讼途径解决";
    let v = c
        .close_as_unreasonable(d.req(As::Centre, CloseAsUnreasonableRequest { case: case(&id), explanation: explanation.into() }))
        .await
        .unwrap()
        .into_inner();
    assert!(v.unreasonable);
    assert_eq!((v.status(), v.reply.as_str()), (CaseStatus::Closed, explanation));
    let closed = d.events::<CaseClosed>(&id).await;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].unreasonable && closed[0].explanation == explanation);
    refused(
        c.accept(d.req(As::Unit("dept-market"), AcceptRequest { case: case(&id), ..Default::default() })).await,
        Code::FailedPrecondition,
        "closed",
    );
}

/// SLA alerts colour the case; a breached resolve limit supervises it, a breached escalation
/// limit hands it to the leader overseeing its unit.
async fn sla_breaches_supervise_and_escalate(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    // 01.03 in 荔枝社区 → 东门街道, overseen by 李副区长.
    let id = d.classified("01.03", "cm-lizhi").await;
    let v = d.view(&id).await;
    assert_eq!((v.unit_id.as_str(), v.colour.as_str()), ("st-dongmen", "green"));
    let breach = |milestone: &str| {
        let event_id = uuid::Uuid::now_v7().to_string();
        let ev = SlaBreached {
            meta: Some(event_meta(&event_id, &id, &v.case_no)),
            clock_id: format!("{id}:{milestone}"),
            milestone: milestone.into(),
            version: 1,
            unit_id: "st-dongmen".into(),
            level: "red".into(),
            ..Default::default()
        };
        (event_id, ev)
    };
    let (e1, resolve) = breach("resolve");
    d.h.publish(&resolve).await;
    d.h.handled(&e1).await.unwrap();
    let v = d.view(&id).await;
    assert_eq!((v.colour.as_str(), v.supervised), ("red", true));
    assert_eq!(d.events::<CaseSupervised>(&id).await[0].supervised_by, "sla");
    let (e2, escalate) = breach("escalate");
    d.h.publish(&escalate).await;
    d.h.handled(&e2).await.unwrap();
    assert_eq!(d.view(&id).await.leader_id, "leader-li");
    let red =
        c.list_cases(d.req(As::Centre, ListCasesRequest { colour: "red".into(), ..Default::default() })).await.unwrap().into_inner().cases;
    assert_eq!(red.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
    bad(c.list_cases(d.req(As::Centre, ListCasesRequest { colour: "purple".into(), ..Default::default() })).await, "purple");

    // The ladder's last rung (红灯提级): another case red for the district's time goes to the
    // leader overseeing its unit, with the reason given.
    let other = d.classified("01.03", "cm-lizhi").await;
    let case_no = d.view(&other).await.case_no;
    let event_id = uuid::Uuid::now_v7().to_string();
    let due = jiesu_proto::v1::SlaEscalationDue {
        meta: Some(event_meta(&event_id, &other, &case_no)),
        clock_id: format!("{other}:resolve"),
        milestone: "resolve".into(),
        version: 1,
        unit_id: "st-dongmen".into(),
        level: "red".into(),
        ..Default::default()
    };
    d.h.publish(&due).await;
    d.h.handled(&event_id).await.unwrap();
    let v = d.view(&other).await;
    assert_eq!((v.leader_id.as_str(), v.colour.as_str()), ("leader-li", "red"));
    let escalated = d.events::<CaseEscalated>(&other).await;
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].escalated_by, "sla");
    assert!(escalated[0].reason.contains("按时限阶梯自动提级"), "{}", escalated[0].reason);
}

/// 重办 counted per unit; a case reopened twice goes to the leader overseeing its unit. The
/// organisation as the desk reads it.
async fn repeated_complaints_and_the_organisation(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    d.clock.set(monday_morning());
    let id = d.classified("03.01", "cm-lizhi").await;
    let unit = As::Unit("dept-water");
    let case_no = d.view(&id).await.case_no;
    c.accept(d.req(unit, AcceptRequest { case: case(&id), ..Default::default() })).await.unwrap();
    for round in 2..=3 {
        c.contact(d.req(unit, ContactRequest { case: case(&id), ..Default::default() })).await.unwrap();
        c.resolve(d.req(unit, ResolveRequest { case: case(&id), reply: format!("第{}轮已处理", round - 1), ..Default::default() }))
            .await
            .unwrap();
        let event_id = uuid::Uuid::now_v7().to_string();
        let reopened = CaseReopened {
            meta: Some(event_meta(&event_id, &id, &case_no)),
            reason: "回访不满意".into(),
            revisit_id: format!("rv-{round}"),
            round,
        };
        d.h.publish(&reopened).await;
        d.h.handled(&event_id).await.unwrap();
        let v = d.view(&id).await;
        assert_eq!((v.status(), v.round), (CaseStatus::Reopened, round));
        assert_eq!(v.leader_id.is_empty(), round < 3, "escalated after the second reopening, not before");
    }
    let escalated = d.events::<CaseEscalated>(&id).await;
    assert_eq!((escalated[0].leader_id.as_str(), escalated[0].escalated_by.as_str()), ("leader-wang", "system"));
    let counts = c.count_cases(d.req(As::Centre, CountCasesRequest::default())).await.unwrap().into_inner();
    let water = counts.reopens.iter().find(|r| r.unit_id == "dept-water").expect("dept-water's reopenings");
    assert_eq!(water.reopens, 2);

    // The organisation, with its edition, duty contacts and leaders; not for a channel.
    let org = c.get_organisation(d.req(unit, GetOrganisationRequest {})).await.unwrap().into_inner();
    assert_eq!(org.version, "2026-12");
    let water = org.units.iter().find(|u| u.id == "dept-water").unwrap();
    assert_eq!((water.name.as_str(), water.kind.as_str(), water.parent.as_str()), ("水务局", "department", "district"));
    assert!(!water.duty.is_empty() && !water.duty[0].phone.is_empty());
    assert!(org.leaders.iter().any(|l| l.id == "leader-wang" && l.oversees.contains(&"dept-water".to_string())));
    let mut channel = Request::new(GetOrganisationRequest {});
    channel.metadata_mut().insert("authorization", jiesu_testkit::bearer(&d.signer, "hotline", Role::ChannelIntegrator, None));
    assert_eq!(c.get_organisation(channel).await.unwrap_err().code(), Code::PermissionDenied);
}

async fn counts_for_the_dashboard(d: &mut Desk, mut c: DispatchServiceClient<Channel>) {
    let all = c.count_cases(d.req(As::Centre, CountCasesRequest::default())).await.unwrap().into_inner();
    let total: u32 = all.counts.iter().map(|c| c.count).sum();
    let listed = c.list_cases(d.req(As::Centre, ListCasesRequest { limit: 500, ..Default::default() })).await.unwrap().into_inner().cases;
    assert_eq!(total as usize, listed.len());
    assert_eq!((all.escalated, all.red), (4, 2));
    assert!(all.return_pending == 0 && all.supervised >= 2);
    // A unit counts only its own.
    let water = c.count_cases(d.req(As::Unit("dept-water"), CountCasesRequest::default())).await.unwrap().into_inner();
    assert!(water.counts.iter().all(|c| c.unit_id == "dept-water"), "{water:?}");
    let refused_scope = c.count_cases(d.req(As::Unit("dept-water"), CountCasesRequest { unit_id: "st-dongmen".into() })).await.unwrap_err();
    assert_eq!(refused_scope.code(), Code::PermissionDenied);
}
