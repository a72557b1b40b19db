//! Who may do what on NATS: least privilege for every connection (docs/operations.md, "NATS
//! users").
//!
//! One table, [`SERVICES`], says which events each service publishes and which durable
//! consumers it reads. From it and the district's channels follow:
//!
//! - every user's [`Permissions`]: a service publishes only its own events (and intake its
//!   answers), pulls only from its own durable consumers and hears replies only on its own inbox
//!   prefix; a channel's producer publishes only to `<root>.intake.<channel>` and reads only its
//!   own answers; the operator alone creates and deletes streams and consumers;
//! - the nats-server configuration ([`render_server_config`]), written by `jiesuctl nats config`,
//!   never by hand: users are nkeys, so the file holds public keys only;
//! - the streams and consumers the operator provisions ([`provision`], `jiesuctl nats provision`).
//!
//! A service that connects with its own key cannot create what it lacks: it waits for the
//! operator's streams and binds to its consumer, and reports not-ready meanwhile.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
};

use async_nats::jetstream::{self, consumer::pull, stream};
use jiesu_proto::{
    Named,
    v1::{
        CaseAccepted, CaseAssistAccepted, CaseAssistAdded, CaseAssistAnswered, CaseClassified, CaseClosed, CaseContacted, CaseDispatched,
        CaseEscalated, CaseExtensionDecided, CaseExtensionRequested, CaseMerged, CaseQueued, CaseReceived, CaseReopened,
        CaseRepeatDetected, CaseReplied, CaseResolved, CaseReturnReviewed, CaseReturned, CaseReviewRequested, CaseReviewed, CaseStaged,
        CaseSupervised, CaseVerified, InsightHotspot, RevisitRecorded, SlaBreached, SlaEscalationDue, SlaWarning,
    },
};

use crate::{
    DistrictConfig, Error, Subjects,
    config::{ConsumerSettings, NatsSettings},
};

/// The user that manages streams and consumers (and that tests and tools use for full access).
pub const OPERATOR: &str = "operator";

/// File name extension of an nkey seed (`dispatch.nk`), as `nsc` writes them.
pub const SEED_EXT: &str = "nk";

/// What a durable consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Every channel's submissions (`<root>.intake.*`): intake's.
    Submissions,
    /// These event types, from the events stream.
    Events(&'static [&'static str]),
}

/// A durable consumer a service reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    pub name: &'static str,
    pub reads: Reads,
}

/// One service's place on the bus: what it publishes and what it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceAccess {
    /// The service's name (its config section and NATS user).
    pub service: &'static str,
    /// The event types it emits; nobody else may publish them.
    pub publishes: &'static [&'static str],
    /// Whether it answers producers (`<root>.intake.accepted|rejected.<channel>`): intake.
    pub answers: bool,
    pub consumers: &'static [Durable],
}

/// Every service of a district. Each service's `consumes!` enum must read exactly what its
/// durable here reads (a test in `integration-tests` holds them together), and the server
/// refuses an event a service emits that is not listed under its `publishes`.
pub const SERVICES: &[ServiceAccess] = &[
    ServiceAccess {
        service: "intake",
        publishes: &[CaseReceived::TYPE],
        answers: true,
        consumers: &[
            Durable { name: "intake", reads: Reads::Submissions },
            Durable {
                name: "intake-progress",
                reads: Reads::Events(&[
                    CaseDispatched::TYPE,
                    CaseAccepted::TYPE,
                    CaseContacted::TYPE,
                    CaseReplied::TYPE,
                    CaseResolved::TYPE,
                    CaseClosed::TYPE,
                    CaseReopened::TYPE,
                    CaseMerged::TYPE,
                    RevisitRecorded::TYPE,
                ]),
            },
        ],
    },
    ServiceAccess {
        service: "classification",
        publishes: &[
            CaseClassified::TYPE,
            CaseReviewRequested::TYPE,
            CaseReviewed::TYPE,
            CaseRepeatDetected::TYPE,
            CaseMerged::TYPE,
            InsightHotspot::TYPE,
        ],
        answers: false,
        consumers: &[Durable { name: "classification", reads: Reads::Events(&[CaseReceived::TYPE]) }],
    },
    ServiceAccess {
        service: "dispatch",
        publishes: &[
            CaseQueued::TYPE,
            CaseDispatched::TYPE,
            CaseAccepted::TYPE,
            CaseContacted::TYPE,
            CaseVerified::TYPE,
            CaseReplied::TYPE,
            CaseStaged::TYPE,
            CaseResolved::TYPE,
            CaseClosed::TYPE,
            CaseReturned::TYPE,
            CaseReturnReviewed::TYPE,
            CaseAssistAdded::TYPE,
            CaseAssistAccepted::TYPE,
            CaseAssistAnswered::TYPE,
            CaseExtensionRequested::TYPE,
            CaseExtensionDecided::TYPE,
            CaseEscalated::TYPE,
            CaseSupervised::TYPE,
        ],
        answers: false,
        consumers: &[Durable {
            name: "dispatch",
            reads: Reads::Events(&[
                CaseClassified::TYPE,
                CaseReopened::TYPE,
                RevisitRecorded::TYPE,
                SlaWarning::TYPE,
                SlaBreached::TYPE,
                SlaEscalationDue::TYPE,
            ]),
        }],
    },
    ServiceAccess {
        service: "sla_timer",
        publishes: &[SlaWarning::TYPE, SlaBreached::TYPE, SlaEscalationDue::TYPE],
        answers: false,
        consumers: &[Durable {
            name: "sla_timer",
            reads: Reads::Events(&[
                CaseReceived::TYPE,
                CaseClassified::TYPE,
                CaseDispatched::TYPE,
                CaseAccepted::TYPE,
                CaseContacted::TYPE,
                CaseVerified::TYPE,
                CaseReplied::TYPE,
                CaseStaged::TYPE,
                CaseReturned::TYPE,
                CaseReturnReviewed::TYPE,
                CaseExtensionRequested::TYPE,
                CaseExtensionDecided::TYPE,
                CaseAssistAdded::TYPE,
                CaseAssistAnswered::TYPE,
                CaseEscalated::TYPE,
                CaseResolved::TYPE,
                CaseReopened::TYPE,
                CaseClosed::TYPE,
                CaseMerged::TYPE,
            ]),
        }],
    },
    ServiceAccess {
        service: "notification",
        publishes: &[],
        answers: false,
        consumers: &[Durable {
            name: "notification",
            reads: Reads::Events(&[
                CaseReceived::TYPE,
                CaseDispatched::TYPE,
                SlaWarning::TYPE,
                SlaBreached::TYPE,
                CaseAssistAdded::TYPE,
                CaseReturned::TYPE,
                CaseEscalated::TYPE,
                CaseClosed::TYPE,
            ]),
        }],
    },
    ServiceAccess {
        service: "revisit",
        publishes: &[RevisitRecorded::TYPE, CaseReopened::TYPE],
        answers: false,
        consumers: &[Durable { name: "revisit", reads: Reads::Events(&[CaseResolved::TYPE]) }],
    },
];

/// The place of service `name` on the bus.
pub fn service(name: &str) -> Option<&'static ServiceAccess> {
    SERVICES.iter().find(|s| s.service == name)
}

/// The NATS user of channel `channel`'s producer.
pub fn channel_user(channel: &str) -> String {
    format!("channel-{channel}")
}

/// The durable consumer a channel's producer reads its answers from.
pub fn answers_durable(channel: &str) -> String {
    format!("answers-{channel}")
}

/// The inbox prefix of `user`: replies to its requests come only there, and only it may listen.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX.{user}")
}

/// The stream and filter subjects of a durable consumer.
pub fn source(subjects: &Subjects, reads: Reads) -> (String, Vec<String>) {
    match reads {
        Reads::Submissions => (subjects.submissions_stream(), vec![subjects.intake_all()]),
        Reads::Events(kinds) => (subjects.events_stream(), kinds.iter().map(|k| subjects.event(k)).collect()),
    }
}

/// What one user may publish and subscribe to (NATS subjects, wildcards allowed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Permissions {
    /// Pulling from durable `durable` on `stream`: its info, its next messages and their acks.
    fn pull_from(&mut self, stream: &str, durable: &str) {
        self.publish.extend([
            format!("$JS.API.STREAM.INFO.{stream}"),
            format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
            // Acks go to the reply subject of each message: v1 and v2 (domain, account hash) forms.
            format!("$JS.ACK.{stream}.{durable}.>"),
            format!("$JS.ACK.*.*.{stream}.{durable}.>"),
        ]);
    }
}

/// A NATS user: who, and what it may do. `None` permissions: everything (the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub permissions: Option<Permissions>,
}

/// The permissions of service `access`.
pub fn service_permissions(subjects: &Subjects, access: &ServiceAccess) -> Permissions {
    let mut p = Permissions::default();
    p.publish.extend(access.publishes.iter().map(|t| subjects.event(t)));
    if access.answers {
        p.publish.extend([subjects.accepted("*"), subjects.rejected("*")]);
    }
    for durable in access.consumers {
        let (stream, _) = source(subjects, durable.reads);
        p.pull_from(&stream, durable.name);
    }
    p.subscribe.push(format!("{}.>", inbox_prefix(access.service)));
    p
}

/// The permissions of channel `channel`'s producer: submit on its own subject, hear its own
/// answers (live, or from its durable consumer).
pub fn channel_permissions(subjects: &Subjects, channel: &str) -> Permissions {
    let mut p = Permissions::default();
    p.publish.push(subjects.intake(channel));
    p.pull_from(&subjects.submissions_stream(), &answers_durable(channel));
    p.subscribe.extend([format!("{}.intake.*.{channel}", subjects.root()), format!("{}.>", inbox_prefix(&channel_user(channel)))]);
    p
}

/// The NATS user of the staff's console (`jiesu-console`).
pub const CONSOLE: &str = "console";

/// The console's permissions: hear the events as they pass, live (no durable consumer, nothing
/// acknowledged, nothing published), to refresh the queues open in its users' browsers. Events
/// carry no personal data; what a user then sees comes from the services' gRPC APIs, under the
/// user's own identity.
pub fn console_permissions(subjects: &Subjects) -> Permissions {
    Permissions { publish: Vec::new(), subscribe: vec![subjects.event(">"), format!("{}.>", inbox_prefix(CONSOLE))] }
}

/// Every user of a district: the operator, each service, the console, each channel's producer.
pub fn district_users(subjects: &Subjects, channels: &[String]) -> Vec<User> {
    let mut users = vec![User { name: OPERATOR.into(), permissions: None }];
    users.extend(SERVICES.iter().map(|s| User { name: s.service.into(), permissions: Some(service_permissions(subjects, s)) }));
    users.push(User { name: CONSOLE.into(), permissions: Some(console_permissions(subjects)) });
    users.extend(channels.iter().map(|c| User { name: channel_user(c), permissions: Some(channel_permissions(subjects, c)) }));
    users
}

// ---------------------------------------------------------------------------------------- keys

/// A fresh nkey seed of a user (`SU…`): its secret, kept by that user alone.
pub fn generate_seed() -> String {
    nkeys::KeyPair::new_user().seed().expect("a new user key has a seed")
}

/// The public key (`U…`) of a seed: what the server's configuration names the user by.
pub fn public_key(seed: &str) -> Result<String, Error> {
    Ok(nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| Error::Config(format!("not an nkey seed: {e}")))?.public_key())
}

/// `<dir>/<user>.nk`.
pub fn seed_path(dir: &Path, user: &str) -> PathBuf {
    dir.join(format!("{user}.{SEED_EXT}"))
}

/// Reads `user`'s seed from `dir`.
pub fn read_seed(dir: &Path, user: &str) -> Result<String, Error> {
    let path = seed_path(dir, user);
    let seed = std::fs::read_to_string(&path)
        .map_err(|e| Error::Config(format!("cannot read the NATS key of {user} at {}: {e}", path.display())))?;
    public_key(&seed).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    Ok(seed.trim().to_string())
}

/// Writes a seed for each of `users` that has none in `dir` yet (readable by its owner only);
/// returns the users it made a key for.
pub fn ensure_seeds<'a>(dir: &Path, users: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    let mut made = Vec::new();
    for user in users {
        let path = seed_path(dir, user);
        if path.exists() {
            continue;
        }
        crate::config::write_private(&path, &generate_seed())?;
        made.push(user.to_string());
    }
    Ok(made)
}

// ------------------------------------------------------------------------------ server config

/// Where and how the server runs, beside who may use it.
#[derive(Debug, Clone, Default)]
pub struct ServerLayout {
    /// Client listener, `127.0.0.1:4222`.
    pub listen: String,
    pub server_name: Option<String>,
    /// JetStream's store directory.
    pub store_dir: PathBuf,
    pub cluster: Option<ClusterLayout>,
    pub tls: Option<TlsFiles>,
}

/// A node's place in a cluster.
#[derive(Debug, Clone)]
pub struct ClusterLayout {
    pub name: String,
    /// Route listener, `0.0.0.0:6222`.
    pub listen: String,
    /// Every node's route URL (`nats://n1:6222`).
    pub routes: Vec<String>,
    /// The routes' shared user and password: only the district's own nodes may join.
    pub user: String,
    pub password: String,
}

/// Certificate files for TLS on the client and route ports.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that client (and route) certificates must be signed by; with it, mutual TLS.
    pub ca: Option<PathBuf>,
    /// Demand a client certificate from every client.
    pub verify_clients: bool,
}

/// The nats-server configuration of a district: its layout and every user, named by the public
/// key of its seed in `keys`. Without users, the server asks nobody who they are.
pub fn render_server_config(layout: &ServerLayout, users: &[User], keys: &BTreeMap<String, String>) -> Result<String, Error> {
    let mut out = String::new();
    let _ = writeln!(out, "# Generated by `jiesuctl nats config` from the district file; do not edit by hand.");
    let _ = writeln!(out, "listen: {}", quote(&layout.listen));
    if let Some(name) = &layout.server_name {
        let _ = writeln!(out, "server_name: {}", quote(name));
    }
    let _ = writeln!(out, "jetstream {{\n  store_dir: {}\n}}", quote(&layout.store_dir.display().to_string()));
    if let Some(tls) = &layout.tls {
        let _ = writeln!(out, "tls {{\n{}}}", tls_block(tls, tls.verify_clients));
    }
    if let Some(c) = &layout.cluster {
        let _ = writeln!(out, "cluster {{\n  name: {}\n  listen: {}", quote(&c.name), quote(&c.listen));
        let _ = writeln!(out, "  authorization {{ user: {}, password: {} }}", quote(&c.user), quote(&c.password));
        let routes: Vec<String> = c.routes.iter().map(|r| quote(&with_route_credentials(r, &c.user, &c.password))).collect();
        let _ = writeln!(out, "  routes: [{}]", routes.join(", "));
        if let Some(tls) = &layout.tls {
            // Nodes prove themselves to each other by certificate as well.
            let _ = writeln!(out, "  tls {{\n{}  }}", tls_block(tls, tls.ca.is_some()));
        }
        let _ = writeln!(out, "}}");
    }
    if users.is_empty() {
        // No users: no authentication, for a developer's machine only.
        return Ok(out);
    }
    let _ = writeln!(out, "authorization {{\n  users: [");
    for user in users {
        let key = keys.get(&user.name).ok_or_else(|| Error::Config(format!("no NATS key for user {}", user.name)))?;
        let _ = writeln!(out, "    # {}", user.name);
        match &user.permissions {
            None => {
                let _ = writeln!(out, "    {{ nkey: {} }}", quote(key));
            }
            Some(p) => {
                let _ = writeln!(out, "    {{ nkey: {}, permissions: {{", quote(key));
                let _ = writeln!(out, "        publish: {{ allow: {} }}", list(&p.publish));
                let _ = writeln!(out, "        subscribe: {{ allow: {} }}", list(&p.subscribe));
                let _ = writeln!(out, "    }} }}");
            }
        }
    }
    let _ = writeln!(out, "  ]\n}}");
    Ok(out)
}

fn tls_block(tls: &TlsFiles, verify: bool) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "    cert_file: {}", quote(&tls.cert.display().to_string()));
    let _ = writeln!(b, "    key_file: {}", quote(&tls.key.display().to_string()));
    if let Some(ca) = &tls.ca {
        let _ = writeln!(b, "    ca_file: {}", quote(&ca.display().to_string()));
    }
    if verify {
        let _ = writeln!(b, "    verify: true");
    }
    b
}

fn with_route_credentials(route: &str, user: &str, password: &str) -> String {
    match route.split_once("://") {
        Some((scheme, rest)) if !rest.contains('@') => format!("{scheme}://{user}:{password}@{rest}"),
        _ => route.to_string(),
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        // An empty allow list would allow everything: allow a subject nobody uses instead.
        return "[\"_NOTHING_\"]".into();
    }
    format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

/// A quoted string of the nats-server configuration format (JSON-compatible escapes).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

// ------------------------------------------------------------------------------- provisioning

/// The two streams of a district: submissions (short-lived: they hold names and phones) and
/// events (the lasting record).
pub fn stream_configs(subjects: &Subjects, settings: &NatsSettings) -> [stream::Config; 2] {
    let s = subjects;
    let submissions = stream::Config {
        name: s.submissions_stream(),
        description: Some("Jiesu submissions from every intake channel, and intake's answers".into()),
        subjects: vec![s.intake_all(), s.rejected("*"), s.accepted("*")],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        max_age: settings.submission_retention,
        ..Default::default()
    };
    let events = stream::Config {
        name: s.events_stream(),
        description: Some("Jiesu case events: the record every service and report is built from".into()),
        subjects: vec![format!("{}.event.>", s.root())],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        max_age: settings.event_retention,
        ..Default::default()
    };
    [submissions, events]
}

/// The configuration of durable consumer `durable`.
pub fn consumer_config(durable: &str, filter_subjects: Vec<String>, s: &ConsumerSettings) -> pull::Config {
    pull::Config {
        durable_name: Some(durable.to_string()),
        description: Some(format!("jiesu {durable}")),
        filter_subjects,
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: s.ack_wait,
        max_deliver: s.max_deliver,
        max_ack_pending: s.max_ack_pending,
        // No server-side `backoff`: it would replace `ack_wait` by its first step and redeliver
        // a message still being handled. Failures are NAK'd with their delay instead.
        ..Default::default()
    }
}

/// How a bound consumer differs from what its service expects, if it does: the operator
/// provisioned it from another district file (or an older one).
pub fn consumer_drift(found: &jetstream::consumer::Config, expected: &pull::Config) -> Option<String> {
    let mut found_filters = found.filter_subjects.clone();
    if !found.filter_subject.is_empty() {
        found_filters.push(found.filter_subject.clone());
    }
    found_filters.sort();
    let mut expected_filters = expected.filter_subjects.clone();
    expected_filters.sort();
    let mut drift = Vec::new();
    if found_filters != expected_filters {
        drift.push(format!("it reads {found_filters:?} but the service consumes {expected_filters:?}"));
    }
    if found.max_deliver != expected.max_deliver {
        drift.push(format!("max_deliver is {} but the district file says {}", found.max_deliver, expected.max_deliver));
    }
    if found.ack_wait != expected.ack_wait {
        drift.push(format!("ack_wait is {:?} but the district file says {:?}", found.ack_wait, expected.ack_wait));
    }
    (!drift.is_empty()).then(|| drift.join("; "))
}

/// What [`provision`] set up.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub streams: Vec<String>,
    pub consumers: Vec<String>,
}

/// Creates or updates, as the operator, both streams and every durable consumer of the district:
/// each service's (with the redelivery settings of its section) and each channel's answers.
/// Safe to run again: after a change of the district file, it brings NATS in line.
pub async fn provision(js: &jetstream::Context, config: &DistrictConfig) -> Result<Provisioned, Error> {
    let nats: NatsSettings = config.part("nats")?;
    let subjects = Subjects::new(&nats.subject_root);
    let mut done = Provisioned::default();
    for stream in stream_configs(&subjects, &nats) {
        let name = stream.name.clone();
        js.create_or_update_stream(stream).await.map_err(|e| Error::Nats(format!("cannot create or update stream {name}: {e}")))?;
        done.streams.push(name);
    }
    for access in SERVICES {
        let settings = config.consumer_settings(access.service)?;
        for durable in access.consumers {
            let (stream, filters) = source(&subjects, durable.reads);
            upsert_consumer(js, &stream, consumer_config(durable.name, filters, &settings)).await?;
            done.consumers.push(durable.name.to_string());
        }
    }
    for channel in config.channel_ids()? {
        let durable = answers_durable(&channel);
        let filters = vec![format!("{}.intake.*.{channel}", subjects.root())];
        upsert_consumer(js, &subjects.submissions_stream(), consumer_config(&durable, filters, &ConsumerSettings::default())).await?;
        done.consumers.push(durable);
    }
    Ok(done)
}

async fn upsert_consumer(js: &jetstream::Context, stream: &str, config: pull::Config) -> Result<(), Error> {
    let name = config.durable_name.clone().unwrap_or_default();
    let stream_handle = js.get_stream(stream).await.map_err(|e| Error::Nats(format!("stream {stream}: {e}")))?;
    stream_handle
        .create_consumer(config)
        .await
        .map_err(|e| Error::Nats(format!("cannot create or update consumer {name} on {stream}: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subjects() -> Subjects {
        Subjects::new("jiesu")
    }

    #[test]
    fn every_event_has_exactly_one_publisher() {
        for t in jiesu_proto::EVENT_TYPES {
            let publishers: Vec<_> = SERVICES.iter().filter(|s| s.publishes.contains(t)).map(|s| s.service).collect();
            assert_eq!(publishers.len(), 1, "{t} is published by {publishers:?}");
        }
    }

    #[test]
    fn a_service_publishes_only_its_own_events() {
        let p = service_permissions(&subjects(), service("classification").unwrap());
        let events: Vec<_> = p.publish.iter().filter(|s| s.starts_with("jiesu.")).collect();
        assert_eq!(
            events,
            [
                "jiesu.event.case.classified",
                "jiesu.event.case.review_requested",
                "jiesu.event.case.reviewed",
                "jiesu.event.case.repeat_detected",
                "jiesu.event.case.merged",
                "jiesu.event.insight.hotspot"
            ]
        );
        assert!(!p.publish.iter().any(|s| s.contains("STREAM.CREATE") || s.contains("STREAM.DELETE") || s.contains("CONSUMER.CREATE")));
        assert_eq!(p.subscribe, ["_INBOX.classification.>"]);
    }

    #[test]
    fn intake_answers_producers_and_reads_two_durables() {
        let p = service_permissions(&subjects(), service("intake").unwrap());
        assert!(p.publish.contains(&"jiesu.intake.accepted.*".to_string()));
        assert!(p.publish.contains(&"jiesu.intake.rejected.*".to_string()));
        assert!(p.publish.contains(&"$JS.API.CONSUMER.MSG.NEXT.JIESU_INTAKE.intake".to_string()));
        assert!(p.publish.contains(&"$JS.API.CONSUMER.MSG.NEXT.JIESU_EVENTS.intake-progress".to_string()));
        assert!(!p.publish.iter().any(|s| s.starts_with("jiesu.intake.") && !s.contains("accepted") && !s.contains("rejected")));
    }

    #[test]
    fn a_channel_submits_and_hears_only_on_its_own_subjects() {
        let p = channel_permissions(&subjects(), "hotline");
        let bus: Vec<_> = p.publish.iter().filter(|s| s.starts_with("jiesu.")).collect();
        assert_eq!(bus, ["jiesu.intake.hotline"]);
        assert!(p.publish.contains(&"$JS.API.CONSUMER.MSG.NEXT.JIESU_INTAKE.answers-hotline".to_string()));
        assert_eq!(p.subscribe, ["jiesu.intake.*.hotline", "_INBOX.channel-hotline.>"]);
    }

    #[test]
    fn durable_names_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for d in SERVICES.iter().flat_map(|s| s.consumers) {
            assert!(seen.insert(d.name), "{} twice", d.name);
            assert!(!d.name.starts_with("answers-"), "{} looks like a channel's", d.name);
        }
    }

    #[test]
    fn the_server_config_names_users_by_public_key_only() {
        let users = district_users(&subjects(), &["hotline".into()]);
        let seeds: BTreeMap<String, String> = users.iter().map(|u| (u.name.clone(), generate_seed())).collect();
        let keys: BTreeMap<String, String> = seeds.iter().map(|(u, s)| (u.clone(), public_key(s).unwrap())).collect();
        let layout = ServerLayout { listen: "127.0.0.1:4222".into(), store_dir: "/var/lib/nats".into(), ..Default::default() };
        let text = render_server_config(&layout, &users, &keys).unwrap();
        for (user, seed) in &seeds {
            assert!(!text.contains(seed.as_str()), "the seed of {user} is in the config");
            assert!(text.contains(&keys[user]), "{user} is missing");
        }
        assert!(text.contains("\"jiesu.intake.hotline\""));
        assert!(text.contains("# operator\n    { nkey:"));
    }

    #[test]
    fn the_console_only_listens_to_events() {
        let users = district_users(&subjects(), &[]);
        let console = users.iter().find(|u| u.name == CONSOLE).and_then(|u| u.permissions.as_ref()).expect("the console's user");
        assert!(console.publish.is_empty(), "{console:?}");
        assert_eq!(console.subscribe, ["jiesu.event.>", "_INBOX.console.>"]);
    }

    #[test]
    fn a_missing_key_is_an_error_not_an_open_door() {
        let users = district_users(&subjects(), &[]);
        let err = render_server_config(&ServerLayout::default(), &users, &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("no NATS key for user operator"), "{err}");
    }

    #[test]
    fn drift_names_what_differs() {
        let s = ConsumerSettings::default();
        use jetstream::consumer::IntoConsumerConfig;
        let expected = consumer_config("dispatch", vec!["jiesu.event.case.classified".into()], &s);
        assert_eq!(consumer_drift(&expected.clone().into_consumer_config(), &expected), None);
        let mut found = expected.clone().into_consumer_config();
        found.filter_subjects = vec!["jiesu.event.>".into()];
        found.max_deliver = 2;
        let drift = consumer_drift(&found, &expected).unwrap();
        assert!(drift.contains("jiesu.event.>") && drift.contains("max_deliver is 2"), "{drift}");
    }

    #[test]
    fn seeds_are_written_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let made = ensure_seeds(dir.path(), ["operator", "dispatch"]).unwrap();
        assert_eq!(made, ["operator", "dispatch"]);
        let first = read_seed(dir.path(), "dispatch").unwrap();
        assert!(ensure_seeds(dir.path(), ["dispatch"]).unwrap().is_empty());
        assert_eq!(read_seed(dir.path(), "dispatch").unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(seed_path(dir.path(), "dispatch")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
        }
        assert!(read_seed(dir.path(), "nobody").unwrap_err().to_string().contains("nobody"));
    }
}
