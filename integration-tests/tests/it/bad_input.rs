//! Bad input gets a clear error and loses nothing: gRPC callers get INVALID_ARGUMENT with every
//! reason as BadRequest details (and the Chinese text as a localized message); NATS producers
//! get a `SubmissionRejected` on `jiesu.intake.rejected.<channel>`; a re-sent submission
//! returns the original case.

use jiesu_proto::{Named, v1 as ev};
use std::{sync::Arc, time::Duration};

use anyhow::{Result, ensure};
use jiesu_integration_tests::{Backend, District};
use jiesu_proto::v1::{Citizen, Submission, SubmissionRejected, SubmitRequest};
use jiesu_testkit::eventually;
use prost::Message;
use tonic_types::StatusExt;

fn hotline(channel_ref: &str) -> Submission {
    Submission {
        channel: "hotline".into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: "赵先生".into(), phone: "13700137000".into(), anonymous: false }),
        title: "路灯不亮".into(),
        description: "小区门口路灯坏了一周了，晚上很黑。".into(),
        ..Default::default()
    }
}

async fn intake_only() -> Result<District> {
    District::start_with(Backend::Sqlite, Arc::new(jiesu_kit::SystemClock), &["intake"], |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_rejections_name_every_field_and_reason() -> Result<()> {
    let d = intake_only().await?;
    let mut intake = d.intake().await;
    let bad = Submission {
        channel: "fax".into(),
        channel_ref: String::new(),
        citizen: Some(Citizen { phone: "12345".into(), ..Default::default() }),
        description: String::new(),
        ..Default::default()
    };
    let status = intake.submit(SubmitRequest { submission: Some(bad) }).await.unwrap_err();
    ensure!(status.code() == tonic::Code::InvalidArgument, "code {:?}", status.code());
    let details = status.get_details_bad_request().expect("BadRequest details");
    let fields: Vec<_> = details.field_violations.iter().map(|v| v.field.as_str()).collect();
    ensure!(fields == ["channel", "channel_ref", "description", "citizen.phone"], "fields {fields:?}");
    ensure!(status.message().contains("not a channel of this district"), "message {}", status.message());
    let zh = status.get_details_localized_message().expect("Chinese message");
    ensure!(zh.locale == "zh-CN" && zh.message.contains("诉求内容不能为空"), "zh {zh:?}");

    // Nothing was registered: the first good submission gets the day's first number.
    let ok = intake.submit(SubmitRequest { submission: Some(hotline("call-1")) }).await?.into_inner();
    ensure!(ok.case_no.ends_with("00001"), "case_no {}", ok.case_no);
    d.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmission_returns_the_original_case() -> Result<()> {
    let d = intake_only().await?;
    let mut intake = d.intake().await;
    let first = intake.submit(SubmitRequest { submission: Some(hotline("call-9")) }).await?.into_inner();
    let mut again = hotline("call-9");
    again.description = "（重复来电）路灯还是不亮。".into();
    let second = intake.submit(SubmitRequest { submission: Some(again) }).await?.into_inner();
    ensure!(second.duplicate && second.case_id == first.case_id && second.case_no == first.case_no, "{second:?}");

    // The same request over NATS (another producer of the same channel) is recognised too.
    let js = d.jetstream().await?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let body = serde_json::json!({"channel_ref": "call-9", "citizen": {"phone": "13700137000"}, "description": "路灯不亮"});
    js.publish_with_headers(d.subjects.intake("hotline"), headers, serde_json::to_vec(&body)?.into()).await?.await?;
    // Wait until intake handled it, then count what was received.
    eventually("intake to consume the NATS copy", Duration::from_secs(10), || async {
        let consumer = d.jetstream().await.ok()?.get_stream(d.subjects.submissions_stream()).await.ok()?;
        let mut c: async_nats::jetstream::consumer::PullConsumer = consumer.get_consumer("intake").await.ok()?;
        let info = c.info().await.ok()?;
        (info.num_ack_pending == 0 && info.num_pending == 0).then_some(())
    })
    .await?;
    let received = d.events().await?.into_iter().filter(|e| e.subject.ends_with(ev::CaseReceived::TYPE)).count();
    ensure!(received == 1, "{received} case.received events for one (channel, channel_ref)");
    d.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_producers_hear_why_a_submission_was_rejected() -> Result<()> {
    let d = intake_only().await?;
    let js = d.jetstream().await?;
    let send = |channel: &'static str, content_type: &'static str, body: Vec<u8>| {
        let js = js.clone();
        let subject = d.subjects.intake(channel);
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Content-Type", content_type);
            js.publish_with_headers(subject, headers, body.into()).await?.await?;
            anyhow::Ok(())
        }
    };
    // Missing phone on the hotline, a bad phone, a misspelt JSON field, broken protobuf, an unknown channel.
    send("hotline", "application/json", r#"{"channel_ref":"m-1","description":"噪音扰民"}"#.as_bytes().to_vec()).await?;
    send("hotline", "application/json", br#"{"channel_ref":"m-2","description":"x","citizen":{"phone":"abc"}}"#.to_vec()).await?;
    send("hotline", "application/json", br#"{"channel_ref":"m-3","descripton":"typo"}"#.to_vec()).await?;
    send("hotline", "application/x-protobuf", vec![0xff, 0xff, 0xff]).await?;
    send("fax", "application/json", br#"{"channel_ref":"m-5","description":"x","citizen":{"phone":"13700137000"}}"#.to_vec()).await?;

    let rejections = eventually("five rejections", Duration::from_secs(15), || async {
        let mut all = d.submissions_stream(&format!("{}.intake.rejected.*", d.subjects.root())).await.ok()?;
        (all.len() >= 5).then(|| {
            all.sort_by(|a, b| a.subject.cmp(&b.subject));
            all
        })
    })
    .await?;
    let decoded: Vec<(String, SubmissionRejected)> =
        rejections.iter().map(|e| (e.subject.clone(), rejection(e.payload.as_ref()))).collect();
    let find = |r: &str| decoded.iter().find(|(_, x)| x.channel_ref == r).map(|(s, x)| (s.clone(), x.clone()));
    let (_, m1) = find("m-1").expect("m-1 rejected");
    ensure!(m1.violations.iter().any(|v| v.field == "citizen.phone"), "{m1:?}");
    let (_, m2) = find("m-2").expect("m-2 rejected");
    ensure!(m2.violations.iter().any(|v| v.field == "citizen.phone" && v.reason.contains("not a mainland")), "{m2:?}");
    let (subject, m5) = find("m-5").expect("m-5 rejected");
    ensure!(subject.ends_with("intake.rejected.fax") && m5.violations[0].field == "channel", "{subject} {m5:?}");
    let bodies: Vec<_> = decoded.iter().filter(|(_, x)| x.violations.iter().any(|v| v.field == "body")).collect();
    ensure!(bodies.len() == 1, "only the broken protobuf is a body error: {decoded:?}");
    // The misspelt JSON keeps its ref and names the field, with the other reasons beside it.
    let (_, m3) = find("m-3").expect("m-3 rejected");
    ensure!(m3.violations[0].field == "descripton", "{m3:?}");
    ensure!(m3.violations.iter().any(|v| v.field == "description"), "{m3:?}");
    let received = d.events().await?.into_iter().filter(|e| e.subject.ends_with(ev::CaseReceived::TYPE)).count();
    ensure!(received == 0, "a rejected submission was registered");
    d.shutdown().await;
    Ok(())
}

/// A rejection in either of the forms intake answers in: JSON for a JSON submission, protobuf
/// for the rest.
fn rejection(payload: &[u8]) -> SubmissionRejected {
    if payload.first() != Some(&b'{') {
        return SubmissionRejected::decode(payload).unwrap();
    }
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    SubmissionRejected {
        channel: text(&v["channel"]),
        channel_ref: text(&v["channel_ref"]),
        violations: v["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| jiesu_proto::v1::FieldViolation {
                field: text(&x["field"]),
                reason: text(&x["reason"]),
                reason_zh: text(&x["reason_zh"]),
            })
            .collect(),
        rejected_at: None,
    }
}
