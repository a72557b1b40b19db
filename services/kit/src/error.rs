use std::path::PathBuf;

/// What can go wrong in the shared mechanics. Each variant reads as a sentence.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the configuration file {path}: {source}")]
    ConfigRead { path: PathBuf, source: std::io::Error },
    #[error("the configuration is not valid TOML ({path}): {source}")]
    ConfigParse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot connect to NATS at {url}: {reason}")]
    NatsConnect { url: String, reason: String },
    #[error("NATS/JetStream error: {0}")]
    Nats(String),
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind { what: &'static str, addr: std::net::SocketAddr, source: std::io::Error },
    #[error("telemetry set-up failed: {0}")]
    Telemetry(String),
    #[error("cannot decode a message: {0}")]
    Decode(String),
    /// A listener or a server task stopped (not a configuration problem).
    #[error("server: {0}")]
    Server(String),
    /// A background task of the service crashed.
    #[error("task {task} crashed: {reason}")]
    Crashed { task: String, reason: String },
    /// A background task stopped with an error.
    #[error("task {task} failed: {source}")]
    TaskFailed { task: String, source: Box<Error> },
    /// A background task returned although it should run until shutdown.
    #[error("task {0} stopped unexpectedly")]
    TaskStopped(String),
}

impl Error {
    pub(crate) fn nats(e: impl std::fmt::Display) -> Self {
        Error::Nats(e.to_string())
    }
}

/// What a gRPC client is told about an internal failure: a short message and a correlation id,
/// never the internal text, which is logged under that id.
pub fn internal_status(service: &str, error: &dyn std::error::Error) -> tonic::Status {
    let correlation = uuid::Uuid::now_v7();
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(%correlation, error = %chain, "{service}: request failed");
    crate::telemetry::record_error(&chain);
    tonic::Status::internal(format!("{service} could not complete the request (correlation id {correlation})"))
}
