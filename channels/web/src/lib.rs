//! # jiesu-web — 市民端
//!
//! The citizens' web front: one form per mailbox of the district's channel registry (书记信箱,
//! 主任信箱… — every `[[intake.channels]]` of kind `mailbox` whose `producer` is this front), a
//! QR code per mailbox that opens its form, the receipt with the case number and the query code,
//! and the public status page. Pages are Chinese, rendered on the server (askama), readable on a
//! phone and usable without script.
//!
//! It is a channel producer like any other: it uploads files and submits through intake's gRPC
//! API with its own identity (role `channel_integrator`, subject `[web] producer`), so intake
//! accepts from it only what the registry lets it submit. It keeps no database: a form's state
//! travels in its signed token, and a form's nonce is the submission's `channel_ref`, so a form
//! re-sent after a broken connection is the same request, registered once.

pub mod form;
pub mod open311;
pub mod pages;
pub mod qr;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use jiesu_kit::{
    DistrictConfig,
    auth::{AuthSettings, ServiceCredentials, Signer},
    channels::{Channel, ChannelKind},
    config::TelemetrySettings,
    tls::{Tls, TlsSettings},
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// The front's name: its config section, certificate and log name.
pub const NAME: &str = "web";

/// `[web]` of the district file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where it listens. Behind the district's reverse proxy in production (which terminates
    /// HTTPS), so loopback by default.
    pub listen: String,
    /// The address citizens reach it at: what the QR codes point to.
    pub public_url: String,
    /// Intake's gRPC address.
    pub intake_url: String,
    /// Its identity towards intake: the token subject the mailboxes' `producer` names.
    pub producer: String,
    /// The key form tokens are signed with (base64 of 32 bytes). Give every instance behind one
    /// address the same key; empty: a random key per start (forms shown before a restart must be
    /// filled in again).
    pub form_key: String,
    /// Forms one client address may post per hour.
    pub posts_per_client_per_hour: u32,
    /// Forms one phone number may send per day.
    pub posts_per_phone_per_day: u32,
    /// Status lookups one client address may make per hour.
    pub lookups_per_client_per_hour: u32,
    /// Read the client's address from the last `X-Forwarded-For` hop (set only behind the
    /// district's own reverse proxy, which overwrites the header).
    pub behind_proxy: bool,
    /// The largest form post accepted, files included (bytes).
    pub max_request_bytes: usize,
    /// Check the citizen's phone with a code texted through notification's SMS gateway before
    /// taking a letter (短信验证).
    pub verify_phone: bool,
    /// Notification's gRPC address, for the codes.
    pub notification_url: String,
    /// The Open311 clients' keys (`[[web.open311_keys]]`), each for an `open311` channel of the
    /// registry whose producer is this front.
    pub open311_keys: Vec<open311::Open311Key>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            intake_url: "http://127.0.0.1:50051".into(),
            producer: "web".into(),
            form_key: String::new(),
            posts_per_client_per_hour: 20,
            posts_per_phone_per_day: 5,
            lookups_per_client_per_hour: 60,
            behind_proxy: false,
            max_request_bytes: 160 * 1024 * 1024,
            open311_keys: Vec::new(),
            verify_phone: false,
            notification_url: "http://127.0.0.1:50055".into(),
        }
    }
}

/// What can go wrong in the web front.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kit(#[from] jiesu_kit::Error),
    #[error("[web] {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot draw the QR code: {0}")]
    Qr(String),
    #[error("cannot render the page: {0}")]
    Render(#[from] askama::Error),
}

/// The started front: its address, until stopped.
pub struct WebFront {
    pub addr: SocketAddr,
    server: jiesu_kit::web::WebServer,
    _telemetry: jiesu_kit::telemetry::TelemetryGuard,
}

impl WebFront {
    /// Stops serving, letting requests in flight finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl jiesu_kit::cli::Serving for WebFront {
    async fn until_stopped(self) -> Result<(), jiesu_kit::Error> {
        self.server.stopping().await;
        self.shutdown().await;
        Ok(())
    }
}

/// Reads the district file and starts serving.
pub async fn start(district: &DistrictConfig) -> Result<WebFront, Error> {
    let settings: Settings = district.part(NAME)?;
    let telemetry: TelemetrySettings = district.part("telemetry")?;
    let guard = jiesu_kit::telemetry::init(NAME, &telemetry)?;
    let info: jiesu_kit::config::District = district.part("district")?;
    let auth: AuthSettings = district.part("auth")?;
    let tls_settings: TlsSettings = district.part("tls")?;
    let limits: jiesu_kit::channels::AttachmentLimits = district
        .part::<toml::Table>("intake")?
        .get("attachments")
        .cloned()
        .map(|v| v.try_into().map_err(|e| Error::Config(format!("[intake.attachments]: {e}"))))
        .transpose()?
        .unwrap_or_default();
    let mailboxes: Vec<Channel> = district
        .channels()?
        .into_iter()
        .filter(|c| c.kind == ChannelKind::Mailbox && c.enabled && c.producer() == settings.producer)
        .collect();
    if mailboxes.is_empty() {
        tracing::warn!(producer = %settings.producer, "no enabled mailbox channel names this front as its producer: only the status page is served");
    }
    let organisation = organisation(district)?;
    let open311 = open311_services(district, &settings)?;
    let addr: SocketAddr = settings.listen.parse().map_err(|e| Error::Config(format!("listen {:?}: {e}", settings.listen)))?;
    let tls = Tls::load(&tls_settings, NAME, &[addr])?;
    let signer = Signer::from_settings(&auth, district.base_dir())?;
    let credentials = ServiceCredentials::producer(&settings.producer, signer);
    let intake = pages::intake_client(&settings.intake_url, tls.as_ref(), credentials.clone())?;
    let notification = match settings.verify_phone {
        true => Some(pages::notification_client(&settings.notification_url, tls.as_ref(), credentials)?),
        false => None,
    };
    let key = form_key(&settings.form_key)?;
    let app = Arc::new(pages::App::new(info, open311, organisation, mailboxes, limits, settings.clone(), key, intake, notification));
    let server = jiesu_kit::web::WebServer::start(addr, pages::router(app), CancellationToken::new())
        .await
        .map_err(|source| Error::Listen { addr: settings.listen.clone(), source })?;
    let addr = server.addr;
    tracing::info!(%addr, "the citizens' web front is serving");
    Ok(WebFront { addr, server, _telemetry: guard })
}

/// The organisation tree, for the street and community pickers.
fn organisation(district: &DistrictConfig) -> Result<jiesu_reference::Organisation, Error> {
    let reference: toml::Table = district.part("reference")?;
    let Some(file) = reference.get("organisation").and_then(|v| v.as_str()) else { return Ok(Default::default()) };
    let path: PathBuf = district.base_dir().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// The services (the taxonomy) and the clients' keys, each checked against the registry.
fn open311_services(district: &DistrictConfig, settings: &Settings) -> Result<pages::Open311, Error> {
    let channels = district.channels()?;
    for key in &settings.open311_keys {
        let ok = channels.iter().any(|c| c.id == key.channel && c.kind == ChannelKind::Open311 && c.producer() == settings.producer);
        if !ok {
            return Err(Error::Config(format!(
                "open311_keys: channel {:?} is not an open311 channel of [[intake.channels]] whose producer is {:?}",
                key.channel, settings.producer
            )));
        }
        if key.key_sha256.len() != 64 || !key.key_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::Config(format!("open311_keys: key_sha256 of {:?} must be 64 hex digits (sha256sum of the key)", key.name)));
        }
    }
    let reference: toml::Table = district.part("reference")?;
    let (services, changeset) = match reference.get("taxonomy").and_then(|v| v.as_str()) {
        None => (Vec::new(), String::new()),
        Some(file) => {
            let path = district.base_dir().join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
            open311::services(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
        }
    };
    Ok(pages::Open311 { services, changeset, keys: settings.open311_keys.clone() })
}

fn form_key(configured: &str) -> Result<form::FormKey, Error> {
    use base64::Engine;
    if configured.is_empty() {
        return Ok(form::FormKey::new(&jiesu_kit::web::random::<32>()));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(configured.trim())
        .map_err(|e| Error::Config(format!("form_key is not base64: {e}")))?;
    if bytes.len() < 32 {
        return Err(Error::Config("form_key must be at least 32 bytes (base64 of `head -c 32 /dev/urandom`)".into()));
    }
    Ok(form::FormKey::new(&bytes))
}

/// How long a call to intake may take before the citizen is told to try again.
pub const INTAKE_TIMEOUT: Duration = Duration::from_secs(30);
