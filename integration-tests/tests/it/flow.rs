//! One case by gRPC and one by JSON over NATS, each through the whole loop:
//! received → classified → dispatched (timers armed) → accepted → resolved → revisited
//! dissatisfied → reopened → resolved → revisited satisfied → closed; every event exactly once.
//! As a district runs in production: every call carries the token of the person who makes it
//! (centre agent, the owning unit's handler, revisit agent), the channel publishes as its own
//! NATS user, and each service connects to NATS as itself.

use jiesu_proto::{Named, v1 as ev};
use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use jiesu_integration_tests::{Backend, District};
use jiesu_kit::auth::Role;
use jiesu_proto::v1::{
    AcceptRequest, AnswerAssistRequest, CaseReceived, CaseRef, CaseStatus, Citizen, ContactRequest, Location, RecordRequest,
    ResolveRequest, Satisfaction, Submission, SubmitRequest, case_ref::Ref,
};
use jiesu_testkit::eventually;
use prost::Message;

const WAIT: Duration = Duration::from_secs(20);

fn by_id(id: &str) -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(id.to_string())) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_loop_on_sqlite() -> Result<()> {
    whole_loop(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_loop_on_postgres() -> Result<()> {
    whole_loop(Backend::Postgres).await
}

async fn whole_loop(backend: Backend) -> Result<()> {
    let d = District::start_secured(backend).await?;
    let centre = |msg| d.by(Role::CentreAgent, None, msg);

    // Case A: the 12345 hotline, through intake's gRPC API.
    let a = d
        .intake()
        .await
        .submit(centre(SubmitRequest {
            submission: Some(Submission {
                channel: "hotline".into(),
                channel_ref: "call-0001".into(),
                citizen: Some(Citizen { name: "张女士".into(), phone: "13800138000".into(), anonymous: false }),
                title: "小区门口私装地锁".into(),
                description: "小区门口有人私装地锁，占用公共车位，希望尽快拆除。".into(),
                location: Some(Location { street: "st-dongmen".into(), community: "cm-lizhi".into(), ..Default::default() }),
                ..Default::default()
            }),
        }))
        .await?
        .into_inner();
    ensure!(!a.duplicate && a.case_no.starts_with("DM"), "unexpected receipt {a:?}");

    // Case B: the secretary mailbox as an independent producer, connected as its own NATS user:
    // JSON on jiesu.intake.secretary_mailbox.
    let js = async_nats::jetstream::new(d.nats.connect_as(&jiesu_kit::access::channel_user("secretary_mailbox")).await?);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/json");
    headers.insert("Nats-Msg-Id", "secretary_mailbox:letter-77");
    let body = serde_json::json!({
        "channel_ref": "letter-77",
        "citizen": {"name": "李先生", "phone": "139-0013-9000"},
        "title": "公司拖欠工资",
        "description": "我所在的装修公司已经拖欠三个月工资不发，多次讨薪无果。",
        "location": {"street": "st-xinan", "address": "新安街道某工地"}
    });
    js.publish_with_headers(d.subjects.intake("secretary_mailbox"), headers, serde_json::to_vec(&body)?.into()).await?.await?;
    let b_id = eventually("case B to be received", WAIT, || async {
        d.events().await.ok()?.into_iter().find_map(|e| {
            (e.subject.ends_with(ev::CaseReceived::TYPE))
                .then(|| CaseReceived::decode(e.payload.as_ref()).ok())
                .flatten()
                .filter(|r| r.channel_ref == "letter-77")
                .map(|r| r.meta.unwrap_or_default().case_id)
        })
    })
    .await?;

    for case_id in [a.case_id.clone(), b_id.clone()] {
        follow_one_case(&d, &case_id).await.with_context(|| format!("case {case_id}"))?;
    }

    // Every event exactly once per case.
    let events = d.events().await?;
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        let ty = d.subjects.event_type_of(&e.subject).unwrap_or(&e.subject).to_string();
        *counts.entry((e.case_id.clone(), ty)).or_default() += 1;
    }
    let ids: std::collections::HashSet<_> = events.iter().map(|e| e.msg_id.clone()).collect();
    ensure!(ids.len() == events.len(), "an event id was published twice");
    for case_id in [&a.case_id, &b_id] {
        let expected = [
            (ev::CaseReceived::TYPE, 1),
            (ev::CaseClassified::TYPE, 1),
            (ev::CaseDispatched::TYPE, 1),
            (ev::CaseAccepted::TYPE, 1),
            (ev::CaseContacted::TYPE, 2),
            (ev::CaseReplied::TYPE, 2),
            (ev::CaseResolved::TYPE, 2),
            (ev::RevisitRecorded::TYPE, 2),
            (ev::CaseReopened::TYPE, 1),
            (ev::CaseClosed::TYPE, 1),
        ];
        for (ty, n) in expected {
            let got = counts.get(&(case_id.to_string(), ty.to_string())).copied().unwrap_or(0);
            ensure!(got == n, "case {case_id}: expected {n} × {ty}, got {got} (all: {counts:?})");
        }
    }

    // One trace follows the case from intake through classification to dispatch.
    for case_id in [&a.case_id, &b_id] {
        let traces: std::collections::BTreeSet<_> = events
            .iter()
            .filter(|e| &e.case_id == case_id)
            .filter(|e| [ev::CaseReceived::TYPE, ev::CaseClassified::TYPE, ev::CaseDispatched::TYPE].iter().any(|t| e.subject.ends_with(t)))
            .map(|e| e.trace_id().unwrap_or("none").to_string())
            .collect();
        ensure!(traces.len() == 1 && !traces.contains("none"), "case {case_id} spans traces {traces:?}");
    }

    // The citizen and the unit were told (log sink at least), each once.
    let deliveries =
        d.notification().await.list_deliveries(d.by(Role::CentreAgent, None, by_id(&a.case_id))).await?.into_inner().deliveries;
    let kinds: Vec<_> = deliveries.iter().filter(|x| x.sink == "log").map(|x| x.recipient_kind.as_str()).collect();
    ensure!(kinds.iter().filter(|k| **k == "citizen").count() == 1, "citizen deliveries: {deliveries:?}");
    ensure!(kinds.iter().filter(|k| **k == "unit").count() == 1, "unit deliveries: {deliveries:?}");
    ensure!(
        deliveries.iter().all(|x| !x.recipient.contains("13800138000") && !x.text.contains("13800138000")),
        "a delivery record holds the full phone number"
    );

    d.shutdown().await;
    Ok(())
}

async fn follow_one_case(d: &District, case_id: &str) -> Result<()> {
    let centre = |msg| d.by(Role::CentreAgent, None, msg);
    let mut dispatch = d.dispatch().await;
    let view = eventually("the case to be dispatched", WAIT, || {
        let mut dispatch = dispatch.clone();
        async move { dispatch.get_case(centre(by_id(case_id))).await.ok().map(|r| r.into_inner()) }
    })
    .await?;
    ensure!(view.status() == CaseStatus::Dispatched, "status {:?}", view.status());
    ensure!(!view.unit_id.is_empty(), "no unit");
    let unit = view.unit_id.clone();
    // The owning unit's handler acts: the unit comes from the token (the request names it too).

    let classification = d.classification().await.get_classification(centre(by_id(case_id))).await?.into_inner();
    ensure!(!classification.sub_item.is_empty() && !classification.fallback, "classification {classification:?}");

    // Timers armed for the unit: accept and resolve.
    let mut sla = d.sla().await;
    eventually("accept and resolve clocks", WAIT, || {
        let mut sla = sla.clone();
        async move {
            let clocks = sla.list_clocks(centre(by_id(case_id))).await.ok()?.into_inner().clocks;
            let armed = |m: &str| clocks.iter().any(|c| c.milestone == m && c.state == "armed");
            (armed("accept") && armed("resolve")).then_some(())
        }
    })
    .await?;

    dispatch
        .accept(d.by(
            Role::UnitHandler,
            Some(&unit),
            AcceptRequest { case: Some(by_id(case_id)), unit_id: unit.clone(), accepted_by: "王五".into() },
        ))
        .await?;
    dispatch
        .contact(d.by(
            Role::UnitHandler,
            Some(&unit),
            ContactRequest {
                case: Some(by_id(case_id)),
                unit_id: unit.clone(),
                contacted_by: "王五".into(),
                note: "已电话联系，约定下午上门核实。".into(),
            },
        ))
        .await?;
    eventually("the contact clock to stop", WAIT, || {
        let mut sla = sla.clone();
        async move {
            let clocks = sla.list_clocks(centre(by_id(case_id))).await.ok()?.into_inner().clocks;
            clocks.iter().any(|c| c.milestone == "contact" && c.state == "stopped").then_some(())
        }
    })
    .await?;
    answer_parts(d, &dispatch, case_id).await?;
    dispatch
        .resolve(d.by(
            Role::UnitHandler,
            Some(&unit),
            ResolveRequest {
                case: Some(by_id(case_id)),
                unit_id: unit.clone(),
                resolved_by: "王五".into(),
                reply: "已现场核实并处理。".into(),
                letter: None,
            },
        ))
        .await?;

    // Revisit: dissatisfied → reopened.
    let mut revisit = d.revisit().await;
    record_when_ready(d, &mut revisit, case_id, Satisfaction::Dissatisfied, false).await?;
    until_status(d, &dispatch, case_id, CaseStatus::Reopened).await?;
    // Round 2: the same unit calls the citizen again; the assisting units answer again.
    let again = ContactRequest { case: Some(by_id(case_id)), unit_id: unit.clone(), contacted_by: "王五".into(), note: String::new() };
    dispatch.contact(d.by(Role::UnitHandler, Some(&unit), again)).await?;
    answer_parts(d, &dispatch, case_id).await?;
    dispatch
        .resolve(d.by(
            Role::UnitHandler,
            Some(&unit),
            ResolveRequest {
                case: Some(by_id(case_id)),
                unit_id: unit.clone(),
                resolved_by: "王五".into(),
                reply: "已彻底处理完毕，并与市民沟通确认。".into(),
                letter: None,
            },
        ))
        .await?;
    record_when_ready(d, &mut revisit, case_id, Satisfaction::Satisfied, true).await?;
    until_status(d, &dispatch, case_id, CaseStatus::Closed).await?;
    sla = d.sla().await;
    let clocks = sla.list_clocks(centre(by_id(case_id))).await?.into_inner().clocks;
    ensure!(clocks.iter().all(|c| c.state == "stopped" || c.milestone == "escalate"), "clocks still running after closure: {clocks:?}");
    Ok(())
}

/// Each assisting unit of the case answers its part (多方联动), with its own token.
async fn answer_parts(
    d: &District,
    dispatch: &jiesu_proto::v1::dispatch_service_client::DispatchServiceClient<tonic::transport::Channel>,
    case_id: &str,
) -> Result<()> {
    let mut dispatch = dispatch.clone();
    let view = dispatch.get_case(d.by(Role::CentreAgent, None, by_id(case_id))).await?.into_inner();
    for part in view.parts.iter().filter(|p| !p.answered) {
        let answer = AnswerAssistRequest { case: Some(by_id(case_id)), answer: "已配合处理。".into(), ..Default::default() };
        dispatch.answer_assist(d.by(Role::UnitHandler, Some(&part.unit_id), answer)).await?;
    }
    Ok(())
}

/// Waits until dispatch shows the case in `status`.
async fn until_status(
    d: &District,
    dispatch: &jiesu_proto::v1::dispatch_service_client::DispatchServiceClient<tonic::transport::Channel>,
    case_id: &str,
    status: CaseStatus,
) -> Result<()> {
    eventually(&format!("the case to be {status:?}"), WAIT, || {
        let mut dispatch = dispatch.clone();
        async move {
            let v = dispatch.get_case(d.by(Role::CentreAgent, None, by_id(case_id))).await.ok()?.into_inner();
            (v.status() == status).then_some(())
        }
    })
    .await?;
    Ok(())
}

/// Records a revisit once the revisit task exists (it is created from `case.resolved`).
async fn record_when_ready(
    d: &District,
    revisit: &mut jiesu_proto::v1::revisit_service_client::RevisitServiceClient<tonic::transport::Channel>,
    case_id: &str,
    satisfaction: Satisfaction,
    solved: bool,
) -> Result<()> {
    eventually("a revisit waiting to be recorded", WAIT, || {
        let mut revisit = revisit.clone();
        async move {
            revisit
                .record(d.by(
                    Role::RevisitAgent,
                    None,
                    RecordRequest {
                        case: Some(by_id(case_id)),
                        satisfaction: satisfaction as i32,
                        solved,
                        comment: String::new(),
                        recorded_by: "回访员小陈".into(),
                    },
                ))
                .await
                .ok()
        }
    })
    .await?;
    Ok(())
}
