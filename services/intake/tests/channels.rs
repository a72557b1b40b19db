//! Issue 10 at intake's door: the channel registry's rules (who may submit on which channel,
//! what a patrol report and a walk-in entry need), uploads sniffed, limited and referenced, and
//! the citizen's status page following the case events — every refusal answered, on SQLite and
//! PostgreSQL.

use std::{sync::Arc, time::Duration};

use jiesu_kit::{SystemClock, auth::Role};
use jiesu_proto::v1::{
    Attachment, AttachmentChunk, CaseAccepted, CaseDispatched, CaseRef, CaseReplied, CaseResolved, Citizen, Location, PublicStatusRequest,
    ResponseLetter, RevisitRecorded, Satisfaction, Submission, SubmitRequest, case_ref::Ref, intake_service_client::IntakeServiceClient,
};
use jiesu_testkit::{Backend, Harness, TestBed, bearer, event_meta, until_handled};
use tonic::{Code, Request, transport::Channel};

const WAIT: Duration = Duration::from_secs(20);

jiesu_testkit::on_both_backends!(
    producers_submit_only_on_their_own_channels,
    uploads_are_sniffed_limited_and_referenced,
    the_status_page_follows_the_case_and_resists_guessing,
    a_channel_is_held_to_its_own_limits,
);

/// Intake with tokens required, small attachment limits and a short fuse on wrong query codes.
async fn intake(backend: Backend) -> (Harness, jiesu_kit::auth::Signer) {
    let mut bed = TestBed::new(jiesu_testkit::demo_config(), &["intake"]);
    let signer = bed.require_tokens();
    bed.config.set("intake.attachments.max_photo_bytes", 4096);
    bed.config.set("intake.attachments.max_video_bytes", 8192);
    bed.config.set("intake.attachments.max_document_bytes", 4096);
    bed.config.set("intake.status_misses_per_hour", 3);
    let h =
        Harness::start_on_backend(bed, "intake", backend, Arc::new(SystemClock), |c, k| async move { jiesu_intake::start(&c, k).await })
            .await;
    (h, signer)
}

fn submission(channel: &str, channel_ref: &str) -> Submission {
    Submission {
        channel: channel.into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: "赵先生".into(), phone: "13600136000".into(), anonymous: false }),
        title: "路灯不亮".into(),
        description: "小区北门的路灯坏了一周了".into(),
        ..Default::default()
    }
}

async fn submit(
    client: &IntakeServiceClient<Channel>,
    as_: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    s: Submission,
) -> Result<jiesu_proto::v1::SubmitResponse, tonic::Status> {
    let mut req = Request::new(SubmitRequest { submission: Some(s) });
    req.metadata_mut().insert("authorization", as_);
    client.clone().submit(req).await.map(|r| r.into_inner())
}

async fn upload(
    client: &IntakeServiceClient<Channel>,
    as_: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    channel: &str,
    bytes: &[u8],
) -> Result<Attachment, tonic::Status> {
    let mut chunks: Vec<AttachmentChunk> = bytes.chunks(1000).map(|c| AttachmentChunk { data: c.to_vec(), ..Default::default() }).collect();
    chunks[0].channel = channel.into();
    let mut req = Request::new(futures::stream::iter(chunks));
    req.metadata_mut().insert("authorization", as_);
    client.clone().upload_attachment(req).await.map(|r| r.into_inner())
}

/// A small PNG with a text chunk that names where it was taken.
fn png() -> Vec<u8> {
    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend(kind);
        c.extend(data);
        c.extend([0, 0, 0, 0]); // the CRC is not checked by the stripper
        c
    }
    let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
    p.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    p.extend(chunk(b"tEXt", b"Location\0GPS 22.54N 114.05E"));
    p.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0x60, 0, 0, 0, 2, 0, 1]));
    p.extend(chunk(b"IEND", &[]));
    p
}

fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status.get_error_details().bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default()
}

async fn producers_submit_only_on_their_own_channels(backend: Backend) {
    let (h, signer) = intake(backend).await;
    let client = IntakeServiceClient::new(h.channel().await);
    let web = || bearer(&signer, "web", Role::ChannelIntegrator, None);

    let letter = submit(&client, web(), submission("secretary_mailbox", "web-1")).await.unwrap();
    let refused = submit(&client, web(), submission("hotline", "web-2")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("its producer is \"hotline\""), "{}", refused.message());
    let wechat = submit(&client, bearer(&signer, "wechat", Role::ChannelIntegrator, None), submission("secretary_mailbox", "wx-1")).await;
    assert_eq!(wechat.unwrap_err().code(), Code::PermissionDenied, "another producer may not pose as the web front");
    let revisit = submit(&client, bearer(&signer, "rv-1", Role::RevisitAgent, None), submission("hotline", "rv-1")).await;
    assert_eq!(revisit.unwrap_err().code(), Code::PermissionDenied);

    // The hotline agent enters a call: the call id is the reference, the agent is recorded.
    let agent = || bearer(&signer, "agent-7", Role::CentreAgent, None);
    let call = submit(&client, agent(), submission("hotline", "call-20261201-0007")).await.unwrap();

    // A grid officer's patrol report: no phone, but the grid; proactive.
    let officer = || bearer(&signer, "grid-3", Role::UnitHandler, Some("cm-lizhi"));
    let mut patrol = submission("grid_patrol", "patrol-1");
    patrol.citizen = None;
    let missing = submit(&client, officer(), patrol.clone()).await.unwrap_err();
    assert_eq!(fields(&missing), ["location.grid"]);
    patrol.location = Some(Location { community: "cm-lizhi".into(), grid: "gd-lizhi-03".into(), ..Default::default() });
    let report = submit(&client, officer(), patrol).await.unwrap();
    let on_hotline = submit(&client, officer(), submission("hotline", "grid-call")).await.unwrap_err();
    assert_eq!(on_hotline.code(), Code::PermissionDenied, "a unit's staff do not enter hotline calls");

    // A walk-in session's entry names its session.
    let missing = submit(&client, agent(), submission("night_talks", "xaty-1")).await.unwrap_err();
    assert_eq!(fields(&missing), ["session"]);
    let mut entry = submission("night_talks", "xaty-1");
    entry.session = "xaty-20261201-dongmen".into();
    let entry = submit(&client, officer(), entry).await.unwrap();

    let view = |case_no: String| {
        let client = client.clone();
        let auth = bearer(&signer, "sv-1", Role::CentreSupervisor, None);
        async move {
            let mut req = Request::new(CaseRef { r#ref: Some(Ref::CaseNo(case_no)) });
            req.metadata_mut().insert("authorization", auth);
            client.clone().get_submission(req).await.unwrap().into_inner()
        }
    };
    let v = view(call.case_no).await;
    assert_eq!((v.entered_by.as_str(), v.channel_ref.as_str(), v.proactive), ("agent-7 (agent-7)", "call-20261201-0007", false));
    let v = view(report.case_no).await;
    assert!(v.proactive && v.entered_by.contains("grid-3"), "{v:?}");
    assert_eq!(view(entry.case_no).await.session, "xaty-20261201-dongmen");
    assert!(view(letter.case_no).await.entered_by.contains("web"));
}

async fn uploads_are_sniffed_limited_and_referenced(backend: Backend) {
    let (h, signer) = intake(backend).await;
    let client = IntakeServiceClient::new(h.channel().await);
    let web = || bearer(&signer, "web", Role::ChannelIntegrator, None);
    let zh = |s: &tonic::Status| {
        use tonic_types::StatusExt;
        s.get_error_details().localized_message().map(|m| m.message.clone()).unwrap_or_default()
    };

    let exe = upload(&client, web(), "secretary_mailbox", b"MZ\x90\x00 this program cannot be run in DOS mode").await.unwrap_err();
    assert_eq!(exe.code(), Code::InvalidArgument);
    assert!(zh(&exe).contains("可执行"), "{}", zh(&exe));
    let script = upload(&client, web(), "secretary_mailbox", b"#!/bin/sh\nrm -rf /\n").await.unwrap_err();
    assert_eq!(script.code(), Code::InvalidArgument);
    let big = upload(&client, web(), "secretary_mailbox", &[png(), vec![0; 9000]].concat()).await.unwrap_err();
    assert_eq!(big.code(), Code::InvalidArgument, "cut off past the largest file allowed");
    let unknown = upload(&client, web(), "fax", &png()).await.unwrap_err();
    assert_eq!(fields(&unknown), ["channel"]);
    let other = upload(&client, bearer(&signer, "wechat", Role::ChannelIntegrator, None), "secretary_mailbox", &png()).await.unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied);

    let photo = upload(&client, web(), "secretary_mailbox", &png()).await.unwrap();
    assert_eq!((photo.kind.as_str(), photo.media_type.as_str(), photo.size), ("photo", "image/png", png().len() as u64));
    let again = upload(&client, web(), "secretary_mailbox", &png()).await.unwrap();
    assert_eq!(again.sha256, photo.sha256, "the same file is the same upload");

    let mut s = submission("secretary_mailbox", "web-files-1");
    s.attachments = vec![Attachment { sha256: "0".repeat(64), ..Default::default() }];
    assert_eq!(fields(&submit(&client, web(), s.clone()).await.unwrap_err()), ["attachments[0].sha256"]);
    // What the producer claims of an upload does not count: intake's own record does.
    s.attachments = vec![Attachment {
        sha256: photo.sha256.clone(),
        kind: "video".into(),
        media_type: "video/mp4".into(),
        size: 1,
        ..Default::default()
    }];
    let case = submit(&client, web(), s).await.unwrap();
    let mut req = Request::new(CaseRef { r#ref: Some(Ref::CaseNo(case.case_no.clone())) });
    req.metadata_mut().insert("authorization", bearer(&signer, "agent-1", Role::CentreAgent, None));
    let view = client.clone().get_submission(req).await.unwrap().into_inner();
    assert_eq!(view.attachments.len(), 1);
    assert_eq!((view.attachments[0].kind.as_str(), view.attachments[0].media_type.as_str()), ("photo", "image/png"));

    // The file as the centre sees it, and as the owning unit does: without its location.
    h.publish(&CaseDispatched {
        meta: Some(event_meta(&uuid::Uuid::now_v7().to_string(), &case.case_id, &case.case_no)),
        unit_id: "st-dongmen".into(),
        unit_name: "东门街道".into(),
        round: 1,
        how: "rule".into(),
        ..Default::default()
    })
    .await;
    let fetch = |auth| {
        let client = client.clone();
        let (case_no, sha256) = (case.case_no.clone(), photo.sha256.clone());
        async move {
            let mut req =
                Request::new(jiesu_proto::v1::GetAttachmentRequest { case: Some(CaseRef { r#ref: Some(Ref::CaseNo(case_no)) }), sha256 });
            req.metadata_mut().insert("authorization", auth);
            let mut stream = client.clone().get_attachment(req).await?.into_inner();
            let (mut bytes, mut media_type) = (Vec::new(), String::new());
            while let Some(c) = stream.message().await? {
                if media_type.is_empty() {
                    media_type = c.media_type;
                }
                bytes.extend(c.data);
            }
            Ok::<_, tonic::Status>((media_type, bytes))
        }
    };
    let (media_type, original) = fetch(bearer(&signer, "agent-1", Role::CentreAgent, None)).await.unwrap();
    assert_eq!((media_type.as_str(), original), ("image/png", png()));
    let unit = jiesu_testkit::eventually("the owning unit may read the photo", WAIT, || {
        let fetch = fetch(bearer(&signer, "h-1", Role::UnitHandler, Some("st-dongmen")));
        async move { fetch.await.ok() }
    })
    .await
    .unwrap();
    assert!(!unit.1.windows(3).any(|w| w == b"GPS") && unit.1.starts_with(b"\x89PNG"), "stripped of its location");
    let stranger = fetch(bearer(&signer, "h-2", Role::UnitHandler, Some("st-xinan"))).await.unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let mut req = Request::new(jiesu_proto::v1::GetAttachmentRequest {
        case: Some(CaseRef { r#ref: Some(Ref::CaseNo(case.case_no.clone())) }),
        sha256: "1".repeat(64),
    });
    req.metadata_mut().insert("authorization", bearer(&signer, "agent-1", Role::CentreAgent, None));
    assert_eq!(client.clone().get_attachment(req).await.err().map(|e| e.code()), Some(Code::NotFound), "only the case's own files");
}

async fn the_status_page_follows_the_case_and_resists_guessing(backend: Backend) {
    let (h, signer) = intake(backend).await;
    let client = IntakeServiceClient::new(h.channel().await);
    let web = || bearer(&signer, "web", Role::ChannelIntegrator, None);
    let case = submit(&client, web(), submission("secretary_mailbox", "web-status-1")).await.unwrap();
    assert_eq!(case.query_code.len(), 8);
    let again = submit(&client, web(), submission("secretary_mailbox", "web-status-1")).await.unwrap();
    assert!(again.duplicate && again.query_code == case.query_code, "a re-send is told the same code");
    let status = |case_no: &str, code: &str| {
        let client = client.clone();
        let req = PublicStatusRequest { case_no: case_no.into(), query_code: code.into() };
        let auth = web();
        async move {
            let mut req = Request::new(req);
            req.metadata_mut().insert("authorization", auth);
            client.clone().get_public_status(req).await.map(|r| r.into_inner())
        }
    };
    let first = status(&case.case_no, &case.query_code).await.unwrap();
    assert_eq!(
        (first.status.as_str(), first.status_zh.as_str(), first.channel_name.as_str()),
        ("received", "已受理，等待分派", "书记信箱")
    );

    // Each step a second after the one before, as dispatch and revisit would emit them.
    let start = chrono::Utc::now();
    let meta = |step: i64| jiesu_proto::v1::EventMeta {
        occurred_at: Some(jiesu_kit::time::to_proto(start + chrono::Duration::seconds(step))),
        ..event_meta(&uuid::Uuid::now_v7().to_string(), &case.case_id, &case.case_no)
    };
    let dispatched = meta(1);
    let events_last = meta(5);
    h.publish(&CaseDispatched {
        meta: Some(dispatched.clone()),
        unit_id: "st-dongmen".into(),
        unit_name: "东门街道".into(),
        round: 1,
        how: "rule".into(),
        ..Default::default()
    })
    .await;
    h.publish(&CaseAccepted { meta: Some(meta(2)), unit_id: "st-dongmen".into(), accepted_by: "王五".into(), round: 1 }).await;
    let letter = ResponseLetter {
        verification: "经核实，路灯线路老化。".into(),
        handling: "已更换线路，路灯恢复照明。".into(),
        next_steps: String::new(),
    };
    h.publish(&CaseReplied {
        meta: Some(meta(3)),
        unit_id: "st-dongmen".into(),
        replied_by: "王五".into(),
        round: 1,
        letter: Some(letter),
    })
    .await;
    h.publish(&CaseResolved {
        meta: Some(meta(4)),
        unit_id: "st-dongmen".into(),
        resolved_by: "王五".into(),
        reply: "路灯已修复。".into(),
        round: 1,
        ..Default::default()
    })
    .await;
    h.publish(&RevisitRecorded {
        meta: Some(events_last.clone()),
        satisfaction: Satisfaction::Satisfied as i32,
        solved: true,
        recorded_by: "回访员小陈".into(),
        round: 1,
        ..Default::default()
    })
    .await;
    until_handled(&h.db, jiesu_intake::PROGRESS_CONSUMER, &events_last.event_id, WAIT).await.unwrap();
    // The same event again (a redelivery under another message id) adds nothing.
    h.publish_as(
        "again",
        &CaseDispatched {
            meta: Some(dispatched),
            unit_id: "st-dongmen".into(),
            unit_name: "东门街道".into(),
            round: 1,
            how: "rule".into(),
            ..Default::default()
        },
    )
    .await;

    let done = status(&case.case_no, &format!(" {}-{} ", &case.query_code[..4].to_lowercase(), &case.query_code[4..])).await.unwrap();
    let steps: Vec<&str> = done.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, ["received", "dispatched", "accepted", "replied", "resolved", "revisited"]);
    assert_eq!((done.status_zh.as_str(), done.unit_name.as_str()), ("已办结并回访", "东门街道"));
    let text: String = done.steps.iter().map(|s| s.text.clone()).collect();
    assert!(text.contains("已派至东门街道办理") && text.contains("已更换线路") && text.contains("满意"), "{text}");
    assert!(!text.contains("王五") && !text.contains("小陈") && !text.contains("13600136000"), "no one's name or number: {text}");

    // Guessing: every miss looks the same; after three the number is locked, the right code too.
    assert_eq!(status("DM2099010100001", &case.query_code).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(status(&case.case_no, "").await.unwrap_err().code(), Code::InvalidArgument);
    for _ in 0..3 {
        assert_eq!(status(&case.case_no, "ZZZZZZZZ").await.unwrap_err().code(), Code::NotFound);
    }
    let locked = status(&case.case_no, &case.query_code).await.unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    let anonymous =
        client.clone().get_public_status(PublicStatusRequest { case_no: case.case_no.clone(), query_code: case.query_code.clone() }).await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated, "the front calls with its own identity");
}

async fn a_channel_is_held_to_its_own_limits(backend: Backend) {
    let mut bed = TestBed::new(jiesu_testkit::demo_config(), &["intake"]);
    let signer = bed.require_tokens();
    // A partner's message board, held to one file of 60 bytes and two submissions a minute.
    let intake_section: toml::Table = bed.config.part("intake").unwrap();
    let mut channels = intake_section["channels"].as_array().unwrap().clone();
    let wechat: toml::Table = toml::from_str(
        "id = \"wechat\"\nname = \"微信公众号\"\nkind = \"message_board\"\n[limits]\nmax_attachments = 1\nmax_file_bytes = 60\nsubmissions_per_minute = 2\n",
    )
    .unwrap();
    channels.push(toml::Value::Table(wechat));
    bed.config.set("intake.channels", toml::Value::Array(channels));
    let h =
        Harness::start_on_backend(bed, "intake", backend, Arc::new(SystemClock), |c, k| async move { jiesu_intake::start(&c, k).await })
            .await;
    let client = IntakeServiceClient::new(h.channel().await);
    let wechat = || bearer(&signer, "wechat", Role::ChannelIntegrator, None);

    let big = upload(&client, wechat(), "wechat", &png()).await.unwrap_err();
    assert_eq!(big.code(), Code::InvalidArgument, "over the channel's own 60 bytes");
    let mut two_files = submission("wechat", "wx-files");
    let link = Attachment { kind: "photo".into(), url: "https://example.org/1.jpg".into(), ..Default::default() };
    two_files.attachments = vec![link.clone(), link];
    assert_eq!(fields(&submit(&client, wechat(), two_files).await.unwrap_err()), ["attachments"]);
    submit(&client, wechat(), submission("wechat", "wx-1")).await.unwrap();
    let third = submit(&client, wechat(), submission("wechat", "wx-2")).await.unwrap_err();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("retry in"), "{}", third.message());
    // Other channels are not slowed by it.
    submit(&client, bearer(&signer, "web", Role::ChannelIntegrator, None), submission("secretary_mailbox", "web-x")).await.unwrap();
}
