//! Classification in a whole district, as people run it (every call with its caller's token):
//! an emergency is flagged and dispatched at once with the emergency limits; a doubtful case
//! waits for review — not dispatched, its dispatch clock running — until a centre agent gives it
//! a sub-item, and then goes to that sub-item's unit; a citizen calling again about the same
//! problem is linked to their first case.

use std::time::Duration;

use anyhow::{Result, ensure};
use jiesu_integration_tests::{Backend, District};
use jiesu_kit::auth::Role;
use jiesu_proto::{
    Named,
    v1::{self as ev, CaseRef, CaseStatus, Citizen, Location, ReclassifyRequest, Submission, SubmitRequest, Urgency, case_ref::Ref},
};
use jiesu_testkit::eventually;

const WAIT: Duration = Duration::from_secs(20);

fn by_id(id: &str) -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(id.to_string())) }
}

/// Submits a hotline call from `phone` in 荔枝社区; its case id and number.
async fn call(d: &District, call_id: &str, phone: &str, text: &str) -> Result<(String, String)> {
    let receipt = d
        .intake()
        .await
        .submit(d.by(
            Role::CentreAgent,
            None,
            SubmitRequest {
                submission: Some(Submission {
                    channel: "hotline".into(),
                    channel_ref: call_id.into(),
                    citizen: Some(Citizen { name: "周女士".into(), phone: phone.into(), anonymous: false }),
                    title: String::new(),
                    description: text.into(),
                    location: Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), ..Default::default() }),
                    ..Default::default()
                }),
            },
        ))
        .await?
        .into_inner();
    Ok((receipt.case_id, receipt.case_no))
}

/// Waits until dispatch holds the case as dispatched.
async fn dispatched(d: &District, case_id: &str) -> Result<()> {
    let dispatch = d.dispatch().await;
    eventually(&format!("case {case_id} to be dispatched"), WAIT, || {
        let mut dispatch = dispatch.clone();
        let r = d.by(Role::CentreAgent, None, by_id(case_id));
        async move { (dispatch.get_case(r).await.ok()?.into_inner().status() == CaseStatus::Dispatched).then_some(()) }
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergencies_reviews_and_repeats_on_sqlite() -> Result<()> {
    emergencies_reviews_and_repeats(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergencies_reviews_and_repeats_on_postgres() -> Result<()> {
    emergencies_reviews_and_repeats(Backend::Postgres).await
}

async fn emergencies_reviews_and_repeats(backend: Backend) -> Result<()> {
    let d = District::start_secured(backend).await?;
    let centre = |msg| d.by(Role::CentreAgent, None, msg);

    // An emergency described, not named: flagged, dispatched at once, resolved within 2 hours.
    let (gas, _) = call(&d, "call-gas", "13800138001", "楼道里一股臭鸡蛋味，熏得人头疼，是不是哪家漏了").await?;
    dispatched(&d, &gas).await?;
    let view = d.dispatch().await.get_case(centre(by_id(&gas))).await?.into_inner();
    ensure!(view.urgency() == Urgency::Emergency, "the gas smell is not an emergency: {view:?}");
    let classification = d.classification().await.get_classification(centre(by_id(&gas))).await?.into_inner();
    ensure!(classification.review.is_empty(), "an emergency never waits for review: {classification:?}");
    let sla = d.sla().await;
    let resolve_span = eventually("the emergency's resolve clock", WAIT, || {
        let mut sla = sla.clone();
        let r = centre(by_id(&gas));
        async move {
            let clocks = sla.list_clocks(r).await.ok()?.into_inner().clocks;
            let c = clocks.into_iter().find(|c| c.milestone == "resolve")?;
            Some(c.deadline?.seconds - c.started_at?.seconds)
        }
    })
    .await?;
    ensure!(resolve_span == 2 * 3600, "an emergency is resolved within 2 hours, not {resolve_span} s");

    // Too vague to place: it waits for a person, with its dispatch clock running.
    let (vague, _) = call(&d, "call-vague", "13800138002", "你好，我想反映个情况，这事拖了挺久了，一直没人管").await?;
    let classification = d.classification().await;
    eventually("the vague case to wait for review", WAIT, || {
        let mut c = classification.clone();
        let r = centre(by_id(&vague));
        async move { (c.get_classification(r).await.ok()?.into_inner().review == "waiting").then_some(()) }
    })
    .await?;
    eventually("its dispatch clock", WAIT, || {
        let mut sla = sla.clone();
        let r = centre(by_id(&vague));
        async move { sla.list_clocks(r).await.ok()?.into_inner().clocks.iter().any(|c| c.milestone == "dispatch").then_some(()) }
    })
    .await?;
    let not_yet = d.dispatch().await.get_case(centre(by_id(&vague))).await;
    ensure!(not_yet.is_err(), "a case waiting for review was dispatched: {not_yet:?}");
    // The agent hears the citizen out and gives it its sub-item: it goes on to that unit.
    let decided = classification
        .clone()
        .reclassify(d.by(
            Role::CentreAgent,
            None,
            ReclassifyRequest {
                case: Some(by_id(&vague)),
                sub_item: "01.03".into(),
                note: "市民补充：小区门口长期占道摆摊".into(),
                ..Default::default()
            },
        ))
        .await?
        .into_inner();
    ensure!(decided.review == "reclassified" && decided.sub_item == "01.03", "{decided:?}");
    dispatched(&d, &vague).await?;
    let view = d.dispatch().await.get_case(centre(by_id(&vague))).await?.into_inner();
    ensure!(view.sub_item == "01.03" && view.status() == CaseStatus::Dispatched, "{view:?}");

    // The same citizen about the same noise a second time: linked to the first case.
    let (first, first_no) = call(&d, "call-noise-1", "13800138003", "楼下工地半夜还在施工，电钻声吵得根本睡不着").await?;
    dispatched(&d, &first).await?;
    let (again, _) = call(&d, "call-noise-2", "138 0013 8003", "工地晚上十一点多还在打桩，上回反映过了还是吵").await?;
    dispatched(&d, &again).await?;
    let linked = classification.clone().get_classification(centre(by_id(&again))).await?.into_inner();
    ensure!(linked.repeat_of_case_no == first_no && linked.repeat_count == 2, "not linked to {first_no}: {linked:?}");
    let events = d.events().await?;
    let repeats: Vec<_> = events.iter().filter(|e| e.subject.ends_with(ev::CaseRepeatDetected::TYPE)).map(|e| e.case_id.clone()).collect();
    ensure!(repeats == [again.clone()], "repeat events for {repeats:?}");
    let reviewed = events.iter().filter(|e| e.subject.ends_with(ev::CaseReviewed::TYPE)).count();
    ensure!(reviewed == 1, "{reviewed} case.reviewed events");

    d.shutdown().await;
    Ok(())
}
