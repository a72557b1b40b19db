//! The harness of Jiesu's integration tests: a whole district — a real nats-server of the
//! test's own, all six services started in-process with `start(config)`, and one database per
//! service (SQLite files in a temporary directory, or fresh PostgreSQL databases) — plus gRPC
//! clients and a reader of the event stream.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use jiesu_kit::{Clock, DistrictConfig, Running, Subjects, testing::NatsServer};
use jiesu_proto::v1::{
    classification_service_client::ClassificationServiceClient, dispatch_service_client::DispatchServiceClient,
    intake_service_client::IntakeServiceClient, notification_service_client::NotificationServiceClient,
    revisit_service_client::RevisitServiceClient, sla_service_client::SlaServiceClient,
};
use tonic::transport::Channel;

/// The six services, by their config section names.
pub const SERVICES: [&str; 6] = ["intake", "classification", "dispatch", "sla_timer", "notification", "revisit"];

/// Which database engine the services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where the tests find PostgreSQL: `JIESU_TEST_PG_URL`, default the machine's local server.
pub fn postgres_admin_url() -> String {
    std::env::var("JIESU_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A district running in this test process.
pub struct District {
    pub nats: NatsServer,
    pub config: DistrictConfig,
    pub subjects: Subjects,
    pub running: BTreeMap<&'static str, Running>,
    pub clock: Arc<dyn Clock>,
    backend: Backend,
    databases: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The demo district's configuration file.
pub fn demo_config_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/districts/demo/jiesu.toml")
}

impl District {
    /// Starts NATS and all six services on `backend`, with the demo district's configuration.
    pub async fn start(backend: Backend) -> Result<Self> {
        Self::start_with(backend, Arc::new(jiesu_kit::SystemClock), &SERVICES, |_| {}).await
    }

    /// As [`District::start`], with an injected clock, only some services, configuration changes.
    pub async fn start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        services: &[&'static str],
        tweak: impl FnOnce(&mut DistrictConfig),
    ) -> Result<Self> {
        let nats = NatsServer::start();
        let dir = tempfile::Builder::new().prefix("jiesu-it-").tempdir()?;
        let root = jiesu_kit::testing::unique_name("t");
        let mut config = DistrictConfig::load(demo_config_path())?;
        config.set("nats.url", nats.url());
        config.set("nats.subject_root", root.clone());
        config.set("telemetry.log_filter", "warn");
        let mut databases = Vec::new();
        for svc in SERVICES {
            let url = match backend {
                Backend::Sqlite => format!("sqlite://{}", dir.path().join(format!("{svc}.db")).display()),
                Backend::Postgres => {
                    let name = format!("{root}_{svc}");
                    create_pg_database(&name).await?;
                    databases.push(name.clone());
                    pg_url(&name)
                }
            };
            config.set(&format!("{svc}.database_url"), url);
            config.set(&format!("{svc}.grpc_addr"), "127.0.0.1:0");
            config.set(&format!("{svc}.admin_addr"), "127.0.0.1:0");
            // Faster redelivery than production, so a test sees a retry within seconds.
            config.set(&format!("{svc}.consumer.backoff"), vec!["200ms", "500ms", "1s", "1s", "1s"]);
        }
        tweak(&mut config);
        let mut district = Self {
            nats,
            subjects: Subjects::new(root),
            config,
            running: BTreeMap::new(),
            clock,
            backend,
            databases,
            _dir: dir,
        };
        for svc in SERVICES.iter().filter(|s| services.contains(s)) {
            district.start_service(svc).await?;
        }
        Ok(district)
    }

    /// Starts (or restarts) one service.
    pub async fn start_service(&mut self, svc: &'static str) -> Result<()> {
        if svc == "notification" {
            let intake = self.running.get("intake").context("start intake before notification")?;
            self.config.set("notification.intake_url", format!("http://{}", intake.grpc_addr));
        }
        let clock = self.clock.clone();
        let c = &self.config;
        let running = match svc {
            "intake" => jiesu_intake::start(c, clock).await.map_err(anyhow::Error::from),
            "classification" => jiesu_classification::start(c, clock).await.map_err(anyhow::Error::from),
            "dispatch" => jiesu_dispatch::start(c, clock).await.map_err(anyhow::Error::from),
            "sla_timer" => jiesu_sla_timer::start(c, clock).await.map_err(anyhow::Error::from),
            "notification" => jiesu_notification::start(c, clock).await.map_err(anyhow::Error::from),
            "revisit" => jiesu_revisit::start(c, clock).await.map_err(anyhow::Error::from),
            other => bail!("no service {other}"),
        }
        .with_context(|| format!("starting {svc}"))?;
        self.running.insert(svc, running);
        Ok(())
    }

    /// Stops one service (as a clean shutdown).
    pub async fn stop_service(&mut self, svc: &str) {
        if let Some(r) = self.running.remove(svc) {
            r.shutdown().await;
        }
    }

    async fn channel(&self, svc: &str) -> Channel {
        let addr = self.running[svc].grpc_addr;
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to an in-process service")
    }

    pub async fn intake(&self) -> IntakeServiceClient<Channel> {
        IntakeServiceClient::new(self.channel("intake").await)
    }
    pub async fn classification(&self) -> ClassificationServiceClient<Channel> {
        ClassificationServiceClient::new(self.channel("classification").await)
    }
    pub async fn dispatch(&self) -> DispatchServiceClient<Channel> {
        DispatchServiceClient::new(self.channel("dispatch").await)
    }
    pub async fn sla(&self) -> SlaServiceClient<Channel> {
        SlaServiceClient::new(self.channel("sla_timer").await)
    }
    pub async fn notification(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel("notification").await)
    }
    pub async fn revisit(&self) -> RevisitServiceClient<Channel> {
        RevisitServiceClient::new(self.channel("revisit").await)
    }

    pub async fn jetstream(&self) -> Result<async_nats::jetstream::Context> {
        let client = async_nats::connect(self.nats.url()).await?;
        Ok(async_nats::jetstream::new(client))
    }

    /// Every message in the events stream so far: (subject, headers, payload).
    pub async fn events(&self) -> Result<Vec<Event>> {
        read_stream(&self.jetstream().await?, &self.subjects.events_stream(), None).await
    }

    /// Every message on one subject of the submissions stream (e.g. rejections).
    pub async fn submissions_stream(&self, subject: &str) -> Result<Vec<Event>> {
        read_stream(&self.jetstream().await?, &self.subjects.submissions_stream(), Some(subject.to_string())).await
    }

    /// Stops every service and drops the databases.
    pub async fn shutdown(mut self) {
        for svc in SERVICES.iter().rev() {
            self.stop_service(svc).await;
        }
        if self.backend == Backend::Postgres {
            for db in &self.databases {
                let _ = drop_pg_database(db).await;
            }
        }
    }
}

/// One message read back from a stream.
#[derive(Debug, Clone)]
pub struct Event {
    pub subject: String,
    pub msg_id: String,
    pub case_id: String,
    /// The W3C `traceparent` header, if any.
    pub traceparent: String,
    pub payload: bytes::Bytes,
}

impl Event {
    /// The trace id in `traceparent` (`00-<trace id>-<span id>-<flags>`).
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.split('-').nth(1)
    }
}

async fn read_stream(js: &async_nats::jetstream::Context, stream: &str, filter: Option<String>) -> Result<Vec<Event>> {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull};
    let stream = js.get_stream(stream).await?;
    let info = stream.get_info().await?;
    let total = info.state.messages as usize;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            filter_subject: filter.unwrap_or_default(),
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut out = Vec::new();
    let mut batch = consumer.fetch().max_messages(total.max(1)).expires(Duration::from_millis(500)).messages().await?;
    while let Some(m) = batch.next().await {
        let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
        let h = m.headers.clone().unwrap_or_default();
        out.push(Event {
            subject: m.subject.to_string(),
            msg_id: h.get("Nats-Msg-Id").map(|v| v.to_string()).unwrap_or_default(),
            case_id: h.get("Jiesu-Case-Id").map(|v| v.to_string()).unwrap_or_default(),
            traceparent: h.get("traceparent").map(|v| v.to_string()).unwrap_or_default(),
            payload: m.payload.clone(),
        });
    }
    Ok(out)
}

/// Polls `check` until it returns `Some`, or fails after `limit` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pg_url(database: &str) -> String {
    let admin = postgres_admin_url();
    match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => format!("{admin}/{database}"),
    }
}

async fn create_pg_database(name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .with_context(|| format!("PostgreSQL is needed for this test at {} (set JIESU_TEST_PG_URL)", postgres_admin_url()))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\""))).execute(&mut conn).await?;
    Ok(())
}

async fn drop_pg_database(name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&mut conn).await?;
    Ok(())
}
