//! Replays must not duplicate effects (defect 21): dispatch's database is restored from a backup
//! that predates two cases, and its consumer replays the whole stream. It handles the lost
//! cases again and emits their `case.dispatched` under the very ids it used the first time, so
//! — even after JetStream's duplicate window has passed — notification's inbox drops them and
//! no unit is told twice.

use jiesu_proto::{Named, v1 as ev};
use std::{collections::BTreeSet, time::Duration};

use anyhow::{Result, ensure};
use jiesu_integration_tests::{Backend, District};
use jiesu_proto::v1::{CaseRef, Citizen, Location, Submission, SubmitRequest, case_ref::Ref};
use jiesu_testkit::eventually;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_dispatch_replays_without_a_second_notice_on_sqlite() -> Result<()> {
    restore_then_replay(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_dispatch_replays_without_a_second_notice_on_postgres() -> Result<()> {
    restore_then_replay(Backend::Postgres).await
}

/// A caller of their own for each call: the same words from the same caller on the same channel
/// would be one call logged twice, merged by classification (重复提交).
fn submission(n: usize) -> Submission {
    Submission {
        channel: "hotline".into(),
        channel_ref: format!("replay-{n}"),
        citizen: Some(Citizen { name: "孙女士".into(), phone: format!("135{n:08}"), anonymous: false }),
        title: "占道经营".into(),
        description: "小区门口有摊贩长期占道经营，影响通行。".into(),
        location: Some(Location { street: "st-dongmen".into(), ..Default::default() }),
        ..Default::default()
    }
}

/// The notices to units for `case_id` (every sink), once there are some.
async fn unit_notices(d: &District, case_id: &str) -> Result<usize> {
    let n = eventually(&format!("the unit's notice of {case_id}"), WAIT, || async {
        let r = CaseRef { r#ref: Some(Ref::CaseId(case_id.into())) };
        let list = d.notification().await.list_deliveries(r).await.ok()?.into_inner();
        let n = list.deliveries.iter().filter(|x| x.recipient_kind == "unit").count();
        (n > 0).then_some(n)
    })
    .await?;
    Ok(n)
}

/// Waits until `durable` has nothing pending or unacknowledged on the events stream.
async fn caught_up(d: &District, durable: &str) -> Result<()> {
    let js = d.jetstream().await?;
    eventually(&format!("{durable} to catch up"), WAIT, || async {
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            js.get_stream(d.subjects.events_stream()).await.ok()?.get_consumer(durable).await.ok()?;
        let info = c.info().await.ok()?;
        (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
    })
    .await?;
    Ok(())
}

async fn restore_then_replay(backend: Backend) -> Result<()> {
    // A short duplicate window, so the replay comes after it: only the deterministic event ids
    // and the inboxes stand between a replay and a second notice.
    let mut d = District::start_with(backend, std::sync::Arc::new(jiesu_kit::SystemClock), &jiesu_integration_tests::SERVICES, |c| {
        c.set("nats.duplicate_window", "1s");
    })
    .await?;
    let mut cases = Vec::new();
    let first = d.intake().await.submit(SubmitRequest { submission: Some(submission(1)) }).await?.into_inner();
    unit_notices(&d, &first.case_id).await?;
    cases.push(first.case_id);

    // The nightly backup.
    d.stop_service("dispatch").await;
    d.backup("dispatch").await?;
    d.start_service("dispatch").await?;

    for n in 2..=3 {
        let receipt = d.intake().await.submit(SubmitRequest { submission: Some(submission(n)) }).await?.into_inner();
        unit_notices(&d, &receipt.case_id).await?;
        cases.push(receipt.case_id);
    }
    let mut before = Vec::new();
    for case in &cases {
        before.push(unit_notices(&d, case).await?);
    }
    let dispatched = d.subjects.event(ev::CaseDispatched::TYPE);
    let ids = |events: Vec<jiesu_testkit::StoredMessage>| -> Vec<String> {
        events.into_iter().filter(|e| e.subject == dispatched).map(|e| e.msg_id).collect()
    };
    let ids_before = ids(d.events().await?);
    ensure!(ids_before.len() == 3, "three cases, three case.dispatched: {ids_before:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The disk is lost: restore the backup (it knows case 1 only) and replay the stream into it
    // by removing the durable consumer, which the operator provisions again from the start
    // (docs/operations.md, "Backup and restore").
    d.stop_service("dispatch").await;
    d.restore("dispatch").await?;
    d.jetstream().await?.get_stream(d.subjects.events_stream()).await?.delete_consumer("dispatch").await?;
    jiesu_testkit::provision(&d.config).await;
    d.start_service("dispatch").await?;
    for case in &cases {
        eventually(&format!("dispatch to know {case} again"), WAIT, || async {
            let r = CaseRef { r#ref: Some(Ref::CaseId(case.clone())) };
            d.dispatch().await.get_case(r).await.ok().map(|_| ())
        })
        .await?;
    }
    caught_up(&d, "dispatch").await?;
    // Past the duplicate window JetStream stores the re-sent events again (3 + 2 lost cases)…
    let ids_after = eventually("the replayed case.dispatched in the stream", WAIT, || async {
        let all = ids(d.events().await.ok()?);
        (all.len() >= 5).then_some(all)
    })
    .await?;
    caught_up(&d, "notification").await?;
    // …under the ids of the first time, so notification's inbox drops them.
    let distinct: BTreeSet<_> = ids_after.iter().collect();
    ensure!(distinct.len() == 3, "the replay emitted case.dispatched under new ids: {ids_before:?} then {ids_after:?}");
    for (case, n) in cases.iter().zip(before) {
        let after = unit_notices(&d, case).await?;
        ensure!(after == n, "case {case}: {n} notices to the unit before the restore, {after} after");
    }
    // Each case is still dispatched once as far as the record of dispatch goes.
    let received = d.events().await?.iter().filter(|e| e.subject.ends_with(".case.received")).count();
    ensure!(received == 3, "{received} case.received");
    d.shutdown().await;
    Ok(())
}
