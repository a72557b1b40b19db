//! Personal data stays in intake (issue 6, item 5): a whole loop on the real binaries, logging
//! at debug, and then every event in the stream (payloads and headers), every answer intake
//! gave a producer, and every log line of all six services are searched for the citizens'
//! names and phone numbers. None may be there.

use std::time::Duration;

use anyhow::{Result, ensure};
use jiesu_integration_tests::cluster::{BINARIES, Cluster};
use jiesu_proto::v1::{Citizen, Location, Submission, SubmitRequest};
use jiesu_testkit::read_stream;

const NAME: &str = "欧阳娜娜";
const PHONE: &str = "13912345678";
const LANDLINE: &str = "075583456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_name_or_phone_reaches_an_event_an_answer_or_a_log_line() -> Result<()> {
    let c = Cluster::start(&[("JIESU__TELEMETRY__LOG_FILTER", "debug")]).await?;
    for (svc, _) in BINARIES {
        c.ready(svc).await?;
    }
    let submit = |channel_ref: &str, phone: &str| Submission {
        channel: "hotline".into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: NAME.into(), phone: phone.into(), anonymous: false }),
        title: "路灯不亮".into(),
        description: "小区门口路灯坏了一周了。".into(),
        location: Some(Location { street: "st-dongmen".into(), ..Default::default() }),
        ..Default::default()
    };
    let a = c.intake().await.submit(SubmitRequest { submission: Some(submit("pii-1", PHONE)) }).await?.into_inner();
    let b = c.intake().await.submit(SubmitRequest { submission: Some(submit("pii-2", "(0755) 8345-6789")) }).await?.into_inner();
    // Over NATS too, and one rejected (a bad phone): its answer must not echo the number.
    let js = async_nats::jetstream::new(c.nats.operator().await);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let bad = serde_json::json!({"channel_ref": "pii-3", "citizen": {"name": NAME, "phone": "+1 415 555 0100"}, "description": "x"});
    js.publish_with_headers(c.subjects.intake("hotline"), headers, serde_json::to_vec(&bad)?.into()).await?.await?;

    // The whole loop for case a: dispatched, accepted, resolved, revisited, closed.
    c.dispatched(&a.case_id).await?;
    c.dispatched(&b.case_id).await?;
    c.walk_to_closed(&a.case_id).await?;
    // Let notification text both citizens (it reads their numbers from intake) and log it.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let forbidden = [NAME, PHONE, LANDLINE, "0755-83456789", "4155550100"];
    let leaks = |text: &str| -> Vec<&str> { forbidden.iter().copied().filter(|f| text.contains(f)).collect() };
    for e in c.events().await? {
        let text = format!("{} {} {} {}", e.subject, e.msg_id, e.case_id, String::from_utf8_lossy(&e.payload));
        ensure!(leaks(&text).is_empty(), "event {} carries {:?}", e.subject, leaks(&text));
    }
    let answers = read_stream(&js, &c.subjects.submissions_stream(), Some(&format!("{}.intake.*.*", c.subjects.root())))
        .await
        .map_err(anyhow::Error::from_boxed)?;
    ensure!(!answers.is_empty(), "intake answered the NATS submission");
    for m in answers {
        let text = String::from_utf8_lossy(&m.payload);
        ensure!(leaks(&text).is_empty(), "intake's answer on {} carries {:?}: {text}", m.subject, leaks(&text));
    }
    for (svc, _) in BINARIES {
        let log = c.log(svc);
        ensure!(!log.is_empty(), "{svc} logged nothing at debug");
        for line in log.lines() {
            ensure!(leaks(line).is_empty(), "{svc} logged {:?}: {line}", leaks(line));
        }
    }
    Ok(())
}
