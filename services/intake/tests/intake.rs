//! Intake in-process against a real nats-server and a temporary SQLite database, used the way an
//! integrator's producer and an operator use it: submissions over NATS with the documented
//! `Nats-Msg-Id`, answers on the producer's own channel, `/readyz`, `/metrics`, gRPC health and
//! reflection.

use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use jiesu_proto::v1::{Citizen, Submission, SubmitRequest, intake_service_client::IntakeServiceClient};
use jiesu_testkit::{Backend, Harness, eventually, http_get};
use serde_json::{Value, json};
use sha2::Digest;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

jiesu_testkit::on_both_backends!(
    a_corrected_resend_after_a_rejection_becomes_a_case,
    a_recreated_stream_neither_fools_readiness_nor_swallows_submissions,
    text_phones_formats_and_dates_are_checked_at_the_edge,
    unknown_channels_share_one_metrics_series,
    reflection_speaks_v1_and_v1alpha_and_lists_only_this_service,
    a_huge_reference_is_refused_without_an_echo,
    health_goes_not_serving_when_nats_is_lost_and_back_when_it_returns,
);

async fn intake(backend: Backend) -> Harness {
    Harness::start_with("intake", backend, |c, k| async move { jiesu_intake::start(&c, k).await }).await
}

/// The `Nats-Msg-Id` `docs/channels.md` tells producers to set.
fn message_id(channel: &str, channel_ref: &str, body: &[u8]) -> String {
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{channel}:{channel_ref}:{hex}")
}

/// A producer of one channel: publishes JSON submissions and reads the answers intake gives on
/// `jiesu.intake.accepted|rejected.<channel>`.
struct Producer {
    js: async_nats::jetstream::Context,
    subjects: jiesu_kit::Subjects,
    channel: &'static str,
    answers: async_nats::Subscriber,
}

impl Producer {
    async fn new(h: &Harness, channel: &'static str) -> Self {
        let client = h.bed.nats.operator().await;
        let answers = client.subscribe(format!("{}.intake.*.{channel}", h.bed.subjects.root())).await.expect("subscribe");
        Self { js: h.js.clone(), subjects: h.bed.subjects.clone(), channel, answers }
    }

    /// Publishes `body` as documented; false when JetStream dropped it as a duplicate.
    async fn send(&self, body: &Value, msg_id: Option<&str>) -> bool {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", "application/json");
        let id = msg_id.map(str::to_string).unwrap_or_else(|| message_id(self.channel, body["channel_ref"].as_str().unwrap(), &bytes));
        headers.insert("Nats-Msg-Id", id.as_str());
        let ack = self.js.publish_with_headers(self.subjects.intake(self.channel), headers, bytes.into()).await.unwrap().await;
        !ack.expect("JetStream stores the submission").duplicate
    }

    /// Publishes `body` without a `Nats-Msg-Id`, as a producer that sets no headers would.
    async fn send_bare(&self, body: &Value) {
        self.js.publish(self.subjects.intake(self.channel), serde_json::to_vec(body).unwrap().into()).await.unwrap().await.unwrap();
    }

    /// The next answer: (`accepted` or `rejected`, its JSON).
    async fn answer(&mut self) -> (String, Value) {
        let msg = tokio::time::timeout(WAIT, self.answers.next()).await.expect("an answer within the limit").expect("subscribed");
        let outcome = msg.subject.split('.').rev().nth(1).unwrap().to_string();
        let ref_header = msg.headers.as_ref().and_then(|h| h.get("Jiesu-Channel-Ref")).map(|v| v.to_string());
        let body: Value = serde_json::from_slice(&msg.payload).expect("a JSON answer to a JSON submission");
        assert_eq!(ref_header.as_deref(), body["channel_ref"].as_str(), "the header carries the ref");
        (outcome, body)
    }
}

fn submission(channel_ref: &str, phone: &str) -> Value {
    json!({"channel_ref": channel_ref, "title": "路灯不亮", "description": "小区门口路灯坏了一周了。", "citizen": {"name": "赵先生", "phone": phone}})
}

fn case_received_count(rows: &[jiesu_testkit::StoredMessage]) -> usize {
    rows.iter().filter(|m| m.subject.ends_with(".case.received")).count()
}

/// Defect 8: a corrected re-send with the same ref is not lost, and every re-send is answered.
async fn a_corrected_resend_after_a_rejection_becomes_a_case(backend: Backend) {
    let h = intake(backend).await;
    let mut p = Producer::new(&h, "hotline").await;

    let bad = submission("call-77", "+1 415 555 0100");
    assert!(p.send(&bad, None).await);
    let (outcome, answer) = p.answer().await;
    assert_eq!(outcome, "rejected");
    assert_eq!(answer["channel_ref"], "call-77");
    assert!(answer["violations"].to_string().contains("citizen.phone"), "{answer}");

    // Inside the duplicate window, the same bytes are the same message: JetStream drops them.
    assert!(!p.send(&bad, None).await, "an identical re-send is a duplicate");

    // The corrected submission has other bytes, so another message id, and becomes a case.
    let good = submission("call-77", "13700137000");
    assert!(p.send(&good, None).await, "the corrected re-send is not a duplicate");
    let (outcome, accepted) = p.answer().await;
    assert_eq!(outcome, "accepted", "{accepted}");
    assert_eq!((accepted["channel_ref"].as_str(), accepted["duplicate"].as_bool()), (Some("call-77"), Some(false)));
    let case_no = accepted["case_no"].as_str().unwrap().to_string();
    assert!(case_no.starts_with("DM"), "{case_no}");

    // Re-sent once the duplicate window has passed (JetStream no longer recognises it): answered
    // with the original case, and no second case.
    assert!(p.send(&good, Some("hotline:call-77:after-the-window")).await);
    let (outcome, again) = p.answer().await;
    assert_eq!(outcome, "accepted");
    assert_eq!((again["case_no"].as_str(), again["duplicate"].as_bool()), (Some(case_no.as_str()), Some(true)));
    assert_eq!(again["case_id"], accepted["case_id"]);

    h.settled().await.unwrap();
    assert_eq!(case_received_count(&h.stored(&h.bed.subjects.event(">")).await), 1, "one case");
}

/// Defects 9 and 15: readiness follows the consumer when its stream is deleted; after the
/// stream is recreated, its sequence numbers start again and are still new submissions.
async fn a_recreated_stream_neither_fools_readiness_nor_swallows_submissions(backend: Backend) {
    let h = intake(backend).await;
    let mut p = Producer::new(&h, "hotline").await;
    let ready = |h: &Harness| {
        let addr = h.running().admin_addr;
        async move { http_get(addr, "/readyz").await.expect("the admin port answers") }
    };
    eventually("ready", WAIT, || async { (ready(&h).await.0 == 200).then_some(()) }).await.unwrap();

    p.send_bare(&submission("first", "13700137000")).await;
    let (outcome, first) = p.answer().await;
    assert_eq!(outcome, "accepted");

    // The operator (or an accident) deletes the submissions stream: intake is no longer ready,
    // and says why, on /readyz and in gRPC health.
    h.js.delete_stream(h.bed.subjects.submissions_stream()).await.expect("delete the stream");
    let (status, body) = eventually("readyz to fail", WAIT, || async {
        let r = ready(&h).await;
        (r.0 == 503).then_some(r)
    })
    .await
    .unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("consumer intake"), "{body}");
    let check = |service: &str| tonic_health::pb::HealthCheckRequest { service: service.into() };
    let health = tonic_health::pb::health_client::HealthClient::new(h.channel().await);
    eventually("gRPC health not serving", WAIT, || {
        let mut health = health.clone();
        async move {
            let serving = health.check(check("jiesu.v1.IntakeService")).await.ok()?.into_inner().status;
            (serving == tonic_health::pb::health_check_response::ServingStatus::NotServing as i32).then_some(())
        }
    })
    .await
    .unwrap();

    // The operator provisions again (`jiesuctl nats provision`): intake, which may not create
    // streams itself, binds to the new stream without a restart; its sequence starts at 1 again.
    h.bed.provision().await;
    eventually("ready again", WAIT, || async { (ready(&h).await.0 == 200).then_some(()) }).await.unwrap();
    // gRPC health follows readiness as it changes: give it the moment it takes.
    let health = tonic_health::pb::health_client::HealthClient::new(h.channel().await);
    eventually("gRPC health serving again", WAIT, || {
        let mut health = health.clone();
        async move {
            let serving = health.check(check("")).await.ok()?.into_inner().status;
            (serving == tonic_health::pb::health_check_response::ServingStatus::Serving as i32).then_some(())
        }
    })
    .await
    .unwrap();
    p.send_bare(&submission("second", "13700137001")).await;
    let (outcome, second) = p.answer().await;
    assert_eq!(outcome, "accepted", "sequence 1 of the new stream is a new submission: {second}");
    assert_ne!(second["case_no"], first["case_no"]);
    assert_eq!(second["duplicate"], false);
}

/// Defects 11, 12, 13: control characters, foreign phones, Content-Type and BOM, and dates.
async fn text_phones_formats_and_dates_are_checked_at_the_edge(backend: Backend) {
    let h = intake(backend).await;
    let mut p = Producer::new(&h, "hotline").await;
    let mut grpc = IntakeServiceClient::new(h.channel().await);

    // Control characters in any field, over gRPC…
    let forged = Submission {
        channel: "hotline".into(),
        channel_ref: "ctl-1".into(),
        title: "路灯\r\n2026-11-30T00:00:00Z INFO forged line".into(),
        description: "正文可以换行\n第二行".into(),
        citizen: Some(Citizen { name: "赵\u{1b}[31m先生".into(), phone: "13700137000".into(), anonymous: false }),
        ..Default::default()
    };
    let err = grpc.submit(SubmitRequest { submission: Some(forged) }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("title") && err.message().contains("citizen.name"), "{}", err.message());
    assert!(!err.message().contains('\u{1b}') && !err.message().contains('\r'), "the reason does not echo control characters");
    // …and over NATS.
    let mut body = submission("ctl-2", "13700137000");
    body["citizen"]["name"] = json!("赵\u{7}先生");
    p.send(&body, None).await;
    let (outcome, answer) = p.answer().await;
    assert_eq!(outcome, "rejected");
    assert!(answer["violations"].to_string().contains("citizen.name"), "{answer}");

    // Foreign numbers are refused; mainland mobiles and landlines in their usual spellings pass.
    for (i, phone) in ["+1 415 555 0100", "+44 20 7946 0958", "14155550100x", "12345"].iter().enumerate() {
        p.send(&submission(&format!("phone-bad-{i}"), phone), None).await;
        let (outcome, answer) = p.answer().await;
        assert_eq!(outcome, "rejected", "{phone}: {answer}");
        assert!(answer["violations"][0]["reason"].as_str().unwrap().contains("mainland"), "{answer}");
    }
    for (i, phone) in ["+86 137 0013 7000", "0086-13700137000", "010-6512 3456", "+86 10 6512 3456", "(0755)83456789"].iter().enumerate() {
        p.send(&submission(&format!("phone-ok-{i}"), phone), None).await;
        let (outcome, answer) = p.answer().await;
        assert_eq!(outcome, "accepted", "{phone}: {answer}");
    }

    // Content-Type in any case, with parameters, and a UTF-8 byte-order mark.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&submission("bom-1", "13700137000")).unwrap());
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", "APPLICATION/JSON; charset=UTF-8");
    headers.insert("Nats-Msg-Id", "hotline:bom-1:x");
    h.js.publish_with_headers(h.bed.subjects.intake("hotline"), headers, bytes.into()).await.unwrap().await.unwrap();
    let (outcome, answer) = p.answer().await;
    assert_eq!((outcome.as_str(), answer["channel_ref"].as_str()), ("accepted", Some("bom-1")), "{answer}");

    // A submission from year 1 (or next year) is not stored as given.
    for (i, at) in ["0001-01-01T00:00:00Z", "2999-01-01T00:00:00Z"].iter().enumerate() {
        let mut body = submission(&format!("date-{i}"), "13700137000");
        body["submitted_at"] = json!(at);
        p.send(&body, None).await;
        let (outcome, answer) = p.answer().await;
        assert_eq!(outcome, "rejected", "{at}: {answer}");
        assert!(answer["violations"].to_string().contains("submitted_at"), "{answer}");
    }
}

/// Defect 14: the channel label of the metrics comes from configuration, never from a subject.
async fn unknown_channels_share_one_metrics_series(backend: Backend) {
    let h = intake(backend).await;
    for i in 0..40 {
        let body = serde_json::to_vec(&submission(&format!("x-{i}"), "13700137000")).unwrap();
        h.js.publish(h.bed.subjects.intake(&format!("made-up-{i}")), body.into()).await.unwrap().await.unwrap();
    }
    let metrics = eventually("40 rejections counted", WAIT, || async {
        let (_, text) = http_get(h.running().admin_addr, "/metrics").await?;
        let line = text.lines().find(|l| l.starts_with("jiesu_messages_consumed_total") && l.contains("\"unknown\""))?;
        (line.rsplit(' ').next()?.parse::<f64>().ok()? >= 40.0).then_some(text)
    })
    .await
    .unwrap();
    assert!(!metrics.contains("made-up"), "a subject became a label:\n{metrics}");
    let series = metrics.lines().filter(|l| l.starts_with("jiesu_messages_consumed_total")).count();
    assert!(series <= 2, "one series for every unknown channel:\n{metrics}");
}

/// Defect 16: both reflection versions, listing only what this port serves.
async fn reflection_speaks_v1_and_v1alpha_and_lists_only_this_service(backend: Backend) {
    use tonic_reflection::pb::{v1, v1alpha};
    let h = intake(backend).await;
    let expected = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "jiesu.v1.IntakeService",
    ];

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(h.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = alpha.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("v1alpha answers ListServices with a list");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(names, expected);

    let mut v1 = v1::server_reflection_client::ServerReflectionClient::new(h.channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol("jiesu.v1.IntakeService".into())),
    };
    let mut answers = v1.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let answer = answers.message().await.unwrap().unwrap().message_response;
    assert!(
        matches!(answer, Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(ref f)) if !f.file_descriptor_proto.is_empty()),
        "{answer:?}"
    );
}

/// Defect 3: a client error never echoes a huge input back.
async fn a_huge_reference_is_refused_without_an_echo(backend: Backend) {
    let h = intake(backend).await;
    let mut grpc = IntakeServiceClient::new(h.channel().await);
    let huge = "9".repeat(1 << 20);
    let request = jiesu_proto::v1::CaseRef { r#ref: Some(jiesu_proto::v1::case_ref::Ref::CaseNo(huge)) };
    let err = grpc.get_contact(request).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().len() < 200, "{} bytes of message", err.message().len());
}

/// Defect 15: gRPC health says what `/readyz` says, the broker included.
async fn health_goes_not_serving_when_nats_is_lost_and_back_when_it_returns(backend: Backend) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut h = intake(backend).await;
    let health = HealthClient::new(h.channel().await);
    let status = |mut health: HealthClient<tonic::transport::Channel>| async move {
        health.check(HealthCheckRequest { service: "jiesu.v1.IntakeService".into() }).await.ok().map(|r| r.into_inner().status)
    };
    eventually("serving", WAIT, || async { (status(health.clone()).await == Some(ServingStatus::Serving as i32)).then_some(()) })
        .await
        .unwrap();
    h.bed.nats.kill();
    eventually("not serving without NATS", WAIT, || async {
        (status(health.clone()).await == Some(ServingStatus::NotServing as i32)).then_some(())
    })
    .await
    .unwrap();
    let (code, body) = http_get(h.running().admin_addr, "/readyz").await.unwrap();
    assert_eq!(code, 503);
    assert!(body.contains("nats"), "{body}");
    h.bed.nats.restart();
    eventually("serving again", WAIT, || async { (status(health.clone()).await == Some(ServingStatus::Serving as i32)).then_some(()) })
        .await
        .unwrap();
}

/// Trust (issue 6, first step): with `[auth] required`, every call carries a verified token.
#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_good_token_are_unauthenticated() {
    use jiesu_kit::auth::{Claims, Role};
    let (h, signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let submit = |token: Option<String>| {
        let channel = h.channel();
        async move {
            let mut client = IntakeServiceClient::new(channel.await);
            let mut request = tonic::Request::new(SubmitRequest {
                submission: Some(Submission {
                    channel: "hotline".into(),
                    channel_ref: format!("auth-{}", uuid::Uuid::now_v7()),
                    description: "路灯不亮".into(),
                    citizen: Some(Citizen { phone: "13700137000".into(), ..Default::default() }),
                    ..Default::default()
                }),
            });
            if let Some(t) = token {
                request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            client.submit(request).await
        }
    };
    let refused = |result: Result<tonic::Response<jiesu_proto::v1::SubmitResponse>, tonic::Status>, why: &str| {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(status.message().contains(why), "{why}: {}", status.message());
    };
    let agent = |ttl: u64| signer.issue("u-7", "受理员小李", &[Role::CentreAgent], None, now, Duration::from_secs(ttl)).unwrap();

    refused(submit(None).await, "no bearer token");
    let expired = signer.sign(&Claims { exp: now - 3_600, ..claims(&agent(60)) }).unwrap();
    refused(submit(Some(expired)).await, "expired");
    let stranger = jiesu_testkit::TestBed::new(jiesu_testkit::demo_config(), &[]).require_tokens();
    let foreign = stranger.issue("u-7", "x", &[Role::CentreAgent], None, now, Duration::from_secs(60)).unwrap();
    refused(submit(Some(foreign)).await, "not (or no longer) a key");
    let wrong_audience = signer.sign(&Claims { aud: jiesu_kit::auth::Audience::One("another-app".into()), ..claims(&agent(60)) }).unwrap();
    refused(submit(Some(wrong_audience)).await, "another audience");
    let unknown_role = signer.sign(&Claims { roles: vec!["root".into()], ..claims(&agent(60)) }).unwrap();
    refused(submit(Some(unknown_role)).await, "not a role");

    let accepted = submit(Some(agent(600))).await.expect("a good token is served").into_inner();
    assert!(accepted.case_no.starts_with("DM"));

    // Health and reflection stay open: probes and tools carry no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(h.channel().await);
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health needs no token");
}

/// The claims inside a token of ours, to forge variants of it.
fn claims(token: &str) -> jiesu_kit::auth::Claims {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Trust (issue 6): the citizen's contact only for those who must reach them, every read recorded.
#[tokio::test(flavor = "multi_thread")]
async fn the_citizens_contact_is_guarded_and_every_read_recorded() {
    use jiesu_kit::auth::Role;
    use jiesu_proto::v1::{CaseDispatched, CaseRef, ListContactReadsRequest, case_ref::Ref};
    use jiesu_testkit::{event_meta, until_handled};
    let (h, signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let bearer = jiesu_testkit::bearer;
    let client = IntakeServiceClient::new(h.channel().await);
    let mut agent = client.clone();
    let mut submit = tonic::Request::new(SubmitRequest {
        submission: Some(Submission {
            channel: "hotline".into(),
            channel_ref: "contact-1".into(),
            description: "楼道灯坏了".into(),
            citizen: Some(Citizen { name: "钱女士".into(), phone: "13700137000".into(), anonymous: false }),
            ..Default::default()
        }),
    });
    submit.metadata_mut().insert("authorization", bearer(&signer, "agent-1", Role::CentreAgent, None));
    let case = agent.submit(submit).await.unwrap().into_inner();
    let read = |auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(CaseRef { r#ref: Some(Ref::CaseNo(case.case_no.clone())) });
        req.metadata_mut().insert("authorization", auth);
        req.metadata_mut().insert("jiesu-purpose", "回访/联系市民".parse().unwrap_or_else(|_| "callback".parse().unwrap()));
        async move { client.get_contact(req).await.map(|r| r.into_inner().phone) }
    };
    let denied = |r: Result<String, tonic::Status>, why: &str| {
        let s = r.expect_err("refused");
        assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
        assert!(s.message().contains(why), "{why}: {}", s.message());
        assert!(!s.message().contains("13700137000"));
    };

    // Before dispatch nobody of a unit may; the centre agent who took the call may not either.
    denied(read(bearer(&signer, "agent-1", Role::CentreAgent, None)).await, "only notification, the owning unit");
    denied(read(bearer(&signer, "h-1", Role::UnitHandler, Some("st-dongmen"))).await, "only notification");
    denied(read(bearer(&signer, "dispatch", Role::Service, None)).await, "only notification");
    assert_eq!(read(bearer(&signer, "rv-1", Role::RevisitAgent, None)).await.unwrap(), "13700137000");
    assert_eq!(read(bearer(&signer, "notification", Role::Service, None)).await.unwrap(), "13700137000");

    // Dispatched to 东门街道: its handler may, another street's may not.
    let id = uuid::Uuid::now_v7().to_string();
    h.publish(&CaseDispatched {
        meta: Some(event_meta(&id, &case.case_id, &case.case_no)),
        unit_id: "st-dongmen".into(),
        ..Default::default()
    })
    .await;
    until_handled(&h.db, jiesu_intake::PROGRESS_CONSUMER, &id, WAIT).await.unwrap();
    assert_eq!(read(bearer(&signer, "h-1", Role::UnitHandler, Some("st-dongmen"))).await.unwrap(), "13700137000");
    denied(read(bearer(&signer, "h-2", Role::UnitHandler, Some("st-xinan"))).await, "only notification");

    // The submission itself: the owning unit and the centre read it, another unit does not.
    let submission = |auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(CaseRef { r#ref: Some(Ref::CaseId(case.case_id.clone())) });
        req.metadata_mut().insert("authorization", auth);
        async move { client.get_submission(req).await.map(|r| r.into_inner()) }
    };
    assert_eq!(submission(bearer(&signer, "h-1", Role::UnitHandler, Some("st-dongmen"))).await.unwrap().masked_phone, "137****7000");
    assert!(submission(bearer(&signer, "agent-1", Role::CentreAgent, None)).await.is_ok());
    let refused = submission(bearer(&signer, "h-2", Role::UnitHandler, Some("st-xinan"))).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    // The auditor sees every read, allowed or refused, with who and why; nobody else does.
    let list = |auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>| {
        let mut client = client.clone();
        let mut req = tonic::Request::new(ListContactReadsRequest { case: None, limit: 0 });
        req.metadata_mut().insert("authorization", auth);
        async move { client.list_contact_reads(req).await.map(|r| r.into_inner().reads) }
    };
    let reads = list(bearer(&signer, "aud-1", Role::Auditor, None)).await.unwrap();
    assert_eq!(reads.len(), 7, "{reads:#?}");
    let allowed: Vec<_> = reads.iter().filter(|r| r.allowed).map(|r| r.reader.as_str()).collect();
    assert_eq!(allowed, ["h-1", "notification", "rv-1"]);
    assert!(reads.iter().all(|r| r.case_id == case.case_id && r.purpose == "回访/联系市民"), "{reads:#?}");
    assert!(reads.iter().filter(|r| !r.allowed).all(|r| !r.refusal.is_empty()));
    assert_eq!(list(bearer(&signer, "agent-1", Role::CentreAgent, None)).await.unwrap_err().code(), Code::PermissionDenied);

    // At rest the name and phone are sealed: neither is anywhere in intake's database files.
    let path = h.bed.database_path("intake");
    let mut stored = std::fs::read(&path).unwrap();
    stored.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
    for secret in ["13700137000", "钱女士"] {
        assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is stored in clear");
    }
}

/// Trust (issue 6): the admin port shows health and metrics to anyone on it, dead letters (and
/// their replay) only to administrators.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_port_keeps_dead_letters_for_administrators() {
    use jiesu_kit::auth::Role;
    use jiesu_testkit::http_request;
    let (h, signer) = Harness::start_with_tokens("intake", |c, k| async move { jiesu_intake::start(&c, k).await }).await;
    let admin = h.running().admin_addr;
    assert!(admin.ip().is_loopback(), "the admin port listens on loopback unless told otherwise");
    let bearer = |role: Role| jiesu_testkit::bearer(&signer, "op-1", role, None).to_str().unwrap().to_string();

    assert_eq!(http_request(admin, "GET", "/healthz", None).await.unwrap().0, 200);
    assert_eq!(http_request(admin, "GET", "/metrics", None).await.unwrap().0, 200);
    let (code, body) = http_request(admin, "GET", "/dead-letters", None).await.unwrap();
    assert_eq!(code, 401, "{body}");
    let (code, body) = http_request(admin, "GET", "/dead-letters", Some(&bearer(Role::CentreAgent))).await.unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("for administrators"), "{body}");
    let (code, body) = http_request(admin, "POST", "/dead-letters/x/replay", Some(&bearer(Role::Auditor))).await.unwrap();
    assert_eq!(code, 403, "{body}");
    let (code, body) = http_request(admin, "POST", "/dead-letters/x/replay", Some("Bearer forged.token.here")).await.unwrap();
    assert_eq!(code, 401, "{body}");
    let (code, body) = http_request(admin, "GET", "/dead-letters", Some(&bearer(Role::Administrator))).await.unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(http_request(admin, "POST", "/dead-letters/no-such/replay", Some(&bearer(Role::Administrator))).await.unwrap().0, 404);
}
