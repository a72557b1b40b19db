//! NATS: connection, subject names, the two streams, and the headers every message carries.

use std::time::Duration;

use async_nats::{HeaderMap, jetstream};

use crate::{Error, config::NatsSettings};

/// The headers every Jiesu message carries (docs/design.md).
pub mod header {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const CASE_ID: &str = "Jiesu-Case-Id";
    pub const EVENT_TYPE: &str = "Jiesu-Event-Type";
    pub const CONTENT_TYPE: &str = "Content-Type";
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}

/// `Content-Type` of protobuf payloads.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of JSON payloads (intake accepts them from integrators).
pub const JSON: &str = "application/json";

/// Subject and stream names under one root (`jiesu` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    root: String,
}

impl Subjects {
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    /// `jiesu.intake.<channel>`: where a channel's producer submits.
    pub fn intake(&self, channel: &str) -> String {
        format!("{}.intake.{channel}", self.root)
    }

    /// `jiesu.intake.*`: every channel's submissions (one token: the channel).
    pub fn intake_all(&self) -> String {
        format!("{}.intake.*", self.root)
    }

    /// `jiesu.intake.rejected.<channel>`: intake's answer to a submission it cannot accept.
    pub fn rejected(&self, channel: &str) -> String {
        format!("{}.intake.rejected.{channel}", self.root)
    }

    /// `jiesu.intake.accepted.<channel>`: intake's answer to a submission it registered.
    pub fn accepted(&self, channel: &str) -> String {
        format!("{}.intake.accepted.{channel}", self.root)
    }

    /// `jiesu.event.<event_type>`, e.g. `jiesu.event.case.received`.
    pub fn event(&self, event_type: &str) -> String {
        format!("{}.event.{event_type}", self.root)
    }

    /// The event type of an event subject (`case.received`), if it is one.
    pub fn event_type_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(&self.root)?.strip_prefix(".event.")
    }

    /// The channel of a submission subject, if it is one.
    pub fn channel_of<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix(".intake.")?;
        (!rest.contains('.')).then_some(rest)
    }

    /// What a message on `subject` is: its event type, or its channel for a submission.
    pub fn kind_of<'a>(&self, subject: &'a str) -> &'a str {
        self.event_type_of(subject).or_else(|| self.channel_of(subject)).unwrap_or(subject)
    }

    /// Stream names derive from the root so that several districts can share a server.
    pub fn submissions_stream(&self) -> String {
        format!("{}_INTAKE", self.stream_prefix())
    }

    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix())
    }

    fn stream_prefix(&self) -> String {
        self.root.replace(['.', '-'], "_").to_ascii_uppercase()
    }
}

/// A connected broker: the client, JetStream, and the names.
#[derive(Clone, Debug)]
pub struct Broker {
    pub client: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub subjects: Subjects,
    /// Whether this connection may create streams and consumers: only without credentials (a
    /// server without authentication). A service with its own NATS user binds to what the
    /// operator provisioned (see [`crate::access`]).
    pub manages_streams: bool,
}

impl Broker {
    /// Connects as `user` (a service's name) to whichever of the configured servers answers,
    /// with that user's key when `nats.keys_dir` is set, and waits until the streams exist. A
    /// broker that is down or still forming its cluster is waited for, with back-off and a
    /// warning now and then: a service started before NATS comes up when NATS does. Refused
    /// credentials are an error at once: waiting would not change them.
    pub async fn connect(settings: &NatsSettings, user: &str) -> Result<Self, Error> {
        let servers = server_addrs(settings)?;
        let options = connect_options(settings, user)?;
        let has_key = settings.keys_dir.is_some();
        let started = tokio::time::Instant::now();
        let mut warned = started;
        let mut attempt = 0u32;
        let client = loop {
            match options.clone().connect(servers.clone()).await {
                Ok(client) => break client,
                Err(e) => {
                    use async_nats::ConnectErrorKind as Kind;
                    if matches!(e.kind(), Kind::AuthorizationViolation | Kind::Authentication) {
                        return Err(Error::NatsConnect {
                            url: settings.servers(),
                            reason: format!("the server refused the credentials of NATS user {user}: {e} (see `jiesuctl nats keys`)"),
                        });
                    }
                    if matches!(e.kind(), Kind::Tls) && attempt >= 3 {
                        return Err(Error::NatsConnect { url: settings.servers(), reason: format!("TLS: {e}") });
                    }
                    attempt = attempt.saturating_add(1);
                    if warned.elapsed() >= Duration::from_secs(10) {
                        warned = tokio::time::Instant::now();
                        tracing::warn!(servers = %settings.servers(), waited = ?started.elapsed(), error = %e, "no NATS server answers yet; still trying");
                    }
                    tokio::time::sleep(Duration::from_millis((50 * 2u64.pow(attempt.min(4))).min(1_000))).await;
                }
            }
        };
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(Duration::from_secs(10));
        let broker = Self { client, jetstream, subjects: Subjects::new(&settings.subject_root), manages_streams: !has_key };
        if !has_key {
            tracing::warn!(
                "NATS without credentials (nats.keys_dir unset): fine for a server without authentication on a developer's machine, never in production"
            );
        }
        let mut attempt = 0u32;
        loop {
            let outcome = if broker.manages_streams { broker.ensure_streams(settings).await } else { broker.find_streams().await };
            match outcome {
                Ok(()) => break,
                Err(e) => {
                    // A fresh cluster answers "jetstream request timed out" until it has a leader.
                    attempt = attempt.saturating_add(1);
                    let pause = Duration::from_millis(200 * 2u64.pow(attempt.min(5)));
                    tracing::warn!(error = %e, attempt, ?pause, "the streams are not there yet; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
        Ok(broker)
    }

    /// Creates or updates both streams (without credentials only: otherwise the operator's).
    pub async fn ensure_streams(&self, settings: &NatsSettings) -> Result<(), Error> {
        for config in crate::access::stream_configs(&self.subjects, settings) {
            let name = config.name.clone();
            self.jetstream
                .create_or_update_stream(config)
                .await
                .map_err(|e| Error::Nats(format!("cannot create or update stream {name}: {e}")))?;
        }
        Ok(())
    }

    /// Checks that the operator has provisioned the events stream (every service reads it; a
    /// consumer of the submissions stream waits for that stream itself).
    async fn find_streams(&self) -> Result<(), Error> {
        let name = self.subjects.events_stream();
        self.jetstream
            .get_stream(&name)
            .await
            .map_err(|e| Error::Nats(format!("stream {name}: {e} (has the operator run `jiesuctl nats provision`?)")))?;
        Ok(())
    }
}

/// The configured servers as addresses, naming the one that is not.
pub fn server_addrs(settings: &NatsSettings) -> Result<Vec<async_nats::ServerAddr>, Error> {
    settings
        .url
        .iter()
        .map(|u| u.parse().map_err(|e| Error::NatsConnect { url: u.clone(), reason: format!("not a server address: {e}") }))
        .collect()
}

/// How `user` connects under `settings`, for the services and the tools alike: its nkey from
/// `nats.keys_dir` (when set), its own inbox prefix (nobody else may listen there), and TLS
/// when `nats.tls_ca` is set, showing its certificate when it has one.
pub fn connect_options(settings: &NatsSettings, user: &str) -> Result<async_nats::ConnectOptions, Error> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("jiesu-{user}"))
        .custom_inbox_prefix(crate::access::inbox_prefix(user))
        .connection_timeout(Duration::from_secs(5));
    if let Some(dir) = &settings.keys_dir {
        options = options.nkey(crate::access::read_seed(dir, user)?);
    }
    if let Some(ca) = &settings.tls_ca {
        options = options.require_tls(true).add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        options = options.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(options)
}

/// Reads a header as text.
pub fn header_str<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?.get(name).map(|v| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_names() {
        let s = Subjects::new("jiesu");
        assert_eq!(s.intake("hotline"), "jiesu.intake.hotline");
        assert_eq!(s.rejected("hotline"), "jiesu.intake.rejected.hotline");
        assert_eq!(s.event("case.received"), "jiesu.event.case.received");
        assert_eq!(s.event_type_of("jiesu.event.sla.breached"), Some("sla.breached"));
        assert_eq!(s.event_type_of("other.event.sla.breached"), None);
        assert_eq!(s.channel_of("jiesu.intake.hotline"), Some("hotline"));
        assert_eq!(s.channel_of("jiesu.intake.rejected.hotline"), None);
        assert_eq!(s.kind_of("jiesu.event.case.received"), "case.received");
        assert_eq!(s.kind_of("jiesu.intake.hotline"), "hotline");
        assert_eq!(s.kind_of("elsewhere.x"), "elsewhere.x");
        assert_eq!(Subjects::new("city.dm-1").events_stream(), "CITY_DM_1_EVENTS");
    }
}
