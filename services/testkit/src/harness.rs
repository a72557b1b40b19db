//! One service in-process, the way every service's `tests/` drive it.

use std::{fmt::Display, future::Future, pin::Pin, sync::Arc, time::Duration};

use async_nats::jetstream;
use jiesu_kit::{DistrictConfig, Running, SystemClock, clock::SharedClock};
use jiesu_proto::Event;
use sqlx::{postgres::PgPool, sqlite::SqlitePool};
use tonic::transport::Channel;

use crate::{
    Backend, PgDatabase, StoredMessage, TestBed, TimedOut, grpc_channel, publish_event, publish_event_as, read_stream, sqlite_read_only,
};

/// A service's database as its test watches it: SQLite opened read-only, or a PostgreSQL pool.
pub enum TestDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl TestDb {
    /// The first column of the one row `sql` (a `SELECT COUNT(*) …` of the test's) returns.
    pub async fn count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        match self {
            TestDb::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await,
            TestDb::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await,
        }
    }

    pub async fn close(&self) {
        match self {
            TestDb::Sqlite(p) => p.close().await,
            TestDb::Postgres(p) => p.close().await,
        }
    }
}

type Start = Arc<dyn Fn(DistrictConfig, SharedClock) -> Pin<Box<dyn Future<Output = Result<Running, String>> + Send>> + Send + Sync>;

/// How long a harness waits for a service to catch up before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One service (`section` is its configuration section, e.g. `sla_timer`) started in-process on
/// its own [`TestBed`]: a real nats-server, a database of its own (a SQLite file in a temporary
/// directory, or a fresh PostgreSQL database), gRPC and admin on free ports. The test watches the service's database read-only through [`Harness::db`]
/// and its output through the events stream; [`Harness::restart`] stops it and starts it again on
/// the same database and broker, as an operator's restart would.
pub struct Harness {
    pub bed: TestBed,
    pub section: &'static str,
    /// The service's name, which its durable consumer and inbox rows carry.
    pub name: &'static str,
    pub clock: SharedClock,
    pub js: jetstream::Context,
    /// The service's database, to watch.
    pub db: TestDb,
    running: Option<Running>,
    start: Start,
    _postgres: Option<PgDatabase>,
}

impl Harness {
    /// Starts the service on the demo district with the system clock. `start` is the service
    /// crate's `start`, wrapped: `|c, k| async move { jiesu_dispatch::start(&c, k).await }`.
    pub async fn start<F, Fut, E>(section: &'static str, start: F) -> Self
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        Self::start_with(section, Backend::Sqlite, start).await
    }

    /// [`Harness::start`] on the given database engine.
    pub async fn start_with<F, Fut, E>(section: &'static str, backend: Backend, start: F) -> Self
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        let bed = TestBed::new(crate::demo_config(), &[section]);
        Self::start_on_backend(bed, section, backend, Arc::new(SystemClock), start).await
    }

    /// [`Harness::start`] with tokens required (see [`TestBed::require_tokens`]); the signer
    /// mints the test's tokens ([`crate::bearer`]).
    pub async fn start_with_tokens<F, Fut, E>(section: &'static str, start: F) -> (Self, jiesu_kit::auth::Signer)
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        let mut bed = TestBed::new(crate::demo_config(), &[section]);
        let signer = bed.require_tokens();
        (Self::start_on(bed, section, Arc::new(SystemClock), start).await, signer)
    }

    /// Starts the service on a test bed prepared by the test (other keys set), with `clock`.
    pub async fn start_on<F, Fut, E>(bed: TestBed, section: &'static str, clock: SharedClock, start: F) -> Self
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        Self::start_on_backend(bed, section, Backend::Sqlite, clock, start).await
    }

    /// The most general start: a prepared bed, a database engine, a clock.
    pub async fn start_on_backend<F, Fut, E>(
        mut bed: TestBed,
        section: &'static str,
        backend: Backend,
        clock: SharedClock,
        start: F,
    ) -> Self
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let database = PgDatabase::create(&format!("{}_{section}", bed.subjects.root())).await;
                bed.config.set(&format!("{section}.database_url"), database.url.clone());
                Some(database)
            }
        };
        let start: Start = Arc::new(move |config, clock| {
            let fut = start(config, clock);
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        bed.provision().await;
        let running = start(bed.config.clone(), clock.clone()).await.unwrap_or_else(|e| panic!("{section} does not start: {e}"));
        let js = bed.jetstream().await.expect("connect to the test's NATS");
        let db = match &postgres {
            None => TestDb::Sqlite(sqlite_read_only(&bed.database_path(section)).await),
            Some(pg) => TestDb::Postgres(PgPool::connect(&pg.url).await.expect("connect to the service's PostgreSQL database")),
        };
        Self { bed, section, name: running.name, clock, js, db, running: Some(running), start, _postgres: postgres }
    }

    /// The running service.
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("the service is stopped")
    }

    /// A new gRPC channel to the service.
    pub async fn channel(&self) -> Channel {
        grpc_channel(self.running().grpc_addr).await
    }

    /// `http://<admin addr><path>`: the service's health and metrics endpoints.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running().admin_addr)
    }

    /// Stops the service (its database and the broker stay).
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }

    /// Stops the service and starts it again on the same database and broker.
    pub async fn restart(&mut self) {
        self.stop().await;
        let running = (self.start)(self.bed.config.clone(), self.clock.clone()).await;
        self.running = Some(running.unwrap_or_else(|e| panic!("{} does not start again: {e}", self.section)));
    }

    /// Publishes `event` as its producer would (see [`publish_event`]); true when JetStream
    /// took it as new.
    pub async fn publish<E: Event>(&self, event: &E) -> bool {
        publish_event(&self.js, &self.bed.subjects, event).await
    }

    /// Publishes `event` under another `Nats-Msg-Id` (see [`publish_event_as`]).
    pub async fn publish_as<E: Event>(&self, msg_id: &str, event: &E) -> bool {
        publish_event_as(&self.js, &self.bed.subjects, msg_id, event).await
    }

    /// Waits until the service's consumer has handled message `msg_id` and published everything
    /// it wrote to its outbox.
    pub async fn handled(&self, msg_id: &str) -> Result<(), TimedOut> {
        crate::until_handled(&self.db, self.name, msg_id, WAIT).await?;
        self.settled().await
    }

    /// Waits until the outbox is empty: the stream holds all the service emitted.
    pub async fn settled(&self) -> Result<(), TimedOut> {
        crate::until_outbox_sent(&self.db, WAIT).await
    }

    /// Every event of type `E` in the events stream so far, decoded, oldest first.
    pub async fn events<E: Event>(&self) -> Vec<E> {
        self.stored(&self.bed.subjects.event(E::TYPE))
            .await
            .into_iter()
            .map(|m| E::decode(m.payload).unwrap_or_else(|e| panic!("a {} that does not decode: {e}", E::TYPE)))
            .collect()
    }

    /// Every message in the events stream on subjects matching `filter`, with its headers.
    pub async fn stored(&self, filter: &str) -> Vec<StoredMessage> {
        read_stream(&self.js, &self.bed.subjects.events_stream(), Some(filter)).await.expect("read the events stream")
    }
}
