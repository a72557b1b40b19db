//! The district's configuration: one `jiesu.toml` per deployed district, a section per service,
//! the reference data it points to, and environment overrides.
//!
//! Layers, last wins: the file → `JIESU__SECTION__KEY=value` environment variables (`__` nests;
//! values are read as TOML scalars when they parse as one, else as strings) → code (tests).
//! Each service deserialises only `district`, `nats`, `telemetry` and its own section.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, de::DeserializeOwned};

use crate::Error;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "JIESU__";

/// The parsed district file, before a service picks its part.
#[derive(Debug, Clone)]
pub struct DistrictConfig {
    table: toml::Table,
    base_dir: PathBuf,
}

impl DistrictConfig {
    /// Reads the file and applies the process environment's `JIESU__…` overrides.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead { path: path.to_owned(), source })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut cfg = Self::parse(&text, base).map_err(|e| match e {
            Error::ConfigParse { source, .. } => Error::ConfigParse { path: path.to_owned(), source },
            other => other,
        })?;
        cfg.apply_env(std::env::vars())?;
        Ok(cfg)
    }

    /// Parses configuration text; reference files are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let table: toml::Table =
            text.parse().map_err(|source| Error::ConfigParse { path: PathBuf::from("<text>"), source: Box::new(source) })?;
        Ok(Self { table, base_dir: base_dir.into() })
    }

    /// Applies `JIESU__A__B=value` pairs as overrides of `a.b`.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<(), Error> {
        for (key, value) in vars {
            let Some(path) = key.strip_prefix(ENV_PREFIX) else { continue };
            let dotted = path.split("__").map(str::to_ascii_lowercase).collect::<Vec<_>>().join(".");
            self.set(&dotted, scalar(&value));
        }
        Ok(())
    }

    /// Sets one dotted key (`intake.database_url`), creating tables on the way.
    pub fn set(&mut self, dotted: &str, value: impl Into<toml::Value>) {
        let mut parts: Vec<&str> = dotted.split('.').filter(|p| !p.is_empty()).collect();
        let Some(last) = parts.pop() else { return };
        let mut table = &mut self.table;
        for p in parts {
            let entry = table.entry(p.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
            if !entry.is_table() {
                *entry = toml::Value::Table(Default::default());
            }
            table = entry.as_table_mut().expect("just made a table");
        }
        table.insert(last.to_string(), value.into());
    }

    /// Directory that reference file names are relative to.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The part of the configuration that service `name` reads.
    pub fn service<S: DeserializeOwned>(&self, name: &'static str) -> Result<ServiceConfig<S>, Error> {
        let section = self.table.get(name).cloned().unwrap_or(toml::Value::Table(Default::default()));
        // A key neither the common settings nor the service's own know is a typo: say so
        // rather than run on a default the operator did not mean.
        let mut common_ignored = std::collections::BTreeSet::new();
        let common: ServiceSettings = serde_ignored::deserialize(section.clone(), |path| {
            common_ignored.insert(path.to_string());
        })
        .map_err(|e| Error::Config(format!("[{name}]: {e}")))?;
        let mut own_ignored = std::collections::BTreeSet::new();
        let settings: S = serde_ignored::deserialize(section, |path| {
            own_ignored.insert(path.to_string());
        })
        .map_err(|e| Error::Config(format!("[{name}]: {e}")))?;
        let unknown: Vec<&String> = common_ignored.intersection(&own_ignored).filter(|k| !k.contains('.')).collect();
        if !unknown.is_empty() {
            let keys = unknown.iter().map(|k| format!("{name}.{k}")).collect::<Vec<_>>().join(", ");
            return Err(Error::Config(format!("unknown key(s) {keys}: check the spelling against the documented keys")));
        }
        let cfg = ServiceConfig {
            name,
            district: self.part("district")?,
            nats: self.part("nats")?,
            telemetry: self.part("telemetry")?,
            auth: self.part("auth")?,
            tls: self.part("tls")?,
            common,
            settings,
            reference: self.table.get("reference").and_then(|v| v.as_table()).cloned().unwrap_or_default(),
            base_dir: self.base_dir.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The ids of the district's intake channels (`[[intake.channels]]`): each has its own
    /// producer on NATS (see [`crate::access`]).
    pub fn channel_ids(&self) -> Result<Vec<String>, Error> {
        Ok(self.channels()?.into_iter().map(|c| c.id).collect())
    }

    /// The district's channel registry (`[[intake.channels]]`).
    pub fn channels(&self) -> Result<Vec<crate::channels::Channel>, Error> {
        match self.table.get("intake").and_then(|i| i.get("channels")).cloned() {
            None => Ok(Vec::new()),
            Some(v) => v.try_into().map_err(|e| Error::Config(format!("[[intake.channels]]: {e}"))),
        }
    }

    /// How service `name`'s durable consumer redelivers (`[<name>.consumer]`), for the operator
    /// who provisions it.
    pub fn consumer_settings(&self, name: &str) -> Result<ConsumerSettings, Error> {
        match self.table.get(name).and_then(|s| s.get("consumer")) {
            None => Ok(ConsumerSettings::default()),
            Some(v) => v.clone().try_into().map_err(|e| Error::Config(format!("[{name}.consumer]: {e}"))),
        }
    }

    /// A top-level section (`nats`, `auth`), or its defaults when the file has none.
    pub fn part<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, Error> {
        match self.table.get(name) {
            None => Ok(T::default()),
            Some(v) => v.clone().try_into().map_err(|e| Error::Config(format!("[{name}]: {e}"))),
        }
    }
}

/// Environment values are strings; read them as TOML when they are a TOML scalar or array.
fn scalar(text: &str) -> toml::Value {
    let probe = format!("v = {text}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) if !text.trim().is_empty() => t.remove("v").unwrap_or_else(|| toml::Value::String(text.into())),
        _ => toml::Value::String(text.to_string()),
    }
}

/// What every service reads: the district, NATS, telemetry, its own section.
#[derive(Debug, Clone)]
pub struct ServiceConfig<S> {
    pub name: &'static str,
    pub district: District,
    pub nats: NatsSettings,
    pub telemetry: TelemetrySettings,
    /// `[auth]`: who may call (see [`crate::auth`]).
    pub auth: crate::auth::AuthSettings,
    /// `[tls]`: encryption on the wire (see [`crate::tls`]).
    pub tls: crate::tls::TlsSettings,
    pub common: ServiceSettings,
    /// The service's own settings (its section, deserialised by the service).
    pub settings: S,
    reference: toml::Table,
    base_dir: PathBuf,
}

impl<S> ServiceConfig<S> {
    /// The folder of the district file: what its relative paths are relative to.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// Loads the reference file named `name` in `[reference]` (e.g. `organisation`), relative to
    /// the configuration file. `Ok(None)` when the district does not name one.
    pub fn reference<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, Error> {
        let Some(file) = self.reference.get(name).and_then(|v| v.as_str()) else { return Ok(None) };
        let path = self.base_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ConfigRead { path: path.clone(), source })?;
        toml::from_str(&text).map(Some).map_err(|e| Error::Config(format!("reference file {} ({name}): {e}", path.display())))
    }

    /// The raw text of a reference file, for parsers that validate their own input.
    /// Where the reference file `name` is, for messages that must name it.
    pub fn reference_file(&self, name: &str) -> Option<std::path::PathBuf> {
        self.reference.get(name).and_then(|v| v.as_str()).map(|file| self.base_dir.join(file))
    }

    pub fn reference_text(&self, name: &str) -> Result<Option<String>, Error> {
        let Some(file) = self.reference.get(name).and_then(|v| v.as_str()) else { return Ok(None) };
        let path = self.base_dir.join(file);
        std::fs::read_to_string(&path).map(Some).map_err(|source| Error::ConfigRead { path, source })
    }

    fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.district.code.trim().is_empty() {
            problems.push("district.code must not be empty".to_string());
        }
        if self.district.timezone.parse::<chrono_tz::Tz>().is_err() {
            problems.push(format!("district.timezone {:?} is not an IANA time zone", self.district.timezone));
        }
        if !is_subject_token_path(&self.nats.subject_root) {
            problems
                .push(format!("nats.subject_root {:?} must be dot-separated tokens of letters, digits, - and _", self.nats.subject_root));
        }
        if self.nats.url.is_empty() {
            problems.push("nats.url names no server".to_string());
        }
        for u in &self.nats.url {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"].iter().any(|s| u.starts_with(s)) || !u.contains("://");
            if !scheme_ok || u.contains(char::is_whitespace) {
                problems.push(format!("nats.url {u:?} is not a NATS server address (nats://host:port)"));
            }
        }
        if self.common.max_connections == 0 {
            problems.push(format!("{}.max_connections must be at least 1", self.name));
        }
        if self.common.database_url.is_empty() {
            problems.push(format!("{}.database_url must not be empty", self.name));
        }
        let c = &self.common.consumer;
        if c.max_deliver < 1 {
            problems.push(format!("{}.consumer.max_deliver must be at least 1", self.name));
        }
        if c.backoff.len() as i64 > c.max_deliver {
            problems.push(format!("{}.consumer.backoff may not list more steps than max_deliver", self.name));
        }
        if problems.is_empty() { Ok(()) } else { Err(Error::Config(problems.join("; "))) }
    }

    /// The district's time zone (validated at load).
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.district.timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai)
    }
}

pub(crate) fn is_subject_token_path(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// `[district]`: who this instance serves.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct District {
    /// Short code, e.g. "demo"; part of every event.
    pub code: String,
    /// Name shown to people, e.g. "示范区".
    pub name: String,
    /// IANA zone in which time limits and case numbers' days are computed.
    pub timezone: String,
    /// Letters in front of public case numbers (受理编号), e.g. "DM".
    pub case_no_prefix: String,
}

impl Default for District {
    fn default() -> Self {
        Self { code: "demo".into(), name: "示范区".into(), timezone: "Asia/Shanghai".into(), case_no_prefix: "JS".into() }
    }
}

/// `[nats]`: the broker and the streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// The servers of the cluster, any of which may answer: a list (`["nats://n1:4222",
    /// "nats://n2:4222"]`) or one string, comma-separated (`nats://n1:4222,nats://n2:4222`).
    #[serde(deserialize_with = "de_servers")]
    pub url: Vec<String>,
    /// Root of every subject (`<root>.intake.<channel>`, `<root>.event.…`); a city hub may
    /// aggregate districts by giving each its own root.
    pub subject_root: String,
    /// Stream replicas: 1 for one node, 3 in production (see docs/operations.md).
    pub replicas: usize,
    /// How long JetStream remembers a `Nats-Msg-Id`; must outlast the relay's longest retry.
    #[serde(deserialize_with = "crate::time::de_duration")]
    pub duplicate_window: Duration,
    /// How long events stay in the stream (audit, rebuilding read models).
    #[serde(deserialize_with = "crate::time::de_duration")]
    pub event_retention: Duration,
    /// How long submissions (and intake's answers) stay in the stream. Raw submissions hold
    /// names and phones: only as long as a producer that was away may need its answers.
    #[serde(deserialize_with = "crate::time::de_duration")]
    pub submission_retention: Duration,
    /// Directory of the NATS users' nkey seeds (`<user>.nk`, made by `jiesuctl nats keys`):
    /// each service connects as itself with `<keys_dir>/<service>.nk`. Unset: no credentials,
    /// for a server without authentication (never in production).
    pub keys_dir: Option<PathBuf>,
    /// TLS to the server: the CA that signed its certificate (`ca.pem`); set, TLS is required.
    pub tls_ca: Option<PathBuf>,
    /// The client's own certificate and key, for servers that demand mutual TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: vec!["nats://127.0.0.1:4222".into()],
            subject_root: "jiesu".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(10 * 60),
            event_retention: Duration::from_secs(400 * 86_400),
            submission_retention: Duration::from_secs(7 * 86_400),
            keys_dir: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// A server list given as one comma-separated string or as an array of strings.
fn de_servers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Servers {
        One(String),
        Many(Vec<String>),
    }
    let list = match Servers::deserialize(d)? {
        Servers::One(s) => s.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
        Servers::Many(v) => v.into_iter().map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
    };
    Ok(list)
}

impl NatsSettings {
    /// The server list as one string, for messages.
    pub fn servers(&self) -> String {
        self.url.join(",")
    }
}

/// `[telemetry]`: logs and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// "pretty" for people, "json" for log shippers.
    pub log_format: String,
    /// Fraction of traces kept when exporting (OTLP endpoint from `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub sample_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self { log_filter: "info".into(), log_format: "pretty".into(), sample_ratio: 1.0 }
    }
}

/// The keys every service section has.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct ServiceSettings {
    /// `sqlite://data/intake.db` (default) or `postgres://…/jiesu_intake`.
    pub database_url: String,
    /// gRPC listener; port 0 picks a free one (tests).
    pub grpc_addr: SocketAddr,
    /// Admin HTTP listener: `/healthz`, `/readyz`, `/metrics`, `/dead-letters`.
    pub admin_addr: SocketAddr,
    /// Connections in the PostgreSQL pool (SQLite always has one writer and four readers).
    pub max_connections: u32,
    pub consumer: ConsumerSettings,
}

impl std::fmt::Debug for ServiceSettings {
    // A database URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSettings")
            .field("database_url", &redact_url(&self.database_url))
            .field("grpc_addr", &self.grpc_addr)
            .field("admin_addr", &self.admin_addr)
            .field("max_connections", &self.max_connections)
            .field("consumer", &self.consumer)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            admin_addr: ([127, 0, 0, 1], 0).into(),
            max_connections: 10,
            consumer: ConsumerSettings::default(),
        }
    }
}

/// How a service's durable consumer redelivers.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// Deliveries before a message goes to the dead-letter table.
    pub max_deliver: i64,
    /// Delay before each redelivery; the last repeats.
    #[serde(deserialize_with = "crate::time::de_durations")]
    pub backoff: Vec<Duration>,
    /// How long a handler may hold a message before JetStream redelivers it.
    #[serde(deserialize_with = "crate::time::de_duration")]
    pub ack_wait: Duration,
    /// Messages in flight, unacknowledged, at most.
    pub max_ack_pending: i64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        Self {
            max_deliver: 6,
            backoff: vec![
                Duration::from_secs(1),
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
            ],
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1_000,
        }
    }
}

/// Writes a new secret file (a private key, a seed) readable by its owner only; an existing
/// file is never overwritten.
pub fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    struct Own {
        #[serde(default)]
        greeting: String,
    }

    const TEXT: &str = r#"
        [district]
        code = "dm"
        name = "示范区"
        timezone = "Asia/Shanghai"
        case_no_prefix = "DM"
        [intake]
        database_url = "sqlite://data/intake.db"
        greeting = "你好"
    "#;

    #[test]
    fn service_reads_its_section_and_env_overrides_win() {
        let mut cfg = DistrictConfig::parse(TEXT, ".").unwrap();
        cfg.apply_env([
            ("JIESU__INTAKE__DATABASE_URL".to_string(), "postgres://x/y".to_string()),
            ("JIESU__NATS__REPLICAS".to_string(), "3".to_string()),
            ("OTHER".to_string(), "ignored".to_string()),
        ])
        .unwrap();
        let svc = cfg.service::<Own>("intake").unwrap();
        assert_eq!(svc.common.database_url, "postgres://x/y");
        assert_eq!(svc.settings.greeting, "你好");
        assert_eq!(svc.nats.replicas, 3);
        assert_eq!(svc.district.case_no_prefix, "DM");
    }

    #[test]
    fn invalid_values_are_all_reported() {
        let mut cfg = DistrictConfig::parse(TEXT, ".").unwrap();
        cfg.set("district.timezone", "Mars/Olympus");
        cfg.set("nats.subject_root", "bad root");
        let err = cfg.service::<Own>("intake").unwrap_err().to_string();
        assert!(err.contains("timezone"), "{err}");
        assert!(err.contains("subject_root"), "{err}");
    }

    #[test]
    fn passwords_never_print() {
        assert_eq!(redact_url("postgres://jiesu:s3cret@db:5432/jiesu_intake"), "postgres://jiesu:***@db:5432/jiesu_intake");
        assert_eq!(redact_url("postgres://jiesu@db/x"), "postgres://jiesu@db/x");
        assert_eq!(redact_url("sqlite://data/intake.db"), "sqlite://data/intake.db");
        let s = ServiceSettings { database_url: "postgres://u:pw@h/d".into(), ..Default::default() };
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn a_misspelt_key_is_an_error_naming_it() {
        let mut cfg = DistrictConfig::parse(TEXT, ".").unwrap();
        cfg.set("intake.databse_url", "sqlite://x.db");
        let err = cfg.service::<Own>("intake").unwrap_err().to_string();
        assert!(err.contains("intake.databse_url"), "{err}");
        // Keys of the service's own settings and of the common ones are both known.
        let ok = DistrictConfig::parse(TEXT, ".").unwrap();
        assert!(ok.service::<Own>("intake").is_ok());
        // A reader that takes the section whole (a tool) is not held to it.
        assert!(cfg.service::<serde::de::IgnoredAny>("intake").is_ok());
    }

    #[test]
    fn nats_servers_are_a_list_or_a_comma_separated_string() {
        let mut cfg = DistrictConfig::parse(TEXT, ".").unwrap();
        cfg.set("nats.url", "nats://n1:4222, nats://n2:4222");
        assert_eq!(cfg.service::<Own>("intake").unwrap().nats.url, vec!["nats://n1:4222", "nats://n2:4222"]);
        cfg.apply_env([("JIESU__NATS__URL".to_string(), r#"["nats://a:1","nats://b:2","nats://c:3"]"#.to_string())]).unwrap();
        assert_eq!(cfg.service::<Own>("intake").unwrap().nats.url.len(), 3);
        cfg.set("nats.url", "http://x:1");
        assert!(cfg.service::<Own>("intake").unwrap_err().to_string().contains("not a NATS server"));
        cfg.set("nats.url", "");
        assert!(cfg.service::<Own>("intake").unwrap_err().to_string().contains("names no server"));
    }

    #[test]
    fn env_values_are_typed() {
        assert_eq!(scalar("3"), toml::Value::Integer(3));
        assert_eq!(scalar("true"), toml::Value::Boolean(true));
        assert_eq!(scalar("nats://h:1"), toml::Value::String("nats://h:1".into()));
        assert_eq!(scalar(""), toml::Value::String("".into()));
    }
}
