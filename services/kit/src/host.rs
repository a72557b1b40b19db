//! Starts a service's shared machinery — telemetry, database, broker, outbox relay, consumers,
//! gRPC and admin listeners — and stops it cleanly. A service's `start` is a few lines on top.

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc};

use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::{
    Error, ServiceConfig,
    clock::SharedClock,
    consumer::{Consumer, ConsumerSpec, Handler, Inbound, Replay},
    db::{Db, Migrations},
    health::Readiness,
    messaging::Broker,
    metrics::Metrics,
    outbox::Relay,
    server,
    telemetry::{self, TelemetryGuard},
    work::{Commands, Emitter},
};

/// A service being assembled.
pub struct Host {
    pub name: &'static str,
    pub db: Db,
    pub broker: Broker,
    pub clock: SharedClock,
    pub metrics: Metrics,
    /// What the service's events carry: its name, its district, the subjects.
    pub emitter: Arc<Emitter>,
    pub readiness: Readiness,
    relay_wake: Arc<Notify>,
    inbox_retention: std::time::Duration,
    cancel: CancellationToken,
    tasks: JoinSet<(String, Result<(), Error>)>,
    replayers: HashMap<String, Arc<dyn Replay>>,
    grpc: tokio::net::TcpListener,
    admin: tokio::net::TcpListener,
    consumer_settings: crate::config::ConsumerSettings,
    telemetry: TelemetryGuard,
    auth: crate::auth::AuthLayer,
    /// This service's own signing key, for the tokens it sends to other services.
    pub signer: Option<crate::auth::Signer>,
    /// This service's certificate and the district's CA; `None`: plain text on loopback.
    pub tls: Option<crate::tls::Tls>,
}

impl Host {
    /// Connects everything the service needs; binds its listeners (port 0: any free port).
    pub async fn start<S>(cfg: &ServiceConfig<S>, migrations: &Migrations, clock: SharedClock) -> Result<Self, Error> {
        let telemetry = telemetry::init(cfg.name, &cfg.telemetry)?;
        // One TLS provider for every client of the process (gRPC, NATS, HTTPS).
        crate::tls::install_crypto_provider();
        let verifier = crate::auth::Verifier::from_settings(&cfg.auth, cfg.base_dir()).await?;
        let signer = crate::auth::Signer::from_settings(&cfg.auth, cfg.base_dir())?;
        if cfg.auth.required && verifier.is_none() {
            return Err(Error::Config("[auth] required = true, but neither [auth] keys nor [auth.oidc] says whose tokens to trust".into()));
        }
        if !cfg.auth.required {
            tracing::warn!(service = cfg.name, "[auth] required = false: calls without a token are served; never run a district like this");
        }
        let auth = crate::auth::AuthLayer::new(verifier.clone(), cfg.auth.required);
        let tls = crate::tls::Tls::load(&cfg.tls, cfg.name, &[cfg.common.grpc_addr, cfg.common.admin_addr])?;
        if tls.is_none() {
            tracing::warn!(service = cfg.name, "[tls] plaintext = true: gRPC and the admin port in clear, on loopback only");
        }
        let db = Db::connect(&cfg.common.database_url, cfg.common.max_connections, migrations).await?;
        let broker = Broker::connect(&cfg.nats, cfg.name).await?;
        let emitter = Arc::new(Emitter { service: cfg.name, district: cfg.district.code.clone(), subjects: broker.subjects.clone() });
        let inbox_retention = cfg.nats.event_retention.max(cfg.nats.submission_retention);
        let grpc = server::bind("the gRPC listener", cfg.common.grpc_addr).await?;
        let admin = server::bind("the admin listener", cfg.common.admin_addr).await?;
        let mut host = Self {
            name: cfg.name,
            db,
            broker,
            clock,
            metrics: Metrics::new(cfg.name),
            emitter,
            readiness: Readiness::default(),
            relay_wake: Arc::new(Notify::new()),
            inbox_retention,
            cancel: CancellationToken::new(),
            tasks: JoinSet::new(),
            replayers: HashMap::new(),
            grpc,
            admin,
            consumer_settings: cfg.common.consumer.clone(),
            telemetry,
            auth,
            signer,
            tls,
        };
        if let Some(verifier) = verifier.filter(crate::auth::Verifier::fetches_keys) {
            let cancel = host.cancel.clone();
            host.tasks.spawn(async move {
                verifier.keep_fresh(cancel).await;
                ("identity provider's keys".into(), Ok(()))
            });
        }
        if let Ok(open) = crate::consumer::dead_letter::open_count(&host.db).await {
            host.metrics.dead_letters_open.set(open);
        }
        let relay = Relay {
            db: host.db.clone(),
            broker: host.broker.clone(),
            clock: host.clock.clone(),
            wake: host.relay_wake.clone(),
            metrics: host.metrics.clone(),
            readiness: host.readiness.clone(),
        };
        let cancel = host.cancel.clone();
        host.tasks.spawn(async move {
            relay.run(cancel.cancelled_owned()).await;
            ("outbox relay".to_string(), Ok(()))
        });
        let (db, broker, readiness, cancel) = (host.db.clone(), host.broker.clone(), host.readiness.clone(), host.cancel.clone());
        host.tasks.spawn(async move {
            probe(db, broker, readiness, cancel).await;
            ("readiness probe".to_string(), Ok(()))
        });
        Ok(host)
    }

    /// What this service sends when it calls another service.
    pub fn service_credentials(&self) -> crate::auth::ServiceCredentials {
        crate::auth::ServiceCredentials::new(self.name, self.signer.clone())
    }

    /// The one path of the service's gRPC commands (begin, apply, outbox, commit, wake).
    pub fn commands(&self) -> Commands {
        Commands { db: self.db.clone(), emitter: self.emitter.clone(), clock: self.clock.clone(), relay_wake: self.relay_wake.clone() }
    }

    /// Runs the service's durable consumer (named after the service) of what `H` consumes.
    pub fn consume<H: Handler>(&mut self, handler: Arc<H>) {
        self.consume_as(self.name, handler);
    }

    /// Runs a second durable consumer of the service, named `durable` (`intake-progress`), for a
    /// service that reads two streams.
    pub fn consume_as<H: Handler>(&mut self, durable: &str, handler: Arc<H>) {
        let (stream, filter_subjects) = H::Message::source(&self.broker.subjects);
        let durable = durable.to_string();
        let consumer = Arc::new(Consumer {
            spec: ConsumerSpec {
                durable: durable.clone(),
                stream,
                filter_subjects,
                settings: self.consumer_settings.clone(),
                inbox_retention: self.inbox_retention,
            },
            broker: self.broker.clone(),
            db: self.db.clone(),
            clock: self.clock.clone(),
            handler,
            emitter: self.emitter.clone(),
            relay_wake: self.relay_wake.clone(),
            metrics: self.metrics.clone(),
            readiness: self.readiness.clone(),
        });
        self.replayers.insert(durable.clone(), consumer.clone());
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

    /// Serves the service's gRPC API (`S`, e.g. `DispatchServiceServer<…>`) and the admin
    /// port; the service is now running.
    pub fn serve<S>(mut self, api: S) -> Result<Running, Error>
    where
        S: tonic::server::NamedService
            + tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let grpc_addr = self.grpc.local_addr().map_err(|e| Error::Server(e.to_string()))?;
        let admin_addr = self.admin.local_addr().map_err(|e| Error::Server(e.to_string()))?;
        let cancel = self.cancel.clone();
        let grpc = self.grpc;
        let readiness = self.readiness.clone();
        let auth = self.auth.clone();
        let grpc_tls = self.tls.as_ref().map(crate::tls::Tls::grpc_server);
        let admin_tls = self.tls.as_ref().map(crate::tls::Tls::http_server).transpose()?;
        let routes = tonic::service::Routes::new(api);
        self.tasks.spawn(async move {
            ("gRPC server".into(), server::serve_grpc(grpc, routes, S::NAME, auth, grpc_tls, readiness, cancel).await)
        });
        let state = server::AdminState {
            db: self.db.clone(),
            broker: self.broker.clone(),
            metrics: self.metrics.clone(),
            replayers: Arc::new(self.replayers),
            readiness: self.readiness.clone(),
            auth: self.auth.clone(),
        };
        let cancel = self.cancel.clone();
        let admin = self.admin;
        self.tasks.spawn(async move { ("admin server".into(), server::serve_admin(admin, state, admin_tls, cancel).await) });
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
                Ok((task, Err(e))) => Some(Error::TaskFailed { task, source: Box::new(e) }),
                Ok((task, Ok(()))) => Some(Error::TaskStopped(task)),
                Err(e) => Some(Error::Crashed { task: "a background task".into(), reason: panic_reason(e) }),
            },
        };
        self.shutdown().await;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What a crashed task said when it panicked.
fn panic_reason(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into()),
        Err(e) => e.to_string(),
    }
}

/// Resolves on Ctrl-C or SIGTERM: how every Jiesu process is asked to stop.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Watches what no task of the service reports on its own — the database answering, the NATS
/// connection — so that gRPC health, like `/readyz`, says NOT_SERVING while either is gone.
async fn probe(db: Db, broker: Broker, readiness: Readiness, cancel: CancellationToken) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
    loop {
        check_dependencies(&db, &broker, &readiness).await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Pings the database and looks at the NATS connection, and says so in `readiness`.
pub(crate) async fn check_dependencies(db: &Db, broker: &Broker, readiness: &Readiness) {
    match db.ping().await {
        Ok(()) => readiness.ok("database"),
        Err(e) => readiness.failing("database", &e.to_string()),
    }
    if broker.client.connection_state() == async_nats::connection::State::Connected {
        readiness.ok("nats");
    } else {
        readiness.failing("nats", "not connected");
    }
}
