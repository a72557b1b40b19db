//! Test-only (a dev-dependency, never in a production binary): real dependencies for tests, and
//! the harness every service test shares.
//!
//! - [`NatsServer`]: a `nats-server` (≥ 2.10, with JetStream) of the test's own, on a free
//!   loopback port with a temporary store, killed and cleaned up on drop. The binary is
//!   `$NATS_SERVER_BIN`, else `.local/bin/nats-server` of the repository (where
//!   `scripts/install-nats.sh` puts it), else `nats-server` on `PATH`.
//! - [`Harness`]: one service running in-process on a [`TestBed`], with a JetStream connection,
//!   its database opened read-only and a gRPC channel to it: what every service's `tests/` use.
//! - [`PgDatabase`]: a fresh PostgreSQL database at `JIESU_TEST_PG_URL`, dropped with it.
//! - [`TestBed`]: that server, a temporary directory and a district configuration pointing the
//!   named services at both — what a test needs before it calls a service's `start(config, clock)`.
//! - [`publish_event`] and [`read_stream`]: events in and out of JetStream the way the services
//!   write and read them (the Jiesu headers, protobuf payloads).
//! - [`grpc_channel`] to reach a service, and [`eventually`] to wait for what happens
//!   asynchronously; [`sqlite_read_only`], [`until_handled`] and [`until_outbox_sent`] to wait
//!   until a service has caught up, watching the kit's inbox and outbox in its database.
//! - [`browser`]: a headless Chromium of the test's own, driven through `chromedriver`, for the
//!   page tests (type, click, attach a file, read what is shown, take a screenshot).
//!
//! ```no_run
//! # async fn example() {
//! use jiesu_testkit::{TestBed, demo_config};
//! let bed = TestBed::new(demo_config(), &["dispatch"]);
//! // bed.config now has nats.url, a fresh nats.subject_root, and dispatch.database_url in bed.dir.
//! let js = bed.jetstream().await.expect("connect to NATS");
//! # }
//! ```

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use futures::StreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use jiesu_kit::{
    DistrictConfig, Subjects,
    messaging::{PROTOBUF, header},
};
use jiesu_proto::Event;

pub mod browser;
mod harness;
mod postgres;
pub use harness::{Harness, TestDb};
pub use postgres::{Backend, PgDatabase, drop_pg_database, pg_admin, pg_url, postgres_admin_url};

/// A running nats-server owned by a test, with authentication on as in production: one nkey
/// user per service, per channel of the demo district and the operator, with the permissions
/// [`jiesu_kit::access`] gives them, for subjects under the server's own unique root.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    bin: PathBuf,
    auth: std::sync::Arc<NatsAuth>,
    /// This node's place in a cluster: (cluster name, route ports, index).
    cluster: Option<(String, Vec<u16>, usize)>,
    /// TLS on the client port, from these files.
    tls: Option<jiesu_kit::access::TlsFiles>,
}

/// The users of a test's NATS: their seeds in a temporary directory, under one subject root.
pub struct NatsAuth {
    root: String,
    keys: tempfile::TempDir,
    /// Empty: a server without authentication.
    users: Vec<jiesu_kit::access::User>,
}

impl NatsAuth {
    fn new(root: String, channels: &[String]) -> Self {
        use jiesu_kit::access;
        let keys = tempfile::Builder::new().prefix("jiesu-nats-keys-").tempdir().expect("temp dir for NATS keys");
        let users = access::district_users(&Subjects::new(&root), channels);
        access::ensure_seeds(keys.path(), users.iter().map(|u| u.name.as_str())).expect("write NATS keys");
        Self { root, keys, users }
    }

    fn public_keys(&self) -> std::collections::BTreeMap<String, String> {
        use jiesu_kit::access;
        self.users
            .iter()
            .map(|u| {
                let seed = access::read_seed(self.keys.path(), &u.name).expect("read a NATS key");
                (u.name.clone(), access::public_key(&seed).expect("a public key"))
            })
            .collect()
    }
}

impl NatsServer {
    /// Starts a server on a free port, for a unique subject root and the demo district's
    /// channels, and waits until it accepts connections.
    pub fn start() -> Self {
        let channels = DistrictConfig::load(demo_config()).and_then(|c| c.channel_ids()).expect("the demo district's channels");
        Self::start_for(&unique_name("t"), &channels)
    }

    /// Starts a server without authentication: only for tests of the kit's own mechanics (a
    /// consumer of made-up events), never for a test of the services.
    pub fn start_without_auth() -> Self {
        let mut auth = NatsAuth::new(unique_name("t"), &[]);
        auth.users.clear();
        Self::start_with(std::sync::Arc::new(auth), None)
    }

    /// Starts a server whose users publish under subject root `root`, with a producer user for
    /// each of `channels`.
    pub fn start_for(root: &str, channels: &[String]) -> Self {
        Self::start_with(std::sync::Arc::new(NatsAuth::new(root.to_string(), channels)), None)
    }

    /// As [`NatsServer::start`], speaking only TLS with `tls`'s certificate (mutual TLS when it
    /// says `verify_clients`).
    pub fn start_tls(tls: jiesu_kit::access::TlsFiles) -> Self {
        let channels = DistrictConfig::load(demo_config()).and_then(|c| c.channel_ids()).expect("the demo district's channels");
        Self::start_inner(std::sync::Arc::new(NatsAuth::new(unique_name("t"), &channels)), None, Some(tls))
    }

    fn start_with(auth: std::sync::Arc<NatsAuth>, cluster: Option<(String, Vec<u16>, usize)>) -> Self {
        Self::start_inner(auth, cluster, None)
    }

    fn start_inner(
        auth: std::sync::Arc<NatsAuth>,
        cluster: Option<(String, Vec<u16>, usize)>,
        tls: Option<jiesu_kit::access::TlsFiles>,
    ) -> Self {
        let bin = nats_server_bin();
        let store = tempfile::Builder::new().prefix("jiesu-nats-").tempdir().expect("temp dir for the NATS store");
        let mut server = Self { child: None, port: free_port(), store, bin, auth, cluster, tls };
        // The port was free a moment ago; another test may have taken it since, and then the
        // port answers while our server has exited on "address in use": take another.
        for _ in 0..5 {
            server.spawn();
            std::thread::sleep(Duration::from_millis(100));
            if server.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
                return server;
            }
            server.port = free_port();
        }
        panic!("nats-server {} kept exiting at start", server.bin.display());
    }

    /// The server's configuration, generated as `jiesuctl nats config` generates a district's.
    fn write_config(&self) -> PathBuf {
        use jiesu_kit::access::{ClusterLayout, ServerLayout, render_server_config};
        let cluster = self.cluster.as_ref().map(|(name, ports, i)| ClusterLayout {
            name: name.clone(),
            listen: format!("127.0.0.1:{}", ports[*i]),
            routes: ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect(),
            user: "route".into(),
            password: name.clone(),
        });
        let layout = ServerLayout {
            listen: format!("127.0.0.1:{}", self.port),
            server_name: self.cluster.as_ref().map(|(name, _, i)| format!("{name}-{i}")),
            store_dir: self.store.path().join("js"),
            cluster,
            tls: self.tls.clone(),
        };
        let text = render_server_config(&layout, &self.auth.users, &self.auth.public_keys()).expect("render the NATS config");
        let path = self.store.path().join("nats.conf");
        std::fs::write(&path, text).expect("write the NATS config");
        path
    }

    fn spawn(&mut self) {
        let config = self.write_config();
        let child =
            Command::new(&self.bin).arg("-c").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| {
                panic!("cannot start {}: {e} (set NATS_SERVER_BIN or run scripts/install-nats.sh)", self.bin.display())
            });
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(15));
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The subject root the server's users are allowed under.
    pub fn root(&self) -> &str {
        &self.auth.root
    }

    /// The directory of every user's nkey seed: `nats.keys_dir` of the test's services.
    pub fn keys_dir(&self) -> &Path {
        self.auth.keys.path()
    }

    /// Connects as `user` (`operator`, a service's name, `channel-<id>`) with its key.
    pub async fn connect_as(&self, user: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
        connect_as(&self.url(), self.keys_dir(), user).await
    }

    /// Connects as the operator, who may do anything: what tests use to look and to poke.
    pub async fn operator(&self) -> async_nats::Client {
        if self.auth.users.is_empty() {
            return async_nats::connect(self.url()).await.expect("connect to the test's NATS");
        }
        self.connect_as(jiesu_kit::access::OPERATOR).await.expect("connect to the test's NATS as the operator")
    }

    /// Kills the server (store kept), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

/// Provisions, as the operator of `config`'s NATS (`nats.url`, `nats.keys_dir`), the streams
/// and every durable consumer of the district, as `jiesuctl nats provision` does; waits for a
/// fresh cluster to elect its leader.
pub async fn provision(config: &DistrictConfig) {
    let nats: jiesu_kit::config::NatsSettings = config.part("nats").expect("the [nats] section");
    let keys = nats.keys_dir.as_deref().expect("nats.keys_dir: the test's NATS has authentication on");
    let client = connect_as(&nats.url.join(","), keys, jiesu_kit::access::OPERATOR).await.expect("connect as the operator");
    let js = jetstream::new(client);
    let started = Instant::now();
    loop {
        match jiesu_kit::access::provision(&js, config).await {
            Ok(_) => return,
            // A fresh cluster answers "jetstream request timed out" until it has a leader.
            Err(_) if started.elapsed() < Duration::from_secs(30) => tokio::time::sleep(Duration::from_millis(250)).await,
            Err(e) => panic!("cannot provision the streams and consumers: {e}"),
        }
    }
}

/// Connects to `url` (several, comma-separated) as `user`, with its seed from `keys_dir` and its own inbox prefix.
pub async fn connect_as(url: &str, keys_dir: &Path, user: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let settings = jiesu_kit::config::NatsSettings {
        url: url.split(',').map(|u| u.trim().to_string()).collect(),
        keys_dir: Some(keys_dir.to_path_buf()),
        ..Default::default()
    };
    let options = jiesu_kit::messaging::connect_options(&settings, user).expect("the user's NATS key");
    options.connect(jiesu_kit::messaging::server_addrs(&settings).expect("NATS URLs")).await
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three nats-servers routed into one JetStream cluster, each with its own store and the same
/// users: what a district runs in production, for tests of fail-over.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts the three nodes; their JetStream elects its leader in the next seconds (a service
    /// started meanwhile has to wait for it).
    pub fn start() -> Self {
        let channels = DistrictConfig::load(demo_config()).and_then(|c| c.channel_ids()).expect("the demo district's channels");
        let auth = std::sync::Arc::new(NatsAuth::new(unique_name("t"), &channels));
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let name = unique_name("c");
        let nodes = (0..3).map(|i| NatsServer::start_with(auth.clone(), Some((name.clone(), cluster_ports.clone(), i)))).collect();
        Self { nodes }
    }

    /// The subject root the cluster's users are allowed under.
    pub fn root(&self) -> &str {
        self.nodes[0].root()
    }

    /// The users' keys, shared by every node.
    pub fn keys_dir(&self) -> &Path {
        self.nodes[0].keys_dir()
    }

    /// Every node's client URL, comma-separated, as an operator writes `nats.url`.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(NatsServer::url).collect::<Vec<_>>().join(",")
    }
}

/// Finds the nats-server binary the tests use.
pub fn nats_server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let mut dir: Option<&Path> = Some(Path::new(env!("CARGO_MANIFEST_DIR")));
    while let Some(d) = dir {
        let candidate = d.join(".local/bin/nats-server");
        if candidate.exists() {
            return candidate;
        }
        dir = d.parent();
    }
    PathBuf::from("nats-server")
}

/// A port on 127.0.0.1 that was free a moment ago and that this process has not handed out before.
///
/// The port is handed to a child that binds it later, so it is taken from below Linux's ephemeral
/// range (32768–60999): asking the kernel for port 0 would give one from that range, where an outgoing
/// connection of some other test may take it between our check and the child's bind (CI saw a service
/// fail to start on "address already in use" this way). Processes start at different offsets so that
/// two test binaries run side by side rarely meet, and the bind check catches it when they do.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(7_919) % SPAN;
    for _ in 0..SPAN {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (offset + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between {LOW} and {}", LOW + SPAN)
}

fn wait_for_port(port: u16, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nats-server did not listen on port {port} within {limit:?}");
}

/// A unique, subject-safe name for one test's streams and databases.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[id.len() - 12..])
}

/// The demo district's `jiesu.toml` in this repository (`deploy/districts/demo/`).
pub fn demo_config() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/districts/demo/jiesu.toml"))
}

/// One test's world: its own [`NatsServer`], a temporary directory, and a district
/// configuration that points the services under test at both. Dropping it stops the server and
/// removes the directory; stop the services first.
pub struct TestBed {
    pub nats: NatsServer,
    /// Holds the services' SQLite files (see [`TestBed::database_path`]).
    pub dir: tempfile::TempDir,
    /// Ready for `start(&bed.config, clock)`; change more keys with `bed.config.set(…)`.
    pub config: DistrictConfig,
    /// The subject and stream names under this test's unique subject root.
    pub subjects: Subjects,
}

impl TestBed {
    /// Starts NATS, makes a temporary directory and loads `config_path` (with the usual
    /// `JIESU__…` environment overrides), then sets
    ///
    /// - `nats.url` to the test's server (authentication on, a user per service and per
    ///   channel of the file) and `nats.subject_root` to a unique root, so streams and subjects
    ///   are the test's own; `nats.keys_dir` to the users' keys, so each service connects as itself;
    /// - `telemetry.log_filter` to `warn`, and `auth.required` to false (see [`TestBed::require_tokens`]);
    /// - for each of `services` (config section names, e.g. `sla_timer`): `database_url` to a
    ///   SQLite file in the directory, and `grpc_addr` and `admin_addr` to `127.0.0.1:0`.
    pub fn new(config_path: impl AsRef<Path>, services: &[&str]) -> Self {
        let path = config_path.as_ref();
        let mut config = DistrictConfig::load(path).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
        let channels = config.channel_ids().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let root = unique_name("t");
        let nats = NatsServer::start_for(&root, &channels);
        let dir = tempfile::Builder::new().prefix("jiesu-test-").tempdir().expect("temp dir for the test");
        config.set("nats.url", nats.url());
        config.set("nats.subject_root", root.clone());
        config.set("nats.keys_dir", nats.keys_dir().display().to_string());
        config.set("telemetry.log_filter", "warn");
        // Tokens are required by default; a test of another concern opts out here, and a test
        // of who may do what (or a whole loop as people run it) calls `require_tokens`.
        config.set("auth.required", false);
        // Likewise TLS: plain text on loopback unless the test calls `use_tls`.
        config.set("tls.plaintext", true);
        // Citizens' contacts sealed at rest, as in production.
        let mut contact_keys = toml::Table::new();
        contact_keys.insert("test".into(), toml::Value::String(jiesu_kit::auth::random_key()));
        config.set("intake.contact_keys", toml::Value::Table(contact_keys));
        config.set("intake.contact_key", "test");
        config.set("intake.contact_hash_key", jiesu_kit::auth::random_key());
        // Citizens' uploads in the test's directory, never in the working tree.
        config.set("intake.attachments_dir", dir.path().join("attachments").display().to_string());
        let mut bed = Self { nats, dir, config, subjects: Subjects::new(root) };
        for svc in services {
            let url = format!("sqlite://{}", bed.database_path(svc).display());
            bed.config.set(&format!("{svc}.database_url"), url);
            bed.config.set(&format!("{svc}.grpc_addr"), "127.0.0.1:0");
            bed.config.set(&format!("{svc}.admin_addr"), "127.0.0.1:0");
        }
        bed
    }

    /// Turns authentication on: a fresh district key in the bed's directory, `[auth] required`,
    /// and the key set the services trust. Returns the signer to mint the test's tokens.
    pub fn require_tokens(&mut self) -> jiesu_kit::auth::Signer {
        let kid = unique_name("k");
        let (pem, jwk) = jiesu_kit::auth::generate_key(&kid).expect("generate a key");
        let jwks = self.dir.path().join("jwks.json");
        std::fs::write(&jwks, serde_json::json!({"keys": [jwk]}).to_string()).expect("write the key set");
        // The services sign their own calls to each other with it, as a small district does.
        let private = self.dir.path().join(format!("{kid}.key.pem"));
        std::fs::write(&private, &pem).expect("write the signing key");
        self.config.set("auth.required", true);
        self.config.set("auth.keys", jwks.display().to_string());
        self.config.set("auth.signing_key", private.display().to_string());
        jiesu_kit::auth::Signer::from_pem(&kid, &pem, "jiesu", "jiesu").expect("a signer")
    }

    /// Turns TLS on: a fresh CA in `<dir>/tls`, a certificate for each of the six services, the
    /// two web fronts (`console`, `web`) and the test's clients (`client`), all for 127.0.0.1 and
    /// localhost; `[tls] dir` set and plain text off. With `client_auth`, every client must show
    /// its certificate.
    pub fn use_tls(&mut self, client_auth: bool) {
        use jiesu_kit::tls;
        let dir = self.dir.path().join("tls");
        tls::ensure_ca(&dir, "Jiesu test CA").expect("make a CA");
        let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let services = jiesu_kit::access::SERVICES.iter().map(|s| s.service);
        for name in services.chain(["client", "console", "web"]) {
            tls::issue_cert(&dir, "Jiesu test CA", name, &hosts).expect("issue a certificate");
        }
        self.config.set("tls.dir", dir.display().to_string());
        self.config.set("tls.plaintext", false);
        self.config.set("tls.client_auth", client_auth);
    }

    /// The TLS of the test's clients (`client`'s certificate), when [`TestBed::use_tls`] was called.
    pub fn client_tls(&self) -> Option<jiesu_kit::tls::Tls> {
        let settings: jiesu_kit::tls::TlsSettings = self.config.part("tls").expect("the [tls] section");
        settings.dir.as_ref()?;
        jiesu_kit::tls::Tls::load(&settings, "client", &[]).expect("the client's certificate")
    }

    /// `<dir>/<service>.db`: where [`TestBed::new`] put the service's SQLite database.
    pub fn database_path(&self, service: &str) -> PathBuf {
        self.dir.path().join(format!("{service}.db"))
    }

    /// A new JetStream connection to the test's server, as the operator.
    pub async fn jetstream(&self) -> Result<jetstream::Context, async_nats::ConnectError> {
        Ok(jetstream::new(self.nats.connect_as(jiesu_kit::access::OPERATOR).await?))
    }

    /// Creates the streams and every durable consumer as the operator does before the services
    /// start (`jiesuctl nats provision`), from the bed's configuration as it is now.
    pub async fn provision(&self) {
        provision(&self.config).await;
    }
}

/// Publishes `event` on its subject as a producing service would: protobuf, with the
/// `Nats-Msg-Id` (its event id), `Jiesu-Case-Id` and `Jiesu-Event-Type` headers, and waits for
/// JetStream's acknowledgement. True when JetStream stored it, false when it dropped it as a
/// duplicate of an earlier message with the same `Nats-Msg-Id`.
pub async fn publish_event<E: Event>(js: &jetstream::Context, subjects: &Subjects, event: &E) -> bool {
    let id = event.meta().map(|m| m.event_id.clone()).unwrap_or_default();
    publish_event_as(js, subjects, &id, event).await
}

/// [`publish_event`] under another `Nats-Msg-Id` than the event's own id: how a re-send that
/// JetStream cannot recognise reaches the consumers.
pub async fn publish_event_as<E: Event>(js: &jetstream::Context, subjects: &Subjects, msg_id: &str, event: &E) -> bool {
    let ack = send_event(js, subjects, msg_id, event).await.expect("publish").await.expect("publish ack");
    !ack.duplicate
}

/// Publishes `event` as [`publish_event`] does, and says whether the server refused it (a
/// user without the right to its subject gets no acknowledgement, and nothing is stored).
pub async fn publish_event_refused<E: Event>(js: &jetstream::Context, subjects: &Subjects, event: &E) -> bool {
    let id = event.meta().map(|m| m.event_id.clone()).unwrap_or_default();
    match send_event(js, subjects, &id, event).await {
        Err(_) => true,
        Ok(ack) => ack.await.is_err(),
    }
}

/// `event` on its subject with the Jiesu headers; the acknowledgement still to come.
async fn send_event<E: Event>(
    js: &jetstream::Context,
    subjects: &Subjects,
    msg_id: &str,
    event: &E,
) -> Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError> {
    let case_id = event.meta().map(|m| m.case_id.clone()).unwrap_or_default();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(header::MSG_ID, msg_id);
    headers.insert(header::CASE_ID, case_id.as_str());
    headers.insert(header::EVENT_TYPE, E::TYPE);
    headers.insert(header::CONTENT_TYPE, PROTOBUF);
    js.publish_with_headers(subjects.event(E::TYPE), headers, event.encode_to_vec().into()).await
}

/// One message read back from a stream, with the headers tests look at.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub subject: String,
    /// `Nats-Msg-Id`: the event id of an event.
    pub msg_id: String,
    /// `Jiesu-Case-Id`.
    pub case_id: String,
    /// The W3C `traceparent` header, if any.
    pub traceparent: String,
    pub payload: bytes::Bytes,
}

impl StoredMessage {
    /// The trace id in `traceparent` (`00-<trace id>-<span id>-<flags>`).
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.split('-').nth(1)
    }
}

/// Every message in `stream` so far, oldest first; only those on subjects matching `filter`
/// (wildcards allowed) when given. Reads exactly as many as the stream counts at the start,
/// through an ephemeral consumer that acknowledges nothing (the server drops it 30 s later), so
/// the services' own consumers are not disturbed. Missing headers read as empty strings.
pub async fn read_stream(js: &jetstream::Context, stream: &str, filter: Option<&str>) -> Result<Vec<StoredMessage>, async_nats::Error> {
    let mut consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(pull::Config {
            filter_subject: filter.unwrap_or_default().to_string(),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let pending = consumer.info().await?.num_pending as usize;
    let mut out = Vec::with_capacity(pending);
    if pending == 0 {
        return Ok(out);
    }
    let mut batch = consumer.fetch().max_messages(pending).messages().await?;
    while out.len() < pending {
        let Some(m) = tokio::time::timeout(Duration::from_secs(5), batch.next())
            .await
            .map_err(|_| format!("stream {stream} delivered {} of the {pending} messages it counted", out.len()))?
        else {
            break;
        };
        let m = m?;
        let h = m.headers.clone().unwrap_or_default();
        let get = |name: &str| h.get(name).map(|v| v.to_string()).unwrap_or_default();
        out.push(StoredMessage {
            subject: m.subject.to_string(),
            msg_id: get(header::MSG_ID),
            case_id: get(header::CASE_ID),
            traceparent: get(header::TRACEPARENT),
            payload: m.payload.clone(),
        });
    }
    Ok(out)
}

/// A gRPC channel to a service listening on `addr` (plain HTTP/2, as in tests).
pub async fn grpc_channel(addr: SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect over gRPC to {addr}: {e}"))
}

/// What [`eventually`] returns when its check never answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    pub what: String,
    pub limit: Duration,
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "timed out after {:?} waiting for {}", self.limit, self.what)
    }
}

impl std::error::Error for TimedOut {}

/// Polls `check` every 50 ms until it returns `Some`, and returns that; after `limit` (a check
/// still running then is abandoned) fails with [`TimedOut`] naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let polling = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(limit, polling).await.map_err(|_| TimedOut { what: what.to_string(), limit })
}

/// Opens a running service's SQLite database read-only (one connection), to watch it from the
/// test without taking the service's write lock.
pub async fn sqlite_read_only(path: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.expect("open the service's database")
}

/// Waits until `consumer` has handled message `msg_id`: its inbox holds it, so the effects are
/// committed.
pub async fn until_handled(db: &TestDb, consumer: &str, msg_id: &str, limit: Duration) -> Result<(), TimedOut> {
    let sql = format!("SELECT COUNT(*) FROM inbox WHERE consumer = '{consumer}' AND message_id = '{}'", msg_id.replace('\'', "''"));
    eventually(&format!("message {msg_id} to be handled"), limit, || async { (db.count(&sql).await.ok()? == 1).then_some(()) }).await
}

/// Waits until the outbox holds nothing unsent: every event the service wrote is in the stream.
pub async fn until_outbox_sent(db: &TestDb, limit: Duration) -> Result<(), TimedOut> {
    eventually("the outbox to be published", limit, || async {
        (db.count("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").await.ok()? == 0).then_some(())
    })
    .await
}

/// `GET http://<addr><path>` over a fresh connection: the status code and the body, or `None`
/// when nothing answers (yet). Enough HTTP for a service's admin port (`/readyz`, `/metrics`)
/// without an HTTP client dependency.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_request(addr, "GET", path, None).await
}

/// One HTTP/1.1 request with an optional `Authorization` header: the status code and the body.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// One HTTPS GET to `addr` (as `localhost`), trusting the CA in `tls_dir` and showing the
/// certificate of `client` from there when given: the status and body, or why TLS failed.
pub async fn https_get(addr: SocketAddr, tls_dir: &Path, client: Option<&str>, path: &str) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
    let pem = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls::pki_types::CertificateDer::pem_slice_iter(&pem(tls_dir.join("ca.pem"))?) {
        roots.add(ca.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => {
            let (cert, key) = jiesu_kit::tls::cert_paths(tls_dir, name);
            let certs =
                rustls::pki_types::CertificateDer::pem_slice_iter(&pem(cert)?).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&pem(key)?).map_err(|e| e.to_string())?;
            builder.with_client_auth_cert(certs, key).map_err(|e| e.to_string())?
        }
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
    let mut s = connector.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.map_err(|e| format!("TLS: {e}"))?;
    let mut raw = Vec::new();
    // A server that refuses the client's certificate says so after the handshake, at the first read.
    s.read_to_end(&mut raw).await.map_err(|e| format!("TLS: {e}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("not HTTP: {raw:?}"))?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The meta of an event a test publishes as if a service had: of `case_id`/`case_no` in the
/// demo district, with no cause and no time.
pub fn event_meta(event_id: &str, case_id: &str, case_no: &str) -> jiesu_proto::v1::EventMeta {
    jiesu_proto::v1::EventMeta {
        event_id: event_id.into(),
        case_id: case_id.into(),
        case_no: case_no.into(),
        occurred_at: None,
        causation_id: String::new(),
        district: "demo".into(),
    }
}

/// Runs each of the named `async fn(Backend)` checks as two tests, `sqlite::<name>` and
/// `postgres::<name>`: what a service promises, it promises on both engines.
#[macro_export]
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $check() {
                    super::$check($crate::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $check() {
                    super::$check($crate::Backend::Postgres).await
                }
            )*
        }
    };
}

/// `authorization` metadata of a fresh ten-minute token for `subject` with `role` (and `unit`).
pub fn bearer(
    signer: &jiesu_kit::auth::Signer,
    subject: &str,
    role: jiesu_kit::auth::Role,
    unit: Option<&str>,
) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    let token = signer.issue_now(subject, subject, &[role], unit, Duration::from_secs(600)).expect("sign a token");
    format!("Bearer {token}").parse().expect("a token is ASCII")
}
