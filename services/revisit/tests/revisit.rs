//! Revisit in-process against a real nats-server and a temporary SQLite database.

use std::{path::Path, sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream};
use futures::StreamExt;
use jiesu_kit::{DistrictConfig, Running, Subjects, testing::NatsServer};
use jiesu_proto::v1::{
    CaseRef, CaseReopened, CaseResolved, EventMeta, RecordRequest, RevisitRecorded, Satisfaction, Urgency, case_ref::Ref,
    revisit_service_client::RevisitServiceClient,
};
use prost::Message;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tonic::{Code, transport::Channel};

const WAIT: Duration = Duration::from_secs(20);
const CASE_ID: &str = "0192f0c8-0000-7000-8000-000000000002";
const CASE_NO: &str = "DM20261123-0002";

/// One revisit service with its own broker and database.
struct Harness {
    _nats: NatsServer,
    _dir: tempfile::TempDir,
    running: Running,
    js: jetstream::Context,
    subjects: Subjects,
    db: SqlitePool,
    client: RevisitServiceClient<Channel>,
}

impl Harness {
    async fn start() -> Self {
        let nats = NatsServer::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = jiesu_kit::testing::unique_name("t");
        let db_path = dir.path().join("revisit.db");
        let mut cfg = DistrictConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml")).expect("demo config");
        cfg.set("nats.url", nats.url());
        cfg.set("nats.subject_root", root.clone());
        cfg.set("telemetry.log_filter", "warn");
        cfg.set("revisit.database_url", format!("sqlite://{}", db_path.display()));
        cfg.set("revisit.grpc_addr", "127.0.0.1:0");
        cfg.set("revisit.admin_addr", "127.0.0.1:0");
        let running = jiesu_revisit::start(&cfg, Arc::new(jiesu_kit::SystemClock)).await.expect("revisit starts");
        let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect to NATS"));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.grpc_addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("gRPC connect");
        let db = read_only(&db_path).await;
        Self { _nats: nats, _dir: dir, running, js, subjects: Subjects::new(root), db, client: RevisitServiceClient::new(channel) }
    }

    /// Publishes `case.resolved` of `round` with the given `Nats-Msg-Id` and waits until
    /// revisit has handled it (or JetStream dropped it as a duplicate).
    async fn resolved(&self, msg_id: &str, round: u32) {
        let event = CaseResolved {
            meta: Some(EventMeta {
                event_id: msg_id.into(),
                case_id: CASE_ID.into(),
                case_no: CASE_NO.into(),
                occurred_at: None,
                causation_id: String::new(),
                district: "demo".into(),
            }),
            unit_id: "st-dongmen".into(),
            resolved_by: "王五".into(),
            reply: "已处理。".into(),
            round,
            urgency: Urgency::Normal as i32,
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        headers.insert("Jiesu-Case-Id", CASE_ID);
        headers.insert("Jiesu-Event-Type", "case.resolved");
        headers.insert("Content-Type", "application/x-protobuf");
        let ack = self
            .js
            .publish_with_headers(self.subjects.event("case.resolved"), headers, event.encode_to_vec().into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
        if ack.duplicate {
            return;
        }
        eventually(&format!("message {msg_id} to be handled"), || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE consumer = 'revisit' AND message_id = $1")
                .bind(msg_id)
                .fetch_one(&self.db)
                .await
                .ok()?;
            (n == 1).then_some(())
        })
        .await;
    }

    /// Every payload published on one event subject, once revisit's outbox is empty.
    async fn events(&self, event_type: &str) -> Vec<Vec<u8>> {
        eventually("the outbox to be published", || async {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&self.db).await.ok()?;
            (n == 0).then_some(())
        })
        .await;
        let stream = self.js.get_stream(self.subjects.events_stream()).await.expect("events stream");
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                filter_subject: self.subjects.event(event_type),
                ack_policy: jetstream::consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .expect("ephemeral consumer");
        let mut out = Vec::new();
        let mut batch = consumer.fetch().max_messages(100).expires(Duration::from_millis(300)).messages().await.expect("fetch");
        while let Some(m) = batch.next().await {
            out.push(m.expect("message").payload.to_vec());
        }
        out
    }

    async fn record(&mut self, satisfaction: Satisfaction, solved: bool) -> Result<jiesu_proto::v1::RevisitView, tonic::Status> {
        let req = RecordRequest {
            case: Some(by_no()),
            satisfaction: satisfaction as i32,
            solved,
            comment: "摊点还在".into(),
            recorded_by: "回访员小陈".into(),
        };
        self.client.record(req).await.map(|r| r.into_inner())
    }
}

async fn read_only(path: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.expect("open the service's database")
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let polling = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::time::timeout(WAIT, polling).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

fn by_no() -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseNo(CASE_NO.into())) }
}

fn by_id() -> CaseRef {
    CaseRef { r#ref: Some(Ref::CaseId(CASE_ID.into())) }
}

#[tokio::test(flavor = "multi_thread")]
async fn revisits_reopen_dissatisfied_cases_and_record_satisfied_ones() {
    let mut h = Harness::start().await;

    // Nothing resolved yet: nothing to record.
    let err = h.record(Satisfaction::Satisfied, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(h.client.list_revisits(by_id()).await.unwrap().into_inner().revisits.is_empty());

    // ---- case.resolved opens one revisit for the round, however often it arrives.
    let first = uuid::Uuid::now_v7().to_string();
    h.resolved(&first, 1).await;
    h.resolved(&first, 1).await;
    h.resolved(&uuid::Uuid::now_v7().to_string(), 1).await;
    let list = h.client.list_revisits(by_id()).await.unwrap().into_inner();
    assert_eq!(list.revisits.len(), 1);
    assert_eq!((list.revisits[0].status.as_str(), list.revisits[0].round), ("pending", 1));
    assert_eq!(list.timeline.len(), 1);
    assert_eq!((list.timeline[0].service.as_str(), list.timeline[0].detail.as_str()), ("revisit", "已办结，待回访"));

    // ---- Bad answers are refused with every reason.
    let bad = RecordRequest { case: Some(by_no()), satisfaction: 0, solved: true, comment: String::new(), recorded_by: String::new() };
    let err = h.client.record(bad).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("satisfaction is required") && err.message().contains("recorded_by is required"), "{}", err.message());

    // ---- Dissatisfied and unsolved: recorded, and the case reopened into round 2.
    let view = h.record(Satisfaction::Dissatisfied, false).await.unwrap();
    assert_eq!((view.status.as_str(), view.round, view.reopened), ("recorded", 1, true));
    assert_eq!(view.satisfaction(), Satisfaction::Dissatisfied);
    assert_eq!(view.comment, "摊点还在");
    let recorded = h.events("revisit.recorded").await;
    let reopened = h.events("case.reopened").await;
    assert_eq!((recorded.len(), reopened.len()), (1, 1));
    let rec = RevisitRecorded::decode(recorded[0].as_slice()).unwrap();
    assert_eq!((rec.satisfaction(), rec.solved, rec.round, rec.recorded_by.as_str()), (Satisfaction::Dissatisfied, false, 1, "回访员小陈"));
    assert_eq!(rec.revisit_id, view.revisit_id);
    let rec_meta = rec.meta.unwrap();
    assert_eq!((rec_meta.case_id.as_str(), rec_meta.case_no.as_str()), (CASE_ID, CASE_NO));
    let re = CaseReopened::decode(reopened[0].as_slice()).unwrap();
    assert_eq!((re.round, re.reason.as_str(), re.revisit_id.as_str()), (2, "回访不满意，问题未解决", view.revisit_id.as_str()));
    assert_eq!(re.meta.unwrap().causation_id, rec_meta.event_id);

    // ---- Nothing pending any more.
    let err = h.record(Satisfaction::Satisfied, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.message(),
        format!("case {CASE_NO} has no revisit waiting: it has not been resolved, or its revisit is already recorded")
    );

    // ---- Round 2 resolved, then satisfied: only revisit.recorded.
    h.resolved(&uuid::Uuid::now_v7().to_string(), 2).await;
    let view = h.record(Satisfaction::Satisfied, true).await.unwrap();
    assert_eq!((view.round, view.reopened), (2, false));
    let recorded = h.events("revisit.recorded").await;
    assert_eq!(recorded.len(), 2);
    let rec = RevisitRecorded::decode(recorded[1].as_slice()).unwrap();
    assert_eq!((rec.satisfaction(), rec.solved, rec.round), (Satisfaction::Satisfied, true, 2));
    assert_eq!(h.events("case.reopened").await.len(), 1, "a satisfied answer reopens nothing");

    let list = h.client.list_revisits(by_no()).await.unwrap().into_inner();
    assert_eq!(list.revisits.iter().map(|r| r.round).collect::<Vec<_>>(), [1, 2]);
    let details: Vec<_> = list.timeline.iter().map(|t| t.detail.as_str()).collect();
    assert_eq!(details, ["已办结，待回访", "回访：不满意，问题未解决，已重新交办", "已办结，待回访（第2轮）", "回访：满意，问题已解决"]);

    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters").fetch_one(&h.db).await.unwrap();
    assert_eq!(dead, 0, "nothing dead-lettered");
    h.db.close().await;
    h.running.shutdown().await;
}
