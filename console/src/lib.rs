//! # jiesu-console — 工作台
//!
//! The web desk of the people who work in Jiesu every day: the service centre's agents and
//! supervisors, the handling units' staff, the leaders, the revisit agents, the administrators.
//! Pages are Chinese, rendered on the server (askama), usable without script; one small script
//! of our own refreshes a queue when the events say it changed (server-sent events).
//!
//! The console holds no case data. Every page asks the services' gRPC APIs, as the signed-in
//! person: it mints a short-lived token for them (subject, name, roles, unit) with its signing
//! key, so each service applies its own rules to them exactly as it would to any other client —
//! the console cannot show or do more than the person may. What it keeps, in its own database,
//! is its accounts (password hashed with argon2id, lockout), the sessions and its audit of
//! sign-ins and administration.
//!
//! | module | what |
//! |---|---|
//! | [`accounts`] | who may sign in: accounts, roles, the password and lockout rules (pure) |
//! | [`store`] | the console's database: accounts, sessions, audit |
//! | [`session`] | the session cookie, CSRF tokens, the signed-in person of a request |
//! | [`services`] | the gRPC clients, each call with the person's token |
//! | [`oidc`] | sign-in through the district's identity platform (authorisation code + PKCE) |
//! | [`live`] | the events, heard live from NATS, as refresh signals for the browsers |
//! | [`view`] | how cases, clocks and times read in Chinese |
//! | [`charts`] | bar charts drawn on the server, as SVG |
//! | [`pages`] | the routes and their templates |

pub mod accounts;
pub mod charts;
pub mod cli;
pub mod live;
pub mod oidc;
pub mod pages;
pub mod services;
pub mod session;
pub mod store;
pub mod view;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use jiesu_kit::{
    DistrictConfig,
    auth::{AuthSettings, Signer},
    config::{NatsSettings, TelemetrySettings},
    tls::{Tls, TlsSettings},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The console's name: its config section, certificate, NATS user and log name.
pub const NAME: &str = "console";

/// `[console]` of the district file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where it listens: loopback by default, behind the district's reverse proxy (HTTPS).
    pub listen: String,
    /// The address staff reach it at. `https://…` makes the cookies `Secure`; the OpenID
    /// Connect redirect is `<public_url>/signin/oidc/callback`.
    pub public_url: String,
    /// Its own database: accounts, sessions, audit.
    pub database_url: String,
    pub intake_url: String,
    pub classification_url: String,
    pub dispatch_url: String,
    pub sla_url: String,
    pub revisit_url: String,
    /// A session ends this long after sign-in, whatever happens.
    #[serde(deserialize_with = "jiesu_kit::time::de_duration")]
    pub session_ttl: Duration,
    /// …and this long after its last request.
    #[serde(deserialize_with = "jiesu_kit::time::de_duration")]
    pub idle_timeout: Duration,
    /// Wrong passwords in a row before an account is locked…
    pub max_failures: u32,
    /// …for this long.
    #[serde(deserialize_with = "jiesu_kit::time::de_duration")]
    pub lockout: Duration,
    /// The life of the tokens minted for the signed-in person's calls.
    #[serde(deserialize_with = "jiesu_kit::time::de_duration")]
    pub token_ttl: Duration,
    /// Read the client's address from the last `X-Forwarded-For` hop (only behind the district's
    /// own proxy, which overwrites it): for the audit and the sign-in limits.
    pub behind_proxy: bool,
    /// Sign-in through the district's identity platform (统一身份认证), if it has one.
    pub oidc: Option<oidc::OidcLogin>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8090".into(),
            public_url: "http://127.0.0.1:8090".into(),
            database_url: "sqlite://data/console.db".into(),
            intake_url: "http://127.0.0.1:50051".into(),
            classification_url: "http://127.0.0.1:50052".into(),
            dispatch_url: "http://127.0.0.1:50053".into(),
            sla_url: "http://127.0.0.1:50054".into(),
            revisit_url: "http://127.0.0.1:50056".into(),
            session_ttl: Duration::from_secs(12 * 3600),
            idle_timeout: Duration::from_secs(2 * 3600),
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
            token_ttl: Duration::from_secs(300),
            behind_proxy: false,
            oidc: None,
        }
    }
}

impl Settings {
    /// Whether cookies must travel over HTTPS only.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// What can go wrong in the console.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("[console] {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
    #[error("cannot hash the password: {0}")]
    Password(String),
    #[error("{0}")]
    Invalid(String),
    #[error("identity platform: {0}")]
    Oidc(String),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Kit(e.into())
    }
}

/// The started console, until stopped.
pub struct Console {
    pub addr: SocketAddr,
    pub store: store::Store,
    server: jiesu_kit::web::WebServer,
    _telemetry: jiesu_kit::telemetry::TelemetryGuard,
}

impl Console {
    /// Stops serving, letting requests in flight finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
        self.store.close().await;
    }
}

impl jiesu_kit::cli::Serving for Console {
    async fn until_stopped(self) -> Result<(), jiesu_kit::Error> {
        self.server.stopping().await;
        self.shutdown().await;
        Ok(())
    }
}

/// Reads the district file, opens the database and starts serving.
pub async fn start(district: &DistrictConfig) -> Result<Console, Error> {
    let settings: Settings = district.part(NAME)?;
    let telemetry: TelemetrySettings = district.part("telemetry")?;
    let guard = jiesu_kit::telemetry::init(NAME, &telemetry)?;
    let info: jiesu_kit::config::District = district.part("district")?;
    let auth: AuthSettings = district.part("auth")?;
    let tls_settings: TlsSettings = district.part("tls")?;
    let nats: NatsSettings = district.part("nats")?;
    let addr: SocketAddr = settings.listen.parse().map_err(|e| Error::Config(format!("listen {:?}: {e}", settings.listen)))?;
    let tls = Tls::load(&tls_settings, NAME, &[addr])?;
    let signer = Signer::from_settings(&auth, district.base_dir())?;
    if signer.is_none() && auth.required {
        return Err(Error::Config(
            "the console signs its users' calls, and [auth] signing_key is not set: give it a key of the district (jiesuctl keys generate)"
                .into(),
        ));
    }
    let store = store::Store::open(&settings.database_url).await?;
    let services = services::Services::connect(&settings, tls.as_ref(), signer, settings.token_ttl)?;
    let cancel = CancellationToken::new();
    let oidc = match &settings.oidc {
        Some(login) => {
            let provider = Arc::new(oidc::Provider::new(login, &settings.public_url, district.base_dir()).await?);
            let (p, stop) = (provider.clone(), cancel.clone());
            tokio::spawn(async move { p.keep_fresh(stop).await });
            Some(provider)
        }
        None => None,
    };
    let live = live::Live::start(&nats, cancel.clone()).await;
    let channels = district.channels()?.into_iter().map(|c| (c.id, c.name)).collect();
    let app = Arc::new(pages::App {
        district: info,
        settings: settings.clone(),
        store: store.clone(),
        services,
        live,
        oidc,
        channels,
        attempts: Default::default(),
    });
    let server = jiesu_kit::web::WebServer::start(addr, pages::router(app), cancel)
        .await
        .map_err(|source| Error::Listen { addr: settings.listen.clone(), source })?;
    let addr = server.addr;
    tracing::info!(%addr, "the console is serving");
    Ok(Console { addr, store, server, _telemetry: guard })
}
