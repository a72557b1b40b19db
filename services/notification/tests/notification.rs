//! Notification against a real nats-server, a temporary SQLite database, the real intake service
//! (for `GetContact`) and a small HTTP server standing in for the SMS gateway.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use chrono::{TimeZone, Utc};
use jiesu_kit::{ManualClock, time::to_proto};
use jiesu_proto::v1::{
    CaseDispatched, CaseRef, Citizen, DeliveryView, EventMeta, ListDeliveriesResponse, Location, SlaBreached, Submission, SubmitRequest,
    case_ref::Ref, intake_service_client::IntakeServiceClient, notification_service_client::NotificationServiceClient,
};
use jiesu_testkit::{TestBed, demo_config, eventually, grpc_channel, publish_event, publish_event_as};
use serde_json::Value;
use tonic::transport::Channel;

/// How long a test waits for what should happen.
const WAIT: Duration = Duration::from_secs(20);
const PHONE: &str = "13800138000";
const MASKED: &str = "138****8000";

/// The webhook target: answers the first request with 500, every later one with 200.
#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<(StatusCode, Value)>>>,
}

impl Gateway {
    async fn start(self) -> SocketAddr {
        let app = Router::new().route("/sms", post(receive)).with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the gateway");
        let addr = listener.local_addr().expect("gateway address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn received(&self) -> Vec<(StatusCode, Value)> {
        self.received.lock().unwrap().clone()
    }
}

async fn receive(State(gw): State<Gateway>, Json(body): Json<Value>) -> StatusCode {
    let mut received = gw.received.lock().unwrap();
    let status = if received.is_empty() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK };
    received.push((status, body));
    status
}

/// The case's deliveries; none yet while notification does not know the case (NOT_FOUND).
async fn list(client: &mut NotificationServiceClient<Channel>, r: Ref) -> ListDeliveriesResponse {
    match client.list_deliveries(CaseRef { r#ref: Some(r) }).await {
        Ok(resp) => resp.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => ListDeliveriesResponse::default(),
        Err(s) => panic!("ListDeliveries: {s:?}"),
    }
}

fn find<'a>(resp: &'a ListDeliveriesResponse, kind: &str, sink: &str) -> Vec<&'a DeliveryView> {
    resp.deliveries.iter().filter(|d| d.recipient_kind == kind && d.sink == sink).collect()
}

fn meta(case_id: &str, case_no: &str) -> EventMeta {
    EventMeta {
        event_id: uuid::Uuid::now_v7().to_string(),
        case_id: case_id.into(),
        case_no: case_no.into(),
        occurred_at: Some(to_proto(Utc::now())),
        causation_id: String::new(),
        district: "demo".into(),
    }
}

fn breach(case_id: &str, case_no: &str) -> SlaBreached {
    SlaBreached {
        meta: Some(meta(case_id, case_no)),
        clock_id: uuid::Uuid::now_v7().to_string(),
        milestone: "accept".into(),
        milestone_name: String::new(), // an alert of an older timer: the built-in name is used
        version: 1,
        deadline: Some(to_proto(Utc.with_ymd_and_hms(2026, 11, 23, 2, 10, 0).unwrap())),
        unit_id: "st-dongmen".into(),
        level: "red".into(),
    }
}

fn submission(channel: &str, channel_ref: &str, phone: &str) -> SubmitRequest {
    SubmitRequest {
        submission: Some(Submission {
            channel: channel.into(),
            channel_ref: channel_ref.into(),
            citizen: Some(Citizen { name: "张三".into(), phone: phone.into(), anonymous: false }),
            title: "油烟扰民".into(),
            description: "楼下饭店油烟太大，晚上无法开窗".into(),
            location: Some(Location { street: "st-dongmen".into(), grid: "gd-dongmen-01".into(), ..Default::default() }),
            ..Default::default()
        }),
    }
}

/// Every byte the notification database holds (the file and its write-ahead log).
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["notification.db", "notification.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(name)) {
            all.extend(bytes);
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_become_deliveries_sent_once_with_retries_and_no_stored_phone() {
    let mut bed = TestBed::new(demo_config(), &["intake", "notification"]);
    let gateway = Gateway::default();
    let gateway_addr = gateway.clone().start().await;
    // One clock for both services: retries come due when the test moves it, not by waiting.
    let clock = ManualClock::new(Utc::now());

    bed.provision().await;
    let intake = jiesu_intake::start(&bed.config, Arc::new(clock.clone())).await.expect("intake starts");
    bed.config.set("notification.intake_url", format!("http://{}", intake.grpc_addr));
    bed.config.set("notification.webhook_url", format!("http://{gateway_addr}/sms"));
    let notification = jiesu_notification::start(&bed.config, Arc::new(clock.clone())).await.expect("notification starts");

    let mut intake_client = IntakeServiceClient::new(grpc_channel(intake.grpc_addr).await);
    let mut client = NotificationServiceClient::new(grpc_channel(notification.grpc_addr).await);
    let js = bed.jetstream().await.unwrap();
    let subjects = &bed.subjects;

    // A patrol report without a phone number: nobody to text. Submitted first, so that the
    // hotline case's deliveries appearing proves this one was handled already.
    let patrol = intake_client.submit(submission("grid_patrol", "p-1", "")).await.unwrap().into_inner();
    // case.received, emitted by intake itself, becomes a text to the citizen.
    let case = intake_client.submit(submission("hotline", "h-1", PHONE)).await.unwrap().into_inner();
    let by_id = || Ref::CaseId(case.case_id.clone());

    let first = eventually("the first, failed webhook attempt", WAIT, || {
        let mut client = client.clone();
        let r = by_id();
        async move {
            let resp = list(&mut client, r).await;
            let hook = find(&resp, "citizen", "webhook").first().map(|d| (*d).clone())?;
            let logged = find(&resp, "citizen", "log").first().is_some_and(|d| d.status == "sent");
            (hook.attempts == 1 && logged).then_some(resp)
        }
    })
    .await
    .unwrap();
    let hook = find(&first, "citizen", "webhook")[0];
    assert_eq!(hook.status, "pending");
    assert!(hook.last_error.contains("500"), "{}", hook.last_error);
    assert_eq!(hook.recipient, MASKED);
    let log = find(&first, "citizen", "log");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, "sent", "the log sink does not wait for the webhook");
    assert_eq!(log[0].recipient, MASKED);
    assert_eq!(log[0].text, format!("【示范区】您反映的诉求已受理，受理编号{}。我们将按时限办理并答复您，请保持电话畅通。", case.case_no));

    // The retry is due 5 s (retry_backoff[0]) after the failure.
    clock.advance(chrono::Duration::seconds(6));
    let sent = eventually("the retried webhook delivery", WAIT, || {
        let mut client = client.clone();
        let r = by_id();
        async move {
            let resp = list(&mut client, r).await;
            let hook = find(&resp, "citizen", "webhook").first().map(|d| (*d).clone())?;
            (hook.status == "sent").then_some(hook)
        }
    })
    .await
    .unwrap();
    assert_eq!(sent.attempts, 2);
    assert_eq!(sent.recipient, MASKED);
    let calls = gateway.received();
    assert_eq!(calls.len(), 2);
    let body = &calls[1].1;
    assert_eq!(calls[1].0, StatusCode::OK);
    assert_eq!(body["phone"], PHONE, "the gateway gets the number to text");
    assert_eq!(body["recipient"], MASKED);
    assert_eq!(body["recipient_kind"], "citizen");
    assert_eq!(body["case_id"], case.case_id.as_str());
    assert_eq!(body["case_no"], case.case_no.as_str());
    assert_eq!(body["template"], "case_received");
    assert_eq!(body["delivery_id"], sent.delivery_id.as_str());
    assert_eq!(calls[0].1["delivery_id"], calls[1].1["delivery_id"], "a retry is the same delivery");
    assert!(body["event_id"].as_str().is_some_and(|e| !e.is_empty()));

    // case.dispatched → the unit.
    let dispatched = CaseDispatched {
        meta: Some(meta(&case.case_id, &case.case_no)),
        unit_id: "st-dongmen".into(),
        unit_name: String::new(),
        sub_item: "05.02".into(),
        round: 1,
        title: "油烟扰民".into(),
        ..Default::default()
    };
    publish_event(&js, subjects, &dispatched).await;
    let unit = eventually("the unit's deliveries", WAIT, || {
        let mut client = client.clone();
        let r = Ref::CaseNo(case.case_no.clone());
        async move {
            let resp = list(&mut client, r).await;
            let done = find(&resp, "unit", "webhook").first().is_some_and(|d| d.status == "sent")
                && find(&resp, "unit", "log").first().is_some_and(|d| d.status == "sent");
            done.then_some(resp)
        }
    })
    .await
    .unwrap();
    let to_unit = find(&unit, "unit", "webhook")[0];
    assert_eq!(to_unit.recipient, "st-dongmen");
    assert_eq!(to_unit.text, format!("【派单】东门街道：新诉求{}（油烟扰民）已派至你单位，请及时签收办理。", case.case_no));
    let unit_body = gateway.received().into_iter().map(|(_, b)| b).find(|b| b["recipient_kind"] == "unit").unwrap();
    assert!(unit_body.get("phone").is_none(), "only citizens' deliveries carry a phone: {unit_body}");
    assert_eq!(unit_body["recipient"], "st-dongmen");

    // sla.breached → the supervisor.
    let alert = breach(&case.case_id, &case.case_no);
    let alert_id = alert.meta.as_ref().unwrap().event_id.clone();
    publish_event(&js, subjects, &alert).await;
    let supervised = eventually("the supervisor's deliveries", WAIT, || {
        let mut client = client.clone();
        let r = by_id();
        async move {
            let resp = list(&mut client, r).await;
            let done = find(&resp, "supervisor", "webhook").first().is_some_and(|d| d.status == "sent");
            done.then_some(resp)
        }
    })
    .await
    .unwrap();
    let to_supervisor = find(&supervised, "supervisor", "webhook")[0];
    assert_eq!(to_supervisor.recipient, "centre");
    assert_eq!(
        to_supervisor.text,
        format!("【超时警报】诉求{}的“签收”环节已超过时限（2026-11-23 10:10），承办单位：东门街道。请督办。", case.case_no)
    );

    // The same event again — once with the same message id (JetStream and the inbox drop it),
    // once under a new message id (only the deliveries' unique key recognises it) — then a new
    // alert: once that one is in, the repeats have been handled and must have added nothing.
    publish_event(&js, subjects, &alert).await;
    publish_event_as(&js, subjects, &format!("{alert_id}-again"), &alert).await;
    let later = breach(&case.case_id, &case.case_no);
    publish_event(&js, subjects, &later).await;
    let all = eventually("the later alert's deliveries", WAIT, || {
        let mut client = client.clone();
        let r = by_id();
        async move {
            let resp = list(&mut client, r).await;
            let done = find(&resp, "supervisor", "webhook").iter().filter(|d| d.status == "sent").count() == 2
                && find(&resp, "supervisor", "log").iter().filter(|d| d.status == "sent").count() == 2;
            done.then_some(resp)
        }
    })
    .await
    .unwrap();
    assert_eq!(
        all.deliveries.len(),
        2 + 2 + 4 + 4,
        "citizen, unit, and each of two alerts to the supervisor and to the unit, each to the log and the webhook"
    );
    let alerts_to_gateway = gateway.received().iter().filter(|(_, b)| b["recipient_kind"] == "supervisor").count();
    assert_eq!(alerts_to_gateway, 2);
    let to_unit: Vec<String> =
        all.deliveries.iter().filter(|d| d.template == "sla_breached_unit" && d.sink == "log").map(|d| d.text.clone()).collect();
    assert_eq!(to_unit.len(), 2);
    assert_eq!(
        to_unit[0],
        format!("【超时】东门街道：诉求{}的“签收”环节已超过时限（2026-11-23 10:10），请立即办理并说明原因。", case.case_no)
    );

    // The timeline: one line per notification, in Chinese.
    let details: Vec<&str> = all.timeline.iter().map(|t| t.detail.as_str()).collect();
    assert_eq!(details[0], format!("已短信告知市民受理编号{}", case.case_no));
    assert_eq!(details[1], "已通知承办单位东门街道");
    assert_eq!(details.iter().filter(|d| **d == "已向督办人员发送超时警报").count(), 2);
    assert_eq!(details.iter().filter(|d| **d == "已向东门街道发送超时警报").count(), 2);
    assert_eq!(details.len(), 6);
    assert!(all.timeline.iter().all(|t| t.service == "notification"));

    // No phone, no text; an empty reference is refused.
    assert!(list(&mut client, Ref::CaseId(patrol.case_id.clone())).await.deliveries.is_empty());
    let empty = client.list_deliveries(CaseRef { r#ref: None }).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    notification.shutdown().await;
    intake.shutdown().await;

    // The full number was sent to the gateway and stored nowhere in notification's database.
    let stored = database_bytes(bed.dir.path());
    assert!(!stored.is_empty());
    assert!(!stored.windows(PHONE.len()).any(|w| w == PHONE.as_bytes()), "the citizen's phone number is in the database");
    assert!(stored.windows(MASKED.len()).any(|w| w == MASKED.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_that_keeps_failing_is_given_up_after_max_attempts() {
    let mut bed = TestBed::new(demo_config(), &["notification"]);
    let clock = ManualClock::new(Utc::now());
    // Nobody listens on these ports: intake is down and the gateway refuses connections.
    let dead = jiesu_testkit::free_port();
    bed.config.set("notification.intake_url", format!("http://127.0.0.1:{dead}"));
    bed.config.set("notification.webhook_url", format!("http://127.0.0.1:{dead}/sms"));
    bed.config.set("notification.max_attempts", 2);
    bed.config.set("notification.retry_backoff", vec!["1m"]);
    bed.provision().await;
    let notification = jiesu_notification::start(&bed.config, Arc::new(clock.clone())).await.expect("notification starts");
    let mut client = NotificationServiceClient::new(grpc_channel(notification.grpc_addr).await);
    let js = bed.jetstream().await.unwrap();
    let subjects = &bed.subjects;
    let unknown = client.list_deliveries(CaseRef { r#ref: Some(Ref::CaseId("case-1".into())) }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound, "an unknown case is NOT_FOUND, as in every lookup");

    let dispatched = CaseDispatched {
        meta: Some(meta("case-1", "DM2026112300001")),
        unit_id: "dept-unknown".into(),
        unit_name: "某某局".into(),
        title: "路灯不亮".into(),
        ..Default::default()
    };
    publish_event_as(&js, subjects, "m-1", &dispatched).await;
    let by_id = || Ref::CaseId("case-1".into());
    let probe_client = client.clone();
    let webhook = move |attempts: u32, status: &'static str| {
        let client = probe_client.clone();
        move || {
            let mut client = client.clone();
            async move {
                let resp = list(&mut client, by_id()).await;
                let d = find(&resp, "unit", "webhook").first().map(|d| (*d).clone())?;
                (d.attempts == attempts && d.status == status).then_some(d)
            }
        }
    };
    let first = eventually("the first failed attempt", WAIT, webhook(1, "pending")).await.unwrap();
    assert!(first.last_error.contains("the webhook request failed"), "{}", first.last_error);
    let resp = eventually("the log delivery", WAIT, || {
        let mut client = client.clone();
        async move {
            let resp = list(&mut client, by_id()).await;
            find(&resp, "unit", "log").first().is_some_and(|d| d.status == "sent").then_some(resp)
        }
    })
    .await
    .unwrap();
    let log = find(&resp, "unit", "log")[0];
    assert!(log.text.starts_with("【派单】某某局："), "the event's unit name stands in for an unknown unit: {}", log.text);

    // Not due before the back-off has passed…
    clock.advance(chrono::Duration::seconds(30));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(find(&list(&mut client, by_id()).await, "unit", "webhook")[0].attempts, 1);
    // …then tried once more, and given up: max_attempts is 2.
    clock.advance(chrono::Duration::seconds(31));
    let failed = eventually("the delivery given up", WAIT, webhook(2, "failed")).await.unwrap();
    assert!(failed.sent_at.is_none());
    let timeline = list(&mut client, by_id()).await.timeline;
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].detail, "通知承办单位dept-unknown：发送失败（已尝试2次）");

    notification.shutdown().await;
}

/// The workflow's notices (issue 7): an assisting unit called in, a return for the centre to
/// review, a leader given a case, and the citizen told why an unreasonable request was closed;
/// a case closed after its revisit needs no message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_workflow_tells_whoever_must_act() {
    use jiesu_proto::v1::{AssistingPart, CaseAssistAdded, CaseClosed, CaseEscalated, CaseReturned, ReturnReason};
    let mut bed = TestBed::new(demo_config(), &["intake", "notification"]);
    let clock = ManualClock::new(Utc::now());
    bed.provision().await;
    let intake = jiesu_intake::start(&bed.config, Arc::new(clock.clone())).await.expect("intake starts");
    bed.config.set("notification.intake_url", format!("http://{}", intake.grpc_addr));
    let notification = jiesu_notification::start(&bed.config, Arc::new(clock.clone())).await.expect("notification starts");
    let mut intake_client = IntakeServiceClient::new(grpc_channel(intake.grpc_addr).await);
    let client = NotificationServiceClient::new(grpc_channel(notification.grpc_addr).await);
    let js = bed.jetstream().await.unwrap();
    let case = intake_client.submit(submission("hotline", "h-workflow", PHONE)).await.unwrap().into_inner();
    let m = || Some(meta(&case.case_id, &case.case_no));

    let part_deadline = Utc.with_ymd_and_hms(2026, 12, 9, 10, 0, 0).unwrap();
    let part = AssistingPart { unit_id: "dept-housing".into(), deadline: Some(to_proto(part_deadline)), ..Default::default() };
    publish_event(
        &js,
        &bed.subjects,
        &CaseAssistAdded { meta: m(), lead_unit_id: "st-dongmen".into(), part: Some(part), added_by: "王五".into() },
    )
    .await;
    let returned = CaseReturned {
        meta: m(),
        unit_id: "st-dongmen".into(),
        returned_by: "王五".into(),
        reason: ReturnReason::NotOurRemit as i32,
        text: "属于物业管理范围".into(),
        returns: 1,
    };
    publish_event(&js, &bed.subjects, &returned).await;
    let escalated = CaseEscalated {
        meta: m(),
        unit_id: "st-dongmen".into(),
        leader_id: "leader-li".into(),
        reason: "群众反映强烈".into(),
        ..Default::default()
    };
    publish_event(&js, &bed.subjects, &escalated).await;
    publish_event(&js, &bed.subjects, &CaseClosed { meta: m(), round: 1, ..Default::default() }).await;
    let warning = jiesu_proto::v1::SlaWarning {
        meta: m(),
        clock_id: format!("{}:resolve", case.case_id),
        milestone: "resolve".into(),
        milestone_name: "办结".into(),
        version: 1,
        deadline: Some(to_proto(part_deadline)),
        unit_id: "st-dongmen".into(),
        level: "yellow".into(),
    };
    publish_event(&js, &bed.subjects, &warning).await;
    let explanation = "您的诉求属于民事纠纷，建议通过人民调解解决";
    publish_event(
        &js,
        &bed.subjects,
        &CaseClosed { meta: m(), round: 1, unreasonable: true, explanation: explanation.into(), unit_id: String::new() },
    )
    .await;

    let all = eventually("the workflow's notices", WAIT, || {
        let mut client = client.clone();
        let r = Ref::CaseId(case.case_id.clone());
        async move {
            let resp = list(&mut client, r).await;
            let sent = |t: &str| resp.deliveries.iter().any(|d| d.template == t && d.status == "sent");
            ["case_received", "assist_added", "case_returned", "case_escalated", "closed_unreasonable"]
                .iter()
                .all(|t| sent(t))
                .then_some(resp)
        }
    })
    .await
    .unwrap();
    let text = |t: &str| all.deliveries.iter().find(|d| d.template == t).map(|d| d.text.clone()).unwrap();
    assert_eq!(
        text("assist_added"),
        format!("【协办】住房和城乡建设委员会：诉求{}需你单位协办，请于2026-12-09 18:00前答复主办单位。", case.case_no)
    );
    assert_eq!(text("case_returned"), format!("【退回待审】东门街道申请退回诉求{}：属于物业管理范围。请审核。", case.case_no));
    assert_eq!(text("case_escalated"), format!("【领导包案】诉求{}（承办单位：东门街道）已提级由您包案：群众反映强烈", case.case_no));
    assert_eq!(text("closed_unreasonable"), format!("【示范区】关于您反映的诉求（受理编号{}）：{explanation}", case.case_no));
    let to = |t: &str| all.deliveries.iter().find(|d| d.template == t).map(|d| (d.recipient_kind.clone(), d.recipient.clone())).unwrap();
    assert_eq!(to("assist_added"), ("unit".into(), "dept-housing".into()));
    assert_eq!(to("case_returned"), ("supervisor".into(), "centre".into()));
    assert_eq!(to("case_escalated"), ("leader".into(), "leader-li".into()));
    assert_eq!(to("closed_unreasonable"), ("citizen".into(), MASKED.into()));
    assert_eq!(
        text("sla_warning_unit"),
        format!("【预警】东门街道：诉求{}的“办结”环节将于2026-12-09 18:00到期，请抓紧办理。", case.case_no)
    );
    assert_eq!(all.deliveries.len(), 6, "one each, and none for the case closed after its revisit: {:?}", all.deliveries);
    let details: Vec<&str> = all.timeline.iter().map(|t| t.detail.as_str()).collect();
    for line in ["已通知协办单位住房和城乡建设委员会", "已通知中心审核退回", "已通知包案领导李副区长", "已短信向市民说明不合理诉求的处理"]
    {
        assert!(details.contains(&line), "{line} in {details:?}");
    }
    notification.shutdown().await;
    intake.shutdown().await;
}

/// Verification codes (短信验证码): only for channel producers and services, only to a mainland
/// mobile, only through a configured gateway, a few an hour per number.
#[tokio::test(flavor = "multi_thread")]
async fn verification_codes_are_texted_to_whom_and_as_often_as_allowed() {
    use jiesu_kit::auth::Role;
    use jiesu_proto::v1::VerificationCodeRequest;
    let start = |webhook: Option<String>| async move {
        let mut bed = jiesu_testkit::TestBed::new(jiesu_testkit::demo_config(), &["notification"]);
        let signer = bed.require_tokens();
        bed.config.set("notification.intake_url", "http://127.0.0.1:9");
        if let Some(url) = webhook {
            bed.config.set("notification.webhook_url", url);
        }
        let h = jiesu_testkit::Harness::start_on(bed, "notification", Arc::new(jiesu_kit::SystemClock), |c, k| async move {
            jiesu_notification::start(&c, k).await
        })
        .await;
        (h, signer)
    };
    let (h, signer) = start(None).await;
    let client = NotificationServiceClient::new(h.channel().await);
    let send = |role: Role, phone: &str, code: &str| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(VerificationCodeRequest { phone: phone.into(), code: code.into() });
        req.metadata_mut().insert("authorization", jiesu_testkit::bearer(&signer, "web", role, role.needs_unit().then_some("st-dongmen")));
        async move { client.send_verification_code(req).await.map(|r| r.into_inner()) }
    };
    assert_eq!(send(Role::UnitHandler, "13800138000", "123456").await.unwrap_err().code(), tonic::Code::PermissionDenied);
    assert_eq!(
        send(Role::ChannelIntegrator, "010-12345678", "123456").await.unwrap_err().code(),
        tonic::Code::InvalidArgument,
        "landlines get no texts"
    );
    assert_eq!(send(Role::ChannelIntegrator, "13800138000", "12ab").await.unwrap_err().code(), tonic::Code::InvalidArgument);
    // The demo district configures no gateway: said so, not pretended.
    let none = send(Role::ChannelIntegrator, "13800138000", "123456").await.unwrap_err();
    assert_eq!(none.code(), tonic::Code::FailedPrecondition, "{none:?}");
    drop(h);

    // With a gateway: texted, masked in the answer, five an hour per number.
    let gateway = axum::Router::new().route("/sms", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, gateway).await });
    let (h, signer) = start(Some(format!("http://{addr}/sms"))).await;
    let client = NotificationServiceClient::new(h.channel().await);
    let send = |phone: &str| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(VerificationCodeRequest { phone: phone.into(), code: "654321".into() });
        req.metadata_mut().insert("authorization", jiesu_testkit::bearer(&signer, "web", Role::ChannelIntegrator, None));
        async move { client.send_verification_code(req).await.map(|r| r.into_inner()) }
    };
    for _ in 0..5 {
        assert_eq!(send("+86 138 0013 8000").await.unwrap().masked_phone, "138****8000");
    }
    assert_eq!(send("13800138000").await.unwrap_err().code(), tonic::Code::ResourceExhausted);
    assert!(send("13900139000").await.is_ok(), "another number is not held up");
}
