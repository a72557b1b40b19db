//! One service in-process, the way every service's `tests/` drive it.

use std::{fmt::Display, future::Future, pin::Pin, sync::Arc, time::Duration};

use async_nats::jetstream;
use jiesu_kit::{DistrictConfig, Running, SystemClock, clock::SharedClock};
use jiesu_proto::Event;
use sqlx::sqlite::SqlitePool;
use tonic::transport::Channel;

use crate::{StoredMessage, TestBed, TimedOut, grpc_channel, publish_event, publish_event_as, read_stream, sqlite_read_only};

type Start = Arc<dyn Fn(DistrictConfig, SharedClock) -> Pin<Box<dyn Future<Output = Result<Running, String>> + Send>> + Send + Sync>;

/// How long a harness waits for a service to catch up before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// One service (`section` is its configuration section, e.g. `sla_timer`) started in-process on
/// its own [`TestBed`]: a real nats-server, a SQLite database in a temporary directory, gRPC and
/// admin on free ports. The test watches the service's database read-only through [`Harness::db`]
/// and its output through the events stream; [`Harness::restart`] stops it and starts it again on
/// the same database and broker, as an operator's restart would.
pub struct Harness {
    pub bed: TestBed,
    pub section: &'static str,
    /// The service's name, which its durable consumer and inbox rows carry.
    pub name: &'static str,
    pub clock: SharedClock,
    pub js: jetstream::Context,
    /// The service's database, read-only.
    pub db: SqlitePool,
    running: Option<Running>,
    start: Start,
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
        let bed = TestBed::new(crate::demo_config(), &[section]);
        Self::start_on(bed, section, Arc::new(SystemClock), start).await
    }

    /// Starts the service on a test bed prepared by the test (other keys set), with `clock`.
    pub async fn start_on<F, Fut, E>(bed: TestBed, section: &'static str, clock: SharedClock, start: F) -> Self
    where
        F: Fn(DistrictConfig, SharedClock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Running, E>> + Send + 'static,
        E: Display,
    {
        let start: Start = Arc::new(move |config, clock| {
            let fut = start(config, clock);
            Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
        });
        let running = start(bed.config.clone(), clock.clone()).await.unwrap_or_else(|e| panic!("{section} does not start: {e}"));
        let js = bed.jetstream().await.expect("connect to the test's NATS");
        let db = sqlite_read_only(&bed.database_path(section)).await;
        Self { bed, section, name: running.name, clock, js, db, running: Some(running), start }
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
