//! The harness of Jiesu's integration tests: a whole district — a real nats-server of the
//! test's own, all six services started in-process with `start(config)`, and one database per
//! service (SQLite files in a temporary directory, or fresh PostgreSQL databases) — plus gRPC
//! clients and a reader of the event stream. What every service's tests share (the test NATS,
//! [`read_stream`], `eventually`, …) is in [`jiesu_testkit`].

pub mod cluster;

use std::{collections::BTreeMap, sync::Arc};

use anyhow::{Context, Result, bail, ensure};
use jiesu_kit::{Clock, DistrictConfig, Running, Subjects};
use jiesu_proto::v1::{
    classification_service_client::ClassificationServiceClient, dispatch_service_client::DispatchServiceClient,
    intake_service_client::IntakeServiceClient, notification_service_client::NotificationServiceClient,
    revisit_service_client::RevisitServiceClient, sla_service_client::SlaServiceClient,
};
use jiesu_testkit::{NatsServer, StoredMessage, TestBed, demo_config, grpc_channel, pg_admin, pg_url, read_stream};
use tonic::transport::Channel;

/// The six services, by their config section names.
pub const SERVICES: [&str; 6] = ["intake", "classification", "dispatch", "sla_timer", "notification", "revisit"];

pub use jiesu_testkit::{Backend, postgres_admin_url};

/// A district running in this test process.
pub struct District {
    pub nats: NatsServer,
    pub config: DistrictConfig,
    pub subjects: Subjects,
    pub running: BTreeMap<&'static str, Running>,
    pub clock: Arc<dyn Clock>,
    backend: Backend,
    databases: Vec<String>,
    dir: tempfile::TempDir,
    /// The district's signing key, when calls need tokens ([`District::start_secured`]).
    signer: Option<jiesu_kit::auth::Signer>,
    /// The test clients' certificate and the district's CA, when the district uses TLS.
    tls: Option<jiesu_kit::tls::Tls>,
}

impl District {
    /// Starts NATS and all six services on `backend`, with the demo district's configuration.
    pub async fn start(backend: Backend) -> Result<Self> {
        Self::start_with(backend, Arc::new(jiesu_kit::SystemClock), &SERVICES, |_| {}).await
    }

    /// As [`District::start`], as a district runs in production: every call needs a token
    /// (see [`District::by`]), each service signs its own calls to the others.
    pub async fn start_secured(backend: Backend) -> Result<Self> {
        Self::start_inner(backend, Arc::new(jiesu_kit::SystemClock), &SERVICES, |_| {}, true).await
    }

    /// As [`District::start`], with an injected clock, only some services, configuration changes.
    pub async fn start_with(
        backend: Backend,
        clock: Arc<dyn Clock>,
        services: &[&'static str],
        tweak: impl FnOnce(&mut DistrictConfig),
    ) -> Result<Self> {
        Self::start_inner(backend, clock, services, tweak, false).await
    }

    async fn start_inner(
        backend: Backend,
        clock: Arc<dyn Clock>,
        services: &[&'static str],
        tweak: impl FnOnce(&mut DistrictConfig),
        tokens: bool,
    ) -> Result<Self> {
        // Every service on SQLite in the bed's directory; PostgreSQL replaces the URLs below.
        let mut bed = TestBed::new(demo_config(), &SERVICES);
        let signer = tokens.then(|| bed.require_tokens());
        if tokens {
            // As in production: TLS everywhere, each service showing its certificate to the others.
            bed.use_tls(true);
        }
        let tls = bed.client_tls();
        let TestBed { nats, dir, mut config, subjects } = bed;
        let root = subjects.root().to_string();
        let mut databases = Vec::new();
        for svc in SERVICES {
            if backend == Backend::Postgres {
                let name = format!("{root}_{svc}");
                create_pg_database(&name).await?;
                config.set(&format!("{svc}.database_url"), pg_url(&name));
                databases.push(name);
            }
            // Faster redelivery than production, so a test sees a retry within seconds.
            config.set(&format!("{svc}.consumer.backoff"), vec!["200ms", "500ms", "1s", "1s", "1s"]);
        }
        tweak(&mut config);
        // The tweak may point the district at another NATS (a cluster), under its own root.
        let subjects = Subjects::new(config.part::<jiesu_kit::config::NatsSettings>("nats")?.subject_root);
        // What the operator does before the services start: they may not create streams.
        jiesu_testkit::provision(&config).await;
        let mut district = Self { nats, subjects, config, running: BTreeMap::new(), clock, backend, databases, dir, signer, tls };
        for svc in SERVICES.iter().filter(|s| services.contains(s)) {
            district.start_service(svc).await?;
        }
        Ok(district)
    }

    /// Starts (or restarts) one service.
    pub async fn start_service(&mut self, svc: &'static str) -> Result<()> {
        if svc == "notification" {
            let intake = self.running.get("intake").context("start intake before notification")?;
            let scheme = if self.tls.is_some() { "https" } else { "http" };
            self.config.set("notification.intake_url", format!("{scheme}://{}", intake.grpc_addr));
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
        match &self.tls {
            None => grpc_channel(addr).await,
            Some(tls) => jiesu_kit::tls::endpoint(Some(tls), &format!("https://localhost:{}", addr.port()))
                .expect("an https endpoint")
                .connect()
                .await
                .unwrap_or_else(|e| panic!("connect to {svc} over TLS: {e}")),
        }
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

    /// `msg` as a request of somebody in `role` (of `unit`), with a token signed by the
    /// district's key when the district requires tokens.
    pub fn by<T>(&self, role: jiesu_kit::auth::Role, unit: Option<&str>, msg: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(msg);
        if let Some(signer) = &self.signer {
            let user = format!("{}-{}", role.key(), unit.unwrap_or("centre"));
            request.metadata_mut().insert("authorization", jiesu_testkit::bearer(signer, &user, role, unit));
        }
        request
    }

    /// The district's configuration with `[console]` pointed at this district's running services
    /// over TLS, listening on a free loopback port (its `public_url` too), its database a SQLite
    /// file in `dir`.
    pub fn console_config(&self, dir: &std::path::Path) -> DistrictConfig {
        let mut config = self.config.clone();
        let port = jiesu_testkit::free_port();
        config.set("console.listen", format!("127.0.0.1:{port}"));
        config.set("console.public_url", format!("http://127.0.0.1:{port}"));
        config.set("console.database_url", format!("sqlite://{}", dir.join("console.db").display()));
        for (key, svc) in [
            ("intake_url", "intake"),
            ("classification_url", "classification"),
            ("dispatch_url", "dispatch"),
            ("sla_url", "sla_timer"),
            ("revisit_url", "revisit"),
        ] {
            config.set(&format!("console.{key}"), format!("https://127.0.0.1:{}", self.running[svc].grpc_addr.port()));
        }
        config
    }

    /// JetStream as the operator, who may read and manage everything.
    pub async fn jetstream(&self) -> Result<async_nats::jetstream::Context> {
        Ok(async_nats::jetstream::new(self.nats.operator().await))
    }

    /// Every message in the events stream so far.
    pub async fn events(&self) -> Result<Vec<StoredMessage>> {
        read_stream(&self.jetstream().await?, &self.subjects.events_stream(), None).await.map_err(anyhow::Error::from_boxed)
    }

    /// Every message on one subject of the submissions stream (e.g. rejections).
    pub async fn submissions_stream(&self, subject: &str) -> Result<Vec<StoredMessage>> {
        let js = self.jetstream().await?;
        read_stream(&js, &self.subjects.submissions_stream(), Some(subject)).await.map_err(anyhow::Error::from_boxed)
    }

    /// Backs up a stopped service's database the way docs/operations.md says: on SQLite a copy
    /// (`VACUUM INTO`), on PostgreSQL a copy of the database (here `CREATE DATABASE … TEMPLATE`,
    /// in production `pg_dump`).
    pub async fn backup(&mut self, svc: &str) -> Result<()> {
        ensure!(!self.running.contains_key(svc), "stop {svc} before backing it up");
        match self.backend {
            Backend::Sqlite => {
                use sqlx::Connection;
                let (db, backup) = (self.sqlite_path(svc, "db"), self.sqlite_path(svc, "backup"));
                let _ = std::fs::remove_file(&backup);
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", backup.display()))).execute(&mut conn).await?;
                conn.close().await?;
            }
            Backend::Postgres => {
                let name = format!("{}_{svc}", self.subjects.root());
                let backup = format!("{name}_backup");
                drop_pg_database(&backup).await?;
                pg_admin(&format!("CREATE DATABASE \"{backup}\" TEMPLATE \"{name}\"")).await.map_err(anyhow::Error::msg)?;
                if !self.databases.contains(&backup) {
                    self.databases.push(backup);
                }
            }
        }
        Ok(())
    }

    /// Replaces a stopped service's database by its last [`District::backup`].
    pub async fn restore(&mut self, svc: &str) -> Result<()> {
        ensure!(!self.running.contains_key(svc), "stop {svc} before restoring it");
        match self.backend {
            Backend::Sqlite => {
                let db = self.sqlite_path(svc, "db");
                for suffix in ["db-wal", "db-shm"] {
                    let _ = std::fs::remove_file(self.sqlite_path(svc, suffix));
                }
                std::fs::copy(self.sqlite_path(svc, "backup"), db)?;
            }
            Backend::Postgres => {
                let name = format!("{}_{svc}", self.subjects.root());
                drop_pg_database(&name).await?;
                pg_admin(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{name}_backup\"")).await.map_err(anyhow::Error::msg)?;
            }
        }
        Ok(())
    }

    fn sqlite_path(&self, svc: &str, suffix: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{svc}.{suffix}"))
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

async fn create_pg_database(name: &str) -> Result<()> {
    pg_admin(&format!("CREATE DATABASE \"{name}\"")).await.map_err(anyhow::Error::msg)
}

async fn drop_pg_database(name: &str) -> Result<()> {
    jiesu_testkit::drop_pg_database(name).await.map_err(anyhow::Error::msg)
}
