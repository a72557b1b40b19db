//! Time limits across services: a unit that does not sign in time turns the case yellow, then
//! red, and the supervisor is told — driven by an injected clock, not by waiting.

use jiesu_proto::{Named, v1 as ev};
use std::{sync::Arc, time::Duration};

use anyhow::{Result, ensure};
use chrono::{TimeZone, Utc};
use jiesu_integration_tests::{Backend, District, SERVICES};
use jiesu_kit::ManualClock;
use jiesu_proto::v1::{CaseRef, Citizen, Location, SlaBreached, Submission, SubmitRequest, case_ref::Ref};
use jiesu_testkit::eventually;
use prost::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_case_warns_then_breaches_and_the_supervisor_is_told_on_sqlite() -> Result<()> {
    unsigned_case(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_case_warns_then_breaches_and_the_supervisor_is_told_on_postgres() -> Result<()> {
    unsigned_case(Backend::Postgres).await
}

async fn unsigned_case(backend: Backend) -> Result<()> {
    // Monday 2026-11-23 09:00 in Shanghai.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap());
    let d = District::start_with(backend, Arc::new(clock.clone()), &SERVICES, |_| {}).await?;
    let case = d
        .intake()
        .await
        .submit(SubmitRequest {
            submission: Some(Submission {
                channel: "hotline".into(),
                channel_ref: "late-1".into(),
                citizen: Some(Citizen { name: "孙先生".into(), phone: "13300133000".into(), anonymous: false }),
                title: "路面塌陷".into(),
                description: "小区门口路面塌陷，井盖松动，晚上很危险。".into(),
                location: Some(Location { street: "st-dongmen".into(), ..Default::default() }),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    let by_id = CaseRef { r#ref: Some(Ref::CaseId(case.case_id.clone())) };
    let mut sla = d.sla().await;
    let accept_deadline = eventually("the accept clock", Duration::from_secs(20), || {
        let (mut sla, by_id) = (sla.clone(), by_id.clone());
        async move {
            let clocks = sla.list_clocks(by_id).await.ok()?.into_inner().clocks;
            clocks.into_iter().find(|c| c.milestone == "accept").and_then(|c| c.deadline)
        }
    })
    .await?;

    let alerts = |level: &'static str| {
        let d = &d;
        let case_id = case.case_id.clone();
        async move {
            let subject = if level == "yellow" { ev::SlaWarning::TYPE } else { ev::SlaBreached::TYPE };
            d.events()
                .await
                .ok()
                .map(|all| {
                    all.into_iter()
                        .filter(|e| e.case_id == case_id && e.subject.ends_with(subject))
                        .map(|e| SlaBreached::decode(e.payload.as_ref()).expect("SlaBreached"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };

    // 80 % of the 10 minutes to sign: yellow.
    clock.advance(chrono::Duration::minutes(8) + chrono::Duration::seconds(5));
    eventually("an accept warning", Duration::from_secs(20), || async {
        alerts("yellow").await.into_iter().find(|a| a.milestone == "accept").map(|_| ())
    })
    .await?;
    // Past the deadline: red, and the supervisor (督办) hears of it.
    clock.advance(chrono::Duration::minutes(2));
    let breach = eventually("an accept breach", Duration::from_secs(20), || async {
        alerts("red").await.into_iter().find(|a| a.milestone == "accept")
    })
    .await?;
    ensure!(breach.deadline == Some(accept_deadline), "breach {breach:?}");
    ensure!(breach.unit_id == "dept-urban-management", "roads go to urban management: {breach:?}");
    let notification = d.notification().await;
    let told = eventually("the supervisor to be told", Duration::from_secs(20), || {
        let (mut n, by_id) = (notification.clone(), by_id.clone());
        async move {
            let ds = n.list_deliveries(by_id).await.ok()?.into_inner().deliveries;
            ds.into_iter().find(|x| x.recipient_kind == "supervisor" && x.sink == "log" && x.status == "sent")
        }
    })
    .await?;
    ensure!(told.recipient == "centre" && told.text.contains("签收") && told.text.contains("超过时限"), "{told:?}");

    // Time goes on; nothing fires twice.
    clock.advance(chrono::Duration::minutes(30));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ensure!(alerts("yellow").await.iter().filter(|a| a.milestone == "accept").count() == 1, "warnings repeated");
    ensure!(alerts("red").await.iter().filter(|a| a.milestone == "accept").count() == 1, "breaches repeated");
    let supervisor = notification.clone().list_deliveries(by_id.clone()).await?.into_inner().deliveries;
    let told_supervisor = supervisor.iter().filter(|x| x.recipient_kind == "supervisor" && x.sink == "log").count();
    ensure!(told_supervisor == 1, "the supervisor was told {told_supervisor} times");
    let clocks = sla.list_clocks(by_id).await?.into_inner().clocks;
    ensure!(clocks.iter().any(|c| c.milestone == "accept" && c.state == "breached"), "{clocks:?}");
    d.shutdown().await;
    Ok(())
}
