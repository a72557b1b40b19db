//! Crash tests: the real binaries as processes, killed with SIGKILL at awkward moments, and a
//! NATS server that goes away and comes back. Nothing accepted may be lost or handled twice.

use jiesu_proto::{Named, v1 as ev};
use std::time::Duration;

use anyhow::{Result, bail};
use jiesu_integration_tests::cluster::{BINARIES, Cluster};
use jiesu_proto::v1::{CaseReceived, Citizen, Location, Submission, SubmitRequest};
use jiesu_testkit::eventually;
use prost::Message;

/// A caller of their own for each call: the same words from the same caller on the same channel
/// would be one call logged twice, merged by classification (重复提交).
fn caller(channel_ref: &str) -> String {
    format!("136{:08}", channel_ref.bytes().map(u32::from).sum::<u32>())
}

fn submission(channel_ref: &str) -> Submission {
    Submission {
        channel: "hotline".into(),
        channel_ref: channel_ref.into(),
        citizen: Some(Citizen { name: "周先生".into(), phone: caller(channel_ref), anonymous: false }),
        title: "楼上噪音扰民".into(),
        description: "楼上装修每天早上七点就开始电钻施工，噪音太大。".into(),
        location: Some(Location { street: "st-xinan".into(), ..Default::default() }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_services_and_a_lost_broker_lose_nothing_and_repeat_nothing() -> Result<()> {
    let mut c = Cluster::start(&[]).await?;
    for (svc, _) in BINARIES {
        c.ready(svc).await?;
    }

    // 1. Dispatch is killed: the classified case waits in the stream and is dispatched once
    //    when dispatch is back.
    c.procs.get_mut("dispatch").unwrap().kill();
    let one = c.intake().await.submit(SubmitRequest { submission: Some(submission("crash-1")) }).await?.into_inner();
    eventually("case 1 to be classified", Duration::from_secs(20), || async {
        c.events().await.ok()?.iter().any(|e| e.case_id == one.case_id && e.subject.ends_with(ev::CaseClassified::TYPE)).then_some(())
    })
    .await?;
    c.restart("dispatch").await?;
    c.dispatched(&one.case_id).await?;

    // 2. Intake is killed: a channel's submission published meanwhile is kept by JetStream and
    //    registered once intake is back.
    c.procs.get_mut("intake").unwrap().kill();
    let client = c.nats.operator().await;
    let js = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    let body = serde_json::json!({
        "channel_ref": "crash-2",
        "citizen": {"phone": "13600136001"},
        "title": "路面塌陷",
        "description": "新安街道路口路面塌陷，车辆经过很危险。",
        "location": {"street": "st-xinan"}
    });
    js.publish_with_headers(c.subjects.intake("hotline"), headers, serde_json::to_vec(&body)?.into()).await?.await?;
    c.restart("intake").await?;
    let two = eventually("case 2 to be received", Duration::from_secs(20), || async {
        c.events().await.ok()?.into_iter().find_map(|e| {
            e.subject
                .ends_with(ev::CaseReceived::TYPE)
                .then(|| CaseReceived::decode(e.payload.as_ref()).ok())
                .flatten()
                .filter(|r| r.channel_ref == "crash-2")
                .map(|r| r.meta.unwrap_or_default().case_id)
        })
    })
    .await?;
    c.dispatched(&two).await?;

    // 3. NATS goes away: intake still accepts over gRPC (the event waits in its outbox) and
    //    the relay publishes it when NATS is back.
    c.nats.kill();
    let three = c.intake().await.submit(SubmitRequest { submission: Some(submission("crash-3")) }).await?.into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.nats.restart();
    c.dispatched(&three.case_id).await?;

    // Every case's events exactly once, whatever was killed.
    let events = c.events().await?;
    for case_id in [&one.case_id, &two, &three.case_id] {
        for ty in [ev::CaseReceived::TYPE, ev::CaseClassified::TYPE, ev::CaseDispatched::TYPE] {
            let n = events.iter().filter(|e| &e.case_id == case_id && e.subject.ends_with(ty)).count();
            if n != 1 {
                bail!("case {case_id}: {n} × {ty}\n{}", c.log_tail("dispatch"));
            }
        }
    }
    Ok(())
}
