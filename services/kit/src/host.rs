//! Starts a service's shared machinery — telemetry, database, broker, outbox relay, consumers,
//! gRPC and admin listeners — and stops it cleanly. A service's `start` is a few lines on top.

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc};

use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::{
    Error, ServiceConfig,
    clock::SharedClock,
    consumer::{Consumer, ConsumerSpec, Handler, Replay},
    db::{Db, Migrations},
    messaging::Broker,
    metrics::Metrics,
    outbox::Relay,
    server,
    telemetry::{self, TelemetryGuard},
};

/// A service being assembled.
pub struct Host {
    pub name: &'static str,
    pub db: Db,
    pub broker: Broker,
    pub clock: SharedClock,
    pub metrics: Metrics,
    pub relay_wake: Arc<Notify>,
    cancel: CancellationToken,
    tasks: JoinSet<(String, Result<(), Error>)>,
    replayers: HashMap<String, Arc<dyn Replay>>,
    grpc: tokio::net::TcpListener,
    admin: tokio::net::TcpListener,
    consumer_settings: crate::config::ConsumerSettings,
    telemetry: TelemetryGuard,
}

impl Host {
    /// Connects everything the service needs; binds its listeners (port 0: any free port).
    pub async fn start<S>(cfg: &ServiceConfig<S>, migrations: &Migrations, clock: SharedClock) -> Result<Self, Error> {
        let telemetry = telemetry::init(cfg.name, &cfg.telemetry)?;
        let db = Db::connect(&cfg.common.database_url, migrations).await?;
        let broker = Broker::connect(&cfg.nats, cfg.name).await?;
        let grpc = server::bind("the gRPC listener", cfg.common.grpc_addr).await?;
        let admin = server::bind("the admin listener", cfg.common.admin_addr).await?;
        let mut host = Self {
            name: cfg.name,
            db,
            broker,
            clock,
            metrics: Metrics::new(cfg.name),
            relay_wake: Arc::new(Notify::new()),
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
            replayers: HashMap::new(),
            grpc,
            admin,
            consumer_settings: cfg.common.consumer.clone(),
            telemetry,
        };
        if let Ok(open) = crate::consumer::dead_letters(&host.db, false).await {
            host.metrics.dead_letters_open.set(open.len() as i64);
        }
        let relay = Relay {
            db: host.db.clone(),
            broker: host.broker.clone(),
            clock: host.clock.clone(),
            wake: host.relay_wake.clone(),
            metrics: host.metrics.clone(),
            inbox_retention: cfg.nats.event_retention.max(cfg.nats.submission_retention),
        };
        let cancel = host.cancel.clone();
        host.tasks.spawn(async move {
            relay.run(cancel.cancelled_owned()).await;
            ("outbox relay".to_string(), Ok(()))
        });
        Ok(host)
    }

    /// Consumes the given event types (`case.received`, …) from the events stream.
    pub fn consume_events<H: Handler>(&mut self, durable: &str, event_types: &[&str], handler: Arc<H>) {
        let filters = event_types.iter().map(|t| self.broker.subjects.event(t)).collect();
        let stream = self.broker.subjects.events_stream();
        self.consume(durable, stream, filters, handler);
    }

    /// Consumes from any stream with the given subject filters.
    pub fn consume<H: Handler>(&mut self, durable: &str, stream: String, filter_subjects: Vec<String>, handler: Arc<H>) {
        let consumer = Arc::new(Consumer {
            spec: ConsumerSpec {
                durable: durable.to_string(),
                stream,
                filter_subjects,
                settings: self.consumer_settings.clone(),
            },
            broker: self.broker.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            handler,
            relay_wake: self.relay_wake.clone(),
            metrics: self.metrics.clone(),
        });
        self.replayers.insert(durable.to_string(), consumer.clone());
        let cancel = self.cancel.clone();
        let name = format!("consumer {durable}");
        self.tasks.spawn(async move { (name, consumer.run(cancel).await) });
    }

    /// Runs a service's own background loop until shutdown (a timer wheel, a delivery worker).
    pub fn spawn<F, Fut>(&mut self, name: &str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        let fut = task(self.cancel.clone());
        let name = name.to_string();
        self.tasks.spawn(async move { (name, fut.await) });
    }

    /// A token cancelled when the service stops.
    pub fn cancellation(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Serves the gRPC routes and the admin port; the service is now running.
    pub fn serve(mut self, routes: tonic::service::Routes, grpc_services: Vec<&'static str>) -> Result<Running, Error> {
        let grpc_addr = self.grpc.local_addr().map_err(|e| Error::Config(e.to_string()))?;
        let admin_addr = self.admin.local_addr().map_err(|e| Error::Config(e.to_string()))?;
        let cancel = self.cancel.clone();
        let grpc = self.grpc;
        self.tasks.spawn(async move { ("gRPC server".into(), server::serve_grpc(grpc, routes, grpc_services, cancel).await) });
        let state = server::AdminState {
            db: self.db.clone(),
            broker: self.broker.clone(),
            metrics: self.metrics.clone(),
            replayers: Arc::new(self.replayers),
        };
        let cancel = self.cancel.clone();
        let admin = self.admin;
        self.tasks.spawn(async move { ("admin server".into(), server::serve_admin(admin, state, cancel).await) });
        info!(service = self.name, %grpc_addr, %admin_addr, "service started");
        Ok(Running {
            name: self.name,
            grpc_addr,
            admin_addr,
            cancel: self.cancel,
            tasks: self.tasks,
            db: self.db,
            _telemetry: self.telemetry,
        })
    }
}

/// A started service.
pub struct Running {
    pub name: &'static str,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: JoinSet<(String, Result<(), Error>)>,
    db: Db,
    _telemetry: TelemetryGuard,
}

impl Running {
    /// Stops every task, lets the relay drain, closes the database.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        while let Some(done) = self.tasks.join_next().await {
            if let Ok((name, Err(e))) = done {
                error!(service = self.name, task = %name, error = %e, "task ended with an error");
            }
        }
        self.db.close().await;
        info!(service = self.name, "service stopped");
    }

    /// Runs until Ctrl-C / SIGTERM or until a task fails, then shuts down.
    pub async fn until_stopped(mut self) -> Result<(), Error> {
        let failed = tokio::select! {
            _ = shutdown_signal() => None,
            Some(done) = self.tasks.join_next() => match done {
                Ok((name, Err(e))) => Some(format!("{name}: {e}")),
                Ok((name, Ok(()))) => Some(format!("{name} stopped unexpectedly")),
                Err(e) => Some(format!("a task panicked: {e}")),
            },
        };
        self.shutdown().await;
        match failed {
            Some(reason) => Err(Error::Config(reason)),
            None => Ok(()),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
