//! The SLA timer in-process against a real nats-server and a temporary SQLite file, driven by a
//! `ManualClock`: case events arm and stop clocks, moving the clock fires each alert once, and
//! neither a restart nor downtime produces a duplicate or a stale warning.

use jiesu_proto::{Named, v1 as ev};
use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeDelta, Utc};
use jiesu_kit::{ManualClock, Running, time::to_proto};
use jiesu_proto::Event;
use jiesu_proto::v1::{
    CaseAccepted, CaseClosed, CaseDispatched, CaseReceived, CaseRef, CaseReopened, CaseResolved, ClockView, EventMeta, ListClocksResponse,
    SlaBreached, Urgency, case_ref::Ref, sla_service_client::SlaServiceClient,
};
use jiesu_testkit::{Backend, Harness, TestBed, demo_config, eventually, grpc_channel, http_get};

jiesu_testkit::on_both_backends!(
    clocks_fire_once_and_survive_restarts,
    reopening_rearms_resolve_and_closing_stops_everything,
    previews_a_deadline_across_the_holidays,
    an_approved_extension_moves_the_resolve_deadline_and_keeps_the_original,
    on_time_figures_per_milestone_and_unit,
    a_paused_clock_fires_nothing_even_across_a_restart,
    assisting_parts_the_ladder_and_rules_by_channel
);
use prost::Message;

/// Monday 23 November 2026, 10:00 in Beijing.
const T0: &str = "2026-11-23T02:00:00Z";

fn at(minutes: i64) -> DateTime<Utc> {
    T0.parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(minutes)
}

/// Longer than the firing loop's longest sleep plus a firing and a publish: when nothing has
/// appeared after this, nothing is coming.
const QUIET: Duration = Duration::from_millis(2_500);

/// How long a test waits for what should happen.
const WAIT: Duration = Duration::from_secs(20);

/// The SLA timer in-process on a manual clock.
struct Timer {
    h: Harness,
    clock: ManualClock,
}

impl Timer {
    async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Started on the demo district with `policy` changed first.
    async fn start_with(backend: Backend, policy: impl FnOnce(&mut TestBed)) -> Self {
        let clock = ManualClock::new(at(0));
        let mut bed = TestBed::new(demo_config(), &["sla_timer"]);
        policy(&mut bed);
        let h = Harness::start_on_backend(bed, "sla_timer", backend, Arc::new(clock.clone()), |c, k| async move {
            jiesu_sla_timer::start(&c, k).await
        })
        .await;
        Self { h, clock }
    }

    fn running(&self) -> &Running {
        self.h.running()
    }

    async fn publish<E: Event>(&self, event: &E) {
        self.h.publish(event).await;
    }

    /// Every alert in the stream so far: (event type, Nats-Msg-Id, alert).
    async fn alerts(&self) -> Vec<(String, String, SlaBreached)> {
        let subjects = &self.h.bed.subjects;
        self.h
            .stored(&subjects.event("sla.>"))
            .await
            .into_iter()
            .map(|msg| {
                let kind = subjects.event_type_of(&msg.subject).unwrap_or_default().to_string();
                (kind, msg.msg_id, SlaBreached::decode(msg.payload).unwrap())
            })
            .collect()
    }

    /// Waits until there are `n` alerts, then for a quiet spell, and checks there are still `n`.
    async fn exactly_alerts(&self, n: usize) -> Vec<(String, String, SlaBreached)> {
        eventually(&format!("{n} alerts"), WAIT, || async {
            let a = self.alerts().await;
            (a.len() >= n).then_some(())
        })
        .await
        .unwrap();
        tokio::time::sleep(QUIET).await;
        let alerts = self.alerts().await;
        assert_eq!(alerts.len(), n, "exactly {n} alerts, got {:#?}", alerts);
        alerts
    }
}

async fn client(running: &Running) -> SlaServiceClient<tonic::transport::Channel> {
    SlaServiceClient::new(grpc_channel(running.grpc_addr).await)
}

async fn list(running: &Running, r: Ref) -> Result<ListClocksResponse, tonic::Status> {
    client(running).await.list_clocks(CaseRef { r#ref: Some(r) }).await.map(|r| r.into_inner())
}

/// Waits until the case's clocks satisfy `ok`.
async fn clocks_until(running: &Running, case_id: &str, what: &str, ok: impl Fn(&[ClockView]) -> bool) -> ListClocksResponse {
    eventually(what, WAIT, || async {
        let r = list(running, Ref::CaseId(case_id.into())).await.ok()?;
        ok(&r.clocks).then_some(r)
    })
    .await
    .unwrap()
}

fn clock<'a>(clocks: &'a [ClockView], milestone: &str) -> Option<&'a ClockView> {
    clocks.iter().find(|c| c.milestone == milestone)
}

fn state_of(clocks: &[ClockView], milestone: &str) -> Option<String> {
    clock(clocks, milestone).map(|c| c.state.clone())
}

fn meta(case_id: &str, case_no: &str, occurred_at: DateTime<Utc>) -> EventMeta {
    EventMeta {
        event_id: uuid::Uuid::now_v7().to_string(),
        case_id: case_id.into(),
        case_no: case_no.into(),
        occurred_at: Some(to_proto(occurred_at)),
        causation_id: String::new(),
        district: "demo".into(),
    }
}

fn ts(t: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(to_proto(t))
}

async fn metrics(running: &Running) -> String {
    http_get(running.admin_addr, "/metrics").await.expect("the admin port answers").1
}

async fn clocks_fire_once_and_survive_restarts(backend: Backend) {
    let mut h = Timer::start(backend).await;
    let case_id = uuid::Uuid::now_v7().to_string();
    let case_no = "DM20261123-0001";

    // Received: the dispatch clock (1 h) starts at the event's time.
    let m = meta(&case_id, case_no, at(0));
    h.publish(&CaseReceived { meta: Some(m.clone()), ..Default::default() }).await;
    let r = clocks_until(h.running(), &case_id, "the dispatch clock", |c| state_of(c, "dispatch").as_deref() == Some("armed")).await;
    let dispatch = clock(&r.clocks, "dispatch").unwrap();
    assert_eq!(dispatch.clock_id, format!("{case_id}:dispatch"));
    assert_eq!((dispatch.version, dispatch.started_at, dispatch.deadline), (1, ts(at(0)), ts(at(60))));
    assert_eq!(dispatch.warn_at, ts(at(48)));
    // The escalation clock (包案, 50 working days) starts at receipt too.
    let escalate = clock(&r.clocks, "escalate").unwrap();
    assert_eq!((escalate.state.as_str(), escalate.started_at), ("armed", ts(at(0))));
    assert_eq!(r.timeline.len(), 2);
    assert_eq!(r.timeline[0].detail, "分拨时限已启动，截止 2026-11-23 11:00");
    assert_eq!(r.timeline[0].event, "dispatch.armed");
    assert_eq!(r.timeline[0].service, "sla_timer");

    // Dispatched five minutes later: dispatch met; accept, reply and resolve start.
    h.clock.set(at(5));
    let m = meta(&case_id, case_no, at(5));
    let dispatched = CaseDispatched {
        meta: Some(m.clone()),
        unit_id: "st-dongmen".into(),
        unit_name: "东门街道".into(),
        urgency: Urgency::Normal as i32,
        round: 1,
        ..Default::default()
    };
    h.publish(&dispatched).await;
    let r = clocks_until(h.running(), &case_id, "the accept clock", |c| state_of(c, "accept").is_some()).await;
    assert_eq!(state_of(&r.clocks, "dispatch").as_deref(), Some("stopped"));
    assert_eq!(clock(&r.clocks, "dispatch").unwrap().stopped_at, ts(at(5)));
    let accept = clock(&r.clocks, "accept").unwrap();
    assert_eq!((accept.state.as_str(), accept.warn_at, accept.deadline), ("armed", ts(at(13)), ts(at(15))));
    assert_eq!(accept.unit_id, "st-dongmen");
    assert_eq!(clock(&r.clocks, "resolve").unwrap().deadline, ts(at(5 + 24 * 60)));
    assert_eq!(clock(&r.clocks, "reply").unwrap().deadline, ts(at(5 + 72 * 60)));
    assert!(clock(&r.clocks, "contact").is_none());
    assert!(h.alerts().await.is_empty());

    // Past the accept warning point: one warning.
    h.clock.set(at(13));
    let alerts = h.exactly_alerts(1).await;
    let (kind, id, alert) = &alerts[0];
    assert_eq!(kind, ev::SlaWarning::TYPE);
    assert!(!id.is_empty(), "an alert carries its event id as Nats-Msg-Id");
    assert_eq!((alert.milestone.as_str(), alert.level.as_str(), alert.version), ("accept", "yellow", 1));
    assert_eq!(alert.milestone_name, "签收", "named as clerks read it");
    assert_eq!((alert.unit_id.as_str(), alert.deadline), ("st-dongmen", ts(at(15))));
    let meta_out = alert.meta.as_ref().unwrap();
    assert_eq!((meta_out.case_id.as_str(), meta_out.case_no.as_str()), (case_id.as_str(), case_no));
    assert_eq!((meta_out.event_id.as_str(), meta_out.district.as_str()), (id.as_str(), "demo"));
    assert_eq!(meta_out.causation_id, m.event_id, "caused by the dispatch that armed the clock");

    // Past the deadline: one breach.
    h.clock.set(at(15));
    let alerts = h.exactly_alerts(2).await;
    let (kind, id, alert) = &alerts[1];
    assert_eq!(kind.as_str(), ev::SlaBreached::TYPE);
    assert_ne!(id, &alerts[0].1, "the breach is another event than the warning");
    assert_eq!((alert.milestone.as_str(), alert.level.as_str()), ("accept", "red"));
    let r = list(h.running(), Ref::CaseId(case_id.clone())).await.unwrap();
    assert_eq!(state_of(&r.clocks, "accept").as_deref(), Some("breached"));
    let details: Vec<&str> = r.timeline.iter().map(|e| e.detail.as_str()).collect();
    assert!(details.contains(&"签收时限预警（黄），截止 2026-11-23 10:15"), "{details:?}");
    assert!(details.contains(&"签收超时（红），截止 2026-11-23 10:15"), "{details:?}");
    assert!(details.contains(&"分拨按时完成"), "{details:?}");
    let text = metrics(h.running()).await;
    assert!(text.contains("jiesu_sla_warnings_fired_total{service=\"sla_timer\"} 1"), "{text}");
    assert!(text.contains("jiesu_sla_breaches_fired_total{service=\"sla_timer\"} 1"), "{text}");

    // A restart on the same database fires nothing again.
    h.h.restart().await;
    list(h.running(), Ref::CaseNo(case_no.into())).await.unwrap();
    h.exactly_alerts(2).await;

    // The same dispatch sent again under a new id re-arms nothing.
    let m2 = meta(&case_id, case_no, at(16));
    h.publish(&CaseDispatched { meta: Some(m2.clone()), ..dispatched.clone() }).await;
    // Accepted late: accept stops, contact (30 min) starts.
    h.clock.set(at(20));
    let m = meta(&case_id, case_no, at(20));
    let accepted = CaseAccepted { meta: Some(m.clone()), unit_id: "st-dongmen".into(), round: 1, ..Default::default() };
    h.publish(&accepted).await;
    let r = clocks_until(h.running(), &case_id, "the contact clock", |c| state_of(c, "contact").is_some()).await;
    let accept = clock(&r.clocks, "accept").unwrap();
    assert_eq!((accept.state.as_str(), accept.version, accept.stopped_at), ("stopped", 1, ts(at(20))));
    let contact = clock(&r.clocks, "contact").unwrap();
    assert_eq!((contact.started_at, contact.deadline, contact.unit_id.as_str()), (ts(at(20)), ts(at(50)), "st-dongmen"));
    assert!(r.timeline.iter().any(|e| e.detail == "签收逾期完成（截止 2026-11-23 10:15）"));

    // The verify clock (核实, 30 min) started with the signature too.
    let verify = clock(&r.clocks, "verify").unwrap();
    assert_eq!((verify.started_at, verify.deadline), (ts(at(20)), ts(at(50))));

    // Down while the contact and verify clocks pass both their warning points and deadlines: on
    // start-up each fires its breach only.
    h.h.stop().await;
    h.clock.set(at(60));
    h.h.restart().await;
    let alerts = h.exactly_alerts(4).await;
    let mut late: Vec<_> = alerts[2..].iter().map(|(k, _, a)| (k.as_str(), a.milestone.as_str(), a.deadline)).collect();
    late.sort_by_key(|(_, m, _)| *m);
    assert_eq!(late, [(ev::SlaBreached::TYPE, "contact", ts(at(50))), (ev::SlaBreached::TYPE, "verify", ts(at(50)))]);
    let r = list(h.running(), Ref::CaseId(case_id.clone())).await.unwrap();
    assert_eq!(state_of(&r.clocks, "contact").as_deref(), Some("breached"));
    assert_eq!(state_of(&r.clocks, "resolve").as_deref(), Some("armed"));
    h.h.stop().await;
}

async fn reopening_rearms_resolve_and_closing_stops_everything(backend: Backend) {
    let mut h = Timer::start(backend).await;
    let case_id = uuid::Uuid::now_v7().to_string();
    let case_no = "DM20261123-0002";

    let m = meta(&case_id, case_no, at(0));
    h.publish(&CaseReceived { meta: Some(m.clone()), ..Default::default() }).await;
    let m = meta(&case_id, case_no, at(1));
    let dispatched = CaseDispatched {
        meta: Some(m.clone()),
        unit_id: "dept-water".into(),
        urgency: Urgency::Emergency as i32,
        round: 1,
        ..Default::default()
    };
    h.publish(&dispatched).await;
    let r = clocks_until(h.running(), &case_id, "the resolve clock", |c| state_of(c, "resolve").is_some()).await;
    assert_eq!(clock(&r.clocks, "resolve").unwrap().deadline, ts(at(1 + 120)), "emergency: 2 hours");

    let m = meta(&case_id, case_no, at(30));
    h.publish(&CaseResolved { meta: Some(m.clone()), round: 1, ..Default::default() }).await;
    // Every clock stopped, and the demo district's own milestone started: the callback (回访)
    // within 2 working days of resolution.
    let r = clocks_until(h.running(), &case_id, "every clock stopped", |c| {
        c.iter().all(|c| c.state == "stopped" || c.milestone == "callback") && clock(c, "callback").is_some()
    })
    .await;
    let callback = clock(&r.clocks, "callback").unwrap();
    assert_eq!(callback.milestone_name, "回访", "the district's own name for it");
    assert!(r.timeline.iter().any(|e| e.event == "callback.armed" && e.detail.starts_with("回访时限已启动")), "{:?}", r.timeline);
    assert_eq!((callback.state.as_str(), callback.started_at, callback.deadline), ("armed", ts(at(30)), ts(at(30 + 2 * 24 * 60))));

    // The revisit found it unsolved: resolve starts again, one version up, still an emergency.
    h.clock.set(at(600));
    let m = meta(&case_id, case_no, at(600));
    let reopened = CaseReopened { meta: Some(m.clone()), reason: "未解决".into(), round: 2, ..Default::default() };
    h.publish(&reopened).await;
    let r = clocks_until(h.running(), &case_id, "resolve re-armed", |c| clock(c, "resolve").is_some_and(|r| r.version == 2)).await;
    let resolve = clock(&r.clocks, "resolve").unwrap();
    assert_eq!((resolve.state.as_str(), resolve.started_at, resolve.deadline), ("armed", ts(at(600)), ts(at(720))));
    assert_eq!((resolve.unit_id.as_str(), resolve.stopped_at), ("dept-water", None));
    assert_eq!(state_of(&r.clocks, "callback").as_deref(), Some("stopped"), "met by the reopening");
    assert!(r.timeline.iter().any(|e| e.detail == "办结时限重新起算，截止 2026-11-23 22:00"), "{:?}", r.timeline);

    // Closed: nothing runs, so nothing fires however late it gets.
    let m = meta(&case_id, case_no, at(601));
    h.publish(&CaseClosed { meta: Some(m.clone()), round: 2, ..Default::default() }).await;
    let r = clocks_until(h.running(), &case_id, "every clock stopped again", |c| c.iter().all(|c| c.state == "stopped")).await;
    assert!(r.timeline.iter().any(|e| e.detail == "已结案，办结计时停止"));
    h.clock.set(at(10_000));
    tokio::time::sleep(QUIET).await;
    assert!(h.alerts().await.is_empty());

    // Looked up by case number; an unknown case and an empty reference are told apart.
    let by_no = list(h.running(), Ref::CaseNo(case_no.into())).await.unwrap();
    // dispatch, accept, reply, resolve, the written response (处理意见书), escalate and callback.
    assert_eq!(by_no.clocks.len(), 7);
    assert_eq!(clock(&by_no.clocks, "resolve").unwrap().round, 2, "reopened once");
    assert_eq!(clock(&by_no.clocks, "escalate").unwrap().version, 2, "resumed on reopening, then closed");
    let err = list(h.running(), Ref::CaseNo("DM-none".into())).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    let err = client(h.running()).await.list_clocks(CaseRef { r#ref: None }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");
    h.h.stop().await;
}

/// `PreviewDeadline` (时限预演): what a clock would compute, across the 2024–2026 holidays, on a
/// unit's business hours, with every bad input named.
async fn previews_a_deadline_across_the_holidays(backend: Backend) {
    use jiesu_proto::v1::PreviewDeadlineRequest;
    let mut bed = TestBed::new(demo_config(), &["sla_timer"]);
    // A district's own set of hours, beside the built-in ones.
    bed.config.set("sla_timer.business_hours.sets.duty.days", "every");
    bed.config.set("sla_timer.business_hours.sets.duty.periods", vec!["00:00-24:00"]);
    let h = Harness::start_on_backend(bed, "sla_timer", backend, Arc::new(ManualClock::new(at(0))), |c, k| async move {
        jiesu_sla_timer::start(&c, k).await
    })
    .await;
    let mut c = client(h.running()).await;
    let bj = |s: &str| {
        use chrono::TimeZone;
        chrono_tz::Asia::Shanghai
            .from_local_datetime(&chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap())
            .unwrap()
            .to_utc()
    };
    let preview = |start: &str, limit: &str, unit: &str| PreviewDeadlineRequest {
        start: Some(to_proto(bj(start))),
        limit: limit.into(),
        unit_id: unit.into(),
        warn_at: 0.0,
    };
    let mut ask = async |r: PreviewDeadlineRequest| c.preview_deadline(r).await.map(|r| r.into_inner());

    // 3 working days from the Thursday before 春节 2024 (2-10..17 off, Sunday 2-18 at work).
    let r = ask(preview("2024-02-08 10:00", "3wd", "")).await.unwrap();
    assert_eq!(r.local_deadline, "2024-02-19 10:00:00");
    assert!(r.uncovered_years.is_empty());
    // 国庆 2025 with 中秋 (10-01..08 off, Saturday 10-11 at work).
    assert_eq!(ask(preview("2025-09-30 16:00", "2wd", "")).await.unwrap().local_deadline, "2025-10-10 16:00:00");
    // 8 working hours on an office's hours, across the weekend: Friday 17:00 → Monday 18:00 of the
    // next working week, the lunch break left out…
    let r = ask(preview("2026-12-11 17:00", "8wh", "dept-water")).await.unwrap();
    assert_eq!((r.local_deadline.as_str(), r.limit.as_str()), ("2026-12-14 18:00:00", "8wh"));
    assert!(r.hours.starts_with("office"), "{}", r.hours);
    // …and the yellow point at the policy's 80 % of the span.
    assert_eq!(r.local_warn_at, "2026-12-14 03:24:00");
    // The centre keeps hours around the clock (its unit in the organisation): Saturday 01:00.
    let r = ask(preview("2026-12-11 17:00", "8wh", "centre")).await.unwrap();
    assert_eq!(r.local_deadline, "2026-12-12 01:00:00");
    assert!(r.hours.starts_with("always"), "{}", r.hours);
    // Elapsed hours ignore the calendar.
    assert_eq!(ask(preview("2026-09-30 16:00", "72h", "")).await.unwrap().local_deadline, "2026-10-03 16:00:00");
    // A year the calendar does not know is named, not silently counted Monday to Friday.
    let r = ask(preview("2026-12-30 10:00", "3wd", "")).await.unwrap();
    assert_eq!(r.uncovered_years, vec![2027]);
    // Bad input, each named.
    for (req, words) in [
        (preview("2026-12-07 09:00", "3 days", ""), "limit"),
        (preview("2026-12-07 09:00", "8wh", "st-nowhere"), "st-nowhere"),
        (PreviewDeadlineRequest { warn_at: 1.5, ..preview("2026-12-07 09:00", "1h", "") }, "warn_at"),
    ] {
        let err = ask(req).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(words), "{words}: {}", err.message());
    }
    h.db.close().await;
}

/// 延期: an approved extension moves the resolve clock (one version up), keeps the original
/// deadline for the statistics, and the old deadline passes without a breach; a refused one
/// changes nothing.
async fn an_approved_extension_moves_the_resolve_deadline_and_keeps_the_original(backend: Backend) {
    use jiesu_proto::v1::CaseExtensionDecided;
    let h = Timer::start(backend).await;
    let case_id = uuid::Uuid::now_v7().to_string();
    let case_no = "DM20261123-0042";
    let dispatched = CaseDispatched {
        meta: Some(meta(&case_id, case_no, at(0))),
        unit_id: "st-dongmen".into(),
        urgency: Urgency::Normal as i32,
        round: 1,
        ..Default::default()
    };
    h.publish(&dispatched).await;
    let r = clocks_until(h.running(), &case_id, "the resolve clock", |c| state_of(c, "resolve").as_deref() == Some("armed")).await;
    let old = clock(&r.clocks, "resolve").unwrap().deadline;
    assert_eq!(old, ts(at(24 * 60)), "一般: 24 hours");

    // Refused: nothing moves.
    let decided = |approved: bool, until: DateTime<Utc>| CaseExtensionDecided {
        meta: Some(meta(&case_id, case_no, at(60))),
        unit_id: "st-dongmen".into(),
        approved,
        deadline: ts(until),
        original_deadline: old,
        ..Default::default()
    };
    h.publish(&decided(false, at(24 * 60))).await;
    let until = at(8 * 24 * 60);
    h.publish(&decided(true, until)).await;
    let r = clocks_until(h.running(), &case_id, "the moved resolve clock", |c| clock(c, "resolve").is_some_and(|r| r.version == 2)).await;
    let resolve = clock(&r.clocks, "resolve").unwrap();
    assert_eq!((resolve.deadline, resolve.original_deadline, resolve.started_at), (ts(until), old, ts(at(0))));
    assert!(r.timeline.iter().any(|t| t.event == "resolve.moved" && t.detail.contains("延期至")), "{:?}", r.timeline);

    // The old deadline passes: no alert for resolve.
    h.clock.set(at(24 * 60 + 1));
    tokio::time::sleep(QUIET).await;
    let resolve_alerts =
        |alerts: Vec<(String, String, SlaBreached)>| alerts.into_iter().filter(|a| a.2.milestone == "resolve").collect::<Vec<_>>();
    assert!(resolve_alerts(h.alerts().await).is_empty(), "nothing fires at the old deadline");
    // The new one: the breach, once, of the moved version.
    h.clock.set(until + TimeDelta::minutes(1));
    eventually("the breach at the new deadline", WAIT, || async { (!resolve_alerts(h.alerts().await).is_empty()).then_some(()) })
        .await
        .unwrap();
    tokio::time::sleep(QUIET).await;
    let alerts = resolve_alerts(h.alerts().await);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!((alerts[0].0.as_str(), alerts[0].2.version, alerts[0].2.deadline), ("sla.breached", 2, ts(until)));
}

/// 按时率: milestones met on time and late in a period, per unit, and what is yellow or red now.
async fn on_time_figures_per_milestone_and_unit(backend: Backend) {
    use jiesu_proto::v1::OnTimeFiguresRequest;
    let h = Timer::start(backend).await;
    // Two cases of 东门街道: one signed for in 5 minutes, one in 20 (the limit is 10).
    for (i, signed_at) in [5, 20].into_iter().enumerate() {
        let case_id = uuid::Uuid::now_v7().to_string();
        let case_no = format!("DM20261123-01{i:02}");
        let dispatched = CaseDispatched {
            meta: Some(meta(&case_id, &case_no, at(0))),
            unit_id: "st-dongmen".into(),
            urgency: Urgency::Normal as i32,
            round: 1,
            ..Default::default()
        };
        h.publish(&dispatched).await;
        clocks_until(h.running(), &case_id, "armed", |c| state_of(c, "accept").is_some()).await;
        h.publish(&CaseAccepted {
            meta: Some(meta(&case_id, &case_no, at(signed_at))),
            unit_id: "st-dongmen".into(),
            round: 1,
            ..Default::default()
        })
        .await;
        clocks_until(h.running(), &case_id, "the accept clock stopped", |c| state_of(c, "accept").as_deref() == Some("stopped")).await;
    }
    // Half a day on, both resolve clocks (24 h) are past their yellow point? Not yet: 80 % is
    // 19.2 h. At 20 h they are yellow.
    h.clock.set(at(20 * 60));
    eventually("two yellow resolve clocks", WAIT, || async {
        let figures = client(h.running())
            .await
            .on_time_figures(OnTimeFiguresRequest { from: ts(at(-60)), to: ts(at(60)), unit_id: String::new() })
            .await
            .ok()?
            .into_inner()
            .figures;
        figures.iter().any(|f| f.milestone == "resolve" && f.open_yellow == 2).then_some(())
    })
    .await
    .unwrap();
    let figures = client(h.running())
        .await
        .on_time_figures(OnTimeFiguresRequest { from: ts(at(-60)), to: ts(at(60)), unit_id: "st-dongmen".into() })
        .await
        .unwrap()
        .into_inner()
        .figures;
    let accept = figures.iter().find(|f| f.milestone == "accept").unwrap();
    assert_eq!((accept.unit_id.as_str(), accept.met_on_time, accept.met_late, accept.on_time_rate), ("st-dongmen", 1, 1, 0.5));
    // Another period: nothing met in it.
    let later = client(h.running())
        .await
        .on_time_figures(OnTimeFiguresRequest { from: ts(at(120)), to: ts(at(180)), unit_id: String::new() })
        .await
        .unwrap()
        .into_inner()
        .figures;
    assert!(later.iter().all(|f| f.met_on_time + f.met_late == 0), "{later:?}");
    // The same clocks at risk, the nearest deadline first.
    let risky = client(h.running())
        .await
        .list_at_risk(jiesu_proto::v1::ListAtRiskRequest { unit_id: "st-dongmen".into(), colour: "yellow".into(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .clocks;
    assert_eq!(risky.iter().map(|c| c.milestone.as_str()).collect::<Vec<_>>(), ["resolve", "resolve"]);
    assert!(
        risky.iter().all(|c| c.state == "warned" && c.case_no.starts_with("DM"))
            && risky[0].deadline.as_ref().map(|t| t.seconds) <= risky[1].deadline.as_ref().map(|t| t.seconds)
    );
    let none = client(h.running())
        .await
        .list_at_risk(jiesu_proto::v1::ListAtRiskRequest { unit_id: "st-xinan".into(), colour: String::new(), limit: 0 })
        .await
        .unwrap()
        .into_inner()
        .clocks;
    assert!(none.is_empty());
    let bad =
        client(h.running()).await.list_at_risk(jiesu_proto::v1::ListAtRiskRequest { colour: "blue".into(), ..Default::default() }).await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
    let err =
        client(h.running()).await.on_time_figures(OnTimeFiguresRequest { from: None, to: None, unit_id: String::new() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}

fn dispatched_to(case_id: &str, case_no: &str, unit: &str, minute: i64) -> CaseDispatched {
    CaseDispatched {
        meta: Some(meta(case_id, case_no, at(minute))),
        unit_id: unit.into(),
        urgency: Urgency::Normal as i32,
        round: 1,
        ..Default::default()
    }
}

/// 挂起: a district that stops the resolve clock while a return is under review. Paused, the
/// clock fires nothing — not at its old deadline, not after a restart — and resumed, its
/// deadline has moved by the time the review took.
async fn a_paused_clock_fires_nothing_even_across_a_restart(backend: Backend) {
    use jiesu_proto::v1::{CaseReturnReviewed, CaseReturned};
    let mut h = Timer::start_with(backend, |bed| {
        bed.config.set("sla_timer.policy.milestones.resolve.pause", vec!["returned"]);
        bed.config.set("sla_timer.policy.milestones.resolve.resume", vec!["return_reviewed"]);
    })
    .await;
    let case_id = uuid::Uuid::now_v7().to_string();
    let case_no = "DM20261123-0077";
    h.publish(&dispatched_to(&case_id, case_no, "st-dongmen", 0)).await;
    clocks_until(h.running(), &case_id, "the resolve clock", |c| state_of(c, "resolve").is_some()).await;

    h.clock.set(at(60));
    h.publish(&CaseReturned { meta: Some(meta(&case_id, case_no, at(60))), unit_id: "st-dongmen".into(), ..Default::default() }).await;
    let r = clocks_until(h.running(), &case_id, "the resolve clock paused", |c| clock(c, "resolve").is_some_and(|r| r.paused_at.is_some()))
        .await;
    let resolve = clock(&r.clocks, "resolve").unwrap();
    assert_eq!((resolve.paused_at, resolve.version, resolve.colour.as_str()), (ts(at(60)), 2, "green"));
    assert!(clock(&r.clocks, "accept").unwrap().paused_at.is_none(), "only the milestones the policy names pause");
    assert!(r.timeline.iter().any(|e| e.event == "resolve.paused" && e.detail == "办结暂停计时"), "{:?}", r.timeline);

    // Down past the old deadline, then up again: the paused clock stays silent.
    h.h.stop().await;
    h.clock.set(at(26 * 60));
    h.h.restart().await;
    tokio::time::sleep(QUIET).await;
    assert!(h.alerts().await.iter().all(|(_, _, a)| a.milestone != "resolve"), "a paused clock fires nothing");

    // The centre rules 26 hours after the return began: the deadline moves by 25 hours.
    h.publish(&CaseReturnReviewed { meta: Some(meta(&case_id, case_no, at(26 * 60))), unit_id: "st-dongmen".into(), ..Default::default() })
        .await;
    let r = clocks_until(h.running(), &case_id, "the resolve clock resumed", |c| clock(c, "resolve").is_some_and(|r| r.version == 3)).await;
    let resolve = clock(&r.clocks, "resolve").unwrap();
    assert_eq!((resolve.paused_at, resolve.deadline, resolve.state.as_str()), (None, ts(at(24 * 60 + 25 * 60)), "armed"));
    assert!(r.timeline.iter().any(|e| e.event == "resolve.resumed" && e.detail.contains("截止顺延至")), "{:?}", r.timeline);
    // At the moved deadline, one breach of the resumed version.
    h.clock.set(at(49 * 60));
    eventually("the resolve breach", WAIT, || async {
        h.alerts().await.iter().any(|(k, _, a)| k == ev::SlaBreached::TYPE && a.milestone == "resolve").then_some(())
    })
    .await
    .unwrap();
    let breaches: Vec<_> = h.alerts().await.into_iter().filter(|(_, _, a)| a.milestone == "resolve").collect();
    assert_eq!(breaches.len(), 1, "past the deadline, the breach only: {breaches:#?}");
    assert_eq!((breaches[0].2.version, breaches[0].2.deadline), (3, ts(at(49 * 60))));
    h.h.stop().await;
}

/// 协办 and the ladder: an assisting part has its own clock, answerable by its own unit; a
/// resolve clock red for one working day more climbs the ladder's last rung
/// (`sla.escalation_due`); and a rule gives the hotline's cases another dispatch limit.
async fn assisting_parts_the_ladder_and_rules_by_channel(backend: Backend) {
    use jiesu_proto::v1::{AssistingPart, CaseAssistAdded, CaseAssistAnswered};
    let mut h = Timer::start_with(backend, |bed| {
        bed.config.set("sla_timer.policy.milestones.resolve.escalate_after_red", "1wd");
        let rules: toml::Value = toml::from_str::<toml::Table>(
            "rules = [{ when = { channel = \"hotline\" }, limits = { dispatch = \"20m\" } }]",
        )
        .unwrap()["rules"]
            .clone();
        bed.config.set("sla_timer.policy.rules", rules);
    })
    .await;
    let case_id = uuid::Uuid::now_v7().to_string();
    let case_no = "DM20261123-0088";
    h.publish(&CaseReceived { meta: Some(meta(&case_id, case_no, at(0))), channel: "hotline".into(), ..Default::default() }).await;
    let r = clocks_until(h.running(), &case_id, "the dispatch clock", |c| state_of(c, "dispatch").is_some()).await;
    assert_eq!(clock(&r.clocks, "dispatch").unwrap().deadline, ts(at(20)), "the hotline's own dispatch limit");
    h.publish(&dispatched_to(&case_id, case_no, "st-dongmen", 5)).await;
    clocks_until(h.running(), &case_id, "the resolve clock", |c| state_of(c, "resolve").is_some()).await;

    // Two assisting units, each with its own deadline.
    for (unit, minutes) in [("dept-water", 120), ("dept-housing", 600)] {
        let part = AssistingPart { unit_id: unit.into(), deadline: ts(at(minutes)), ..Default::default() };
        h.publish(&CaseAssistAdded {
            meta: Some(meta(&case_id, case_no, at(10))),
            lead_unit_id: "st-dongmen".into(),
            part: Some(part),
            ..Default::default()
        })
        .await;
    }
    let r = clocks_until(h.running(), &case_id, "two part clocks", |c| c.iter().filter(|c| c.milestone == "assist").count() == 2).await;
    let water = r.clocks.iter().find(|c| c.part == "dept-water").unwrap();
    assert_eq!(
        (water.clock_id.clone(), water.unit_id.as_str(), water.deadline),
        (format!("{case_id}:assist:dept-water"), "dept-water", ts(at(120)))
    );
    h.publish(&CaseAssistAnswered { meta: Some(meta(&case_id, case_no, at(100))), unit_id: "dept-housing".into(), ..Default::default() })
        .await;
    clocks_until(h.running(), &case_id, "the housing part answered", |c| {
        c.iter().any(|c| c.part == "dept-housing" && c.state == "stopped")
    })
    .await;
    // The water part is late: its breach names the assisting unit.
    h.clock.set(at(121));
    eventually("the part's breach", WAIT, || async {
        h.alerts().await.iter().any(|(k, _, a)| k == ev::SlaBreached::TYPE && a.milestone == "assist").then_some(())
    })
    .await
    .unwrap();
    let part_alerts: Vec<_> = h.alerts().await.into_iter().filter(|(_, _, a)| a.milestone == "assist").collect();
    assert!(
        part_alerts.iter().all(|(_, _, a)| a.unit_id == "dept-water" && a.clock_id.ends_with(":assist:dept-water")),
        "{part_alerts:#?}"
    );

    // Resolve: 24 h, red at Tuesday 10:05; one working day later, Wednesday 10:05, escalation due.
    h.clock.set(at(5 + 24 * 60));
    eventually("the resolve breach", WAIT, || async {
        h.alerts().await.iter().any(|(k, _, a)| k == ev::SlaBreached::TYPE && a.milestone == "resolve").then_some(())
    })
    .await
    .unwrap();
    let r = list(h.running(), Ref::CaseId(case_id.clone())).await.unwrap();
    let resolve = clock(&r.clocks, "resolve").unwrap();
    assert_eq!((resolve.escalate_at, resolve.colour.as_str()), (ts(at(5 + 48 * 60)), "red"));
    async fn due(h: &Timer) -> Vec<(String, String, SlaBreached)> {
        h.alerts().await.into_iter().filter(|(k, _, _)| k == ev::SlaEscalationDue::TYPE).collect()
    }
    assert!(due(&h).await.is_empty());
    // Down over the rung: on restart it fires at once, once.
    h.h.stop().await;
    h.clock.set(at(5 + 48 * 60 + 30));
    h.h.restart().await;
    eventually("escalation due", WAIT, || async { (!due(&h).await.is_empty()).then_some(()) }).await.unwrap();
    tokio::time::sleep(QUIET).await;
    let escalations = due(&h).await;
    assert_eq!(escalations.len(), 1, "{escalations:#?}");
    let payload = &escalations[0].2;
    assert_eq!((payload.milestone.as_str(), payload.unit_id.as_str(), payload.level.as_str()), ("resolve", "st-dongmen", "red"));
    let r = list(h.running(), Ref::CaseId(case_id.clone())).await.unwrap();
    assert_eq!(state_of(&r.clocks, "resolve").as_deref(), Some("escalated"));
    assert!(r.timeline.iter().any(|e| e.event == "resolve.escalation" && e.detail.contains("已提级")), "{:?}", r.timeline);
    let text = metrics(h.running()).await;
    assert!(text.contains("jiesu_sla_escalations_fired_total{service=\"sla_timer\"} 1"), "{text}");
    h.h.stop().await;
}
